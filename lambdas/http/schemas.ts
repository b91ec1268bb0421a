// Request schemas of HTTP API v1 (docs/openapi.json documents the same shapes; test/api/openapi.test.ts checks the bounds).
import * as z from 'zod';

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
 * and at most MAX_ENTRIES_PER_FETCH gaps (under 5 KB); a poll its member's assignment, at most
 * MAX_SUBSCRIBED_TOPICS names of 249 characters with MAX_PARTITIONS partitions each (under 450 KB).
 * test/api/response-size.test.ts checks both bounds.
 */
export const RESPONSE_ENVELOPE_BYTES = 512 * 1024;

const nonNegativeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

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
});

export const partitionParam = intParam('partition', 0, 1_000_000);

/** Kafka's ListOffsets: a millisecond timestamp, or earliest / latest. */
export const offsetsQuery = z.strictObject({
  timestamp: z.union([z.enum(['earliest', 'latest']), intParam('timestamp', 0, Number.MAX_SAFE_INTEGER)]),
});
