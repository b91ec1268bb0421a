// The producer against the local app: requests per flush, offsets per message, binary data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from '../../client/index.ts';
import { startServer, type TestServer } from './server.ts';

let server: TestServer;
let queue: Queue;
beforeAll(async () => {
  server = await startServer();
  queue = new Queue({ url: server.url });
  await queue.admin().createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }, { topic: 'audit', numPartitions: 1 }, { topic: 'sized', numPartitions: 1 }] });
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
    expect(requests).toBe(2);
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
