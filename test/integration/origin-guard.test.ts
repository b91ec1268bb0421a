import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { rejectForeignOrigins } from '../../local/origin-guard.ts';

describe('local server origin guard', () => {
  const app = new Hono();
  app.use('*', rejectForeignOrigins(8787));
  app.post('/v1/topics', (c) => c.json({ ok: true }, 201));

  it('refuses requests that a foreign web page sends', async () => {
    const res = await app.request('/v1/topics', { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'text/plain' }, body: '{}' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN_ORIGIN');
  });

  it('lets through clients without an Origin and pages of the server itself', async () => {
    expect((await app.request('/v1/topics', { method: 'POST', body: '{}' })).status).toBe(201);
    expect((await app.request('/v1/topics', { method: 'POST', headers: { origin: 'http://127.0.0.1:8787' }, body: '{}' })).status).toBe(201);
  });
});
