// Poll: records from every partition a member owns, from the member's acknowledged positions.
// Each response names its batch with a pollId; the next poll sends it back as `ack`. Until then the
// batch is only a pending delivery, because the response may be lost on the way.
//   1. If `ack` confirms the pending delivery and its poll asked for auto-commit, commit the
//      positions after it: Kafka's auto-commit, committing the previous poll's records on the next
//      poll, but only once the client has said it got them.
//   2. Heartbeat, releasing partitions being revoked (everything acknowledged was just committed),
//      and settle the pending delivery: promoted to the acknowledged positions if `ack` matches,
//      discarded otherwise (so it is delivered again: at least once, never lost).
//   3. Start positions: acknowledged, else the committed offset of the topic incarnation the group
//      records, else autoOffsetReset. A partition that changed owner therefore continues from the
//      group's committed offset.
//   4. Fetch committed records from all owned partitions, long-polling up to waitMs. Each fetch names
//      the topic incarnation the group records (its topicId), never just the topic's name: a topic
//      deleted and re-created meanwhile is a different log, and its offsets mean nothing here. Such a
//      partition returns nothing, and the poll ends at once.
//   5. Store the batch as the pending delivery; records of a partition the member lost meanwhile (or
//      whose topic was re-created) are dropped, so a poll only ever returns records the stored
//      delivery accounts for. A topic found replaced in step 3 or 4 is recorded in the same write
//      (its metadata read consistently), which drops every position in the old incarnation.
// Concurrent polls of one member (a retry after a client timeout) each write conditionally; only
// the delivery stored last can be acknowledged, and acknowledging any other one means redelivery.
import * as z from 'zod';
import { InvalidRequestError, NotFoundError, OffsetOutOfRangeError, PartitionLogMissingError } from '../errors.ts';
import { markerSettled, TopicChanges, type ChangeMarker } from '../log/changes.ts';
import type { FetchedRecord, Fetcher, Isolation, ReadBudget } from '../log/fetcher.ts';
import { sleep } from '../retry.ts';
import type { GroupCoordinator } from './coordinator.ts';
import { newPollId, type CommittedOffset } from './group-store.ts';
import { assignmentOf, type MemberAssignment } from './membership.ts';
import { ackedPollId, consumable, parseTopicPartition, topicIdsOf, type Ack, type Group, type Member, type TopicPartition } from './model.ts';
import type { Offsets } from './offsets.ts';
import { unknownMember } from './reconcile.ts';

export interface PollOptions {
  maxRecords: number;
  maxBytes: number;
  waitMs: number;
  /** Commit this poll's batch once a later poll (or the leave) acknowledges it. */
  autoCommit: boolean;
  /** The pollId of the last response received: confirms that batch (LAST_DELIVERY: whatever was handed out last). */
  ack?: Ack;
  /** A hard bound on the records returned, over all partitions (see ReadBudget). */
  budget?: ReadBudget<PolledRecord>;
  /** Kafka's isolation.level, as for a fetch. */
  isolation?: Isolation;
  /** The `watch` of the last poll's answer: while its topics show no change, the poll answers at once, reading nothing else. */
  watch?: string;
}

export interface PolledRecord extends FetchedRecord {
  topic: string;
}

export interface PollResult extends MemberAssignment {
  /** Names this batch: send it as the next poll's `ack`. */
  pollId: string;
  records: PolledRecord[];
  /**
   * Given when nothing was found and nothing is being written: send it with the next poll, which
   * then costs one eventually consistent read per topic until a topic changes or the heartbeat is due.
   */
  watch?: string;
}

/** What a watch token holds: the member's answer to repeat, the markers seen, and until when (the next heartbeat). */
interface Watch extends MemberAssignment {
  groupId: string;
  markers: Record<string, number>;
  until: number;
  /** When every owned partition was last read: partitions are skipped for at most FULL_READ_EVERY_MS after. */
  readAt: number;
}

/**
 * How long a heartbeat's poll may skip the partitions of unchanged topics. A bump lost for good (its
 * producer stopped between commit and bump) delays its batch by at most this long.
 */
export const FULL_READ_EVERY_MS = 60_000;

/** Watch tokens longer than this are not handed out (a member owning very many partitions just polls). */
export const MAX_WATCH_CHARS = 16_384;

const POLL_MAX_DELAY_MS = 200;

interface PartitionBatch {
  tp: TopicPartition;
  records: PolledRecord[];
  /** Where the next poll of this partition starts if all `records` are delivered. */
  next: number;
  /** The recorded topic incarnation is gone (deleted, maybe re-created): nothing was read. */
  gone?: boolean;
  /** Every reserved offset was readable (FetchResult.settled). */
  settled?: boolean;
}

/** Where each partition starts; a partition whose recorded incarnation is gone has none. */
type StartPositions = Record<TopicPartition, number | undefined>;

export class Consumer {
  private readonly changes: TopicChanges;

  constructor(private readonly coordinator: GroupCoordinator, private readonly offsets: Offsets, private readonly fetcher: Fetcher) {
    this.changes = new TopicChanges(coordinator.storage);
  }

  async poll(groupId: string, memberId: string, options: PollOptions): Promise<PollResult> {
    const pollId = newPollId();
    const watch = options.watch === undefined ? undefined : ownWatch(parseWatch(options.watch), groupId, memberId);
    if (watch && this.coordinator.now() < watch.until && unchangedSince(watch, await this.changes.read(Object.keys(watch.markers)))) {
      const { memberEpoch, heartbeatIntervalMs, assignment } = watch;
      return { memberId, memberEpoch, heartbeatIntervalMs, assignment, pollId, records: [], watch: options.watch };
    }
    const read = await this.coordinator.store.read(groupId);
    const before = read?.members[memberId];
    if (!read || !before) throw unknownMember(memberId);
    // Resolved against the read: if another poll stores a batch meanwhile, this ack matches nothing
    // there, so that batch is discarded and delivered again, never skipped.
    const ack = ackedPollId(before, options.ack);
    await this.offsets.commitAcknowledged(read, before, ack);
    // Commits leave the group item's version alone, so the group just read is still a valid start.
    let group = await this.coordinator.apply(groupId, { type: 'poll', memberId, owned: consumable(before), ack }, { ifAbsent: () => unknownMember(memberId), known: read });
    const member = group.members[memberId]!;
    const partitions = consumable(member);

    const topicIds = topicIdsOf(group);
    // Read before the partitions: a change after this read shows in the marker the watch compares.
    const watchedIds = [...new Set(partitions.map((tp) => topicIds[parseTopicPartition(tp).topic]).filter((id) => id !== undefined))];
    const markers = await this.changes.read(watchedIds);
    const now = this.coordinator.now();
    // Partitions the watch saw at their end, owned since (their positions kept), in a topic that
    // has not changed: nothing to read there (the heartbeat's poll of an idle member reads none).
    const quiet = (tp: TopicPartition) => {
      const { topic, partition } = parseTopicPartition(tp);
      const id = topicIds[topic]!;
      return watch !== undefined && now < watch.readAt + FULL_READ_EVERY_MS && member.positions[tp] !== undefined && watch.markers[id] === markers[id]?.seq
        && watch.assignment.some((t) => t.topic === topic && t.partitions.includes(partition));
    };
    const toRead = partitions.filter((tp) => !quiet(tp));
    const start = await this.startPositions(group, member, toRead);
    const fetched = await this.fetchAll(toRead, start, topicIds, member, options);
    const batches: PartitionBatch[] = [...fetched, ...partitions.filter(quiet).map((tp) => ({ tp, records: [], next: member.positions[tp]!, settled: true }))];

    const delivered = limitRecords(batches, options);
    const positions = Object.fromEntries(delivered.filter((b) => !b.gone && b.next !== member.positions[b.tp]).map((b) => [b.tp, b.next]));
    // A replaced topic must be recorded even when nothing was delivered: the write below refreshes
    // the group's topic metadata (consistently, as the recorded topicId differs from the current one).
    if (Object.keys(positions).length > 0 || batches.some((b) => b.gone)) {
      const delivery = { pollId, positions, commitOnAck: options.autoCommit };
      group = await this.coordinator.apply(groupId, { type: 'delivered', memberId, delivery, topicIds }, { ifAbsent: () => unknownMember(memberId), known: group });
    }
    const stored = group.members[memberId]!.delivery;
    const records = delivered.filter((b) => stored?.pollId === pollId && stored.positions[b.tp] === b.next).flatMap((b) => b.records);
    const answer = { ...assignmentOf(group, memberId), pollId, records };
    const idle = records.length === 0 && Object.keys(positions).length === 0 && batches.every((b) => b.settled) && Object.values(markers).every((m) => markerSettled(m, now));
    const readAt = toRead.length < partitions.length ? watch!.readAt : now;
    return idle ? { ...answer, watch: watchToken(groupId, answer, markers, now, readAt) } : answer;
  }

  /**
   * Acknowledged positions, else committed offsets (read only when some partition has no position),
   * else autoOffsetReset, resolved in the recorded incarnation (none if that is gone).
   */
  private async startPositions(group: Group, member: Member, partitions: TopicPartition[]): Promise<StartPositions> {
    const topicIds = topicIdsOf(group);
    const unpositioned = partitions.filter((tp) => member.positions[tp] === undefined);
    const committed = unpositioned.length > 0 ? await this.offsets.committedOffsets(group.groupId, topicIds) : new Map<TopicPartition, CommittedOffset>();
    const start: StartPositions = {};
    await Promise.all(partitions.map(async (tp) => {
      const { topic, partition } = parseTopicPartition(tp);
      start[tp] = member.positions[tp] ?? committed.get(tp)?.offset ?? (await whileTopicExists(this.offsets.resolve(topic, partition, member.autoOffsetReset, topicIds[topic])));
    }));
    return start;
  }

  /**
   * Fetches every partition (maxRecords and maxBytes split evenly; the budget, a hard bound, whole
   * to each) until some records arrive, a topic is found gone, or waitMs is over.
   */
  private async fetchAll(partitions: TopicPartition[], start: StartPositions, topicIds: Record<string, string>, member: Member, options: PollOptions): Promise<PartitionBatch[]> {
    const share = {
      maxRecords: Math.max(1, Math.ceil(options.maxRecords / Math.max(1, partitions.length))),
      maxBytes: Math.max(1, Math.floor(options.maxBytes / Math.max(1, partitions.length))),
    };
    const deadline = Date.now() + options.waitMs;
    const positions = { ...start };
    for (let delay = 10; ; delay = Math.min(delay * 2, POLL_MAX_DELAY_MS)) {
      const batches = await Promise.all(partitions.map((tp) => {
        const offset = positions[tp];
        return offset === undefined ? { tp, records: [], next: 0, gone: true } : this.fetchPartition(tp, topicIds, offset, member, share, options.budget, options.isolation);
      }));
      const remaining = deadline - Date.now();
      if (partitions.length === 0 || remaining <= 0 || batches.some((b) => b.records.length > 0 || b.gone)) return batches;
      for (const b of batches) positions[b.tp] = b.next;
      await sleep(Math.min(delay, remaining));
    }
  }

  private async fetchPartition(tp: TopicPartition, topicIds: Record<string, string>, offset: number, member: Member, share: { maxRecords: number; maxBytes: number }, budget?: ReadBudget<PolledRecord>, isolation?: Isolation): Promise<PartitionBatch> {
    const { topic, partition } = parseTopicPartition(tp);
    const partitionBudget = budget && { ...budget, sizeOf: (r: FetchedRecord) => budget.sizeOf({ ...r, topic }) };
    try {
      // By topicId: the fetcher refuses (after a consistent read) to read another incarnation.
      const result = await this.fetcher.fetch({ topic, topicId: topicIds[topic], partition, offset, ...share, waitMs: 0, budget: partitionBudget, isolation });
      return { tp, records: result.records.map((r) => ({ ...r, topic })), next: result.nextOffset, settled: result.settled };
    } catch (err) {
      // A position below the log start (retention or DeleteRecords removed the records) resumes at
      // the log start: nothing still readable is skipped. One past the end applies autoOffsetReset.
      if (err instanceof OffsetOutOfRangeError) {
        const next = offset < err.logStartOffset || member.autoOffsetReset === 'earliest' ? err.logStartOffset : err.highWatermark;
        return next === offset ? { tp, records: [], next } : this.fetchPartition(tp, topicIds, next, member, share, budget, isolation);
      }
      // The recorded incarnation was deleted (and maybe re-created): nothing to read from it.
      if (isGone(err)) return { tp, records: [], next: offset, gone: true };
      throw err;
    }
  }
}

/**
 * A token that lets the next poll answer `answer` again at once while the topics' markers stay
 * as `markers` shows them, until the member's next heartbeat is due (the full poll refreshes its
 * session and learns of rebalances). It is the client's own: a forged one only misleads its bearer.
 */
function watchToken(groupId: string, answer: MemberAssignment, markers: Record<string, ChangeMarker>, now: number, readAt: number): string | undefined {
  const { memberId, memberEpoch, heartbeatIntervalMs, assignment } = answer;
  const watch: Watch = { memberId, memberEpoch, heartbeatIntervalMs, assignment, groupId, markers: Object.fromEntries(Object.entries(markers).map(([id, m]) => [id, m.seq])), until: now + answer.heartbeatIntervalMs, readAt };
  const token = Buffer.from(JSON.stringify(watch)).toString('base64url');
  return token.length <= MAX_WATCH_CHARS ? token : undefined;
}

const watchSchema = z.object({
  groupId: z.string(),
  memberId: z.string(),
  memberEpoch: z.number().int(),
  heartbeatIntervalMs: z.number().int(),
  assignment: z.array(z.object({ topic: z.string(), partitions: z.array(z.number().int()) })),
  markers: z.record(z.string(), z.number().int()),
  until: z.number().int(),
  readAt: z.number().int(),
});

/** The watch, if it is this member's (another member's or group's is ignored). */
function ownWatch(watch: Watch, groupId: string, memberId: string): Watch | undefined {
  return watch.groupId === groupId && watch.memberId === memberId ? watch : undefined;
}

/** No topic of the watch changed since it was handed out. */
function unchangedSince(watch: Watch, markers: Record<string, ChangeMarker>): boolean {
  return Object.entries(watch.markers).every(([id, seq]) => markers[id]?.seq === seq);
}

function parseWatch(token: string): Watch {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const watch = watchSchema.safeParse(parsed);
  if (!watch.success) throw new InvalidRequestError('INVALID_WATCH', 'watch must be the watch of an earlier poll answer, unchanged');
  return watch.data;
}

/** UNKNOWN_TOPIC (or UNKNOWN_PARTITION): the incarnation the group records has no such log any more. */
function isGone(err: unknown): boolean {
  return err instanceof PartitionLogMissingError || err instanceof NotFoundError;
}

/** The value, or undefined if the topic incarnation it was read from is gone. */
async function whileTopicExists<T>(value: Promise<T>): Promise<T | undefined> {
  try {
    return await value;
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
}

/**
 * At most maxRecords in all and within the budget, taken partition by partition from a random
 * starting point (so no partition is starved); a partition cut short resumes after its last
 * delivered record.
 */
function limitRecords(batches: PartitionBatch[], { maxRecords, budget }: PollOptions): PartitionBatch[] {
  const first = Math.floor(Math.random() * Math.max(1, batches.length));
  const rotated = [...batches.slice(first), ...batches.slice(0, first)];
  let room = maxRecords;
  let spendable = budget?.bytes ?? Infinity;
  return rotated.map((b) => {
    let taken = 0;
    for (const record of b.records) {
      const cost = budget?.sizeOf(record) ?? 0;
      if (taken === room || cost > spendable) break;
      spendable -= cost;
      taken++;
    }
    room -= taken;
    if (taken === b.records.length) return b;
    const records = b.records.slice(0, taken);
    return { tp: b.tp, records, next: records.length > 0 ? records.at(-1)!.offset + 1 : b.records[0]!.offset };
  });
}
