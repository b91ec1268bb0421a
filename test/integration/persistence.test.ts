// `npm start` keeps data in a directory: stopping and restarting the stack loses nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromEnv } from '../../lib/config.ts';
import { createStorage } from '../../lib/storage.ts';
import { createApp } from '../../lambdas/http/app.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { provision } from '../../local/provision.ts';
import { freePort, startLocalStack } from '../../local/stack.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'queue-persist-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function appOnStack(ports: { dynamoPort: number; s3Port: number }) {
  const stack = await startLocalStack({ dataDir, ...ports });
  const storage = createStorage(configFromEnv({ QUEUE_DYNAMODB_ENDPOINT: stack.dynamoEndpoint, QUEUE_S3_ENDPOINT: stack.s3Endpoint, AWS_REGION: 'us-east-1' }));
  await provision(storage);
  return { stack, app: createApp(createServices(storage)) };
}

describe('restart persistence', () => {
  it('topics and records survive a stop and start of the local stack', async () => {
    const ports = { dynamoPort: await freePort(), s3Port: await freePort() };
    const first = await appOnStack(ports);
    expect((await first.app.request('/v1/topics', { method: 'POST', body: JSON.stringify({ name: 'durable', partitions: 2 }) })).status).toBe(201);
    const produced = await first.app.request('/v1/topics/durable/records', { method: 'POST', body: JSON.stringify({ records: [{ value: 'one', partition: 1 }, { value: 'two', partition: 1 }] }) });
    expect(produced.status).toBe(200);
    await first.stack.stop();

    const second = await appOnStack(ports);
    try {
      const page = await second.app.request('/v1/topics/durable/partitions/1/records?offset=0');
      const body = (await page.json()) as { records: Array<{ offset: number; value: string }>; highWatermark: number };
      expect(body.records.map((r) => [r.offset, r.value])).toEqual([[0, 'one'], [1, 'two']]);
      expect(body.highWatermark).toBe(2);
      // And the log continues where it stopped.
      const more = await second.app.request('/v1/topics/durable/records', { method: 'POST', body: JSON.stringify({ records: [{ value: 'three', partition: 1 }] }) });
      expect(((await more.json()) as { offsets: Array<{ offset: number }> }).offsets[0]!.offset).toBe(2);
    } finally {
      await second.stack.stop();
    }
  });
});
