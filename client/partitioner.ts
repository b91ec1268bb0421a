// Kafka's default partitioner for keyed records, bit-identical to the Java client's (and the
// server's): toPositive(murmur2(key)) % partitions. The idempotent producer names each record's
// partition with it (it numbers each partition's records, so it must know where they go); the
// server partitions keyed records the same way when a request names none.
import { utf8 } from './bytes.ts';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 as a signed 32-bit int. Java ints wrap at 32 bits: Math.imul, `| 0` and `>>>` keep that. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const end4 = length & ~3;
  for (let i = 0; i < end4; i += 4) {
    let k = Math.imul(data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24), M);
    k = Math.imul(k ^ (k >>> 24), M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & 3;
  if (tail === 3) h ^= data[end4 + 2]! << 16;
  if (tail >= 2) h ^= data[end4 + 1]! << 8;
  if (tail >= 1) h = Math.imul(h ^ data[end4]!, M);
  h = Math.imul(h ^ (h >>> 13), M);
  return (h ^ (h >>> 15)) | 0;
}

/** The partition Kafka (and this queue) puts a record with this key in. */
export function partitionForKey(key: string | Uint8Array, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  return (murmur2(typeof key === 'string' ? utf8(key) : key) & 0x7fffffff) % partitions;
}
