// The producer against the local app: requests per flush, offsets per message, binary data.
import { DeleteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Queue } from '../../client/index.ts';
import { partitionForKey as serverPartitionForKey } from '../../lib/partitioner/partitioner.ts';
import { startServer, type TestServer } from './server.ts';

let server: TestServer;
let queue: Queue;
beforeAll(async () => {
  server = await startServer();
  queue = new Queue({ url: server.url });
  await queue.admin().createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }, { topic: 'audit', numPartitions: 1 }, { topic: 'sized', numPartitions: 1 }, { topic: 'lost', numPartitions: 2 }, { topic: 'keyed', numPartitions: 5 }, { topic: 'expired', numPartitions: 1 }] });
});
afterAll(() => server?.close());

/** Requests the queue sends while `work` runs. */
async function requestsDuring(work: () => Promise<unknown>): Promise<number> {
  const before = queue.transport.requests;
  await work();
  return queue.transport.requests - before;
}

describe('producer batching', () => {
  it('sends the sends of one tick as one request per topic, and resolves each message to its own offset', async () => {
    const producer = queue.producer();
    const sends: Array<Promise<Array<{ partition: number; offset: number }>>> = [];
    const requests = await requestsDuring(async () => {
      for (let i = 0; i < 300; i++) sends.push(producer.send({ topic: i % 3 === 0 ? 'audit' : 'orders', messages: [{ key: `k${i % 7}`, value: `v${i}` }] }));
      await Promise.all(sends);
    });
    // One produce request per topic, after one producer id and each topic's partition count.
    expect(requests).toBe(2 + 1 + 2);
    // Every message's metadata names where it is: read each back there.
    const results = (await Promise.all(sends)).map((r) => r[0]!);
    const consumedAt = new Map<string, string>();
    for (const topic of ['orders', 'audit']) {
      const { partitions } = await queue.admin().describeTopic(topic);
      for (const { partition } of partitions) {
        const reply = await queue.transport.request<{ records: Array<{ offset: number; value: string }> }>('GET', `/v1/topics/${topic}/partitions/${partition}/records`, { query: { offset: 0 } });
        for (const r of reply.records) consumedAt.set(`${topic}/${partition}/${r.offset}`, r.value);
      }
    }
    results.forEach((meta, i) => expect(consumedAt.get(`${i % 3 === 0 ? 'audit' : 'orders'}/${meta.partition}/${meta.offset}`)).toBe(`v${i}`));
    expect(new Set(results.map((m, i) => `${i % 3 === 0 ? 'audit' : 'orders'}/${m.partition}/${m.offset}`)).size).toBe(300);
  });

  it('splits a flush at batchBytes: records per request follow from the sizes', async () => {
    const producer = queue.producer({ batchBytes: 10_000, lingerMs: 60_000 });
    const value = 'x'.repeat(1000 - 64);
    const requests = await requestsDuring(async () => {
      // 25 records of 1000 counted bytes: batches of 10 fill batchBytes and go at once; flush sends the last 5.
      const sent = producer.send({ topic: 'sized', messages: Array.from({ length: 25 }, () => ({ value })) });
      await producer.flush();
      expect((await sent).map((m) => m.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    });
    // Three produce requests, after one producer id and the topic's partition count.
    expect(requests).toBe(3 + 1 + 1);
  });

  it('fills each request up to batchBytes: a record that would overflow the batch starts the next one', async () => {
    const producer = queue.producer({ batchBytes: 10_000, lingerMs: 60_000 });
    // The producer id and the partition count first, so that only produce requests are counted.
    const warmUp = producer.send({ topic: 'sized', messages: [{ value: 'warm-up' }] });
    await producer.flush();
    await warmUp;
    const value = 'x'.repeat(1500 - 64);
    const requests = await requestsDuring(async () => {
      // 14 sends of 1500 counted bytes: 6 fit in 10,000, so requests of 6, 6 and (on flush) 2.
      const sent = Array.from({ length: 14 }, () => producer.send({ topic: 'sized', messages: [{ value }] }));
      await producer.flush();
      await Promise.all(sent);
    });
    expect(requests).toBe(3);
  });

  it('sends binary keys and values as base64 and they come back byte for byte', async () => {
    const producer = queue.producer();
    const key = Uint8Array.from([0, 255, 128, 10]);
    const value = Uint8Array.from({ length: 256 }, (_, i) => i);
    const [meta] = await producer.send({ topic: 'audit', messages: [{ key, value, headers: { kind: 'bytes' } }, { value: 'text next to bytes' }] });
    const reply = await queue.transport.request<{ records: Array<{ key: string; value: string; headers: Record<string, string> }> }>('GET', `/v1/topics/audit/partitions/0/records`, { query: { offset: meta!.offset, encoding: 'base64', maxRecords: 2 } });
    expect(Buffer.from(reply.records[0]!.key, 'base64')).toEqual(Buffer.from(key));
    expect(Buffer.from(reply.records[0]!.value, 'base64')).toEqual(Buffer.from(value));
    expect(reply.records[0]!.headers).toEqual({ kind: 'bytes' });
    expect(Buffer.from(reply.records[1]!.value, 'base64').toString()).toBe('text next to bytes');
  });

  it('rejects every message of a failed request with the typed error, and refuses sends after disconnect', async () => {
    const producer = queue.producer();
    const err = await producer.send({ topic: 'no-such-topic', messages: [{ value: 'a' }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'NotFoundError', code: 'UNKNOWN_TOPIC', status: 404, retryable: false });
    await producer.disconnect();
    await expect(producer.send({ topic: 'audit', messages: [{ value: 'late' }] })).rejects.toThrow(/disconnected/);
  });

  it('disconnect sends what is queued', async () => {
    const producer = queue.producer({ lingerMs: 60_000 });
    const sent = producer.send({ topic: 'audit', messages: [{ value: 'last words' }] });
    await producer.disconnect();
    expect((await sent)[0]!.offset).toBeGreaterThanOrEqual(0);
  });
});

/** Every record of a topic, by partition, as the server stores them. */
async function recordsOf(topic: string): Promise<Array<{ partition: number; key: string | null; value: string }>> {
  const { partitions } = await queue.admin().describeTopic(topic);
  const all = await Promise.all(partitions.map(async ({ partition }) => (await queue.transport.request<{ records: Array<{ partition: number; key: string | null; value: string }> }>('GET', `/v1/topics/${topic}/partitions/${partition}/records`, { query: { offset: 0 } })).records));
  return all.flat();
}

/** Deletes a producer id's sequence items, as DynamoDB's TTL does after a day idle. */
async function forgetSequences(producerId: number): Promise<void> {
  const { storage } = server.services.producers.store;
  const { Items = [] } = await storage.ddb.send(new ScanCommand({ TableName: storage.config.groupsTable, FilterExpression: 'begins_with(g, :prefix) AND k = :k', ExpressionAttributeValues: { ':prefix': `producer/${producerId}/`, ':k': 'sequence' } }));
  expect(Items.length).toBe(1);
  for (const item of Items) await storage.ddb.send(new DeleteCommand({ TableName: storage.config.groupsTable, Key: { g: item.g, k: item.k } }));
}

describe('idempotent producer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a retry after a lost response writes nothing twice, and resolves to the offsets of the first attempt', async () => {
    // The first produce attempt reaches the server and is written; its response is lost on the way back.
    const realFetch = globalThis.fetch;
    let lost = 0;
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const response = await realFetch(input, init);
      if (String(input).endsWith('/v1/topics/lost/records') && lost++ === 0) throw new TypeError('fetch failed', { cause: new Error('socket hang up') });
      return response;
    });
    const producer = new Queue({ url: server.url, retry: { initialRetryTimeMs: 1 } }).producer();
    const messages = Array.from({ length: 20 }, (_, i) => ({ key: i % 2 === 0 ? `k${i}` : null, value: `v${i}` }));
    const metadata = await producer.send({ topic: 'lost', messages });
    expect(lost).toBe(2);
    const stored = await recordsOf('lost');
    expect(stored.map((r) => r.value).sort()).toEqual(messages.map((m) => m.value).sort());
    expect(new Set(metadata.map((m) => `${m.partition}/${m.offset}`)).size).toBe(20);
  });

  it("routes keyed records where the server's partitioner puts them", async () => {
    const producer = queue.producer();
    const keys = Array.from({ length: 40 }, (_, i) => `customer-${i}`);
    const metadata = await producer.send({ topic: 'keyed', messages: keys.map((key) => ({ key, value: key })) });
    metadata.forEach((m, i) => expect(m.partition).toBe(serverPartitionForKey(Buffer.from(keys[i]!), 5)));
    for (const r of await recordsOf('keyed')) expect(r.partition).toBe(serverPartitionForKey(Buffer.from(r.key!), 5));
  });

  it('re-initialises when the server no longer knows the producer id, and writes the batch once', async () => {
    const realFetch = globalThis.fetch;
    const producerIds: number[] = [];
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      if (String(input).endsWith('/v1/topics/expired/records')) producerIds.push((JSON.parse(String(init!.body)) as { producerId: number }).producerId);
      return realFetch(input, init);
    });
    const producer = queue.producer();
    await producer.send({ topic: 'expired', messages: [{ value: 'first' }] });
    // The producer's state in the partition expires (DynamoDB TTL): its next sequence, 1, is unknown there.
    await forgetSequences(producerIds[0]!);
    const [meta] = await producer.send({ topic: 'expired', messages: [{ value: 'second' }] });
    expect(meta!.offset).toBe(1);
    expect((await recordsOf('expired')).map((r) => r.value)).toEqual(['first', 'second']);
    expect(producerIds).toHaveLength(3);
    expect(producerIds[1]).toBe(producerIds[0]);
    expect(producerIds[2]).not.toBe(producerIds[0]);
  });

  it('refuses acks 0 on the client, before any request', async () => {
    expect(() => queue.producer({ acks: 0 })).toThrow(/idempotent producer needs acks/);
    await expect(queue.producer().send({ topic: 'audit', acks: '0', messages: [{ value: 'x' }] })).rejects.toMatchObject({ code: 'INVALID_ACKS' });
  });
});
