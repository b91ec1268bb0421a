import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rangeAssignor } from '../../lib/groups/assignors/range.ts';
import { uniformStickyAssignor } from '../../lib/groups/assignors/uniform-sticky.ts';
import type { AssignmentSpec, Assignor } from '../../lib/groups/assignors/assignor.ts';
import { parseTopicPartition, topicPartition, type TopicPartition } from '../../lib/groups/model.ts';

const TOPICS = ['a', 'b', 'c'];

const specArb = fc.record({
  memberCount: fc.integer({ min: 1, max: 12 }),
  counts: fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 })),
  subscriptions: fc.array(fc.subarray(TOPICS, { minLength: 1 }), { minLength: 12, maxLength: 12 }),
  homogeneous: fc.boolean(),
}).map(({ memberCount, counts, subscriptions, homogeneous }): AssignmentSpec => ({
  members: Array.from({ length: memberCount }, (_, i) => ({ memberId: `m${String(i).padStart(2, '0')}`, topics: homogeneous ? TOPICS : subscriptions[i]! })),
  partitionCounts: Object.fromEntries(TOPICS.map((t, i) => [t, counts[i]!])),
  previous: {},
}));

function allPartitions(spec: AssignmentSpec): TopicPartition[] {
  return Object.entries(spec.partitionCounts).flatMap(([t, n]) => Array.from({ length: n }, (_, p) => topicPartition(t, p)));
}

function expectEachSubscribedPartitionOnce(spec: AssignmentSpec, result: Record<string, TopicPartition[]>) {
  const owners = new Map<TopicPartition, string[]>();
  for (const [memberId, tps] of Object.entries(result)) {
    const topics = spec.members.find((m) => m.memberId === memberId)!.topics;
    for (const tp of tps) {
      expect(topics).toContain(parseTopicPartition(tp).topic);
      owners.set(tp, [...(owners.get(tp) ?? []), memberId]);
    }
  }
  for (const tp of allPartitions(spec)) {
    const subscribed = spec.members.some((m) => m.topics.includes(parseTopicPartition(tp).topic));
    expect(owners.get(tp)?.length ?? 0).toBe(subscribed ? 1 : 0);
  }
  expect(Object.keys(result).sort()).toEqual(spec.members.map((m) => m.memberId).sort());
}

/** No partition could move to an eligible member with two or more fewer partitions. */
function expectBalanced(spec: AssignmentSpec, result: Record<string, TopicPartition[]>) {
  for (const [memberId, tps] of Object.entries(result)) {
    for (const tp of tps) {
      for (const other of spec.members) {
        if (other.memberId === memberId || !other.topics.includes(parseTopicPartition(tp).topic)) continue;
        expect(result[other.memberId]!.length).toBeGreaterThanOrEqual(tps.length - 1);
      }
    }
  }
}

describe.each<[string, Assignor]>([['uniform sticky', uniformStickyAssignor], ['range', rangeAssignor]])('%s assignor', (_name, assign) => {
  it('assigns every subscribed partition to exactly one subscriber, and is deterministic', () => {
    fc.assert(fc.property(specArb, (spec) => {
      const result = assign(spec);
      expectEachSubscribedPartitionOnce(spec, result);
      expect(assign({ ...spec, members: [...spec.members].reverse() })).toEqual(result);
    }));
  });

  it('leaves extra members idle when there are more members than partitions', () => {
    const spec: AssignmentSpec = { members: ['m1', 'm2', 'm3', 'm4'].map((memberId) => ({ memberId, topics: ['a'] })), partitionCounts: { a: 2 }, previous: {} };
    const counts = Object.values(assign(spec)).map((tps) => tps.length).sort();
    expect(counts).toEqual([0, 0, 1, 1]);
  });
});

describe('uniform sticky assignor', () => {
  it('is balanced, for identical and for differing subscriptions', () => {
    fc.assert(fc.property(specArb, (spec) => expectBalanced(spec, uniformStickyAssignor(spec))));
  });

  it('gives every member floor or ceil of partitions/members when subscriptions are identical', () => {
    fc.assert(fc.property(specArb.filter((s) => s.members.every((m) => m.topics.length === TOPICS.length)), (spec) => {
      const total = allPartitions(spec).length;
      const n = spec.members.length;
      for (const tps of Object.values(uniformStickyAssignor(spec))) {
        expect(tps.length).toBeGreaterThanOrEqual(Math.floor(total / n));
        expect(tps.length).toBeLessThanOrEqual(Math.ceil(total / n));
      }
    }));
  });

  it('is sticky: a joining member takes only what balance requires, a leaving member moves only its own partitions', () => {
    fc.assert(fc.property(specArb.filter((s) => s.members.every((m) => m.topics.length === TOPICS.length)), fc.boolean(), (spec, join) => {
      const before = uniformStickyAssignor(spec);
      const members = join ? [...spec.members, { memberId: 'zz-new', topics: TOPICS }] : spec.members.slice(1);
      if (members.length === 0) return;
      const after = uniformStickyAssignor({ ...spec, members, previous: before });
      const quota = Math.floor(allPartitions(spec).length / members.length);
      for (const m of members) {
        const kept = (before[m.memberId] ?? []).filter((tp) => after[m.memberId]!.includes(tp)).length;
        if (join) expect(kept).toBeGreaterThanOrEqual(Math.min(before[m.memberId]?.length ?? 0, quota));
        else expect(kept).toBe(before[m.memberId]!.length);
      }
    }));
  });

  it('keeps a balanced previous assignment unchanged', () => {
    fc.assert(fc.property(specArb, (spec) => {
      const first = uniformStickyAssignor(spec);
      expect(uniformStickyAssignor({ ...spec, previous: first })).toEqual(first);
    }));
  });
});

describe('range assignor', () => {
  it("matches Kafka's documented example", () => {
    const result = rangeAssignor({ members: [{ memberId: 'C0', topics: ['t0', 't1'] }, { memberId: 'C1', topics: ['t0', 't1'] }], partitionCounts: { t0: 3, t1: 3 }, previous: {} });
    expect(result).toEqual({ C0: ['t0:0', 't0:1', 't1:0', 't1:1'], C1: ['t0:2', 't1:2'] });
  });
});
