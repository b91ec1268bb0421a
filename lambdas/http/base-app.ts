// The application shell every endpoint shares: optional auth, the body limit, health, the v1
// not-found and error formats. Route groups are mounted by the caller, so a Lambda function bundles
// only the routes (and domain code) it serves.
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PayloadTooLargeError } from '../../lib/errors.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { authFromEnv } from './auth.ts';
import { errorBody, toErrorResponse } from './errors.ts';
import { MAX_BODY_BYTES } from './schemas.ts';

export function createBaseApp(routes: Hono[], serves: string[], auth: MiddlewareHandler | undefined): Hono {
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
  for (const route of routes) app.route('/', route);
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no route for ${c.req.method} ${new URL(c.req.url).pathname} on this endpoint (serves: ${serves.join(', ')})`), 404));
  app.onError(toErrorResponse);
  return app;
}

/** One Lambda function's app: its own storage clients, auth from the environment, one route group. */
export function functionApp(role: string, routes: (storage: Storage) => Hono): Hono {
  const storage = createStorage();
  return createBaseApp([routes(storage)], [role], authFromEnv(storage));
}
