// What the benchmark sections run on: the dated price table, and storage on the local stack with
// tables and a bucket of its own (a section that needs a stack of nothing but its own topics gets
// another one on the same emulators).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { configFromEnv } from '../lib/config.ts';
import { createStorage, type Storage } from '../lib/storage.ts';
import { provision } from '../local/provision.ts';
import { parsePrices, type PriceTable } from './cost-model.ts';

export function loadPrices(): PriceTable {
  return parsePrices(JSON.parse(readFileSync(new URL('./prices.json', import.meta.url), 'utf8')));
}

/** New clients on freshly provisioned tables and bucket, named `bench-<random>`. */
export async function provisionedStorage(endpoints: { dynamoEndpoint?: string; s3Endpoint?: string }): Promise<Storage> {
  const storage = createStorage(configFromEnv({
    QUEUE_NAME_PREFIX: `bench-${randomBytes(3).toString('hex')}`,
    QUEUE_DYNAMODB_ENDPOINT: endpoints.dynamoEndpoint,
    QUEUE_S3_ENDPOINT: endpoints.s3Endpoint,
    AWS_REGION: 'us-east-1',
  }));
  await provision(storage);
  return storage;
}

/** Closes the clients' sockets. */
export function closeStorage(storage: Storage | undefined): void {
  storage?.s3.destroy();
  storage?.ddb.destroy();
}
