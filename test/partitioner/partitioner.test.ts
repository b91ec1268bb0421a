import { createRequire } from 'node:module';
import fc from 'fast-check';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { murmur2, toPositive } from '../../lib/partitioner/murmur2.ts';
import { StickyPartitioner, choosePartition, partitionForKey } from '../../lib/partitioner/partitioner.ts';

// Oracles: kafkajs's Java-compatible implementation, used independently of ours.
// The raw murmur2 is an untyped internal module, so load it via a typed createRequire.
// kafkajs hashes `Buffer.isBuffer(key) ? key : Buffer.from(String(key))`: a plain Uint8Array would be
// hashed as the string "1,2,3", so keys must be handed over as real Buffers.
const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number;

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const metadataCache = new Map<number, PartitionMetadata[]>();
function metadataFor(numPartitions: number): PartitionMetadata[] {
  let md = metadataCache.get(numPartitions);
  if (!md) {
    md = Array.from({ length: numPartitions }, (_, i) => ({
      partitionId: i,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    metadataCache.set(numPartitions, md);
  }
  return md;
}

// Keyed records never touch the partitioner's per-topic round-robin counter, so one instance suffices.
const kafkajsPartition = Partitioners.DefaultPartitioner();
function oraclePartition(key: Uint8Array, numPartitions: number): number {
  return kafkajsPartition({ topic: 't', partitionMetadata: metadataFor(numPartitions), message: { key: asBuffer(key), value: null } });
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('murmur2', () => {
  // Kafka's UtilsTest.testMurmur2.
  const javaVectors: Array<[Uint8Array, number]> = [
    [utf8('21'), -973932308],
    [utf8('foobar'), -790332482],
    [utf8('a-little-bit-long-string'), -985981536],
    [utf8('a-little-bit-longer-string'), -1486304829],
    [utf8('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'), -58897971],
    [new Uint8Array([0x61, 0x62, 0x63]), 479470107],
  ];

  it.each(javaVectors)('matches the Java client vector %#', (data, expected) => {
    expect(murmur2(data)).toBe(expected);
    expect(kafkajsMurmur2(asBuffer(data))).toBe(expected); // the oracle agrees too
  });

  it('matches kafkajs for arbitrary bytes (all tail lengths, high bytes)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (data) => {
        const h = murmur2(data);
        expect(h).toBe(kafkajsMurmur2(asBuffer(data)));
        expect(h).toBe(h | 0); // signed int32
      }),
      { numRuns: 2000 },
    );
  });

  it('covers every tail length 0..3 with 0xff bytes (sign-extension traps)', () => {
    for (let len = 0; len <= 11; len++) {
      const data = new Uint8Array(len).fill(0xff);
      expect(murmur2(data)).toBe(kafkajsMurmur2(asBuffer(data)));
    }
  });

  it('hashes only the view, not the whole backing buffer', () => {
    const backing = utf8('xxfoobarxx');
    expect(murmur2(backing.subarray(2, 8))).toBe(-790332482);
  });

  it('toPositive clears the sign bit like Kafka', () => {
    expect(toPositive(-1)).toBe(0x7fffffff);
    expect(toPositive(-2147483648)).toBe(0);
    expect(toPositive(5)).toBe(5);
    expect(toPositive(-790332482)).toBe(-790332482 & 0x7fffffff);
  });
});

describe('partitionForKey', () => {
  it('equals kafkajs DefaultPartitioner for arbitrary keys and partition counts', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.integer({ min: 1, max: 1000 }),
        (key, n) => {
          const p = partitionForKey(key, n);
          expect(p).toBe(oraclePartition(key, n));
          expect(p >= 0 && p < n).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('explicitly covers each tail length mod 4', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 49 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 1000 }), (blocks, tail, n) => {
        const key = new Uint8Array(blocks * 4 + tail).map((_, i) => (i * 37 + tail) & 0xff);
        expect(partitionForKey(key, n)).toBe(oraclePartition(key, n));
      }),
    );
  });

  // Regression pins for a 6-partition topic (values computed with kafkajs).
  it.each([
    ['', 3],
    ['a', 4],
    ['user-42', 4],
    ['order-1001', 0],
    ['customer:7f3a9c', 5],
    ['foobar', 0],
  ])('key %j -> partition %i of 6', (key, expected) => {
    expect(partitionForKey(utf8(key), 6)).toBe(expected);
    expect(oraclePartition(utf8(key), 6)).toBe(expected);
  });

  it('rejects bad partition counts', () => {
    for (const n of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => partitionForKey(utf8('k'), n)).toThrow(RangeError);
    }
  });
});

describe('StickyPartitioner', () => {
  it('starts at the partition chosen by the injected random', () => {
    expect(new StickyPartitioner(() => 0).next(6)).toBe(0);
    expect(new StickyPartitioner(() => 0.5).next(6)).toBe(3);
    expect(new StickyPartitioner(() => 0.99).next(6)).toBe(5);
    // A random source returning 1 (out of [0,1)) must still yield a valid partition.
    expect(new StickyPartitioner(() => 1).next(6)).toBe(5);
  });

  it('calls random only once, then rotates round-robin', () => {
    let calls = 0;
    const sp = new StickyPartitioner(() => {
      calls++;
      return 0.5;
    });
    const seq = Array.from({ length: 8 }, () => sp.next(6));
    expect(seq).toEqual([3, 4, 5, 0, 1, 2, 3, 4]);
    expect(calls).toBe(1);
  });

  it('N*k calls hit every partition exactly k times, from any start', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 5 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, k, r) => {
        const sp = new StickyPartitioner(() => r);
        const counts = new Array<number>(n).fill(0);
        for (let i = 0; i < n * k; i++) {
          const p = sp.next(n);
          expect(Number.isInteger(p) && p >= 0 && p < n).toBe(true);
          counts[p]!++;
        }
        expect(counts.every((c) => c === k)).toBe(true);
      }),
    );
  });

  it('defaults to Math.random and stays in range', () => {
    const sp = new StickyPartitioner();
    for (let i = 0; i < 20; i++) {
      const p = sp.next(7);
      expect(p >= 0 && p < 7).toBe(true);
    }
  });

  it('stays in range when the partition count changes', () => {
    const sp = new StickyPartitioner(() => 0.99);
    expect(sp.next(10)).toBe(9);
    expect(sp.next(3)).toBe(1);
    expect(sp.next(3)).toBe(2);
  });

  it('throws RangeError for invalid partition counts', () => {
    const sp = new StickyPartitioner(() => 0);
    for (const n of [0, -3, 2.5, Number.NaN]) {
      expect(() => sp.next(n)).toThrow(RangeError);
    }
  });
});

describe('choosePartition', () => {
  const never = (): number => {
    throw new Error('sticky choice must not be consulted');
  };

  it('explicit partition wins over key and sticky', () => {
    expect(choosePartition({ key: utf8('user-42'), partition: 2 }, 6, never)).toBe(2);
    expect(choosePartition({ key: null, partition: 0 }, 6, never)).toBe(0);
  });

  it('keyed records hash and do not advance the sticky rotation', () => {
    expect(choosePartition({ key: utf8('user-42') }, 6, never)).toBe(4);
    expect(choosePartition({ key: new Uint8Array(0) }, 6, never)).toBe(3); // empty key is still a key
  });

  it('unkeyed records use the sticky choice, shared by a whole request', () => {
    const sp = new StickyPartitioner(() => 0.5);
    // Per-request memoisation as a caller would do it: one rotation step per request.
    const produce = (records: Array<{ key: Uint8Array | null; partition?: number }>): number[] => {
      let chosen: number | undefined;
      const sticky = (): number => (chosen ??= sp.next(6));
      return records.map((r) => choosePartition(r, 6, sticky));
    };
    expect(produce([{ key: null }, { key: utf8('user-42') }, { key: null }])).toEqual([3, 4, 3]);
    expect(produce([{ key: utf8('order-1001') }])).toEqual([0]); // keyed-only: rotation untouched
    expect(produce([{ key: null }, { key: null }])).toEqual([4, 4]);
  });
});
