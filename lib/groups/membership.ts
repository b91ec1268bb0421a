// Member lifecycle: join, heartbeat, leave. The answer to each is the member's current assignment:
// the partitions it owns and may consume now (anything it holds beyond that, it must release).
import { ConflictError } from '../errors.ts';
import { getTopicCached } from '../topics/topic-store.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { newMemberId } from './group-store.ts';
import { ackedPollId, byTopic, consumable, heartbeatIntervalMs, REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS, type Ack, type AssignorName, type AutoOffsetReset, type Group, type TopicPartition } from './model.ts';
import type { Offsets } from './offsets.ts';
import { unknownMember } from './reconcile.ts';

export interface JoinInput {
  /** A member id the client chose (a named instance, see instances.ts); generated when omitted. */
  memberId?: string;
  topics: string[];
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  assignor?: AssignorName;
  autoOffsetReset?: AutoOffsetReset;
}

export interface MemberAssignment {
  memberId: string;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  assignment: Array<{ topic: string; partitions: number[] }>;
}

export function assignmentOf(group: Group, memberId: string): MemberAssignment {
  const member = group.members[memberId];
  if (!member) throw unknownMember(memberId);
  return { memberId, memberEpoch: member.memberEpoch, heartbeatIntervalMs: heartbeatIntervalMs(member), assignment: byTopic(consumable(member)) };
}

export class Membership {
  constructor(private readonly coordinator: GroupCoordinator, private readonly offsets: Offsets) {}

  async join(groupId: string, input: JoinInput): Promise<MemberAssignment> {
    // Unknown topics are refused before anything is written.
    await Promise.all(input.topics.map((topic) => getTopicCached(this.coordinator.storage, topic)));
    // Chosen once, outside the retry loop: a retry after an ambiguous failure finds its own member.
    const memberId = input.memberId ?? newMemberId();
    const group = await this.coordinator.apply(groupId, {
      type: 'join',
      join: {
        memberId,
        topics: input.topics,
        sessionTimeoutMs: input.sessionTimeoutMs ?? SESSION_TIMEOUT_MS.default,
        rebalanceTimeoutMs: input.rebalanceTimeoutMs ?? REBALANCE_TIMEOUT_MS.default,
        autoOffsetReset: input.autoOffsetReset ?? 'latest',
        assignor: input.assignor,
      },
    }, { ifAbsent: 'create' });
    return assignmentOf(group, memberId);
  }

  /** `owned` (omitted: unchanged) is what the member still holds; revoked partitions not listed are released. */
  async heartbeat(groupId: string, memberId: string, memberEpoch: number, owned?: TopicPartition[]): Promise<MemberAssignment> {
    const group = await this.coordinator.apply(groupId, { type: 'heartbeat', memberId, memberEpoch, owned }, { ifAbsent: () => unknownMember(memberId) });
    return assignmentOf(group, memberId);
  }

  /**
   * Leaves at once, freeing the member's partitions. An `ack` of the last poll first auto-commits
   * that batch (if its poll asked for auto-commit); without one, the batch is redelivered to the
   * next owner, since the client may never have received it.
   */
  async leave(groupId: string, memberId: string, ack?: Ack): Promise<void> {
    const group = await this.coordinator.store.read(groupId);
    const member = group?.members[memberId];
    if (!group || !member) return;
    try {
      await this.offsets.commitAcknowledged(group, member, ackedPollId(member, ack));
    } catch (err) {
      // Fenced meanwhile (it no longer owns the partitions, or it is gone): committing them is the
      // next owner's business. A commit merely refused at an epoch its own heartbeat since moved on
      // was already retried at the new one; a group that kept changing is worth retrying the leave.
      if (!(err instanceof ConflictError) || err.code === 'CONCURRENT_MODIFICATION') throw err;
    }
    await this.coordinator.apply(groupId, { type: 'leave', memberId }, { ifAbsent: () => unknownMember(memberId), known: group });
  }
}
