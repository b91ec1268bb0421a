// What the benchmark sections run on: the dated price table, and storage on the local stack with
// tables and a bucket of its own (a section that needs a stack of nothing but its own topics gets
// another one on the same emulators).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { configFromEnv } from '../lib/config.ts';
import { createStorage, type Storage } from '../lib/storage.ts';
import { createServices } from '../lambdas/http/services.ts';
import { createTopic } from '../lib/topics/topic-store.ts';
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

/** Produce and fetch pairs that bring a fresh DynamoDB Local up to speed (its JIT takes a few hundred). */
const WARM_UP_PAIRS = 400;

/**
 * Runs WARM_UP_PAIRS 1 KiB produce (acks=all) and fetch pairs on a topic of its own, with clients
 * of its own, so that the first section measured does not pay for a cold emulator: Lambda time is
 * priced from measured latency, and a cold DynamoDB Local roughly doubles it.
 */
export async function warmUp(storage: Storage): Promise<void> {
  const own = createStorage(storage.config);
  try {
    const { producer, fetcher } = createServices(own);
    const topic = `bench-warm-up-${randomBytes(3).toString('hex')}`;
    await createTopic(own, { name: topic, partitions: 1 });
    const records = [{ key: null, value: randomBytes(1024), headers: [] }];
    for (let i = 0; i < WARM_UP_PAIRS; i++) {
      const [written] = await producer.produce(topic, records, 'all');
      await fetcher.fetch({ topic, partition: 0, offset: written!.offset, maxRecords: 1, maxBytes: 1 << 20, waitMs: 0 });
    }
  } finally {
    closeStorage(own);
  }
}

/** Closes the clients' sockets. */
export function closeStorage(storage: Storage | undefined): void {
  storage?.s3.destroy();
  storage?.ddb.destroy();
}
