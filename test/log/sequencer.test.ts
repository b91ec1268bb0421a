// The storage invariants of docs/architecture.md, each against the real local DynamoDB and S3.
import { beforeAll, describe, expect, it } from 'vitest';
import { DeleteCommand, GetCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Fetcher } from '../../lib/log/fetcher.ts';
import { HEAD_OFFSET, logPartitionKey } from '../../lib/log/keys.ts';
import { ORPHANS_PARTITION_KEY, Producer, batchRef, type ProduceRecord } from '../../lib/log/producer.ts';
import { Sequencer, newWriterToken, type BatchRef, type DataEntry, type SequencerOptions } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { PartitionLogMissingError } from '../../lib/errors.ts';
import { createTopic, type Topic } from '../../lib/topics/topic-store.ts';
import { isPutOf, withDynamoFaults } from '../support/faults.ts';
import { testStorage, withInlineMaxBytes, withIntakeObjects } from '../support/stack.ts';

const text = (s: string) => new TextEncoder().encode(s);
const record = (value: string, partition = 0): ProduceRecord => ({ key: null, value: text(value), headers: [], partition });
const decode = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

let storage: Storage;
let topicCount = 0;

async function newTopic(partitions = 1): Promise<Topic> {
  return createTopic(storage, { name: `t${topicCount++}`, partitions });
}

/** A fresh one-partition topic with its sequencer, producer and fetcher on a clock the test moves. */
async function partitionWithClock(options: Partial<SequencerOptions> = {}) {
  const topic = await newTopic();
  const clock = { now: Date.now() };
  const sequencer = new Sequencer(storage, { gapTimeoutMs: 10_000, now: () => clock.now, ...options });
  return { topic, clock, pk: logPartitionKey(topic.topicId, 0), sequencer, producer: new Producer(storage, sequencer), fetcher: new Fetcher(storage, sequencer) };
}

async function readAll(fetcher: Fetcher, topic: string, partition = 0) {
  const records: Array<{ offset: number; value: string | null }> = [];
  const gaps: Array<{ startOffset: number; endOffset: number }> = [];
  let offset = 0;
  for (;;) {
    const page = await fetcher.fetch({ topic, partition, offset, maxRecords: 10_000, maxBytes: 4 << 20, waitMs: 0 });
    records.push(...page.records.map((r) => ({ offset: r.offset, value: decode(r.value) })));
    gaps.push(...page.gaps);
    if (page.nextOffset === offset) return { records, gaps, highWatermark: page.highWatermark };
    offset = page.nextOffset;
  }
}

/** A batch ready to commit (uploaded, unless it is a small write's inline batch), for driving the sequencer directly. */
async function uploadedBatch(producer: Producer, topic: Topic, values: string[]): Promise<BatchRef> {
  const plan = await producer.prepare(topic.name, values.map((v) => record(v)));
  if (plan.objectKey) await storage.s3.send(new (await import('@aws-sdk/client-s3')).PutObjectCommand({ Bucket: storage.config.bucket, Key: plan.objectKey, Body: plan.bytes }));
  return batchRef(plan, 0);
}

/** The data entry committing `batch` at `base`. */
function dataEntry(batch: BatchRef, base: number, token: string, committedAt: number): DataEntry {
  const { recordCount, ...source } = batch;
  return { ...source, kind: 'data', base, count: recordCount, token, committedAt };
}

beforeAll(async () => {
  storage = await testStorage();
});

describe('invariant 1: nothing is visible before its commit', () => {
  it('a reserved but uncommitted batch, and every batch after it, stays invisible until resolved', async () => {
    const topic = await newTopic();
    const sequencer = new Sequencer(storage);
    const producer = new Producer(storage, sequencer);
    const fetcher = new Fetcher(storage, sequencer);
    const pk = logPartitionKey(topic.topicId, 0);
    await producer.produce(topic.name, [record('a')]);

    const pending = await uploadedBatch(producer, topic, ['b1', 'b2']);
    const token = newWriterToken();
    const { base } = await sequencer.reserve(pk, 2, token);
    expect(base).toBe(1);
    // A later writer commits (acks=1 does not wait for visibility) while the earlier one is pending.
    const [later] = await producer.produce(topic.name, [record('c')], '1');
    expect(later!.offset).toBe(3);
    expect((await readAll(fetcher, topic.name)).records.map((r) => r.value)).toEqual(['a']);

    expect(await sequencer.commit(pk, dataEntry(pending, base, token, Date.now()))).toBe('committed');
    const all = await readAll(fetcher, topic.name);
    expect(all.records).toEqual([{ offset: 0, value: 'a' }, { offset: 1, value: 'b1' }, { offset: 2, value: 'b2' }, { offset: 3, value: 'c' }]);
    expect(all.highWatermark).toBe(4);
  });

  it('with acks=all the producer hears success only once its records are fetchable', async () => {
    const topic = await newTopic();
    const sequencer = new Sequencer(storage);
    const producer = new Producer(storage, sequencer);
    const fetcher = new Fetcher(storage, sequencer);
    for (let i = 0; i < 5; i++) {
      const [ack] = await producer.produce(topic.name, [record(`v${i}`)], 'all');
      const page = await fetcher.fetch({ topic: topic.name, partition: 0, offset: ack!.offset, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 });
      expect(page.records.map((r) => decode(r.value))).toEqual([`v${i}`]);
    }
  });
});

describe('acks=all waits for visibility', () => {
  it('is not acknowledged while an earlier reservation is unresolved, and is readable once it is', async () => {
    const { topic, clock, pk, sequencer, producer, fetcher } = await partitionWithClock();
    await sequencer.reserve(pk, 1, newWriterToken()); // a stalled writer below

    let acknowledged = false;
    const produced = producer.produce(topic.name, [record('waits')], 'all').then((acks) => ((acknowledged = true), acks));
    // Our batch is committed (its entry exists) but not visible: the producer must keep waiting.
    for (let i = 0; i < 500 && !(await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: pk, o: 1 }, ConsistentRead: true }))).Item; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    expect(acknowledged).toBe(false);

    clock.now += 10_000; // the stalled reservation expires; the waiting producer claims it and is visible
    const [ack] = await produced;
    expect(ack!.offset).toBe(1);
    const page = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.records.map((r) => [r.offset, decode(r.value)])).toEqual([[1, 'waits']]);
    expect(page.gaps).toEqual([{ startOffset: 0, endOffset: 1 }]);
  });
});

describe('invariants 2 and 3: one record per offset, contiguous per request, ordered by commit', () => {
  it('32 concurrent producers on one partition all succeed with gap-free, duplicate-free offsets', async () => {
    const topic = await newTopic();
    const sequencer = new Sequencer(storage);
    const producer = new Producer(storage, sequencer);
    const fetcher = new Fetcher(storage, sequencer);
    const writers = Array.from({ length: 32 }, (_, w) => producer.produce(topic.name, [record(`w${w}-0`), record(`w${w}-1`), record(`w${w}-2`)], w % 2 ? 'all' : '1'));
    const results = await Promise.all(writers);
    const offsets = results.flat().map((r) => r.offset).sort((a, b) => a - b);
    expect(offsets).toEqual(Array.from({ length: 96 }, (_, i) => i));
    // Each request's records are contiguous and in request order.
    for (const r of results) expect(r.map((o) => o.offset)).toEqual([r[0]!.offset, r[0]!.offset + 1, r[0]!.offset + 2]);
    const all = await readAll(fetcher, topic.name);
    expect(all.gaps).toEqual([]);
    expect(all.records.map((r) => r.offset)).toEqual(offsets);
    // The record at each acknowledged offset is the one the producer sent there.
    const byOffset = new Map(all.records.map((r) => [r.offset, r.value]));
    results.forEach((r, w) => r.forEach((o, i) => expect(byOffset.get(o.offset)).toBe(`w${w}-${i}`)));
  });

  it('a batch acknowledged before another request starts gets lower offsets', async () => {
    const topic = await newTopic();
    const producer = new Producer(storage, new Sequencer(storage));
    let last = -1;
    for (let i = 0; i < 10; i++) {
      const [ack] = await producer.produce(topic.name, [record(`s${i}`)], i % 2 ? '1' : 'all');
      expect(ack!.offset).toBeGreaterThan(last);
      last = ack!.offset;
    }
  });

  it('a retried commit (lost response) is recognised as its own, not duplicated', async () => {
    const topic = await newTopic();
    let lose = true;
    const faulty = withDynamoFaults(storage, (cmd) => (isPutOf(cmd, 'data') && lose ? ((lose = false), 'fail-after') : undefined));
    const sequencer = new Sequencer(faulty);
    const producer = new Producer(faulty, sequencer);
    const acks = await producer.produce(topic.name, [record('x'), record('y')], 'all');
    expect(acks.map((a) => a.offset)).toEqual([0, 1]);
    const all = await readAll(new Fetcher(storage, new Sequencer(storage)), topic.name);
    expect(all.records).toEqual([{ offset: 0, value: 'x' }, { offset: 1, value: 'y' }]);
    expect(all.gaps).toEqual([]);
  });

  it('a reservation applied twice by an SDK retry is abandoned and claimed as a gap at once', async () => {
    const topic = await newTopic();
    let lose = true;
    // The first reservation attempt is applied but its response lost; our retrier re-sends it.
    const faulty = withDynamoFaults(storage, (cmd) => (cmd.constructor.name === 'UpdateCommand' && String(cmd.input.UpdateExpression).includes('list_append') && lose ? ((lose = false), 'fail-after') : undefined));
    const sequencer = new Sequencer(faulty);
    const pk = logPartitionKey(topic.topicId, 0);
    const token = newWriterToken();
    const reserved = await sequencer.reserve(pk, 2, token);
    expect(reserved.base).toBe(2);
    expect(reserved.abandoned).toEqual([{ base: 0, reservation: expect.objectContaining({ count: 2, token }) }]);
  });

  it('a producer whose reservation was applied twice tombstones the duplicate without waiting', async () => {
    const topic = await newTopic();
    let lose = true;
    const faulty = withDynamoFaults(storage, (cmd) => (cmd.constructor.name === 'UpdateCommand' && String(cmd.input.UpdateExpression).includes('list_append') && lose ? ((lose = false), 'fail-after') : undefined));
    const producer = new Producer(faulty, new Sequencer(faulty, { gapTimeoutMs: 60_000 }));
    const [ack] = await producer.produce(topic.name, [record('after-retry')], 'all');
    const all = await readAll(new Fetcher(storage, new Sequencer(storage)), topic.name);
    expect(all.records).toEqual([{ offset: ack!.offset, value: 'after-retry' }]);
    expect(all.gaps.map((g) => g.endOffset - g.startOffset).reduce((a, b) => a + b, 0)).toBe(ack!.offset);
  });
});

describe('invariant 4: an upload whose commit fails never becomes visible', () => {
  it('leaves an orphan record, answers an error, and later batches are not held up', async () => {
    const topic = await newTopic();
    const faulty = withDynamoFaults(withIntakeObjects(storage), (cmd) => (isPutOf(cmd, 'data') ? 'fail-before' : undefined));
    const failing = new Producer(faulty, new Sequencer(faulty, { gapTimeoutMs: 60_000 }));
    await expect(failing.produce(topic.name, [record('lost-1'), record('lost-2')], 'all')).rejects.toThrow(/injected fault/);

    const objects = await storage.s3.send(new ListObjectsV2Command({ Bucket: storage.config.bucket, Prefix: `segments/${topic.topicId}/` }));
    expect(objects.KeyCount).toBe(1);
    const orphans = await storage.ddb.send(new QueryCommand({ TableName: storage.config.logTable, KeyConditionExpression: 'p = :p', ExpressionAttributeValues: { ':p': ORPHANS_PARTITION_KEY } }));
    expect(orphans.Items?.map((o) => o.key)).toContain(objects.Contents![0]!.Key);

    const sequencer = new Sequencer(storage, { gapTimeoutMs: 60_000 });
    const [ok] = await new Producer(storage, sequencer).produce(topic.name, [record('kept')], 'all');
    expect(ok!.offset).toBe(2);
    const all = await readAll(new Fetcher(storage, sequencer), topic.name);
    expect(all.records).toEqual([{ offset: 2, value: 'kept' }]);
    expect(all.gaps).toEqual([{ startOffset: 0, endOffset: 2 }]);
  });
});

describe('small writes: batches inline in their index entries', () => {
  it('skip the S3 PUT: each partition\'s entry holds its batch exactly as the intake object would, and fetches read it without a GET', async () => {
    const topic = await newTopic(2);
    const records = [record('a', 0), record('b', 1), record('c', 0)];
    const now = Date.now();
    const producer = new Producer(storage, new Sequencer(storage));
    const intake = await new Producer(withIntakeObjects(storage), new Sequencer(storage)).prepare(topic.name, records, now);
    storage.calls.reset();
    const offsets = await producer.persist(await producer.prepare(topic.name, records, now), 'all');
    expect(storage.calls.total('s3.')).toBe(0);
    expect(offsets.map((o) => [o.partition, o.offset])).toEqual([[0, 0], [1, 0], [0, 1]]);
    for (const batch of intake.batches) {
      const item = (await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(topic.topicId, batch.partition), o: 0 }, ConsistentRead: true }))).Item!;
      expect(item.key).toBeUndefined();
      expect(Buffer.from(item.b as Uint8Array)).toEqual(Buffer.from(intake.bytes.subarray(batch.position, batch.position + batch.length)));
    }
    storage.calls.reset();
    const fetcher = new Fetcher(storage, new Sequencer(storage));
    expect((await readAll(fetcher, topic.name, 0)).records).toEqual([{ offset: 0, value: 'a' }, { offset: 1, value: 'c' }]);
    expect((await readAll(fetcher, topic.name, 1)).records).toEqual([{ offset: 0, value: 'b' }]);
    expect(storage.calls.total('s3.')).toBe(0);
  });

  it('go inline up to the threshold of encoded intake-object bytes, through S3 one byte above it', async () => {
    const topic = await newTopic();
    const records = [record('x'.repeat(100)), record('y'.repeat(50))];
    const { bytes } = await new Producer(storage, new Sequencer(storage)).prepare(topic.name, records);
    const at = new Producer(withInlineMaxBytes(storage, bytes.length), new Sequencer(storage));
    const above = new Producer(withInlineMaxBytes(storage, bytes.length - 1), new Sequencer(storage));
    expect((await at.prepare(topic.name, records)).objectKey).toBeUndefined();
    expect((await above.prepare(topic.name, records)).objectKey).toBeDefined();
    storage.calls.reset();
    await at.produce(topic.name, records);
    expect(storage.calls.snapshot()['s3.PutObject']).toBeUndefined();
    await above.produce(topic.name, records);
    expect(storage.calls.snapshot()['s3.PutObject']).toBe(1);
    const all = await readAll(new Fetcher(storage, new Sequencer(storage)), topic.name);
    expect(all.records.map((r) => r.value)).toEqual(['x'.repeat(100), 'y'.repeat(50), 'x'.repeat(100), 'y'.repeat(50)]);
  });

  it('a failed inline commit answers an error, leaves no orphan record (there is no object), and later batches are not held up', async () => {
    const topic = await newTopic();
    const faulty = withDynamoFaults(storage, (cmd) => (isPutOf(cmd, 'data') ? 'fail-before' : undefined));
    await expect(new Producer(faulty, new Sequencer(faulty, { gapTimeoutMs: 60_000 })).produce(topic.name, [record('lost')], 'all')).rejects.toThrow(/injected fault/);
    const orphans = await storage.ddb.send(new QueryCommand({ TableName: storage.config.logTable, KeyConditionExpression: 'p = :p', ExpressionAttributeValues: { ':p': ORPHANS_PARTITION_KEY } }));
    expect(orphans.Items?.filter((o) => o.topicId === topic.topicId)).toEqual([]);
    const sequencer = new Sequencer(storage, { gapTimeoutMs: 60_000 });
    const [ok] = await new Producer(storage, sequencer).produce(topic.name, [record('kept')], 'all');
    expect(ok!.offset).toBe(1);
    const all = await readAll(new Fetcher(storage, sequencer), topic.name);
    expect(all.records).toEqual([{ offset: 1, value: 'kept' }]);
    expect(all.gaps).toEqual([{ startOffset: 0, endOffset: 1 }]);
  });
});

describe('invariant 5: abandoned reservations resolve by rule, visibly', () => {
  it('a hole blocks the high watermark until the gap timeout, then reads as an explicit gap; the late writer is fenced', async () => {
    const { topic, clock, pk, sequencer, producer, fetcher } = await partitionWithClock();
    const zombie = await uploadedBatch(producer, topic, ['zombie']);
    const token = newWriterToken();
    const { base } = await sequencer.reserve(pk, 1, token);
    await producer.produce(topic.name, [record('after')], '1');

    clock.now += 9_999; // not yet expired: the high watermark stays below the hole
    expect((await sequencer.readResolved(pk)).highWatermark).toBe(0);
    expect((await fetcher.fetch({ topic: topic.name, partition: 0, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 })).records).toEqual([]);

    clock.now += 1; // expired: a reader claims the hole and the batch behind it becomes visible
    const page = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.gaps).toEqual([{ startOffset: 0, endOffset: 1 }]);
    expect(page.records.map((r) => [r.offset, decode(r.value)])).toEqual([[1, 'after']]);
    expect(page.nextOffset).toBe(2);

    // The stalled writer wakes up: its commit loses to the tombstone, nothing overwrites offset 0.
    const outcome = await sequencer.commit(pk, dataEntry(zombie, base, token, clock.now));
    expect(outcome).toBe('fenced');
    const entry = await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: pk, o: 0 }, ConsistentRead: true }));
    expect(entry.Item?.kind).toBe('gap');
  });

  it('a writer fenced by a tombstone re-sequences its batch to new offsets', async () => {
    const topic = await newTopic();
    const pk = logPartitionKey(topic.topicId, 0);
    // A reader claims the writer's reservation just before the writer's commit lands (once).
    let raced = false;
    const racing = withDynamoFaults(storage, async (cmd) => {
      if (isPutOf(cmd, 'data') && !raced) {
        raced = true;
        const item = cmd.input.Item as { o: number; n: number };
        expect(await new Sequencer(storage).tombstone(pk, { base: item.o, reservation: { count: item.n, reservedAt: 0, token: 'reader' } })).toBe(true);
      }
      return undefined;
    });
    const acks = await new Producer(racing, new Sequencer(racing)).produce(topic.name, [record('moved')], 'all');
    expect(raced).toBe(true);
    expect(acks[0]!.offset).toBe(1);
    const all = await readAll(new Fetcher(storage, new Sequencer(storage)), topic.name);
    expect(all.records).toEqual([{ offset: 1, value: 'moved' }]);
    expect(all.gaps).toEqual([{ startOffset: 0, endOffset: 1 }]);
  });
  it('a reader that takes a compacted entry for a hole cannot tombstone it: the stored hwm has passed it', async () => {
    const { topic, pk, sequencer, producer } = await partitionWithClock({ hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    await producer.produce(topic.name, [record('kept')], '1');
    // The reader's head still lists the reservation at 0, above the stored hwm.
    const stale = await sequencer.read(pk);
    expect([stale.head.hwm, stale.head.resv.length]).toEqual([0, 1]);
    // Then compaction's order: an advance past 0, the segment, the entry deleted.
    expect(await sequencer.advance(pk, stale)).toBe(true);
    await storage.ddb.send(new DeleteCommand({ TableName: storage.config.logTable, Key: { p: pk, o: 0 } }));
    // The reader finds no entry at 0; its tombstone must not put a gap where the segment holds a record.
    expect(await sequencer.tombstone(pk, { base: 0, reservation: stale.head.resv[0]! })).toBe(false);
    expect((await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: pk, o: 0 }, ConsistentRead: true }))).Item).toBeUndefined();
    // A hole at or above the stored hwm is tombstoned as before.
    const token = newWriterToken();
    const { base } = await sequencer.reserve(pk, 1, token);
    expect(await sequencer.tombstone(pk, { base, reservation: { count: 1, reservedAt: 0, token } })).toBe(true);
  });
});

describe('reading the tail', () => {
  it('stays exact when more reservations are pending than the tail window holds', async () => {
    // Never advance the stored hwm, so every batch stays a pending reservation above it.
    const { topic, clock, pk, sequencer, producer, fetcher } = await partitionWithClock({ hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    await sequencer.reserve(pk, 1, newWriterToken()); // a stalled writer at offset 0
    for (let i = 1; i <= 40; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');

    const stalled = await sequencer.read(pk);
    expect(stalled.head.resv).toHaveLength(41);
    expect(stalled.highWatermark).toBe(0);
    expect(stalled.hole?.base).toBe(0);

    clock.now += 10_000;
    const all = await readAll(fetcher, topic.name);
    expect(all.gaps).toEqual([{ startOffset: 0, endOffset: 1 }]);
    expect(all.records).toEqual(Array.from({ length: 40 }, (_, i) => ({ offset: i + 1, value: `v${i + 1}` })));
    const page = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 35, maxRecords: 100, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.records.map((r) => r.offset)).toEqual([35, 36, 37, 38, 39, 40]);
    expect(page.nextOffset).toBe(41);
  });

  it('never skips a batch when the tail was read before a commit that the head already reflects', async () => {
    const { topic, pk, sequencer, producer } = await partitionWithClock();
    await producer.produce(topic.name, [record('d')], '1'); // offset 0
    const late = await uploadedBatch(producer, topic, ['e']);
    const token = newWriterToken();
    const { base } = await sequencer.reserve(pk, 1, token); // offset 1, committed below only later
    await producer.produce(topic.name, [record('f')], '1'); // offset 2
    // The fetch's tail Query is served first; before its head read is served, offset 1 commits
    // and the stored high watermark moves past all three batches.
    let tailServed!: () => void;
    const tailDone = new Promise<void>((r) => (tailServed = r));
    const racing = { ...storage, ddb: Object.create(storage.ddb) as Storage['ddb'] };
    const send = storage.ddb.send.bind(storage.ddb) as (c: unknown) => Promise<unknown>;
    racing.ddb.send = (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      if (command.constructor.name === 'QueryCommand' && command.input.ScanIndexForward === false) {
        const result = await send(command);
        tailServed();
        return result;
      }
      if (command.constructor.name === 'QueryCommand' && (command.input.ExpressionAttributeValues as { ':head'?: number })[':head'] === HEAD_OFFSET) {
        await tailDone;
        await sequencer.commit(pk, dataEntry(late, base, token, Date.now()));
        expect(await sequencer.advance(pk, await sequencer.read(pk))).toBe(true);
      }
      return send(command);
    }) as Storage['ddb']['send'];
    const page = await new Fetcher(racing, new Sequencer(racing)).fetch({ topic: topic.name, partition: 0, offset: 1, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.records.map((r) => [r.offset, decode(r.value)])).toEqual([[1, 'e'], [2, 'f']]);
    expect(page.nextOffset).toBe(3);
  });
});

/**
 * `storage` whose Queries of index entries are recorded (not the head's): where each started, its
 * direction, and how many entries it returned; `timeline` has every Query's start and end, in order
 * (`head` for the head and state, `entries@<from>` for entries).
 */
function spiedEntryQueries(base: Storage = storage) {
  const spied = { storage: { ...base, ddb: Object.create(base.ddb) as Storage['ddb'] }, queries: [] as Array<{ from: number; forward: boolean; entries: number }>, timeline: [] as string[] };
  const send = base.ddb.send.bind(base.ddb) as (c: unknown) => Promise<unknown>;
  spied.storage.ddb.send = (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const values = command.input.ExpressionAttributeValues as { ':low'?: number; ':high'?: number; ':state'?: number } | undefined;
    const forward = command.input.ScanIndexForward !== false;
    const from = forward ? values?.[':low'] : values?.[':high'];
    const name = command.constructor.name !== 'QueryCommand' ? undefined : from !== undefined ? `entries@${from}` : values?.[':state'] !== undefined ? 'head' : undefined;
    if (name) spied.timeline.push(`${name}:start`);
    const result = await send(command);
    if (name) spied.timeline.push(`${name}:end`);
    if (name && from !== undefined) spied.queries.push({ from, forward, entries: ((result as { Items?: unknown[] }).Items ?? []).length });
    return result;
  }) as Storage['ddb']['send'];
  return spied;
}

/** Entry Queries in the order of their starting offsets (those running in parallel end in any order). */
const byStart = <Q extends { from: number }>(queries: Q[]) => [...queries].sort((a, b) => a.from - b.from);

/** How many entry Queries ran and how many entries they returned. */
const entryReads = (queries: Array<{ entries: number }>) => ({ queries: queries.length, entries: queries.reduce((n, q) => n + q.entries, 0) });

describe('the walked floor: a process reads each entry above the stored hwm once', () => {
  it('a tailing reader reads only the entries added since its last read, stops at a hole above its floor, and its advance trims exactly what it walked', async () => {
    // The stored hwm never moves by itself here, so without the floor every read would walk (and
    // read) all the pending reservations from offset 0.
    const { topic, clock, pk, producer } = await partitionWithClock({ hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    for (let i = 0; i < 40; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    const spied = spiedEntryQueries();
    const reader = new Sequencer(spied.storage, { gapTimeoutMs: 10_000, now: () => clock.now, hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    const fetcher = new Fetcher(spied.storage, reader);
    expect((await reader.read(pk)).highWatermark).toBe(40);
    expect(reader.walkedFloor(pk)).toBe(40);

    await producer.produce(topic.name, [record('v40')], '1');
    spied.queries.length = 0;
    const tailing = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 40, maxRecords: 100, maxBytes: 1 << 20, waitMs: 0 });
    expect(tailing.records.map((r) => [r.offset, decode(r.value)])).toEqual([[40, 'v40']]);
    expect(entryReads(spied.queries)).toEqual({ queries: 1, entries: 1 });

    // A reader between the stored hwm and the floor still gets its records (a Query from its offset).
    const behind = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 5, maxRecords: 3, maxBytes: 1 << 20, waitMs: 0 });
    expect(behind.records.map((r) => decode(r.value))).toEqual(['v5', 'v6', 'v7']);

    // A stalled reservation above the floor is a hole like any other, whatever commits after it.
    const stalled = await uploadedBatch(producer, topic, ['late']);
    const token = newWriterToken();
    const { base } = await reader.reserve(pk, 1, token);
    await producer.produce(topic.name, [record('v42')], '1');
    expect((await reader.read(pk)).highWatermark).toBe(41);
    await reader.commit(pk, dataEntry(stalled, base, token, clock.now));
    const view = await reader.read(pk);
    expect(view.highWatermark).toBe(43);

    // The advance trims every resolved reservation, those below the floor it did not read included.
    expect(view.resolved).toBe(43);
    expect(await reader.advance(pk, view)).toBe(true);
    const fresh = await new Sequencer(storage).read(pk);
    expect(fresh.head.hwm).toBe(43);
    expect(fresh.head.resv).toEqual([]);
    expect(fresh.highWatermark).toBe(43);
  });

  it('a reader below the floor reads no tail window: only the entries from its offset (while it reads the head), and those that arrived since the floor', async () => {
    const { topic, producer } = await partitionWithClock({ hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    for (let i = 0; i < 40; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    const spied = spiedEntryQueries();
    const fetcher = new Fetcher(spied.storage, new Sequencer(spied.storage));
    expect((await fetcher.fetch({ topic: topic.name, partition: 0, offset: 40, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 })).highWatermark).toBe(40);
    spied.queries.length = 0;
    spied.timeline.length = 0;
    const behind = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 5, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 });
    expect(behind.records.map((r) => decode(r.value))).toEqual(['v5']);
    expect(spied.queries).toEqual([{ from: 5, forward: true, entries: 1 }]);
    // Its entries are read while the head is: one round trip, not two.
    expect(spied.timeline.indexOf('entries@5:start')).toBeLessThan(spied.timeline.indexOf('head:end'));
    // Something arrived above the floor: the walk reads just that, and the high watermark shows it.
    await producer.produce(topic.name, [record('v40')], '1');
    spied.queries.length = 0;
    const next = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 6, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 });
    expect(next.records.map((r) => decode(r.value))).toEqual(['v6']);
    expect(next.highWatermark).toBe(41);
    expect(byStart(spied.queries)).toEqual([{ from: 6, forward: true, entries: 1 }, { from: 40, forward: true, entries: 1 }]);
  });

  it('a reader below the floor reads early only the entries below it: a batch above it committed while the head is read is found after the head', async () => {
    const { topic, clock, pk, producer } = await partitionWithClock({ hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    for (let i = 0; i < 10; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    const spied = spiedEntryQueries();
    const sequencer = new Sequencer(spied.storage, { gapTimeoutMs: 10_000, now: () => clock.now, hwmAdvanceEvery: 1_000_000, readerAdvanceThreshold: 1_000_000 });
    const fetcher = new Fetcher(spied.storage, sequencer);
    expect((await fetcher.fetch({ topic: topic.name, partition: 0, offset: 10, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 })).highWatermark).toBe(10);
    // Offset 10 is reserved and stalls; 11 commits. Were the early Query not bounded by the floor, it
    // would hold 8, 9 and 11 without 10, which commits while the head is being read.
    const stalled = await uploadedBatch(producer, topic, ['v10']);
    const token = newWriterToken();
    const { base } = await sequencer.reserve(pk, 1, token);
    await producer.produce(topic.name, [record('v11')], '1');
    const send = spied.storage.ddb.send.bind(spied.storage.ddb) as (c: unknown) => Promise<unknown>;
    spied.storage.ddb.send = (async (command: { input: Record<string, unknown> }) => {
      const values = command.input.ExpressionAttributeValues as { ':state'?: number } | undefined;
      if (values?.[':state'] !== undefined) await sequencer.commit(pk, dataEntry(stalled, base, token, clock.now));
      return send(command);
    }) as Storage['ddb']['send'];
    spied.queries.length = 0;
    const read = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 8, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(read.records.map((r) => decode(r.value))).toEqual(['v8', 'v9', 'v10', 'v11']);
    expect(read.highWatermark).toBe(12);
    expect(byStart(spied.queries)).toEqual([{ from: 8, forward: true, entries: 2 }, { from: 10, forward: true, entries: 2 }]);
  });

  it('a reader below the floor in the middle of a batch reads its early entries and the one holding its offset: no second Query from its offset', async () => {
    const { topic, producer } = await partitionWithClock();
    for (const k of [0, 1, 2]) await producer.produce(topic.name, [record(`b${k}.0`), record(`b${k}.1`), record(`b${k}.2`)], '1');
    const spied = spiedEntryQueries();
    const fetcher = new Fetcher(spied.storage, new Sequencer(spied.storage));
    expect((await fetcher.fetch({ topic: topic.name, partition: 0, offset: 9, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 })).highWatermark).toBe(9);
    spied.queries.length = 0;
    const read = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 4, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(read.records.map((r) => decode(r.value))).toEqual(['b1.1', 'b1.2', 'b2.0', 'b2.1', 'b2.2']);
    expect(spied.queries).toEqual([{ from: 4, forward: true, entries: 1 }, { from: 4, forward: false, entries: 1 }]);
  });

  it.each([
    { missing: 5, reads: [{ from: 2, forward: true, entries: 7 }, { from: 5, forward: true, entries: 5 }] },
    // The one at the reader's offset: found consistently, as for an offset in the middle of a batch.
    { missing: 2, reads: [{ from: 2, forward: true, entries: 7 }, { from: 2, forward: false, entries: 1 }] },
  ])('early entries are read eventually consistently: those from one a replica lacks ($missing) are read again, consistently', async ({ missing, reads }) => {
    const { topic, producer } = await partitionWithClock();
    for (let i = 0; i < 10; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    // A replica that has not seen the entry at offset `missing` yet.
    const lagging = { ...storage, ddb: Object.create(storage.ddb) as Storage['ddb'] };
    const send = storage.ddb.send.bind(storage.ddb) as (c: unknown) => Promise<{ Items?: Array<{ o: number }> }>;
    lagging.ddb.send = (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const result = await send(command);
      if (command.constructor.name === 'QueryCommand' && command.input.ConsistentRead === false) return { ...result, Items: result.Items?.filter((item) => item.o !== missing) };
      return result;
    }) as Storage['ddb']['send'];
    const spied = spiedEntryQueries(lagging);
    const fetcher = new Fetcher(spied.storage, new Sequencer(spied.storage));
    expect((await fetcher.fetch({ topic: topic.name, partition: 0, offset: 10, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 })).highWatermark).toBe(10);
    spied.queries.length = 0;
    spied.timeline.length = 0;
    const read = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 2, maxRecords: 100, maxBytes: 1 << 20, waitMs: 0 });
    expect(read.records.map((r) => decode(r.value))).toEqual(['v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9']);
    expect(spied.queries).toEqual(reads);
    expect(spied.timeline.filter((event) => event === 'head:start')).toHaveLength(1);
  });

  it('a read_committed reader waiting at the last stable offset below the floor reads no entries early', async () => {
    const { topic, pk, producer, sequencer } = await partitionWithClock();
    for (let i = 0; i < 3; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    // An open transaction pinned at 3 holds read_committed readers there, whatever commits above it.
    await storage.ddb.send(new TransactWriteCommand({ TransactItems: [sequencer.pinItem(pk, { producerId: 7, transaction: 1 })] }));
    for (let i = 3; i < 6; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    const spied = spiedEntryQueries();
    const fetcher = new Fetcher(spied.storage, new Sequencer(spied.storage));
    const first = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0, isolation: 'read_committed' });
    expect(first.records.map((r) => decode(r.value))).toEqual(['v0', 'v1', 'v2']);
    expect([first.lastStableOffset, first.highWatermark]).toEqual([3, 6]);
    spied.queries.length = 0;
    const waiting = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 3, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0, isolation: 'read_committed' });
    expect(waiting.records).toEqual([]);
    expect(spied.queries).toEqual([]);
  });

  it('a catching-up fetch that reaches the high watermark Queries nothing at or above it, even with entries committed above a hole', async () => {
    const { topic, pk, producer } = await partitionWithClock();
    for (let i = 0; i < 10; i++) await producer.produce(topic.name, [record(`v${i}`)], '1');
    await new Sequencer(storage).reserve(pk, 1, newWriterToken()); // a stalled writer at offset 10
    for (let i = 0; i < 50; i++) await producer.produce(topic.name, [record(`x${i}`)], '1');
    const spied = spiedEntryQueries();
    const fetcher = new Fetcher(spied.storage, new Sequencer(spied.storage));
    // The first fetch walks to the hole (floor 10); the next one catches up to it.
    const first = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 0, maxRecords: 3, maxBytes: 1 << 20, waitMs: 0 });
    expect(first.highWatermark).toBe(10);
    spied.queries.length = 0;
    const last = await fetcher.fetch({ topic: topic.name, partition: 0, offset: 3, maxRecords: 500, maxBytes: 1 << 20, waitMs: 0 });
    expect(last.records.map((r) => decode(r.value))).toEqual(['v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9']);
    // The Query from its offset covers [3, 10); above the floor only the walk reads, up to the hole
    // (and the entries committed above it, which is how it knows 10 is one).
    expect(byStart(spied.queries)).toEqual([{ from: 3, forward: true, entries: 7 }, { from: 10, forward: true, entries: 50 }]);
  });

  it('an acks=all producer reads no entries below its reservation when the batches before it went through the same process', async () => {
    const { topic, clock, pk } = await partitionWithClock();
    const spied = spiedEntryQueries();
    const sequencer = new Sequencer(spied.storage, { gapTimeoutMs: 10_000, now: () => clock.now, hwmAdvanceEvery: 1_000_000 });
    const producer = new Producer(spied.storage, sequencer);
    for (let i = 0; i < 10; i++) await producer.produce(topic.name, [record(`a${i}`)], 'all');
    expect(spied.queries).toEqual([]);
    expect((await new Sequencer(storage).read(pk)).head.resv).toHaveLength(10);

    // Another process's batch in between is read (one Query, one entry), then known.
    await new Producer(storage, new Sequencer(storage)).produce(topic.name, [record('other')], '1');
    await producer.produce(topic.name, [record('a10')], 'all');
    expect(entryReads(spied.queries)).toEqual({ queries: 1, entries: 1 });
    expect((await readAll(new Fetcher(storage, new Sequencer(storage)), topic.name)).records.map((r) => r.value)).toEqual([...Array.from({ length: 10 }, (_, i) => `a${i}`), 'other', 'a10']);
  });
});

describe('head maintenance', () => {
  it('the stored high watermark advances and the reservation list stays short', async () => {
    const topic = await newTopic();
    const sequencer = new Sequencer(storage, { hwmAdvanceEvery: 4 });
    const producer = new Producer(storage, sequencer);
    for (let i = 0; i < 20; i++) await producer.produce(topic.name, [record(`r${i}`)], '1');
    const head = await storage.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(topic.topicId, 0), o: HEAD_OFFSET }, ConsistentRead: true }));
    expect(head.Item!.next).toBe(20);
    expect(head.Item!.hwm).toBeGreaterThanOrEqual(16);
    expect((head.Item!.resv as unknown[]).length).toBe(20 - head.Item!.hwm);
  });

  it('a deleted partition refuses reservations, and a producer with stale metadata hears UNKNOWN_TOPIC by name', async () => {
    const topic = await newTopic();
    const producer = new Producer(storage, new Sequencer(storage));
    const stale = await producer.prepare(topic.name, [record('late')]);
    const { deleteTopic } = await import('../../lib/topics/topic-store.ts');
    await deleteTopic(storage, topic.name);
    await expect(new Sequencer(storage).reserve(logPartitionKey(topic.topicId, 0), 1, newWriterToken())).rejects.toBeInstanceOf(PartitionLogMissingError);
    const failure = producer.persist(stale, 'all');
    await expect(failure).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC', status: 404 });
    await expect(failure).rejects.toThrow(new RegExp(`topic "${topic.name}" was deleted`));
    await expect(failure).rejects.not.toThrow(topic.topicId);
  });
});
