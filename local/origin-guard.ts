// The local server listens on loopback without auth (in iam mode): any web page the developer opens
// could otherwise POST to it (a "simple" text/plain request needs no CORS preflight). Browsers send
// an Origin header with such requests; command-line clients and SDKs send none.
import type { MiddlewareHandler } from 'hono';
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
