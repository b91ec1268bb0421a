// The group state machine, pure: (group, event, context) → new group. Every request that touches a
// group runs exactly one transition on the state it read, and the store writes the result only if
// nobody wrote in between, so this function is the whole protocol. It follows KIP-848:
//   - Lazy expiry: members past their session timeout, or holding partitions to revoke past their
//     rebalance timeout, are removed first, whatever the event.
//   - A change of membership, subscriptions or subscribed topics' metadata bumps the group epoch
//     and recomputes every member's target with the group's assignor.
//   - Incremental reconciliation of the acting member: partitions it holds outside its target are
//     revoked (kept until it acknowledges the release); once none are left, its member epoch moves
//     to the group epoch and it takes the target partitions nobody else owns. A member only ever
//     takes free partitions, so no partition is ever owned by two members.
//   - Member positions follow ownership and topic incarnations: they are dropped with a partition
//     the member releases, and with a topic whose recorded topicId changes.
//   - `ctx.topics` is trusted as given: the coordinator reads a topic consistently before it can
//     differ from what the group records, so a stale cache never changes a recorded topicId.
import { ConflictError } from '../errors.ts';
import { ASSIGNORS } from './assignors/assignor.ts';
import { parseTopicPartition, sortedTopicPartitions, type AssignorName, type AutoOffsetReset, type Delivery, type Group, type GroupStateName, type Member, type TopicMeta, type TopicPartition } from './model.ts';

export interface TransitionContext {
  now: number;
  /** Metadata of (at least) every topic subscribed after the event; a missing topic is deleted. */
  topics: Record<string, TopicMeta>;
}

export interface JoinRequest {
  memberId: string;
  topics: string[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  autoOffsetReset: AutoOffsetReset;
  assignor?: AssignorName;
}

export type GroupEvent =
  /** Joining again with a member id that exists (a retried join) is a heartbeat. */
  | { type: 'join'; join: JoinRequest }
  /**
   * `memberEpoch` must be the member's epoch or the one before it. `owned` (omitted: unchanged) lists
   * what the member still holds: partitions it was asked to revoke and no longer lists are released.
   */
  | { type: 'heartbeat'; memberId: string; memberEpoch: number; owned?: TopicPartition[] }
  /**
   * The start of a poll: a heartbeat that releases what `owned` leaves out, and settles the pending
   * delivery. An `ack` equal to its pollId promotes its positions to the acknowledged ones; any
   * other ack, or none, discards it, so the next fetch starts again from the acknowledged positions.
   */
  | { type: 'poll'; memberId: string; owned: TopicPartition[]; ack?: string }
  /**
   * A poll's batch, stored as the pending delivery. Only positions of partitions the member still
   * owns, read from the topic incarnations (`topicIds`) the group still records, are kept.
   */
  | { type: 'delivered'; memberId: string; delivery: Delivery; topicIds: Record<string, string> }
  /** Leaving is idempotent: an unknown member is already gone. */
  | { type: 'leave'; memberId: string }
  /** Offsets written without a member (standalone commit, reset), or deletion: refused while members are active. */
  | { type: 'require-empty' }
  /** Nothing but lazy expiry (describe and list project it without writing). */
  | { type: 'touch' };

export function unknownMember(memberId: string): ConflictError {
  return new ConflictError('UNKNOWN_MEMBER_ID', `member ${memberId} is not in the group (it left or its session expired): join again`);
}

export function fencedMember(memberId: string, epoch: number, current: number, reason = `its current epoch is ${current}`): ConflictError {
  return new ConflictError('FENCED_MEMBER_EPOCH', `member ${memberId} at epoch ${epoch} is fenced: ${reason}. Heartbeat for the current assignment and epoch`);
}

export function transition(current: Group, event: GroupEvent, ctx: TransitionContext): Group {
  const group = structuredClone(current);
  let membershipChanged = expireMembers(group, ctx.now);
  let actor: Member | undefined;
  let owned: TopicPartition[] | undefined;

  switch (event.type) {
    case 'join': {
      actor = group.members[event.join.memberId];
      if (actor) break;
      actor = joinMember(group, event.join, ctx.now);
      membershipChanged = true;
      break;
    }
    case 'heartbeat': {
      actor = requireMember(group, event.memberId);
      if (event.memberEpoch !== actor.memberEpoch && event.memberEpoch !== actor.previousMemberEpoch) {
        throw fencedMember(actor.memberId, event.memberEpoch, actor.memberEpoch);
      }
      owned = event.owned;
      break;
    }
    case 'leave': {
      if (!group.members[event.memberId]) break;
      delete group.members[event.memberId];
      membershipChanged = true;
      break;
    }
    case 'poll': {
      actor = requireMember(group, event.memberId);
      if (event.ack !== undefined && actor.delivery?.pollId === event.ack) Object.assign(actor.positions, actor.delivery.positions);
      delete actor.delivery;
      owned = event.owned;
      break;
    }
    case 'delivered': {
      actor = requireMember(group, event.memberId);
      // Offsets read from a topic incarnation the group no longer records belong to another log.
      const positions = Object.entries(event.delivery.positions).filter(([tp]) => {
        const { topic } = parseTopicPartition(tp);
        return event.topicIds[topic] !== undefined && group.topics[topic]?.topicId === event.topicIds[topic];
      });
      // Nothing left to acknowledge (say, the only topic polled was found replaced): no delivery.
      if (positions.length > 0) actor.delivery = { ...event.delivery, positions: Object.fromEntries(positions) };
      else delete actor.delivery;
      break;
    }
    case 'require-empty': {
      if (Object.keys(group.members).length > 0) {
        throw new ConflictError('NON_EMPTY_GROUP', `group ${group.groupId} has active members: offsets can be written only by the members owning the partitions, and the group reset or deleted only once it is empty`);
      }
      break;
    }
    case 'touch':
      break;
  }

  if (actor) actor.lastHeartbeatAt = ctx.now;
  refreshTarget(group, ctx, membershipChanged);
  if (actor) reconcileMember(group, actor, ctx.now, owned);
  group.state = stateOf(group);
  return group;
}

function requireMember(group: Group, memberId: string): Member {
  const member = group.members[memberId];
  if (!member) throw unknownMember(memberId);
  return member;
}

function joinMember(group: Group, join: JoinRequest, now: number): Member {
  const empty = Object.keys(group.members).length === 0;
  if (join.assignor && join.assignor !== group.assignor) {
    if (!empty) throw new ConflictError('INCONSISTENT_ASSIGNOR', `group ${group.groupId} uses the ${group.assignor} assignor; it can change only while the group is empty`);
    group.assignor = join.assignor;
  }
  const member: Member = {
    memberId: join.memberId,
    memberEpoch: 0,
    previousMemberEpoch: 0,
    topics: [...new Set(join.topics)].sort(),
    sessionTimeoutMs: join.sessionTimeoutMs,
    rebalanceTimeoutMs: join.rebalanceTimeoutMs,
    autoOffsetReset: join.autoOffsetReset,
    joinedAt: now,
    lastHeartbeatAt: now,
    assigned: [],
    target: [],
    positions: {},
  };
  group.members[member.memberId] = member;
  return member;
}

/** Removes members whose session or rebalance timeout has passed; their partitions become free. */
function expireMembers(group: Group, now: number): boolean {
  let removed = false;
  for (const member of Object.values(group.members)) {
    const sessionOver = now > member.lastHeartbeatAt + member.sessionTimeoutMs;
    const revocationOverdue = member.revokeDeadline !== undefined && now > member.revokeDeadline;
    if (sessionOver || revocationOverdue) {
      delete group.members[member.memberId];
      removed = true;
    }
  }
  return removed;
}

/** Bumps the group epoch and recomputes targets if membership or subscribed topics changed. */
function refreshTarget(group: Group, ctx: TransitionContext, membershipChanged: boolean): void {
  const members = Object.values(group.members);
  const subscribed = new Set(members.flatMap((m) => m.topics));
  const topics: Record<string, TopicMeta> = {};
  for (const topic of [...subscribed].sort()) {
    const meta = ctx.topics[topic];
    if (meta) topics[topic] = { topicId: meta.topicId, partitions: meta.partitions };
  }
  if (!membershipChanged && sameTopics(topics, group.topics)) return;
  // A topic deleted (and maybe re-created under a new topicId) has a new log: offsets into the old
  // one mean nothing there.
  const replaced = new Set(Object.keys(group.topics).filter((name) => topics[name]?.topicId !== group.topics[name]!.topicId));
  if (replaced.size > 0) for (const m of members) keepPositions(m, (tp) => !replaced.has(parseTopicPartition(tp).topic));
  group.groupEpoch += 1;
  group.topics = topics;
  const targets = ASSIGNORS[group.assignor]({
    members: members.map((m) => ({ memberId: m.memberId, topics: m.topics })),
    partitionCounts: Object.fromEntries(Object.entries(topics).map(([name, meta]) => [name, meta.partitions])),
    previous: Object.fromEntries(members.map((m) => [m.memberId, m.target])),
  });
  for (const m of members) m.target = targets[m.memberId] ?? [];
}

/** Compared by content: stored maps come back from DynamoDB in any key order. */
function sameTopics(a: Record<string, TopicMeta>, b: Record<string, TopicMeta>): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => b[name]?.topicId === a[name]!.topicId && b[name]?.partitions === a[name]!.partitions);
}

function reconcileMember(group: Group, member: Member, now: number, owned: TopicPartition[] | undefined): void {
  const target = new Set(member.target);
  if (owned) {
    const stillHeld = new Set(owned);
    member.assigned = member.assigned.filter((tp) => target.has(tp) || stillHeld.has(tp));
  }
  const revoking = member.assigned.some((tp) => !target.has(tp));
  if (revoking) {
    member.revokeDeadline ??= now + member.rebalanceTimeoutMs;
  } else {
    delete member.revokeDeadline;
    if (member.memberEpoch !== group.groupEpoch) {
      member.previousMemberEpoch = member.memberEpoch;
      member.memberEpoch = group.groupEpoch;
    }
    const taken = new Set(Object.values(group.members).filter((m) => m.memberId !== member.memberId).flatMap((m) => m.assigned));
    member.assigned = sortedTopicPartitions([...member.assigned, ...member.target.filter((tp) => !taken.has(tp))]);
  }
  // Positions belong to ownership: a partition that comes back later starts from its committed offset.
  const assigned = new Set(member.assigned);
  keepPositions(member, (tp) => assigned.has(tp));
}

/** Keeps the acknowledged and the delivered positions of the partitions `keep` accepts. */
function keepPositions(member: Member, keep: (tp: TopicPartition) => boolean): void {
  member.positions = Object.fromEntries(Object.entries(member.positions).filter(([tp]) => keep(tp)));
  if (!member.delivery) return;
  const delivered = Object.entries(member.delivery.positions).filter(([tp]) => keep(tp));
  if (delivered.length > 0) member.delivery.positions = Object.fromEntries(delivered);
  else delete member.delivery;
}

function stateOf(group: Group): GroupStateName {
  const members = Object.values(group.members);
  if (members.length === 0) return 'empty';
  const settled = members.every((m) => m.memberEpoch === group.groupEpoch && m.assigned.length === m.target.length && m.assigned.every((tp, i) => tp === m.target[i]));
  return settled ? 'stable' : 'reconciling';
}
