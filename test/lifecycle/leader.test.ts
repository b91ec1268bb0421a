// Leases and fencing: one maintenance writer per partition, and a leader that lost its lease (a
// zombie) changes nothing, whichever step it was at. Crashes at each compaction step are finished
// or undone by the next leader.
import { beforeAll, describe, expect, it } from 'vitest';
import { LeaderFencedError } from '../../lib/errors.ts';
import { Leases } from '../../lib/lifecycle/lease.ts';
import { Maintenance } from '../../lib/lifecycle/maintenance.ts';
import type { Storage } from '../../lib/storage.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { withDynamoFaults } from '../support/faults.ts';
import { testStorage, withIntakeObjects } from '../support/stack.ts';
import { indexItems, lifecyclePartition, objectKeys, replay, text } from './harness.ts';

let storage: Storage;

beforeAll(async () => {
  storage = await testStorage();
});

/** A partition holding `count` one-record batches, all due for compaction. */
async function duePartition(count = 12, writes: Storage = storage) {
  const p = await lifecyclePartition(writes, { 'segment.bytes': 1 << 20, 'segment.ms': 1000 });
  for (let i = 0; i < count; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`r${i}`), headers: [], partition: 0, timestamp: p.clock.now }], '1');
  p.clock.now += 5000;
  return p;
}

describe('leases', () => {
  it('one holder at a time; taken over only once expired, with a higher epoch; the old holder is fenced', async () => {
    const clock = { now: 1_000_000 };
    const leases = new Leases(storage, { durationMs: 10_000, now: () => clock.now });
    const pk = `lease-test-${Date.now()}/0`;
    const first = (await leases.acquire(pk))!;
    expect(first.epoch).toBe(1);
    expect(await leases.acquire(pk)).toBeUndefined();
    clock.now += 10_001;
    const second = (await leases.acquire(pk))!;
    expect(second.epoch).toBe(2);
    expect(second.takenOver).toBe(true);
    await expect(leases.renew(first)).rejects.toBeInstanceOf(LeaderFencedError);
    await leases.release(first); // a zombie's release changes nothing
    expect(await leases.acquire(pk)).toBeUndefined();
    await leases.release(second);
    const third = (await leases.acquire(pk))!;
    expect(third.epoch).toBe(3);
    expect(third.takenOver).toBe(false);
  });
});

describe('a zombie leader', () => {
  it('whose lease was taken over while it rolled a segment cannot commit it; the successor\'s segment stands and reads are unchanged', async () => {
    const p = await duePartition();
    const before = await replay(p.fetcher, p.topic);
    const topic = await getTopic(storage, p.topic.name);
    let successor: Promise<unknown> | undefined;
    // The zombie pauses just before its commit; meanwhile its lease expires and a successor runs.
    const paused = withDynamoFaults(storage, async (command) => {
      if (command.constructor.name === 'TransactWriteCommand' && !successor) {
        p.clock.now += 120_000;
        successor = p.maintenance.maintainPartition(topic, 0);
        await successor;
      }
      return undefined;
    });
    const zombie = new Maintenance(paused, p.sequencer, { lease: { now: () => p.clock.now }, compactor: { now: () => p.clock.now }, retention: { now: () => p.clock.now } });
    await expect(zombie.maintainPartition(topic, 0)).rejects.toBeInstanceOf(LeaderFencedError);
    expect(await successor).toMatchObject({ rolled: 1 });
    expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 1 });
    // The zombie's upload was deleted when its commit failed: one segment object, the successor's.
    expect(await objectKeys(storage, `logs/${p.pk}/`)).toHaveLength(1);
    expect(await replay(p.fetcher, p.topic)).toEqual(before);
  });
});

describe('a crash at each step of compaction', () => {
  const steps = [
    { step: 'after the segment PUT, before the commit', failOn: (name: string) => name === 'TransactWriteCommand', strays: 1, inline: false },
    { step: 'after the commit, while deleting the replaced entries', failOn: (name: string, n: number) => name === 'TransactWriteCommand' && n === 2, strays: 0, inline: false },
    { step: 'inline batches: after the segment PUT, before the commit', failOn: (name: string) => name === 'TransactWriteCommand', strays: 1, inline: true },
    { step: 'inline batches: after the commit, while deleting the replaced entries', failOn: (name: string) => name === 'BatchWriteCommand', strays: 0, inline: true },
  ];
  for (const { step, failOn, strays, inline } of steps) {
    it(`${step}: the next leader finishes or undoes it, and reads never change`, async () => {
      const p = await duePartition(12, inline ? storage : withIntakeObjects(storage));
      const before = await replay(p.fetcher, p.topic);
      const topic = await getTopic(storage, p.topic.name);
      let transactions = 0;
      const crashing = withDynamoFaults(storage, (command) => (failOn(command.constructor.name, command.constructor.name === 'TransactWriteCommand' ? ++transactions : 0) ? 'fail-before' : undefined));
      const dying = new Maintenance(crashing, p.sequencer, { lease: { now: () => p.clock.now }, compactor: { now: () => p.clock.now }, retention: { now: () => p.clock.now } });
      // Its lease is never released: the process "died" with the error.
      (dying.leases as { release: unknown }).release = async () => undefined;
      await expect(dying.maintainPartition(topic, 0)).rejects.toThrow(/injected fault/);
      expect(await replay(p.fetcher, p.topic)).toEqual(before);
      p.clock.now += 120_000;
      const report = await p.maintain();
      expect(report.strays).toBe(strays);
      expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 1 });
      expect(await objectKeys(storage, `logs/${p.pk}/`)).toHaveLength(1);
      expect(await objectKeys(storage, `segments/${p.topic.topicId}/`)).toEqual([]);
      expect(await replay(p.fetcher, p.topic)).toEqual(before);
    });
  }

  it('after the entries are deleted, before their intake objects are: the next leader deletes them (nothing leaks)', async () => {
    const p = await duePartition(12, withIntakeObjects(storage));
    const before = await replay(p.fetcher, p.topic);
    const topic = await getTopic(storage, p.topic.name);
    const dying = new Maintenance(storage, p.sequencer, { lease: { now: () => p.clock.now }, compactor: { now: () => p.clock.now }, retention: { now: () => p.clock.now } });
    (dying.leases as { release: unknown }).release = async () => undefined;
    dying.compactor.deleteObjects = async () => {
      throw new Error('injected crash before the intake objects are deleted');
    };
    await expect(dying.maintainPartition(topic, 0)).rejects.toThrow(/injected crash/);
    expect((await indexItems(storage, p.pk)).entries).toBe(0);
    expect((await objectKeys(storage, `segments/${p.topic.topicId}/`)).length).toBeGreaterThan(0);
    expect(await replay(p.fetcher, p.topic)).toEqual(before);
    p.clock.now += 120_000;
    await p.maintain();
    expect(await objectKeys(storage, `segments/${p.topic.topicId}/`)).toEqual([]);
    expect(await replay(p.fetcher, p.topic)).toEqual(before);
  });

  it('a lost commit response is retried as the same commit, never undone', async () => {
    const p = await duePartition();
    const before = await replay(p.fetcher, p.topic);
    let lost = false;
    const losing = withDynamoFaults(storage, (command) => (command.constructor.name === 'TransactWriteCommand' && !lost ? ((lost = true), 'fail-after') : undefined));
    const m = new Maintenance(losing, p.sequencer, { lease: { now: () => p.clock.now }, compactor: { now: () => p.clock.now }, retention: { now: () => p.clock.now } });
    expect(await m.maintainPartition(await getTopic(storage, p.topic.name), 0)).toMatchObject({ rolled: 1 });
    expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 1 });
    expect(await objectKeys(storage, `logs/${p.pk}/`)).toHaveLength(1);
    expect(await replay(p.fetcher, p.topic)).toEqual(before);
  });

  it('two maintenance passes racing for one partition: one rolls, the other stands aside', async () => {
    const p = await duePartition();
    const before = await replay(p.fetcher, p.topic);
    const topic = await getTopic(storage, p.topic.name);
    const reports = await Promise.all([p.maintenance.maintainPartition(topic, 0), p.maintenance.maintainPartition(topic, 0)]);
    expect(reports.map((r) => r.skipped ?? 'ran').sort()).toEqual(['leased', 'ran']);
    expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 1 });
    expect(await replay(p.fetcher, p.topic)).toEqual(before);
  });
});
