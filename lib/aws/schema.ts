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
 * The partition logs: per partition key `p` = "<topicId>/<partition>", the state at o = -2, the
 * head at o = -1 (sequencer state) and one index entry per uncompacted batch or gap at
 * o = baseOffset; segments, trash and pending releases under keys of their own (docs/architecture.md).
 */
export const LOG_TABLE: TableSchema = { partitionKey: { name: 'p', type: 'S' }, sortKey: { name: 'o', type: 'N' } };

/** Consumer groups: the group item and committed offsets under one partition key per group. */
export const GROUPS_TABLE: TableSchema = { partitionKey: { name: 'g', type: 'S' }, sortKey: { name: 'k', type: 'S' }, ttlAttribute: 'expiresAt' };
