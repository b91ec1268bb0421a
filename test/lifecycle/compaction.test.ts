// Compaction: intake batches become per-partition segments, reads are unchanged, storage shrinks.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Storage } from '../../lib/storage.ts';
import { testStorage, withInlineMaxBytes, withIntakeObjects } from '../support/stack.ts';
import { Maintenance } from '../../lib/lifecycle/maintenance.ts';
import { Fetcher } from '../../lib/log/fetcher.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer } from '../../lib/log/sequencer.ts';
import { createTopic, getTopic } from '../../lib/topics/topic-store.ts';
import { indexItems, lifecyclePartition, objectKeys, replay, text } from './harness.ts';

let storage: Storage;

beforeAll(async () => {
  storage = await testStorage();
});

describe('compaction', () => {
  it.each([['intake objects', 0], ['inline batches', 4096], ['both', 60]])('rolls due runs into segments: one index item per segment, intake objects gone, every record and gap read back byte for byte (%s)', async (_path, inlineMaxBytes) => {
    const p = await lifecyclePartition(withInlineMaxBytes(storage, inlineMaxBytes), { 'segment.bytes': 2048, 'segment.ms': 60_000 });
    for (let i = 0; i < 40; i++) {
      await p.producer.produce(p.topic.name, [{ key: text(`k${i}`), value: text(`value-${i}-${'x'.repeat(i * 3)}`), headers: [{ key: 'h', value: i % 2 ? null : text(`${i}`) }], partition: 0, timestamp: p.clock.now - (i % 5) * 10 }]);
    }
    // A reservation abandoned by its writer: a gap inside the log.
    const { base } = await p.sequencer.reserve(p.pk, 3, 'abandoned');
    await p.sequencer.tombstone(p.pk, { base, reservation: { count: 3, reservedAt: 0, token: 'abandoned' } });
    await p.producer.produce(p.topic.name, [{ key: null, value: text('after the gap'), headers: [], partition: 0 }]);
    const before = await replay(p.fetcher, p.topic);
    expect(before.gaps).toEqual([{ startOffset: 40, endOffset: 43 }]);

    // Full runs (segment.bytes) roll at once; the rest waits for segment.ms.
    await p.maintain();
    const partial = await indexItems(storage, p.pk);
    expect(partial.segments).toBeGreaterThan(0);
    expect(await replay(p.fetcher, p.topic)).toEqual(before);

    p.clock.now += 60_000;
    const report = await p.maintain();
    expect(report.skipped).toBeUndefined();
    const after = await indexItems(storage, p.pk);
    // Only the gap's entry stays (a writer stalled past its timeout must keep losing to it).
    expect(after.entries).toBe(1);
    expect(await objectKeys(storage, `segments/${p.topic.topicId}/`)).toEqual([]);
    expect((await objectKeys(storage, `logs/${p.pk}/`)).length).toBe(after.segments);
    expect(await replay(p.fetcher, p.topic)).toEqual(before);
    for (const from of [0, 1, 17, 39, 40, 41, 42, 43]) expect(await replay(p.fetcher, p.topic, from, 3)).toEqual(await replay(p.fetcher, p.topic, from, 1000));
  });

  it('a run of inline batches rolls once they hold inlineRollBytes, long before segment.bytes or segment.ms', async () => {
    const p = await lifecyclePartition(storage, { 'segment.bytes': 1 << 20, 'segment.ms': 60_000 }, { compactor: { inlineRollBytes: 2000 } });
    for (let i = 0; i < 4; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`${i}`.repeat(200)), headers: [], partition: 0 }], '1');
    expect((await p.maintain()).rolled ?? 0).toBe(0);
    const before = await replay(p.fetcher, p.topic);
    for (let i = 4; i < 12; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`${i}`.repeat(200)), headers: [], partition: 0 }], '1');
    expect((await p.maintain()).rolled).toBe(1);
    expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 1 });
    expect((await replay(p.fetcher, p.topic)).records.slice(0, 4)).toEqual(before.records);
  });

  it('an intake object holding batches of two partitions is deleted only once both have compacted it', async () => {
    const topic = await createTopic(storage, { name: `shared-${Date.now()}`, partitions: 2, config: { 'segment.ms': 1 } });
    const sequencer = new Sequencer(storage);
    const producer = new Producer(withIntakeObjects(storage), sequencer);
    const fetcher = new Fetcher(storage, sequencer);
    const maintenance = new Maintenance(storage, sequencer, { compactor: { now: () => Date.now() + 10 } });
    for (let i = 0; i < 3; i++) await producer.produce(topic.name, [0, 1].map((partition) => ({ key: null, value: text(`p${partition}-${i}`), headers: [], partition })), '1');
    const read = async (partition: number) => (await fetcher.fetch({ topic: topic.name, partition, offset: 0, maxRecords: 100, maxBytes: 1 << 20, waitMs: 0 })).records.map((r) => Buffer.from(r.value!).toString());
    const [before0, before1] = [await read(0), await read(1)];
    const fresh = await getTopic(storage, topic.name);
    expect((await maintenance.maintainPartition(fresh, 0)).rolled).toBe(1);
    expect(await objectKeys(storage, `segments/${topic.topicId}/`)).toHaveLength(3);
    expect(await read(1)).toEqual(before1);
    expect((await maintenance.maintainPartition(fresh, 1)).rolled).toBe(1);
    expect(await objectKeys(storage, `segments/${topic.topicId}/`)).toEqual([]);
    expect([await read(0), await read(1)]).toEqual([before0, before1]);
  });
});
