// Group administration: list, describe (members, assignments, committed offsets and lag), delete.
// Reads show the group as the next write would leave it (expired members gone) without writing.
import { NotFoundError, PartitionLogMissingError } from '../errors.ts';
import { logPartitionKey } from '../log/keys.ts';
import type { Sequencer } from '../log/sequencer.ts';
import { getTopicCached, type Topic } from '../topics/topic-store.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { requireGroup } from './group-store.ts';
import { byTopic, consumable, parseTopicPartition, sortedTopicPartitions, topicPartition, type AssignorName, type GroupStateName, type Member } from './model.ts';
import { transition } from './reconcile.ts';

export interface GroupDescription {
  group: string;
  state: GroupStateName;
  groupEpoch: number;
  assignor: AssignorName;
  members: Array<{
    memberId: string;
    memberEpoch: number;
    topics: string[];
    assignment: Array<{ topic: string; partitions: number[] }>;
    /** Owned but outside the target: being released. */
    revoking: Array<{ topic: string; partitions: number[] }>;
    /** In the target but still owned by another member. */
    pending: Array<{ topic: string; partitions: number[] }>;
    sessionTimeoutMs: number;
    lastHeartbeatAt: number;
  }>;
  offsets: Array<{
    topic: string;
    partition: number;
    committedOffset: number | null;
    metadata: string | null;
    committedAt: number | null;
    highWatermark: number | null;
    lag: number | null;
  }>;
}

export class GroupAdmin {
  constructor(private readonly coordinator: GroupCoordinator, private readonly sequencer: Sequencer) {}

  async list(): Promise<Array<{ group: string; state: GroupStateName; groupEpoch: number; assignor: AssignorName; members: number }>> {
    const groups = await this.coordinator.store.list();
    return groups.map((stored) => {
      const g = this.coordinator.project(stored);
      return { group: g.groupId, state: g.state, groupEpoch: g.groupEpoch, assignor: g.assignor, members: Object.keys(g.members).length };
    });
  }

  /** Every group that has members, with each member's assignment (what it may consume now). */
  async assignments(): Promise<Array<{ group: string; members: Array<{ memberId: string; assignment: Array<{ topic: string; partitions: number[] }> }> }>> {
    const groups = (await this.coordinator.store.list()).filter((g) => !g.deleting).map((g) => this.coordinator.project(g));
    return groups.filter((g) => Object.keys(g.members).length > 0).map((g) => ({
      group: g.groupId,
      members: Object.values(g.members).sort(byJoinTime).map((m) => ({ memberId: m.memberId, assignment: byTopic(consumable(m)) })),
    }));
  }

  async describe(groupId: string): Promise<GroupDescription> {
    const [stored, committed] = await Promise.all([this.coordinator.store.read(groupId), this.coordinator.store.readOffsets(groupId)]);
    if (!stored || stored.deleting) throw new NotFoundError('UNKNOWN_GROUP', `group ${JSON.stringify(groupId)} does not exist`);
    const group = this.coordinator.project(stored);
    const members = Object.values(group.members).sort(byJoinTime).map((m) => {
      const target = new Set(m.target);
      const owned = new Set(Object.values(group.members).flatMap((other) => other.assigned));
      return {
        memberId: m.memberId,
        memberEpoch: m.memberEpoch,
        topics: m.topics,
        assignment: byTopic(consumable(m)),
        revoking: byTopic(m.assigned.filter((tp) => !target.has(tp))),
        pending: byTopic(m.target.filter((tp) => owned.has(tp) && !m.assigned.includes(tp))),
        sessionTimeoutMs: m.sessionTimeoutMs,
        lastHeartbeatAt: m.lastHeartbeatAt,
      };
    });
    // Offsets count only for the topic that exists now: a deleted topic's offsets are not its namesake's.
    const current = await this.currentTopics([...Object.keys(group.topics), ...committed.map((o) => o.topic)]);
    const byPartition = new Map(committed.filter((o) => current.get(o.topic)?.topicId === o.topicId).map((o) => [topicPartition(o.topic, o.partition), o]));
    const subscribed = Object.entries(group.topics).flatMap(([topic, meta]) => Array.from({ length: meta.partitions }, (_, p) => topicPartition(topic, p)));
    const offsets = await Promise.all(sortedTopicPartitions([...subscribed, ...byPartition.keys()]).map(async (tp) => {
      const { topic, partition } = parseTopicPartition(tp);
      const o = byPartition.get(tp);
      const bounds = await this.bounds(current.get(topic), partition);
      const highWatermark = bounds?.highWatermark ?? null;
      return {
        topic,
        partition,
        committedOffset: o?.offset ?? null,
        metadata: o?.metadata ?? null,
        committedAt: o?.committedAt ?? null,
        highWatermark,
        // A committed offset below the log start resumes there: the records in between are gone.
        lag: o !== undefined && bounds ? Math.max(0, bounds.highWatermark - Math.max(o.offset, bounds.logStart)) : null,
      };
    }));
    return { group: group.groupId, state: group.state, groupEpoch: group.groupEpoch, assignor: group.assignor, members, offsets };
  }

  /** Deletes the group and its offsets; refused while it has active members. */
  async delete(groupId: string): Promise<void> {
    const marked = await this.coordinator.store.mutate(groupId, async (current) => {
      const group = transition(requireGroup(current, groupId), { type: 'require-empty' }, { now: this.coordinator.now(), topics: {} });
      return { group: { ...group, deleting: true } };
    });
    await this.coordinator.store.finishDeletion(marked);
  }

  /** The topics of these names that exist now; a deleted one is missing. */
  private async currentTopics(names: string[]): Promise<Map<string, Topic>> {
    const found = await Promise.all([...new Set(names)].map(async (name) => {
      try {
        return await getTopicCached(this.coordinator.storage, name);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    }));
    return new Map(found.filter((t) => t !== undefined).map((t) => [t.name, t]));
  }

  private async bounds(topic: Topic | undefined, partition: number): Promise<{ logStart: number; highWatermark: number } | null> {
    if (!topic || partition >= topic.partitions) return null;
    try {
      const view = await this.sequencer.read(logPartitionKey(topic.topicId, partition), { withTail: false });
      return { logStart: view.state.logStart, highWatermark: view.highWatermark };
    } catch (err) {
      // Deleted since it was looked up (the cached metadata was stale).
      if (err instanceof PartitionLogMissingError) return null;
      throw err;
    }
  }
}

function byJoinTime(a: Member, b: Member): number {
  return a.joinedAt - b.joinedAt || (a.memberId < b.memberId ? -1 : 1);
}
