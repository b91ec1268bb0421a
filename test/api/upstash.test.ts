// Upstash Kafka's REST API, driven by the unmodified `@upstash/kafka` client against the app served
// over HTTP on the local emulators; the webhook and the error format by plain HTTP.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Kafka } from '@upstash/kafka';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../lambdas/http/app.ts';
import { apiKeyAuth } from '../../lambdas/http/auth.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { ApiKeyStore } from '../../lib/auth/api-key-store.ts';
import { API_KEYS_TABLE } from '../../lib/auth/api-keys.ts';
import { ensureTable } from '../../local/provision.ts';
import { Api, startApi } from './client.ts';

const servers: ServerType[] = [];

async function listen(app: Hono): Promise<string> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let api: Api;
let url: string;
let kafka: Kafka;
beforeAll(async () => {
  api = await startApi();
  url = await listen(api.app);
  // Locally, without auth, any credentials are accepted.
  kafka = new Kafka({ url, username: 'anyone', password: 'anything' });
});
afterAll(() => {
  for (const server of servers) server.close();
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('the @upstash/kafka client', () => {
  it('produces single messages, batches over topics, keys, headers, partitions and timestamps, and fetches them back', async () => {
    await api.createTopic('up-orders', 3);
    await api.createTopic('up-audit', 1);
    const p = kafka.producer();
    const first = await p.produce('up-orders', { hello: 'world' }, { key: 'customer-1', headers: [{ key: 'trace', value: 't1' }] });
    expect(first).toEqual({ topic: 'up-orders', partition: expect.any(Number), offset: 0, timestamp: expect.any(Number) });
    // The same key, the same partition (Kafka's murmur2, as v1 chooses it).
    const second = await p.produce('up-orders', 'plain text', { key: 'customer-1' });
    expect(second).toMatchObject({ partition: first.partition, offset: 1 });
    const explicit = await p.produce('up-orders', 'to partition 2', { partition: 2, timestamp: 1_700_000_000_000 });
    expect(explicit).toEqual({ topic: 'up-orders', partition: 2, offset: expect.any(Number), timestamp: 1_700_000_000_000 });

    const batch = await p.produceMany([
      { topic: 'up-audit', value: 'a1' },
      { topic: 'up-orders', value: 'o1', partition: 1 },
      { topic: 'up-audit', value: { n: 2 }, key: 'k' },
    ]);
    expect(batch.map((m) => [m.topic, m.offset])).toEqual([['up-audit', 0], ['up-orders', expect.any(Number)], ['up-audit', 1]]);
    expect(batch[1]!.partition).toBe(1);

    const c = kafka.consumer();
    const fetched = await c.fetch({ topic: 'up-orders', partition: first.partition, offset: 0, timeout: 0 });
    expect(fetched).toEqual([
      { topic: 'up-orders', partition: first.partition, offset: 0, timestamp: first.timestamp, key: 'customer-1', value: '{"hello":"world"}', headers: [{ key: 'trace', value: 't1' }] },
      { topic: 'up-orders', partition: first.partition, offset: 1, timestamp: second.timestamp, key: 'customer-1', value: 'plain text', headers: [] },
    ]);
    // Several partitions at once, in one request or one per partition (the client's default).
    for (const parallel of [true, false]) {
      const both = await c.fetch({ topicPartitionOffsets: [{ topic: 'up-audit', partition: 0, offset: 0 }, { topic: 'up-orders', partition: 2, offset: explicit.offset }], timeout: 0 }, { parallel });
      expect(both.map((m) => m.value).sort()).toEqual(['a1', 'to partition 2', '{"n":2}']);
      expect(both.find((m) => m.value === '{"n":2}')?.key).toBe('k');
      expect(both.find((m) => m.value === 'a1')?.key).toBe('');
    }
  });

  it('two instances of a group share a topic: every record exactly once, across the hand-over and a removal', async () => {
    await api.createTopic('up-jobs', 4);
    const p = kafka.producer();
    const c = kafka.consumer();
    const seen: Record<string, string[]> = { a: [], b: [] };
    const consume = async (instanceId: 'a' | 'b') => {
      const messages = await c.consume({ consumerGroupId: 'up-workers', instanceId, topics: ['up-jobs'], autoOffsetReset: 'earliest', timeout: 50 });
      seen[instanceId]!.push(...messages.map((m) => m.value));
      return messages;
    };
    let produced = 0;
    for (let round = 0; round < 6; round++) {
      await p.produceMany(Array.from({ length: 8 }, () => ({ topic: 'up-jobs', value: `job-${produced++}` })));
      await consume('a');
      await consume('b');
    }
    // Drain: both poll until nothing is left (the first consumes formed the group).
    for (let idle = 0; idle < 2;) idle = (await consume('a')).length + (await consume('b')).length === 0 ? idle + 1 : 0;
    const all = [...seen.a!, ...seen.b!];
    expect(all.sort()).toEqual(Array.from({ length: produced }, (_, i) => `job-${i}`).sort());
    expect(seen.a!.length).toBeGreaterThan(0);
    expect(seen.b!.length).toBeGreaterThan(0);

    const admin = kafka.admin();
    const group = (await admin.consumers()).find((g) => g.name === 'up-workers')!;
    expect(group.instances.map((i) => i.name).sort()).toEqual(['a', 'b']);
    expect(group.instances.flatMap((i) => i.topics.flatMap((t) => t.partitions)).sort()).toEqual([0, 1, 2, 3]);

    // a's last batch is committed as it is removed; b takes over a's partitions without repeats.
    await p.produceMany(Array.from({ length: 8 }, () => ({ topic: 'up-jobs', value: `job-${produced++}` })));
    await consume('a');
    await admin.removeConsumerInstance('up-workers', 'a');
    expect((await admin.consumers()).find((g) => g.name === 'up-workers')!.instances.map((i) => i.name)).toEqual(['b']);
    for (let idle = 0; idle < 2;) idle = (await consume('b')).length === 0 ? idle + 1 : 0;
    expect([...seen.a!, ...seen.b!].sort()).toEqual(Array.from({ length: produced }, (_, i) => `job-${i}`).sort());
    const committed = await c.committed({ consumerGroupId: 'up-workers', instanceId: 'b', topicPartitions: [0, 1, 2, 3].map((partition) => ({ topic: 'up-jobs', partition })) });
    const ends = await admin.topicPartitionOffsets({ timestamp: 'latest', topicPartitions: [0, 1, 2, 3].map((partition) => ({ topic: 'up-jobs', partition })) });
    expect(committed).toEqual(ends);
  });

  it('commits explicitly (one offset, several, or what was consumed) and reads the committed offsets back', async () => {
    await api.createTopic('up-manual', 2);
    const p = kafka.producer();
    await p.produceMany([0, 0, 0, 1, 1].map((partition, i) => ({ topic: 'up-manual', value: `m${i}`, partition })));
    const c = kafka.consumer();
    const request = { consumerGroupId: 'up-manual-group', instanceId: 'solo' };
    const partitions = [0, 1].map((partition) => ({ topic: 'up-manual', partition }));
    // The first consume creates the instance; it may return nothing while the group forms.
    const messages: Array<{ value: string }> = [];
    while (messages.length < 5) messages.push(...(await c.consume({ ...request, topics: ['up-manual'], autoCommit: false, autoOffsetReset: 'earliest', timeout: 50 })));
    expect(await c.committed({ ...request, topicPartitions: partitions })).toEqual([{ topic: 'up-manual', partition: 0, offset: -1 }, { topic: 'up-manual', partition: 1, offset: -1 }]);
    await c.commit({ ...request, offset: { topic: 'up-manual', partition: 0, offset: 1 } });
    expect(await kafka.admin().committedOffsets({ ...request, topicPartition: partitions[0]! })).toEqual([{ topic: 'up-manual', partition: 0, offset: 1 }]);
    await c.commit({ ...request, offset: [{ topic: 'up-manual', partition: 0, offset: 2 }, { topic: 'up-manual', partition: 1, offset: 1 }] });
    expect((await c.committed({ ...request, topicPartitions: partitions })).map((o) => o.offset)).toEqual([2, 1]);
    await c.commit(request);
    expect((await c.committed({ ...request, topicPartitions: partitions })).map((o) => o.offset)).toEqual([3, 2]);
  });

  it('looks offsets up by timestamp, earliest and latest, and lists topics', async () => {
    await api.createTopic('up-times', 1);
    await kafka.producer().produceMany([1000, 2000, 3000].map((timestamp) => ({ topic: 'up-times', value: `at ${timestamp}`, timestamp })));
    const admin = kafka.admin();
    const at = async (timestamp: number | 'earliest' | 'latest') => (await admin.topicPartitionOffsets({ timestamp, topicPartition: { topic: 'up-times', partition: 0 } }))[0]!.offset;
    expect([await at('earliest'), await at(1500), await at(3000), await at(3001), await at('latest')]).toEqual([0, 1, 2, 3, 3]);
    expect(await admin.topics()).toMatchObject({ 'up-times': 1, 'up-orders': 3 });
  });
});

describe('the webhook, by plain HTTP', () => {
  it('stores the body as the value and the non-standard request headers as record headers', async () => {
    await api.createTopic('up-hooks', 1);
    const res = await fetch(`${url}/webhook?topic=up-hooks`, {
      method: 'POST',
      body: 'some event data',
      headers: { 'event-origin': 'my-app', 'event-timestamp': '1642628041', authorization: basic('user', 'secret'), 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ topic: 'up-hooks', partition: 0, offset: 0, timestamp: expect.any(Number) });
    const [message] = await kafka.consumer().fetch({ topic: 'up-hooks', partition: 0, offset: 0, timeout: 0 });
    expect(message!.value).toBe('some event data');
    // Credentials and HTTP's own headers are not kept.
    expect(message!.headers.sort((x, y) => x.key.localeCompare(y.key))).toEqual([{ key: 'event-origin', value: 'my-app' }, { key: 'event-timestamp', value: '1642628041' }]);
  });
});

describe("Upstash's error format on these routes", () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  it.each<[what: string, request: () => Promise<Response>, status: number, mentions: RegExp]>([
    ['an unknown topic', () => post('/produce', '{"topic":"up-missing","value":"x"}'), 404, /up-missing/],
    ['malformed JSON', () => post('/produce/up-orders', '{nope'), 400, /not valid JSON/],
    ['a message without a value', () => post('/produce/up-orders', '{"key":"k"}'), 400, /value/],
    ['a partition out of range', () => post('/produce/up-orders', '{"value":"x","partition":7}'), 404, /partition 7/],
    ['fetch past the end of the log', () => post('/fetch', '{"topic":"up-orders","partition":0,"offset":99999}'), 416, /out of range/],
    ['an unsupported auto.offset.reset', () => post('/consume/g/i', '{"topic":"up-orders"}', { 'Kafka-Auto-Offset-Reset': 'none' }), 400, /"none" is not supported/],
    ['an invalid instance name', () => post('/consume/g/bad%20name', '{"topic":"up-orders"}'), 400, /instance names/],
    ['a commit by an unknown instance', () => post('/commit/g/nobody', '{"topic":"up-orders","partition":0,"offset":0}'), 409, /not in the group/],
    ['a webhook without a topic', () => post('/webhook', 'x'), 400, /topic/],
    ['a wrong method', () => fetch(`${url}/produce`), 405, /GET is not allowed/],
  ])('%s', async (_, request, status, mentions) => {
    const res = await request();
    expect(res.status).toBe(status);
    const body = await res.json() as { error: string; status: number };
    expect(body).toEqual({ error: expect.stringMatching(mentions), status });
  });

  it('v1 routes keep the v1 format', async () => {
    const res = await fetch(`${url}/v1/topics/up-missing`);
    expect(await res.json()).toMatchObject({ error: { code: 'UNKNOWN_TOPIC' } });
  });
});

describe('in api-key mode', () => {
  it('takes an API key as the Basic password (any user name), and refuses others in the Upstash format', async () => {
    const table = `t-${randomBytes(5).toString('hex')}-api-keys`;
    await ensureTable(api.storage, table, API_KEYS_TABLE);
    const store = new ApiKeyStore(api.storage.ddb, table);
    const { key } = await store.create('upstash-client');
    const keyed = await listen(createApp(createServices(api.storage), undefined, apiKeyAuth(store)));
    expect(await new Kafka({ url: keyed, username: 'whoever', password: key }).admin().topics()).toMatchObject({ 'up-orders': 3 });
    for (const authorization of [basic('whoever', 'qk_wrong'), basic('no-password', ''), undefined]) {
      const res = await fetch(`${keyed}/topics`, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: expect.stringMatching(/API key/), status: 401 });
    }
  });
});
