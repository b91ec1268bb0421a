// The single base URL: the router forwards each request to the function serving it. Each function
// is its own app on its own port here, so a request routed to the wrong one fails (404 "serves: ...").
import { randomBytes } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from '../../client/index.ts';
import { DIRECT_URL_HEADER } from '../../client/transport.ts';
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

async function listen(app: Pick<Hono, 'fetch'>): Promise<string> {
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

/** `app` recording the path of every request it gets into `seen`, or refusing with 403 those `refuse` picks. */
function observed(app: Pick<Hono, 'fetch'>, seen: string[], refuse: (request: Request) => boolean = () => false): Pick<Hono, 'fetch'> {
  return {
    fetch: (request: Request) => {
      seen.push(`${request.method} ${new URL(request.url).pathname}`);
      return refuse(request) ? new Response('Forbidden', { status: 403 }) : app.fetch(request);
    },
  };
}

/**
 * The functions and the router, each recording the requests it gets; the router marks what it
 * forwards, and the groups function refuses unmarked requests if `groupsRefusesCallers`.
 */
async function observedStack(groupsRefusesCallers: boolean) {
  const seen = { router: [] as string[], groups: [] as string[] };
  const targets = Object.fromEntries(await Promise.all(ROLES.map(async (role) => {
    const app = createApp(services, [role], undefined);
    return [role, await listen(role === 'groups' ? observed(app, seen.groups, (r) => groupsRefusesCallers && !r.headers.has('x-forwarded-by-router')) : app)];
  }))) as Record<HttpRole, string>;
  const router = routerApp(targets, 'iam', async (request) => ({ ...request.headers, 'x-forwarded-by-router': '1' }));
  return { url: await listen(observed(router, seen.router)), seen, groupsUrl: targets.groups };
}

/** Runs a member of a new group on `topic` until it has consumed `values` and polled a few times more. */
async function consumeThrough(queue: Queue, topic: string, values: string[]): Promise<string[]> {
  const consumed: string[] = [];
  const consumer = queue.consumer({ groupId: `${topic}-readers`, maxWaitTimeInMs: 50 });
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void consumed.push(Buffer.from(message.value!).toString()) });
  for (let i = 0; i < 100 && consumed.length < values.length; i++) await sleep(100);
  await sleep(500);
  await consumer.disconnect();
  return consumed;
}

describe('direct URLs behind the router', () => {
  it('each answer names the function that served it, and a group member sends its polls there: one invocation each, not two', async () => {
    const { url, seen, groupsUrl } = await observedStack(false);
    const queue = new Queue({ url });
    const listed = await fetch(`${url}/v1/groups`);
    expect(listed.headers.get(DIRECT_URL_HEADER)).toBe(groupsUrl);
    await queue.admin().createTopic('direct', 1);
    await queue.producer().send({ topic: 'direct', messages: [{ value: 'a' }, { value: 'b' }] });
    seen.router.length = 0;
    seen.groups.length = 0;
    expect(await consumeThrough(queue, 'direct', ['a', 'b'])).toEqual(['a', 'b']);
    // Through the router: the join only. Polls, commits and the leave went to the groups function.
    expect(seen.router.filter((r) => r.includes('/v1/groups/'))).toEqual(['POST /v1/groups/direct-readers/members']);
    const direct = seen.groups.filter((r) => r.endsWith('/poll'));
    expect(direct.length).toBeGreaterThan(3);
    expect(seen.groups.filter((r) => r.startsWith('DELETE '))).toHaveLength(1);
  });

  it('a caller the function refuses (IAM, granted the base URL only) is refused once and stays with the router', async () => {
    const { url, seen } = await observedStack(true);
    const queue = new Queue({ url });
    await queue.admin().createTopic('refused', 1);
    await queue.producer().send({ topic: 'refused', messages: [{ value: 'x' }] });
    seen.router.length = 0;
    seen.groups.length = 0;
    expect(await consumeThrough(queue, 'refused', ['x'])).toEqual(['x']);
    // One call went straight to the function and was refused; everything else, through the router.
    const forwarded = seen.router.filter((r) => r.includes('/v1/groups/')).length;
    expect(seen.groups.length).toBe(forwarded + 1);
    expect(forwarded).toBeGreaterThan(3);
  });
});
