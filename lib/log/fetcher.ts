// The read path: find the committed entries covering the requested offsets, range-GET only their
// batches (in parallel), verify CRCs, and never return anything at or past the high watermark.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { decodeBatch, type RecordHeader } from '../codec/segment.ts';
import { CorruptDataError, InvariantViolationError, NotFoundError, OffsetOutOfRangeError, RecordTooLargeError } from '../errors.ts';
import { retry, sleep } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { forgetCachedTopic, getTopicCached, onTopicLogs } from '../topics/topic-store.ts';
import { logPartitionKey } from './keys.ts';
import type { DataEntry, IndexEntry, PartitionView, Sequencer } from './sequencer.ts';

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
}

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

export interface FetchResult {
  records: FetchedRecord[];
  /** The offset to fetch next: past the last record returned and past any gap crossed. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
  /** Offset ranges [startOffset, endOffset) crossed that hold no records (abandoned reservations). */
  gaps: Array<{ startOffset: number; endOffset: number }>;
}

/** Index entries read per fetch at most: bounds the parallel GET fan-out of one request (and its gaps). */
export const MAX_ENTRIES_PER_FETCH = 64;
const POLL_MAX_DELAY_MS = 200;

export function recordSize(r: { key: Uint8Array | null; value: Uint8Array | null; headers: RecordHeader[] }): number {
  let size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) size += h.key.length + (h.value?.length ?? 0);
  return size;
}

export class Fetcher {
  constructor(private readonly storage: Storage, private readonly sequencer: Sequencer) {}

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
    for (let delay = 10, first = true; ; delay = Math.min(delay * 2, POLL_MAX_DELAY_MS), first = false) {
      // Later rounds of a long-poll only watch the high watermark; the entries come with it anyway.
      view = await this.sequencer.readResolved(pk, undefined, { withTail: first });
      const { highWatermark } = view;
      const logStartOffset = view.head.logStart;
      if (req.offset < logStartOffset || req.offset > highWatermark) throw new OffsetOutOfRangeError(req.offset, logStartOffset, highWatermark);
      if (req.offset < highWatermark) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { records: [], nextOffset: req.offset, highWatermark, logStartOffset, gaps: [] };
      await sleep(Math.min(delay, remaining));
    }
    return this.readCommitted(pk, req, view);
  }

  private async readCommitted(pk: string, req: FetchRequest, view: PartitionView): Promise<FetchResult> {
    const entries = selectEntries(await this.entriesFrom(pk, req.offset, view, req.maxRecords), req);
    const batches = await Promise.all(entries.map((e) => (e.kind === 'data' ? this.readBatch(e) : Promise.resolve([]))));
    const result: FetchResult = { records: [], nextOffset: req.offset, highWatermark: view.highWatermark, logStartOffset: view.head.logStart, gaps: [] };
    let bytes = 0;
    let spent = 0;
    for (const [i, entry] of entries.entries()) {
      if (entry.kind === 'gap') {
        result.gaps.push({ startOffset: Math.max(entry.base, req.offset), endOffset: entry.base + entry.count });
        result.nextOffset = entry.base + entry.count;
        continue;
      }
      for (const record of batches[i]!) {
        if (record.offset < req.offset) continue;
        const fetched = { ...record, partition: req.partition };
        const size = recordSize(record);
        const cost = req.budget?.sizeOf(fetched) ?? 0;
        const withinBudget = !req.budget || spent + cost <= req.budget.bytes;
        // Like Kafka, the first record is returned even when it alone exceeds maxBytes (not the budget).
        if (result.records.length >= req.maxRecords || (result.records.length > 0 && (bytes + size > req.maxBytes || !withinBudget))) return result;
        if (!withinBudget) throw recordOverBudget(fetched, cost, req.budget!);
        result.records.push(fetched);
        bytes += size;
        spent += cost;
        result.nextOffset = record.offset + 1;
      }
    }
    return result;
  }

  /** Committed entries from the one containing `offset` up to the high watermark. */
  private async entriesFrom(pk: string, offset: number, view: PartitionView, maxRecords: number): Promise<IndexEntry[]> {
    let entries: IndexEntry[];
    if (view.recent.length > 0 && view.recent[0]!.base <= offset) {
      // Tailing consumers: the entries came with the partition read, no further Query.
      entries = view.recent;
    } else if (offset >= view.head.hwm) {
      entries = view.entries;
    } else {
      // Every entry holds at least one record, so maxRecords entries always suffice.
      const limit = Math.min(MAX_ENTRIES_PER_FETCH, maxRecords);
      // Sequential consumers ask for the base of an entry (the last nextOffset): one Query.
      entries = await this.sequencer.queryEntries(pk, offset, limit);
      if (entries[0]?.base !== offset) {
        const [containing] = await this.sequencer.queryEntries(pk, offset, 1, 'backward');
        if (!containing) throw new InvariantViolationError(`no index entry at or below offset ${offset} of ${pk}`);
        entries = [containing, ...entries.slice(0, limit - 1)];
      }
    }
    return assertCovers(pk, offset, entries.filter((e) => e.base + e.count > offset && e.base < view.highWatermark));
  }

  private async readBatch(entry: DataEntry): Promise<Array<Omit<FetchedRecord, 'partition'>>> {
    const bytes = await retry(async () => {
      const res = await this.storage.s3.send(new GetObjectCommand({
        Bucket: this.storage.config.bucket,
        Key: entry.objectKey,
        Range: `bytes=${entry.position}-${entry.position + entry.length - 1}`,
      }));
      return res.Body!.transformToByteArray();
    });
    const records = decodeBatch(bytes);
    if (records.length !== entry.count) {
      throw new CorruptDataError(`batch ${entry.objectKey}@${entry.position} holds ${records.length} records but its index entry says ${entry.count}`);
    }
    return records.map((r) => ({ offset: entry.base + r.offsetDelta, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers }));
  }
}

function recordOverBudget(record: FetchedRecord, cost: number, budget: ReadBudget<FetchedRecord>): RecordTooLargeError {
  const remedy = budget.remedy ? `: ${budget.remedy}` : '';
  return new RecordTooLargeError('RECORD_TOO_LARGE_FOR_RESPONSE', `the record at offset ${record.offset} of partition ${record.partition} takes ${cost} bytes, more than the ${budget.bytes} bytes one read may return${remedy}`);
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

/** Entries in order until the estimated bytes or record count are covered (at least one). */
function selectEntries(entries: IndexEntry[], req: FetchRequest): IndexEntry[] {
  const selected: IndexEntry[] = [];
  let records = 0;
  let bytes = 0;
  for (const entry of entries.slice(0, MAX_ENTRIES_PER_FETCH)) {
    if (selected.length > 0 && (records >= req.maxRecords || bytes >= req.maxBytes)) break;
    selected.push(entry);
    if (entry.kind === 'data') {
      records += entry.base + entry.count - Math.max(entry.base, req.offset);
      bytes += entry.length;
    }
  }
  return selected;
}
