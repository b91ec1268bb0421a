// Per-file isolation on the shared local stack: every call gets its own bucket and tables.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { configFromEnv, type QueueConfig } from '../../lib/config.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { provision } from '../../local/provision.ts';

export function testConfig(): QueueConfig {
  const prefix = `t-${randomBytes(5).toString('hex')}`;
  return configFromEnv({
    QUEUE_NAME_PREFIX: prefix,
    QUEUE_DYNAMODB_ENDPOINT: inject('dynamoEndpoint'),
    QUEUE_S3_ENDPOINT: inject('s3Endpoint'),
    AWS_REGION: 'us-east-1',
    // `QUEUE_INLINE_MAX_BYTES=0 npx vitest run` runs every test through the S3 intake path.
    QUEUE_INLINE_MAX_BYTES: process.env.QUEUE_INLINE_MAX_BYTES,
  });
}

export async function testStorage(config: QueueConfig = testConfig()): Promise<Storage> {
  const storage = createStorage(config);
  await provision(storage);
  return storage;
}

/** The same tables and bucket, with requests of at most `inlineMaxBytes` encoded bytes written inline. */
export function withInlineMaxBytes(storage: Storage, inlineMaxBytes: number): Storage {
  return { ...storage, config: { ...storage.config, inlineMaxBytes } };
}

/** The same tables and bucket, with every produce request going through an S3 intake object (no small writes). */
export function withIntakeObjects(storage: Storage): Storage {
  return withInlineMaxBytes(storage, 0);
}
