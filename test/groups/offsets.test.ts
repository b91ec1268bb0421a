// Offsets, reset and delete rules, and malformed requests (clear 4xx, nothing written).
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { offsetKey } from '../../lib/groups/group-store.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { expectError, withInvalidUtf8 } from '../api/client.ts';
import { startGroupApi, type GroupApi } from './group-client.ts';

let api: GroupApi;
let timestamps: number[];
beforeAll(async () => {
  api = await startGroupApi();
  await api.createTopic('events', 2);
  const base = 1_700_000_000_000;
  timestamps = Array.from({ length: 10 }, (_, i) => base + i * 1000);
  await api.produce('events', timestamps.map((timestamp, i) => ({ value: `e${i}`, partition: 0, timestamp })));
});

const reset = (group: string, body: unknown) => api.call('POST', `/v1/groups/${group}/offsets/reset`, body);

describe('consumer groups: offsets', () => {
  it('commits without a member only while the group is empty', async () => {
    expect((await api.call('POST', '/v1/groups/standalone/offsets', { offsets: [{ topic: 'events', partition: 0, offset: 4, metadata: 'batch-17' }] })).status).toBe(204);
    const described = await api.describeGroup('standalone');
    expect(described.state).toBe('empty');
    expect(described.offsets).toContainEqual(expect.objectContaining({ topic: 'events', partition: 0, committedOffset: 4, metadata: 'batch-17', highWatermark: 10, lag: 6 }));
    const m = await api.join('standalone', { topics: ['events'] });
    expectError(await api.call('POST', '/v1/groups/standalone/offsets', { offsets: [{ topic: 'events', partition: 0, offset: 9 }] }), 409, 'NON_EMPTY_GROUP');
    expect((await api.committed('standalone'))['events:0']).toBe(4);
    // A member starts from the committed offset.
    expect((await m.poll())[0]).toMatchObject({ partition: 0, offset: 4 });
  });

  it('keeps a member\'s committed offsets from moving back: a late lower commit leaves them, the other partitions still advance', async () => {
    await api.createTopic('pairs', 3);
    for (const partition of [0, 1, 2]) await api.produce('pairs', Array.from({ length: 10 }, (_, i) => ({ value: `p${partition}-${i}`, partition })));
    const m = await api.join('forward', { topics: ['pairs'] });
    const commit = (offsets: number[], memberEpoch?: number) => m.commit(offsets.map((offset, partition) => ({ topic: 'pairs', partition, offset, metadata: `at ${offset}` })), memberEpoch);
    expect((await commit([5, 5, 5])).status).toBe(204);
    // A duplicated earlier commit arriving late: an idempotent success that writes nothing.
    expect((await commit([3, 3, 3])).status).toBe(204);
    expect(await api.committed('forward')).toEqual({ 'pairs:0': 5, 'pairs:1': 5, 'pairs:2': 5 });
    // Two partitions behind, one ahead: the one ahead is committed, the others keep offset and metadata.
    expect((await commit([4, 8, 5])).status).toBe(204);
    expect(await api.committed('forward')).toEqual({ 'pairs:0': 5, 'pairs:1': 8, 'pairs:2': 5 });
    expect((await api.describeGroup('forward')).offsets.map((o: any) => o.metadata)).toEqual(['at 5', 'at 8', 'at 5']);
    // Behind or not, a stale epoch is still fenced.
    expectError(await commit([1, 1, 1], m.last.memberEpoch + 1), 409, 'FENCED_MEMBER_EPOCH');
    // An empty group may be moved back: that is what standalone commits and resets are for.
    await m.leave();
    expect((await api.call('POST', '/v1/groups/forward/offsets', { offsets: [{ topic: 'pairs', partition: 1, offset: 2 }] })).status).toBe(204);
    expect((await api.committed('forward'))['pairs:1']).toBe(2);
  });

  it('refuses an offset past the high watermark with 416 naming both bounds, as a member, standalone or in a reset', async () => {
    const m = await api.join('beyond', { topics: ['events'] });
    const past = [{ topic: 'events', partition: 0, offset: 11 }];
    expectError(await m.commit(past), 416, 'OFFSET_OUT_OF_RANGE', ['11', '0 (log start)', '10 (high watermark)']);
    expectError(await m.commit([{ topic: 'events', partition: 1, offset: 1 }]), 416, 'OFFSET_OUT_OF_RANGE', ['0 (high watermark)']);
    await m.leave();
    expectError(await api.call('POST', '/v1/groups/beyond/offsets', { offsets: past }), 416, 'OFFSET_OUT_OF_RANGE', ['11', '0 (log start)', '10 (high watermark)']);
    expectError(await reset('beyond', { topic: 'events', partitions: [0], to: { offset: 11 } }), 416, 'OFFSET_OUT_OF_RANGE', ['11', '0 (log start)', '10 (high watermark)']);
    expect(await api.store.readOffsets('beyond')).toEqual([]);
    // The high watermark itself is a valid offset: nothing left to read.
    expect((await api.call('POST', '/v1/groups/beyond/offsets', { offsets: [{ topic: 'events', partition: 0, offset: 10 }] })).status).toBe(204);
    expect((await api.describeGroup('beyond')).offsets).toContainEqual(expect.objectContaining({ partition: 0, committedOffset: 10, highWatermark: 10, lag: 0 }));
  });

  it('resets to earliest, latest, a timestamp or an offset, only when the group is empty', async () => {
    const m = await api.join('resettable', { topics: ['events'] });
    expectError(await reset('resettable', { topic: 'events', to: 'earliest' }), 409, 'NON_EMPTY_GROUP');
    await m.leave();
    const offsetsAfter = async (to: unknown, partitions?: number[]) => {
      const res = await reset('resettable', { topic: 'events', to, ...(partitions ? { partitions } : {}) });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return api.committed('resettable');
    };
    expect(await offsetsAfter('latest')).toEqual({ 'events:0': 10, 'events:1': 0 });
    expect(await offsetsAfter('earliest')).toEqual({ 'events:0': 0, 'events:1': 0 });
    expect(await offsetsAfter({ timestamp: timestamps[6]! - 1 }, [0])).toMatchObject({ 'events:0': 6 });
    expect(await offsetsAfter({ timestamp: timestamps[9]! + 1 }, [0])).toMatchObject({ 'events:0': 10 });
    expect(await offsetsAfter({ offset: 3 }, [0])).toMatchObject({ 'events:0': 3 });
    expectError(await reset('resettable', { topic: 'events', partitions: [0], to: { offset: 11 } }), 416, 'OFFSET_OUT_OF_RANGE');
    expectError(await reset('resettable', { topic: 'events', partitions: [5], to: 'earliest' }), 404, 'UNKNOWN_PARTITION');
    expect((await api.committed('resettable'))['events:0']).toBe(3);
  });

  it('deletes a group, offsets included, only when it is empty', async () => {
    const m = await api.join('doomed', { topics: ['events'], autoOffsetReset: 'earliest' });
    await m.poll();
    await m.poll(); // auto-commits the first poll
    expectError(await api.call('DELETE', '/v1/groups/doomed'), 409, 'NON_EMPTY_GROUP');
    await m.leave();
    expect((await api.call('DELETE', '/v1/groups/doomed')).status).toBe(204);
    expectError(await api.call('GET', '/v1/groups/doomed'), 404, 'UNKNOWN_GROUP');
    expectError(await api.call('DELETE', '/v1/groups/doomed'), 404, 'UNKNOWN_GROUP');
    expect(await api.store.readOffsets('doomed')).toEqual([]);
    // The id can be used again, from scratch.
    const again = await api.join('doomed', { topics: ['events'] });
    expect(again.last.memberEpoch).toBe(1);
    expect(Object.values(await api.committed('doomed')).every((o) => o === null)).toBe(true);
  });

  it('a group whose members all expired counts as empty', async () => {
    await api.join('ghosts', { topics: ['events'], sessionTimeoutMs: 6000 });
    api.advance(6001);
    expect((await api.describeGroup('ghosts')).state).toBe('empty');
    expect((await api.call('DELETE', '/v1/groups/ghosts')).status).toBe(204);
  });

  it('stores in an offset item the offset, its topicId and who committed it, nothing else', async () => {
    const storedItem = async (group: string) => {
      const res = await api.storage.ddb.send(new GetCommand({ TableName: api.storage.config.groupsTable, Key: { g: group, k: offsetKey('events', 0) } }));
      return res.Item!;
    };
    const { topicId } = await getTopic(api.storage, 'events');
    const m = await api.join('lean', { topics: ['events'], autoOffsetReset: 'earliest' });
    await m.poll();
    await m.poll(); // auto-commits the first poll
    const auto = await storedItem('lean');
    expect(Object.keys(auto).sort()).toEqual(['committedAt', 'g', 'k', 'memberEpoch', 'memberId', 'offset', 'partition', 'topic', 'topicId']);
    expect(auto).toMatchObject({ topic: 'events', partition: 0, offset: 10, topicId, memberId: m.id, memberEpoch: m.last.memberEpoch });
    // The same offset again (not behind) is written again, with its metadata.
    expect((await m.commit([{ topic: 'events', partition: 0, offset: 10, metadata: 'batch-3' }])).status).toBe(204);
    expect(Object.keys(await storedItem('lean')).sort()).toEqual(['committedAt', 'g', 'k', 'memberEpoch', 'memberId', 'metadata', 'offset', 'partition', 'topic', 'topicId']);
    await m.leave();
    expect((await reset('lean', { topic: 'events', partitions: [0], to: 'earliest' })).status).toBe(200);
    expect(Object.keys(await storedItem('lean')).sort()).toEqual(['committedAt', 'g', 'k', 'offset', 'partition', 'topic', 'topicId']);
  });

  it('answers concurrent standalone commits and resets with success or a 4xx, never a 500', async () => {
    const commits = await Promise.all(Array.from({ length: 6 }, (_, i) => api.call('POST', '/v1/groups/contended/offsets', { offsets: [{ topic: 'events', partition: 0, offset: i }] })));
    for (const res of commits) expect(res.status, JSON.stringify(res.body)).toBe(204);
    expect([0, 1, 2, 3, 4, 5]).toContain((await api.committed('contended'))['events:0']);
    const resets = await Promise.all(['earliest', 'latest', { offset: 3 }].map((to) => reset('contended', { topic: 'events', partitions: [0], to })));
    for (const res of resets) expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect([0, 3, 10]).toContain((await api.committed('contended'))['events:0']);
  });

  it.each<[string, string, string, unknown, number, string, string?]>([
    ['unknown topic', 'POST', '/v1/groups/bad/members', { topics: ['nope'] }, 404, 'UNKNOWN_TOPIC'],
    ['no topics', 'POST', '/v1/groups/bad/members', { topics: [] }, 400, 'INVALID_REQUEST'],
    ['session timeout too short', 'POST', '/v1/groups/bad/members', { topics: ['events'], sessionTimeoutMs: 10 }, 400, 'INVALID_REQUEST'],
    ['unknown assignor', 'POST', '/v1/groups/bad/members', { topics: ['events'], assignor: 'roundrobin' }, 400, 'INVALID_REQUEST'],
    ['unknown field', 'POST', '/v1/groups/bad/members', { topics: ['events'], extra: 1 }, 400, 'INVALID_REQUEST'],
    ['malformed JSON', 'POST', '/v1/groups/bad/members', '{"topics":', 400, 'MALFORMED_JSON'],
    ['a join with invalid UTF-8', 'POST', '/v1/groups/bad/members', withInvalidUtf8('{"topics":["events@@"]}'), 400, 'INVALID_UTF8', 'topics.0'],
    ['a poll with invalid UTF-8', 'POST', '/v1/groups/bad/members/6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11/poll', withInvalidUtf8('{"ack":"@@"}'), 400, 'INVALID_UTF8', 'ack'],
    ['a heartbeat with invalid UTF-8', 'POST', '/v1/groups/bad/members/6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11/heartbeat', withInvalidUtf8('{"memberEpoch":1,"owned":[{"topic":"@@","partitions":[0]}]}'), 400, 'INVALID_UTF8', 'owned.0.topic'],
    ['a commit with invalid UTF-8 metadata', 'POST', '/v1/groups/bad/offsets', withInvalidUtf8('{"offsets":[{"topic":"events","partition":0,"offset":1,"metadata":"@@"}]}'), 400, 'INVALID_UTF8', 'offsets.0.metadata'],
    ['a reset with invalid UTF-8', 'POST', '/v1/groups/bad/offsets/reset', withInvalidUtf8('{"topic":"@@","to":"earliest"}'), 400, 'INVALID_UTF8', 'topic'],
    ['bad group id', 'POST', '/v1/groups/bad%20id/members', { topics: ['events'] }, 400, 'INVALID_REQUEST'],
    ['bad member id', 'POST', '/v1/groups/bad/members/not-a-uuid/heartbeat', { memberEpoch: 1 }, 400, 'INVALID_REQUEST'],
    ['negative epoch', 'POST', '/v1/groups/bad/members/6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11/heartbeat', { memberEpoch: -1 }, 400, 'INVALID_REQUEST'],
    ['unknown member', 'POST', '/v1/groups/bad/members/6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11/heartbeat', { memberEpoch: 1 }, 409, 'UNKNOWN_MEMBER_ID'],
    ['poll by unknown member', 'POST', '/v1/groups/bad/members/6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11/poll', {}, 409, 'UNKNOWN_MEMBER_ID'],
    ['bad poll option', 'POST', '/v1/groups/bad/members/6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11/poll', { waitMs: 999_999 }, 400, 'INVALID_REQUEST'],
    ['negative offset', 'POST', '/v1/groups/bad/offsets', { offsets: [{ topic: 'events', partition: 0, offset: -1 }] }, 400, 'INVALID_REQUEST'],
    ['fractional offset', 'POST', '/v1/groups/bad/offsets', { offsets: [{ topic: 'events', partition: 0, offset: 1.5 }] }, 400, 'INVALID_REQUEST'],
    ['member id without epoch', 'POST', '/v1/groups/bad/offsets', { memberId: '6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11', offsets: [{ topic: 'events', partition: 0, offset: 1 }] }, 400, 'INVALID_REQUEST'],
    ['no offsets', 'POST', '/v1/groups/bad/offsets', { offsets: [] }, 400, 'INVALID_REQUEST'],
    ['duplicate partition', 'POST', '/v1/groups/bad/offsets', { offsets: [{ topic: 'events', partition: 0, offset: 1 }, { topic: 'events', partition: 0, offset: 2 }] }, 400, 'DUPLICATE_PARTITION'],
    ['unknown partition', 'POST', '/v1/groups/bad/offsets', { offsets: [{ topic: 'events', partition: 0, offset: 1 }, { topic: 'events', partition: 2, offset: 1 }] }, 404, 'UNKNOWN_PARTITION'],
    ['commit to unknown topic', 'POST', '/v1/groups/bad/offsets', { offsets: [{ topic: 'nope', partition: 0, offset: 1 }] }, 404, 'UNKNOWN_TOPIC'],
    ["a join with '#' in a topic name", 'POST', '/v1/groups/bad/members', { topics: ['events#0'] }, 400, 'INVALID_REQUEST'],
    ["a commit with ':' in a topic name", 'POST', '/v1/groups/bad/offsets', { offsets: [{ topic: 'events:0', partition: 0, offset: 1 }] }, 400, 'INVALID_REQUEST'],
    ['a reset of a reserved topic name', 'POST', '/v1/groups/bad/offsets/reset', { topic: '..', to: 'earliest' }, 400, 'INVALID_REQUEST'],
    ['bad reset target', 'POST', '/v1/groups/bad/offsets/reset', { topic: 'events', to: 'middle' }, 400, 'INVALID_REQUEST'],
    ['describe unknown group', 'GET', '/v1/groups/bad', undefined, 404, 'UNKNOWN_GROUP'],
  ])('refuses %s with a clear error and writes nothing', async (_name, method, path, body, status, code, mentions) => {
    expectError(await api.call(method, path, body), status, code, mentions === undefined ? [] : [mentions]);
    expect(await api.store.read('bad')).toBeUndefined();
    expect(await api.store.readOffsets('bad')).toEqual([]);
  });
});
