// Group administration: list, describe (members, assignments, committed offsets and lag), delete.
// Reads show the group as the next write would leave it (expired members gone) without writing.
import { NotFoundError } from '../errors.ts';
import { logPartitionKey } from '../log/keys.ts';
import type { Sequencer } from '../log/sequencer.ts';
import { getTopicCached } from '../topics/topic-store.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { requireGroup } from './group-store.ts';
import { byTopic, consumable, parseTopicPartition, sortedTopicPartitions, topicPartition, type AssignorName, type GroupStateName } from './model.ts';
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

  async describe(groupId: string): Promise<GroupDescription> {
    const [stored, committed] = await Promise.all([this.coordinator.store.read(groupId), this.coordinator.store.readOffsets(groupId)]);
    if (!stored || stored.deleting) throw new NotFoundError('UNKNOWN_GROUP', `group ${JSON.stringify(groupId)} does not exist`);
    const group = this.coordinator.project(stored);
    const members = Object.values(group.members).sort((a, b) => a.joinedAt - b.joinedAt || (a.memberId < b.memberId ? -1 : 1)).map((m) => {
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
    const byPartition = new Map(committed.map((o) => [topicPartition(o.topic, o.partition), o]));
    const subscribed = Object.entries(group.topics).flatMap(([topic, meta]) => Array.from({ length: meta.partitions }, (_, p) => topicPartition(topic, p)));
    const offsets = await Promise.all(sortedTopicPartitions([...subscribed, ...byPartition.keys()]).map(async (tp) => {
      const { topic, partition } = parseTopicPartition(tp);
      const o = byPartition.get(tp);
      const highWatermark = await this.highWatermark(topic, partition);
      return {
        topic,
        partition,
        committedOffset: o?.offset ?? null,
        metadata: o?.metadata ?? null,
        committedAt: o?.committedAt ?? null,
        highWatermark,
        lag: o !== undefined && highWatermark !== null ? Math.max(0, highWatermark - o.offset) : null,
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

  private async highWatermark(topicName: string, partition: number): Promise<number | null> {
    try {
      const topic = await getTopicCached(this.coordinator.storage, topicName);
      if (partition >= topic.partitions) return null;
      return (await this.sequencer.read(logPartitionKey(topic.topicId, partition))).highWatermark;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }
}
