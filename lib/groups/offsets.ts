// Committed offsets: the next offset to read per (group, topic, partition), Kafka's convention.
// Members commit only partitions they own at their current epoch (checked atomically with the
// write); without a member, offsets may be written (committed or reset) only while the group is
// empty, as Kafka allows for standalone consumers and admin tools. Every offset is tagged with the
// topicId of the log it is an offset into: after a topic is deleted and re-created, the old
// offsets count as absent (see committedOffsets).
import { InvalidRequestError, NotFoundError, OffsetOutOfRangeError } from '../errors.ts';
import type { Fetcher } from '../log/fetcher.ts';
import type { Sequencer } from '../log/sequencer.ts';
import { getTopicCached } from '../topics/topic-store.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { MAX_OFFSETS_PER_COMMIT, type CommittedOffset, type Committer, type OffsetCommit, type TopicOffset } from './group-store.ts';
import { parseTopicPartition, sortedTopicPartitions, topicPartition, type Group, type Member, type TopicPartition } from './model.ts';
import { fencedMember, unknownMember } from './reconcile.ts';

export type ResetTarget = 'earliest' | 'latest' | { timestamp: number } | { offset: number };

export class Offsets {
  constructor(private readonly coordinator: GroupCoordinator, private readonly sequencer: Sequencer, private readonly fetcher: Fetcher) {}

  private get store() {
    return this.coordinator.store;
  }

  /** Commits as `member` (it must own every partition at that epoch), or standalone when omitted. */
  async commit(groupId: string, offsets: OffsetCommit[], member?: Committer): Promise<void> {
    const tagged = await this.validate(offsets);
    if (!member) {
      const committedAt = this.coordinator.now();
      await this.coordinator.apply(groupId, { type: 'require-empty' }, { ifAbsent: 'create', offsets: tagged.map((o) => ({ ...o, committedAt })) });
      return;
    }
    await this.commitAsMember(groupId, member, tagged);
  }

  /**
   * Auto-commit, if `ack` acknowledges the member's pending delivery and its poll asked for it: the
   * positions after that batch, as offsets into the topic incarnations the group records (the ones
   * the positions were read from). Positions the client never confirmed are never committed.
   */
  async commitAcknowledged(group: Group, member: Member, ack: string | undefined): Promise<void> {
    const { delivery } = member;
    if (ack === undefined || delivery?.pollId !== ack || !delivery.commitOnAck) return;
    const offsets = Object.entries(delivery.positions).map(([tp, offset]): TopicOffset => {
      const { topic, partition } = parseTopicPartition(tp);
      // Present: a delivery's positions are dropped in the same write that changes or removes the topic.
      return { topic, partition, offset, topicId: group.topics[topic]!.topicId };
    });
    const committer = { memberId: member.memberId, memberEpoch: member.memberEpoch };
    for (let i = 0; i < offsets.length; i += MAX_OFFSETS_PER_COMMIT) {
      await this.commitAsMember(group.groupId, committer, offsets.slice(i, i + MAX_OFFSETS_PER_COMMIT));
    }
  }

  /**
   * The committed offsets of the given topic incarnations (topic name → topicId), by partition. An
   * offset committed into another incarnation (a deleted topic's namesake) counts as absent.
   */
  async committedOffsets(groupId: string, topicIds: Record<string, string>): Promise<Map<TopicPartition, CommittedOffset>> {
    const offsets = await this.store.readOffsets(groupId);
    return new Map(offsets.filter((o) => topicIds[o.topic] === o.topicId).map((o) => [topicPartition(o.topic, o.partition), o]));
  }

  /** Moves the committed offsets of a topic's partitions (all by default); the group must be empty. */
  async reset(groupId: string, topicName: string, partitions: number[] | undefined, to: ResetTarget): Promise<CommittedOffset[]> {
    const topic = await getTopicCached(this.coordinator.storage, topicName);
    const targets = partitions ?? Array.from({ length: topic.partitions }, (_, p) => p);
    const tagged = await this.validate(targets.map((partition) => ({ topic: topicName, partition, offset: 0 })));
    const committedAt = this.coordinator.now();
    const offsets = await Promise.all(tagged.map(async (o): Promise<CommittedOffset> => ({
      ...o,
      offset: await this.resolve(topicName, o.partition, to),
      committedAt,
    })));
    // Chunks of one transaction each: a reset of more than 99 partitions is not atomic (a member
    // joining midway makes the rest fail with NON_EMPTY_GROUP, the chunks written stay).
    for (let i = 0; i < offsets.length; i += MAX_OFFSETS_PER_COMMIT) {
      await this.coordinator.apply(groupId, { type: 'require-empty' }, { ifAbsent: 'create', offsets: offsets.slice(i, i + MAX_OFFSETS_PER_COMMIT) });
    }
    return offsets;
  }

  /** The offset a reset target means for one partition, within [log start, high watermark]. */
  async resolve(topic: string, partition: number, to: ResetTarget): Promise<number> {
    const pk = await this.fetcher.partitionKey(topic, partition);
    const view = await this.sequencer.read(pk);
    const logStart = view.head.logStart;
    if (to === 'earliest') return logStart;
    if (to === 'latest') return view.highWatermark;
    if ('offset' in to) {
      if (to.offset < logStart || to.offset > view.highWatermark) throw new OffsetOutOfRangeError(to.offset, logStart, view.highWatermark);
      return to.offset;
    }
    return this.offsetForTimestamp(pk, topic, partition, to.timestamp, logStart, view.highWatermark);
  }

  /**
   * The first offset whose record timestamp is at or after `timestamp` (the high watermark if none),
   * found through the batches' max timestamps: a linear walk of the index, fine for an admin call.
   */
  private async offsetForTimestamp(pk: string, topic: string, partition: number, timestamp: number, logStart: number, highWatermark: number): Promise<number> {
    for (let from = logStart; from < highWatermark;) {
      const entries = await this.sequencer.queryEntries(pk, from, 100);
      const last = entries.at(-1);
      if (!last) break;
      for (const entry of entries) {
        if (entry.base >= highWatermark) return highWatermark;
        if (entry.kind !== 'data' || entry.maxTimestamp < timestamp) continue;
        const { records } = await this.fetcher.fetch({ topic, partition, offset: Math.max(entry.base, logStart), maxRecords: entry.count, maxBytes: Number.MAX_SAFE_INTEGER, waitMs: 0 });
        const match = records.find((r) => r.timestamp >= timestamp);
        if (match) return match.offset;
      }
      from = last.base + last.count;
    }
    return highWatermark;
  }

  /** Checks the partitions exist and tags each offset with its topic's current topicId. */
  private async validate(offsets: OffsetCommit[]): Promise<TopicOffset[]> {
    const seen = new Set<string>();
    for (const o of offsets) {
      const tp = topicPartition(o.topic, o.partition);
      if (seen.has(tp)) throw new InvalidRequestError('DUPLICATE_PARTITION', `partition ${tp} appears more than once`);
      seen.add(tp);
    }
    return Promise.all(offsets.map(async (o) => {
      const topic = await getTopicCached(this.coordinator.storage, o.topic, o.partition + 1);
      if (o.partition >= topic.partitions) {
        throw new NotFoundError('UNKNOWN_PARTITION', `partition ${o.partition} does not exist: topic ${JSON.stringify(o.topic)} has partitions 0 to ${topic.partitions - 1}`);
      }
      return { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata, topicId: topic.topicId };
    }));
  }

  private async commitAsMember(groupId: string, member: Committer, offsets: TopicOffset[]): Promise<void> {
    if (!(await this.store.commitAsMember(groupId, member, offsets, this.coordinator.now()))) throw await this.whyRejected(groupId, member, offsets);
  }

  /** Reads the group to say why a member's commit was refused (nothing was written). */
  private async whyRejected(groupId: string, member: Committer, offsets: OffsetCommit[]): Promise<Error> {
    const current = (await this.store.read(groupId))?.members[member.memberId];
    if (!current) return unknownMember(member.memberId);
    if (current.memberEpoch !== member.memberEpoch) return fencedMember(member.memberId, member.memberEpoch, current.memberEpoch);
    const owned = new Set(current.assigned);
    const foreign = sortedTopicPartitions(offsets.map((o) => topicPartition(o.topic, o.partition)).filter((tp) => !owned.has(tp)));
    return fencedMember(member.memberId, member.memberEpoch, current.memberEpoch, `does not own ${foreign.join(', ')}`);
  }
}
