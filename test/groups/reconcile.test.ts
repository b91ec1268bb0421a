import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consumable, newGroup, parseTopicPartition, SESSION_TIMEOUT_MS, type Group, type TopicMeta } from '../../lib/groups/model.ts';
import { transition, type GroupEvent, type JoinRequest } from '../../lib/groups/reconcile.ts';

const SESSION = SESSION_TIMEOUT_MS.min;

function join(memberId: string, topics = ['a'], extra: Partial<JoinRequest> = {}): GroupEvent {
  return { type: 'join', join: { memberId, topics, sessionTimeoutMs: SESSION, rebalanceTimeoutMs: 4 * SESSION, autoOffsetReset: 'earliest', ...extra } };
}

/** A well-behaved member's view: the assignment and epoch of the last response it received. */
interface Client { memberId: string; epoch: number; owns: string[] }

function expectNoPartitionOwnedTwice(group: Group) {
  const seen = new Map<string, string>();
  for (const m of Object.values(group.members)) {
    for (const tp of m.assigned) {
      expect(seen.get(tp), `${tp} owned by ${seen.get(tp)} and ${m.memberId}`).toBeUndefined();
      seen.set(tp, m.memberId);
    }
  }
}

describe('group state machine', () => {
  const topics: Record<string, TopicMeta> = { a: { topicId: 'ida', partitions: 4 } };
  const ctx = (now: number) => ({ now, topics });

  it('moves a partition to its new owner only after the old owner released it', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    expect(consumable(g.members.m1!)).toEqual(['a:0', 'a:1', 'a:2', 'a:3']);
    g = transition(g, join('m2'), ctx(1));
    expect(g.groupEpoch).toBe(2);
    expect(g.members.m2!.assigned).toEqual([]); // m1 still owns everything
    expect(g.members.m2!.memberEpoch).toBe(2);
    g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1, owned: ['a:0', 'a:1', 'a:2', 'a:3'] }, ctx(2));
    expect(consumable(g.members.m1!)).toHaveLength(2); // told to revoke two
    expect(g.members.m1!.assigned).toHaveLength(4); // but still owns them until it says so
    expect(g.members.m1!.memberEpoch).toBe(1);
    const keep = consumable(g.members.m1!);
    g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1, owned: keep }, ctx(3));
    expect(g.members.m1!.assigned).toEqual(keep);
    expect(g.members.m1!.memberEpoch).toBe(2);
    expect(g.state).toBe('reconciling');
    g = transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 2, owned: [] }, ctx(4));
    expect(g.members.m2!.assigned).toHaveLength(2);
    expect(g.state).toBe('stable');
    expectNoPartitionOwnedTwice(g);
  });

  it('frees the partitions of a member whose session expired, at the next touch, and fences it', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    g = transition(g, join('m2'), ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1, owned: consumable(g.members.m1!) }, ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 2 }, ctx(SESSION / 2));
    expect(g.members.m2!.assigned).toHaveLength(2);
    const later = SESSION + 1; // m1 silent for longer than its session, m2 not
    g = transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 2 }, ctx(later));
    expect(Object.keys(g.members)).toEqual(['m2']);
    expect(g.members.m2!.assigned).toEqual(['a:0', 'a:1', 'a:2', 'a:3']);
    expect(() => transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 2 }, ctx(later))).toThrow(expect.objectContaining({ code: 'UNKNOWN_MEMBER_ID' }));
  });

  it('removes a member that keeps partitions past its rebalance timeout', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    g = transition(g, join('m2'), ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1 }, ctx(0)); // revocation starts, never acknowledged
    let fenced: unknown;
    for (let t = SESSION / 2; !fenced; t += SESSION / 2) {
      g = transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: g.members.m2!.memberEpoch }, ctx(t));
      try {
        g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1 }, ctx(t));
      } catch (err) {
        fenced = err;
        expect(t).toBeGreaterThan(4 * SESSION);
      }
    }
    expect(fenced).toMatchObject({ code: 'UNKNOWN_MEMBER_ID' });
    expect(g.members.m1).toBeUndefined();
    expect(g.members.m2!.assigned).toHaveLength(4);
  });

  it('fences a heartbeat from an epoch older than the previous one', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    g = transition(g, join('m2'), ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1, owned: consumable(g.members.m1!) }, ctx(0));
    g = transition(g, join('m3'), ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 2, owned: [] }, ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 3, owned: consumable(g.members.m2!) }, ctx(0));
    expect(() => transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 1 }, ctx(0))).toThrow(expect.objectContaining({ code: 'FENCED_MEMBER_EPOCH' }));
    expect(() => transition(g, { type: 'heartbeat', memberId: 'm2', memberEpoch: 2 }, ctx(0))).not.toThrow();
  });

  it('moves a member past a delivery only when the next poll acknowledges it; a missing or superseded ack discards it', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    const owned = consumable(g.members.m1!);
    const deliver = (pollId: string, offset: number) => transition(g, { type: 'delivered', memberId: 'm1', delivery: { pollId, positions: { 'a:0': offset }, commitOnAck: true }, topicIds: { a: 'ida' } }, ctx(0));
    g = deliver('p1', 5);
    expect(g.members.m1!.positions).toEqual({});
    g = transition(g, { type: 'poll', memberId: 'm1', owned }, ctx(0)); // p1's response was lost
    expect(g.members.m1!.delivery).toBeUndefined();
    expect(g.members.m1!.positions).toEqual({});
    g = deliver('p2', 5);
    g = deliver('p3', 5); // a concurrent duplicate poll supersedes p2
    g = transition(g, { type: 'poll', memberId: 'm1', owned, ack: 'p2' }, ctx(0));
    expect(g.members.m1!.positions).toEqual({});
    g = deliver('p4', 5);
    g = transition(g, { type: 'poll', memberId: 'm1', owned, ack: 'p4' }, ctx(0));
    expect(g.members.m1!.positions).toEqual({ 'a:0': 5 });
    expect(g.members.m1!.delivery).toBeUndefined();
  });

  it('drops positions into a topic incarnation the group no longer records', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    const owned = consumable(g.members.m1!);
    g = transition(g, { type: 'delivered', memberId: 'm1', delivery: { pollId: 'p1', positions: { 'a:0': 5 }, commitOnAck: true }, topicIds: { a: 'ida' } }, ctx(0));
    g = transition(g, { type: 'poll', memberId: 'm1', owned, ack: 'p1' }, ctx(0));
    g = transition(g, { type: 'delivered', memberId: 'm1', delivery: { pollId: 'p2', positions: { 'a:0': 9 }, commitOnAck: true }, topicIds: { a: 'ida' } }, ctx(0));
    const reborn = { a: { topicId: 'ida2', partitions: 4 } };
    // The topic was deleted and re-created: acknowledged and delivered positions go with the old log.
    const next = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1 }, { now: 0, topics: reborn });
    expect(next.members.m1!.positions).toEqual({});
    expect(next.members.m1!.delivery).toBeUndefined();
    // A delivery read while the group still recorded the old topic is not kept once it records the new one.
    const late = transition(next, { type: 'delivered', memberId: 'm1', delivery: { pollId: 'p3', positions: { 'a:0': 9 }, commitOnAck: true }, topicIds: { a: 'ida' } }, { now: 0, topics: reborn });
    expect(late.members.m1!.delivery).toBeUndefined();
  });

  it('treats a retried join as a heartbeat and a repeated leave as done', () => {
    const once = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    const twice = transition(once, join('m1'), ctx(0));
    expect(twice.groupEpoch).toBe(once.groupEpoch);
    const left = transition(twice, { type: 'leave', memberId: 'm1' }, ctx(0));
    expect(transition(left, { type: 'leave', memberId: 'm1' }, ctx(0)).groupEpoch).toBe(left.groupEpoch);
    expect(left.state).toBe('empty');
  });

  it('allows standalone commits and assignor changes only while empty', () => {
    const g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    expect(() => transition(g, { type: 'require-empty' }, ctx(0))).toThrow(expect.objectContaining({ code: 'NON_EMPTY_GROUP' }));
    expect(() => transition(g, join('m2', ['a'], { assignor: 'range' }), ctx(0))).toThrow(expect.objectContaining({ code: 'INCONSISTENT_ASSIGNOR' }));
  });

  it('bumps the epoch and assigns new partitions when a topic grows', () => {
    let g = transition(newGroup('g', 'uniform', 0), join('m1'), ctx(0));
    g = transition(g, { type: 'heartbeat', memberId: 'm1', memberEpoch: 1 }, { now: 1, topics: { a: { topicId: 'ida', partitions: 6 } } });
    expect(g.groupEpoch).toBe(2);
    expect(g.members.m1!.assigned).toHaveLength(6);
  });

  it('never lets two members own a partition, whatever happens, and converges once members keep heartbeating', () => {
    type Step =
      | { kind: 'join'; topics: string[] }
      | { kind: 'heartbeat'; who: number; lostResponse: boolean }
      | { kind: 'poll'; who: number }
      | { kind: 'zombie'; who: number }
      | { kind: 'leave'; who: number }
      | { kind: 'tick'; ms: number }
      | { kind: 'grow'; topic: 'a' | 'b' };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('join' as const), topics: fc.subarray(['a', 'b'], { minLength: 1 }) }),
      fc.record({ kind: fc.constant('heartbeat' as const), who: fc.nat(20), lostResponse: fc.boolean() }),
      fc.record({ kind: fc.constant('heartbeat' as const), who: fc.nat(20), lostResponse: fc.constant(false) }),
      fc.record({ kind: fc.constant('poll' as const), who: fc.nat(20) }),
      fc.record({ kind: fc.constant('zombie' as const), who: fc.nat(20) }),
      fc.record({ kind: fc.constant('leave' as const), who: fc.nat(20) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 2 * SESSION }) }),
      fc.record({ kind: fc.constant('grow' as const), topic: fc.constantFrom('a' as const, 'b' as const) }),
    );
    fc.assert(fc.property(fc.constantFrom('uniform' as const, 'range' as const), fc.array(step, { maxLength: 60 }), (assignor, steps) => {
      const meta: Record<string, TopicMeta> = { a: { topicId: 'ida', partitions: 3 }, b: { topicId: 'idb', partitions: 5 } };
      let now = 0;
      let g = newGroup('g', assignor, 0);
      const clients: Client[] = [];
      let next = 0;
      let applied = 0;
      const apply = (event: GroupEvent, client?: Client, lostResponse = false) => {
        try {
          g = transition(g, event, { now, topics: meta });
          applied++;
        } catch (err) {
          expect((err as { code?: string }).code).toMatch(/^(UNKNOWN_MEMBER_ID|FENCED_MEMBER_EPOCH)$/);
          return;
        }
        const m = client && g.members[client.memberId];
        if (m && !lostResponse) Object.assign(client, { epoch: m.memberEpoch, owns: consumable(m) });
      };
      const heartbeat = (c: Client, lostResponse = false) => apply({ type: 'heartbeat', memberId: c.memberId, memberEpoch: c.epoch, owned: c.owns }, c, lostResponse);

      for (const s of steps) {
        const client = clients.length > 0 ? clients[('who' in s ? s.who : 0) % clients.length]! : undefined;
        switch (s.kind) {
          case 'join': {
            const c = { memberId: `m${next++}`, epoch: 0, owns: [] };
            clients.push(c);
            apply(join(c.memberId, s.topics), c);
            break;
          }
          case 'heartbeat': if (client) heartbeat(client, s.lostResponse); break;
          case 'poll': if (client) apply({ type: 'poll', memberId: client.memberId, owned: client.owns }, client); break;
          case 'zombie': if (client) apply({ type: 'heartbeat', memberId: client.memberId, memberEpoch: client.epoch - 1, owned: client.owns }, client); break;
          case 'leave': if (client) { apply({ type: 'leave', memberId: client.memberId }); clients.splice(clients.indexOf(client), 1); } break;
          case 'tick': now += s.ms; break;
          case 'grow': meta[s.topic] = { ...meta[s.topic]!, partitions: meta[s.topic]!.partitions + 1 }; break;
        }
        expectNoPartitionOwnedTwice(g);
        // What a live client believes it owns, the group says it owns: nobody else can have it.
        for (const c of clients) if (g.members[c.memberId]) for (const tp of c.owns) expect(g.members[c.memberId]!.assigned).toContain(tp);
      }

      // Liveness: with the clock stopped, a few rounds of heartbeats from the live members settle the group.
      const appliedBefore = applied;
      for (let round = 0; round < 3; round++) for (const c of clients) heartbeat(c);
      // Nobody left alive to touch the group (and expire the rest): nothing to converge.
      if (applied === appliedBefore || Object.keys(g.members).length === 0) return;
      expect(g.state).toBe('stable');
      const owned = Object.values(g.members).flatMap((m) => m.assigned);
      const subscribed = new Set(Object.values(g.members).flatMap((m) => m.topics));
      const expected = Object.entries(meta).filter(([t]) => subscribed.has(t)).reduce((n, [, m]) => n + m.partitions, 0);
      expect(owned).toHaveLength(expected);
      for (const tp of owned) expect(subscribed.has(parseTopicPartition(tp).topic)).toBe(true);
    }), { numRuns: 300 });
  });
});
