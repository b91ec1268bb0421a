// Partition selection with Kafka's semantics: explicit partition > key hash (murmur2, identical to the
// Java client so mixed producers agree) > sticky choice for unkeyed records.

import { murmur2, toPositive } from './murmur2.ts';

function assertPartitionCount(numPartitions: number): void {
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new RangeError(`numPartitions must be a positive integer, got ${numPartitions}`);
  }
}

/** Kafka's default keyed partitioning: toPositive(murmur2(key)) % numPartitions. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  assertPartitionCount(numPartitions);
  return toPositive(murmur2(key)) % numPartitions;
}

/**
 * Chooses one partition per produce request for records with no key and no explicit partition, so
 * they form a single batch (Kafka's sticky partitioning). Successive calls rotate round-robin so load
 * evens out across requests; the first choice is random so many Lambda instances (one partitioner
 * each) don't all start on partition 0. Holds no per-topic state: use one instance per topic if
 * per-topic evenness matters.
 */
export class StickyPartitioner {
  readonly #random: () => number;
  /** Last partition returned; undefined until the first call. */
  #last: number | undefined;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  next(numPartitions: number): number {
    assertPartitionCount(numPartitions);
    let p: number;
    if (this.#last === undefined) {
      // Clamp in case an injected random returns exactly 1 (or out of range).
      p = Math.min(numPartitions - 1, Math.max(0, Math.floor(this.#random() * numPartitions)));
      if (!Number.isInteger(p)) p = 0; // NaN from a bad random source
    } else {
      // Modulo keeps the rotation valid if the partition count changed since the last call.
      p = (this.#last + 1) % numPartitions;
    }
    this.#last = p;
    return p;
  }
}

/**
 * Explicit partition wins (caller has range-checked it), then key hash, then the sticky choice.
 * `stickyChoice` is called lazily so requests with only keyed/explicit records don't advance the
 * rotation; the caller memoises it per request so all unkeyed records share one partition.
 */
export function choosePartition(
  record: { key: Uint8Array | null; partition?: number },
  numPartitions: number,
  stickyChoice: () => number,
): number {
  if (record.partition !== undefined) return record.partition;
  if (record.key !== null) return partitionForKey(record.key, numPartitions);
  return stickyChoice();
}
