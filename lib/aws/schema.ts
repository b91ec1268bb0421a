// Table key schemas, the single source of truth for local provisioning and the CDK stack.
export interface TableSchema {
  partitionKey: { name: string; type: 'S' | 'N' };
  sortKey?: { name: string; type: 'S' | 'N' };
  /** Attribute holding an epoch-seconds expiry, if items of this table expire. */
  ttlAttribute?: string;
}

/** Topic metadata: one item per topic name. */
export const TOPICS_TABLE: TableSchema = { partitionKey: { name: 'name', type: 'S' } };

/**
 * The partition logs: per partition key `p` = "<topicId>/<partition>", the head item at sort key
 * o = -1 (sequencer state) and one index entry per committed batch or gap at o = baseOffset. The
 * release items of shared intake objects expire.
 */
export const LOG_TABLE: TableSchema = { partitionKey: { name: 'p', type: 'S' }, sortKey: { name: 'o', type: 'N' }, ttlAttribute: 'expiresAt' };

/** Consumer groups: the group item and committed offsets under one partition key per group. */
export const GROUPS_TABLE: TableSchema = { partitionKey: { name: 'g', type: 'S' }, sortKey: { name: 'k', type: 'S' }, ttlAttribute: 'expiresAt' };
