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
  });
}

export async function testStorage(config: QueueConfig = testConfig()): Promise<Storage> {
  const storage = createStorage(config);
  await provision(storage);
  return storage;
}
