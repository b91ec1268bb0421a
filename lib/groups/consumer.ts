// Poll: records from every partition a member owns, from the member's stored positions.
//   1. Auto-commit (if asked) the positions the previous poll returned: Kafka's at-least-once
//      auto-commit, since the client polls again only after processing what it got.
//   2. Heartbeat, releasing partitions being revoked (their progress was just committed).
//   3. Start positions: stored, else the committed offset, else autoOffsetReset. A partition that
//      changed owner therefore continues from the group's committed offset.
//   4. Fetch committed records from all owned partitions, long-polling up to waitMs.
//   5. Store the new positions; records of a partition the member lost meanwhile are dropped, so a
//      poll only ever returns records of partitions the member owns when its positions are saved.
import { NotFoundError, OffsetOutOfRangeError } from '../errors.ts';
import type { FetchedRecord, Fetcher } from '../log/fetcher.ts';
import { sleep } from '../retry.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { assignmentOf, type MemberAssignment } from './membership.ts';
import { consumable, parseTopicPartition, type Member, type TopicPartition } from './model.ts';
import type { Offsets } from './offsets.ts';
import { unknownMember } from './reconcile.ts';

export interface PollOptions {
  maxRecords: number;
  maxBytes: number;
  waitMs: number;
  autoCommit: boolean;
}

export interface PolledRecord extends FetchedRecord {
  topic: string;
}

export interface PollResult extends MemberAssignment {
  records: PolledRecord[];
}

const POLL_MAX_DELAY_MS = 200;

interface PartitionBatch {
  tp: TopicPartition;
  records: PolledRecord[];
  /** Where the next poll of this partition starts if all `records` are delivered. */
  next: number;
}

export class Consumer {
  constructor(private readonly coordinator: GroupCoordinator, private readonly offsets: Offsets, private readonly fetcher: Fetcher) {}

  async poll(groupId: string, memberId: string, options: PollOptions): Promise<PollResult> {
    const read = await this.coordinator.store.read(groupId);
    const before = read?.members[memberId];
    if (!before) throw unknownMember(memberId);
    const committed = options.autoCommit ? await this.offsets.commitPositions(groupId, before) : {};
    // Commits leave the group item's version alone, so the group just read is still a valid start.
    let group = await this.coordinator.apply(groupId, { type: 'heartbeat', memberId, owned: consumable(before), committed }, { ifAbsent: () => unknownMember(memberId), known: read });
    const member = group.members[memberId]!;
    const partitions = consumable(member);

    const baseline = await this.baselinePositions(groupId, member, partitions);
    const start: Record<TopicPartition, number> = {};
    await Promise.all(partitions.map(async (tp) => {
      start[tp] = baseline[tp] ?? (await this.offsets.resolve(...topicAndPartition(tp), member.autoOffsetReset));
    }));
    const batches = await this.fetchAll(partitions, start, member, options);

    const delivered = limitRecords(batches, options.maxRecords);
    const positions = Object.fromEntries(delivered.filter((b) => b.next !== member.positions[b.tp]).map((b) => [b.tp, b.next]));
    if (Object.keys(positions).length > 0) {
      // Positions that differ from what is committed (or were reset) are auto-committed next time.
      const uncommitted = options.autoCommit ? delivered.filter((b) => b.next !== baseline[b.tp] || member.uncommitted.includes(b.tp)).map((b) => b.tp) : [];
      group = await this.coordinator.apply(groupId, { type: 'positions', memberId, positions, uncommitted }, { ifAbsent: () => unknownMember(memberId), known: group });
    }
    const saved = group.members[memberId]!;
    const records = delivered.filter((b) => saved.positions[b.tp] === b.next).flatMap((b) => b.records);
    return { ...assignmentOf(group, memberId), records };
  }

  /** Stored positions, else committed offsets (read only when some partition has no position). */
  private async baselinePositions(groupId: string, member: Member, partitions: TopicPartition[]): Promise<Record<TopicPartition, number>> {
    const baseline: Record<TopicPartition, number> = {};
    const unpositioned = partitions.filter((tp) => member.positions[tp] === undefined);
    if (unpositioned.length > 0) {
      const wanted = new Set(unpositioned);
      for (const o of await this.coordinator.store.readOffsets(groupId)) {
        const tp = `${o.topic}:${o.partition}`;
        if (wanted.has(tp)) baseline[tp] = o.offset;
      }
    }
    for (const tp of partitions) if (member.positions[tp] !== undefined) baseline[tp] = member.positions[tp]!;
    return baseline;
  }

  /** Fetches every partition (budget split evenly) until some records arrive or waitMs is over. */
  private async fetchAll(partitions: TopicPartition[], start: Record<TopicPartition, number>, member: Member, options: PollOptions): Promise<PartitionBatch[]> {
    const budget = {
      maxRecords: Math.max(1, Math.ceil(options.maxRecords / Math.max(1, partitions.length))),
      maxBytes: Math.max(1, Math.floor(options.maxBytes / Math.max(1, partitions.length))),
    };
    const deadline = Date.now() + options.waitMs;
    const positions = { ...start };
    for (let delay = 10; ; delay = Math.min(delay * 2, POLL_MAX_DELAY_MS)) {
      const batches = await Promise.all(partitions.map((tp) => this.fetchPartition(tp, positions[tp]!, member, budget)));
      const remaining = deadline - Date.now();
      if (partitions.length === 0 || remaining <= 0 || batches.some((b) => b.records.length > 0)) return batches;
      for (const b of batches) positions[b.tp] = b.next;
      await sleep(Math.min(delay, remaining));
    }
  }

  private async fetchPartition(tp: TopicPartition, offset: number, member: Member, budget: { maxRecords: number; maxBytes: number }): Promise<PartitionBatch> {
    const { topic, partition } = parseTopicPartition(tp);
    try {
      const result = await this.fetcher.fetch({ topic, partition, offset, ...budget, waitMs: 0 });
      return { tp, records: result.records.map((r) => ({ ...r, topic })), next: result.nextOffset };
    } catch (err) {
      // A committed offset outside the log (e.g. a reset to a future offset): apply autoOffsetReset.
      if (err instanceof OffsetOutOfRangeError) {
        const next = member.autoOffsetReset === 'earliest' ? err.logStartOffset : err.highWatermark;
        return next === offset ? { tp, records: [], next } : this.fetchPartition(tp, next, member, budget);
      }
      // The topic was deleted: nothing to read; the next heartbeat's target drops the partition.
      if (err instanceof NotFoundError) return { tp, records: [], next: offset };
      throw err;
    }
  }
}

function topicAndPartition(tp: TopicPartition): [string, number] {
  const { topic, partition } = parseTopicPartition(tp);
  return [topic, partition];
}

/**
 * At most maxRecords in all, taken partition by partition from a random starting point (so no
 * partition is starved); a partition cut short resumes after its last delivered record.
 */
function limitRecords(batches: PartitionBatch[], maxRecords: number): PartitionBatch[] {
  const first = Math.floor(Math.random() * Math.max(1, batches.length));
  const rotated = [...batches.slice(first), ...batches.slice(0, first)];
  let room = maxRecords;
  return rotated.map((b) => {
    if (b.records.length <= room) {
      room -= b.records.length;
      return b;
    }
    const records = b.records.slice(0, room);
    room -= records.length;
    return { tp: b.tp, records, next: records.length > 0 ? records.at(-1)!.offset + 1 : b.records[0]!.offset };
  });
}
