// The walked floor under concurrency (docs/architecture.md, "Sequencing"): several processes
// (Sequencer instances, each with its own floor) on one partition, producers with acks all and 1,
// stalled reservations (some tombstoned, some committing late), readers in every process with
// small pages, and frequent advances. Every acknowledged record is read back at its offset, no
// offset holds two values, the high watermark never goes back in real time across processes, and
// acks=all is read-your-writes.
import { beforeAll, describe, expect, it } from 'vitest';
import { Fetcher, type FetchResult } from '../../lib/log/fetcher.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { Producer, batchRef, type ProduceRecord } from '../../lib/log/producer.ts';
import { Sequencer, newWriterToken, type DataEntry } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { createTopic } from '../../lib/topics/topic-store.ts';
import { sleep } from '../../lib/retry.ts';
import { testStorage } from '../support/stack.ts';

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));
const record = (value: string): ProduceRecord => ({ key: null, value: text(value), headers: [], partition: 0 });

let storage: Storage;
beforeAll(async () => {
  storage = await testStorage();
});

interface Obs { start: number; end: number; hwm: number; who: string }

describe('the walked floor under concurrency', () => {
  it('several processes: no lost/duplicated/misplaced record, HWM never goes back, acks=all is read-your-writes', async () => {
    const topic = await createTopic(storage, { name: `stress${Date.now()}`, partitions: 1 });
    const pk = logPartitionKey(topic.topicId, 0);
    const opts = { gapTimeoutMs: 250, hwmAdvanceEvery: 3, readerAdvanceThreshold: 4 };
    const procs = [0, 1, 2].map(() => {
      const sequencer = new Sequencer(storage, opts);
      return { sequencer, producer: new Producer(storage, sequencer), fetcher: new Fetcher(storage, sequencer) };
    });
    const acked = new Map<number, { value: string; end: number; acks: string }>();
    const obs: Obs[] = [];
    let stop = false;
    let n = 0;

    const producerLoop = async (p: number, w: number) => {
      for (let i = 0; i < 14; i++) {
        const acks = (i + w) % 2 === 0 ? 'all' : '1';
        const count = 1 + ((i + w) % 3);
        const values = Array.from({ length: count }, (_, k) => `p${p}w${w}i${i}k${k}`);
        const offsets = await procs[p]!.producer.produce(topic.name, values.map(record), acks);
        const end = performance.now();
        offsets.forEach((o, k) => acked.set(o.offset, { value: values[k]!, end, acks }));
        await sleep(Math.random() * 20);
      }
    };
    const stallerLoop = async (p: number) => {
      const { sequencer, producer } = procs[p]!;
      for (let i = 0; i < 6; i++) {
        const values = [`s${p}i${i}a`, `s${p}i${i}b`];
        const plan = await producer.prepare(topic.name, values.map(record));
        const batch = batchRef(plan, 0);
        const token = newWriterToken();
        const { base } = await sequencer.reserve(pk, batch.recordCount, token);
        await sleep(i % 2 === 0 ? 50 : 400); // within or past the gap timeout
        const { recordCount, ...source } = batch;
        const entry: DataEntry = { ...source, kind: 'data', base, count: recordCount, token, committedAt: Date.now() };
        if ((await sequencer.commit(pk, entry)) === 'committed') {
          const end = performance.now();
          values.forEach((v, k) => acked.set(base + k, { value: v, end, acks: 'late' }));
        }
      }
    };
    const seen = new Map<number, string>();
    const readerLoop = async (p: number, r: number) => {
      let offset = 0;
      while (!stop) {
        const start = performance.now();
        const page: FetchResult = await procs[p]!.fetcher.fetch({ topic: topic.name, partition: 0, offset, maxRecords: 1 + ((r * 7 + n++) % 9), maxBytes: 1 << 20, waitMs: 30 });
        obs.push({ start, end: performance.now(), hwm: page.highWatermark, who: `r${p}.${r}` });
        let cursor = offset;
        for (const rec of page.records) {
          expect(rec.offset).toBeGreaterThanOrEqual(cursor);
          expect(rec.offset).toBeLessThan(page.highWatermark);
          const v = decode(rec.value)!;
          const before = seen.get(rec.offset);
          if (before !== undefined) expect(v).toBe(before);
          seen.set(rec.offset, v);
          cursor = rec.offset + 1;
        }
        expect(page.nextOffset).toBeLessThanOrEqual(page.highWatermark);
        offset = page.nextOffset;
        await sleep(Math.random() * 15);
      }
    };
    const writers = Promise.all([
      ...procs.flatMap((_, p) => [0, 1].map((w) => producerLoop(p, w))),
      ...procs.map((_, p) => stallerLoop(p)),
    ]);
    const readers = Promise.all(procs.flatMap((_, p) => [0, 1, 2].map((r) => readerLoop(p, r))));
    await writers;
    await sleep(600);
    stop = true;
    await readers;

    // Final read through a fresh process.
    const fetcher = new Fetcher(storage, new Sequencer(storage, { gapTimeoutMs: 250 }));
    const all = new Map<number, string>();
    let offset = 0;
    for (;;) {
      const page = await fetcher.fetch({ topic: topic.name, partition: 0, offset, maxRecords: 10_000, maxBytes: 4 << 20, waitMs: 0 });
      for (const r of page.records) all.set(r.offset, decode(r.value)!);
      if (page.nextOffset === offset) break;
      offset = page.nextOffset;
    }
    for (const [o, a] of acked) expect(all.get(o), `acked ${a.acks} record at ${o}`).toBe(a.value);
    for (const [o, v] of seen) expect(all.get(o)).toBe(v);
    // HWM never goes back in real time.
    for (const a of obs) for (const b of obs) if (b.start > a.end) expect(b.hwm, `${b.who} after ${a.who}`).toBeGreaterThanOrEqual(a.hwm);
    // acks=all read-your-writes.
    for (const [o, a] of acked) if (a.acks === 'all') for (const b of obs) if (b.start > a.end) expect(b.hwm).toBeGreaterThan(o);
    expect(acked.size).toBeGreaterThan(100);
  }, 120_000);
});
