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
