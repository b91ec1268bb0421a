// Runtime configuration from the environment. The same code talks to the local emulators, to
// LocalStack (AWS_ENDPOINT_URL) or to real AWS (no endpoint: the SDK's default chain).
export interface QueueConfig {
  region: string;
  bucket: string;
  topicsTable: string;
  logTable: string;
  groupsTable: string;
  /** Per-service endpoints; undefined means the SDK's default (AWS, or AWS_ENDPOINT_URL). */
  s3Endpoint?: string;
  dynamoEndpoint?: string;
  /** Path-style S3 addressing, needed by emulators. */
  s3ForcePathStyle: boolean;
  /**
   * A produce request whose encoded intake object is at most this many bytes skips the S3 PUT:
   * each partition's batch is stored inline in its index entry (docs/architecture.md, "Small
   * writes"). 0 sends every request through S3.
   */
  inlineMaxBytes: number;
}

/** The default inline threshold: below it an item's extra write units cost less than a PUT. */
export const DEFAULT_INLINE_MAX_BYTES = 4096;
/** Inline batches stay far below DynamoDB's 400 KB item limit (and its per-partition write rate). */
export const MAX_INLINE_MAX_BYTES = 64 * 1024;

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): QueueConfig {
  const prefix = env.QUEUE_NAME_PREFIX ?? 'queue';
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    bucket: env.QUEUE_BUCKET ?? `${prefix}-segments`,
    topicsTable: env.QUEUE_TOPICS_TABLE ?? `${prefix}-topics`,
    logTable: env.QUEUE_LOG_TABLE ?? `${prefix}-log`,
    groupsTable: env.QUEUE_GROUPS_TABLE ?? `${prefix}-groups`,
    s3Endpoint: env.QUEUE_S3_ENDPOINT ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL,
    dynamoEndpoint: env.QUEUE_DYNAMODB_ENDPOINT ?? env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL,
    s3ForcePathStyle: (env.QUEUE_S3_FORCE_PATH_STYLE ?? (env.QUEUE_S3_ENDPOINT || env.AWS_ENDPOINT_URL ? 'true' : 'false')) === 'true',
    inlineMaxBytes: inlineMaxBytesFrom(env.QUEUE_INLINE_MAX_BYTES),
  };
}

function inlineMaxBytesFrom(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_INLINE_MAX_BYTES;
  const bytes = Number(value);
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_INLINE_MAX_BYTES) {
    throw new Error(`QUEUE_INLINE_MAX_BYTES must be an integer from 0 to ${MAX_INLINE_MAX_BYTES}, not ${JSON.stringify(value)}`);
  }
  return bytes;
}
