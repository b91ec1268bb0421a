// Topic metadata operations that must never damage a live log.
import { beforeAll, describe, expect, it } from 'vitest';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { Fetcher } from '../../lib/log/fetcher.ts';
import { HEAD_OFFSET, logPartitionKey } from '../../lib/log/keys.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { addPartitions, createTopic, deleteTopic, ensureHeads, getTopic } from '../../lib/topics/topic-store.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
beforeAll(async () => {
  storage = await testStorage();
});

const value = (v: string) => ({ key: null, value: new TextEncoder().encode(v), headers: [] });

describe('adding partitions', () => {
  it('a stale or repeated head write never resets a head that producers already use', async () => {
    const topic = await createTopic(storage, { name: 'grown', partitions: 1 });
    await addPartitions(storage, 'grown', 3);
    const sequencer = new Sequencer(storage);
    await new Producer(storage, sequencer).produce('grown', [{ ...value('a'), partition: 2 }, { ...value('b'), partition: 2 }]);
    // What a second admin, who also read partitions = 1, writes late:
    await ensureHeads(storage, topic.topicId, 1, 3);
    const head = await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(topic.topicId, 2), o: HEAD_OFFSET }, ConsistentRead: true }));
    expect(head.Item?.next).toBe(2);
    const page = await new Fetcher(storage, sequencer).fetch({ topic: 'grown', partition: 2, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.records.map((r) => r.offset)).toEqual([0, 1]);
    const [next] = await new Producer(storage, sequencer).produce('grown', [{ ...value('c'), partition: 2 }]);
    expect(next!.offset).toBe(2);
  });
});

describe('deleting a topic', () => {
  it('fences producers first and can be finished by calling it again after stopping halfway', async () => {
    const topic = await createTopic(storage, { name: 'halfway', partitions: 2 });
    const producer = new Producer(storage, new Sequencer(storage));
    const stale = await producer.prepare('halfway', [{ ...value('late'), partition: 1 }]);
    // Simulate a deletion that removed one head and then stopped.
    await storage.ddb.send(new DeleteCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(topic.topicId, 1), o: HEAD_OFFSET } }));
    await expect(producer.persist(stale, 'all')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    expect((await getTopic(storage, 'halfway')).topicId).toBe(topic.topicId);
    await deleteTopic(storage, 'halfway');
    await expect(getTopic(storage, 'halfway')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    const head0 = await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(topic.topicId, 0), o: HEAD_OFFSET }, ConsistentRead: true }));
    expect(head0.Item).toBeUndefined();
  });
});

describe('topic names in lookups', () => {
  it('are validated before any storage call', async () => {
    for (const name of ['x'.repeat(3000), 'a#b', 'a:b', '..']) {
      await expect(getTopic(storage, name)).rejects.toMatchObject({ code: 'INVALID_TOPIC_NAME', status: 400 });
    }
  });
});
