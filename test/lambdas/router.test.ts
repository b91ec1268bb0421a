// The single base URL: the router forwards each request to the function serving it. Each function
// is its own app on its own port here, so a request routed to the wrong one fails (404 "serves: ...").
import { randomBytes } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from '../../client/index.ts';
import { DIRECT_URL_HEADER, mayFollowDirectUrl } from '../../client/transport.ts';
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

/** `app` recording the path of every request it gets into `seen`, or answering `status` to those `refuse` picks. */
function observed(app: Pick<Hono, 'fetch'>, seen: string[], refuse: (request: Request) => boolean = () => false, status = 403): Pick<Hono, 'fetch'> {
  return {
    fetch: (request: Request) => {
      seen.push(`${request.method} ${new URL(request.url).pathname}`);
      return refuse(request) ? new Response('refused', { status }) : app.fetch(request);
    },
  };
}

/**
 * The functions and the router, each recording the requests it gets; the router marks what it
 * forwards, and the groups function answers unmarked requests with `refusal` (an HTTP status,
 * without the API's error body) if given.
 */
async function observedStack(refusal?: number) {
  const seen = { router: [] as string[], groups: [] as string[] };
  const targets = Object.fromEntries(await Promise.all(ROLES.map(async (role) => {
    const app = createApp(services, [role], undefined);
    return [role, await listen(role === 'groups' ? observed(app, seen.groups, (r) => refusal !== undefined && !r.headers.has('x-forwarded-by-router'), refusal) : app)];
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
  it('successful group answers name the groups function, and a group member sends its later calls there: one invocation each, not two', async () => {
    const { url, seen, groupsUrl } = await observedStack();
    // Loopback URLs: followed only when asked to (a deployed stack's Function URLs are by default).
    const queue = new Queue({ url, directUrls: 'any' });
    const listed = await fetch(`${url}/v1/groups`);
    expect(listed.headers.get(DIRECT_URL_HEADER)).toBe(groupsUrl);
    // Not on other functions' answers, nor on refusals.
    expect((await fetch(`${url}/v1/topics`)).headers.get(DIRECT_URL_HEADER)).toBeNull();
    expect((await fetch(`${url}/v1/groups/g/members`, { method: 'POST', body: '{' })).headers.get(DIRECT_URL_HEADER)).toBeNull();
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

  for (const [status, why] of [[403, 'refuses the caller (IAM, granted the base URL only)'], [502, 'cannot be reached (a gateway answers instead)']] as const) {
    it(`a group member whose direct URL ${why} sends the call again through the router, and stays there`, async () => {
      const { url, seen } = await observedStack(status);
      const queue = new Queue({ url, directUrls: 'any', retry: { retries: 1, initialRetryTimeMs: 10 } });
      const topic = `refused-${status}`;
      await queue.admin().createTopic(topic, 1);
      await queue.producer().send({ topic, messages: [{ value: 'x' }] });
      seen.router.length = 0;
      seen.groups.length = 0;
      expect(await consumeThrough(queue, topic, ['x'])).toEqual(['x']);
      // One call (with its retry, if retryable) went straight to the function; everything else, through the router.
      const forwarded = seen.router.filter((r) => r.includes('/v1/groups/')).length;
      expect(seen.groups.length).toBe(forwarded + (status === 502 ? 2 : 1));
      expect(forwarded).toBeGreaterThan(3);
    });
  }
});

describe('which direct URLs a client follows', () => {
  const base = new URL('https://abc123.lambda-url.eu-west-1.on.aws/');
  it('by default, only another Function URL of the same region, bare, over HTTPS', () => {
    expect(mayFollowDirectUrl(base, 'https://def456.lambda-url.eu-west-1.on.aws/')).toBe(true);
    for (const named of [
      'http://def456.lambda-url.eu-west-1.on.aws/', 'https://def456.lambda-url.us-east-1.on.aws/', 'https://attacker.example/',
      'https://def456.lambda-url.eu-west-1.on.aws.attacker.example/', 'https://u:p@def456.lambda-url.eu-west-1.on.aws/',
      'https://def456.lambda-url.eu-west-1.on.aws:8443/', 'https://def456.lambda-url.eu-west-1.on.aws/x', 'https://def456.lambda-url.eu-west-1.on.aws/?a=1',
      base.href, 'not a url',
    ]) expect(mayFollowDirectUrl(base, named), named).toBe(false);
    // Behind another host (a custom domain, a proxy), nothing unless asked.
    expect(mayFollowDirectUrl(new URL('https://queue.example.com/'), 'https://def456.lambda-url.eu-west-1.on.aws/')).toBe(false);
  });

  it("'any' drops the host rule but not the rest; 'off' follows nothing", () => {
    const local = new URL('http://127.0.0.1:8787/');
    expect(mayFollowDirectUrl(local, 'http://127.0.0.1:9000/', 'any')).toBe(true);
    expect(mayFollowDirectUrl(local, 'https://127.0.0.1:9000/', 'any')).toBe(false);
    expect(mayFollowDirectUrl(local, 'http://u:p@127.0.0.1:9000/', 'any')).toBe(false);
    expect(mayFollowDirectUrl(base, 'https://def456.lambda-url.eu-west-1.on.aws/', 'off')).toBe(false);
  });
});
