// The local server's HTTP application. It listens on loopback without auth (in iam mode), so any
// web page the developer opens could otherwise POST to it (a "simple" text/plain request needs no
// CORS preflight). Browsers send an Origin header with such requests; command-line clients and
// SDKs send none.
import { Hono, type MiddlewareHandler } from 'hono';
import { createApp } from '../lambdas/http/app.ts';
import type { Services } from '../lambdas/http/services.ts';
import { errorBody } from '../lambdas/http/errors.ts';

export function rejectForeignOrigins(port: number): MiddlewareHandler {
  const allowed = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`]);
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && !allowed.has(origin)) {
      return c.json(errorBody('FORBIDDEN_ORIGIN', `requests from web pages of ${origin} are refused by the local server`), 403);
    }
    await next();
  };
}

/** The local server's application: every route group behind the origin guard. */
export function createLocalApp(services: Services, port: number): Hono {
  const app = new Hono();
  app.use('*', rejectForeignOrigins(port));
  app.route('/', createApp(services));
  return app;
}
