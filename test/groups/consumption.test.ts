// Queue and publish/subscribe semantics over the HTTP API, against the local stack.
import { beforeAll, describe, expect, it } from 'vitest';
import { produceNumbered, startGroupApi, type GroupApi, type Member, type PolledRecord } from './group-client.ts';

let api: GroupApi;
beforeAll(async () => {
  api = await startGroupApi();
});

/** Polls all members concurrently, round after round, until `expected` records arrived in all. */
async function drain(members: Member[], expected: number, body: Record<string, unknown> = {}): Promise<Map<Member, PolledRecord[]>> {
  const got = new Map<Member, PolledRecord[]>(members.map((m) => [m, []]));
  for (let round = 0; round < 50; round++) {
    const polled = await Promise.all(members.map((m) => m.poll({ maxRecords: 25, ...body })));
    members.forEach((m, i) => got.get(m)!.push(...polled[i]!));
    await api.expectExclusiveOwnership(members[0]!.group);
    if ([...got.values()].flat().length >= expected) break;
  }
  return got;
}

describe('consumer groups: consumption', () => {
  it('splits a topic between the members of one group: every record delivered once, none lost', async () => {
    await api.createTopic('queue', 6);
    const values = await produceNumbered(api, 'queue', 120);
    const members = [];
    for (let i = 0; i < 3; i++) members.push(await api.join('workers', { topics: ['queue'], autoOffsetReset: 'earliest' }));
    const got = await drain(members, values.length);
    const all = [...got.values()].flat().map((r) => r.value);
    expect(all.sort()).toEqual([...values].sort());
    for (const records of got.values()) expect(records.length).toBeGreaterThan(0);
    // Each partition went to exactly one member.
    const partitionOwners = new Map<number, Set<Member>>();
    for (const [m, records] of got) for (const r of records) partitionOwners.set(r.partition, (partitionOwners.get(r.partition) ?? new Set()).add(m));
    for (const owners of partitionOwners.values()) expect(owners.size).toBe(1);
  });

  it('gives every group every record (publish/subscribe)', async () => {
    await api.createTopic('news', 4);
    const values = await produceNumbered(api, 'news', 40);
    for (const group of ['audit', 'search']) {
      const members = [await api.join(group, { topics: ['news'], autoOffsetReset: 'earliest' }), await api.join(group, { topics: ['news'], autoOffsetReset: 'earliest' })];
      const got = await drain(members, values.length);
      expect([...got.values()].flat().map((r) => r.value).sort()).toEqual([...values].sort());
    }
  });

  it('auto-commits what the previous poll returned, and a graceful leave commits the last poll', async () => {
    await api.createTopic('auto', 1);
    await produceNumbered(api, 'auto', 30);
    const m = await api.join('auto-g', { topics: ['auto'], autoOffsetReset: 'earliest' });
    const first = await m.poll({ maxRecords: 10 });
    expect(first.map((r) => r.offset)).toEqual([...Array(10).keys()]);
    expect((await api.committed('auto-g'))['auto:0']).toBeNull(); // not processed yet, as far as we know
    const second = await m.poll({ maxRecords: 10 });
    expect(second[0]!.offset).toBe(10);
    expect((await api.committed('auto-g'))['auto:0']).toBe(10); // the first poll's records, now processed
    expect((await m.leave()).status).toBe(204);
    expect((await api.committed('auto-g'))['auto:0']).toBe(20);
  });

  it('without auto-commit commits nothing by itself; a crashed member is redelivered from the committed offset (at least once)', async () => {
    await api.createTopic('manual', 2);
    const values = await produceNumbered(api, 'manual', 40);
    const crashing = await api.join('manual-g', { topics: ['manual'], autoOffsetReset: 'earliest', sessionTimeoutMs: 6000 });
    const processed: PolledRecord[] = [];
    for (let i = 0; i < 2; i++) {
      const batch = await crashing.poll({ maxRecords: 10, autoCommit: false });
      processed.push(...batch);
      const last = new Map<number, number>();
      for (const r of batch) last.set(r.partition, r.offset + 1);
      expect((await crashing.commit([...last].map(([partition, offset]) => ({ topic: 'manual', partition, offset })))).status).toBe(204);
    }
    const unacknowledged = await crashing.poll({ maxRecords: 10, autoCommit: false }); // processed, never committed
    expect(unacknowledged.length).toBeGreaterThan(0);

    api.advance(6001); // the member crashed: its session runs out
    const successor = await api.join('manual-g', { topics: ['manual'], autoOffsetReset: 'earliest' });
    expect(successor.owns).toEqual(['manual:0', 'manual:1']);
    const rest = (await drain([successor], values.length - processed.length, { autoCommit: false })).get(successor)!;
    // Nothing skipped: the committed prefix plus what the successor read is everything, once.
    expect([...processed, ...rest].map((r) => r.value).sort()).toEqual([...values].sort());
    // The uncommitted batch came again (at least once), and nothing committed came again.
    for (const r of unacknowledged) expect(rest.map((x) => x.value)).toContain(r.value);
  });

  it('continues exactly where the group left off after a rebalance moves partitions', async () => {
    await api.createTopic('moving', 4);
    const values = await produceNumbered(api, 'moving', 80);
    const first = await api.join('moving-g', { topics: ['moving'], autoOffsetReset: 'earliest' });
    const before = await first.poll({ maxRecords: 20 });
    const second = await api.join('moving-g', { topics: ['moving'], autoOffsetReset: 'earliest' });
    const got = await drain([first, second], values.length - before.length);
    const all = [...before, ...got.get(first)!, ...got.get(second)!].map((r) => r.value);
    // first's poll after the join committed its records and released two partitions; second
    // continued from those commits: nothing lost, nothing duplicated.
    expect(all.sort()).toEqual([...values].sort());
    expect(got.get(second)!.length).toBeGreaterThan(0);
  });
});
