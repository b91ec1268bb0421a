// Key layout of the log table (see docs/architecture.md, "Tables").
export const HEAD_OFFSET = -1;
/** The partition's lifecycle state: leader lease and epoch, log start, end of the segmented prefix. */
export const STATE_OFFSET = -2;

/** Partition key of one partition's log; the topic id (not name) makes a re-created topic start empty. */
export function logPartitionKey(topicId: string, partition: number): string {
  return `${topicId}/${partition}`;
}

/** Partition key of a partition's segment items, each keyed by its end offset (o = base + count). */
export function segmentsPartitionKey(pk: string): string {
  return `${pk}/segments`;
}

/** Partition key of the intake objects a partition's leader is releasing (deleted entries' objects). */
export function releasingPartitionKey(pk: string): string {
  return `${pk}/releasing`;
}

/** Partition key of expired segment objects waiting for their grace period, keyed by when each may go. */
export function trashPartitionKey(pk: string): string {
  return `${pk}/trash`;
}

/** Every partition key that holds items of one partition's log. */
export function partitionItemKeys(pk: string): string[] {
  return [pk, segmentsPartitionKey(pk), releasingPartitionKey(pk), trashPartitionKey(pk), abortedPartitionKey(pk)];
}

/**
 * The topic id and partition of a partition log key; undefined for every other key of the log table
 * (`<pk>/segments` and the other per-partition keys, the `_deleted` and `_orphans` records,
 * `release#<object key>` items).
 */
export function partitionOf(pk: string): { topicId: string; partition: number } | undefined {
  const match = /^([^/#]+)\/(0|[1-9]\d*)$/.exec(pk);
  return match ? { topicId: match[1]!, partition: Number(match[2]) } : undefined;
}

/** Partition key of a partition's aborted transactions, keyed by their marker's offset. */
export function abortedPartitionKey(pk: string): string {
  return `${pk}/aborted`;
}
