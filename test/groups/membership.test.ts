// Membership over the HTTP API: rebalances, leave, session expiry, fencing, concurrency.
import { beforeAll, describe, expect, it } from 'vitest';
import { expectError } from '../api/client.ts';
import { settle, startGroupApi, type GroupApi, type Member } from './group-client.ts';

let api: GroupApi;
beforeAll(async () => {
  api = await startGroupApi();
  await api.createTopic('orders', 4);
  // Records to commit offsets into: a commit past the high watermark is refused before any fencing.
  for (let partition = 0; partition < 4; partition++) await api.produce('orders', Array.from({ length: 10 }, (_, i) => ({ value: `o${i}`, partition })));
  await api.createTopic('tiny', 2);
  await api.createTopic('wide', 24);
});

describe('consumer groups: membership', () => {
  it('rebalances on join: a partition moves only after its owner released it', async () => {
    const a = await api.join('rebalance', { topics: ['orders'] });
    expect(a.owns).toEqual(['orders:0', 'orders:1', 'orders:2', 'orders:3']);
    const b = await api.join('rebalance', { topics: ['orders'] });
    expect(b.last.memberEpoch).toBe(2);
    expect(b.owns).toEqual([]); // a still owns everything
    expect((await b.heartbeat()).status).toBe(200);
    expect(b.owns).toEqual([]); // still: a has not heartbeated
    await a.heartbeat(); // told to keep two: it still owns four until it reports otherwise
    expect(a.owns).toHaveLength(2);
    const stored = await api.store.read('rebalance');
    expect(stored!.members[a.id]!.assigned).toHaveLength(4);
    await api.expectExclusiveOwnership('rebalance');
    await a.heartbeat(); // reports owning only its two: the other two are free
    await b.heartbeat();
    expect(b.owns).toHaveLength(2);
    expect([...a.owns, ...b.owns].sort()).toEqual(['orders:0', 'orders:1', 'orders:2', 'orders:3']);
    expect((await api.describeGroup('rebalance')).state).toBe('stable');
  });

  it('frees partitions at once on a graceful leave', async () => {
    const a = await api.join('leave', { topics: ['orders'] });
    const b = await api.join('leave', { topics: ['orders'] });
    await settle(api, [a, b]);
    expect((await a.leave()).status).toBe(204);
    expect((await a.leave()).status).toBe(204); // idempotent
    await b.heartbeat();
    expect(b.owns).toHaveLength(4);
    expectError(await a.heartbeat(), 409, 'UNKNOWN_MEMBER_ID');
  });

  it('removes a member whose session expired at the next touch, and fences it', async () => {
    const a = await api.join('expiry', { topics: ['orders'], sessionTimeoutMs: 6000 });
    const b = await api.join('expiry', { topics: ['orders'], sessionTimeoutMs: 6000 });
    await settle(api, [a, b]);
    const aOwned = a.owns;
    api.advance(4000);
    await b.heartbeat();
    await api.expectExclusiveOwnership('expiry');
    api.advance(2500); // a silent for 6.5 s, b for 2.5 s
    await b.heartbeat();
    expect(b.owns).toHaveLength(4);
    await api.expectExclusiveOwnership('expiry');
    expectError(await a.heartbeat(), 409, 'UNKNOWN_MEMBER_ID');
    // The zombie's commit is refused and writes nothing.
    expectError(await a.commit([{ topic: 'orders', partition: Number(aOwned[0]!.split(':')[1]), offset: 5 }]), 409, 'UNKNOWN_MEMBER_ID');
    expect(Object.values(await api.committed('expiry')).every((o) => o === null)).toBe(true);
  });

  it("rejects a fenced member's commits, atomically, and accepts the new owner's", async () => {
    const a = await api.join('fence', { topics: ['orders'] });
    const staleEpoch = a.last.memberEpoch;
    const b = await api.join('fence', { topics: ['orders'] });
    await settle(api, [a, b]);
    const moved = b.owns[0]!;
    const kept = a.owns[0]!;
    const offset = (tp: string, o: number) => ({ topic: 'orders', partition: Number(tp.split(':')[1]), offset: o });
    // a's epoch moved on when it released `moved`: a commit from its old epoch is fenced.
    expectError(await a.commit([offset(moved, 7)], staleEpoch), 409, 'FENCED_MEMBER_EPOCH');
    // At its current epoch it still does not own `moved`; the batch with a partition it does own is refused whole.
    expectError(await a.commit([offset(kept, 3), offset(moved, 7)]), 409, 'FENCED_MEMBER_EPOCH', [moved]);
    const committed = await api.committed('fence');
    expect(committed[kept]).toBeNull();
    expect(committed[moved]).toBeNull();
    expect((await b.commit([offset(moved, 7)])).status).toBe(204);
    expect((await a.commit([offset(kept, 3)])).status).toBe(204);
    expect(await api.committed('fence')).toMatchObject({ [moved]: 7, [kept]: 3 });
  });

  it('leaves extra members idle when there are more members than partitions', async () => {
    const members: Member[] = [];
    for (let i = 0; i < 4; i++) members.push(await api.join('crowd', { topics: ['tiny'] }));
    await settle(api, members);
    expect(members.map((m) => m.owns.length).sort()).toEqual([0, 0, 1, 1]);
    const described = await api.describeGroup('crowd');
    expect(described.members).toHaveLength(4);
  });

  it('converges to a balanced assignment when many members join at once', async () => {
    const members = await Promise.all(Array.from({ length: 12 }, () => api.join('herd', { topics: ['wide'] })));
    expect(new Set(members.map((m) => m.id)).size).toBe(12);
    await settle(api, members);
    expect(members.map((m) => m.owns.length)).toEqual(Array(12).fill(2));
    expect(members.flatMap((m) => m.owns).sort()).toEqual(Array.from({ length: 24 }, (_, p) => `wide:${p}`).sort());
    expect((await api.describeGroup('herd')).groupEpoch).toBe(12);
  });

  it('uses the assignor chosen when the group was created', async () => {
    const a = await api.join('ranged', { topics: ['orders'], assignor: 'range' });
    expectError(await api.call('POST', '/v1/groups/ranged/members', { topics: ['orders'], assignor: 'uniform' }), 409, 'INCONSISTENT_ASSIGNOR');
    const b = await api.join('ranged', { topics: ['orders'] });
    await settle(api, [a, b]);
    const [first, second] = [a, b].sort((x, y) => (x.id < y.id ? -1 : 1));
    expect(first!.owns).toEqual(['orders:0', 'orders:1']);
    expect(second!.owns).toEqual(['orders:2', 'orders:3']);
    expect((await api.describeGroup('ranged')).assignor).toBe('range');
  });

  it('lists groups', async () => {
    const res = await api.call('GET', '/v1/groups');
    expect(res.status).toBe(200);
    expect(res.body.groups.map((g: { group: string }) => g.group)).toEqual(expect.arrayContaining(['rebalance', 'herd', 'ranged']));
  });
});
