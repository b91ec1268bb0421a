// Reads while the lifecycle runs, timestamp lookups, and the garbage collector.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Collector } from '../../lib/lifecycle/collector.ts';
import type { Storage } from '../../lib/storage.ts';
import { createTopic, deleteTopic, getTopic } from '../../lib/topics/topic-store.ts';
import { testStorage, withInlineMaxBytes } from '../support/stack.ts';
import { comparable, indexItems, lifecyclePartition, objectKeys, replay, text } from './harness.ts';

let storage: Storage;

beforeAll(async () => {
  storage = await testStorage();
});

describe('fetches racing compaction and collection', () => {
  it('return exactly what a reference read returned, whatever the interleaving (property)', async () => {
    // Batches of both kinds: requests up to 160 encoded bytes are small writes (inline), larger ones go through S3.
    const p = await lifecyclePartition(withInlineMaxBytes(storage, 160), { 'segment.bytes': 1500, 'segment.ms': 1 });
    // Uneven batches, a few gaps, client timestamps out of order.
    for (let i = 0; i < 30; i++) {
      const records = Array.from({ length: 1 + (i % 4) }, (_, k) => ({ key: k % 2 ? null : text(`k${i}`), value: text(`v${i}.${k}`.repeat(1 + (i % 7))), headers: [{ key: 'n', value: text(`${i}`) }], partition: 0, timestamp: p.clock.now - (i % 3) * 1000 }));
      await p.producer.produce(p.topic.name, records, '1');
      if (i % 11 === 5) {
        const { base } = await p.sequencer.reserve(p.pk, 2, `gone${i}`);
        await p.sequencer.tombstone(p.pk, { base, reservation: { count: 2, reservedAt: 0, token: `gone${i}` } });
      }
    }
    const reference = await replay(p.fetcher, p.topic);
    const end = reference.nextOffset;
    p.clock.now += 10;
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ offset: fc.nat(end - 1), maxRecords: fc.integer({ min: 1, max: 12 }), maxBytes: fc.integer({ min: 1, max: 400 }) }), { minLength: 4, maxLength: 8 }),
      fc.nat(3),
      async (reads, passes) => {
        const maintenance = (async () => {
          for (let i = 0; i <= passes; i++) await p.maintain();
        })();
        const pages = await Promise.all(reads.map((r) => p.fetcher.fetch({ topic: p.topic.name, partition: 0, ...r, waitMs: 0 })));
        await maintenance;
        for (const [i, page] of pages.entries()) {
          const got = comparable(page);
          const from = reads[i]!.offset;
          // The same records and gaps as the reference from this offset, as far as the page goes.
          expect(got.records).toEqual(reference.records.filter((r) => r.offset >= from && r.offset < got.nextOffset));
          expect(got.records.length + got.gaps.length).toBeGreaterThan(0);
          for (const g of got.gaps) expect(reference.gaps.some((rg) => rg.startOffset <= g.startOffset && g.endOffset === rg.endOffset)).toBe(true);
        }
      },
    ), { numRuns: 6 });
    // Every data entry is compacted away; the gaps' entries stay.
    expect((await indexItems(storage, p.pk)).entries).toBe(reference.gaps.length);
    expect(await replay(p.fetcher, p.topic)).toEqual(reference);
  });
});

describe('ListOffsets by timestamp', () => {
  it('finds the earliest offset at or after a timestamp in segments and in the uncompacted tail, in a bounded number of calls', async () => {
    const p = await lifecyclePartition(storage, { 'segment.bytes': 2048, 'segment.ms': 60_000 });
    const t0 = 1_700_000_000_000;
    // Timestamps rise by 10 per record but record 50 is late by 1000 (out of order, as clients may send).
    const ts = (i: number) => t0 + i * 10 - (i === 50 ? 1000 : 0);
    for (let i = 0; i < 120; i += 4) await p.producer.produce(p.topic.name, [0, 1, 2, 3].map((k) => ({ key: null, value: text('x'.repeat(40)), headers: [], partition: 0, timestamp: ts(i + k) })), '1');
    await p.maintain(); // full segments roll; the tail stays in entries
    const items = await indexItems(storage, p.pk);
    expect(items.segments).toBeGreaterThan(1);
    expect(items.entries).toBeGreaterThan(0);
    const expected = (t: number) => {
      const i = Array.from({ length: 120 }, (_, k) => k).find((k) => ts(k) >= t);
      return i === undefined ? { offset: 120, timestamp: null } : { offset: i, timestamp: ts(i) };
    };
    for (const t of [0, t0, t0 + 5, t0 + 400, t0 + 491, t0 + 500, t0 + 1000, t0 + 1185, t0 + 1190, t0 + 99_999]) {
      storage.calls.reset();
      expect(await p.fetcher.listOffset(p.topic.name, 0, t)).toEqual(expected(t));
      expect(storage.calls.total()).toBeLessThanOrEqual(12);
    }
    expect(await p.fetcher.listOffset(p.topic.name, 0, 'earliest')).toEqual({ offset: 0, timestamp: null });
    expect(await p.fetcher.listOffset(p.topic.name, 0, 'latest')).toEqual({ offset: 120, timestamp: null });
  });
});

describe('the garbage collector', () => {
  it('removes a deleted topic\'s items and objects after the grace period, and leaves a live namesake alone', async () => {
    const p = await lifecyclePartition(storage, { 'segment.bytes': 1024, 'segment.ms': 1 });
    for (let i = 0; i < 12; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text('y'.repeat(200)), headers: [], partition: 0 }], '1');
    p.clock.now += 10;
    await p.maintain();
    await p.producer.produce(p.topic.name, [{ key: null, value: text('tail'), headers: [], partition: 0 }], '1');
    const topicId = (await getTopic(storage, p.topic.name)).topicId;
    expect((await objectKeys(storage, `logs/${topicId}/`)).length).toBeGreaterThan(0);
    await deleteTopic(storage, p.topic.name);
    const collector = new Collector(storage, p.maintenance.compactor, { graceMs: 60_000, now: () => p.clock.now });
    expect((await collector.collect()).topics).toBe(0); // within the grace period
    // A namesake created meanwhile is another topic: its log must survive the collection.
    const namesake = await createTopic(storage, { name: p.topic.name, partitions: 1 });
    await p.producer.produce(p.topic.name, [{ key: null, value: text('new'), headers: [], partition: 0 }], 'all');
    p.clock.now = Date.now() + 61_000;
    const report = await collector.collect();
    expect(report.topics).toBeGreaterThanOrEqual(1);
    expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 0 });
    expect(await objectKeys(storage, `logs/${topicId}/`)).toEqual([]);
    expect(await objectKeys(storage, `segments/${topicId}/`)).toEqual([]);
    expect((await replay(p.fetcher, namesake)).records.map((r) => Buffer.from(r.value!, 'hex').toString())).toEqual(['new']);
  });
});
