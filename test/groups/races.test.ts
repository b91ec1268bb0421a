// Requests of one member that overlap, and processes whose topic cache is behind: an auto-commit
// racing the member's own heartbeat, and topics deleted and re-created by another process.
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
