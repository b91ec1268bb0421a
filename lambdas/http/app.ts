// Builds the Hono application serving some or all route groups. Each Lambda function serves its own
// group; the local server serves all of them on one port.
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PayloadTooLargeError } from '../../lib/errors.ts';
import { authFromEnv } from './auth.ts';
import { errorBody, toErrorResponse } from './errors.ts';
import { MAX_BODY_BYTES } from './schemas.ts';
import type { Services } from './services.ts';
import { adminRoutes } from '../routes/admin.ts';
import { produceRoutes } from '../routes/produce.ts';
import { fetchRoutes } from '../routes/fetch.ts';
import { groupRoutes } from '../routes/groups.ts';

export type RouteGroup = 'admin' | 'produce' | 'fetch' | 'groups';
const ROUTE_GROUPS: Record<RouteGroup, (services: Services) => Hono> = { admin: adminRoutes, produce: produceRoutes, fetch: fetchRoutes, groups: groupRoutes };

export function createApp(services: Services, groups: RouteGroup[] = ['admin', 'produce', 'fetch', 'groups'], auth: MiddlewareHandler | undefined = authFromEnv(services.storage)): Hono {
  const app = new Hono();
  // Before anything reads the body: unauthenticated requests cost no parsing.
  if (auth) app.use('*', auth);
  app.use('*', bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new PayloadTooLargeError(`request body exceeds ${MAX_BODY_BYTES} bytes (the Lambda payload limit); split the records over several requests`);
    },
  }));
  app.get('/v1/health', (c) => c.json({ status: 'ok' }));
  for (const group of groups) app.route('/', ROUTE_GROUPS[group](services));
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route for ${c.req.method} ${new URL(c.req.url).pathname} on this endpoint (serves: ${groups.join(', ')})`), 404));
  app.onError(toErrorResponse);
  return app;
}
