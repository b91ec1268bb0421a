// The read path: find the committed entries covering the requested offsets, range-GET only their
// batches (in parallel), verify CRCs, and never return anything at or past the high watermark.
import { paginateQuery } from '@aws-sdk/lib-dynamodb';
import { decodeFrames, decodeLogIndex, rangeForOffset, rangeForTimestamp, type ByteRange, type LogIndexEntry } from '../codec/log-segment.ts';
import { decodeBatch, type RecordHeader } from '../codec/segment.ts';
import { CorruptDataError, InvariantViolationError, NotFoundError, ObjectGoneError, OffsetOutOfRangeError, RecordTooLargeError } from '../errors.ts';
import { mapLimit } from '../lifecycle/map-limit.ts';
import { sleep } from '../retry.ts';
import { SizedCache } from '../sized-cache.ts';
import type { Storage } from '../storage.ts';
import { forgetCachedTopic, getTopicCached, onTopicLogs } from '../topics/topic-store.ts';
import { logPartitionKey, segmentsPartitionKey } from './keys.ts';
import { batchBytes, batchName, getRange } from './objects.ts';
import { segmentFromItem, segmentsAfter, type SegmentItem } from './segment-index.ts';
import { abortedTransactions, isAborted, type AbortedTransaction } from './aborted-transactions.ts';
import { lastStableOffset, transactionHolding, type DataEntry, type IndexEntry, type PartitionView, type Sequencer, type TransactionHoldListener } from './sequencer.ts';

export interface FetchRequest {
  topic: string;
  /**
   * The topic incarnation the caller means (consumer groups record it): a topic deleted and
   * re-created under the same name is then UNKNOWN_TOPIC rather than silently another log.
   */
  topicId?: string;
  partition: number;
  offset: number;
  maxRecords: number;
  maxBytes: number;
  waitMs: number;
  /** A hard bound on what is returned, in the caller's measure. */
  budget?: ReadBudget<FetchedRecord>;
  /**
   * Kafka's isolation.level. read_committed stops at the last stable offset and skips records of
   * aborted transactions; read_uncommitted (the default, as in Kafka) reads up to the high watermark.
   */
  isolation?: Isolation;
}

export type Isolation = 'read_committed' | 'read_uncommitted';

/**
 * A hard bound on the records one read returns, measured as the caller sizes them (e.g. as a
 * response will serialise them). Unlike maxBytes it makes no exception for the first record: one
 * that alone exceeds it is RecordTooLargeError, as returning it would break the caller's bound.
 */
export interface ReadBudget<R> {
  bytes: number;
  sizeOf(record: R): number;
  /** What a caller can do about a record too large for the budget, if anything. */
  remedy?: string;
}

export interface FetchedRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

/** What ListOffsets looks up: the log's ends, or a millisecond timestamp. */
export type OffsetSpec = 'earliest' | 'latest' | number;

export interface ListedOffset {
  offset: number;
  /** The record's timestamp when looked up by timestamp and found; null otherwise. */
  timestamp: number | null;
}

export interface FetchResult {
  records: FetchedRecord[];
  /** The offset to fetch next: past the last record returned and past any gap crossed. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
  /**
   * Below it every transaction's outcome is known; a read_committed read stops there (Kafka's
   * last stable offset).
   */
  lastStableOffset: number;
  /**
   * Offset ranges [startOffset, endOffset) crossed that hold no records: abandoned reservations,
   * transaction markers, and in read_committed the batches of aborted transactions.
   */
  gaps: Array<{ startOffset: number; endOffset: number }>;
  /** read_committed: aborted transactions whose records in the range read were skipped (as Kafka reports them). */
  abortedTransactions: Array<{ producerId: number; firstOffset: number }>;
  /**
   * Every offset reserved so far is readable by this reader: none is still being written (or held
   * by an open transaction, for read_committed). Only then may an idle reader stop reading the
   * partition and watch its topic's change marker instead (lib/log/changes.ts).
   */
  settled: boolean;
}

/**
 * Index entries one fetch reads at most: every entry holds at least one offset, so as many as the
 * largest maxRecords, and a fetch of small batches is bounded by maxBytes/maxRecords, not by them.
 */
export const MAX_ENTRIES_PER_FETCH = 10_000;
/** Entries the first Query of a fetch reads; each further one reads ENTRY_CHUNK_GROWTH times more. */
const FIRST_ENTRY_CHUNK = 64;
const ENTRY_CHUNK_GROWTH = 4;
/** Batch GETs one fetch has in flight at most. */
export const MAX_PARALLEL_GETS = 16;
/**
 * Gaps one response lists at most. Gaps hold no bytes, so maxBytes cannot bound them: their number
 * is, so that a response stays small whatever the log holds.
 */
export const MAX_GAPS_PER_FETCH = 64;
/** Segments one fetch reads at most (each is usually far larger than a page). */
const SEGMENTS_PER_FETCH = 4;
/** Times a read follows offsets that compaction or retention moved under it before giving up. */
const MAX_RELOCATIONS = 4;
const RELOCATION_PAUSE_MS = 50;
/** One ranged GET of a segment reads at most this much beyond the indexed range. */
const MAX_SEGMENT_READ_BYTES = 8 << 20;
/** Read a little past the page's byte budget so the frame that crosses it arrives whole. */
const FRAME_READ_SLACK = 64 << 10;
/** Bytes of segment indexes one process keeps. */
const INDEX_CACHE_BYTES = 16 << 20;
const POLL_MAX_DELAY_MS = 200;

export function recordSize(r: { key: Uint8Array | null; value: Uint8Array | null; headers: RecordHeader[] }): number {
  let size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) size += h.key.length + (h.value?.length ?? 0);
  return size;
}

/** A blocked reader reports the same pin at most this often per process. */
const UNBLOCK_EVERY_MS = 1_000;
/** Partitions whose last read one process remembers (see `earlyEntries`). */
const MAX_LAST_SEEN = 100_000;

export class Fetcher {
  private readonly indexes = new SizedCache<LogIndexEntry[]>(INDEX_CACHE_BYTES);
  private readonly unblockedAt = new Map<string, number>();
  /** Per partition, what this process's last read found: where segments end and the last stable offset. */
  private readonly lastSeen = new Map<string, { segmentsEnd: number; lastStable: number }>();
  private blockedReader?: TransactionHoldListener;

  constructor(private readonly storage: Storage, private readonly sequencer: Sequencer) {}

  /** Who to tell when a read_committed reader is held by an open transaction (its timeout is theirs to enforce). */
  onBlockedReader(listener: TransactionHoldListener): void {
    this.blockedReader = listener;
  }

  async partitionKey(topicName: string, partition: number, topicId?: string): Promise<string> {
    let topic = await getTopicCached(this.storage, topicName, partition + 1);
    if (topicId !== undefined && topic.topicId !== topicId) {
      // The cache may be behind: only a consistent read decides that the incarnation is gone.
      forgetCachedTopic(this.storage, topicName);
      topic = await getTopicCached(this.storage, topicName, partition + 1);
      if (topic.topicId !== topicId) throw new NotFoundError('UNKNOWN_TOPIC', `topic ${JSON.stringify(topicName)} was deleted and re-created; the requested incarnation no longer exists`);
    }
    if (partition >= topic.partitions) {
      throw new NotFoundError('UNKNOWN_PARTITION', `partition ${partition} does not exist: topic ${JSON.stringify(topicName)} has partitions 0 to ${topic.partitions - 1}`);
    }
    return logPartitionKey(topic.topicId, partition);
  }

  /** Long-polls (with backoff) until data exists at `offset` or `waitMs` runs out. */
  async fetch(req: FetchRequest): Promise<FetchResult> {
    const pk = await this.partitionKey(req.topic, req.partition, req.topicId);
    return onTopicLogs(this.storage, req.topic, () => this.fetchFrom(pk, req));
  }

  private async fetchFrom(pk: string, req: FetchRequest): Promise<FetchResult> {
    const deadline = Date.now() + req.waitMs;
    let view: PartitionView;
    // A reader below the walked floor reads entries from its own offset anyway: the tail window,
    // which only spares a tailing reader that Query, would be read for nothing.
    const floor = this.sequencer.walkedFloor(pk);
    const tailing = req.offset >= floor;
    const early = tailing ? undefined : this.earlyEntries(pk, req, floor);
    for (let delay = 10, first = true; ; delay = Math.min(delay * 2, POLL_MAX_DELAY_MS), first = false) {
      // Later rounds of a long-poll only watch the high watermark; the entries come with it anyway.
      view = await this.sequencer.readResolved(pk, undefined, { withTail: first && tailing });
      this.noteSeen(pk, view);
      const { highWatermark } = view;
      const logStartOffset = view.state.logStart;
      if (req.offset < logStartOffset || req.offset > highWatermark) throw new OffsetOutOfRangeError(req.offset, logStartOffset, highWatermark);
      const end = readableEnd(view, req);
      if (req.offset < end) break;
      if (end < highWatermark) await this.reportBlocked(pk, view);
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { records: [], nextOffset: req.offset, highWatermark, lastStableOffset: lastStableOffset(view), logStartOffset, gaps: [], abortedTransactions: [], settled: end >= view.head.next };
      await sleep(Math.min(delay, remaining));
    }
    return this.readCommitted(pk, req, view, early);
  }

  /**
   * A reader below the walked floor Queries its entries while the partition is read (one round trip
   * instead of two): every reservation below the floor had its entry when a walk found it, and
   * entries are immutable. Only the entries wholly below the floor are read; what lies above it is
   * read after the head, as always. The Query is eventually consistent (half the read units): an
   * entry has one content for as long as it exists, so a replica can lack entries but not hold
   * others; the read keeps the unbroken run it got and Queries the rest consistently
   * (`entriesFrom`). Entries compacted meanwhile show up as missing, which the read follows as it
   * does for a Query made after the head (`relocating`). Not where this process's last read
   * suggests the Query would be wasted: segments held the offset, or a read_committed reader was
   * waiting at the last stable offset (an open transaction's batches lie above it).
   */
  private earlyEntries(pk: string, req: FetchRequest, floor: number): Promise<IndexEntry[]> | undefined {
    const seen = this.lastSeen.get(pk);
    if (!seen || req.maxRecords < 1 || req.offset < seen.segmentsEnd || (req.isolation === 'read_committed' && req.offset >= seen.lastStable)) return undefined;
    // An entry never straddles a walked high watermark: those based below the floor end at or below it.
    const early = this.sequencer.queryEntries(pk, req.offset, Math.min(FIRST_ENTRY_CHUNK, req.maxRecords), { farthest: floor - 1, consistent: false });
    // Unawaited if the read ends before it (out of range, nothing readable yet).
    early.catch(() => undefined);
    return early;
  }

  private noteSeen(pk: string, view: PartitionView): void {
    if (this.lastSeen.size >= MAX_LAST_SEEN && !this.lastSeen.has(pk)) this.lastSeen.clear();
    this.lastSeen.set(pk, { segmentsEnd: view.state.segmentsEnd, lastStable: lastStableOffset(view) });
  }

  /** The open transaction pinned at the last stable offset holds this reader: its coordinator may abort it if it timed out. */
  private async reportBlocked(pk: string, view: PartitionView): Promise<void> {
    const pinned = transactionHolding(view);
    if (!pinned || !this.blockedReader) return;
    const key = `${pk}/${pinned.producerId}/${pinned.transaction}`;
    if ((this.unblockedAt.get(key) ?? 0) > Date.now() - UNBLOCK_EVERY_MS) return;
    if (this.unblockedAt.size > 10_000) this.unblockedAt.clear();
    this.unblockedAt.set(key, Date.now());
    await this.blockedReader(pk, pinned).catch(() => undefined);
  }

  /** Reads from wherever the offsets live: segments below the state's `segmentsEnd`, entries above. */
  private async readCommitted(pk: string, req: FetchRequest, view: PartitionView, early?: Promise<IndexEntry[]>): Promise<FetchResult> {
    return this.relocating(pk, async (current) => {
      if (req.offset < current.state.logStart) throw new OffsetOutOfRangeError(req.offset, current.state.logStart, current.highWatermark);
      const page = new Page(req, current);
      if (req.offset < current.state.segmentsEnd) await this.readSegments(pk, req.offset, page);
      // Early entries only on the first attempt: after a relocation they may be what moved.
      else await this.readEntries(pk, req, current, page, current === view ? early : undefined);
      return page.result;
    }, view);
  }

  /**
   * Runs `read` on the partition's view. Compaction and retention move offsets from entries into
   * segments, and out of the log, while we read: an entry found missing or an object found
   * deleted is followed by reading the state again, and is an error only if nothing moved.
   */
  private async relocating<T>(pk: string, read: (view: PartitionView) => Promise<T>, known?: PartitionView): Promise<T> {
    let view = known ?? (await this.sequencer.read(pk));
    for (let attempt = 1, unmoved = 0; ; attempt++) {
      try {
        return await read(view);
      } catch (err) {
        if (!(err instanceof InvariantViolationError || err instanceof ObjectGoneError) || attempt >= MAX_RELOCATIONS) throw err;
        const before = view.state;
        view = await this.sequencer.read(pk);
        if (view.state.segmentsEnd === before.segmentsEnd && view.state.logStart === before.logStart) {
          // Queries are read-committed, not snapshots of a transaction: the state may already show
          // a segment whose item the next Query sees. Once more after a moment, then it is real.
          if (unmoved++ > 0) throw err;
          await sleep(RELOCATION_PAUSE_MS);
        }
      }
    }
  }

  /**
   * Entries from `req.offset` on, in chunks that grow from FIRST_ENTRY_CHUNK (one Query each, none
   * for a tailing reader), until the page is full, the readable entries end or MAX_ENTRIES_PER_FETCH
   * were read: a fetch that one chunk satisfies reads no more, and one of many small batches fills up
   * to maxBytes/maxRecords. Each chunk's batches are read with at most MAX_PARALLEL_GETS in flight.
   */
  private async readEntries(pk: string, req: FetchRequest, view: PartitionView, page: Page, early?: Promise<IndexEntry[]>): Promise<void> {
    for (let offset = req.offset, chunk = FIRST_ENTRY_CHUNK, read = 0; read < MAX_ENTRIES_PER_FETCH && page.remainingRecords > 0; chunk *= ENTRY_CHUNK_GROWTH) {
      const limit = Math.min(chunk, MAX_ENTRIES_PER_FETCH - read, page.remainingRecords);
      const entries = selectEntries(await this.entriesFrom(pk, offset, view, limit, read === 0 ? early : undefined), offset, page);
      if (entries.length === 0) return;
      const aborted = await this.abortedAmong(pk, req, view, entries);
      const skipped = (e: IndexEntry): e is DataEntry => e.kind === 'data' && e.transactionalProducerId !== undefined && isAborted(aborted, e.transactionalProducerId, e.base);
      const batches = await mapLimit(entries, MAX_PARALLEL_GETS, (e) => (e.kind === 'data' && !skipped(e) ? this.readBatch(e) : Promise.resolve([])));
      for (const [i, entry] of entries.entries()) {
        const aborting = skipped(entry);
        if (!(entry.kind === 'data' && !aborting ? page.add(batches[i]!) : page.gap(entry.base, entry.count))) return;
        if (aborting) page.aborted(entry.transactionalProducerId!, aborted);
      }
      read += entries.length;
      const last = entries.at(-1)!;
      offset = last.base + last.count;
    }
  }

  /**
   * read_committed: the aborted transactions that may hold some of `entries`. Only looked up when
   * a transactional batch is among them and the partition ever aborted one.
   */
  private async abortedAmong(pk: string, req: FetchRequest, view: PartitionView, entries: IndexEntry[]): Promise<AbortedTransaction[]> {
    if (req.isolation !== 'read_committed' || view.head.aborts === 0) return [];
    const transactional = entries.filter((e) => e.kind === 'data' && e.transactionalProducerId !== undefined);
    if (transactional.length === 0) return [];
    const last = transactional.at(-1)!;
    return abortedTransactions(this.storage, pk, transactional[0]!.base, last.base + last.count);
  }

  /** Reads consecutive segments from `offset` until the page is full or the segments end. */
  private async readSegments(pk: string, offset: number, page: Page): Promise<void> {
    const segments = await segmentsAfter(this.storage, pk, offset, SEGMENTS_PER_FETCH);
    if (!segments[0] || segments[0].base > offset) throw new InvariantViolationError(`no segment of ${pk} holds offset ${offset}`);
    let cursor = offset;
    for (const segment of segments) {
      if (segment.base > cursor || !(await this.readSegment(segment, cursor, page))) return;
      cursor = segment.end;
    }
  }

  /** Frames of one segment from `offset` on; false once the page is full. */
  private async readSegment(segment: SegmentItem, offset: number, page: Page): Promise<boolean> {
    const index = await this.segmentIndex(segment);
    return this.scanSegment(segment, rangeForOffset(index, segment.dataLength, offset - segment.base), () => page.remainingBytes, (base, count, records) => {
      if (base + count <= offset) return true;
      return records ? page.add(records) : page.gap(base, count);
    });
  }

  /**
   * Visits the frames of a segment from `range.start` (a frame start) until `visit` returns false
   * (then false) or the segment ends (then true), reading at least `range` and beyond it about
   * `budget()` bytes per GET. Batches arrive decoded; gaps as null.
   */
  private async scanSegment(segment: SegmentItem, range: ByteRange, budget: () => number, visit: (base: number, count: number, records: PageRecord[] | null) => boolean): Promise<boolean> {
    let { start, end } = range;
    for (let expected: number | undefined; start < segment.dataLength;) {
      end = Math.min(segment.dataLength, Math.max(end, start + Math.min(budget(), MAX_SEGMENT_READ_BYTES) + FRAME_READ_SLACK));
      const { frames, next, needed } = decodeFrames(await getRange(this.storage, segment.objectKey, start, end), start, expected);
      for (const frame of frames) {
        const base = segment.base + frame.relativeOffset;
        if (!visit(base, frame.offsetCount, frame.batch ? batchRecords(`batch ${segment.objectKey}@${frame.position}`, frame.batch, base, frame.offsetCount) : null)) return false;
      }
      const last = frames.at(-1);
      if (last) expected = last.relativeOffset + last.offsetCount;
      start = next;
      end = needed ?? next;
    }
    return true;
  }

  /**
   * Kafka's ListOffsets. `earliest` is the log start, `latest` the high watermark (neither with a
   * timestamp). A timestamp finds the earliest offset at or above the log start whose record
   * timestamp is at or after it, with that timestamp; the high watermark (and no timestamp) if
   * there is none. Segments are found by their largest timestamp (one Query per ~5,000 segments),
   * then the time index narrows the GET to one index interval; the uncompacted tail (about
   * segment.ms of batches) is searched by the entries' largest timestamps.
   */
  async listOffset(topic: string, partition: number, spec: OffsetSpec, topicId?: string): Promise<ListedOffset> {
    const pk = await this.partitionKey(topic, partition, topicId);
    return onTopicLogs(this.storage, topic, () => this.relocating(pk, async (view) => {
      const { logStart, segmentsEnd } = view.state;
      if (spec === 'earliest') return { offset: logStart, timestamp: null };
      if (spec === 'latest') return { offset: view.highWatermark, timestamp: null };
      const found = (await this.firstInSegments(pk, view, spec)) ?? (await this.firstInEntries(pk, view, Math.max(segmentsEnd, logStart), spec));
      return found ? { offset: found.offset, timestamp: found.timestamp } : { offset: view.highWatermark, timestamp: null };
    }));
  }

  private async firstInSegments(pk: string, view: PartitionView, timestamp: number): Promise<PageRecord | undefined> {
    const { logStart, segmentsEnd } = view.state;
    if (logStart >= segmentsEnd) return undefined;
    const pages = paginateQuery({ client: this.storage.ddb }, {
      TableName: this.storage.config.logTable,
      KeyConditionExpression: '#p = :p AND #o > :logStart',
      ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
      ExpressionAttributeValues: { ':p': segmentsPartitionKey(pk), ':logStart': logStart },
      ConsistentRead: true,
    });
    for await (const res of pages) {
      for (const segment of (res.Items ?? []).map(segmentFromItem)) {
        if (segment.maxTimestamp < timestamp) continue;
        let found: PageRecord | undefined;
        const range = rangeForTimestamp(await this.segmentIndex(segment), segment.dataLength, timestamp);
        await this.scanSegment(segment, range, () => 0, (_base, _count, records) => {
          found = records?.find((r) => r.timestamp >= timestamp && r.offset >= logStart);
          return found === undefined;
        });
        if (found) return found;
      }
    }
    return undefined;
  }

  private async firstInEntries(pk: string, view: PartitionView, from: number, timestamp: number): Promise<PageRecord | undefined> {
    for (let cursor = from; cursor < view.highWatermark;) {
      const entries = await this.entriesFrom(pk, cursor, view, FIRST_ENTRY_CHUNK);
      if (entries.length === 0) return undefined;
      for (const entry of entries) {
        if (entry.kind !== 'data' || entry.maxTimestamp < timestamp) continue;
        const found = (await this.readBatch(entry)).find((r) => r.timestamp >= timestamp && r.offset >= view.state.logStart);
        if (found) return found;
      }
      const last = entries.at(-1)!;
      cursor = last.base + last.count;
    }
    return undefined;
  }

  /** A segment's sparse index; segments are immutable, so it is cached by object key. */
  private async segmentIndex(segment: SegmentItem): Promise<LogIndexEntry[]> {
    const cached = this.indexes.get(segment.objectKey);
    if (cached) return cached;
    const index = decodeLogIndex(await getRange(this.storage, segment.objectKey, segment.dataLength, segment.dataLength + segment.indexLength), segment.indexCrc);
    this.indexes.set(segment.objectKey, index, segment.indexLength);
    return index;
  }

  /** Committed entries from the one containing `offset` up to the high watermark. */
  private async entriesFrom(pk: string, offset: number, view: PartitionView, limit: number, early?: Promise<IndexEntry[]>): Promise<IndexEntry[]> {
    let entries: IndexEntry[];
    if (view.recent.length > 0 && view.recent[0]!.base <= offset) {
      // Tailing consumers: the entries came with the partition read, no further Query.
      entries = view.recent;
    } else if ((view.entries[0]?.base ?? view.highWatermark) <= offset) {
      // The walk's entries, from where it started (no entries: it started at the high watermark).
      entries = view.entries;
    } else {
      // Every entry holds at least one record, so `limit` entries cover `limit` records.
      // Sequential consumers ask for the base of an entry (the last nextOffset): one Query, or none
      // when it was read with the head (`earlyEntries`: what it holds ends at the floor at most).
      const prefetched = await early?.catch(() => undefined);
      entries = prefetched ?? (await this.sequencer.queryEntries(pk, offset, limit));
      if (entries[0]?.base !== offset) {
        const [containing] = await this.sequencer.queryEntries(pk, offset, 1, { direction: 'backward' });
        if (!containing) throw new InvariantViolationError(`no index entry at or below offset ${offset} of ${pk}`);
        entries = [containing, ...entries.slice(0, limit - 1)];
      }
      // Read eventually consistently, the early entries may lack some a replica has not seen yet:
      // the run up to the first one missing is exact, the next chunk reads on from there.
      if (prefetched) entries = unbrokenRun(entries);
    }
    return assertCovers(pk, offset, entries.filter((e) => e.base + e.count > offset && e.base < view.highWatermark));
  }

  private async readBatch(entry: DataEntry): Promise<PageRecord[]> {
    return batchRecords(batchName(entry), await batchBytes(this.storage, entry), entry.base, entry.count);
  }
}

type PageRecord = Omit<FetchedRecord, 'partition'>;

function recordOverBudget(record: FetchedRecord, cost: number, budget: ReadBudget<FetchedRecord>): RecordTooLargeError {
  const remedy = budget.remedy ? `: ${budget.remedy}` : '';
  return new RecordTooLargeError('RECORD_TOO_LARGE_FOR_RESPONSE', `the record at offset ${record.offset} of partition ${record.partition} takes ${cost} bytes, more than the ${budget.bytes} bytes one read may return${remedy}`);
}

/** The records of one batch at `base`, checked to be exactly `count` (the index's word for it). */
function batchRecords(name: string, bytes: Uint8Array, base: number, count: number): PageRecord[] {
  const records = decodeBatch(bytes);
  if (records.length !== count) throw new CorruptDataError(`${name} holds ${records.length} records but its index says ${count}`);
  return records.map((r) => ({ offset: base + r.offsetDelta, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers }));
}

/** One fetch's answer as it fills: records from `offset` on, within maxRecords and maxBytes. */
class Page {
  readonly result: FetchResult;
  private bytes = 0;
  /** Spent of req.budget. */
  private spent = 0;

  /** Nothing at or past this offset is returned: the last stable offset, or the high watermark. */
  private readonly end: number;

  constructor(private readonly req: FetchRequest, view: PartitionView) {
    this.end = readableEnd(view, req);
    this.result = { records: [], nextOffset: req.offset, highWatermark: view.highWatermark, lastStableOffset: lastStableOffset(view), logStartOffset: view.state.logStart, gaps: [], abortedTransactions: [], settled: this.end >= view.head.next };
  }

  /** Reports the aborted transaction of `producerId` whose batch is skipped (once per transaction). */
  aborted(producerId: number, aborted: AbortedTransaction[]): void {
    for (const t of aborted) {
      if (t.producerId === producerId && !this.result.abortedTransactions.some((r) => r.producerId === producerId && r.firstOffset === t.firstOffset)) {
        this.result.abortedTransactions.push({ producerId, firstOffset: t.firstOffset });
      }
    }
  }

  get remainingBytes(): number {
    return Math.max(0, this.req.maxBytes - this.bytes);
  }

  get remainingRecords(): number {
    return Math.max(0, this.req.maxRecords - this.result.records.length);
  }

  /** Nothing was added yet: the first record is returned whatever maxBytes says. */
  get empty(): boolean {
    return this.result.records.length === 0;
  }

  /** Crosses a gap; false once the page is full. */
  gap(base: number, count: number): boolean {
    if (base >= this.end || this.result.gaps.length >= MAX_GAPS_PER_FETCH) return false;
    this.result.gaps.push({ startOffset: Math.max(base, this.req.offset), endOffset: base + count });
    this.result.nextOffset = base + count;
    return true;
  }

  /** Adds records (of one batch) from the requested offset on; false once the page is full. */
  add(records: PageRecord[]): boolean {
    const { budget } = this.req;
    // Never past the end this page reports (a segment may have been rolled since).
    if (records.length > 0 && records[0]!.offset >= this.end) return false;
    for (const record of records) {
      if (record.offset < this.req.offset) continue;
      const fetched = { ...record, partition: this.req.partition };
      const size = recordSize(record);
      const cost = budget?.sizeOf(fetched) ?? 0;
      const withinBudget = !budget || this.spent + cost <= budget.bytes;
      // Like Kafka, the first record is returned even when it alone exceeds maxBytes (not the budget).
      if (this.result.records.length >= this.req.maxRecords || (this.result.records.length > 0 && (this.bytes + size > this.req.maxBytes || !withinBudget))) return false;
      if (!withinBudget) throw recordOverBudget(fetched, cost, budget!);
      this.result.records.push(fetched);
      this.bytes += size;
      this.spent += cost;
      this.result.nextOffset = record.offset + 1;
    }
    return true;
  }
}

/** Where a read of `req` must stop: the last stable offset for read_committed, else the high watermark. */
function readableEnd(view: PartitionView, req: Pick<FetchRequest, 'isolation'>): number {
  return req.isolation === 'read_committed' ? lastStableOffset(view) : view.highWatermark;
}

/** The entries from the first on that follow each other without a missing offset. */
function unbrokenRun(entries: IndexEntry[]): IndexEntry[] {
  const broken = entries.findIndex((e, i) => i > 0 && e.base !== entries[i - 1]!.base + entries[i - 1]!.count);
  return broken < 0 ? entries : entries.slice(0, broken);
}

/**
 * Below the high watermark every offset lies in exactly one entry, so the entries handed to a read
 * must start at the one holding `offset` and follow each other without a gap. Anything else would
 * silently skip records: refuse it loudly instead.
 */
function assertCovers(pk: string, offset: number, entries: IndexEntry[]): IndexEntry[] {
  let cursor = entries[0]?.base ?? offset;
  if (cursor > offset) throw new InvariantViolationError(`no index entry holds offset ${offset} of ${pk} (first found starts at ${cursor})`);
  for (const entry of entries) {
    if (entry.base !== cursor) throw new InvariantViolationError(`index entries of ${pk} jump from ${cursor} to ${entry.base} below the high watermark`);
    cursor = entry.base + entry.count;
  }
  return entries;
}

/**
 * Entries from `offset` in order until their estimated records and bytes cover what the page has
 * room for (at least one, if the page is empty: the first record is returned whatever its size).
 */
function selectEntries(entries: IndexEntry[], offset: number, page: Page): IndexEntry[] {
  const selected: IndexEntry[] = [];
  let records = 0;
  let bytes = 0;
  for (const entry of entries) {
    if ((selected.length > 0 || !page.empty) && (records >= page.remainingRecords || bytes >= page.remainingBytes)) break;
    selected.push(entry);
    if (entry.kind === 'data') {
      records += entry.base + entry.count - Math.max(entry.base, offset);
      bytes += entry.length;
    }
  }
  return selected;
}
