// Topic metadata operations racing each other and producers must never damage a live log.
import { beforeAll, describe, expect, it } from 'vitest';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Fetcher } from '../../lib/log/fetcher.ts';
import { HEAD_OFFSET, logPartitionKey } from '../../lib/log/keys.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { addPartitions, createTopic, deleteTopic, ensureHeads, getTopic } from '../../lib/topics/topic-store.ts';
import { withDynamoFaults } from '../support/faults.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
beforeAll(async () => {
  storage = await testStorage();
});

const value = (v: string, partition?: number) => ({ key: null, value: new TextEncoder().encode(v), headers: [], partition });
const head = async (topicId: string, partition: number) =>
  (await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(topicId, partition), o: HEAD_OFFSET }, ConsistentRead: true }))).Item;
const isHeadPut = (cmd: { constructor: { name: string }; input: Record<string, unknown> }) =>
  cmd.constructor.name === 'PutCommand' && (cmd.input.Item as { o?: number } | undefined)?.o === HEAD_OFFSET;
const isTopicDelete = (cmd: { constructor: { name: string }; input: Record<string, unknown> }) =>
  cmd.constructor.name === 'DeleteCommand' && cmd.input.TableName === storage.config.topicsTable;

describe('adding partitions', () => {
  it('two admins growing a topic at once never reset a head producers already use', async () => {
    const topic = await createTopic(storage, { name: 'grown', partitions: 1 });
    // Admin B reads partitions = 1, then stalls before writing heads; admin A grows the topic and
    // producers use the new partition; then B goes on.
    let releaseB!: () => void;
    const bMayWrite = new Promise<void>((r) => (releaseB = r));
    let bReachedHeads!: () => void;
    const bAtHeads = new Promise<void>((r) => (bReachedHeads = r));
    const adminB = withDynamoFaults(storage, async (cmd) => {
      if (isHeadPut(cmd)) {
        bReachedHeads();
        await bMayWrite;
      }
      return undefined;
    });
    const slow = addPartitions(adminB, 'grown', 3).then(() => 'ok', (err: { code?: string }) => err.code);
    await bAtHeads;
    await addPartitions(storage, 'grown', 3);
    const sequencer = new Sequencer(storage);
    await new Producer(storage, sequencer).produce('grown', [value('a', 2), value('b', 2)]);
    releaseB();
    expect(await slow).toBe('CONCURRENT_MODIFICATION');

    expect((await head(topic.topicId, 2))?.next).toBe(2);
    const page = await new Fetcher(storage, sequencer).fetch({ topic: 'grown', partition: 2, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.records.map((r) => r.offset)).toEqual([0, 1]);
    const [next] = await new Producer(storage, sequencer).produce('grown', [value('c', 2)]);
    expect(next!.offset).toBe(2);
  });
});

describe('deleting a topic', () => {
  it('fences producers first, and a deletion that stopped halfway is finished by deleting again', async () => {
    const topic = await createTopic(storage, { name: 'halfway', partitions: 2 });
    const producer = new Producer(storage, new Sequencer(storage));
    const stale = await producer.prepare('halfway', [value('late', 1)]);
    const failing = withDynamoFaults(storage, (cmd) => (isTopicDelete(cmd) ? 'fail-before' : undefined));
    await expect(deleteTopic(failing, 'halfway')).rejects.toThrow(/injected fault/);

    // The heads are retired although the topic item is still there: nothing more is acknowledged.
    await expect(producer.persist(stale, 'all')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    expect((await getTopic(storage, 'halfway')).topicId).toBe(topic.topicId);
    await deleteTopic(storage, 'halfway');
    await expect(getTopic(storage, 'halfway')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
  });

  it('retires partitions added while it runs, and retired heads never come back', async () => {
    const topic = await createTopic(storage, { name: 'racing', partitions: 2 });
    let grown = false;
    const deleter = withDynamoFaults(storage, async (cmd) => {
      if (isTopicDelete(cmd) && !grown) {
        grown = true;
        await addPartitions(storage, 'racing', 4); // lands between retiring heads 0..1 and the item delete
      }
      return undefined;
    });
    await deleteTopic(deleter, 'racing');
    expect(grown).toBe(true);
    await expect(getTopic(storage, 'racing')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC' });
    for (const p of [0, 1, 2, 3]) expect((await head(topic.topicId, p))?.deleted, `head ${p}`).toBe(true);

    // A stale admin still adding partitions to the old incarnation cannot revive them at offset 0.
    await ensureHeads(storage, topic.topicId, 0, 6);
    for (const p of [0, 1, 2, 3]) expect((await head(topic.topicId, p))?.deleted, `head ${p}`).toBe(true);
  });
});

describe('topic names in lookups', () => {
  it('are validated before any storage call', async () => {
    for (const name of ['x'.repeat(3000), 'a#b', 'a:b', '..']) {
      await expect(getTopic(storage, name)).rejects.toMatchObject({ code: 'INVALID_TOPIC_NAME', status: 400 });
    }
  });
});
