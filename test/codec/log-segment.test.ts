import { expectCorrupt, expectEveryFlipRefused } from '../support/corruption.ts';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { crc32c } from '../../lib/codec/bytes.ts';
import { decodeBatch, encodeSegment, type SegmentRecord } from '../../lib/codec/segment.ts';
import {
  decodeFrames,
  decodeLogIndex,
  decodeLogSegment,
  encodeLogSegment,
  INDEX_INTERVAL_BYTES,
  LOG_SEGMENT_MAGIC,
  LOG_SEGMENT_VERSION,
  NO_TIMESTAMP,
  rangeForOffset,
  rangeForTimestamp,
  type DecodedFrame,
  type EncodedLogSegment,
  type FrameInput,
} from '../../lib/codec/log-segment.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const FOOTER_SIZE = 48;

/** One batch exactly as an intake object holds it. */
function batchOf(records: SegmentRecord[]): Uint8Array {
  const segment = encodeSegment([{ partition: 0, compression: 'none', records }]);
  const { position, length } = segment.batches[0]!;
  return segment.bytes.slice(position, position + length);
}

const indexBytes = (segment: EncodedLogSegment) => segment.bytes.subarray(segment.dataLength, segment.dataLength + segment.indexLength);
const frameEnd = (frame: DecodedFrame) => frame.position + 12 + (frame.batch?.length ?? 0);


/** Recomputes the index and footer checksums after a deliberate edit, so only the semantic checks can catch it. */
function reseal(bytes: Uint8Array, dataLength: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footer = bytes.length - FOOTER_SIZE;
  view.setUint32(footer + 40, crc32c(bytes.subarray(dataLength, footer)));
  view.setUint32(footer + 44, crc32c(bytes.subarray(footer, footer + 44)));
}

// ---- arbitraries ------------------------------------------------------------------------------

// Client timestamps: few distinct values (ties, out of order within and across batches) plus the
// extremes, including NO_TIMESTAMP itself, which is also a valid record timestamp.
const timestamp = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -20, max: 20 }) }, { weight: 1, arbitrary: fc.constantFrom(NO_TIMESTAMP, Number.MAX_SAFE_INTEGER) });
const frameInput: fc.Arbitrary<FrameInput> = fc.oneof(
  fc.integer({ min: 1, max: 4 }).map((offsetCount) => ({ offsetCount, batch: null })),
  fc
    .record({
      // Within a batch, timestamps must stay within a safe delta of the first.
      timestamps: fc.array(timestamp, { minLength: 1, maxLength: 4 }).filter((ts) => Number.isSafeInteger(Math.max(...ts) - Math.min(...ts))),
      // Mostly small batches, some large enough that the index gets several entries.
      valueSize: fc.oneof(fc.nat({ max: 40 }), fc.integer({ min: 500, max: 3000 })),
    })
    .map(({ timestamps, valueSize }) => ({
      offsetCount: timestamps.length,
      batch: batchOf(timestamps.map((ts, i) => ({ key: null, value: new Uint8Array(i === 0 ? valueSize : 1), headers: [], timestamp: ts }))),
    })),
);
const frameInputs = fc.array(frameInput, { minLength: 1, maxLength: 14 });
const baseOffset = fc.oneof(fc.constant(0), fc.maxSafeNat().map((n) => Math.floor(n / 2)));

// ---- tests ------------------------------------------------------------------------------------

describe('log segment codec round trip', () => {
  it('decodes the whole object back to its frames, and the index to what the footer and encoder report', () => {
    fc.assert(
      fc.property(baseOffset, frameInputs, (base, input) => {
        const segment = encodeLogSegment(base, input);
        const decoded = decodeLogSegment(Buffer.from(segment.bytes));
        const dataFrames = input.filter((f) => f.batch);
        expect(decoded).toMatchObject({ baseOffset: base, offsetCount: segment.offsetCount, recordCount: segment.recordCount, maxTimestamp: segment.maxTimestamp });
        // Batches compared as hex: element-wise equality of large typed arrays is slow.
        const framesAsHex = (frames: FrameInput[]) => frames.map(({ offsetCount, batch }) => ({ offsetCount, batch: batch && hex(batch) }));
        expect(framesAsHex(decoded.frames)).toEqual(framesAsHex(input));
        expect(segment.offsetCount).toBe(input.reduce((sum, f) => sum + f.offsetCount, 0));
        expect(segment.recordCount).toBe(dataFrames.reduce((sum, f) => sum + f.offsetCount, 0));
        expect(segment.bytes.length).toBe(segment.dataLength + segment.indexLength + FOOTER_SIZE);
        expect(decodeLogIndex(indexBytes(segment), segment.indexCrc)).toEqual(decoded.index);
        // Sparse: one entry per INDEX_INTERVAL_BYTES of frames at most, and every entry at a frame start.
        expect(decoded.index.length).toBeLessThanOrEqual(1 + Math.floor(segment.dataLength / INDEX_INTERVAL_BYTES));
        const starts = new Set(decoded.frames.map((f) => f.position));
        for (const entry of decoded.index) expect(starts.has(entry.position)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('finds every offset in the frames of its rangeForOffset range', () => {
    fc.assert(
      fc.property(frameInputs, (input) => {
        const segment = encodeLogSegment(0, input);
        const index = decodeLogIndex(indexBytes(segment), segment.indexCrc);
        for (let offset = 0; offset < segment.offsetCount; offset++) {
          const range = rangeForOffset(index, segment.dataLength, offset);
          const entry = index.findLast((e) => e.position === range.start)!;
          const read = decodeFrames(segment.bytes.subarray(range.start, range.end), range.start, entry.relativeOffset);
          expect(read.needed).toBeUndefined();
          expect(read.next).toBe(range.end);
          expect(read.frames.some((f) => f.relativeOffset <= offset && offset < f.relativeOffset + f.offsetCount)).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('puts the first frame holding a record >= T in the rangeForTimestamp range (linear reference)', () => {
    fc.assert(
      fc.property(frameInputs, (input) => {
        const segment = encodeLogSegment(0, input);
        const { index, frames } = decodeLogSegment(segment.bytes);
        // Reference: the records' own timestamps, not the batch headers the codec reads.
        const frameMax = frames.map((f) => (f.batch ? Math.max(...decodeBatch(f.batch).map((r) => r.timestamp)) : null));
        const probes = [NO_TIMESTAMP - 1, NO_TIMESTAMP, NO_TIMESTAMP + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1];
        for (let t = -21; t <= 21; t++) probes.push(t);
        for (const t of probes) {
          const range = rangeForTimestamp(index, segment.dataLength, t);
          expect(range.start).toBeLessThan(range.end);
          const first = frames.findIndex((_, i) => frameMax[i] !== null && frameMax[i]! >= t);
          if (first === -1) continue; // callers rule this out with the segment's maxTimestamp
          expect(range.start).toBeLessThanOrEqual(frames[first]!.position);
          expect(frameEnd(frames[first]!)).toBeLessThanOrEqual(range.end);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('does not take a gaps-only prefix for proof of a record at the lowest timestamp', () => {
    // Enough gaps that the index has entries whose maxTimestampBefore is NO_TIMESTAMP for "no record yet".
    const gaps = Array.from({ length: Math.ceil((2 * INDEX_INTERVAL_BYTES) / 12) + 1 }, (): FrameInput => ({ offsetCount: 1, batch: null }));
    const batch = batchOf([{ key: null, value: null, headers: [], timestamp: NO_TIMESTAMP }]);
    const segment = encodeLogSegment(0, [...gaps, { offsetCount: 1, batch }]);
    const { index, frames } = decodeLogSegment(segment.bytes);
    expect(index.length).toBeGreaterThanOrEqual(3);
    const dataFrame = frames[frames.length - 1]!;
    for (const t of [NO_TIMESTAMP - 1, NO_TIMESTAMP]) {
      const range = rangeForTimestamp(index, segment.dataLength, t);
      expect(range.start).toBeLessThanOrEqual(dataFrame.position);
      expect(range.end).toBe(segment.dataLength);
    }
  });
});

describe('decodeFrames', () => {
  const t = 1_700_000_000_000;
  const batch = batchOf([{ key: null, value: utf8('v'), headers: [], timestamp: t }]);
  const segment = encodeLogSegment(0, [{ offsetCount: 1, batch }, { offsetCount: 2, batch: null }, { offsetCount: 1, batch }]);
  const data = segment.bytes.subarray(0, segment.dataLength);
  const secondFrame = 12 + batch.length;

  it('reports a frame cut off by the end of the bytes, and where it ends', () => {
    const cut = decodeFrames(data.subarray(0, secondFrame + 12 + 12 + 5), 0); // inside frame 2's batch
    expect(cut.frames.map((f) => f.relativeOffset)).toEqual([0, 1]);
    expect(cut).toMatchObject({ next: secondFrame + 12, needed: segment.dataLength });
    // Cut inside a frame header: its length is unknown, so the header's end is what is needed next.
    expect(decodeFrames(data.subarray(0, secondFrame + 5), 0)).toMatchObject({ next: secondFrame, needed: secondFrame + 12 });
    expect(decodeFrames(data, 0)).toEqual({ frames: expect.any(Array), next: segment.dataLength });
  });

  it('reads from a position inside the object, reporting absolute positions', () => {
    const read = decodeFrames(data.subarray(secondFrame), secondFrame, 1);
    expect(read.frames.map(({ relativeOffset, offsetCount, position }) => ({ relativeOffset, offsetCount, position }))).toEqual([
      { relativeOffset: 1, offsetCount: 2, position: secondFrame },
      { relativeOffset: 3, offsetCount: 1, position: secondFrame + 12 },
    ]);
    expect(read.frames[1]!.batch).toEqual(batch);
    expect(read.next).toBe(segment.dataLength);
  });

  it('rejects frames that are not contiguous or cover no offsets', () => {
    expectCorrupt(() => decodeFrames(data.subarray(secondFrame), secondFrame, 2), /expected/);
    const gapped = data.slice();
    gapped[secondFrame + 3] = 2; // second frame claims relative offset 2, leaving offset 1 uncovered
    expectCorrupt(() => decodeFrames(gapped, 0), /expected/);
    const empty = data.slice();
    empty[secondFrame + 7] = 0; // second frame covers 0 offsets
    expectCorrupt(() => decodeFrames(empty, 0), /no offsets/);
  });
});

describe('log segment corruption detection', () => {
  it('rejects a flip of any byte of the index or footer', () => {
    fc.assert(
      fc.property(frameInputs, fc.nat(), fc.integer({ min: 1, max: 255 }), (input, pick, xor) => {
        const segment = encodeLogSegment(0, input);
        const bytes = segment.bytes.slice();
        const at = segment.dataLength + (pick % (segment.indexLength + FOOTER_SIZE));
        bytes[at]! ^= xor;
        expectCorrupt(() => decodeLogSegment(bytes));
        if (at < segment.dataLength + segment.indexLength) expectCorrupt(() => decodeLogIndex(bytes.subarray(segment.dataLength, segment.dataLength + segment.indexLength), segment.indexCrc), /checksum/);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects a flip of every byte of a small segment, frames included', () => {
    const { bytes } = golden();
    expectEveryFlipRefused(bytes, decodeLogSegment);
  });

  it('rejects an index or footer that checksums but disagrees with the frames', () => {
    const input = Array.from({ length: 6 }, (_, i): FrameInput => ({ offsetCount: 1, batch: batchOf([{ key: null, value: new Uint8Array(2000), headers: [], timestamp: 10 - i }]) }));
    const segment = encodeLogSegment(0, input);
    const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(segment.indexLength).toBeGreaterThan(16);

    const wrongTime = segment.bytes.slice();
    view(wrongTime).setBigInt64(segment.dataLength + 16 + 8, 9n); // entry 1's maxTimestampBefore, really 10
    reseal(wrongTime, segment.dataLength);
    expectCorrupt(() => decodeLogSegment(wrongTime), /index disagrees/);

    const wrongPosition = segment.bytes.slice();
    view(wrongPosition).setUint32(segment.dataLength + 16 + 4, view(wrongPosition).getUint32(segment.dataLength + 16 + 4) + 1); // not a frame start
    reseal(wrongPosition, segment.dataLength);
    expectCorrupt(() => decodeLogSegment(wrongPosition), /index disagrees/);

    const footer = segment.bytes.length - FOOTER_SIZE;
    const wrongCount = segment.bytes.slice();
    view(wrongCount).setUint32(footer + 20, 5); // recordCount, really 6
    reseal(wrongCount, segment.dataLength);
    expectCorrupt(() => decodeLogSegment(wrongCount), /disagrees with its frames/);

    const wrongOffsets = segment.bytes.slice();
    view(wrongOffsets).setUint32(footer + 16, 7); // offsetCount, really 6
    reseal(wrongOffsets, segment.dataLength);
    expectCorrupt(() => decodeLogSegment(wrongOffsets), /cover 6 offsets/);

    const wrongMax = segment.bytes.slice();
    view(wrongMax).setBigInt64(footer + 32, 11n); // maxTimestamp, really 10
    reseal(wrongMax, segment.dataLength);
    expectCorrupt(() => decodeLogSegment(wrongMax), /disagrees with its frames/);
  });

  it('rejects an index that is out of order, empty or not whole entries', () => {
    const input = Array.from({ length: 3 }, (): FrameInput => ({ offsetCount: 1, batch: batchOf([{ key: null, value: new Uint8Array(5000), headers: [], timestamp: 1 }]) }));
    const index = indexBytes(encodeLogSegment(0, input)).slice();
    const view = new DataView(index.buffer);
    expect(decodeLogIndex(index, crc32c(index))).toHaveLength(3);
    const swapped = index.slice();
    swapped.set(index.subarray(16, 32), 32);
    swapped.set(index.subarray(32, 48), 16);
    expectCorrupt(() => decodeLogIndex(swapped, crc32c(swapped)), /out of order/);
    view.setUint32(0, 1); // the first entry must be relative offset 0 at position 0
    expectCorrupt(() => decodeLogIndex(index, crc32c(index)), /out of order/);
    expectCorrupt(() => decodeLogIndex(new Uint8Array(0), crc32c(new Uint8Array(0))), /one or more/);
    expectCorrupt(() => decodeLogIndex(index.subarray(0, 20), crc32c(index.subarray(0, 20))), /one or more/);
  });

  it('rejects an object that is truncated, has trailing bytes, or is not a log segment', () => {
    const { bytes } = golden();
    expectCorrupt(() => decodeLogSegment(bytes.subarray(0, bytes.length - 1)));
    expectCorrupt(() => decodeLogSegment(bytes.subarray(1)));
    expectCorrupt(() => decodeLogSegment(new Uint8Array([0, ...bytes])), /describes/);
    expectCorrupt(() => decodeLogSegment(new Uint8Array(20)), /truncated/);
    expectCorrupt(() => decodeLogSegment(new Uint8Array(64)), /magic/);
  });
});

describe('log segment encoder', () => {
  const batch = batchOf([
    { key: null, value: utf8('a'), headers: [], timestamp: 1 },
    { key: null, value: utf8('b'), headers: [], timestamp: 2 },
  ]);

  it('refuses a data frame whose offsetCount differs from its batch record count', () => {
    expect(() => encodeLogSegment(0, [{ offsetCount: 1, batch }])).toThrow(RangeError);
    expect(() => encodeLogSegment(0, [{ offsetCount: 3, batch }])).toThrow(/holds 2 records/);
    expect(encodeLogSegment(0, [{ offsetCount: 2, batch }]).recordCount).toBe(2);
  });

  it('refuses to copy a corrupt batch', () => {
    const corrupt = batch.slice();
    corrupt[corrupt.length - 1]! ^= 1;
    expectCorrupt(() => encodeLogSegment(0, [{ offsetCount: 2, batch: corrupt }]), /checksum/);
    expectCorrupt(() => encodeLogSegment(0, [{ offsetCount: 2, batch: new Uint8Array(0) }]), /truncated/);
    // The compression bits are outside the batch CRC: none flipped to gzip passes the checksum.
    const gzipFlipped = batch.slice();
    gzipFlipped[3] = 1;
    expectCorrupt(() => encodeLogSegment(0, [{ offsetCount: 2, batch: gzipFlipped }]), /decompress/);
  });

  it('rejects misuse with RangeError', () => {
    expect(() => encodeLogSegment(0, [])).toThrow(RangeError);
    expect(() => encodeLogSegment(-1, [{ offsetCount: 1, batch: null }])).toThrow(RangeError);
    expect(() => encodeLogSegment(1.5, [{ offsetCount: 1, batch: null }])).toThrow(RangeError);
    expect(() => encodeLogSegment(0, [{ offsetCount: 0, batch: null }])).toThrow(RangeError);
    expect(() => encodeLogSegment(0, [{ offsetCount: 0x1_0000_0000, batch: null }])).toThrow(RangeError);
    expect(() => encodeLogSegment(Number.MAX_SAFE_INTEGER, [{ offsetCount: 1, batch: null }])).toThrow(RangeError);
  });

  it('encodes a gaps-only segment with NO_TIMESTAMP for its timestamps', () => {
    const segment = encodeLogSegment(7, [{ offsetCount: 3, batch: null }]);
    expect(segment).toMatchObject({ offsetCount: 3, recordCount: 0, maxTimestamp: NO_TIMESTAMP, firstTimestamp: NO_TIMESTAMP, dataLength: 12, indexLength: 16 });
    expect(decodeLogSegment(segment.bytes)).toMatchObject({ baseOffset: 7, offsetCount: 3, recordCount: 0, maxTimestamp: NO_TIMESTAMP });
  });

  it('exports the format identifiers', () => {
    expect(LOG_SEGMENT_MAGIC).toBe('KQLS');
    expect(LOG_SEGMENT_VERSION).toBe(1);
    expect(INDEX_INTERVAL_BYTES).toBe(4096);
    expect(NO_TIMESTAMP).toBe(-(2 ** 53) + 1);
  });
});

// The worked example of docs/segment-format.md ("Partition log segments").
const t = 1_700_000_000_000; // 0x0000018bcfe56800
const goldenBatch0 = () =>
  batchOf([
    { key: null, value: utf8('a'), headers: [], timestamp: t },
    { key: null, value: utf8('b'), headers: [], timestamp: t - 7 },
  ]);
const goldenBatch2 = () => batchOf([{ key: utf8('k'), value: utf8('c'), headers: [], timestamp: t - 1 }]);
function golden(): EncodedLogSegment {
  return encodeLogSegment(100, [
    { offsetCount: 2, batch: goldenBatch0() },
    { offsetCount: 3, batch: null },
    { offsetCount: 1, batch: goldenBatch2() },
  ]);
}

describe('log segment format v1 golden bytes', () => {
  // Any change here is a format change: bump LOG_SEGMENT_VERSION and update docs/segment-format.md.
  const expected = [
    // frame 0 at position 0: relativeOffset 0, offsetCount 2, length 48
    '00000000', '00000002', '00000030',
    // its batch: magic, version, attributes, crc, recordCount 2, firstTimestamp t, maxTimestamp t, payloadLength 16
    '4b', '01', '0000', '75ca5a6e', '00000002', '0000018bcfe56800', '0000018bcfe56800', '00000010',
    // record 0: length 7, attrs, tsDelta 0, offsetDelta 0, null key, value "a", 0 headers
    '07', '00', '00', '00', '01', '0261', '00',
    // record 1: length 7, attrs, tsDelta -7 (zigzag 13), offsetDelta 1, null key, value "b", 0 headers
    '07', '00', '0d', '01', '01', '0262', '00',
    // frame 1 at position 60: relativeOffset 2, offsetCount 3, length 0 (a gap)
    '00000002', '00000003', '00000000',
    // frame 2 at position 72: relativeOffset 5, offsetCount 1, length 41
    '00000005', '00000001', '00000029',
    // its batch: recordCount 1, timestamps t - 1, payloadLength 9
    '4b', '01', '0000', '457d29c8', '00000001', '0000018bcfe567ff', '0000018bcfe567ff', '00000009',
    // record 0: length 8, attrs, tsDelta 0, offsetDelta 0, key "k", value "c", 0 headers
    '08', '00', '00', '00', '026b', '0263', '00',
    // index at dataLength 125: one entry, relativeOffset 0, position 0, maxTimestampBefore -(2^53 - 1)
    '00000000', '00000000', 'ffe0000000000001',
    // footer at 141: magic, version, flags, reserved, baseOffset 100, offsetCount 6, recordCount 3,
    // dataLength 125, indexLength 16, maxTimestamp t, indexCrc, footerCrc
    '4b514c53', '01', '00', '0000', '0000000000000064', '00000006', '00000003', '0000007d', '00000010', '0000018bcfe56800', '1d8ca37f', '35d8d626',
  ].join('');

  it('encodes to the exact v1 bytes', () => {
    const segment = golden();
    expect(hex(segment.bytes)).toBe(expected);
    expect({ ...segment, bytes: undefined }).toEqual({ bytes: undefined, baseOffset: 100, offsetCount: 6, recordCount: 3, dataLength: 125, indexLength: 16, indexCrc: 0x1d8ca37f, maxTimestamp: t, firstTimestamp: t });
  });

  it('decodes the v1 bytes', () => {
    const decoded = decodeLogSegment(Buffer.from(expected, 'hex'));
    expect(decoded).toEqual({
      baseOffset: 100,
      offsetCount: 6,
      recordCount: 3,
      maxTimestamp: t,
      index: [{ relativeOffset: 0, position: 0, maxTimestampBefore: NO_TIMESTAMP }],
      frames: [
        { relativeOffset: 0, offsetCount: 2, position: 0, batch: goldenBatch0() },
        { relativeOffset: 2, offsetCount: 3, position: 60, batch: null },
        { relativeOffset: 5, offsetCount: 1, position: 72, batch: goldenBatch2() },
      ],
    });
  });
});
