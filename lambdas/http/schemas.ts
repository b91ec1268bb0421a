// Request schemas of HTTP API v1 (docs/openapi.json documents the same shapes; test/api/openapi.test.ts checks the bounds).
import * as z from 'zod';
import { MAX_SEQUENCE } from '../../lib/producers/idempotence.ts';
import { MAX_TRANSACTION_TIMEOUT_MS } from '../../lib/producers/transactions.ts';

export const MAX_RECORDS_PER_REQUEST = 10_000;
export const MAX_FETCH_RECORDS = 10_000;
export const MAX_FETCH_BYTES = 4 * 1024 * 1024;
export const MAX_WAIT_MS = 20_000;
/** The Lambda synchronous invocation payload limit: bodies above it never reach a function. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;
/** The same limit bounds a buffered response (the fetch and groups functions), its JSON envelope included. */
export const MAX_RESPONSE_BYTES = MAX_BODY_BYTES;
/**
 * Room kept in a fetch or poll response for everything but its records. A fetch adds three offsets
 * and at most MAX_GAPS_PER_FETCH gaps (under 5 KB); a poll its member's assignment, at most
 * MAX_SUBSCRIBED_TOPICS names of 249 characters with MAX_PARTITIONS partitions each (under 450 KB).
 * test/api/response-size.test.ts checks both bounds.
 */
export const RESPONSE_ENVELOPE_BYTES = 512 * 1024;

const nonNegativeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const producerIdField = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const producerEpochField = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** Kafka allows any string; ours also names a DynamoDB key, so it is bounded and printable. */
const transactionalIdField = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'transactionalId must be printable ASCII without spaces');
export const transactionalIdParam = transactionalIdField;
export const isolationField = z.enum(['read_committed', 'read_uncommitted']);

export const createTopicBody = z.strictObject({
  name: z.string(),
  partitions: z.number(),
  config: z.record(z.string(), z.unknown()).optional(),
});

export const addPartitionsBody = z.strictObject({ count: z.number() });

/** Kafka's IncrementalAlterConfigs: a value sets a key, null restores its default. */
export const alterConfigBody = z.strictObject({ config: z.record(z.string(), z.unknown()) });

/** Kafka's DeleteRecords: per partition, the new log start; -1 means the high watermark. */
export const deleteRecordsBody = z.strictObject({
  partitions: z.array(z.strictObject({ partition: z.number().int().nonnegative().max(1_000_000), offset: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER) }))
    .min(1, 'at least one partition is required')
    .refine((ps) => new Set(ps.map((p) => p.partition)).size === ps.length, 'each partition may appear once'),
});

export const produceBody = z.strictObject({
  records: z.array(z.strictObject({
    key: z.string().nullable().optional(),
    value: z.string().nullable(),
    headers: z.record(z.string(), z.string()).optional(),
    partition: nonNegativeInt.optional(),
    timestamp: nonNegativeInt.optional(),
  })).min(1, 'at least one record is required').max(MAX_RECORDS_PER_REQUEST, `at most ${MAX_RECORDS_PER_REQUEST} records per request`),
  acks: z.enum(['all', '1', '0']).optional(),
  encoding: z.enum(['utf8', 'base64']).optional(),
  // An idempotent producer (POST /v1/producers): its id, epoch and each partition's first sequence.
  producerId: producerIdField.optional(),
  producerEpoch: producerEpochField.optional(),
  sequences: z.array(z.strictObject({ partition: nonNegativeInt, baseSequence: z.number().int().min(0).max(MAX_SEQUENCE) })).min(1).optional(),
  transactionalId: transactionalIdField.optional(),
}).superRefine((body, ctx) => {
  const given = [body.producerId, body.producerEpoch, body.sequences].filter((f) => f !== undefined).length;
  if (given !== 0 && given !== 3) ctx.addIssue({ code: 'custom', message: 'producerId, producerEpoch and sequences go together: give all three or none' });
  if (body.transactionalId !== undefined && given === 0) ctx.addIssue({ code: 'custom', message: 'a transactional write needs producerId, producerEpoch and sequences' });
  if (given === 3 && body.acks === '0') ctx.addIssue({ code: 'custom', message: 'an idempotent request needs acks all or 1: with acks 0 the producer never learns its batch was written' });
});

/** Kafka's InitProducerId. */
export const initProducerBody = z.strictObject({
  transactionalId: transactionalIdField.optional(),
  transactionTimeoutMs: z.number().int().min(1000).max(MAX_TRANSACTION_TIMEOUT_MS).optional(),
});

const producerIdentity = { producerId: producerIdField, producerEpoch: producerEpochField };

/** Kafka's EndTxn. */
export const endTransactionBody = z.strictObject(producerIdentity);

/** Kafka's TxnOffsetCommit (sendOffsetsToTransaction). */
export const transactionOffsetsBody = z.strictObject({
  ...producerIdentity,
  groupId: z.string().min(1).max(255),
  memberId: z.string().min(1).max(255),
  memberEpoch: nonNegativeInt,
  offsets: z.array(z.strictObject({ topic: z.string().min(1).max(249), partition: nonNegativeInt, offset: nonNegativeInt, metadata: z.string().max(4096).optional() })).min(1).max(98),
});

/** Query parameters arrive as strings; each must be a plain non-negative decimal integer. */
const intParam = (name: string, min: number, max: number) =>
  z.string().regex(/^\d{1,16}$/, `${name} must be a non-negative integer`).transform(Number).pipe(z.number().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`));

export const fetchQuery = z.strictObject({
  offset: intParam('offset', 0, Number.MAX_SAFE_INTEGER),
  maxRecords: intParam('maxRecords', 1, MAX_FETCH_RECORDS).optional(),
  maxBytes: intParam('maxBytes', 1, MAX_FETCH_BYTES).optional(),
  waitMs: intParam('waitMs', 0, MAX_WAIT_MS).optional(),
  encoding: z.enum(['utf8', 'base64']).optional(),
  isolation: isolationField.optional(),
});

export const partitionParam = intParam('partition', 0, 1_000_000);

/** Kafka's ListOffsets: a millisecond timestamp, or earliest / latest. */
export const offsetsQuery = z.strictObject({
  timestamp: z.union([z.enum(['earliest', 'latest']), intParam('timestamp', 0, Number.MAX_SAFE_INTEGER)]),
});
