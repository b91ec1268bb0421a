// The application `npm start` serves: all routes, behind the guard against foreign web pages, with
// the same answers as the Lambda functions' apps.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { createApp } from '../../lambdas/http/app.ts';
import { createServices, type Services } from '../../lambdas/http/services.ts';
import { createLocalApp } from '../../local/local-app.ts';
import { testStorage } from '../support/stack.ts';

let services: Services;
let app: Hono;
beforeAll(async () => {
  services = createServices(await testStorage());
  app = createLocalApp(services, 8787);
});

const createTopic = (name: string, headers: Record<string, string> = {}) =>
  app.request('/v1/topics', { method: 'POST', headers, body: JSON.stringify({ name, partitions: 1 }) });

describe('local server app', () => {
  it('refuses what a foreign web page sends, before it reaches any route', async () => {
    const res = await createTopic('from-evil', { origin: 'https://evil.example', 'content-type': 'text/plain' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN_ORIGIN');
    expect((await app.request('/v1/topics/from-evil')).status).toBe(404);
  });

  it('serves clients without an Origin and pages of the server itself', async () => {
    expect((await createTopic('from-cli')).status).toBe(201);
    expect((await createTopic('from-own-page', { origin: 'http://127.0.0.1:8787' })).status).toBe(201);
  });
});

describe.each([
  ['the local server app', () => app],
  ['the app of every route group', () => createApp(services, undefined, undefined)],
])('unknown routes and methods on %s: the v1 error format', (_, appUnderTest) => {
  it.each<[method: string, path: string, status: number, code: string, allow?: string[]]>([
    ['GET', '/v1/nothing-here', 404, 'NOT_FOUND'],
    ['POST', '/', 404, 'NOT_FOUND'],
    ['GET', '/v1/topics/orders/partitions/0', 404, 'NOT_FOUND'],
    ['PUT', '/v1/topics/orders', 405, 'METHOD_NOT_ALLOWED', ['GET', 'HEAD', 'DELETE']],
    ['DELETE', '/v1/topics', 405, 'METHOD_NOT_ALLOWED', ['GET', 'HEAD', 'POST']],
    ['GET', '/v1/topics/orders/records', 405, 'METHOD_NOT_ALLOWED', ['POST']],
    ['POST', '/v1/topics/orders/partitions/0/records', 405, 'METHOD_NOT_ALLOWED', ['GET', 'HEAD']],
    ['PATCH', '/v1/groups/billing', 405, 'METHOD_NOT_ALLOWED', ['GET', 'HEAD', 'DELETE']],
    ['OPTIONS', '/v1/health', 405, 'METHOD_NOT_ALLOWED', ['GET', 'HEAD']],
  ])('%s %s is %i %s', async (method, path, status, code, allow) => {
    const res = await appUnderTest().request(path, { method });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error.code).toBe(code);
    expect(body.error.message).toContain(path);
    expect(res.headers.get('allow')?.split(', ').sort()).toEqual(allow?.sort());
  });
});

describe("a Lambda function's app answers 405 only for its own routes", () => {
  it('the fetch function: POST on the records of a partition is 405; topic administration is 404', async () => {
    const fetchApp = createApp(services, ['fetch'], undefined);
    const wrongMethod = await fetchApp.request('/v1/topics/orders/partitions/0/records', { method: 'POST' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD');
    const elsewhere = await fetchApp.request('/v1/topics', { method: 'POST' });
    expect(elsewhere.status).toBe(404);
    expect(((await elsewhere.json()) as { error: { message: string } }).error.message).toContain('serves: fetch');
  });
});
