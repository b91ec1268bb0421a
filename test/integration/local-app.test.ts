// The application `npm start` serves: all routes, behind the guard against foreign web pages.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { createServices } from '../../lambdas/http/services.ts';
import { createLocalApp } from '../../local/local-app.ts';
import { testStorage } from '../support/stack.ts';

let app: Hono;
beforeAll(async () => {
  app = createLocalApp(createServices(await testStorage()), 8787);
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
