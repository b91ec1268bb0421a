// The consumer-group domain model: plain data, shared by the pure state machine, the assignors and
// the store. A partition is named by a "topic:partition" string (topic names cannot contain ':'),
// which is also how owned partitions are stored, so a DynamoDB condition can test `contains()`.

export type TopicPartition = string;
export type AssignorName = 'uniform' | 'range';
export type AutoOffsetReset = 'earliest' | 'latest';
/** empty: no members; reconciling: some member has not reached its target; stable: all have. */
export type GroupStateName = 'empty' | 'reconciling' | 'stable';

export interface TopicMeta {
  topicId: string;
  partitions: number;
}

export interface Member {
  memberId: string;
  /** The group epoch whose target this member has reached (revocations done). */
  memberEpoch: number;
  /** Accepted in heartbeats too, so a member whose last response was lost is not fenced. */
  previousMemberEpoch: number;
  topics: string[];
  sessionTimeoutMs: number;
  /** How long a member may keep partitions it was asked to revoke before it is removed. */
  rebalanceTimeoutMs: number;
  autoOffsetReset: AutoOffsetReset;
  joinedAt: number;
  lastHeartbeatAt: number;
  /** Set while the member holds partitions outside its target. */
  revokeDeadline?: number;
  /** Partitions this member owns now: disjoint from every other member's. Fences commits. */
  assigned: TopicPartition[];
  /** Partitions the assignor gave this member at the current group epoch. */
  target: TopicPartition[];
  /**
   * Acknowledged positions: the next offset to deliver per owned partition, as far as the client has
   * confirmed receiving. Always positions in the topic incarnations `Group.topics` records: the
   * transition drops them when a recorded topicId changes, so they need no topicId of their own.
   */
  positions: Record<TopicPartition, number>;
  /** The last poll's batch, until the next poll or leave acknowledges it (or discards it). */
  delivery?: Delivery;
}

/** What one poll handed out: kept until acknowledged, because the response may never arrive. */
export interface Delivery {
  /** Returned with the records; the next poll sends it back as `ack` to confirm receipt. */
  pollId: string;
  /** Positions after the batch, for the partitions it moved (or positioned by autoOffsetReset). */
  positions: Record<TopicPartition, number>;
  /** The poll asked for auto-commit: the positions are committed when the batch is acknowledged. */
  commitOnAck: boolean;
}

export interface Group {
  groupId: string;
  /** Optimistic-concurrency counter: every write of the group item increments it. */
  version: number;
  groupEpoch: number;
  state: GroupStateName;
  assignor: AssignorName;
  /** Metadata of the subscribed topics the current target was computed from. */
  topics: Record<string, TopicMeta>;
  members: Record<string, Member>;
  /** Set by a delete in progress: anyone who reads it finishes the deletion first. */
  deleting?: boolean;
  createdAt: number;
}

export const GROUP_ID = /^[a-zA-Z0-9._-]{1,249}$/;

export const SESSION_TIMEOUT_MS = { min: 6_000, max: 300_000, default: 45_000 };
export const REBALANCE_TIMEOUT_MS = { min: 1_000, max: 600_000, default: 60_000 };
export const DEFAULT_ASSIGNOR: AssignorName = 'uniform';

export function topicPartition(topic: string, partition: number): TopicPartition {
  return `${topic}:${partition}`;
}

export function parseTopicPartition(tp: TopicPartition): { topic: string; partition: number } {
  const i = tp.lastIndexOf(':');
  return { topic: tp.slice(0, i), partition: Number(tp.slice(i + 1)) };
}

export function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  const x = parseTopicPartition(a);
  const y = parseTopicPartition(b);
  return x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition;
}

export function sortedTopicPartitions(tps: Iterable<TopicPartition>): TopicPartition[] {
  return [...new Set(tps)].sort(compareTopicPartitions);
}

/** The API shape of a set of partitions: one entry per topic, partitions ascending. */
export function byTopic(tps: Iterable<TopicPartition>): Array<{ topic: string; partitions: number[] }> {
  const out: Array<{ topic: string; partitions: number[] }> = [];
  for (const tp of sortedTopicPartitions(tps)) {
    const { topic, partition } = parseTopicPartition(tp);
    const last = out.at(-1);
    if (last?.topic === topic) last.partitions.push(partition);
    else out.push({ topic, partitions: [partition] });
  }
  return out;
}

/**
 * Acknowledges whatever batch the member was handed last, for clients that never send a pollId back
 * (named instances, lib/groups/instances.ts): the batch stored last counts as received.
 */
export const LAST_DELIVERY = Symbol('the last delivery');

/** What a poll or leave acknowledges: a pollId the client sent back, or LAST_DELIVERY. */
export type Ack = string | typeof LAST_DELIVERY;

/** The pollId an ack names in `member`'s state (undefined: none, so nothing is acknowledged). */
export function ackedPollId(member: Pick<Member, 'delivery'>, ack: Ack | undefined): string | undefined {
  return ack === LAST_DELIVERY ? member.delivery?.pollId : ack;
}

export function heartbeatIntervalMs(member: Pick<Member, 'sessionTimeoutMs'>): number {
  return Math.floor(member.sessionTimeoutMs / 3);
}

/** What the member may consume now: owned and still in its target (the rest is being revoked). */
export function consumable(member: Member): TopicPartition[] {
  const target = new Set(member.target);
  return member.assigned.filter((tp) => target.has(tp));
}

/** The topic incarnations the group's target (and every member position) refers to, by name. */
export function topicIdsOf(group: Pick<Group, 'topics'>): Record<string, string> {
  return Object.fromEntries(Object.entries(group.topics).map(([name, meta]) => [name, meta.topicId]));
}

export function newGroup(groupId: string, assignor: AssignorName, now: number): Group {
  return { groupId, version: 0, groupEpoch: 0, state: 'empty', assignor, topics: {}, members: {}, createdAt: now };
}
