import { expectCorrupt, expectEveryFlipRefused } from '../support/corruption.ts';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  decodeBatch,
  decodeSegment,
  decodeSegmentDirectory,
  encodeSegment,
  readBatchHeader,
  SEGMENT_MAGIC,
  SEGMENT_VERSION,
  type BatchInput,
  type EncodedSegment,
  type SegmentRecord,
} from '../../lib/codec/segment.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const batchBytes = (segment: EncodedSegment, index: number) => {
  const { position, length } = segment.batches[index]!;
  return segment.bytes.slice(position, position + length);
};
const expectedRecords = (records: SegmentRecord[]) => records.map((record, offsetDelta) => ({ ...record, offsetDelta }));


// ---- arbitraries ------------------------------------------------------------------------------

const nullableBytes = fc.option(fc.uint8Array({ maxLength: 48 }), { nil: null, freq: 4 });
const timestamp = fc.oneof(
  fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }), // realistic, small deltas
  fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER), // extremes: deltas up to ±2^53
  fc.maxSafeNat(),
);
const header = fc.record({ key: fc.string({ unit: 'binary', maxLength: 12 }), value: nullableBytes });
const record: fc.Arbitrary<SegmentRecord> = fc.record({
  key: nullableBytes,
  value: nullableBytes,
  headers: fc.array(header, { maxLength: 3 }),
  timestamp,
});
const batch = (maxRecords: number): fc.Arbitrary<BatchInput> =>
  fc.record({
    partition: fc.nat({ max: 0xffffffff }),
    records: fc.array(record, { minLength: 1, maxLength: maxRecords, size: 'max' }),
    compression: fc.constantFrom('none' as const, 'gzip' as const),
  });
const batches = (maxRecords: number) => fc.uniqueArray(batch(maxRecords), { minLength: 1, maxLength: 5, selector: (b) => b.partition });

// ---- tests ------------------------------------------------------------------------------------

describe('segment codec round trip', () => {
  it('decodes every batch from its own byte range, and the whole object, back to the input', () => {
    fc.assert(
      fc.property(batches(300), (input) => {
        const segment = encodeSegment(input);
        expect(decodeSegmentDirectory(segment.bytes)).toEqual(segment.batches);
        const whole = decodeSegment(segment.bytes);
        expect(whole.map((b) => b.location)).toEqual(segment.batches);

        input.forEach((batchInput, i) => {
          const location = segment.batches[i]!;
          const timestamps = batchInput.records.map((r) => r.timestamp);
          expect(location).toMatchObject({ partition: batchInput.partition, recordCount: batchInput.records.length, firstTimestamp: timestamps[0], maxTimestamp: Math.max(...timestamps) });
          const bytes = batchBytes(segment, i);
          expect(decodeBatch(bytes)).toEqual(expectedRecords(batchInput.records));
          expect(whole[i]!.records).toEqual(expectedRecords(batchInput.records));
          expect(readBatchHeader(bytes)).toEqual({ recordCount: location.recordCount, firstTimestamp: location.firstTimestamp, maxTimestamp: location.maxTimestamp, compression: batchInput.compression });
        });
      }),
      { numRuns: 40 },
    );
  });

  it('reads the directory from a prefix of the object', () => {
    const segment = encodeSegment([
      { partition: 1, compression: 'none', records: [{ key: null, value: utf8('a'), headers: [], timestamp: 1 }] },
      { partition: 2, compression: 'gzip', records: [{ key: null, value: utf8('b'), headers: [], timestamp: 2 }] },
    ]);
    expect(decodeSegmentDirectory(segment.bytes.subarray(0, segment.batches[0]!.position))).toEqual(segment.batches);
    expectCorrupt(() => decodeSegmentDirectory(segment.bytes.subarray(0, segment.batches[0]!.position - 1)), /truncated/);
  });

  it('decodes from a Buffer into plain Uint8Array views', () => {
    const segment = encodeSegment([{ partition: 0, compression: 'none', records: [{ key: utf8('k'), value: utf8('v'), headers: [{ key: 'h', value: utf8('x') }], timestamp: 7 }] }]);
    const [decoded] = decodeBatch(Buffer.from(batchBytes(segment, 0)));
    expect(Object.getPrototypeOf(decoded!.value)).toBe(Uint8Array.prototype);
    expect(decoded!.headers[0]!.value).toEqual(utf8('x'));
  });

  it('keeps a leading byte-order mark in header keys', () => {
    const records: SegmentRecord[] = [{ key: null, value: null, headers: [{ key: '\uFEFFbom', value: null }], timestamp: 0 }];
    const segment = encodeSegment([{ partition: 0, compression: 'none', records }]);
    expect(decodeBatch(batchBytes(segment, 0))).toEqual(expectedRecords(records));
  });
});

describe('segment codec corruption detection', () => {
  it('rejects any single changed byte in a batch with CorruptDataError', () => {
    fc.assert(
      fc.property(batches(20), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (input, batchPick, bytePick, xor) => {
        const segment = encodeSegment(input);
        const bytes = batchBytes(segment, batchPick % input.length);
        bytes[bytePick % bytes.length]! ^= xor;
        expectCorrupt(() => decodeBatch(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a flip of every byte of a small batch, for both compressions', () => {
    for (const compression of ['none', 'gzip'] as const) {
      const segment = encodeSegment([{ partition: 9, compression, records: [
        { key: utf8('key'), value: utf8('value'), headers: [{ key: 'h', value: null }], timestamp: 1_700_000_000_000 },
        { key: null, value: new Uint8Array(0), headers: [], timestamp: 1_699_999_000_000 },
      ] }]);
      const original = batchBytes(segment, 0);
      expectEveryFlipRefused(original, decodeBatch);
    }
  });

  it('rejects truncated batches and batches with trailing bytes', () => {
    const segment = encodeSegment([{ partition: 0, compression: 'none', records: [{ key: utf8('k'), value: utf8('v'), headers: [], timestamp: 1 }] }]);
    const bytes = batchBytes(segment, 0);
    expectCorrupt(() => decodeBatch(bytes.subarray(0, bytes.length - 1)), /truncated/);
    expectCorrupt(() => decodeBatch(bytes.subarray(0, 10)), /truncated/);
    expectCorrupt(() => decodeBatch(new Uint8Array(0)), /truncated/);
    expectCorrupt(() => decodeBatch(new Uint8Array([...bytes, 0])), /trailing/);
    expectCorrupt(() => readBatchHeader(new Uint8Array([...bytes, 0])), /trailing/);
  });

  it('rejects a whole segment that is truncated or has trailing bytes', () => {
    const segment = encodeSegment([{ partition: 0, compression: 'gzip', records: [{ key: null, value: utf8('v'), headers: [], timestamp: 1 }] }]);
    expect(decodeSegment(segment.bytes)).toHaveLength(1);
    expectCorrupt(() => decodeSegment(segment.bytes.subarray(0, segment.bytes.length - 1)));
    expectCorrupt(() => decodeSegment(new Uint8Array([...segment.bytes, 0])));
  });

  it('rejects a flip of every byte of the header and directory', () => {
    const segment = encodeSegment([
      { partition: 4, compression: 'none', records: [{ key: null, value: utf8('a'), headers: [], timestamp: 10 }] },
      { partition: 5, compression: 'gzip', records: [{ key: null, value: utf8('b'), headers: [], timestamp: 20 }] },
    ]);
    for (let i = 0; i < segment.batches[0]!.position; i++) {
      for (const xor of [0x01, 0x80, 0xff]) {
        const bytes = segment.bytes.slice();
        bytes[i]! ^= xor;
        expectCorrupt(() => decodeSegmentDirectory(bytes));
      }
    }
  });

  it('rejects unknown compression codes and unknown attribute bits', () => {
    const segment = encodeSegment([{ partition: 0, compression: 'none', records: [{ key: null, value: utf8('v'), headers: [], timestamp: 1 }] }]);
    // attributes (bytes 2-3) sit before the crc field, so these edits keep the checksum valid.
    for (const code of [2, 3, 7]) {
      const bytes = batchBytes(segment, 0);
      bytes[3] = code;
      expectCorrupt(() => decodeBatch(bytes), /unsupported compression/);
      expectCorrupt(() => readBatchHeader(bytes), /unsupported compression/);
    }
    const bytes = batchBytes(segment, 0);
    bytes[2] = 0x01;
    expectCorrupt(() => decodeBatch(bytes), /unknown bits/);
  });

  it('rejects an object that is not a segment', () => {
    expectCorrupt(() => decodeSegmentDirectory(new Uint8Array(8)), /truncated/);
    expectCorrupt(() => decodeSegmentDirectory(new Uint8Array(64)), /magic/);
  });
});

describe('segment encoder', () => {
  it('gzip shrinks a compressible batch', () => {
    const records = Array.from({ length: 200 }, (_, i): SegmentRecord => ({
      key: utf8(`user-${i % 10}`),
      value: utf8(JSON.stringify({ event: 'page_view', path: '/products/widgets', session: 'abcdef0123456789' })),
      headers: [{ key: 'content-type', value: utf8('application/json') }],
      timestamp: 1_700_000_000_000 + i,
    }));
    const plain = encodeSegment([{ partition: 0, compression: 'none', records }]);
    const gzipped = encodeSegment([{ partition: 0, compression: 'gzip', records }]);
    expect(gzipped.batches[0]!.length).toBeLessThan(plain.batches[0]!.length / 5);
    expect(decodeBatch(batchBytes(gzipped, 0))).toEqual(expectedRecords(records));
  });

  it('rejects misuse with RangeError', () => {
    const records: SegmentRecord[] = [{ key: null, value: null, headers: [], timestamp: 0 }];
    expect(() => encodeSegment([])).toThrow(RangeError);
    expect(() => encodeSegment([{ partition: 0, compression: 'none', records: [] }])).toThrow(RangeError);
    expect(() => encodeSegment([{ partition: 1, compression: 'none', records }, { partition: 1, compression: 'gzip', records }])).toThrow(RangeError);
    expect(() => encodeSegment([{ partition: -1, compression: 'none', records }])).toThrow(RangeError);
    expect(() => encodeSegment([{ partition: 0, compression: 'zstd' as 'none', records }])).toThrow(RangeError);
    expect(() => encodeSegment([{ partition: 0, compression: 'none', records: [{ ...records[0]!, timestamp: 1.5 }] }])).toThrow(RangeError);
  });

  it('exports the format identifiers', () => {
    expect(SEGMENT_MAGIC).toBe('KQSG');
    expect(SEGMENT_VERSION).toBe(1);
  });
});

describe('segment format v1 golden bytes', () => {
  // Any change here is a format change: bump SEGMENT_VERSION and update docs/segment-format.md.
  const t = 1_700_000_000_000; // 0x0000018bcfe56800
  const partition3: SegmentRecord[] = [
    { key: utf8('k'), value: utf8('v'), headers: [], timestamp: t },
    { key: null, value: new Uint8Array(0), headers: [{ key: 'h', value: null }], timestamp: t - 1 },
    { key: new Uint8Array(0), value: null, headers: [], timestamp: t + 2 ** 40 }, // delta beyond 32 bits
  ];
  const partition0: SegmentRecord[] = [{ key: null, value: new Uint8Array([1, 2, 3]), headers: [], timestamp: 5 }];
  const segment = encodeSegment([
    { partition: 3, compression: 'none', records: partition3 },
    { partition: 0, compression: 'none', records: partition0 },
  ]);

  const expected = [
    // header: magic, version, flags, reserved, directoryLength = 68, directoryCrc
    '4b515347', '01', '00', '0000', '00000044', 'c8513a65',
    // directory: entryCount = 2
    '00000002',
    // entry: partition 3, position 84, length 63, 3 records, firstTimestamp t, maxTimestamp t + 2^40
    '00000003', '00000054', '0000003f', '00000003', '0000018bcfe56800', '0000028bcfe56800',
    // entry: partition 0, position 147, length 42, 1 record, timestamps 5
    '00000000', '00000093', '0000002a', '00000001', '0000000000000005', '0000000000000005',
    // batch (partition 3): magic, version, attributes, crc, recordCount, first, max, payloadLength = 31
    '4b', '01', '0000', '2ef0f4f1', '00000003', '0000018bcfe56800', '0000028bcfe56800', '0000001f',
    // record 0: length 8, attrs, tsDelta 0, offsetDelta 0, key "k", value "v", 0 headers
    '08', '00', '00', '00', '026b', '0276', '00',
    // record 1: length 9, attrs, tsDelta -1, offsetDelta 1, null key, empty value, 1 header "h" = null
    '09', '00', '01', '01', '01', '00', '01', '0168', '01',
    // record 2: length 11, attrs, tsDelta 2^40 (zigzag 2^41), offsetDelta 2, empty key, null value, 0 headers
    '0b', '00', '808080808040', '02', '00', '01', '00',
    // batch (partition 0): header, payloadLength = 10
    '4b', '01', '0000', '2993d62e', '00000001', '0000000000000005', '0000000000000005', '0000000a',
    // record 0: length 9, attrs, tsDelta 0, offsetDelta 0, null key, value 010203, 0 headers
    '09', '00', '00', '00', '01', '06010203', '00',
  ].join('');

  it('encodes to the exact v1 bytes', () => {
    expect(hex(segment.bytes.subarray(0, 16))).toBe(expected.slice(0, 32));
    expect(hex(segment.bytes)).toBe(expected);
    expect(segment.batches).toEqual([
      { partition: 3, position: 84, length: 63, recordCount: 3, firstTimestamp: t, maxTimestamp: t + 2 ** 40 },
      { partition: 0, position: 147, length: 42, recordCount: 1, firstTimestamp: 5, maxTimestamp: 5 },
    ]);
  });

  it('decodes the v1 bytes', () => {
    const decoded = decodeSegment(Buffer.from(expected, 'hex'));
    expect(decoded.map((b) => b.records)).toEqual([expectedRecords(partition3), expectedRecords(partition0)]);
  });
});
