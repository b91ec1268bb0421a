// Delivery guarantees of poll over the HTTP API: a batch counts as delivered only once the next poll
// (or the leave) acknowledges its pollId, and offsets belong to one incarnation of a topic.
import { beforeAll, describe, expect, it } from 'vitest';
import { produceNumbered, startGroupApi, type GroupApi, type Member, type PolledRecord } from './group-client.ts';

let api: GroupApi;
beforeAll(async () => {
  api = await startGroupApi();
});

const offsets = (records: PolledRecord[]) => records.map((r) => r.offset);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Polls, then loses the response: the client keeps the pollId it had, as a retry would send. */
async function pollLosingResponse(m: Member, body: Record<string, unknown>): Promise<PolledRecord[]> {
  const ackBefore = m.pollId;
  const records = await m.poll(body);
  m.pollId = ackBefore;
  return records;
}

describe('consumer groups: acknowledged delivery', () => {
  it('redelivers a batch whose response was lost, and does not commit it', async () => {
    await api.createTopic('lossy', 1);
    await produceNumbered(api, 'lossy', 20);
    const m = await api.join('lossy-g', { topics: ['lossy'], autoOffsetReset: 'earliest' });

    expect(offsets(await pollLosingResponse(m, { maxRecords: 5 }))).toEqual(range(0, 5));
    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(0, 5)); // the retry: the same batch again
    expect((await api.committed('lossy-g'))['lossy:0']).toBeNull();

    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(5, 10)); // acknowledges 0-4
    expect((await api.committed('lossy-g'))['lossy:0']).toBe(5);
    // Lost again, now with an acknowledged batch before it: the retry carries the older ack.
    expect(offsets(await pollLosingResponse(m, { maxRecords: 5 }))).toEqual(range(10, 15));
    expect((await api.committed('lossy-g'))['lossy:0']).toBe(10);
    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(10, 15));
    expect((await api.committed('lossy-g'))['lossy:0']).toBe(10);
    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(15, 20));
    expect((await api.committed('lossy-g'))['lossy:0']).toBe(15);
  });

  it('moves on, and commits, only what was acknowledged; without autoCommit it commits nothing', async () => {
    await api.createTopic('acked', 1);
    await produceNumbered(api, 'acked', 10);
    const auto = await api.join('acked-auto', { topics: ['acked'], autoOffsetReset: 'earliest' });
    const manual = await api.join('acked-manual', { topics: ['acked'], autoOffsetReset: 'earliest' });
    for (const [m, group, committedAfter] of [[auto, 'acked-auto', 4], [manual, 'acked-manual', null]] as const) {
      const autoCommit = m === auto;
      expect(offsets(await m.poll({ maxRecords: 4, autoCommit }))).toEqual(range(0, 4));
      expect(offsets(await m.poll({ maxRecords: 4, autoCommit }))).toEqual(range(4, 8));
      expect((await api.committed(group))['acked:0']).toBe(committedAfter);
    }
    // An ack that names no pending batch (a typo, or a batch already settled) is no ack.
    expect(offsets(await auto.poll({ maxRecords: 4, ack: '6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11' }))).toEqual(range(4, 8));
    expect((await api.committed('acked-auto'))['acked:0']).toBe(4);
  });

  it('on leave, commits the last batch only if the leave acknowledges it; the next owner gets it again otherwise', async () => {
    await api.createTopic('parting', 1);
    await produceNumbered(api, 'parting', 30);
    const acknowledging = await api.join('parting-ack', { topics: ['parting'], autoOffsetReset: 'earliest' });
    await acknowledging.poll({ maxRecords: 10 });
    await acknowledging.poll({ maxRecords: 10 });
    expect((await acknowledging.leave()).status).toBe(204); // carries the last pollId
    expect((await api.committed('parting-ack'))['parting:0']).toBe(20);

    const silent = await api.join('parting-silent', { topics: ['parting'], autoOffsetReset: 'earliest' });
    await silent.poll({ maxRecords: 10 });
    await pollLosingResponse(silent, { maxRecords: 10 }); // commits 0-9; 10-19 never arrived
    expect((await silent.leave()).status).toBe(204); // acknowledges 0-9 again: already settled
    expect((await api.committed('parting-silent'))['parting:0']).toBe(10);
    const successor = await api.join('parting-silent', { topics: ['parting'], autoOffsetReset: 'earliest' });
    expect(offsets(await successor.poll({ maxRecords: 10 }))).toEqual(range(10, 20));
  });

  it.each([0, 1])('keeps concurrent duplicate polls of one member safe: whichever response the client keeps (#%i), nothing is skipped', async (kept) => {
    const topic = `twin-${kept}`;
    const group = `${topic}-g`;
    await api.createTopic(topic, 2);
    const values = await produceNumbered(api, topic, 40);
    const m = await api.join(group, { topics: [topic], autoOffsetReset: 'earliest' });
    const seen = await m.poll({ maxRecords: 10 });

    // A client times out and retries: two polls with the same ack run at once.
    const replies = await Promise.all([m.pollRaw({ maxRecords: 10 }), m.pollRaw({ maxRecords: 10 })]);
    for (const reply of replies) expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    await api.expectExclusiveOwnership(group);
    // The acknowledged first batch is committed once; neither duplicate's records are.
    const acknowledged = new Map<number, number>();
    for (const r of seen) acknowledged.set(r.partition, Math.max(acknowledged.get(r.partition) ?? 0, r.offset + 1));
    const committedNow = await api.committed(group);
    for (const partition of [0, 1]) expect(committedNow[`${topic}:${partition}`]).toBe(acknowledged.get(partition) ?? null);

    seen.push(...replies[kept]!.body.records);
    m.pollId = replies[kept]!.body.pollId;
    for (let round = 0; round < 20 && new Set(seen.map((r) => r.value)).size < values.length; round++) seen.push(...(await m.poll({ maxRecords: 10 })));
    expect([...new Set(seen.map((r) => r.value))].sort()).toEqual([...values].sort());
    // Per partition, what the client saw is the log in order, a suffix possibly repeated, never a gap.
    for (const partition of [0, 1]) {
      const got = seen.filter((r) => r.partition === partition).map((r) => r.offset);
      got.forEach((offset, i) => {
        if (i > 0) expect(offset).toBeLessThanOrEqual(got[i - 1]! + 1);
      });
    }
    await m.poll(); // acknowledges the last batch
    expect(Object.values(await api.committed(group)).reduce((n: number, o) => n + (o ?? 0), 0)).toBe(values.length);
  });
});

describe('consumer groups: topics deleted and re-created', () => {
  const recreate = async (topic: string) => {
    expect((await api.call('DELETE', `/v1/topics/${topic}`)).status).toBe(204);
    await api.createTopic(topic, 1);
  };

  it('a member resumes a re-created topic from its start, not at the old committed offset', async () => {
    await api.createTopic('reborn', 1);
    await produceNumbered(api, 'reborn', 5, 'old');
    const m = await api.join('reborn-g', { topics: ['reborn'], autoOffsetReset: 'earliest' });
    expect((await m.poll()).map((r) => r.value)).toEqual(['old0', 'old1', 'old2', 'old3', 'old4']);
    expect(await m.poll()).toEqual([]); // acknowledges and commits 5
    expect((await api.committed('reborn-g'))['reborn:0']).toBe(5);

    await recreate('reborn');
    const values = await produceNumbered(api, 'reborn', 8, 'new');
    // The old topic's offset is not the new topic's.
    expect((await api.describeGroup('reborn-g')).offsets).toEqual([expect.objectContaining({ topic: 'reborn', partition: 0, committedOffset: null, lag: null })]);
    expect((await m.poll()).map((r) => r.value)).toEqual(values);
    await m.poll();
    expect((await api.describeGroup('reborn-g')).offsets).toEqual([expect.objectContaining({ topic: 'reborn', partition: 0, committedOffset: 8, highWatermark: 8, lag: 0 })]);
  });

  it('a member joining after the re-creation ignores the old committed offset too', async () => {
    await api.createTopic('phoenix', 1);
    await produceNumbered(api, 'phoenix', 5, 'old');
    const first = await api.join('phoenix-g', { topics: ['phoenix'], autoOffsetReset: 'earliest' });
    await first.poll();
    expect((await first.leave()).status).toBe(204);
    expect((await api.committed('phoenix-g'))['phoenix:0']).toBe(5);

    await recreate('phoenix');
    const values = await produceNumbered(api, 'phoenix', 8, 'new');
    const second = await api.join('phoenix-g', { topics: ['phoenix'], autoOffsetReset: 'earliest' });
    expect((await second.poll()).map((r) => r.value)).toEqual(values);
  });
});
