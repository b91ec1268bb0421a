// Requests of one member that overlap, and processes whose topic cache is behind: an auto-commit
// racing the member's own heartbeat, retried polls whose late commits must not move offsets back,
// and topics deleted and re-created by another process.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { transition } from '../../lib/groups/reconcile.ts';
import { getTopic, getTopicCached } from '../../lib/topics/topic-store.ts';
import { expectError } from '../api/client.ts';
import { isGroupPut, isMemberCommit, produceNumbered, recreateBehindCache, startGroupApi, type GroupApi, type Member, type PolledRecord } from './group-client.ts';

let api: GroupApi;
beforeAll(async () => {
  api = await startGroupApi();
  await api.createTopic('elsewhere', 1);
});

const offsets = (records: PolledRecord[]) => records.map((r) => r.offset);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * A member at epoch 1 holding an acknowledgeable batch (offsets 0-4 of `topic`), in a group whose
 * epoch another member's join (to another topic) moved to 2: the member's next heartbeat moves it to
 * epoch 2 and keeps its partition.
 */
async function memberBehindGroupEpoch(topic: string, group: string): Promise<Member> {
  await api.createTopic(topic, 1);
  await produceNumbered(api, topic, 20);
  const m = await api.join(group, { topics: [topic], autoOffsetReset: 'earliest' });
  expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(0, 5));
  await api.join(group, { topics: ['elsewhere'] });
  expect(m.last.memberEpoch).toBe(1);
  return m;
}

describe('consumer groups: auto-commit racing the member\'s own heartbeat', () => {
  it('a poll whose member reached a new epoch after the poll read it still commits the acknowledged batch', async () => {
    const m = await memberBehindGroupEpoch('bumped', 'bumped-g');
    // The heartbeat (from another thread of the client) lands between the poll's read and its commit.
    const racing = api.interleaved(isMemberCommit, () => m.heartbeat());
    const res = await m.via(racing.api).pollRaw({ maxRecords: 5 });
    expect(racing.fired()).toBe(true);
    expect(m.last.memberEpoch).toBe(2);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(offsets(res.body.records)).toEqual(range(5, 10));
    expect(res.body.memberEpoch).toBe(2);
    expect((await api.committed('bumped-g'))['bumped:0']).toBe(5);
    await api.expectExclusiveOwnership('bumped-g');
  });

  it('a leave whose member reached a new epoch after the leave read it still commits the acknowledged batch', async () => {
    const m = await memberBehindGroupEpoch('parted', 'parted-g');
    const racing = api.interleaved(isMemberCommit, () => m.heartbeat());
    expect((await m.via(racing.api).leave()).status).toBe(204);
    expect(racing.fired()).toBe(true);
    expect((await api.committed('parted-g'))['parted:0']).toBe(5);
    expect((await api.store.read('parted-g'))!.members[m.id]).toBeUndefined();
  });

  it('a poll whose member left meanwhile is still refused as an unknown member, and commits nothing', async () => {
    const m = await memberBehindGroupEpoch('departed', 'departed-g');
    const racing = api.interleaved(isMemberCommit, () => api.call('DELETE', `/v1/groups/departed-g/members/${m.id}`));
    expectError(await m.via(racing.api).pollRaw({ maxRecords: 5 }), 409, 'UNKNOWN_MEMBER_ID');
    expect(racing.fired()).toBe(true);
    expect(await api.store.readOffsets('departed-g')).toEqual([]);
  });
});

/** Records every committed offset observed, per partition, in the order observed. */
class CommittedHistory {
  readonly seen = new Map<string, number[]>();
  constructor(private readonly group: string) {}

  async observe(): Promise<void> {
    for (const [tp, offset] of Object.entries(await api.committed(this.group))) {
      if (offset !== null) this.seen.set(tp, [...(this.seen.get(tp) ?? []), offset]);
    }
  }

  expectNonDecreasing(): void {
    for (const [tp, history] of this.seen) {
      history.forEach((offset, i) => expect(offset, `${tp} went back: ${history.join(' → ')}`).toBeGreaterThanOrEqual(history[i - 1] ?? 0));
    }
  }
}

describe('consumer groups: a late commit never moves a committed offset back', () => {
  it('a retried poll whose first copy commits after the client acknowledged a later batch leaves the offset where it was', async () => {
    await api.createTopic('retried', 1);
    await produceNumbered(api, 'retried', 20);
    const m = await api.join('retried-g', { topics: ['retried'], autoOffsetReset: 'earliest' });
    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(0, 5));

    // The client sends poll{ack} and times out; the first copy stalls just before its commit. The
    // retry (the second copy) commits 5 and returns 5-9; the client's next poll commits 10.
    const firstCopy = api.interleaved(isMemberCommit, async () => {
      expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(5, 10));
      expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(10, 15));
      expect((await api.committed('retried-g'))['retried:0']).toBe(10);
    });
    const late = await m.via(firstCopy.api).pollRaw({ maxRecords: 5 }); // the abandoned copy, acknowledging 0-4
    expect(firstCopy.fired()).toBe(true);
    expect(late.status, JSON.stringify(late.body)).toBe(200);
    expect((await api.committed('retried-g'))['retried:0']).toBe(10);

    // The late copy settled the client's pending batch (its ack matched nothing): 10-14 come again, none is skipped.
    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(10, 15));
    expect(offsets(await m.poll({ maxRecords: 5 }))).toEqual(range(15, 20));
    expect((await api.committed('retried-g'))['retried:0']).toBe(15);
  });

  it('keeps committed offsets non-decreasing, and skips nothing, under random duplicated polls whose abandoned copy lands late', async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({
        maxRecords: fc.integer({ min: 1, max: 8 }),
        // The abandoned first copy stalls before its n-th DynamoDB command (if it sends that many) ...
        stallAt: fc.constantFrom(0, 1, 2),
        // ... while the retry answers and the client goes on for this many polls; then it lands.
        pollsMeanwhile: fc.constantFrom(0, 1, 2),
        heartbeatMeanwhile: fc.boolean(),
      }), { minLength: 2, maxLength: 4 }),
      async (rounds) => {
        const topic = `dup-${run++}`;
        const group = `${topic}-g`;
        await api.createTopic(topic, 2);
        const values = await produceNumbered(api, topic, 20);
        const m = await api.join(group, { topics: [topic], autoOffsetReset: 'earliest' });
        const history = new CommittedHistory(group);
        const delivered: PolledRecord[] = [];
        for (const round of rounds) {
          delivered.push(...(await m.poll({ maxRecords: round.maxRecords })));
          await history.observe();
          const retry = async () => {
            delivered.push(...(await m.poll({ maxRecords: round.maxRecords })));
            await history.observe();
            if (round.heartbeatMeanwhile) expect((await m.heartbeat()).status).toBe(200);
            for (let i = 0; i < round.pollsMeanwhile; i++) {
              delivered.push(...(await m.poll({ maxRecords: round.maxRecords })));
              await history.observe();
            }
          };
          let sent = 0;
          const firstCopy = api.interleaved(() => sent++ === round.stallAt, retry);
          const abandoned = await m.via(firstCopy.api).pollRaw({ maxRecords: round.maxRecords });
          expect(abandoned.status, JSON.stringify(abandoned.body)).toBe(200);
          if (!firstCopy.fired()) await retry(); // the copy finished first: the retry is a plain duplicate
          await history.observe();
        }
        // Until a poll finds nothing new: it acknowledged the last batch, and the positions are at the end.
        for (let i = 0; i < 30; i++) {
          const records = await m.poll({ maxRecords: 8 });
          if (records.length === 0) break;
          delivered.push(...records);
        }
        await history.observe();
        history.expectNonDecreasing();
        expect([...new Set(delivered.map((r) => r.value))].sort()).toEqual([...values].sort());
        expect(await api.committed(group)).toEqual({ [`${topic}:0`]: expect.any(Number), [`${topic}:1`]: expect.any(Number) });
        expect(Object.values(await api.committed(group)).reduce((n: number, o) => n + (o ?? 0), 0)).toBe(values.length);
      },
    ), { numRuns: 6 });
  }, 240_000);
});

describe('consumer groups: topic incarnations are decided by consistent reads, not the topic cache', () => {
  it('a poll reads only the incarnation the group records: a topic re-created mid-poll is recorded at once, then read from its start', async () => {
    await api.createTopic('swapped', 1);
    await produceNumbered(api, 'swapped', 5, 'old');
    const m = await api.join('swapped-g', { topics: ['swapped'], autoOffsetReset: 'earliest' });
    expect(await m.poll()).toHaveLength(5);
    expect(await m.poll()).toEqual([]); // acknowledges and commits 5: the position is 5 in the old log
    const before = await api.store.read('swapped-g');
    expect(before!.members[m.id]!.positions).toEqual({ 'swapped:0': 5 });

    // Re-created after the poll settled with the old topicId recorded, and before it fetches. The
    // new log also ends at 5: read by name, offset 5 would look like "nothing new" there.
    let values: string[] = [];
    const racing = api.interleaved(isGroupPut, async () => {
      expect((await api.call('DELETE', '/v1/topics/swapped')).status).toBe(204);
      await api.createTopic('swapped', 1);
      values = await produceNumbered(api, 'swapped', 5, 'new');
    });
    expect(await m.via(racing.api).poll()).toEqual([]);
    expect(racing.fired()).toBe(true);
    // The poll recorded the new incarnation and dropped the position into the old log.
    const { topicId } = await getTopic(api.storage, 'swapped');
    const after = await api.store.read('swapped-g');
    expect(after!.topics.swapped!.topicId).toBe(topicId);
    expect(after!.groupEpoch).toBe(before!.groupEpoch + 1);
    expect(after!.members[m.id]!.positions).toEqual({});
    expect(after!.members[m.id]!.delivery).toBeUndefined();

    // The new topic from its start (autoOffsetReset), committed under its own topicId.
    expect((await m.poll()).map((r) => r.value)).toEqual(values);
    expect(await m.poll()).toEqual([]);
    expect(await api.store.readOffsets('swapped-g')).toEqual([expect.objectContaining({ topic: 'swapped', partition: 0, offset: 5, topicId })]);
  });

  it('a standalone commit and a reset tag offsets with the current topicId, whatever this process cached', async () => {
    await api.createTopic('cached', 1);
    const old = await getTopicCached(api.storage, 'cached');
    const current = await recreateBehindCache(api.storage, 'cached');
    expect((await getTopicCached(api.storage, 'cached')).topicId).toBe(old.topicId); // the cache is behind

    expect((await api.call('POST', '/v1/groups/cached-g/offsets', { offsets: [{ topic: 'cached', partition: 0, offset: 0, metadata: 'standalone' }] })).status).toBe(204);
    expect(await api.store.readOffsets('cached-g')).toEqual([expect.objectContaining({ offset: 0, metadata: 'standalone', topicId: current.topicId })]);

    const reset = await api.call('POST', '/v1/groups/cached-reset/offsets/reset', { topic: 'cached', to: 'earliest' });
    expect(reset.status, JSON.stringify(reset.body)).toBe(200);
    expect(await api.store.readOffsets('cached-reset')).toEqual([expect.objectContaining({ offset: 0, topicId: current.topicId })]);
  });

  it('a process whose cache still holds a deleted incarnation does not record it back in the group', async () => {
    await api.createTopic('flip', 1);
    const m = await api.join('flip-g', { topics: ['flip'] }); // caches the first incarnation
    const current = await recreateBehindCache(api.storage, 'flip');
    // A process that knows the new topic records it.
    await api.store.mutate('flip-g', async (group) => ({ group: transition(group!, { type: 'touch' }, { now: api.time, topics: { flip: { topicId: current.topicId, partitions: 1 } } }) }));
    const recorded = await api.store.read('flip-g');
    expect(recorded!.topics.flip!.topicId).toBe(current.topicId);

    // This process heartbeats with its stale cache.
    expect((await getTopicCached(api.storage, 'flip')).topicId).not.toBe(current.topicId);
    expect((await m.heartbeat()).status).toBe(200);
    const after = await api.store.read('flip-g');
    expect(after!.topics.flip!.topicId).toBe(current.topicId);
    expect(after!.groupEpoch).toBe(recorded!.groupEpoch);
    expect(m.owns).toEqual(['flip:0']);
  });
});
