// The application shell every endpoint shares: optional auth, the body limit, health, the
// not-found, method-not-allowed and error formats (v1's, or a dialect's on its own paths). Route
// groups are mounted by the caller, so a Lambda function bundles only the routes (and domain code) it serves.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PatternRouter } from 'hono/router/pattern-router';
import { PayloadTooLargeError } from '../../lib/errors.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { authFromEnv } from './auth.ts';
import { errorFormatFor, toErrorResponse, type ErrorDialect } from './errors.ts';
import { MAX_BODY_BYTES } from './schemas.ts';

export function createBaseApp(routes: Hono[], serves: string[], auth: MiddlewareHandler | undefined, dialects: readonly ErrorDialect[] = []): Hono {
  const app = new Hono();
  const formatOf = errorFormatFor(dialects);
  const errorResponse = (c: Context, code: string, message: string, status: 404 | 405) => c.json(formatOf(c.req.path)(code, message, status) as object, status);
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
  const allowed = allowedMethods(app);
  // A route rather than app.notFound: an app that mounts this one (the local server's) keeps it.
  app.all('*', (c) => {
    const methods = allowed(c.req.path);
    if (methods.length > 0) {
      c.header('Allow', methods.join(', '));
      return errorResponse(c, 'METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${c.req.path}; allowed: ${methods.join(', ')}`, 405);
    }
    return errorResponse(c, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path} on this endpoint (serves: ${serves.join(', ')})`, 404);
  });
  app.onError((err, c) => toErrorResponse(err, c, formatOf(c.req.path)));
  return app;
}

/** The methods the app's routes serve at a path (HEAD wherever GET is: Hono answers it from GET). */
function allowedMethods(app: Hono): (path: string) => string[] {
  const router = new PatternRouter<string>();
  for (const route of app.routes) if (route.method !== 'ALL') router.add(route.method, route.path, route.method);
  const methods = [...new Set(app.routes.map((route) => route.method).filter((method) => method !== 'ALL'))];
  if (methods.includes('GET')) methods.push('HEAD');
  return (path) => methods.filter((method) => router.match(method === 'HEAD' ? 'GET' : method, path)[0].length > 0);
}

/** One Lambda function's app: its own storage clients, auth from the environment, one route group. */
export function functionApp(role: string, routes: (storage: Storage) => Hono, dialects: readonly ErrorDialect[] = []): Hono {
  const storage = createStorage();
  return createBaseApp([routes(storage)], [role], authFromEnv(storage), dialects);
}
