// Retention: the leader removes whole segments from the start of the log once they are past
// retention.ms (by their largest record timestamp, as Kafka does), past retention.bytes (oldest
// first), or wholly below a log start that DeleteRecords raised. Removing a prefix raises the log
// start in the same fenced transaction that deletes the segment items; the objects go to the
// state's trash and are deleted only after a grace period longer than any read that may still use
// them. The uncompacted tail is never expired (like Kafka's active segment).
import { randomUUID } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { retry } from '../retry.ts';
import { allItems } from '../aws/pages.ts';
import type { Storage } from '../storage.ts';
import { STATE_OFFSET, segmentsPartitionKey } from '../log/keys.ts';
import type { PartitionState } from '../log/partition-state.ts';
import { segmentFromItem, type SegmentItem } from '../log/segment-index.ts';
import type { Compactor } from './compactor.ts';
import { fenced, leaseClauses, type Leadership, type Leases } from './lease.ts';

export interface RetentionPolicy {
  /** Kafka's retention.ms; -1 keeps segments forever. */
  retentionMs: number;
  /** Kafka's retention.bytes, per partition, counting segments; -1 is unlimited. */
  retentionBytes: number;
}

export interface RetentionOptions {
  /** Expired objects are deleted this long after they left the log (longer than any fetch). */
  deleteGraceMs: number;
  now: () => number;
}

export const DEFAULT_RETENTION_OPTIONS: RetentionOptions = { deleteGraceMs: 10 * 60_000, now: Date.now };

/** Segment items deleted per transaction: 100 items less the state update. */
const SEGMENTS_PER_TRANSACTION = 99;

type TrashEntry = [key: string, dueAt: number];

// Named condition clauses. Each guards one timeline:
const clauses = {
  // The leader reads log start 500 → DeleteRecords raises it to 900 → the leader expires a segment
  // ending at 700: its write, computed from 500, must fail and be recomputed, never lower 900.
  logStartUnchanged: '#logStart = :known',
};

export class Retention {
  readonly options: RetentionOptions;

  constructor(private readonly storage: Storage, private readonly leases: Leases, private readonly compactor: Compactor, options: Partial<RetentionOptions> = {}) {
    this.options = { ...DEFAULT_RETENTION_OPTIONS, ...options };
  }

  private get table() {
    return this.storage.config.logTable;
  }

  /** Removes the expired prefix of segments; returns how many went. */
  async expire(lease: Leadership, state: PartitionState, policy: RetentionPolicy): Promise<number> {
    const segments = await this.segments(lease.pk);
    const expired = expiredPrefix(segments, state.logStart, policy, this.options.now());
    let logStart = state.logStart;
    for (let i = 0; i < expired.length; i += SEGMENTS_PER_TRANSACTION) {
      const chunk = expired.slice(i, i + SEGMENTS_PER_TRANSACTION);
      logStart = await this.removeSegments(lease, chunk, logStart);
    }
    return expired.length;
  }

  /**
   * One transaction: raise the log start past `chunk` (from the value last read), trash the
   * objects and delete the items. Readers thus never find a segment item missing above the log
   * start. Returns the log start written.
   */
  private async removeSegments(lease: Leadership, chunk: SegmentItem[], readLogStart: number): Promise<number> {
    const dueAt = this.options.now() + this.options.deleteGraceMs;
    const bytes = chunk.reduce((sum, s) => sum + s.size, 0);
    for (let known = readLogStart, attempt = 0; ; attempt++) {
      const logStart = Math.max(known, chunk.at(-1)!.end);
      // One idempotency token per attempt's content: the SDK-level retry of a transaction whose
      // response was lost is answered as done, never applied twice (the counters would drift).
      const ClientRequestToken = randomUUID();
      const transaction = () => this.storage.ddb.send(new TransactWriteCommand({
        ClientRequestToken,
        TransactItems: [
          {
            Update: {
              TableName: this.table,
              Key: { p: lease.pk, o: STATE_OFFSET },
              UpdateExpression: 'SET #logStart = :logStart, #trash = list_append(if_not_exists(#trash, :empty), :trash) ADD #segs :segs, #segBytes :bytes',
              ConditionExpression: `${leaseClauses.epochMatches} AND ${clauses.logStartUnchanged}`,
              ExpressionAttributeNames: { '#epoch': 'epoch', '#logStart': 'logStart', '#trash': 'trash', '#segs': 'segs', '#segBytes': 'segBytes' },
              ExpressionAttributeValues: { ':epoch': lease.epoch, ':known': known, ':logStart': logStart, ':empty': [], ':trash': chunk.map((s): TrashEntry => [s.objectKey, dueAt]), ':segs': -chunk.length, ':bytes': -bytes },
            },
          },
          ...chunk.map((s) => ({ Delete: { TableName: this.table, Key: { p: segmentsPartitionKey(lease.pk), o: s.end } } })),
        ],
      }));
      try {
        await retry(transaction);
        return logStart;
      } catch (err) {
        if (!(err instanceof TransactionCanceledException) || attempt >= 3) throw err;
        const current = await this.leases.stateOf(lease.pk);
        if (current.leaderEpoch !== lease.epoch) throw fenced(lease, current.leaderEpoch);
        known = current.logStart;
      }
    }
  }

  /** Deletes the trashed objects whose grace period is over. */
  async emptyTrash(lease: Leadership, trash: TrashEntry[]): Promise<number> {
    const now = this.options.now();
    // Appended in due order: the due ones are a prefix.
    const due = trash.findIndex(([, dueAt]) => dueAt > now);
    const count = due === -1 ? trash.length : due;
    if (count === 0) return 0;
    await this.compactor.deleteObjects(trash.slice(0, count).map(([key]) => key));
    const removals = Array.from({ length: count }, (_, i) => `#trash[${i}]`).join(', ');
    await this.leases.updateFenced(lease, `REMOVE ${removals}`, { '#trash': 'trash' }, {});
    return count;
  }

  /** Every segment of the partition, in offset order (small items: one Query per ~5,000). */
  async segments(pk: string): Promise<SegmentItem[]> {
    const items = await allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': 'p' },
      ExpressionAttributeValues: { ':p': segmentsPartitionKey(pk) },
      ConsistentRead: true,
    }));
    return items.map(segmentFromItem);
  }
}

/** The longest prefix of `segments` that retention (or the log start) removes. */
export function expiredPrefix(segments: SegmentItem[], logStart: number, policy: RetentionPolicy, now: number): SegmentItem[] {
  let remainingBytes = segments.reduce((sum, s) => sum + s.size, 0);
  const expired: SegmentItem[] = [];
  for (const segment of segments) {
    const belowLogStart = segment.end <= logStart;
    const tooOld = policy.retentionMs >= 0 && segment.maxTimestamp < now - policy.retentionMs;
    const tooLarge = policy.retentionBytes >= 0 && remainingBytes - segment.size >= policy.retentionBytes;
    if (!belowLogStart && !tooOld && !tooLarge) break;
    expired.push(segment);
    remainingBytes -= segment.size;
  }
  return expired;
}

