// Port of Kafka's Java `org.apache.kafka.common.utils.Utils.murmur2`. It must stay bit-identical so
// that keyed records land on the same partition a Java (or kafkajs) producer would pick.
// Java ints wrap at 32 bits: Math.imul gives the low 32 bits of the product, `| 0` / `^` keep values
// as signed int32, and `>>>` matches Java's unsigned shift.

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Kafka's murmur2 hash of `data`, as a signed 32-bit int (same value Java returns). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const end4 = length & ~3;

  // Little-endian 4-byte blocks.
  for (let i = 0; i < end4; i += 4) {
    let k = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) | 0;
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }

  // Tail: equivalent to Java's fall-through switch (case 3 -> 2 -> 1), written as ifs because the
  // project forbids switch fall-through.
  const tail = length & 3;
  if (tail !== 0) {
    if (tail === 3) h ^= data[end4 + 2]! << 16;
    if (tail >= 2) h ^= data[end4 + 1]! << 8;
    h ^= data[end4]!;
    h = Math.imul(h, M);
  }

  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive`: clears the sign bit (not Math.abs, so MIN_VALUE maps to 0, not overflow). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}
