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
}

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
  };
}
