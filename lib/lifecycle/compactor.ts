// Compaction: the partition's leader copies runs of committed batches (never above the stored high
// watermark, below which everything is resolved) into one log segment object, byte for byte, and
// then replaces their index entries by one segment item. Argued in docs/architecture.md
// ("Lifecycle").
//   1. pick the run after the segmented prefix: due once it holds segment.bytes, or its oldest
//      batch is segment.ms old
//   2. GET the batches, encode the segment (frames + sparse offset/time index), PUT it under a
//      name no other leader can choose (base offset, epoch, random)
//   3. commit: one transaction raises the state's segEnd (fenced by the epoch, and only from the
//      value read) and puts the segment item. This is the only step that changes what readers use.
//   4. drop what the segment replaced: release the intake objects, delete the entries (fenced).
//      Any leader finishes an interrupted step 4 first thing (dropCompacted).
import { randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, TransactWriteCommand, UpdateCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { batchWrite } from '../aws/batch-write.ts';
import { allItems } from '../aws/pages.ts';
import { isTransactionConflict, transactOnce } from '../aws/transactions.ts';
import { encodeLogSegment } from '../codec/log-segment.ts';
import { InvariantViolationError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { STATE_OFFSET, releasingPartitionKey, segmentsPartitionKey, trashPartitionKey } from '../log/keys.ts';
import { batchBytes, keysUnder } from '../log/objects.ts';
import type { PartitionState } from '../log/partition-state.ts';
import { segmentToItem, type SegmentItem } from '../log/segment-index.ts';
import { abortedTransactions, isAborted } from '../log/aborted-transactions.ts';
import { lastStableOffset, transactionHolding, type DataEntry, type IndexEntry, type ObjectBatch, type Sequencer, type TransactionHoldListener } from '../log/sequencer.ts';
import { fenced, leaseClauses, type Leadership, type Leases } from './lease.ts';
import { mapLimit } from './map-limit.ts';

export interface SegmentPolicy {
  /** Roll once the run holds this many bytes of batches (Kafka's segment.bytes). */
  segmentBytes: number;
  /** Roll once the run's oldest batch was committed this long ago (Kafka's segment.ms). */
  segmentMs: number;
}

export interface CompactorOptions {
  /** Frames one segment holds at most: bounds one roll's GETs (and time, well within the lease). */
  maxFramesPerSegment: number;
  /** Intake batches read in parallel. */
  readConcurrency: number;
  /**
   * A run is also due once its inline batches hold this many bytes: small writes keep their bytes
   * in DynamoDB (priced per KB written, read and deleted) only until a segment, one PUT, holds them.
   */
  inlineRollBytes: number;
  now: () => number;
}

export const DEFAULT_COMPACTOR_OPTIONS: CompactorOptions = { maxFramesPerSegment: 10_000, readConcurrency: 16, inlineRollBytes: 1 << 20, now: Date.now };

/** TransactWriteItems takes 100 items; one is the lease fence, one the pending-release record. */
const DELETES_PER_TRANSACTION = 98;

/** The intake objects of one deleted chunk of entries, with their partition counts, until released. */
interface PendingRelease {
  p: string;
  o: number;
  objects: Array<readonly [key: string, parts: number]>;
}
const ENTRY_PAGE = 1000;

// Named condition clauses. Each guards one timeline:
const clauses = {
  // A leader reads segEnd = s and rolls [s, e) → it crashes after the commit, and its successor
  // (or a duplicate invocation at the same epoch) read s too → the second commit of [s, e') must
  // fail, or two segments would claim the same offsets.
  segmentsEndAt: '#segEnd = :start',
  // The segment item is keyed by its end: a second item for the same offsets is never written.
  segmentUnwritten: 'attribute_not_exists(#o)',
};

export class Compactor {
  readonly options: CompactorOptions;
  private transactionHold?: TransactionHoldListener;

  constructor(private readonly storage: Storage, private readonly sequencer: Sequencer, private readonly leases: Leases, options: Partial<CompactorOptions> = {}) {
    this.options = { ...DEFAULT_COMPACTOR_OPTIONS, ...options };
  }

  private get table() {
    return this.storage.config.logTable;
  }

  /**
   * Who to tell when an open transaction holds compaction back at the last stable offset: without
   * it, a transaction that timed out with nobody to run into it (no read_committed reader, no
   * producer) would stop compaction, and keep every later batch in the index, for good.
   */
  onTransactionHold(listener: TransactionHoldListener): void {
    this.transactionHold = listener;
  }

  /** Rolls at most one segment; undefined if no run is due. Call dropCompacted afterwards. */
  async roll(lease: Leadership, policy: SegmentPolicy): Promise<SegmentItem | undefined> {
    let view = await this.sequencer.readResolved(lease.pk);
    const holding = transactionHolding(view);
    // Aborted if it timed out: its marker then moves the last stable offset.
    if (holding && (await this.transactionHold?.(lease.pk, holding).catch(() => false))) view = await this.sequencer.readResolved(lease.pk);
    // Only entries below the STORED high watermark may go: producers' walks start there and must
    // find every entry above it. Move it up to the walked high watermark first.
    if (view.highWatermark > view.head.hwm && (await this.sequencer.advance(lease.pk, view))) view = await this.sequencer.read(lease.pk, { withTail: false });
    if (view.state.leaderEpoch !== lease.epoch) throw fenced(lease, view.state.leaderEpoch);
    // Nor at or above the last stable offset: an open transaction's batches have no outcome yet.
    const run = await this.dueRun(lease.pk, view.state, Math.min(view.head.hwm, lastStableOffset(view)), policy);
    if (!run) return undefined;
    const segment = await this.write(lease, run, view.head.aborts > 0);
    // Reading the run may have taken a while: make sure the lease outlasts the commit, or give up.
    await this.leases.renew(lease).catch(async (err: unknown) => {
      await this.deleteObjects([segment.objectKey]).catch(() => undefined);
      throw err;
    });
    await this.commit(lease, view.state.segmentsEnd, segment);
    return segment;
  }

  /**
   * The entries from segEnd on (skipping those wholly below the log start), up to the stored high
   * watermark and at most segment.bytes; undefined unless full, holding inlineRollBytes of inline
   * batches, or old enough to roll.
   */
  private async dueRun(pk: string, state: PartitionState, stableEnd: number, policy: SegmentPolicy): Promise<IndexEntry[] | undefined> {
    const run: IndexEntry[] = [];
    let bytes = 0;
    let inlineBytes = 0;
    let full = false;
    let cursor = state.segmentsEnd;
    scan: while (cursor < stableEnd) {
      const page = await this.sequencer.queryEntries(pk, cursor, ENTRY_PAGE);
      if (page.length === 0) break;
      for (const entry of page) {
        if (entry.base >= stableEnd) break scan;
        // Below the stored high watermark every offset is resolved: the entries follow each other,
        // except that entries wholly below the log start may be gone already.
        const droppedBelowLogStart = cursor < entry.base && entry.base <= state.logStart;
        if (entry.base !== cursor && !droppedBelowLogStart) throw new InvariantViolationError(`index entries of ${pk} jump from ${cursor} to ${entry.base} below the stored high watermark`);
        cursor = entry.base + entry.count;
        if (cursor <= state.logStart) continue;
        const size = entry.kind === 'data' ? entry.length : 0;
        if (run.length > 0 && (bytes + size > policy.segmentBytes || run.length >= this.options.maxFramesPerSegment)) {
          full = true;
          break scan;
        }
        run.push(entry);
        bytes += size;
        if (entry.kind === 'data' && entry.inline) inlineBytes += size;
      }
    }
    if (run.length === 0) return undefined;
    const due = full || bytes >= policy.segmentBytes || inlineBytes >= this.options.inlineRollBytes || this.options.now() - run[0]!.committedAt >= policy.segmentMs;
    return due ? run : undefined;
  }

  /**
   * Segments hold committed data only: a batch of an aborted transaction becomes a frame without
   * records (like a gap or a marker), so segment readers never need the aborted index.
   */
  private async write(lease: Leadership, run: IndexEntry[], mayHoldAborted: boolean): Promise<SegmentItem> {
    const base = run[0]!.base;
    const last = run.at(-1)!;
    const aborted = mayHoldAborted ? await abortedTransactions(this.storage, lease.pk, base, last.base + last.count) : [];
    const kept = (e: IndexEntry): e is DataEntry => e.kind === 'data' && (e.transactionalProducerId === undefined || !isAborted(aborted, e.transactionalProducerId, e.base));
    const batches = await mapLimit(run, this.options.readConcurrency, (e) => (kept(e) ? batchBytes(this.storage, e) : Promise.resolve(null)));
    const encoded = encodeLogSegment(base, run.map((e, i) => ({ offsetCount: e.count, batch: batches[i]! })));
    const objectKey = `logs/${lease.pk}/${String(base).padStart(20, '0')}-${lease.epoch}-${randomBytes(4).toString('hex')}.log`;
    await retry(() => this.storage.s3.send(new PutObjectCommand({ Bucket: this.storage.config.bucket, Key: objectKey, Body: encoded.bytes, ContentType: 'application/octet-stream' })));
    return {
      base, end: base + encoded.offsetCount, objectKey, size: encoded.bytes.length, dataLength: encoded.dataLength,
      indexLength: encoded.indexLength, indexCrc: encoded.indexCrc, recordCount: encoded.recordCount,
      maxTimestamp: encoded.maxTimestamp, epoch: lease.epoch, createdAt: this.options.now(),
    };
  }

  private async commit(lease: Leadership, previousEnd: number, segment: SegmentItem): Promise<void> {
    // A retry after a lost response is answered as the commit that already happened (transactOnce).
    try {
      await transactOnce(this.storage, [
        {
          Update: {
            TableName: this.table,
            Key: { p: lease.pk, o: STATE_OFFSET },
            UpdateExpression: 'SET #segEnd = :end ADD #segs :one, #segBytes :size',
            ConditionExpression: `${leaseClauses.epochMatches} AND ${clauses.segmentsEndAt}`,
            ExpressionAttributeNames: { '#epoch': 'epoch', '#segEnd': 'segEnd', '#segs': 'segs', '#segBytes': 'segBytes' },
            ExpressionAttributeValues: { ':epoch': lease.epoch, ':start': previousEnd, ':end': segment.end, ':one': 1, ':size': segment.size },
          },
        },
        { Put: { TableName: this.table, Item: segmentToItem(lease.pk, segment), ConditionExpression: clauses.segmentUnwritten, ExpressionAttributeNames: { '#o': 'o' } } },
      ]);
    } catch (err) {
      if (!(err instanceof TransactionCanceledException)) throw err;
      // Nothing was committed (a commit that landed is found by its token, or by its own key below,
      // and is never deleted): the uploaded segment is referenced by nothing.
      if (await this.isCommitted(lease.pk, segment)) return;
      await this.deleteObjects([segment.objectKey]).catch(() => undefined);
      const epoch = await this.leases.epochOf(lease.pk);
      if (epoch !== lease.epoch) throw fenced(lease, epoch);
      throw new InvariantViolationError(`segment [${segment.base}, ${segment.end}) of ${lease.pk} lost its commit to another writer at the same epoch ${lease.epoch}`, { cause: err });
    }
  }

  /**
   * Deletes segment objects of earlier epochs that no segment item references: uploads of a leader
   * that died (or was fenced) before its commit, or before deleting its upload. Run by a leader that
   * took over from one whose lease ran out; an earlier epoch can never commit any more.
   */
  async collectStrays(lease: Leadership): Promise<number> {
    const referenced = new Set((await this.segmentKeys(lease.pk)));
    const strays: string[] = [];
    for await (const keys of keysUnder(this.storage, `logs/${lease.pk}/`)) {
      for (const key of keys) {
        const epoch = Number(/-(\d+)-[0-9a-f]+\.log$/.exec(key)?.[1]);
        if (!referenced.has(key) && epoch < lease.epoch) strays.push(key);
      }
    }
    await this.deleteObjects(strays);
    return strays.length;
  }

  /** Object keys of the partition's segment items and of its trash (deleted after their grace). */
  private async segmentKeys(pk: string): Promise<string[]> {
    const keys = await Promise.all([segmentsPartitionKey(pk), trashPartitionKey(pk)].map(async (p) => allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': 'p', '#key': 'key' },
      ExpressionAttributeValues: { ':p': p },
      ProjectionExpression: '#key',
      ConsistentRead: true,
    }))));
    return keys.flat().map((i) => i.key as string);
  }

  private async isCommitted(pk: string, segment: SegmentItem): Promise<boolean> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: { p: segmentsPartitionKey(pk), o: segment.end }, ConsistentRead: true }));
    return res.Item?.key === segment.objectKey;
  }

  /**
   * Deletes the entries a segment (or the log start) replaced, then their intake objects. Each
   * chunk of entries is deleted in one fenced transaction that also records the chunk's objects as
   * pending release, so an object is never deleted while an entry refers to it, and a crash between
   * the two steps leaks nothing: the next leader releases what is pending first. Inline entries
   * have no object: they are plainly deleted. Idempotent.
   */
  async dropCompacted(lease: Leadership, state: PartitionState): Promise<number> {
    await this.releasePending(lease.pk);
    // Never at or above the stored hwm: producers' walks start there and must find every entry
    // (a log start raised past it by DeleteRecords waits until the hwm follows).
    const { head } = await this.sequencer.read(lease.pk, { withTail: false });
    const limit = Math.min(Math.max(state.segmentsEnd, state.logStart), head.hwm);
    let dropped = 0;
    for (let from = 0; from < limit;) {
      const page = await this.entriesBelow(lease.pk, from, limit);
      if (page.length === 0) break;
      // Gap entries stay: a writer stalled past its gap timeout may still try to commit at a
      // tombstoned base, and must keep losing to the tombstone (one small item per abandoned batch).
      const dead = page.filter((e): e is DataEntry => e.kind === 'data' && e.base + e.count <= limit && (e.base < state.segmentsEnd || e.base + e.count <= state.logStart));
      // Inline entries refer to no object, so nothing needs recording before they go, nor a fence:
      // segEnd and the log start only grow, so an entry below them stays dead whoever deletes it.
      // A plain delete costs the item's write units once; a transaction would cost them twice.
      const inline = dead.filter((e) => e.inline);
      await batchWrite(this.storage, this.table, inline.map((e) => ({ DeleteRequest: { Key: { p: lease.pk, o: e.base } } })));
      const stored = dead.filter((e): e is DataEntry & ObjectBatch => !e.inline);
      for (let i = 0; i < stored.length; i += DELETES_PER_TRANSACTION) {
        const chunk = stored.slice(i, i + DELETES_PER_TRANSACTION);
        const objects = [...new Map(chunk.map((e) => [e.objectKey, e.parts] as const)).entries()];
        const pending = { p: releasingPartitionKey(lease.pk), o: chunk[0]!.base, objects };
        await this.transactFenced(lease, [
          ...chunk.map((e) => ({ Delete: { TableName: this.table, Key: { p: lease.pk, o: e.base } } })),
          { Put: { TableName: this.table, Item: pending } },
        ]);
        await this.release(lease.pk, pending);
      }
      dropped += dead.length;
      from = page.at(-1)!.base + 1;
    }
    return dropped;
  }

  /** Releases the objects of chunks whose entries were deleted by a pass that did not finish. */
  private async releasePending(pk: string): Promise<void> {
    const pending = await allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': 'p' },
      ExpressionAttributeValues: { ':p': releasingPartitionKey(pk) },
      ConsistentRead: true,
    }));
    for (const item of pending) await this.release(pk, item as unknown as PendingRelease);
  }

  private async entriesBelow(pk: string, from: number, limit: number): Promise<IndexEntry[]> {
    const entries = await this.sequencer.queryEntries(pk, from, ENTRY_PAGE);
    return entries.filter((e) => e.base < limit);
  }

  /**
   * This partition no longer refers to the intake objects of a deleted chunk: an object of one
   * partition is deleted now; an object of several by whichever partition releases it last. Then
   * the pending record goes. Readers still holding a deleted entry find the object gone and follow
   * the offsets into the segment.
   */
  private async release(pk: string, pending: PendingRelease): Promise<void> {
    const unreferenced: string[] = [];
    await mapLimit(pending.objects, this.options.readConcurrency, async ([key, parts]) => {
      if (await this.isLastRelease(pk, key, parts)) unreferenced.push(key);
    });
    await this.deleteObjects(unreferenced);
    await retry(() => this.storage.ddb.send(new DeleteCommand({ TableName: this.table, Key: { p: pending.p, o: pending.o } })));
  }

  /** Releases an intake object of `parts` partitions for `pk`; deletes it (true) if that was the last use. */
  async releaseFor(pk: string, objectKey: string, parts: number): Promise<boolean> {
    if (!(await this.isLastRelease(pk, objectKey, parts))) return false;
    await this.deleteObjects([objectKey]);
    return true;
  }

  private async isLastRelease(pk: string, objectKey: string, parts: number): Promise<boolean> {
    if (parts <= 1) return true;
    if ((await this.releaseShared(pk, objectKey)).size < parts) return false;
    // Complete: nobody adds to it again (every partition released), so it can go with the object.
    await retry(() => this.storage.ddb.send(new DeleteCommand({ TableName: this.table, Key: releaseKey(objectKey) })));
    return true;
  }

  /** Whether `pk` has released the shared intake object. */
  async released(pk: string, objectKey: string): Promise<boolean> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: releaseKey(objectKey), ConsistentRead: true }));
    return (res.Item?.released as Set<string> | undefined)?.has(pk) ?? false;
  }

  /** Adds `pk` to the partitions that released a shared intake object; returns them all. */
  private async releaseShared(pk: string, objectKey: string): Promise<Set<string>> {
    const res = await retry(() => this.storage.ddb.send(new UpdateCommand({
      TableName: this.table,
      Key: releaseKey(objectKey),
      UpdateExpression: 'ADD #released :pk',
      ExpressionAttributeNames: { '#released': 'released' },
      ExpressionAttributeValues: { ':pk': new Set([pk]) },
      ReturnValues: 'ALL_NEW',
    })));
    return res.Attributes!.released as Set<string>;
  }

  async deleteObjects(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      await retry(() => this.storage.s3.send(new DeleteObjectsCommand({ Bucket: this.storage.config.bucket, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } })));
    }
  }

  /** A transaction of `items` that applies only while `lease` is current. */
  async transactFenced(lease: Leadership, items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>): Promise<void> {
    try {
      await retry(() => this.storage.ddb.send(new TransactWriteCommand({ TransactItems: [this.leases.fence(lease), ...items] })), { isRetryable: isTransactionConflict });
    } catch (err) {
      if (err instanceof TransactionCanceledException && err.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed') throw fenced(lease, await this.leases.epochOf(lease.pk));
      throw err;
    }
  }
}

/** The item recording which partitions released a shared intake object. */
function releaseKey(objectKey: string) {
  return { p: `release#${objectKey}`, o: 0 };
}
