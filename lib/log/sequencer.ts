// The sequencer: assigns offsets to uploaded batches with DynamoDB conditional writes.
//
// Protocol (argued in docs/architecture.md, "Sequencing"):
//   1. reserve: one atomic UpdateItem on the partition head adds `count` to `next` and appends
//      [count, reservedAt, token] to the list `resv` of reservations not yet below `hwm`.
//      base = next - count. Atomic counters never conflict, so 32 racing writers need no retries.
//   2. commit: PutItem of the index entry at o = base, only if nothing is there yet. The entry is
//      the commit point; it is immutable from then on.
//   3. visibility: the high watermark is `hwm` plus every reservation after it, walked in order,
//      that has an entry. A reservation without an entry is a hole; once it is older than the gap
//      timeout (or known abandoned by its own writer) anyone may claim its exact base with a gap
//      tombstone. Entry and tombstone race on the same key, so exactly one wins; a writer that
//      loses to a tombstone reserves again. Reservation boundaries come from `resv`, so a tombstone
//      never overlaps another reservation, whatever the clocks say: time decides only liveness.
//   4. `hwm` is advanced lazily (one writer in HWM_ADVANCE_EVERY, or a reader facing a long walk),
//      trimming the reservations below it, which keeps the head item small.
import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { transactOnce, type TransactItem } from '../aws/transactions.ts';
import { InvariantViolationError, PartitionLogMissingError, StorageUnavailableError } from '../errors.ts';
import { retry, sleep } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { HEAD_OFFSET, STATE_OFFSET, abortedPartitionKey } from './keys.ts';
import { stateFromItem, type PartitionState } from './partition-state.ts';

export interface SequencerOptions {
  /** A reservation without a commit this old may be claimed by a gap tombstone. */
  gapTimeoutMs: number;
  /** The writer of every Nth reservation advances the stored high watermark. */
  hwmAdvanceEvery: number;
  /** A reader that walks this many reservations advances the stored high watermark itself. */
  readerAdvanceThreshold: number;
  now: () => number;
}

export const DEFAULT_SEQUENCER_OPTIONS: SequencerOptions = {
  gapTimeoutMs: 15_000,
  hwmAdvanceEvery: 8,
  readerAdvanceThreshold: 32,
  now: Date.now,
};

export interface Reservation {
  count: number;
  reservedAt: number;
  token: string;
}

export interface PartitionHead {
  next: number;
  hwm: number;
  seq: number;
  resv: Reservation[];
  /**
   * Open transactions writing to this partition, each pinned at an offset at or below its first
   * (attributes `txn_<producerId>_<transaction>`, see docs/architecture.md "Transactions").
   */
  openTransactions: TransactionPin[];
  /** Transactions ever aborted here: readers look up aborted ranges only when there are some. */
  aborts: number;
}

interface EntryCommon {
  base: number;
  count: number;
  token: string;
  committedAt: number;
}
/** A batch's bytes: a byte range of an intake object in S3, */
export interface ObjectBatch {
  inline?: undefined;
  objectKey: string;
  /** How many partitions' batches the intake object holds: it may go once all of them are compacted. */
  parts: number;
  position: number;
}
/** or the encoded batch itself, held in its index entry (a small write: no S3 PUT). */
export interface InlineBatch {
  inline: Uint8Array;
}
export type BatchSource = ObjectBatch | InlineBatch;

export type DataEntry = EntryCommon & BatchSource & {
  kind: 'data';
  /** Set for a transactional batch: readers in read_committed skip it if its transaction aborted. */
  transactionalProducerId?: number;
  /** Bytes of the encoded batch. */
  length: number;
  firstTimestamp: number;
  maxTimestamp: number;
};
export interface GapEntry extends EntryCommon {
  kind: 'gap';
}
/** A transaction's outcome in this partition (Kafka's control record): one offset, no record. */
export interface MarkerEntry extends EntryCommon {
  kind: 'marker';
  producerId: number;
  outcome: TransactionOutcome;
}
export type TransactionOutcome = 'commit' | 'abort';
export type IndexEntry = DataEntry | GapEntry | MarkerEntry;

export type { TransactItem };

/**
 * Items committed in one transaction with a batch's index entry (the producer's sequence, the
 * transaction it belongs to), and what their refusal means: `refused` gets the cancellation reason
 * of each of `items` (true = its condition failed) and returns the error to throw. The batch's
 * reservation is then given up as a gap, so nothing of it is ever visible.
 */
export interface CommitGuard {
  transactionalProducerId?: number;
  items(entry: DataEntry): TransactItem[];
  refused(failed: boolean[]): Promise<Error>;
}
/** Where a batch lives (uploaded, or carried inline), before it has offsets. */
export type BatchRef = BatchSource & {
  length: number;
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
};

export interface Hole {
  base: number;
  reservation: Reservation;
}

export interface PartitionView {
  head: PartitionHead;
  /** The lifecycle state read with the head: log start and the segmented prefix. */
  state: PartitionState;
  /** Every offset below this is committed data or a resolved gap. */
  highWatermark: number;
  /**
   * The entries the walk found, up to highWatermark, in offset order: from head.hwm, or from the
   * first reservation above this process's walked floor (see `walkedFloor`).
   */
  entries: IndexEntry[];
  /** How many of head.resv lie below highWatermark: the reservations an advance may trim. */
  resolved: number;
  /** The newest committed entries below highWatermark (a contiguous run ending there), in offset order. */
  recent: IndexEntry[];
  hole?: Hole;
}

type StoredReservation = [number, number, string];

export interface EntryQueryOptions {
  direction?: 'forward' | 'backward';
  /** The last base to read (inclusive): none for forward, 0 for backward by default. */
  farthest?: number;
  consistent?: boolean;
}

export interface ReadOptions {
  /**
   * Also read the newest entries (in parallel with the head). Off for the repeated checks of a
   * long-poll, which only need to see the high watermark move.
   */
  withTail?: boolean;
}

const MAX_RESOLVE_ROUNDS = 256;
const MAX_SEQUENCE_ATTEMPTS = 8;

/** Entries read from the tail of a partition alongside its head. */
const TAIL_WINDOW = 32;

/** Reservations trimmed from the head by one advance at most. */
const MAX_ADVANCE = 200;

/** Partitions whose walked floor one process remembers; beyond that it forgets them all and starts over. */
const MAX_WALKED_FLOORS = 100_000;

export function emptyHead() {
  return { o: HEAD_OFFSET, next: 0, hwm: 0, seq: 0, resv: [] as StoredReservation[] };
}

export function newWriterToken(): string {
  return randomBytes(6).toString('base64url');
}

// Named condition clauses. Each guards one timeline:
const clauses = {
  // T1 reads topic metadata → T2 deletes the topic (retiring its heads) → T1 reserves: T1 must
  // fail, not write into a log nobody can see.
  partitionExists: 'attribute_exists(#next) AND attribute_not_exists(#deleted)',
  // W reserves [b, b+n) → W stalls → R finds the hole expired and tombstones b → W commits at b:
  // exactly one of the two puts at o = b succeeds, whichever order they land in.
  offsetUnclaimed: 'attribute_not_exists(#o)',
  // A and B both read hwm = h and both compute "remove the first k reservations" → A advances →
  // B must not remove k more.
  hwmUnchanged: '#hwm = :expectedHwm',
  // R reads the head (b pending) → an advance passes b (its entry was there), compaction rolls b
  // into a segment and deletes its entry → R finds b's entry missing and takes it for a hole: its
  // tombstone must fail, or b would hold a gap where the segment holds records.
  hwmNotPast: '#hwm <= :base',
  // Completers A and B of transaction T both read T's pin f → B writes T's marker and removes the
  // pin → A must not write a second marker (its aborted range would reach past T's records). The
  // pin is named by the transaction's number, so A can never touch the pin of T's successor.
  transactionPinned: '#pin = :first',
};

/** The head attribute pinning transaction `transaction` of `producerId`. */
function pinAttribute(pin: Pick<TransactionPin, 'producerId' | 'transaction'>): string {
  return `txn_${pin.producerId}_${pin.transaction}`;
}

function headFromItem(item: Record<string, unknown>): PartitionHead {
  const resv = (item.resv as StoredReservation[]).map(([count, reservedAt, token]) => ({ count, reservedAt, token }));
  const openTransactions: TransactionPin[] = [];
  for (const [name, value] of Object.entries(item)) {
    const pin = /^txn_(\d+)_(\d+)$/.exec(name);
    if (pin) openTransactions.push({ producerId: Number(pin[1]), transaction: Number(pin[2]), first: value as number });
  }
  return { next: item.next as number, hwm: item.hwm as number, seq: item.seq as number, resv, openTransactions, aborts: (item.aborts as number | undefined) ?? 0 };
}

/**
 * Kafka's last stable offset: below it every transaction has its outcome recorded, so read_committed
 * readers may go up to it and no further.
 */
export function lastStableOffset(view: Pick<PartitionView, 'highWatermark' | 'head'>): number {
  return Math.min(view.highWatermark, ...view.head.openTransactions.map((pin) => pin.first));
}

function entryFromItem(item: Record<string, unknown>): IndexEntry {
  const common = { base: item.o as number, count: item.n as number, token: item.tok as string, committedAt: item.at as number };
  if (item.kind === 'gap') return { ...common, kind: 'gap' };
  if (item.kind === 'marker') return { ...common, kind: 'marker', producerId: item.pid as number, outcome: item.outcome as TransactionOutcome };
  const source: BatchSource = item.b instanceof Uint8Array
    ? { inline: item.b }
    : { objectKey: item.key as string, parts: (item.parts as number | undefined) ?? 1, position: item.pos as number };
  return {
    ...common,
    ...source,
    kind: 'data',
    transactionalProducerId: item.pid as number | undefined,
    length: item.len as number,
    firstTimestamp: item.ts0 as number,
    maxTimestamp: item.tsMax as number,
  };
}

function entryToItem(pk: string, entry: IndexEntry): Record<string, unknown> {
  const common = { p: pk, o: entry.base, n: entry.count, tok: entry.token, at: entry.committedAt, kind: entry.kind };
  if (entry.kind === 'gap') return common;
  if (entry.kind === 'marker') return { ...common, pid: entry.producerId, outcome: entry.outcome };
  const source = entry.inline ? { b: entry.inline } : { key: entry.objectKey, parts: entry.parts, pos: entry.position };
  return { ...common, ...source, len: entry.length, ts0: entry.firstTimestamp, tsMax: entry.maxTimestamp, pid: entry.transactionalProducerId };
}

export class Sequencer {
  readonly options: SequencerOptions;
  /** Per partition, the highest high watermark a walk of this process found (see `walkedFloor`). */
  private readonly walkedFloors = new Map<string, number>();

  constructor(private readonly storage: Storage, options: Partial<SequencerOptions> = {}) {
    this.options = { ...DEFAULT_SEQUENCER_OPTIONS, ...options };
  }

  private get table() {
    return this.storage.config.logTable;
  }

  /**
   * Reserves `count` offsets. Returns the base, the reservation's sequence number and the bases of
   * any earlier reservations with the same token: those exist only when the SDK retried an attempt
   * that had in fact been applied, and are abandoned by construction (this writer commits only the
   * last one), so they can be tombstoned at once.
   */
  async reserve(pk: string, count: number, token: string, pinned?: TransactionPin): Promise<{ base: number; seq: number; head: PartitionHead; abandoned: Hole[] }> {
    let res;
    try {
      // Retried with the same token: a retry after an applied-but-unanswered attempt shows up
      // below as an abandoned reservation of ours.
      res = await retry(() => this.storage.ddb.send(new UpdateCommand({
        TableName: this.table,
        Key: { p: pk, o: HEAD_OFFSET },
        UpdateExpression: 'SET #resv = list_append(#resv, :mine) ADD #next :count, #seq :one',
        ConditionExpression: pinned ? `${clauses.partitionExists} AND ${clauses.transactionPinned}` : clauses.partitionExists,
        ExpressionAttributeNames: { '#resv': 'resv', '#next': 'next', '#seq': 'seq', '#deleted': 'deleted', ...(pinned && { '#pin': pinAttribute(pinned) }) },
        ExpressionAttributeValues: { ':mine': [[count, this.options.now(), token]], ':count': count, ':one': 1, ...(pinned && { ':first': pinned.first }) },
        ReturnValues: 'ALL_NEW',
      })));
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) {
        if (pinned) throw new TransactionUnpinnedError(`partition log ${pk} has no pin ${pinned.first} of transaction ${pinned.transaction} of producer ${pinned.producerId}`);
        throw new PartitionLogMissingError(`partition log ${pk} does not exist`);
      }
      throw err;
    }
    const head = headFromItem(res.Attributes!);
    const base = head.next - count;
    const abandoned: Hole[] = [];
    let cursor = head.hwm;
    head.resv.forEach((reservation, i) => {
      if (i < head.resv.length - 1 && reservation.token === token) abandoned.push({ base: cursor, reservation });
      cursor += reservation.count;
    });
    const mine = head.resv.at(-1);
    if (cursor !== head.next || !mine || mine.token !== token || mine.count !== count) {
      throw new InvariantViolationError(`head of ${pk} is inconsistent after reservation: hwm ${head.hwm} + reservations ${cursor - head.hwm} != next ${head.next}`);
    }
    return { base, seq: head.seq, head, abandoned };
  }

  /** Writes the index entry at its reserved base. 'fenced' means a gap tombstone got there first. */
  async commit(pk: string, entry: DataEntry | MarkerEntry, guard?: Pick<CommitGuard, 'items'>): Promise<'committed' | 'fenced'> {
    const existing = guard ? await this.transactIfUnclaimed(pk, entry, guard) : await this.putIfUnclaimed(pk, entry);
    if (!existing) return 'committed';
    // Our own earlier attempt, retried by the SDK after an ambiguous failure.
    if (existing.kind === entry.kind && existing.token === entry.token) return 'committed';
    if (existing.kind === 'gap') return 'fenced';
    throw new InvariantViolationError(`offset ${entry.base} of ${pk} holds another writer's entry: reservations overlapped`);
  }

  /**
   * The entry's put and the guard's items in one transaction. Returns the entry found at the base
   * if the put's condition failed; throws GuardRefusedError if only the guard's did.
   */
  private async transactIfUnclaimed(pk: string, entry: IndexEntry, guard: Pick<CommitGuard, 'items'>): Promise<IndexEntry | undefined> {
    const items = guard.items(entry as DataEntry);
    try {
      await transactOnce(this.storage, [{ Put: { TableName: this.table, Item: entryToItem(pk, entry), ConditionExpression: clauses.offsetUnclaimed, ExpressionAttributeNames: { '#o': 'o' } } }, ...items]);
      return undefined;
    } catch (err) {
      if (!(err instanceof TransactionCanceledException)) throw err;
      const [claimed, ...failed] = (err.CancellationReasons ?? []).map((r) => r.Code === 'ConditionalCheckFailed');
      if (claimed) return this.entryAt(pk, entry.base);
      // Still losing to other transactions after the retries: nothing was refused, try again later.
      if (!failed.some(Boolean)) throw new StorageUnavailableError(`the commit at ${pk}@${entry.base} kept conflicting with other transactions; retry`, { cause: err });
      throw new GuardRefusedError(failed, { cause: err });
    }
  }

  private async entryAt(pk: string, base: number): Promise<IndexEntry> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: { p: pk, o: base }, ConsistentRead: true }));
    if (!res.Item) throw new InvariantViolationError(`conditional put at ${pk}@${base} failed but no item is there`);
    return entryFromItem(res.Item);
  }

  /**
   * Claims a hole with a gap tombstone; returns false if a commit (or another tombstone) won, or if
   * the stored hwm has passed the base (its reservation was resolved, and its entry may since have
   * been compacted away). A transaction (twice the units of a put), as the condition is on the head;
   * tombstones are rare.
   */
  async tombstone(pk: string, hole: Hole): Promise<boolean> {
    const gap: GapEntry = { kind: 'gap', base: hole.base, count: hole.reservation.count, token: hole.reservation.token, committedAt: this.options.now() };
    try {
      await transactOnce(this.storage, [
        { Put: { TableName: this.table, Item: entryToItem(pk, gap), ConditionExpression: clauses.offsetUnclaimed, ExpressionAttributeNames: { '#o': 'o' } } },
        { ConditionCheck: { TableName: this.table, Key: { p: pk, o: HEAD_OFFSET }, ConditionExpression: clauses.hwmNotPast, ExpressionAttributeNames: { '#hwm': 'hwm' }, ExpressionAttributeValues: { ':base': hole.base } } },
      ]);
      return true;
    } catch (err) {
      if (!(err instanceof TransactionCanceledException)) throw err;
      if ((err.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed')) return false;
      throw new StorageUnavailableError(`the tombstone at ${pk}@${hole.base} kept conflicting with other transactions; retry`, { cause: err });
    }
  }

  private async putIfUnclaimed(pk: string, entry: IndexEntry): Promise<IndexEntry | undefined> {
    try {
      await retry(() => this.storage.ddb.send(new PutCommand({
        TableName: this.table,
        Item: entryToItem(pk, entry),
        ConditionExpression: clauses.offsetUnclaimed,
        ExpressionAttributeNames: { '#o': 'o' },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      })));
      return undefined;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // Emulators that do not return the old item: read it.
      return err.Item ? entryFromItem(unmarshall(err.Item)) : this.entryAt(pk, entry.base);
    }
  }

  /**
   * The highest high watermark a walk of this process found for `pk` (0 if none yet). Every
   * reservation below it had an entry at its base when that walk ran, and entries are immutable
   * and deleted only below the stored hwm: so a later walk need not look at them again, and a read
   * need only fetch the entries at or above it. A floor, never a claim about the present: the high
   * watermark only grows, and each read still reads the head.
   */
  walkedFloor(pk: string): number {
    return this.walkedFloors.get(pk) ?? 0;
  }

  private noteWalked(pk: string, highWatermark: number): void {
    if (highWatermark <= this.walkedFloor(pk)) return;
    if (this.walkedFloors.size >= MAX_WALKED_FLOORS) this.walkedFloors.clear();
    this.walkedFloors.set(pk, highWatermark);
  }

  /**
   * Reads the head (with the lifecycle state beside it, in the same Query) and, in parallel, the
   * newest TAIL_WINDOW entries at or above the walked floor. Entries are immutable and both calls
   * start after any earlier read finished, so everything an earlier read saw is in the window's
   * snapshot: the result never goes behind an earlier one. When the window reaches down to where
   * the walk starts it holds every entry the walk needs (one round trip); otherwise a forward Query
   * from there follows. A tailing reader's window is just the entries added since its last read,
   * whatever their size (inline batches make entries large, and a Query is priced by the bytes it
   * reads).
   */
  async read(pk: string, { withTail = true }: ReadOptions = {}): Promise<PartitionView> {
    const floor = this.walkedFloor(pk);
    const [control, newestFirst] = await Promise.all([
      this.storage.ddb.send(new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#p = :p AND #o BETWEEN :state AND :head',
        ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
        ExpressionAttributeValues: { ':p': pk, ':state': STATE_OFFSET, ':head': HEAD_OFFSET },
        ConsistentRead: true,
      })),
      withTail ? this.queryEntries(pk, Number.MAX_SAFE_INTEGER, TAIL_WINDOW, { direction: 'backward', farthest: floor }) : Promise.resolve([]),
    ]);
    const headItem = control.Items?.find((item) => item.o === HEAD_OFFSET);
    if (!headItem || headItem.deleted) throw new PartitionLogMissingError(`partition log ${pk} does not exist`);
    const head = headFromItem(headItem);
    const state = stateFromItem(control.Items?.find((item) => item.o === STATE_OFFSET));
    const tail = newestFirst.reverse();
    const start = walkStart(head, floor);
    const windowReachesStart = withTail && (newestFirst.length < TAIL_WINDOW ? floor <= start.base : tail[0]!.base <= start.base);
    const unwalked = head.resv.length - start.index;
    const view = walk(pk, head, floor, unwalked === 0 || windowReachesStart ? tail : await this.queryEntries(pk, start.base, unwalked));
    this.noteWalked(pk, view.highWatermark);
    // Entries below the segmented prefix may be deleted at any moment: never hand them out as recent.
    const recent = runEndingAt(tail, view.highWatermark).filter((e) => e.base >= state.segmentsEnd);
    // The window may predate the head (the Query can be served first): a batch committed in
    // between is missing from it, so only the unbroken run of entries ending exactly at the high
    // watermark can be handed to readers as "recent".
    return { ...view, state, recent: recent.length > 0 ? recent : view.entries };
  }

  /**
   * Up to `limit` entries from `fromBase` on, in `direction`, with bases up to `farthest`
   * (inclusive), across DynamoDB's 1 MB pages. Strongly consistent unless `consistent` is false
   * (half the read units; may lack entries written recently, see the fetcher's `earlyEntries`).
   */
  async queryEntries(pk: string, fromBase: number, limit: number, { direction = 'forward', farthest, consistent = true }: EntryQueryOptions = {}): Promise<IndexEntry[]> {
    const entries: IndexEntry[] = [];
    const [low, high] = direction === 'forward' ? [fromBase, farthest ?? Number.MAX_SAFE_INTEGER] : [farthest ?? 0, fromBase];
    let startKey: Record<string, unknown> | undefined;
    do {
      const res = await this.storage.ddb.send(new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#p = :p AND #o BETWEEN :low AND :high',
        ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
        ExpressionAttributeValues: { ':p': pk, ':low': low, ':high': high },
        ScanIndexForward: direction === 'forward',
        ConsistentRead: consistent,
        Limit: limit - entries.length,
        ExclusiveStartKey: startKey,
      }));
      entries.push(...(res.Items ?? []).map(entryFromItem));
      startKey = res.LastEvaluatedKey;
    } while (startKey && entries.length < limit);
    return entries;
  }

  /**
   * Reads the partition, tombstoning holes that are expired (or abandoned by `ownToken`). A reader
   * (no token) also advances the stored high watermark when the walk got long; writers do not, as
   * they have their own election (dozens of waiting writers would only race each other).
   */
  async readResolved(pk: string, ownToken?: string, options: ReadOptions = {}): Promise<PartitionView> {
    // Each round resolves one hole; the bound only stops a runaway loop (the caller may retry).
    for (let round = 0; round < MAX_RESOLVE_ROUNDS; round++) {
      const view = await this.read(pk, options);
      const hole = view.hole;
      if (hole && (hole.reservation.token === ownToken || this.options.now() - hole.reservation.reservedAt >= this.options.gapTimeoutMs)) {
        await this.tombstone(pk, hole);
        continue;
      }
      if (ownToken === undefined && view.resolved >= this.options.readerAdvanceThreshold) await this.advance(pk, view);
      return view;
    }
    throw new StorageUnavailableError(`partition ${pk} still had unresolved holes after ${MAX_RESOLVE_ROUNDS} rounds; retry`);
  }

  /** Moves the stored hwm to the walked high watermark and drops the reservations below it. */
  async advance(pk: string, view: Pick<PartitionView, 'head' | 'resolved'>): Promise<boolean> {
    // Bounded so the update expression stays far below DynamoDB's 4 KB expression limit; a longer
    // walk is advanced over several calls.
    const covered = Math.min(view.resolved, MAX_ADVANCE);
    if (covered === 0) return false;
    const hwm = view.head.resv.slice(0, covered).reduce((end, r) => end + r.count, view.head.hwm);
    const removals = Array.from({ length: covered }, (_, i) => `#resv[${i}]`).join(', ');
    try {
      await this.storage.ddb.send(new UpdateCommand({
        TableName: this.table,
        Key: { p: pk, o: HEAD_OFFSET },
        UpdateExpression: `SET #hwm = :hwm REMOVE ${removals}`,
        ConditionExpression: `${clauses.partitionExists} AND ${clauses.hwmUnchanged}`,
        ExpressionAttributeNames: { '#hwm': 'hwm', '#resv': 'resv', '#next': 'next', '#deleted': 'deleted' },
        ExpressionAttributeValues: { ':hwm': hwm, ':expectedHwm': view.head.hwm },
      }));
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /**
   * Reserve, commit and (for acks=all) wait until the whole batch is below the high watermark.
   * Returns the base offset. A writer fenced by a tombstone reserves again: its records get new
   * offsets, and the old ones read as a gap.
   */
  async sequence(pk: string, batch: BatchRef, acks: 'all' | '1' | '0', guard?: CommitGuard): Promise<number> {
    const token = newWriterToken();
    for (let attempt = 0; attempt < MAX_SEQUENCE_ATTEMPTS; attempt++) {
      const { base, seq, head, abandoned } = await this.reserve(pk, batch.recordCount, token);
      await Promise.all(abandoned.map((hole) => this.tombstone(pk, hole)));
      const { recordCount, ...location } = batch;
      const entry: DataEntry = { ...location, kind: 'data', base, count: recordCount, token, committedAt: this.options.now(), transactionalProducerId: guard?.transactionalProducerId };
      // acks=all: look at the reservations below ours while our commit is in flight. Entries are
      // immutable, so "all below were committed" and "ours committed" together mean visible.
      const below = acks === 'all' ? this.entriesBelow(pk, head) : undefined;
      below?.catch(() => undefined);
      const outcome = await this.commit(pk, entry, guard).catch(async (err: unknown) => {
        // The commit failed (or we cannot tell): claim our own reservation as a gap so later
        // batches need not wait for the gap timeout. If the commit did land, this put fails and the
        // batch stays visible; the caller still hears an error (at-least-once, as in Kafka; a
        // guarded commit is exactly-once: its retry is recognised by the guard).
        await this.tombstone(pk, { base, reservation: { count: recordCount, reservedAt: 0, token } }).catch(() => undefined);
        if (err instanceof GuardRefusedError && guard) throw await guard.refused(err.failed);
        throw err;
      });
      if (outcome === 'fenced') continue;
      const elected = seq % this.options.hwmAdvanceEvery === 0;
      if (acks === 'all') {
        const quick = walk(pk, head, this.walkedFloor(pk), [...(await below!.catch(() => [])), entry]);
        this.noteWalked(pk, quick.highWatermark);
        const view = quick.hole ? await this.awaitVisible(pk, base + recordCount, token) : quick;
        if (elected) await this.advance(pk, view);
      } else if (elected) {
        await this.advance(pk, await this.read(pk, { withTail: false }));
      }
      return base;
    }
    // Only tombstones beat this writer, and only after the gap timeout: something is badly wrong.
    throw new StorageUnavailableError(`batch for ${pk} was fenced ${MAX_SEQUENCE_ATTEMPTS} times in a row; nothing of it is visible`);
  }

  /**
   * The entries of the reservations that were pending below ours when we reserved (the head our
   * reservation returned lists exactly those) and lie above the walked floor: none means no read
   * at all, as for a producer whose previous batch to the partition went through this process.
   */
  private async entriesBelow(pk: string, reservedHead: PartitionHead): Promise<IndexEntry[]> {
    const start = walkStart(reservedHead, this.walkedFloor(pk));
    const below = reservedHead.resv.length - 1 - start.index;
    return below <= 0 ? [] : this.queryEntries(pk, start.base, below);
  }

  /**
   * Ends transaction `pin` in this partition: writes its marker (and, for an abort, its aborted
   * range) and removes the pin, all in one transaction, so the last stable offset passes the
   * transaction's records only once their outcome is recorded. Returns false if the pin was already
   * gone (another completer finished it). Idempotent, safe to run concurrently.
   */
  async endTransaction(pk: string, pin: TransactionPin, outcome: TransactionOutcome): Promise<boolean> {
    const token = newWriterToken();
    for (let attempt = 0; attempt < MAX_SEQUENCE_ATTEMPTS; attempt++) {
      let reserved;
      try {
        reserved = await this.reserve(pk, 1, token, pin);
      } catch (err) {
        if (err instanceof TransactionUnpinnedError) return false;
        throw err;
      }
      const { base, seq, head, abandoned } = reserved;
      await Promise.all(abandoned.map((hole) => this.tombstone(pk, hole)));
      // Every transaction open when the marker was reserved starts at or above its pin, and every
      // later one above the marker: so an aborted transaction recorded later than this one starts at
      // or above `stable`, which lets readers stop looking for aborted ranges (abortedRanges).
      const stable = Math.min(base, ...head.openTransactions.filter((p) => p.producerId !== pin.producerId || p.transaction !== pin.transaction).map((p) => p.first));
      const marker: MarkerEntry = { kind: 'marker', base, count: 1, token, committedAt: this.options.now(), producerId: pin.producerId, outcome };
      const unpin: TransactItem = {
        Update: {
          TableName: this.table,
          Key: { p: pk, o: HEAD_OFFSET },
          UpdateExpression: outcome === 'abort' ? 'REMOVE #pin ADD #aborts :one' : 'REMOVE #pin',
          ConditionExpression: clauses.transactionPinned,
          ExpressionAttributeNames: { '#pin': pinAttribute(pin), ...(outcome === 'abort' && { '#aborts': 'aborts' }) },
          ExpressionAttributeValues: { ':first': pin.first, ...(outcome === 'abort' && { ':one': 1 }) },
        },
      };
      const aborted: TransactItem[] = outcome === 'abort'
        ? [{ Put: { TableName: this.table, Item: { p: abortedPartitionKey(pk), o: base, pid: pin.producerId, first: pin.first, stable } } }]
        : [];
      let result;
      try {
        result = await this.commit(pk, marker, { items: () => [unpin, ...aborted] });
      } catch (err) {
        await this.tombstone(pk, { base, reservation: { count: 1, reservedAt: 0, token } }).catch(() => undefined);
        if (err instanceof GuardRefusedError) return false;
        throw err;
      }
      if (result === 'committed') {
        // Markers take part in the election that trims the head, like any reservation: a
        // partition where batches and markers alternate would otherwise never trim it.
        if (seq % this.options.hwmAdvanceEvery === 0) await this.advance(pk, await this.read(pk, { withTail: false }));
        return true;
      }
    }
    throw new StorageUnavailableError(`the marker of producer ${pin.producerId} in ${pk} was fenced ${MAX_SEQUENCE_ATTEMPTS} times in a row`);
  }

  /** The open transactions pinned on the partition (one GetItem of the head, no walk). */
  async openTransactions(pk: string): Promise<TransactionPin[]> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: { p: pk, o: HEAD_OFFSET }, ConsistentRead: true }));
    if (!res.Item || res.Item.deleted) throw new PartitionLogMissingError(`partition log ${pk} does not exist`);
    return headFromItem(res.Item).openTransactions;
  }

  /**
   * The update that pins a transaction of a producer on the partition (if not pinned yet) at the
   * next offset to be reserved, for a transaction with the coordinator's own update: every batch
   * the transaction reserves afterwards lies at or above the pin.
   */
  pinItem(pk: string, transaction: Pick<TransactionPin, 'producerId' | 'transaction'>): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: { p: pk, o: HEAD_OFFSET },
        UpdateExpression: 'SET #pin = if_not_exists(#pin, #next)',
        ConditionExpression: clauses.partitionExists,
        ExpressionAttributeNames: { '#pin': pinAttribute(transaction), '#next': 'next', '#deleted': 'deleted' },
      },
    };
  }

  /** Waits until [.., end) is below the high watermark (tombstoning expired holes on the way). */
  async awaitVisible(pk: string, end: number, token?: string): Promise<PartitionView> {
    const deadline = this.options.now() + this.options.gapTimeoutMs + 10_000;
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
      const view = await this.readResolved(pk, token, { withTail: false });
      if (view.highWatermark >= end) return view;
      if (this.options.now() > deadline) {
        throw new StorageUnavailableError(`batch ending at ${end} of ${pk} is committed but not yet visible: an earlier reservation is still unresolved`);
      }
      await sleep(delay);
    }
  }
}

export interface TransactionPin {
  producerId: number;
  /** The transaction's number among its transactional id's transactions. */
  transaction: number;
  first: number;
}

/**
 * Told that the open transaction `pin` holds the last stable offset of `pk` back (a read_committed
 * reader, or compaction, waits on it): the transaction coordinator aborts it if it timed out, and
 * says whether it ended it.
 */
export type TransactionHoldListener = (pk: string, pin: TransactionPin) => Promise<boolean>;

/** The open transaction pinned exactly at the last stable offset, if that is below the high watermark. */
export function transactionHolding(view: Pick<PartitionView, 'highWatermark' | 'head'>): TransactionPin | undefined {
  const stable = lastStableOffset(view);
  return stable < view.highWatermark ? view.head.openTransactions.find((pin) => pin.first === stable) : undefined;
}

/** A guarded commit's extra items refused it (positional: true = that item's condition failed). */
export class GuardRefusedError extends Error {
  constructor(readonly failed: boolean[], options?: { cause?: unknown }) {
    super('a guarded commit was refused by its guard', options);
  }
}

/** The transaction's pin is not (any more) on the partition. */
class TransactionUnpinnedError extends Error {}

/** The longest run of `entries` (in offset order) without a gap that ends exactly at `end`. */
export function runEndingAt(entries: IndexEntry[], end: number): IndexEntry[] {
  const run: IndexEntry[] = [];
  let expectedEnd = end;
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!;
    if (entry.base >= end) continue; // above the high watermark: not readable yet
    if (entry.base + entry.count !== expectedEnd) break;
    run.push(entry);
    expectedEnd = entry.base;
  }
  return run.reverse();
}

/**
 * Where a walk above `floor` (a walked high watermark) starts: the first reservation of `head` not
 * wholly below it, and its base. Reservations below are known resolved and need no entry read.
 */
function walkStart(head: PartitionHead, floor: number): { index: number; base: number } {
  let base = head.hwm;
  let index = 0;
  while (index < head.resv.length && base + head.resv[index]!.count <= floor) base += head.resv[index++]!.count;
  return { index, base };
}

/**
 * The high watermark: the reservations after the stored hwm, in order, as long as each has an
 * entry at its base in `found`. Those below `floor` (walkStart) are taken as resolved unread.
 */
function walk(pk: string, head: PartitionHead, floor: number, found: IndexEntry[]): Omit<PartitionView, 'recent' | 'state'> {
  const byBase = new Map(found.map((e) => [e.base, e]));
  const entries: IndexEntry[] = [];
  const start = walkStart(head, floor);
  let cursor = start.base;
  for (const [i, reservation] of head.resv.entries()) {
    if (i < start.index) continue;
    const entry = byBase.get(cursor);
    if (!entry) return { head, highWatermark: cursor, entries, resolved: i, hole: { base: cursor, reservation } };
    if (entry.count !== reservation.count) {
      throw new InvariantViolationError(`entry ${pk}@${cursor} has ${entry.count} records but its reservation has ${reservation.count}`);
    }
    entries.push(entry);
    cursor += reservation.count;
  }
  return { head, highWatermark: cursor, entries, resolved: head.resv.length };
}
