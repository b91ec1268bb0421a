// Idempotent produce over HTTP API v1 against the emulators: retries at every step answer with the
// original offsets and write nothing twice; gaps, reordering, old epochs and unknown ids are refused
// with nothing written; pipelined requests land in sequence order.
import { beforeAll, describe, expect, it } from 'vitest';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { Api, expectError, startApi, type ProduceRecordInput } from '../api/client.ts';

let api: Api;
beforeAll(async () => {
  api = await startApi();
});

let topics = 0;
async function topic(partitions = 1): Promise<string> {
  const name = `idem-${topics++}`;
  await api.createTopic(name, partitions);
  return name;
}

async function initProducer(body: Record<string, unknown> = {}): Promise<{ producerId: number; producerEpoch: number }> {
  const res = await api.call('POST', '/v1/producers', body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

function records(n: number, prefix: string, partition = 0): ProduceRecordInput[] {
  return Array.from({ length: n }, (_, i) => ({ value: `${prefix}-${i}`, partition }));
}

const send = (name: string, producer: { producerId: number; producerEpoch: number }, recs: ProduceRecordInput[], sequences: Array<{ partition: number; baseSequence: number }>, extra: Record<string, unknown> = {}) =>
  api.produceRaw(name, { records: recs, ...producer, sequences, ...extra });

async function values(name: string, partition = 0): Promise<string[]> {
  return (await api.fetchAll(name, partition)).map((r) => r.value!);
}

describe('idempotent produce', () => {
  it('POST /v1/producers returns a fresh producer id at epoch 0', async () => {
    const a = await initProducer();
    const b = await initProducer();
    expect(a.producerEpoch).toBe(0);
    expect(Number.isSafeInteger(a.producerId) && a.producerId > 0).toBe(true);
    expect(b.producerId).not.toBe(a.producerId);
  });

  it('a retry of a committed batch returns the original offsets and timestamps and writes nothing', async () => {
    const name = await topic();
    const producer = await initProducer();
    const first = await send(name, producer, records(3, 'a'), [{ partition: 0, baseSequence: 0 }]);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const retry = await send(name, producer, records(3, 'a'), [{ partition: 0, baseSequence: 0 }]);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body.offsets).toEqual(first.body.offsets);
    const next = await send(name, producer, records(2, 'b'), [{ partition: 0, baseSequence: 3 }]);
    expect(next.body.offsets.map((o: { offset: number }) => o.offset)).toEqual([3, 4]);
    expect(await values(name)).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
  });

  it('concurrent attempts of one batch (a retry racing a slow first attempt) commit it once, both answering the same offsets', async () => {
    const name = await topic();
    const producer = await initProducer();
    const attempts = await Promise.all(Array.from({ length: 6 }, () => send(name, producer, records(4, 'x'), [{ partition: 0, baseSequence: 0 }])));
    for (const a of attempts) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const offsets = attempts.map((a) => JSON.stringify(a.body.offsets.map((o: { offset: number }) => o.offset)));
    expect(new Set(offsets).size).toBe(1);
    expect(await values(name)).toEqual(['x-0', 'x-1', 'x-2', 'x-3']);
  });

  it('a multi-partition request retried after a partial commit completes the rest and duplicates nothing', async () => {
    const name = await topic(2);
    const producer = await initProducer();
    const t = await getTopic(api.storage, name);
    // The first attempt reached partition 0 only: as if partition 1's commit had failed.
    const partial = await send(name, producer, records(2, 'p0', 0), [{ partition: 0, baseSequence: 0 }]);
    expect(partial.status).toBe(200);
    const whole = [...records(2, 'p0', 0), ...records(2, 'p1', 1)];
    const retry = await send(name, producer, whole, [{ partition: 0, baseSequence: 0 }, { partition: 1, baseSequence: 0 }]);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body.offsets.slice(0, 2)).toEqual(partial.body.offsets);
    expect(await values(name, 0)).toEqual(['p0-0', 'p0-1']);
    expect(await values(name, 1)).toEqual(['p1-0', 'p1-1']);
    expect(logPartitionKey(t.topicId, 0)).toContain(t.topicId);
  });

  it('a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER after waiting for the missing batch, and nothing is written', async () => {
    const name = await topic();
    const producer = await initProducer();
    await send(name, producer, records(1, 'a'), [{ partition: 0, baseSequence: 0 }]);
    const gap = await send(name, producer, records(1, 'c'), [{ partition: 0, baseSequence: 5 }]);
    expectError(gap, 409, 'OUT_OF_ORDER_SEQUENCE_NUMBER', ['next expected is 1']);
    expect(await values(name)).toEqual(['a-0']);
  });

  it('pipelined requests sent out of order land in sequence order', async () => {
    const name = await topic();
    const producer = await initProducer();
    const later = send(name, producer, records(2, 'second'), [{ partition: 0, baseSequence: 2 }]);
    await new Promise((r) => setTimeout(r, 100));
    const earlier = send(name, producer, records(2, 'first'), [{ partition: 0, baseSequence: 0 }]);
    const [a, b] = await Promise.all([earlier, later]);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(b.status, JSON.stringify(b.body)).toBe(200);
    expect(await values(name)).toEqual(['first-0', 'first-1', 'second-0', 'second-1']);
  });

  it('an unknown producer id is UNKNOWN_PRODUCER_ID; an unknown partition state with a sequence past 0 too', async () => {
    const name = await topic();
    expectError(await send(name, { producerId: 123456789, producerEpoch: 0 }, records(1, 'a'), [{ partition: 0, baseSequence: 0 }]), 404, 'UNKNOWN_PRODUCER_ID', ['123456789']);
    const producer = await initProducer();
    expectError(await send(name, producer, records(1, 'a'), [{ partition: 0, baseSequence: 7 }]), 404, 'UNKNOWN_PRODUCER_ID', ['not 0']);
    expect(await values(name)).toEqual([]);
  });

  it('refuses requests whose sequences do not cover exactly the partitions written, or unrouted records, before writing', async () => {
    const name = await topic(2);
    const producer = await initProducer();
    expectError(await send(name, producer, records(1, 'a', 0), [{ partition: 1, baseSequence: 0 }]), 400, 'INVALID_SEQUENCES', ['missing 0']);
    expectError(await send(name, producer, [{ value: 'no route' }], [{ partition: 0, baseSequence: 0 }]), 400, 'INVALID_REQUEST', ['neither a partition nor a key']);
    expectError(await api.produceRaw(name, { records: records(1, 'a'), producerId: producer.producerId }), 400, 'INVALID_REQUEST', ['go together']);
    expectError(await send(name, producer, records(1, 'a'), [{ partition: 0, baseSequence: 0 }], { acks: '0' }), 400, 'INVALID_REQUEST', ['acks']);
    expect(await values(name, 0)).toEqual([]);
  });

  it('a batch retried with a different record count is refused', async () => {
    const name = await topic();
    const producer = await initProducer();
    await send(name, producer, records(2, 'a'), [{ partition: 0, baseSequence: 0 }]);
    expectError(await send(name, producer, records(3, 'a'), [{ partition: 0, baseSequence: 0 }]), 400, 'INVALID_SEQUENCE', ['batch of 2']);
  });

  it('answers DUPLICATE_SEQUENCE_NUMBER for a retry older than the batches kept', async () => {
    const name = await topic();
    const producer = await initProducer();
    for (let seq = 0; seq < 7; seq++) expect((await send(name, producer, records(1, `r${seq}`), [{ partition: 0, baseSequence: seq }])).status).toBe(200);
    expectError(await send(name, producer, records(1, 'r0'), [{ partition: 0, baseSequence: 0 }]), 409, 'DUPLICATE_SEQUENCE_NUMBER', ['last 5']);
    expect((await send(name, producer, records(1, 'r2'), [{ partition: 0, baseSequence: 2 }])).body.offsets[0].offset).toBe(2);
  });
});
