// Fetch by bytes: one fetch returns up to maxBytes/maxRecords however many batches that spans, reads
// no more index entries than it needs, and keeps a bounded number of batch GETs in flight.
import { beforeAll, describe, expect, it } from 'vitest';
import { aroundEachAttempt } from '../../lib/aws/clients.ts';
import { Fetcher, MAX_PARALLEL_GETS } from '../../lib/log/fetcher.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer } from '../../lib/log/sequencer.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { createTopic } from '../../lib/topics/topic-store.ts';
import { testStorage, withIntakeObjects } from '../support/stack.ts';

const BATCHES = 300;
const VALUE_BYTES = 100;
const topic = 'small-batches';
let storage: Storage;

/** A fetcher on clients of its own, with the most batch GETs it ever had in flight at once. */
function observedFetcher() {
  const own = createStorage(storage.config);
  const gets = { inFlight: 0, most: 0 };
  aroundEachAttempt(own.s3, 's3', 'inFlightGets', async (operation, send) => {
    if (operation !== 's3.GetObject') return send();
    gets.most = Math.max(gets.most, ++gets.inFlight);
    try {
      return await send();
    } finally {
      gets.inFlight--;
    }
  });
  return { fetcher: new Fetcher(own, new Sequencer(own)), gets, calls: own.calls };
}

beforeAll(async () => {
  storage = await testStorage();
  await createTopic(storage, { name: topic, partitions: 1 });
  // Through intake objects in S3 (not small writes), so that reading the batches takes GETs.
  const producer = new Producer(withIntakeObjects(storage), new Sequencer(storage));
  // One record per batch, one batch per produce request: the log of a chatty, tiny producer.
  for (let i = 0; i < BATCHES; i += 20) {
    await Promise.all(Array.from({ length: 20 }, async (_, j) => {
      const value = Buffer.alloc(VALUE_BYTES, String.fromCharCode(97 + ((i + j) % 26)));
      await producer.persist(await producer.prepare(topic, [{ key: null, value, headers: [], partition: 0 }]), 'all');
    }));
  }
}, 120_000);

describe('fetch by bytes', () => {
  it('one fetch returns every small batch that maxRecords and maxBytes allow, not 64 of them', async () => {
    const { fetcher } = observedFetcher();
    const page = await fetcher.fetch({ topic, partition: 0, offset: 0, maxRecords: 10_000, maxBytes: 4 << 20, waitMs: 0 });
    expect(page.records.map((r) => r.offset)).toEqual(Array.from({ length: BATCHES }, (_, i) => i));
    expect(page.nextOffset).toBe(BATCHES);
  });

  it('stops at maxBytes and at maxRecords wherever they fall, and resumes exactly there', async () => {
    const { fetcher } = observedFetcher();
    const byBytes = await fetcher.fetch({ topic, partition: 0, offset: 7, maxRecords: 10_000, maxBytes: 150 * VALUE_BYTES, waitMs: 0 });
    expect(byBytes.records.map((r) => r.offset)).toEqual(Array.from({ length: 150 }, (_, i) => 7 + i));
    const byRecords = await fetcher.fetch({ topic, partition: 0, offset: byBytes.nextOffset, maxRecords: 100, maxBytes: 4 << 20, waitMs: 0 });
    expect(byRecords.records.map((r) => r.offset)).toEqual(Array.from({ length: 100 }, (_, i) => 157 + i));
  });

  it('keeps at most MAX_PARALLEL_GETS batch GETs in flight', async () => {
    const { fetcher, gets } = observedFetcher();
    await fetcher.fetch({ topic, partition: 0, offset: 0, maxRecords: 10_000, maxBytes: 4 << 20, waitMs: 0 });
    expect(gets.most).toBeGreaterThan(1);
    expect(gets.most).toBeLessThanOrEqual(MAX_PARALLEL_GETS);
  });

  it('a fetch that a few batches satisfy reads no more of them', async () => {
    const { fetcher, calls } = observedFetcher();
    const page = await fetcher.fetch({ topic, partition: 0, offset: 10, maxRecords: 3, maxBytes: 4 << 20, waitMs: 0 });
    expect(page.records.map((r) => r.offset)).toEqual([10, 11, 12]);
    expect(calls.total('s3.GetObject')).toBe(3);
  });
});
