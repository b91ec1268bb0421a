// Retention, DeleteRecords and the log start: whole segments go, the log start only grows, reads
// below it are 416 with both bounds, and a group resumes at the log start.
import { beforeAll, describe, expect, it } from 'vitest';
import { OffsetOutOfRangeError } from '../../lib/errors.ts';
import { deleteRecords } from '../../lib/lifecycle/delete-records.ts';
import { expiredPrefix } from '../../lib/lifecycle/retention.ts';
import type { SegmentItem } from '../../lib/log/segment-index.ts';
import type { Sequencer } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { testStorage } from '../support/stack.ts';
import { indexItems, lifecyclePartition, objectKeys, replay, text } from './harness.ts';

let storage: Storage;

beforeAll(async () => {
  storage = await testStorage();
});

/** DeleteRecords on the partition's only partition. */
const deleteOne = async (p: { sequencer: Sequencer; pk: string }, offset?: number) => (await deleteRecords(storage, p.sequencer, [{ pk: p.pk, offset }]))[0];

const segment = (base: number, end: number, size: number, maxTimestamp: number): SegmentItem => ({ base, end, size, maxTimestamp, objectKey: `k${base}`, dataLength: 0, indexLength: 0, indexCrc: 0, recordCount: end - base, epoch: 1, createdAt: 0 });

describe('which segments retention removes (pure)', () => {
  const now = 1_000_000;
  const segments = [segment(0, 10, 100, now - 5000), segment(10, 20, 100, now - 4000), segment(20, 30, 100, now - 1000)];

  it('retention.ms: a segment whose largest timestamp is older than now - retention.ms, as a prefix; exactly at the bound stays', () => {
    expect(expiredPrefix(segments, 0, { retentionMs: 4000, retentionBytes: -1 }, now).map((s) => s.base)).toEqual([0]);
    expect(expiredPrefix(segments, 0, { retentionMs: 3999, retentionBytes: -1 }, now).map((s) => s.base)).toEqual([0, 10]);
    expect(expiredPrefix(segments, 0, { retentionMs: -1, retentionBytes: -1 }, now)).toEqual([]);
    // Only a prefix: an old segment behind a young one stays, as in Kafka.
    expect(expiredPrefix([segments[2]!, segment(30, 40, 100, now - 9000)], 0, { retentionMs: 2000, retentionBytes: -1 }, now)).toEqual([]);
  });

  it('retention.bytes: oldest first while the rest still holds at least retention.bytes; the log start removes what lies wholly below it', () => {
    expect(expiredPrefix(segments, 0, { retentionMs: -1, retentionBytes: 200 }, now).map((s) => s.base)).toEqual([0]);
    expect(expiredPrefix(segments, 0, { retentionMs: -1, retentionBytes: 100 }, now).map((s) => s.base)).toEqual([0, 10]);
    expect(expiredPrefix(segments, 0, { retentionMs: -1, retentionBytes: 201 }, now)).toEqual([]);
    expect(expiredPrefix(segments, 19, { retentionMs: -1, retentionBytes: -1 }, now).map((s) => s.base)).toEqual([0]);
    expect(expiredPrefix(segments, 20, { retentionMs: -1, retentionBytes: -1 }, now).map((s) => s.base)).toEqual([0, 10]);
  });
});

describe('retention on a partition', () => {
  it('removes expired segments whole, raises the log start, keeps the objects for the grace period, then deletes them', async () => {
    const p = await lifecyclePartition(storage, { 'segment.bytes': 1024, 'segment.ms': 1000, 'retention.ms': 60_000 }, { retention: { deleteGraceMs: 30_000 } });
    for (let i = 0; i < 30; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`${i}`.padStart(100, '.')), headers: [], partition: 0, timestamp: p.clock.now + i }], '1');
    p.clock.now += 2000;
    await p.maintain();
    const compacted = await indexItems(storage, p.pk);
    expect(compacted.entries).toBe(0);
    expect(compacted.segments).toBeGreaterThan(2);
    const everything = await replay(p.fetcher, p.topic);

    // Records 0..29 have timestamps t..t+29. At t+29+60_000 only the last segment (holding 29) stays.
    p.clock.now += 60_000 + 29 - 2000;
    expect((await p.maintain()).expired).toBe(compacted.segments - 1);
    const after = await indexItems(storage, p.pk);
    expect(after.segments).toBe(1);
    const page = await p.fetcher.fetch({ topic: p.topic.name, partition: 0, offset: 29, maxRecords: 100, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.logStartOffset).toBeGreaterThan(0);
    expect(page.logStartOffset).toBeLessThanOrEqual(29);
    const from = page.logStartOffset;
    expect(await replay(p.fetcher, p.topic, from)).toEqual({ ...everything, records: everything.records.filter((r) => r.offset >= from) });
    await expect(p.fetcher.fetch({ topic: p.topic.name, partition: 0, offset: from - 1, maxRecords: 1, maxBytes: 1, waitMs: 0 })).rejects.toMatchObject({ status: 416, logStartOffset: from, highWatermark: 30 });
    // The expired objects stay until the grace period is over (a read may still be using them).
    expect(await objectKeys(storage, `logs/${p.pk}/`)).toHaveLength(compacted.segments);
    p.clock.now += 30_000;
    expect((await p.maintain()).trashed).toBe(compacted.segments - 1);
    expect(await objectKeys(storage, `logs/${p.pk}/`)).toHaveLength(1);
    expect((await p.configure({ 'retention.bytes': 0 })).config['retention.bytes']).toBe(0);
  });
});

describe('DeleteRecords', () => {
  it('raises the log start (never lowers it), refuses offsets past the high watermark, and the leader then drops what lies below', async () => {
    const p = await lifecyclePartition(storage);
    for (let i = 0; i < 10; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`v${i}`), headers: [], partition: 0 }], '1');
    await expect(deleteOne(p, 11)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(await deleteOne(p, 6)).toBe(6);
    expect(await deleteOne(p, 3)).toBe(6);
    await expect(p.fetcher.fetch({ topic: p.topic.name, partition: 0, offset: 5, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 })).rejects.toMatchObject({ status: 416, logStartOffset: 6, highWatermark: 10 });
    const rest = await replay(p.fetcher, p.topic, 6);
    expect(rest.records.map((r) => r.offset)).toEqual([6, 7, 8, 9]);
    expect((await p.maintain()).dropped).toBe(6);
    expect((await indexItems(storage, p.pk)).entries).toBe(4);
    expect(await replay(p.fetcher, p.topic, 6)).toEqual(rest);
    expect(await deleteOne(p)).toBe(10);
    expect((await replay(p.fetcher, p.topic, 10)).records).toEqual([]);
  });

  it('racing fetches see either the records, unchanged, or 416 once the log start passed them: never an error, a skip or other bytes', async () => {
    const p = await lifecyclePartition(storage, { 'segment.bytes': 1024, 'segment.ms': 1 });
    for (let i = 0; i < 24; i++) await p.producer.produce(p.topic.name, [{ key: text(`k${i}`), value: text(`v${i}`.repeat(20)), headers: [], partition: 0 }], '1');
    const reference = await replay(p.fetcher, p.topic);
    const byOffset = new Map(reference.records.map((r) => [r.offset, r]));
    p.clock.now += 10;
    let stop = false;
    const readers = Array.from({ length: 3 }, async (_, n) => {
      let checked = 0;
      for (let i = 0; !stop || i < 3; i++) {
        const offset = (i * 7 + n * 5) % 24;
        try {
          const page = await p.fetcher.fetch({ topic: p.topic.name, partition: 0, offset, maxRecords: 1 + (i % 9), maxBytes: 1 << 20, waitMs: 0 });
          expect(page.records.length).toBeGreaterThan(0);
          page.records.forEach((r, k) => expect(r.offset).toBe(offset + k));
          for (const r of page.records) expect(Buffer.from(r.value!).toString()).toBe(Buffer.from(byOffset.get(r.offset)!.value!, 'hex').toString());
          checked++;
        } catch (err) {
          expect(err).toBeInstanceOf(OffsetOutOfRangeError);
          expect(offset).toBeLessThan((err as OffsetOutOfRangeError).logStartOffset);
        }
      }
      return checked;
    });
    await p.maintain();
    await deleteOne(p, 9);
    await p.maintain();
    await deleteOne(p, 17);
    await p.maintain();
    stop = true;
    expect((await Promise.all(readers)).every((checked) => checked > 0)).toBe(true);
    expect((await replay(p.fetcher, p.topic, 17)).records).toEqual(reference.records.filter((r) => r.offset >= 17));
  });
});
