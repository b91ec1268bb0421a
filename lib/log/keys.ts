// Key layout of the log table (see docs/architecture.md, "Tables").
export const HEAD_OFFSET = -1;

/** Partition key of one partition's log; the topic id (not name) makes a re-created topic start empty. */
export function logPartitionKey(topicId: string, partition: number): string {
  return `${topicId}/${partition}`;
}
