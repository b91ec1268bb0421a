// Binary codec for segment objects: one S3 object per produce request, holding one batch per
// partition. The byte layout is specified in docs/segment-format.md; keep the two in step.
//
// Offsets are assigned after the object is written, so batches carry only relative offsets and
// timestamp deltas. Readers range-GET a single batch, so each batch is self-contained and
// carries its own checksum.
import { gunzipSync, gzipSync } from 'node:zlib';
import { CorruptDataError } from '../errors.ts';
import { ByteReader, ByteWriter, crc32c, MAX_U32, plainView } from './bytes.ts';

export type Compression = 'none' | 'gzip';

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface SegmentRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
  /** Milliseconds since the epoch. */
  timestamp: number;
}

export interface BatchInput {
  partition: number;
  records: SegmentRecord[];
  compression: Compression;
}

export interface BatchLocation {
  partition: number;
  /** Byte offset of the batch from the start of the object. */
  position: number;
  /** Byte length of the batch: the range to GET is [position, position + length). */
  length: number;
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

export interface EncodedSegment {
  bytes: Uint8Array;
  batches: BatchLocation[];
}

export interface DecodedRecord extends SegmentRecord {
  /** Index of the record within its batch; the absolute offset is base offset + offsetDelta. */
  offsetDelta: number;
}

export const SEGMENT_MAGIC = 'KQSG';
export const SEGMENT_VERSION = 1;

/** SEGMENT_MAGIC read as one big-endian u32, so it is checked with a single compare. */
const SEGMENT_MAGIC_U32 = 0x4b515347;
const SEGMENT_HEADER_SIZE = 16;
const SEGMENT_DIRECTORY_CRC_OFFSET = 12;
const DIRECTORY_ENTRY_SIZE = 32;

const BATCH_MAGIC = 0x4b;
const BATCH_VERSION = 1;
const BATCH_HEADER_SIZE = 32;
const BATCH_CRC_OFFSET = 4;
/** The batch CRC covers every byte after the crc field. */
const BATCH_CRC_START = 8;
const COMPRESSION_MASK = 0x07;
const COMPRESSION_CODES: Readonly<Record<Compression, number>> = { none: 0, gzip: 1 };

// ---------------------------------------------------------------------------------------------
// Encoding

/** A batch measured (and, if compressed, already compressed) so the object can be sized up front. */
interface BatchPlan {
  partition: number;
  records: SegmentRecord[];
  compression: Compression;
  firstTimestamp: number;
  maxTimestamp: number;
  /** Byte size of each record after its length prefix. */
  recordBodySizes: Uint32Array;
  /** The compressed payload, or null when the records are written straight into the object. */
  compressedPayload: Uint8Array | null;
  payloadLength: number;
}

/**
 * Encodes one produce request as a segment object. Inputs are assumed validated upstream;
 * structural misuse (no batches, an empty batch, a repeated partition, an unsafe timestamp)
 * throws RangeError.
 */
export function encodeSegment(batches: BatchInput[]): EncodedSegment {
  if (batches.length === 0) throw new RangeError('encodeSegment needs at least one batch');
  const partitions = new Set<number>();
  for (const { partition } of batches) {
    if (!Number.isInteger(partition) || partition < 0 || partition > MAX_U32) throw new RangeError(`partition ${partition} is not a u32`);
    if (partitions.has(partition)) throw new RangeError(`partition ${partition} appears in more than one batch`);
    partitions.add(partition);
  }

  const plans = batches.map(planBatch);
  const directoryLength = 4 + DIRECTORY_ENTRY_SIZE * plans.length;
  let position = SEGMENT_HEADER_SIZE + directoryLength;
  const locations = plans.map((plan): BatchLocation => {
    const length = BATCH_HEADER_SIZE + plan.payloadLength;
    const location = { partition: plan.partition, position, length, recordCount: plan.records.length, firstTimestamp: plan.firstTimestamp, maxTimestamp: plan.maxTimestamp };
    position += length;
    return location;
  });
  if (position > MAX_U32) throw new RangeError(`segment of ${position} bytes exceeds the u32 positions of format v${SEGMENT_VERSION}`);

  const bytes = new Uint8Array(position);
  const w = new ByteWriter(bytes);
  w.u32(SEGMENT_MAGIC_U32);
  w.u8(SEGMENT_VERSION);
  w.u8(0); // flags
  w.u16(0); // reserved
  w.u32(directoryLength);
  w.u32(0); // directory CRC, patched below once the directory is written
  w.u32(locations.length);
  for (const location of locations) writeDirectoryEntry(w, location);
  w.patchU32(SEGMENT_DIRECTORY_CRC_OFFSET, crc32c(bytes.subarray(SEGMENT_HEADER_SIZE, w.pos)));
  for (const plan of plans) writeBatch(w, plan);
  // Every size above was precomputed; a mismatch here is a codec bug, not bad input.
  if (w.pos !== bytes.length) throw new Error(`segment encoder wrote ${w.pos} bytes into a ${bytes.length}-byte buffer`);
  return { bytes, batches: locations };
}

function planBatch({ partition, records, compression }: BatchInput): BatchPlan {
  if (records.length === 0) throw new RangeError(`batch for partition ${partition} has no records`);
  if (!Object.hasOwn(COMPRESSION_CODES, compression)) throw new RangeError(`unknown compression ${String(compression)}`);
  const firstTimestamp = records[0]!.timestamp;
  let maxTimestamp = firstTimestamp;
  const recordBodySizes = new Uint32Array(records.length);
  let payloadLength = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const timestampDelta = record.timestamp - firstTimestamp;
    if (!Number.isSafeInteger(record.timestamp) || !Number.isSafeInteger(timestampDelta)) {
      throw new RangeError(`record ${i} of partition ${partition} has timestamp ${record.timestamp}, which is not a safe integer within range of the first`);
    }
    if (record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
    const bodySize = recordBodySize(record, i, timestampDelta);
    recordBodySizes[i] = bodySize;
    payloadLength += uvarintSize(bodySize) + bodySize;
  }

  const plan: BatchPlan = { partition, records, compression, firstTimestamp, maxTimestamp, recordBodySizes, compressedPayload: null, payloadLength };
  if (compression === 'none') return plan;
  // Compression works on the whole payload, so serialize it into its own exact-size buffer first.
  const raw = new Uint8Array(payloadLength);
  writeRecords(new ByteWriter(raw), plan);
  const compressedPayload = gzipSync(raw);
  return { ...plan, compressedPayload, payloadLength: compressedPayload.length };
}

function recordBodySize(record: SegmentRecord, index: number, timestampDelta: number): number {
  let size = 1 + zigzagSize(timestampDelta) + uvarintSize(index) + nullableBytesSize(record.key) + nullableBytesSize(record.value) + uvarintSize(record.headers.length);
  for (const header of record.headers) {
    const keyLength = Buffer.byteLength(header.key, 'utf8');
    size += uvarintSize(keyLength) + keyLength + nullableBytesSize(header.value);
  }
  return size;
}

function writeDirectoryEntry(w: ByteWriter, location: BatchLocation): void {
  w.u32(location.partition);
  w.u32(location.position);
  w.u32(location.length);
  w.u32(location.recordCount);
  w.i64(location.firstTimestamp);
  w.i64(location.maxTimestamp);
}

function writeBatch(w: ByteWriter, plan: BatchPlan): void {
  const start = w.pos;
  w.u8(BATCH_MAGIC);
  w.u8(BATCH_VERSION);
  w.u16(COMPRESSION_CODES[plan.compression]);
  w.u32(0); // crc, patched below once the batch is written
  w.u32(plan.records.length);
  w.i64(plan.firstTimestamp);
  w.i64(plan.maxTimestamp);
  w.u32(plan.payloadLength);
  if (plan.compressedPayload) w.bytes(plan.compressedPayload);
  else writeRecords(w, plan);
  w.patchU32(start + BATCH_CRC_OFFSET, crc32c(w.buf.subarray(start + BATCH_CRC_START, w.pos)));
}

function writeRecords(w: ByteWriter, { records, firstTimestamp, recordBodySizes }: BatchPlan): void {
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    w.uvarint(recordBodySizes[i]!);
    w.u8(0); // record attributes
    w.zigzag(record.timestamp - firstTimestamp);
    w.uvarint(i); // offsetDelta
    w.nullableBytes(record.key);
    w.nullableBytes(record.value);
    w.uvarint(record.headers.length);
    for (const header of record.headers) {
      w.utf8(header.key);
      w.nullableBytes(header.value);
    }
  }
}

function uvarintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/** See ByteWriter.zigzag: the first byte holds the sign and 6 bits, the rest is a plain varint. */
function zigzagSize(value: number): number {
  const magnitude = value < 0 ? -value - 1 : value;
  return magnitude < 0x40 ? 1 : 1 + uvarintSize(Math.floor(magnitude / 0x40));
}

function nullableBytesSize(bytes: Uint8Array | null): number {
  return bytes === null ? 1 : zigzagSize(bytes.length) + bytes.length;
}

// ---------------------------------------------------------------------------------------------
// Decoding

interface BatchHeader {
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
  compression: Compression;
}

/** Reads and verifies one batch's header and checksum, without decompressing its payload. */
export function readBatchHeader(bytes: Uint8Array): BatchHeader {
  return parseBatch(bytes).header;
}

/**
 * Decodes one batch from exactly its bytes (as range-GET from the object). Keys and values are
 * views into `bytes` (or into the decompressed payload), not copies.
 */
export function decodeBatch(bytes: Uint8Array): DecodedRecord[] {
  const { header, payload } = parseBatch(bytes);
  return decodeRecords(decompress(payload, header.compression), header);
}

/**
 * Reads the directory from a whole segment object or any prefix of it that covers the header and
 * directory (SEGMENT_HEADER_SIZE + directoryLength bytes).
 */
export function decodeSegmentDirectory(bytes: Uint8Array): BatchLocation[] {
  const data = plainView(bytes);
  if (data.length < SEGMENT_HEADER_SIZE) throw new CorruptDataError(`segment truncated: ${data.length} bytes is shorter than the ${SEGMENT_HEADER_SIZE}-byte header`);
  const r = new ByteReader(data, 'segment header');
  if (r.u32() !== SEGMENT_MAGIC_U32) throw new CorruptDataError(`not a segment object: magic is not ${SEGMENT_MAGIC}`);
  const version = r.u8();
  if (version !== SEGMENT_VERSION) throw new CorruptDataError(`unsupported segment version ${version}`);
  const flags = r.u8();
  const reserved = r.u16();
  if (flags !== 0 || reserved !== 0) throw new CorruptDataError(`segment header has unknown flags ${flags} / reserved ${reserved}`);
  const directoryLength = r.u32();
  const directoryCrc = r.u32();
  const directoryEnd = SEGMENT_HEADER_SIZE + directoryLength;
  if (data.length < directoryEnd) throw new CorruptDataError(`segment truncated: directory needs ${directoryEnd} bytes, have ${data.length}`);
  const directory = data.subarray(SEGMENT_HEADER_SIZE, directoryEnd);
  if (crc32c(directory) !== directoryCrc) throw new CorruptDataError('segment directory checksum mismatch');

  const d = new ByteReader(directory, 'segment directory');
  const entryCount = d.u32();
  if (entryCount === 0 || directoryLength !== 4 + DIRECTORY_ENTRY_SIZE * entryCount) {
    throw new CorruptDataError(`segment directory of ${directoryLength} bytes does not fit ${entryCount} entries`);
  }
  const partitions = new Set<number>();
  let expectedPosition = directoryEnd;
  const locations: BatchLocation[] = [];
  for (let i = 0; i < entryCount; i++) {
    const location = { partition: d.u32(), position: d.u32(), length: d.u32(), recordCount: d.u32(), firstTimestamp: d.i64(), maxTimestamp: d.i64() };
    // Batches are packed back to back in directory order, so every position is predictable.
    if (location.position !== expectedPosition || location.length <= BATCH_HEADER_SIZE || location.recordCount === 0 || location.firstTimestamp > location.maxTimestamp || partitions.has(location.partition)) {
      throw new CorruptDataError(`segment directory entry ${i} is inconsistent: ${JSON.stringify(location)}`);
    }
    partitions.add(location.partition);
    expectedPosition += location.length;
    locations.push(location);
  }
  return locations;
}

/** Decodes a whole segment object; for recovery/GC tools and tests (the read path uses decodeBatch). */
export function decodeSegment(bytes: Uint8Array): Array<{ location: BatchLocation; records: DecodedRecord[] }> {
  const data = plainView(bytes);
  const locations = decodeSegmentDirectory(data);
  const last = locations[locations.length - 1]!;
  const end = last.position + last.length;
  if (end !== data.length) throw new CorruptDataError(`segment is ${data.length} bytes but its directory describes ${end}`);
  return locations.map((location) => {
    const { header, payload } = parseBatch(data.subarray(location.position, location.position + location.length));
    if (header.recordCount !== location.recordCount || header.firstTimestamp !== location.firstTimestamp || header.maxTimestamp !== location.maxTimestamp) {
      throw new CorruptDataError(`batch for partition ${location.partition} disagrees with its directory entry`);
    }
    return { location, records: decodeRecords(decompress(payload, header.compression), header) };
  });
}

function parseBatch(bytes: Uint8Array): { header: BatchHeader; payload: Uint8Array } {
  const data = plainView(bytes);
  if (data.length < BATCH_HEADER_SIZE) throw new CorruptDataError(`batch truncated: ${data.length} bytes is shorter than the ${BATCH_HEADER_SIZE}-byte header`);
  const r = new ByteReader(data, 'batch header');
  const magic = r.u8();
  const version = r.u8();
  const attributes = r.u16();
  const crc = r.u32();
  if (magic !== BATCH_MAGIC) throw new CorruptDataError(`not a batch: magic is 0x${magic.toString(16)}`);
  if (version !== BATCH_VERSION) throw new CorruptDataError(`unsupported batch version ${version}`);
  // The attributes precede the crc field and so are not checksummed: reject every unknown bit.
  const compressionCode = attributes & COMPRESSION_MASK;
  const compression = compressionCode === COMPRESSION_CODES.none ? 'none' : compressionCode === COMPRESSION_CODES.gzip ? 'gzip' : null;
  if (compression === null) throw new CorruptDataError(`unsupported compression (code ${compressionCode})`);
  if (attributes !== compressionCode) throw new CorruptDataError(`batch attributes 0x${attributes.toString(16)} set unknown bits`);
  const recordCount = r.u32();
  const firstTimestamp = r.i64();
  const maxTimestamp = r.i64();
  const payloadLength = r.u32();
  const actualPayloadLength = data.length - BATCH_HEADER_SIZE;
  if (payloadLength !== actualPayloadLength) {
    throw new CorruptDataError(`batch ${payloadLength > actualPayloadLength ? 'truncated' : 'has trailing bytes'}: header says ${payloadLength} payload bytes, have ${actualPayloadLength}`);
  }
  if (crc32c(data.subarray(BATCH_CRC_START)) !== crc) throw new CorruptDataError('batch checksum mismatch');
  if (recordCount === 0) throw new CorruptDataError('batch has no records');
  return { header: { recordCount, firstTimestamp, maxTimestamp, compression }, payload: data.subarray(BATCH_HEADER_SIZE) };
}

function decompress(payload: Uint8Array, compression: Compression): Uint8Array {
  if (compression === 'none') return payload;
  try {
    return plainView(gunzipSync(payload));
  } catch (err) {
    throw new CorruptDataError('batch payload failed to decompress', { cause: err });
  }
}

function decodeRecords(payload: Uint8Array, header: BatchHeader): DecodedRecord[] {
  const r = new ByteReader(payload, 'batch payload');
  const records: DecodedRecord[] = [];
  let maxTimestamp = header.firstTimestamp;
  // Records are pushed rather than preallocated so a bogus recordCount fails on the bytes, not on allocation.
  for (let offsetDelta = 0; offsetDelta < header.recordCount; offsetDelta++) {
    const recordEnd = r.lengthPrefixedEnd();
    if (r.u8() !== 0) throw r.corrupt(`record ${offsetDelta} has non-zero attributes`);
    const timestamp = header.firstTimestamp + r.zigzag();
    if (!Number.isSafeInteger(timestamp)) throw r.corrupt(`record ${offsetDelta} timestamp out of range`);
    if (offsetDelta === 0 && timestamp !== header.firstTimestamp) throw r.corrupt('first record timestamp disagrees with the batch header');
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    if (r.uvarint() !== offsetDelta) throw r.corrupt(`record ${offsetDelta} has the wrong offsetDelta`);
    const key = r.nullableBytes();
    const value = r.nullableBytes();
    const headerCount = r.uvarint();
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) headers.push({ key: r.utf8(), value: r.nullableBytes() });
    if (r.pos !== recordEnd) throw r.corrupt(`record ${offsetDelta} length prefix disagrees with its contents`);
    records.push({ key, value, headers, timestamp, offsetDelta });
  }
  if (r.pos !== payload.length) throw r.corrupt(`${payload.length - r.pos} trailing bytes after ${header.recordCount} records`);
  if (maxTimestamp !== header.maxTimestamp) throw r.corrupt('record timestamps disagree with the batch header maxTimestamp');
  return records;
}

