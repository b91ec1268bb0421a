// Cheap waiting: an idle member's poll with the watch of its last answer reads one change marker per
// topic and nothing else, until a topic changes, a write is in flight, or its heartbeat is due.
import { beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createServices } from '../../lambdas/http/services.ts';
import { FULL_READ_EVERY_MS } from '../../lib/groups/consumer.ts';
import { CHANGE_QUIET_MS, CLOCK_SKEW_MS } from '../../lib/log/changes.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { batchRef } from '../../lib/log/producer.ts';
import { newWriterToken, Sequencer } from '../../lib/log/sequencer.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { createTopic } from '../../lib/topics/topic-store.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
let topics = 0;
const poll = { maxRecords: 100, maxBytes: 1 << 20, waitMs: 0, autoCommit: true };

/**
 * A fresh topic of 12 partitions with one member, on its own clients (calls counted) and a group
 * clock that stands still unless the test moves it.
 */
async function idleMember() {
  const topic = await createTopic(storage, { name: `w${topics++}`, partitions: 12 });
  const own = createStorage(storage.config);
  const clock = { now: Date.now() };
  const { groups, producer } = createServices(own, {}, { now: () => clock.now });
  const groupId = `g-${topic.name}`;
  const { memberId } = await groups.membership.join(groupId, { topics: [topic.name], autoOffsetReset: 'earliest' });
  const polled = (options: { watch?: string; ack?: string } = {}) => groups.consumer.poll(groupId, memberId, { ...poll, ...options });
  // The first poll records the start positions (a delivery to acknowledge): no watch until acknowledged.
  const start = await polled();
  expect(start.watch).toBeUndefined();
  return { topic, own, clock, producer, polled, start };
}

beforeAll(async () => {
  storage = await testStorage();
});

describe('cheap waiting', () => {
  it('an idle poll with the watch reads one marker and neither the group nor any partition', async () => {
    const { own, polled, start } = await idleMember();
    const first = await polled({ ack: start.pollId });
    expect(first.records).toEqual([]);
    expect(first.watch).toBeDefined();
    own.calls.reset();
    const again = await polled({ watch: first.watch, ack: first.pollId });
    expect(again).toMatchObject({ records: [], watch: first.watch, memberId: first.memberId, memberEpoch: first.memberEpoch, assignment: first.assignment });
    expect(own.calls.snapshot()).toEqual({ 'dynamodb.BatchGetItem': 1 });
  });

  it('a record produced after the watch was handed out is delivered by the next poll with it', async () => {
    const { topic, clock, producer, polled, start } = await idleMember();
    const first = await polled({ ack: start.pollId });
    await producer.produce(topic.name, [{ key: null, value: Buffer.from('wake up'), headers: [], partition: 5 }], '1');
    const woken = await polled({ watch: first.watch, ack: first.pollId });
    expect(woken.records.map((r) => Buffer.from(r.value!).toString())).toEqual(['wake up']);
    // Right after a bump, later batches of the same producer may go unannounced: no watch yet.
    const next = await polled({ ack: woken.pollId });
    expect(next.records).toEqual([]);
    expect(next.watch).toBeUndefined();
    clock.now = Date.now() + CHANGE_QUIET_MS + CLOCK_SKEW_MS;
    expect((await polled({ ack: next.pollId })).watch).toBeDefined();
  });

  it('a batch of the same producer within the quiet time of its bump is found while the marker is unsettled', async () => {
    const { topic, producer, polled, start } = await idleMember();
    await producer.produce(topic.name, [{ key: null, value: Buffer.from('one'), headers: [], partition: 0 }], 'all');
    const one = await polled({ ack: start.pollId });
    expect(one.records).toHaveLength(1);
    // Not announced: this process bumped the topic less than CHANGE_QUIET_MS ago.
    await producer.produce(topic.name, [{ key: null, value: Buffer.from('two'), headers: [], partition: 1 }], 'all');
    const two = await polled({ ack: one.pollId });
    expect(two.records.map((r) => Buffer.from(r.value!).toString())).toEqual(['two']);
    expect(two.watch).toBeUndefined();
  });

  it('no watch while a reservation is not yet readable: its batch would come unannounced', async () => {
    const { topic, polled, start } = await idleMember();
    await new Sequencer(storage).reserve(logPartitionKey(topic.topicId, 3), 1, newWriterToken());
    const answer = await polled({ ack: start.pollId });
    expect(answer.records).toEqual([]);
    expect(answer.watch).toBeUndefined();
  });

  it('once the heartbeat is due the poll heartbeats, but reads no partition of an unchanged topic', async () => {
    const { own, clock, polled, start } = await idleMember();
    const first = await polled({ ack: start.pollId });
    clock.now += first.heartbeatIntervalMs;
    own.calls.reset();
    const due = await polled({ watch: first.watch, ack: first.pollId });
    expect(due.watch).toBeDefined();
    expect(own.calls.total('dynamodb.GetItem')).toBeGreaterThan(0);
    expect(own.calls.total('dynamodb.PutItem') + own.calls.total('dynamodb.UpdateItem') + own.calls.total('dynamodb.TransactWriteItems')).toBeGreaterThan(0);
    expect(own.calls.total('dynamodb.Query')).toBe(0);
  });

  it('the heartbeat poll reads partitions whose topic changed', async () => {
    const { topic, clock, producer, polled, start } = await idleMember();
    const first = await polled({ ack: start.pollId });
    await producer.produce(topic.name, [{ key: null, value: Buffer.from('late'), headers: [], partition: 11 }], 'all');
    clock.now += first.heartbeatIntervalMs;
    const due = await polled({ watch: first.watch, ack: first.pollId });
    expect(due.records.map((r) => r.offset)).toEqual([0]);
  });

  it('a batch whose bump was lost is read by the first heartbeat poll a minute after the last full read', async () => {
    const { topic, clock, producer, polled, start } = await idleMember();
    const first = await polled({ ack: start.pollId });
    // Committed without a bump, as if its producer stopped between the two.
    const plan = await producer.prepare(topic.name, [{ key: null, value: Buffer.from('unannounced'), headers: [], partition: 2 }]);
    if (plan.objectKey) await storage.s3.send(new PutObjectCommand({ Bucket: storage.config.bucket, Key: plan.objectKey, Body: plan.bytes }));
    await new Sequencer(storage).sequence(logPartitionKey(topic.topicId, 2), batchRef(plan, 0), 'all');
    // Heartbeat polls skip the unchanged topic's partitions until a minute after the last full read.
    const readAt = clock.now;
    let last = first;
    while (clock.now < readAt + FULL_READ_EVERY_MS) {
      clock.now += first.heartbeatIntervalMs;
      last = await polled({ watch: last.watch, ack: last.pollId });
      if (clock.now < readAt + FULL_READ_EVERY_MS) expect(last.records).toEqual([]);
    }
    expect(last.records.map((r) => Buffer.from(r.value!).toString())).toEqual(['unannounced']);
  });

  it('a watch that is not one is refused with INVALID_WATCH', async () => {
    const { polled } = await idleMember();
    await expect(polled({ watch: 'bm90IGEgd2F0Y2g' })).rejects.toMatchObject({ status: 400, code: 'INVALID_WATCH' });
  });
});
