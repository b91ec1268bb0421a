// Binary codec for partition log segments: runs of one partition's committed batches, copied byte
// for byte from intake objects and wrapped in frames that carry their place in the log, followed
// by a sparse offset/time index and a footer. The byte layout is specified in
// docs/segment-format.md ("Partition log segments"); keep the two in step.
//
// Readers range-GET the index (its CRC kept in the segment's DynamoDB item), look up the byte range
// of the frames they need, and range-GET only those; the footer serves recovery tools.
import { isDeepStrictEqual } from 'node:util';
import { CorruptDataError } from '../errors.ts';
import { ByteReader, ByteWriter, crc32c, MAX_U32, plainView } from './bytes.ts';
import { decodeBatch } from './segment.ts';

export const LOG_SEGMENT_MAGIC = 'KQLS';
export const LOG_SEGMENT_VERSION = 1;
/** A frame is indexed once it starts this many bytes after the previous indexed frame. */
export const INDEX_INTERVAL_BYTES = 4096;
/** The time index's "no record yet" and a gaps-only segment's maxTimestamp: below every valid timestamp but one. */
export const NO_TIMESTAMP = -Number.MAX_SAFE_INTEGER;

/** LOG_SEGMENT_MAGIC read as one big-endian u32, so it is checked with a single compare. */
const LOG_SEGMENT_MAGIC_U32 = 0x4b514c53;
const FRAME_HEADER_SIZE = 12;
const INDEX_ENTRY_SIZE = 16;
const FOOTER_SIZE = 48;
/** The footer CRC covers the footer's bytes before it. */
const FOOTER_CRC_OFFSET = 44;

export interface FrameInput {
  offsetCount: number;
  /** A batch exactly as in intake objects, or null for a gap (offsets that hold no record). */
  batch: Uint8Array | null;
}

export interface EncodedLogSegment {
  bytes: Uint8Array;
  baseOffset: number;
  offsetCount: number;
  recordCount: number;
  /** Bytes of all frames: the index starts here. */
  dataLength: number;
  indexLength: number;
  indexCrc: number;
  /** Largest record timestamp, or NO_TIMESTAMP if the segment holds only gaps. */
  maxTimestamp: number;
  /** The first data frame's batch firstTimestamp, or NO_TIMESTAMP if the segment holds only gaps. */
  firstTimestamp: number;
}

export interface LogIndexEntry {
  relativeOffset: number;
  position: number;
  /** Largest record timestamp in all frames before this one (NO_TIMESTAMP for none). */
  maxTimestampBefore: number;
}

/** A byte range of the object, [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface DecodedFrame {
  relativeOffset: number;
  offsetCount: number;
  /** Byte position of the frame header in the object. */
  position: number;
  /** A view of the batch bytes (not yet verified), or null for a gap. */
  batch: Uint8Array | null;
}

export interface DecodedFrames {
  frames: DecodedFrame[];
  /** Position just after the last complete frame. */
  next: number;
  /**
   * Set if the bytes end inside a frame: the position where that frame ends, or where its header
   * ends if they stop inside the header (its length is not known yet).
   */
  needed?: number;
}

export interface DecodedLogSegment {
  baseOffset: number;
  offsetCount: number;
  recordCount: number;
  maxTimestamp: number;
  index: LogIndexEntry[];
  frames: DecodedFrame[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes a run of one partition's frames, the first at `baseOffset`. Every batch is decoded and
 * verified (CorruptDataError) before it is copied; structural misuse (no frames, a frame covering no
 * offsets, a data frame whose offsetCount differs from its batch's recordCount, sizes beyond the
 * format's u32 fields) throws RangeError.
 */
export function encodeLogSegment(baseOffset: number, frames: FrameInput[]): EncodedLogSegment {
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) throw new RangeError(`baseOffset ${baseOffset} is not a non-negative safe integer`);
  if (frames.length === 0) throw new RangeError('encodeLogSegment needs at least one frame');
  let relativeOffset = 0;
  let position = 0;
  // Frames laid out as the decoder will find them, so both share summarizeFrames.
  const layout = frames.map(({ offsetCount, batch }, i): DecodedFrame => {
    if (!Number.isInteger(offsetCount) || offsetCount < 1) throw new RangeError(`frame ${i} covers ${offsetCount} offsets; it must cover at least one`);
    const frame = { relativeOffset, offsetCount, position, batch };
    relativeOffset += offsetCount;
    position += FRAME_HEADER_SIZE + (batch?.length ?? 0);
    return frame;
  });
  const offsetCount = relativeOffset;
  const dataLength = position;
  if (offsetCount > MAX_U32 || !Number.isSafeInteger(baseOffset + offsetCount)) throw new RangeError(`${offsetCount} offsets from ${baseOffset} do not fit format v${LOG_SEGMENT_VERSION}`);
  if (dataLength > MAX_U32) throw new RangeError(`${dataLength} bytes of frames exceed the u32 positions of format v${LOG_SEGMENT_VERSION}`);
  const summary = summarizeFrames(layout, (frame, recordCount) => new RangeError(`frame at relative offset ${frame.relativeOffset} covers ${frame.offsetCount} offsets but its batch holds ${recordCount} records`));

  const indexLength = INDEX_ENTRY_SIZE * summary.index.length;
  const bytes = new Uint8Array(dataLength + indexLength + FOOTER_SIZE);
  const w = new ByteWriter(bytes);
  for (const frame of layout) {
    w.u32(frame.relativeOffset);
    w.u32(frame.offsetCount);
    w.u32(frame.batch?.length ?? 0);
    if (frame.batch) w.bytes(frame.batch);
  }
  for (const entry of summary.index) {
    w.u32(entry.relativeOffset);
    w.u32(entry.position);
    w.i64(entry.maxTimestampBefore);
  }
  const indexCrc = crc32c(bytes.subarray(dataLength, w.pos));
  const footerStart = w.pos;
  w.u32(LOG_SEGMENT_MAGIC_U32);
  w.u8(LOG_SEGMENT_VERSION);
  w.u8(0); // flags
  w.u16(0); // reserved
  w.i64(baseOffset);
  w.u32(offsetCount);
  w.u32(summary.recordCount);
  w.u32(dataLength);
  w.u32(indexLength);
  w.i64(summary.maxTimestamp);
  w.u32(indexCrc);
  w.u32(crc32c(bytes.subarray(footerStart, w.pos)));
  // Every size above was precomputed; a mismatch here is a codec bug, not bad input.
  if (w.pos !== bytes.length) throw new Error(`log segment encoder wrote ${w.pos} bytes into a ${bytes.length}-byte buffer`);
  return { bytes, baseOffset, offsetCount, recordCount: summary.recordCount, dataLength, indexLength, indexCrc, maxTimestamp: summary.maxTimestamp, firstTimestamp: summary.firstTimestamp };
}

/**
 * Verifies every data frame's batch against the frame's offsetCount and derives what the index and
 * footer hold. Shared by the encoder and the whole-object decoder, so the decoder checks the stored
 * index against exactly the one the encoder builds. Batches are decoded in full, not just checked
 * against their CRC: the compression bits precede the CRC'd bytes, and a flip between none and gzip
 * only shows when the payload is read.
 */
function summarizeFrames(frames: DecodedFrame[], countMismatch: (frame: DecodedFrame, recordCount: number) => Error) {
  const index: LogIndexEntry[] = [];
  let recordCount = 0;
  let maxTimestamp = NO_TIMESTAMP;
  let firstTimestamp: number | undefined;
  for (const frame of frames) {
    const lastIndexed = index[index.length - 1];
    if (!lastIndexed || frame.position - lastIndexed.position >= INDEX_INTERVAL_BYTES) {
      index.push({ relativeOffset: frame.relativeOffset, position: frame.position, maxTimestampBefore: maxTimestamp });
    }
    if (!frame.batch) continue;
    const records = decodeBatch(frame.batch);
    if (records.length !== frame.offsetCount) throw countMismatch(frame, records.length);
    recordCount += records.length;
    for (const record of records) maxTimestamp = Math.max(maxTimestamp, record.timestamp);
    firstTimestamp ??= records[0]!.timestamp;
  }
  return { index, recordCount, maxTimestamp, firstTimestamp: firstTimestamp ?? NO_TIMESTAMP };
}

// ---------------------------------------------------------------------------------------------
// Index lookups

/** Verifies and parses the index bytes, as range-GET at [dataLength, dataLength + indexLength). */
export function decodeLogIndex(bytes: Uint8Array, expectedCrc: number): LogIndexEntry[] {
  if (crc32c(bytes) !== expectedCrc) throw new CorruptDataError('log segment index checksum mismatch');
  if (bytes.length === 0 || bytes.length % INDEX_ENTRY_SIZE !== 0) throw new CorruptDataError(`log segment index of ${bytes.length} bytes is not one or more ${INDEX_ENTRY_SIZE}-byte entries`);
  const r = new ByteReader(bytes, 'log segment index');
  const index: LogIndexEntry[] = [];
  while (r.pos < bytes.length) {
    const entry = { relativeOffset: r.u32(), position: r.u32(), maxTimestampBefore: r.i64() };
    const previous = index[index.length - 1];
    const inOrder = previous
      ? entry.relativeOffset > previous.relativeOffset && entry.position > previous.position && entry.maxTimestampBefore >= previous.maxTimestampBefore
      : entry.relativeOffset === 0 && entry.position === 0 && entry.maxTimestampBefore === NO_TIMESTAMP;
    // Both lookups are binary searches over these columns, so they must be ordered.
    if (!inOrder) throw r.corrupt(`entry ${index.length} ${JSON.stringify(entry)} is out of order`);
    index.push(entry);
  }
  return index;
}

/**
 * The frames to read for `relativeOffset`: from the last indexed frame at or before it up to the
 * next indexed frame (or the end of the frames). An offset past the segment gets the last range;
 * the frames read then show it is not there.
 */
export function rangeForOffset(index: LogIndexEntry[], dataLength: number, relativeOffset: number): ByteRange {
  if (!Number.isSafeInteger(relativeOffset) || relativeOffset < 0) throw new RangeError(`relative offset ${relativeOffset} is not a non-negative integer`);
  // Entry 0 (relative offset 0) always qualifies.
  const entry = countLeading(index, (e) => e.relativeOffset <= relativeOffset) - 1;
  return rangeBetween(index, dataLength, entry, entry + 1);
}

/**
 * The frames to scan for the earliest record with timestamp ≥ `timestamp`: it is in the first frame
 * whose batch maxTimestamp is ≥ `timestamp`, which lies in the returned range if it exists at all.
 * The index alone cannot show that none exists (the last range may hold it): callers compare with
 * the segment's maxTimestamp.
 */
export function rangeForTimestamp(index: LogIndexEntry[], dataLength: number, timestamp: number): ByteRange {
  // Frames before the last entry with maxTimestampBefore < T all hold only records < T. If there is
  // none (T ≤ NO_TIMESTAMP), every record qualifies and the scan starts at the first frame.
  const start = Math.max(1, countLeading(index, (e) => e.maxTimestampBefore < timestamp)) - 1;
  // An entry with maxTimestampBefore ≥ T proves that a frame before it qualifies, unless that value
  // is NO_TIMESTAMP, which also stands for "no record yet": such an entry proves nothing.
  const end = countLeading(index, (e) => e.maxTimestampBefore < Math.max(timestamp, NO_TIMESTAMP + 1));
  return rangeBetween(index, dataLength, start, end);
}

/** Number of leading entries for which `holds` is true; `holds` must be true on a prefix only. */
function countLeading(index: LogIndexEntry[], holds: (entry: LogIndexEntry) => boolean): number {
  if (index.length === 0) throw new RangeError('a log segment index has at least one entry');
  let low = 0;
  let high = index.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (holds(index[middle]!)) low = middle + 1;
    else high = middle;
  }
  return low;
}

function rangeBetween(index: LogIndexEntry[], dataLength: number, startEntry: number, endEntry: number): ByteRange {
  return { start: index[startEntry]!.position, end: index[endEntry]?.position ?? dataLength };
}

// ---------------------------------------------------------------------------------------------
// Frames

/**
 * Parses the complete frames in `bytes`, which hold the object from `startPosition` on (a range-GET
 * from an index position). Checks that frames are contiguous, starting at `expectedRelativeOffset`
 * if given; batches are returned as views, not verified (the reader decodes them with decodeBatch
 * and checks each data frame's offsetCount against the batch's recordCount).
 */
export function decodeFrames(bytes: Uint8Array, startPosition: number, expectedRelativeOffset?: number): DecodedFrames {
  const data = plainView(bytes);
  const r = new ByteReader(data, `log segment frames from byte ${startPosition}`);
  const frames: DecodedFrame[] = [];
  let nextRelativeOffset = expectedRelativeOffset;
  while (r.pos < data.length) {
    const frameStart = r.pos;
    if (data.length - frameStart < FRAME_HEADER_SIZE) return { frames, next: startPosition + frameStart, needed: startPosition + frameStart + FRAME_HEADER_SIZE };
    const relativeOffset = r.u32();
    const offsetCount = r.u32();
    const length = r.u32();
    if (nextRelativeOffset !== undefined && relativeOffset !== nextRelativeOffset) throw r.corrupt(`frame at relative offset ${relativeOffset} where ${nextRelativeOffset} was expected`);
    if (offsetCount === 0) throw r.corrupt(`frame at relative offset ${relativeOffset} covers no offsets`);
    const frameEnd = r.pos + length;
    if (frameEnd > data.length) return { frames, next: startPosition + frameStart, needed: startPosition + frameEnd };
    frames.push({ relativeOffset, offsetCount, position: startPosition + frameStart, batch: length === 0 ? null : r.bytes(length) });
    nextRelativeOffset = relativeOffset + offsetCount;
  }
  return { frames, next: startPosition + data.length };
}

// ---------------------------------------------------------------------------------------------
// Whole objects

/**
 * Decodes and verifies a whole log segment object (for recovery tools and tests; readers use the
 * index and decodeFrames): footer, index, frame contiguity and coverage, every batch's CRC and
 * records, and that the index and footer are exactly what the frames imply.
 */
export function decodeLogSegment(bytes: Uint8Array): DecodedLogSegment {
  const data = plainView(bytes);
  if (data.length < FOOTER_SIZE) throw new CorruptDataError(`log segment truncated: ${data.length} bytes is shorter than the ${FOOTER_SIZE}-byte footer`);
  const footerStart = data.length - FOOTER_SIZE;
  const footer = data.subarray(footerStart);
  const r = new ByteReader(footer, 'log segment footer');
  if (r.u32() !== LOG_SEGMENT_MAGIC_U32) throw new CorruptDataError(`not a log segment: footer magic is not ${LOG_SEGMENT_MAGIC}`);
  const version = r.u8();
  if (version !== LOG_SEGMENT_VERSION) throw new CorruptDataError(`unsupported log segment version ${version}`);
  const footerCrc = new ByteReader(footer.subarray(FOOTER_CRC_OFFSET), 'log segment footer').u32();
  if (crc32c(footer.subarray(0, FOOTER_CRC_OFFSET)) !== footerCrc) throw new CorruptDataError('log segment footer checksum mismatch');
  const flags = r.u8();
  const reserved = r.u16();
  if (flags !== 0 || reserved !== 0) throw new CorruptDataError(`log segment footer has unknown flags ${flags} / reserved ${reserved}`);
  const stored = { baseOffset: r.i64(), offsetCount: r.u32(), recordCount: r.u32(), dataLength: r.u32(), indexLength: r.u32(), maxTimestamp: r.i64(), indexCrc: r.u32() };
  if (stored.baseOffset < 0) throw new CorruptDataError(`log segment base offset ${stored.baseOffset} is negative`);
  if (stored.dataLength + stored.indexLength !== footerStart) throw new CorruptDataError(`log segment is ${data.length} bytes but its footer describes ${stored.dataLength + stored.indexLength + FOOTER_SIZE}`);

  const index = decodeLogIndex(data.subarray(stored.dataLength, footerStart), stored.indexCrc);
  const { frames, next } = decodeFrames(data.subarray(0, stored.dataLength), 0, 0);
  if (next !== stored.dataLength) throw new CorruptDataError(`log segment frames end at byte ${next}, inside a frame that overruns the ${stored.dataLength} bytes of frames`);
  const last = frames[frames.length - 1];
  const covered = last ? last.relativeOffset + last.offsetCount : 0;
  if (covered !== stored.offsetCount) throw new CorruptDataError(`log segment frames cover ${covered} offsets but the footer says ${stored.offsetCount}`);
  const summary = summarizeFrames(frames, (frame, recordCount) => new CorruptDataError(`log segment frame at relative offset ${frame.relativeOffset} covers ${frame.offsetCount} offsets but its batch holds ${recordCount} records`));
  if (summary.recordCount !== stored.recordCount || summary.maxTimestamp !== stored.maxTimestamp) {
    throw new CorruptDataError(`log segment footer (${stored.recordCount} records, maxTimestamp ${stored.maxTimestamp}) disagrees with its frames (${summary.recordCount}, ${summary.maxTimestamp})`);
  }
  if (!isDeepStrictEqual(summary.index, index)) throw new CorruptDataError('log segment index disagrees with its frames');
  return { baseOffset: stored.baseOffset, offsetCount: stored.offsetCount, recordCount: stored.recordCount, maxTimestamp: stored.maxTimestamp, index, frames };
}
