// Produce and fetch over HTTP API v1: encodings, ordering, routing, paging, long-poll, acks.
import { beforeAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../lib/partitioner/partitioner.ts';
import { Api, b64, eventually, expectError, startApi, type FetchedRecord, type ProduceRecordInput } from './client.ts';

let api: Api;
beforeAll(async () => {
  api = await startApi();
});

const contentOf = (r: FetchedRecord) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp });

describe('round trips', () => {
  it('utf8: keys, values, null key/value, empty strings, headers, explicit timestamps', async () => {
    await api.createTopic('utf8', 1);
    const records: Array<ProduceRecordInput & { timestamp: number }> = [
      { key: 'k-1', value: 'plain', headers: { trace: 'abc', empty: '' }, timestamp: 1_700_000_000_000 },
      { key: null, value: 'no key', timestamp: 0 },
      { key: 'no value', value: null, timestamp: Number.MAX_SAFE_INTEGER },
      { key: '', value: '', timestamp: 5 },
      { value: 'ünïcödé ✓ 🚀 \u0000 \ufffd "quoted"\n', headers: { 'h-ü': '🚀', '': 'empty name' }, timestamp: 1 },
    ];
    const offsets = await api.produce('utf8', records);
    expect(offsets).toEqual(records.map((r, i) => ({ partition: 0, offset: i, timestamp: r.timestamp })));
    const fetched = await api.fetch('utf8', 0, { offset: 0 });
    expect(fetched).toMatchObject({ nextOffset: 5, highWatermark: 5, logStartOffset: 0, gaps: [] });
    expect(fetched.records.map((r) => ({ partition: r.partition, offset: r.offset }))).toEqual(offsets.map(({ partition, offset }) => ({ partition, offset })));
    expect(fetched.records.map(contentOf)).toEqual(records.map((r) => ({ key: r.key ?? null, value: r.value, headers: r.headers ?? {}, timestamp: r.timestamp })));
  });

  it('base64: arbitrary bytes (every byte value, invalid UTF-8) round trip; headers stay strings', async () => {
    await api.createTopic('binary', 1);
    const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const invalidUtf8 = Uint8Array.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]);
    const records = [
      { key: b64(allBytes), value: b64(invalidUtf8), headers: { 'content-type': 'application/octet-stream' } },
      { key: null, value: b64(new Uint8Array(0)) },
      { key: b64('x'), value: null },
      { key: b64(Uint8Array.from([0])), value: b64(Uint8Array.from([1, 2])) },
    ];
    const before = Date.now();
    const offsets = await api.produce('binary', records, { encoding: 'base64' });
    expect(offsets.map((o) => o.offset)).toEqual([0, 1, 2, 3]);
    // Without an explicit timestamp the broker assigns one (create time of the request).
    for (const o of offsets) expect(o.timestamp).toBeGreaterThanOrEqual(before);
    const fetched = await api.fetch('binary', 0, { offset: 0, encoding: 'base64' });
    expect(fetched.records.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual(records.map((r) => ({ key: r.key, value: r.value, headers: r.headers ?? {} })));
    expect(fetched.records.map((r) => r.timestamp)).toEqual(offsets.map((o) => o.timestamp));
    // Fetching as utf8 decodes the same bytes as text.
    const asText = await api.fetch('binary', 0, { offset: 2, encoding: 'utf8' });
    expect(asText.records.map((r) => [r.key, r.value])).toEqual([['x', null], ['\u0000', '\u0001\u0002']]);
  });

  it('JSON-escaped surrogate pairs are characters like any other', async () => {
    await api.createTopic('escaped', 1);
    const res = await api.produceRaw('escaped', '{"records":[{"key":"\\ud83d\\ude80","value":"x\\u00e9\\ud83d\\ude80","headers":{"\\ud83d\\ude80":"\\ud83d\\ude80"}}]}');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const page = await api.fetch('escaped', 0, { offset: 0 });
    expect(page.records.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual([{ key: '🚀', value: 'xé🚀', headers: { '🚀': '🚀' } }]);
    const raw = await api.fetch('escaped', 0, { offset: 0, encoding: 'base64' });
    expect(raw.records[0]!.key).toBe(b64(Buffer.from([0xf0, 0x9f, 0x9a, 0x80])));
  });

  it('utf8 produce, base64 fetch and vice versa see the same bytes', async () => {
    await api.createTopic('mixed-encoding', 1);
    await api.produce('mixed-encoding', [{ key: 'clé', value: 'välue' }]);
    await api.produce('mixed-encoding', [{ key: b64('k'), value: b64('v') }], { encoding: 'base64' });
    const asBase64 = await api.fetch('mixed-encoding', 0, { offset: 0, encoding: 'base64' });
    expect(asBase64.records.map((r) => [r.key, r.value])).toEqual([[b64('clé'), b64('välue')], [b64('k'), b64('v')]]);
    const asText = await api.fetch('mixed-encoding', 0, { offset: 0 });
    expect(asText.records.map((r) => [r.key, r.value])).toEqual([['clé', 'välue'], ['k', 'v']]);
  });
});

describe('offsets and routing', () => {
  it('offsets come in request order and are contiguous per partition across requests', async () => {
    await api.createTopic('ordered', 2);
    const first = await api.produce('ordered', Array.from({ length: 5 }, (_, i) => ({ value: `a${i}`, partition: 1 })));
    const second = await api.produce('ordered', Array.from({ length: 3 }, (_, i) => ({ value: `b${i}`, partition: 1 })));
    expect(first.map((o) => [o.partition, o.offset])).toEqual([0, 1, 2, 3, 4].map((i) => [1, i]));
    expect(second.map((o) => [o.partition, o.offset])).toEqual([5, 6, 7].map((i) => [1, i]));
    expect((await api.fetchAll('ordered', 1)).map((r) => r.value)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2']);
  });

  it('a request with interleaved explicit partitions gets per-partition contiguous offsets in request order', async () => {
    await api.createTopic('interleaved', 3);
    await api.produce('interleaved', [{ value: 'seed', partition: 2 }]);
    const plan = [0, 2, 1, 0, 2, 2, 0, 1];
    const offsets = await api.produce('interleaved', plan.map((partition, i) => ({ value: `r${i}`, partition })));
    expect(offsets.map((o) => o.partition)).toEqual(plan);
    const next = new Map([[0, 0], [1, 0], [2, 1]]);
    for (const [i, o] of offsets.entries()) {
      expect(o.offset, `record ${i}`).toBe(next.get(o.partition));
      next.set(o.partition, o.offset + 1);
    }
    for (const partition of [0, 1, 2]) {
      const fetched = await api.fetchAll('interleaved', partition);
      const expected = offsets.flatMap((o, i) => (o.partition === partition ? [{ offset: o.offset, value: `r${i}` }] : []));
      expect(fetched.filter((r) => r.value !== 'seed').map((r) => ({ offset: r.offset, value: r.value }))).toEqual(expected);
    }
  });

  it("keyed records land on Kafka's murmur2 partition, in order per key", async () => {
    await api.createTopic('keyed', 7);
    const keys = Array.from({ length: 40 }, (_, i) => `customer-${i * 7919}`);
    keys.push('', 'ü-key', '🚀');
    const records = keys.flatMap((key) => [{ key, value: `${key}#1` }, { key, value: `${key}#2` }]);
    const offsets = await api.produce('keyed', records);
    const expected = records.map((r) => partitionForKey(Buffer.from(r.key, 'utf8'), 7));
    expect(offsets.map((o) => o.partition)).toEqual(expected);
    expect(new Set(expected).size).toBeGreaterThan(3);
    for (const partition of new Set(expected)) {
      const fetched = await api.fetchAll('keyed', partition);
      expect(fetched.map((r) => r.value)).toEqual(records.filter((_, i) => expected[i] === partition).map((r) => r.value));
    }
  });

  it('base64 keys are hashed as their decoded bytes', async () => {
    await api.createTopic('keyed-binary', 5);
    const keys = Array.from({ length: 20 }, (_, i) => Uint8Array.from([i, 0xff - i, 0x80, i * 3]));
    const offsets = await api.produce('keyed-binary', keys.map((k) => ({ key: b64(k), value: null })), { encoding: 'base64' });
    expect(offsets.map((o) => o.partition)).toEqual(keys.map((k) => partitionForKey(k, 5)));
  });

  it('unkeyed records of one request share one partition; successive requests rotate over all partitions', async () => {
    await api.createTopic('sticky', 4);
    const chosen: number[] = [];
    for (let request = 0; request < 4; request++) {
      const offsets = await api.produce('sticky', Array.from({ length: 6 }, (_, i) => ({ value: `q${request}-${i}`, ...(i % 2 ? { key: null } : {}) })));
      const partitions = new Set(offsets.map((o) => o.partition));
      expect(partitions.size, JSON.stringify(offsets)).toBe(1);
      expect(offsets.map((o) => o.offset)).toEqual([0, 1, 2, 3, 4, 5]);
      chosen.push(offsets[0]!.partition);
    }
    expect(new Set(chosen).size, JSON.stringify(chosen)).toBe(4);
  });

  it('unkeyed rotation is per topic: interleaved requests to two topics still rotate over each', async () => {
    await api.createTopic('rotate-a', 2);
    await api.createTopic('rotate-b', 2);
    const chosen: Record<string, number[]> = { 'rotate-a': [], 'rotate-b': [] };
    for (let i = 0; i < 4; i++) {
      for (const topic of ['rotate-a', 'rotate-b']) {
        const [offset] = await api.produce(topic, [{ value: `${i}` }]);
        chosen[topic]!.push(offset!.partition);
      }
    }
    for (const partitions of Object.values(chosen)) {
      expect(new Set(partitions).size, JSON.stringify(chosen)).toBe(2);
    }
  });

  it('concurrent requests to one partition get distinct offsets, contiguous per request, each record read once', async () => {
    await api.createTopic('concurrent', 2);
    const requests = 8;
    const perRequest = 3;
    const replies = await Promise.all(Array.from({ length: requests }, (_, i) =>
      api.produce('concurrent', Array.from({ length: perRequest }, (_, j) => ({ value: `${i}-${j}`, partition: 1 })))));
    for (const offsets of replies) {
      expect(offsets.map((o) => o.offset - offsets[0]!.offset)).toEqual([0, 1, 2]);
    }
    const all = replies.flatMap((offsets) => offsets.map((o) => o.offset)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: requests * perRequest }, (_, i) => i));
    const fetched = await api.fetchAll('concurrent', 1, 0, { maxRecords: 7 });
    expect(fetched.map((r) => r.offset)).toEqual(all);
    const byValue = new Map(fetched.map((r) => [r.value, r.offset]));
    replies.forEach((offsets, i) => offsets.forEach((o, j) => expect(byValue.get(`${i}-${j}`)).toBe(o.offset)));
  });

  it('explicit partition wins over key; keyed and unkeyed records mix in one request', async () => {
    await api.createTopic('mixed-routing', 6);
    const records = [
      { key: 'alpha', value: '1' },
      { value: '2' },
      { key: 'alpha', value: '3', partition: 5 },
      { value: '4' },
      { key: 'beta', value: '5' },
    ];
    const offsets = await api.produce('mixed-routing', records);
    expect(offsets[0]!.partition).toBe(partitionForKey(Buffer.from('alpha'), 6));
    expect(offsets[2]!.partition).toBe(5);
    expect(offsets[4]!.partition).toBe(partitionForKey(Buffer.from('beta'), 6));
    expect(offsets[1]!.partition).toBe(offsets[3]!.partition);
  });

  it('accepts exactly the maximum of 10000 records in one request', async () => {
    await api.createTopic('full-request', 1);
    const offsets = await api.produce('full-request', Array.from({ length: 10_000 }, (_, i) => ({ value: String(i) })));
    expect(offsets.at(-1)).toMatchObject({ partition: 0, offset: 9999 });
    const last = await api.fetch('full-request', 0, { offset: 9998 });
    expect(last.records.map((r) => r.value)).toEqual(['9998', '9999']);
  });
});

describe('fetch paging', () => {
  const values: string[] = [];
  beforeAll(async () => {
    await api.createTopic('paged', 1);
    // Several requests, so pages cross index entries (batches) as well as records within them.
    for (const size of [3, 1, 7, 2, 5]) {
      const batch = Array.from({ length: size }, (_, i) => `rec-${values.length + i}-${'x'.repeat(90)}`);
      values.push(...batch);
      await api.produce('paged', batch.map((value) => ({ value })));
    }
  });

  it.each([1, 2, 4, 7, 100])('maxRecords=%i pages through everything exactly once', async (maxRecords) => {
    const offsets: number[] = [];
    let offset = 0;
    for (;;) {
      const page = await api.fetch('paged', 0, { offset, maxRecords });
      expect(page.records.length).toBeGreaterThan(0);
      expect(page.records.length).toBeLessThanOrEqual(maxRecords);
      expect(page.records[0]!.offset).toBe(offset);
      expect(page.nextOffset).toBe(page.records.at(-1)!.offset + 1);
      offsets.push(...page.records.map((r) => r.offset));
      offset = page.nextOffset;
      if (offset === page.highWatermark) break;
    }
    expect(offsets).toEqual(values.map((_, i) => i));
  });

  it('maxBytes bounds a page but always returns at least one record', async () => {
    const recordBytes = Buffer.byteLength(values[0]!);
    // A limit below one record still yields one record per fetch.
    const tiny = await api.fetchAll('paged', 0, 0, { maxBytes: 1 });
    expect(tiny.map((r) => r.value)).toEqual(values);
    const single = await api.fetch('paged', 0, { offset: 0, maxBytes: 1 });
    expect(single.records).toHaveLength(1);
    // Room for two and a half records: pages of at most two.
    let offset = 0;
    const seen: string[] = [];
    while (offset < values.length) {
      const page = await api.fetch('paged', 0, { offset, maxBytes: Math.floor(recordBytes * 2.5) });
      expect(page.records.length).toBeGreaterThanOrEqual(1);
      expect(page.records.length).toBeLessThanOrEqual(2);
      seen.push(...page.records.map((r) => r.value!));
      offset = page.nextOffset;
    }
    expect(seen).toEqual(values);
  });

  it('many small batches (more index entries than one fetch reads) page through exactly once', async () => {
    await api.createTopic('many-batches', 1);
    const count = 70;
    const valueAt = new Map<number, string>();
    for (let i = 0; i < count; i += 10) {
      // A few at a time: one batch (index entry) per request.
      const replies = await Promise.all([...Array(10).keys()].map((j) => api.produce('many-batches', [{ value: `m${i + j}` }], { acks: '1' })));
      replies.forEach(([o], j) => valueAt.set(o!.offset, `m${i + j}`));
    }
    const whole = await api.fetchAll('many-batches', 0, 0, { maxRecords: 10_000 });
    expect(whole.map((r) => r.offset)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(whole.map((r) => r.value)).toEqual(whole.map((r) => valueAt.get(r.offset)));
    // Starting points below and above the stored high watermark both work.
    for (const from of [1, 37, 64, count - 1]) {
      const page = await api.fetch('many-batches', 0, { offset: from, maxRecords: 3 });
      expect(page.records.map((r) => r.offset)).toEqual([from, from + 1, from + 2].filter((o) => o < count));
    }
  });

  it('a fetch from the middle of a batch starts at the requested offset', async () => {
    const page = await api.fetch('paged', 0, { offset: 6, maxRecords: 3 });
    expect(page.records.map((r) => r.offset)).toEqual([6, 7, 8]);
    expect(page.records.map((r) => r.value)).toEqual(values.slice(6, 9));
  });

  it('a fetch at the high watermark without waitMs is empty with nextOffset = offset', async () => {
    const hwm = values.length;
    const page = await api.fetch('paged', 0, { offset: hwm });
    expect(page).toEqual({ records: [], nextOffset: hwm, highWatermark: hwm, lastStableOffset: hwm, logStartOffset: 0, gaps: [], abortedTransactions: [] });
    const explicitZero = await api.fetch('paged', 0, { offset: hwm, waitMs: 0 });
    expect(explicitZero.records).toEqual([]);
  });

  it.each([
    ['above the high watermark', 1],
    ['far above the high watermark', 1_000_000],
  ])('an offset %s is 416 OFFSET_OUT_OF_RANGE naming both bounds', async (_, delta) => {
    const hwm = values.length;
    const res = await api.fetchRaw('paged', 0, `offset=${hwm + delta}`);
    expectError(res, 416, 'OFFSET_OUT_OF_RANGE', [String(hwm + delta), `${0} (log start)`, `${hwm} (high watermark)`]);
  });
});

describe('offset below the log start', () => {
  it('is 416 OFFSET_OUT_OF_RANGE naming both bounds', async () => {
    await api.createTopic('truncated', 1);
    await api.produce('truncated', Array.from({ length: 6 }, (_, i) => ({ value: `t${i}` })));
    const moved = await api.app.request('/v1/topics/truncated/delete-records', { method: 'POST', body: JSON.stringify({ partitions: [{ partition: 0, offset: 4 }] }) });
    expect(await moved.json()).toEqual({ partitions: [{ partition: 0, logStartOffset: 4 }] });
    expect((await api.describe('truncated')).partitions).toMatchObject([{ partition: 0, logStartOffset: 4, highWatermark: 6 }]);
    const res = await api.fetchRaw('truncated', 0, 'offset=3');
    expectError(res, 416, 'OFFSET_OUT_OF_RANGE', ['offset 3', '4 (log start)', '6 (high watermark)']);
    const ok = await api.fetch('truncated', 0, { offset: 4 });
    expect(ok.logStartOffset).toBe(4);
    expect(ok.records.map((r) => r.value)).toEqual(['t4', 't5']);
  });
});

describe('long-poll', () => {
  it('a fetch waiting at the high watermark returns records produced while it waits', async () => {
    await api.createTopic('polled', 2);
    await api.produce('polled', [{ value: 'before', partition: 1 }]);
    const waiting = api.fetch('polled', 1, { offset: 1, waitMs: 5000 });
    // Give the poll a moment to start against the empty tail (correctness does not depend on it).
    await new Promise((r) => setTimeout(r, 50));
    await api.produce('polled', [{ value: 'during-1', partition: 1, headers: { n: '1' } }, { value: 'during-2', partition: 1 }]);
    const page = await waiting;
    // One request to one partition is one batch: it becomes visible as a whole.
    expect(page.records.map((r) => [r.partition, r.offset, r.value])).toEqual([[1, 1, 'during-1'], [1, 2, 'during-2']]);
    expect(page.records[0]!.headers).toEqual({ n: '1' });
    expect(page.nextOffset).toBe(3);
  });

  it('a fetch waiting on one partition ignores records produced to another', async () => {
    await api.createTopic('polled-elsewhere', 2);
    const waiting = api.fetch('polled-elsewhere', 0, { offset: 0, waitMs: 300 });
    await api.produce('polled-elsewhere', [{ value: 'other', partition: 1 }]);
    expect(await waiting).toEqual({ records: [], nextOffset: 0, highWatermark: 0, lastStableOffset: 0, logStartOffset: 0, gaps: [], abortedTransactions: [] });
  });

  it('a fetch that times out returns an empty page at the same offset', async () => {
    await api.createTopic('quiet', 1);
    await api.produce('quiet', [{ value: 'only' }]);
    const page = await api.fetch('quiet', 0, { offset: 1, waitMs: 150 });
    expect(page).toEqual({ records: [], nextOffset: 1, highWatermark: 1, lastStableOffset: 1, logStartOffset: 0, gaps: [], abortedTransactions: [] });
  });

  it('a fetch below the high watermark with waitMs answers with the data at once', async () => {
    const page = await api.fetch('quiet', 0, { offset: 0, waitMs: 20_000 });
    expect(page.records.map((r) => r.value)).toEqual(['only']);
  });
});

describe('acks', () => {
  it('acks=0 answers 202 {accepted:n} and the records become fetchable', async () => {
    await api.createTopic('fire-and-forget', 1);
    const res = await api.produceRaw('fire-and-forget', { acks: '0', records: [{ value: 'f1' }, { key: 'k', value: 'f2' }, { value: 'f3', partition: 0 }] });
    expect(res).toEqual({ status: 202, body: { accepted: 3 } });
    const page = await eventually(async () => {
      const p = await api.fetch('fire-and-forget', 0, { offset: 0 });
      return p.highWatermark >= 3 ? p : undefined;
    });
    expect(page.records.map((r) => [r.offset, r.key, r.value])).toEqual([[0, null, 'f1'], [1, 'k', 'f2'], [2, null, 'f3']]);
  });

  it.each(['1', 'all'] as const)('acks=%s returns offsets and the records are fetchable', async (acks) => {
    const topic = `acks-${acks}`;
    await api.createTopic(topic, 1);
    const offsets = await api.produce(topic, [{ value: 'a' }, { value: 'b' }], { acks });
    expect(offsets.map((o) => o.offset)).toEqual([0, 1]);
    const page = await eventually(async () => {
      const p = await api.fetch(topic, 0, { offset: 0 });
      return p.highWatermark >= 2 ? p : undefined;
    });
    expect(page.records.map((r) => r.value)).toEqual(['a', 'b']);
  });

  it('acks=all (and the default) is read-your-write: visible as soon as produce returns', async () => {
    await api.createTopic('ryw', 3);
    for (let i = 0; i < 5; i++) {
      const [explicitAll] = await api.produce('ryw', [{ value: `all-${i}`, partition: i % 3 }], { acks: 'all' });
      const page = await api.fetch('ryw', explicitAll!.partition, { offset: explicitAll!.offset });
      expect(page.records.map((r) => r.value)).toEqual([`all-${i}`]);
      const [byDefault] = await api.produce('ryw', [{ value: `default-${i}`, partition: i % 3 }]);
      const described = await api.describe('ryw');
      expect(described.partitions[byDefault!.partition]!.highWatermark).toBe(byDefault!.offset + 1);
    }
  });
});
