// Named consumer instances (lib/groups/instances.ts): members named by the client, whose client
// never acknowledges, so each consume acknowledges (and auto-commits) what the previous one returned.
import { beforeAll, describe, expect, it } from 'vitest';
import type { ConsumeOptions } from '../../lib/groups/instances.ts';
import { SESSION_TIMEOUT_MS } from '../../lib/groups/model.ts';
import { startGroupApi, type GroupApi } from './group-client.ts';

let api: GroupApi;
beforeAll(async () => {
  api = await startGroupApi();
});

const options = (topics: string[], more: Partial<ConsumeOptions> = {}): ConsumeOptions => ({
  topics, autoOffsetReset: 'earliest', autoCommit: true, waitMs: 0, maxRecords: 3, maxBytes: 1 << 20, ...more,
});

async function committed(group: string, topic: string, partitions: number[]): Promise<Array<number | undefined>> {
  return (await api.services.groups.offsets.committedFor(group, partitions.map((partition) => ({ topic, partition })))).map((o) => o.offset);
}

const consume = (group: string, instance: string, topics: string[], more: Partial<ConsumeOptions> = {}) => api.services.groups.instances.consume(group, instance, options(topics, more));
const values = (records: Array<{ value: Uint8Array | null }>) => records.map((r) => Buffer.from(r.value!).toString());

describe('named instances', () => {
  it('a consume commits what the previous consume returned, never what it returns itself', async () => {
    await api.createTopic('inst-ack', 1);
    await api.produce('inst-ack', ['a', 'b', 'c', 'd', 'e'].map((value) => ({ value })));
    expect(values(await consume('g-ack', 'one', ['inst-ack']))).toEqual(['a', 'b', 'c']);
    // The instance exists under its own name, with the long session of a named instance.
    const group = await api.store.read('g-ack');
    expect(group!.members.one!.sessionTimeoutMs).toBe(SESSION_TIMEOUT_MS.max);
    expect(await committed('g-ack', 'inst-ack', [0])).toEqual([undefined]);
    // The second consume acknowledges the first batch: it is committed, and the next records follow.
    expect(values(await consume('g-ack', 'one', ['inst-ack']))).toEqual(['d', 'e']);
    expect(await committed('g-ack', 'inst-ack', [0])).toEqual([3]);
    expect(await consume('g-ack', 'one', ['inst-ack'])).toEqual([]);
    expect(await committed('g-ack', 'inst-ack', [0])).toEqual([5]);
  });

  it('without auto-commit nothing is committed, yet each consume moves on; an empty commit commits what was handed out', async () => {
    await api.createTopic('inst-manual', 1);
    await api.produce('inst-manual', ['a', 'b', 'c', 'd'].map((value) => ({ value })));
    expect(values(await consume('g-manual', 'm', ['inst-manual'], { autoCommit: false }))).toEqual(['a', 'b', 'c']);
    expect(values(await consume('g-manual', 'm', ['inst-manual'], { autoCommit: false }))).toEqual(['d']);
    expect(await committed('g-manual', 'inst-manual', [0])).toEqual([undefined]);
    await api.services.groups.offsets.commitDelivered('g-manual', 'm');
    expect(await committed('g-manual', 'inst-manual', [0])).toEqual([4]);
  });

  it('an instance that stops without another consume has its last batch delivered again to the next owner', async () => {
    await api.createTopic('inst-crash', 1);
    await api.produce('inst-crash', ['a', 'b', 'c', 'd', 'e'].map((value) => ({ value })));
    expect(values(await consume('g-crash', 'first', ['inst-crash']))).toEqual(['a', 'b', 'c']);
    expect(values(await consume('g-crash', 'first', ['inst-crash']))).toEqual(['d', 'e']);
    api.advance(SESSION_TIMEOUT_MS.max + 1);
    // 'first' expired: 'second' resumes at the committed offset, after the acknowledged batch only.
    expect(values(await consume('g-crash', 'second', ['inst-crash']))).toEqual(['d', 'e']);
  });

  it('removing an instance commits its last batch under auto-commit and frees its partitions', async () => {
    await api.createTopic('inst-remove', 1);
    await api.produce('inst-remove', ['a', 'b', 'c', 'd'].map((value) => ({ value })));
    expect(values(await consume('g-remove', 'first', ['inst-remove']))).toEqual(['a', 'b', 'c']);
    await api.services.groups.instances.remove('g-remove', 'first');
    expect((await api.store.read('g-remove'))!.members.first).toBeUndefined();
    expect(values(await consume('g-remove', 'second', ['inst-remove']))).toEqual(['d']);
    // Idempotent, as the instance is already gone.
    await api.services.groups.instances.remove('g-remove', 'first');
  });

  it('a consume naming other topics re-subscribes the instance', async () => {
    await api.createTopic('inst-sub-a', 1);
    await api.createTopic('inst-sub-b', 1);
    await api.produce('inst-sub-a', [{ value: 'a1' }]);
    await api.produce('inst-sub-b', [{ value: 'b1' }]);
    expect(values(await consume('g-sub', 'i', ['inst-sub-a']))).toEqual(['a1']);
    expect(values(await consume('g-sub', 'i', ['inst-sub-b']))).toEqual(['b1']);
    expect((await api.store.read('g-sub'))!.members.i!.topics).toEqual(['inst-sub-b']);
    // Leaving topic a committed the batch the instance had been handed there.
    expect(await committed('g-sub', 'inst-sub-a', [0])).toEqual([1]);
  });

  it('explicit commits need no epoch: they land at the current one while the instance owns the partitions', async () => {
    await api.createTopic('inst-commit', 2);
    await api.produce('inst-commit', [{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }]);
    await consume('g-commit', 'one', ['inst-commit'], { autoCommit: false });
    const before = (await api.store.read('g-commit'))!.members.one!.memberEpoch;
    // 'two' joins: the group epoch moves on, and 'one' releases a partition at its next consume.
    await consume('g-commit', 'two', ['inst-commit'], { autoCommit: false });
    await consume('g-commit', 'one', ['inst-commit'], { autoCommit: false });
    const one = (await api.store.read('g-commit'))!.members.one!;
    expect(one.memberEpoch).toBeGreaterThan(before);
    const [owned] = one.assigned;
    const partition = Number(owned!.split(':')[1]);
    await api.services.groups.offsets.commitAsCurrentOwner('g-commit', 'one', [{ topic: 'inst-commit', partition, offset: 1 }]);
    expect(await committed('g-commit', 'inst-commit', [partition])).toEqual([1]);
    await expect(api.services.groups.offsets.commitAsCurrentOwner('g-commit', 'one', [{ topic: 'inst-commit', partition: 1 - partition, offset: 1 }]))
      .rejects.toMatchObject({ code: 'FENCED_MEMBER_EPOCH', message: expect.stringContaining(`does not own inst-commit:${1 - partition}`) });
    await expect(api.services.groups.offsets.commitAsCurrentOwner('g-commit', 'nobody', [{ topic: 'inst-commit', partition, offset: 1 }])).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER_ID' });
    await expect(api.services.groups.offsets.commitAsCurrentOwner('g-commit', 'one', [{ topic: 'inst-commit', partition, offset: 9 }])).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
  });
});
