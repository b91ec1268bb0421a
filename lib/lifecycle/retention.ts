// Retention: the leader removes whole segments from the start of the log once they are past
// retention.ms (by their largest record timestamp, as Kafka does), past retention.bytes (oldest
// first), or wholly below a log start that DeleteRecords raised. Removing a prefix raises the log
// start in the same fenced transaction that deletes the segment items and puts their objects in
// the trash (`<pk>/trash` items keyed by when each may go): they are deleted only after a grace
// period longer than any read that may still use them. The uncompacted tail is never expired
// (like Kafka's active segment).
import { createHash, randomUUID } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { retry } from '../retry.ts';
import { allItems } from '../aws/pages.ts';
import type { Storage } from '../storage.ts';
import { STATE_OFFSET, segmentsPartitionKey, trashPartitionKey } from '../log/keys.ts';
import { isTransactionConflict } from '../aws/transactions.ts';
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

/** Segments removed per transaction: 100 items less the state update, two items each. */
const SEGMENTS_PER_TRANSACTION = 49;
/** Segments one pass expires at most: a long backlog goes over several passes. */
const MAX_EXPIRED_PER_PASS = 490;

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

  /** Removes the expired prefix of segments (at most MAX_EXPIRED_PER_PASS); returns how many went. */
  async expire(lease: Leadership, state: PartitionState, policy: RetentionPolicy): Promise<number> {
    const segments = await this.segments(lease.pk);
    const expired = expiredPrefix(segments, state.logStart, policy, this.options.now()).slice(0, MAX_EXPIRED_PER_PASS);
    let logStart = state.logStart;
    const dueAt = this.options.now() + this.options.deleteGraceMs;
    for (let i = 0; i < expired.length; i += SEGMENTS_PER_TRANSACTION) {
      const chunk = expired.slice(i, i + SEGMENTS_PER_TRANSACTION);
      logStart = await this.removeSegments(lease, chunk, logStart, dueAt, i);
    }
    return expired.length;
  }

  /**
   * One transaction: raise the log start past `chunk` (from the value last read), delete the
   * segment items and put each object in the trash (`<pk>/trash`, keyed by when it may go).
   * Readers thus never find a segment item missing above the log start. Returns the log start
   * written.
   */
  private async removeSegments(lease: Leadership, chunk: SegmentItem[], readLogStart: number, dueAt: number, first: number): Promise<number> {
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
              UpdateExpression: 'SET #logStart = :logStart ADD #segs :segs, #segBytes :bytes, #trashed :trashed',
              ConditionExpression: `${leaseClauses.epochMatches} AND ${clauses.logStartUnchanged}`,
              ExpressionAttributeNames: { '#epoch': 'epoch', '#logStart': 'logStart', '#segs': 'segs', '#segBytes': 'segBytes', '#trashed': 'trashed' },
              ExpressionAttributeValues: { ':epoch': lease.epoch, ':known': known, ':logStart': logStart, ':segs': -chunk.length, ':bytes': -bytes, ':trashed': chunk.length },
            },
          },
          ...chunk.flatMap((s, i) => [
            { Delete: { TableName: this.table, Key: { p: segmentsPartitionKey(lease.pk), o: s.end } } },
            // Unique within the pass (MAX_EXPIRED_PER_PASS < 1000), ordered by when each may go.
            { Put: { TableName: this.table, Item: { p: trashPartitionKey(lease.pk), o: dueAt * 1000 + first + i, key: s.objectKey, end: s.end } } },
          ]),
        ],
      }));
      try {
        await retry(transaction, { isRetryable: isTransactionConflict });
        return logStart;
      } catch (err) {
        if (!(err instanceof TransactionCanceledException) || attempt >= 3) throw err;
        const current = await this.leases.stateOf(lease.pk);
        if (current.leaderEpoch !== lease.epoch) throw fenced(lease, current.leaderEpoch);
        known = current.logStart;
      }
    }
  }

  /** Deletes the trashed objects whose grace period is over, then their trash items. */
  async emptyTrash(lease: Leadership): Promise<number> {
    const due = await allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#p = :p AND #o < :now',
      ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
      // Due once dueAt <= now (the low three digits only order items of one pass).
      ExpressionAttributeValues: { ':p': trashPartitionKey(lease.pk), ':now': (this.options.now() + 1) * 1000 },
      ConsistentRead: true,
    }));
    for (let i = 0; i < due.length; i += SEGMENTS_PER_TRANSACTION) {
      const chunk = due.slice(i, i + SEGMENTS_PER_TRANSACTION);
      await this.compactor.deleteObjects(chunk.map((t) => t.key as string));
      // The counter and the items go together; a token makes a retried transaction count once.
      await retry(() => this.storage.ddb.send(new TransactWriteCommand({
        ClientRequestToken: tokenOf(chunk),
        TransactItems: [
          {
            Update: {
              TableName: this.table,
              Key: { p: lease.pk, o: STATE_OFFSET },
              UpdateExpression: 'ADD #trashed :minus',
              ConditionExpression: leaseClauses.epochMatches,
              ExpressionAttributeNames: { '#epoch': 'epoch', '#trashed': 'trashed' },
              ExpressionAttributeValues: { ':epoch': lease.epoch, ':minus': -chunk.length },
            },
          },
          ...chunk.map((t) => ({ Delete: { TableName: this.table, Key: { p: t.p, o: t.o }, ConditionExpression: 'attribute_exists(#o)', ExpressionAttributeNames: { '#o': 'o' } } })),
        ],
      })), { isRetryable: isTransactionConflict }).catch(async (err: unknown) => {
        if (!(err instanceof TransactionCanceledException)) throw err;
        // Fenced, or the items are gone already (another pass emptied them): nothing counted twice.
        const epoch = await this.leases.epochOf(lease.pk);
        if (epoch !== lease.epoch) throw fenced(lease, epoch);
      });
    }
    return due.length;
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


/** The same token for the same chunk of trash items, so a retried or repeated removal counts once. */
function tokenOf(items: Array<Record<string, unknown>>): string {
  return createHash('sha256').update(items.map((t) => `${t.p}@${t.o}`).join(',')).digest('hex').slice(0, 36);
}
