// The single base URL: the router forwards each request to the function serving it. Each function
// is its own app on its own port here, so a request routed to the wrong one fails (404 "serves: ...").
import { randomBytes } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from '../../client/index.ts';
import type { HttpRole } from '../../cdk/bundling.ts';
import { ApiKeyStore } from '../../lib/auth/api-key-store.ts';
import { API_KEYS_TABLE } from '../../lib/auth/api-keys.ts';
import { createApp } from '../../lambdas/http/app.ts';
import { apiKeyAuth, type AuthMode } from '../../lambdas/http/auth.ts';
import { routerApp } from '../../lambdas/http/router-app.ts';
import { ROUTES, routeOf } from '../../lambdas/http/routing.ts';
import { createServices, type Services } from '../../lambdas/http/services.ts';
import { ensureTable } from '../../local/provision.ts';
import { sleep } from '../../lib/retry.ts';
import { testStorage } from '../support/stack.ts';

const ROLES = [...new Set(ROUTES.map(([, role]) => role))];
const closers: Array<() => void> = [];
afterAll(() => closers.forEach((close) => close()));

async function listen(app: Hono): Promise<string> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  closers.push(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** One app per function, each serving only its own routes, and the router in front of them. */
async function stack(services: Services, authMode: AuthMode, auth?: ReturnType<typeof apiKeyAuth>): Promise<string> {
  const targets = Object.fromEntries(await Promise.all(ROLES.map(async (role) => [role, await listen(createApp(services, [role], auth))]))) as Record<HttpRole, string>;
  return listen(routerApp(targets, authMode, async (request) => request.headers));
}

let services: Services;
beforeAll(async () => {
  services = createServices(await testStorage());
});

describe('the routing table', () => {
  it('routes every route of each function to that function', () => {
    for (const role of ROLES) {
      for (const route of createApp(services, [role], undefined).routes.filter((r) => r.method !== 'ALL' && r.path !== '/v1/health')) {
        expect(routeOf(route.path.replace(/:[a-zA-Z]+/g, 'x')), `${route.method} ${route.path}`).toBe(role);
      }
    }
  });
});

describe('the router', () => {
  it('serves the whole client through one URL', async () => {
    const queue = new Queue({ url: await stack(services, 'iam') });
    await queue.admin().createTopic('routed', 2);
    const sent = await queue.producer().send({ topic: 'routed', messages: [{ key: 'a', value: 'one' }, { key: 'b', value: Uint8Array.from([0, 1, 255]) }] });
    expect(await queue.admin().fetchTopicOffsetsByTimestamp('routed', 'earliest')).toHaveLength(2);
    const values: string[] = [];
    const consumer = queue.consumer({ groupId: 'routed-readers', maxWaitTimeInMs: 200 });
    await consumer.subscribe({ topics: ['routed'], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void values.push(Buffer.from(message.value!).toString('hex')) });
    for (let i = 0; i < 100 && values.length < sent.length; i++) await sleep(100);
    await consumer.disconnect();
    expect(values.sort()).toEqual(['0001ff', Buffer.from('one').toString('hex')].sort());
    expect((await queue.admin().describeGroup('routed-readers')).offsets.map((o) => o.lag)).toEqual([0, 0]);
    // Errors come through unchanged, with their headers.
    const wrongMethod = await fetch(`${queue.transport.baseUrl}v1/topics/routed/records`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('passes API keys on to the functions, which check them (api-key mode)', async () => {
    const table = `t-${randomBytes(5).toString('hex')}-api-keys`;
    await ensureTable(services.storage, table, API_KEYS_TABLE);
    const store = new ApiKeyStore(services.storage.ddb, table);
    const { key } = await store.create('router-test');
    const url = await stack(services, 'api-key', apiKeyAuth(store));
    await expect(new Queue({ url }).admin().listTopics()).rejects.toMatchObject({ name: 'AuthError', code: 'UNAUTHORIZED', status: 401 });
    expect(await new Queue({ url, auth: { type: 'api-key', key } }).admin().listTopics()).toContain('routed');
  });
});
