// Committed offsets: the next offset to read per (group, topic, partition), Kafka's convention.
// Members commit only partitions they own at their current epoch (checked atomically with the
// write), and never move an offset back; without a member, offsets may be written (committed or
// reset, backwards too) only while the group is empty, as Kafka allows for standalone consumers and
// admin tools. Every offset is tagged with the topicId of the log it is an offset into: after a
// topic is deleted and re-created, the old offsets count as absent (see committedOffsets).
import { ConflictError, InvalidRequestError, NotFoundError, OffsetOutOfRangeError } from '../errors.ts';
import type { Fetcher } from '../log/fetcher.ts';
import type { Sequencer, TransactItem } from '../log/sequencer.ts';
import { getTopic, getTopicCached, onTopicLogs, type Topic } from '../topics/topic-store.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { MAX_OFFSETS_PER_COMMIT, type CommittedOffset, type Committer, type OffsetCommit, type TopicOffset } from './group-store.ts';
import { parseTopicPartition, sortedTopicPartitions, topicPartition, type Group, type Member, type TopicPartition } from './model.ts';
import { fencedMember, unknownMember } from './reconcile.ts';

export type ResetTarget = 'earliest' | 'latest' | { timestamp: number } | { offset: number };

/** How often an auto-commit is re-tried at the member's new epoch before giving up (CONCURRENT_MODIFICATION). */
const ACKNOWLEDGED_COMMIT_ATTEMPTS = 5;

export class Offsets {
  constructor(private readonly coordinator: GroupCoordinator, private readonly sequencer: Sequencer, private readonly fetcher: Fetcher) {}

  private get store() {
    return this.coordinator.store;
  }

  /**
   * Commits as `member` (it must own every partition at that epoch), or standalone when omitted.
   * Every offset must lie in its log, [log start, high watermark], like a reset's: checked before
   * anything is written, which stays true because the high watermark never goes down. A member's
   * commit never lowers an offset (GroupStore.commitAsMember); a standalone one, which requires an
   * empty group, may.
   */
  async commit(groupId: string, offsets: OffsetCommit[], member?: Committer): Promise<void> {
    // Without a member nothing else ties the offsets to an incarnation: the tag is read consistently.
    const tagged = await this.inLog(offsets, { consistent: !member });
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
   *
   * The member's epoch may move between the read of `group` and the commit without anything being
   * wrong: its own heartbeat (from another thread of the client) can complete a revocation, or reach
   * a new group epoch, meanwhile. So a refused commit is retried at the member's current epoch for as
   * long as the member exists and still owns every partition of the batch; only then is the answer
   * UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH.
   */
  async commitAcknowledged(group: Group, member: Member, ack: string | undefined): Promise<void> {
    const { delivery } = member;
    if (ack === undefined || delivery?.pollId !== ack || !delivery.commitOnAck) return;
    await this.commitOwned(group.groupId, member, positionOffsets(group, delivery.positions));
  }

  /**
   * Commits everything handed to a member that never names its epoch (a named instance): its
   * acknowledged positions and its last delivery, as Kafka's commitSync() without offsets commits
   * the positions after every record poll() returned. At the member's current epoch, while it still
   * owns the partitions (see commitAcknowledged).
   */
  async commitDelivered(groupId: string, memberId: string): Promise<void> {
    const [group, member] = await this.currentMember(groupId, memberId);
    await this.commitOwned(groupId, member, positionOffsets(group, { ...member.positions, ...member.delivery?.positions }));
  }

  /**
   * Commits explicit offsets for a member that never names its epoch (a named instance): checked
   * like every commit (in the log, partitions exist), then committed at the member's current epoch
   * while it owns the partitions. They are offsets into the topic incarnations the group records,
   * which the member reads, so they are tagged with those.
   */
  async commitAsCurrentOwner(groupId: string, memberId: string, offsets: OffsetCommit[]): Promise<void> {
    const checked = await this.inLog(offsets, { consistent: false });
    const [group, member] = await this.currentMember(groupId, memberId);
    await this.commitOwned(groupId, member, checked.map((o) => ({ ...o, topicId: group.topics[o.topic]?.topicId ?? o.topicId })));
  }

  /**
   * The committed offset of each partition (undefined: none, or one of another topic incarnation).
   * UNKNOWN_TOPIC or UNKNOWN_PARTITION for partitions that do not exist.
   */
  async committedFor(groupId: string, partitions: Array<{ topic: string; partition: number }>): Promise<Array<{ topic: string; partition: number; offset: number | undefined }>> {
    const tagged = await this.validate(partitions.map((p) => ({ ...p, offset: 0 })), { consistent: false });
    const committed = await this.committedOffsets(groupId, Object.fromEntries(tagged.map((o) => [o.topic, o.topicId])));
    return tagged.map(({ topic, partition }) => ({ topic, partition, offset: committed.get(topicPartition(topic, partition))?.offset }));
  }

  /** The group (as the next write sees it) and the member, or UNKNOWN_MEMBER_ID. */
  private async currentMember(groupId: string, memberId: string): Promise<[Group, Member]> {
    const stored = await this.store.read(groupId);
    const group = stored && this.coordinator.project(stored);
    const member = group?.members[memberId];
    if (!group || !member) throw unknownMember(memberId);
    return [group, member];
  }

  /** Commits as the owner (see commitAsOwner), one transaction per MAX_OFFSETS_PER_COMMIT offsets. */
  private async commitOwned(groupId: string, member: Member, offsets: TopicOffset[]): Promise<void> {
    for (let i = 0; i < offsets.length; i += MAX_OFFSETS_PER_COMMIT) {
      await this.commitAsOwner(groupId, member, offsets.slice(i, i + MAX_OFFSETS_PER_COMMIT));
    }
  }

  /**
   * Commits as the member at whatever epoch it has now, as long as it still owns the partitions: a
   * refused commit re-reads the group and tries again (a few times) at the member's current epoch.
   * Offsets into a topic incarnation the group no longer records are dropped on the way: their log
   * is gone, and the transition that recorded the new one dropped the positions they came from.
   */
  private async commitAsOwner(groupId: string, member: Member, offsets: TopicOffset[]): Promise<void> {
    let committer: Committer = { memberId: member.memberId, memberEpoch: member.memberEpoch };
    let pending = offsets;
    for (let attempt = 1; ; attempt++) {
      if (pending.length === 0 || (await this.store.commitAsMember(groupId, committer, pending, this.coordinator.now()))) return;
      const group = await this.store.read(groupId);
      const current = group?.members[member.memberId];
      if (!group || !current) throw unknownMember(member.memberId);
      pending = pending.filter((o) => group.topics[o.topic]?.topicId === o.topicId);
      const refusal = notOwned(committer, current, pending);
      if (refusal) throw refusal;
      if (attempt >= ACKNOWLEDGED_COMMIT_ATTEMPTS) {
        throw new ConflictError('CONCURRENT_MODIFICATION', `group ${groupId} kept changing while member ${member.memberId} committed its acknowledged batch, which is not (fully) committed: retry with the same ack`);
      }
      committer = { memberId: member.memberId, memberEpoch: current.memberEpoch };
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
    // Consistent: the offsets are tagged with this incarnation, and resolved in its log.
    const topic = await getTopic(this.coordinator.storage, topicName);
    const targets = partitions ?? Array.from({ length: topic.partitions }, (_, p) => p);
    const tagged = await this.validate(targets.map((partition) => ({ topic: topicName, partition, offset: 0 })), { consistent: true, known: topic });
    const committedAt = this.coordinator.now();
    const offsets = await Promise.all(tagged.map(async (o): Promise<CommittedOffset> => ({
      ...o,
      offset: await this.resolve(topicName, o.partition, to, o.topicId),
      committedAt,
    })));
    // Chunks of one transaction each: a reset of more than 99 partitions is not atomic (a member
    // joining midway makes the rest fail with NON_EMPTY_GROUP, the chunks written stay).
    for (let i = 0; i < offsets.length; i += MAX_OFFSETS_PER_COMMIT) {
      await this.coordinator.apply(groupId, { type: 'require-empty' }, { ifAbsent: 'create', offsets: offsets.slice(i, i + MAX_OFFSETS_PER_COMMIT) });
    }
    return offsets;
  }

  /**
   * The offset a reset target means for one partition, within [log start, high watermark], in the
   * incarnation `topicId` (when given; otherwise the current one). UNKNOWN_TOPIC if that is gone.
   */
  async resolve(topic: string, partition: number, to: ResetTarget, topicId?: string): Promise<number> {
    const pk = await this.fetcher.partitionKey(topic, partition, topicId);
    return onTopicLogs(this.coordinator.storage, topic, () => this.resolveIn(pk, topic, partition, to, topicId));
  }

  private async resolveIn(pk: string, topic: string, partition: number, to: ResetTarget, topicId: string | undefined): Promise<number> {
    const view = await this.sequencer.read(pk);
    const logStart = view.state.logStart;
    if (to === 'earliest') return logStart;
    if (to === 'latest') return view.highWatermark;
    if ('offset' in to) {
      if (to.offset < logStart || to.offset > view.highWatermark) throw new OffsetOutOfRangeError(to.offset, logStart, view.highWatermark);
      return to.offset;
    }
    // Kafka's ListOffsets through the segments' time indexes: a bounded number of calls.
    return (await this.fetcher.listOffset(topic, partition, to.timestamp, topicId)).offset;
  }

  /** validate, and each offset within [log start, high watermark] of its partition. */
  private async inLog(offsets: OffsetCommit[], options: { consistent: boolean }): Promise<TopicOffset[]> {
    const tagged = await this.validate(offsets, options);
    await Promise.all(tagged.map((o) => this.resolve(o.topic, o.partition, { offset: o.offset }, o.topicId)));
    return tagged;
  }

  /**
   * Checks the partitions exist and tags each offset with its topic's current topicId: from the
   * process's topic cache, or (`consistent`) from one consistent read per topic, which a cache that
   * still holds a deleted incarnation cannot mislead. `known` is a topic just read consistently.
   */
  /**
   * Offsets a member adds to a producer transaction (Kafka's sendOffsetsToTransaction): validated
   * and tagged like a member's commit; the transaction's commit writes them with the member's fence.
   */
  async validateForTransaction(offsets: OffsetCommit[]): Promise<TopicOffset[]> {
    const tagged = await this.validate(offsets, { consistent: false });
    await Promise.all(tagged.map((o) => this.resolve(o.topic, o.partition, { offset: o.offset }, o.topicId)));
    return tagged;
  }

  /** The items that commit `offsets` as `member` inside a producer transaction's decision. */
  transactionalCommitItems(groupId: string, member: Committer, offsets: TopicOffset[], puts: TopicOffset[]): TransactItem[] {
    return this.store.memberCommitItems(groupId, member, offsets, puts, this.coordinator.now());
  }

  private async validate(offsets: OffsetCommit[], options: { consistent: boolean; known?: Topic }): Promise<TopicOffset[]> {
    const seen = new Set<string>();
    for (const o of offsets) {
      const tp = topicPartition(o.topic, o.partition);
      if (seen.has(tp)) throw new InvalidRequestError('DUPLICATE_PARTITION', `partition ${tp} appears more than once`);
      seen.add(tp);
    }
    const consistent = new Map<string, Promise<Topic>>();
    if (options.known) consistent.set(options.known.name, Promise.resolve(options.known));
    const topicOf = (o: OffsetCommit): Promise<Topic> => {
      if (!options.consistent) return getTopicCached(this.coordinator.storage, o.topic, o.partition + 1);
      if (!consistent.has(o.topic)) consistent.set(o.topic, getTopic(this.coordinator.storage, o.topic));
      return consistent.get(o.topic)!;
    };
    return Promise.all(offsets.map(async (o) => {
      const topic = await topicOf(o);
      if (o.partition >= topic.partitions) {
        throw new NotFoundError('UNKNOWN_PARTITION', `partition ${o.partition} does not exist: topic ${JSON.stringify(o.topic)} has partitions 0 to ${topic.partitions - 1}`);
      }
      return { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata, topicId: topic.topicId };
    }));
  }

  private async commitAsMember(groupId: string, member: Committer, offsets: TopicOffset[]): Promise<void> {
    if (!(await this.store.commitAsMember(groupId, member, offsets, this.coordinator.now()))) throw await this.whyRejected(groupId, member, offsets);
  }

  /**
   * Reads the group to say why a member's commit was refused (nothing was written). An explicit
   * commit names its epoch, so an epoch that moved on is fenced, as in Kafka.
   */
  async whyRejected(groupId: string, member: Committer, offsets: OffsetCommit[]): Promise<Error> {
    const current = (await this.store.read(groupId))?.members[member.memberId];
    if (!current) return unknownMember(member.memberId);
    if (current.memberEpoch !== member.memberEpoch) return fencedMember(member.memberId, member.memberEpoch, current.memberEpoch);
    return notOwned(member, current, offsets) ?? fencedMember(member.memberId, member.memberEpoch, current.memberEpoch, 'the group changed during the commit');
  }
}

/** A member's positions as offsets into the topic incarnations the group records (the ones they were read from). */
function positionOffsets(group: Group, positions: Record<TopicPartition, number>): TopicOffset[] {
  return Object.entries(positions).map(([tp, offset]) => {
    const { topic, partition } = parseTopicPartition(tp);
    // Present: positions are dropped in the same write that changes or removes their topic.
    return { topic, partition, offset, topicId: group.topics[topic]!.topicId };
  });
}

/** FENCED_MEMBER_EPOCH naming the partitions `current` does not own, if any. */
function notOwned(committer: Committer, current: Member, offsets: OffsetCommit[]): Error | undefined {
  const owned = new Set(current.assigned);
  const foreign = sortedTopicPartitions(offsets.map((o) => topicPartition(o.topic, o.partition)).filter((tp) => !owned.has(tp)));
  if (foreign.length === 0) return undefined;
  return fencedMember(committer.memberId, committer.memberEpoch, current.memberEpoch, `does not own ${foreign.join(', ')}`);
}
