// The single base URL of a deployed stack: forwards each request to the function that serves it
// (routing.ts), so clients need one URL while each function keeps its own least-privilege role.
// In iam mode the caller's signature was checked by the router's Function URL; the router signs
// the forwarded request with its own role, which may invoke only the four Function URLs. In
// api-key mode the key travels on and the target function checks it.
import { Hono } from 'hono';
import { signerFor, type Signer } from '../../client/auth.ts';
import { DIRECT_URL_HEADER } from '../../client/transport.ts';
import type { HttpRole } from '../../cdk/bundling.ts';
import type { AuthMode } from './auth.ts';
import { routeOf } from './routing.ts';

/** Request headers the target needs; anything else (the caller's own signature above all) stays behind. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'x-api-key', 'authorization'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'allow', 'www-authenticate'];

export function routerApp(targets: Record<HttpRole, string>, authMode: AuthMode, sign: Signer = signerFor(authMode === 'iam' ? { type: 'sigv4' } : undefined)): Hono {
  const app = new Hono();
  app.all('*', async (c) => {
    const incoming = new URL(c.req.url);
    const role = routeOf(incoming.pathname);
    const url = new URL(`${incoming.pathname}${incoming.search}`, targets[role]);
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = c.req.header(name);
      // In iam mode Authorization is the caller's SigV4 for the router, not for the target.
      if (value !== undefined && !(name === 'authorization' && authMode === 'iam')) headers[name] = value;
    }
    const body = ['GET', 'HEAD'].includes(c.req.method) ? undefined : await c.req.text();
    const response = await fetch(url, { method: c.req.method, headers: await sign({ method: c.req.method, url, headers, body }), body });
    // Where a group member may send its later calls itself, sparing this invocation (its polls are
    // most of an idle member's bill). Named to callers the function accepted only.
    const replyHeaders = new Headers(role === 'groups' && response.ok ? { [DIRECT_URL_HEADER]: targets.groups } : {});
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = response.headers.get(name);
      if (value !== null) replyHeaders.set(name, value);
    }
    return new Response(response.body, { status: response.status, headers: replyHeaders });
  });
  return app;
}
