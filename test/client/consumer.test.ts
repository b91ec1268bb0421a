// Consumer groups through the client: members joining and leaving while records are produced, a
// handler that throws, binary records through eachBatch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, type Consumer, type KafkaMessage } from '../../client/index.ts';
import { sleep } from '../../lib/retry.ts';
import { startServer, type TestServer } from './server.ts';

let server: TestServer;
let queue: Queue;
beforeAll(async () => {
  server = await startServer();
  queue = new Queue({ url: server.url });
});
afterAll(() => server?.close());

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await condition()) return;
    await sleep(100);
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('consumer groups', () => {
  it('three members joining and leaving while records are produced: every record processed, each only while its partition is owned', async () => {
    await queue.admin().createTopics({ topics: [{ topic: 'events', numPartitions: 6 }] });
    const processed = new Map<string, number>();
    const violations: string[] = [];
    /** The member processing each partition right now. */
    const busy = new Map<number, string>();
    const member = (name: string): Consumer => {
      const owned = new Set<number>();
      const consumer = queue.consumer({
        groupId: 'billing',
        maxWaitTimeInMs: 200,
        onPartitionsAssigned: (assigned) => assigned.forEach(({ partitions }) => partitions.forEach((p) => owned.add(p))),
        onPartitionsRevoked: (revoked) => revoked.forEach(({ partitions }) => partitions.forEach((p) => owned.delete(p))),
      });
      void consumer.subscribe({ topics: ['events'], fromBeginning: true }).then(() => consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (!owned.has(partition)) violations.push(`${name} processed partition ${partition} it does not own`);
          if (busy.has(partition)) violations.push(`${name} and ${busy.get(partition)} processed partition ${partition} at once`);
          busy.set(partition, name);
          await sleep(1);
          busy.delete(partition);
          const value = message.value!.toString();
          processed.set(value, (processed.get(value) ?? 0) + 1);
        },
      }));
      return consumer;
    };

    const producer = queue.producer();
    const total = 600;
    const producing = (async () => {
      for (let i = 0; i < total; i += 20) {
        await producer.send({ topic: 'events', messages: Array.from({ length: 20 }, (_, j) => ({ key: `k${(i + j) % 13}`, value: `e${i + j}` })) });
        await sleep(20);
      }
    })();
    const a = member('a');
    await until(() => processed.size >= 60, 'a to consume');
    const b = member('b');
    await until(() => processed.size >= 200, 'a and b to consume');
    const c = member('c');
    await until(() => processed.size >= 300, 'three members to consume');
    await a.disconnect();
    await until(() => processed.size >= 400, 'b and c to consume');
    await b.disconnect();
    await producing;
    await until(() => processed.size === total, 'c to consume the rest');
    await c.disconnect();

    expect(violations).toEqual([]);
    expect([...processed.keys()].sort()).toEqual(Array.from({ length: total }, (_, i) => `e${i}`).sort());
    const group = await queue.admin().describeGroup('billing');
    expect(group.state).toBe('empty');
    expect(group.offsets.every((o) => o.lag === 0)).toBe(true);
  });

  it('a handler that throws never commits its record: the batch comes again from that record', async () => {
    await queue.admin().createTopics({ topics: [{ topic: 'flaky', numPartitions: 1 }] });
    await queue.producer().send({ topic: 'flaky', messages: Array.from({ length: 10 }, (_, i) => ({ value: `m${i}` })) });
    const seen: number[] = [];
    const committedWhenRetried: Array<number | null> = [];
    const errors: unknown[] = [];
    const consumer = queue.consumer({ groupId: 'flaky-readers', maxWaitTimeInMs: 200, retry: { initialRetryTimeMs: 10 }, onError: (err) => errors.push(err) });
    await consumer.subscribe({ topics: ['flaky'], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.offset);
        if (message.offset !== 4) return;
        if (seen.filter((o) => o === 4).length === 1) throw new Error('first attempt fails');
        committedWhenRetried.push((await queue.admin().describeGroup('flaky-readers')).offsets[0]?.committedOffset ?? null);
      },
    });
    await until(() => seen.length >= 11, 'the retry to get through');
    await consumer.disconnect();
    expect(seen).toEqual([0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9]);
    expect(errors).toEqual([new Error('first attempt fails')]);
    // The records before it were committed; the failed one was not.
    expect(committedWhenRetried).toEqual([4]);
    expect((await queue.admin().describeGroup('flaky-readers')).offsets[0]?.committedOffset).toBe(10);
  });

  it('binary keys and values round-trip through the producer and eachBatch', async () => {
    await queue.admin().createTopics({ topics: [{ topic: 'blobs', numPartitions: 2 }] });
    const sent = Array.from({ length: 20 }, (_, i) => ({ key: Uint8Array.from([i, 0, 255]), value: Uint8Array.from({ length: 64 }, (_, j) => (i * 31 + j * 7) % 256) }));
    await queue.producer().send({ topic: 'blobs', messages: sent });
    const received: KafkaMessage[] = [];
    const consumer = queue.consumer({ groupId: 'blob-readers', maxWaitTimeInMs: 200 });
    await consumer.subscribe({ topics: ['blobs'], fromBeginning: true });
    await consumer.run({ eachBatch: async ({ batch }) => void received.push(...batch.messages) });
    await until(() => received.length >= sent.length, 'every record');
    await consumer.disconnect();
    const byKey = new Map(received.map((m) => [Buffer.from(m.key!).toString('hex'), Buffer.from(m.value!).toString('hex')]));
    expect(byKey.size).toBe(sent.length);
    for (const { key, value } of sent) expect(byKey.get(Buffer.from(key).toString('hex'))).toBe(Buffer.from(value).toString('hex'));
  });
});
