// The five functions as Lambda runs them: each bundled exactly as the CDK construct deploys it (one
// self-contained ESM file), loaded fresh with its configuration in the environment, and invoked with
// Function URL events (maintenance: stream and scheduled events) against the local stack. Catches
// what only shows after bundling (a dynamic require, a missing module, wiring of the per-function apps).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleHandler, FUNCTION_ROLES, type FunctionRole, type HttpRole } from '../../cdk/bundling.ts';
import type { MaintenanceEvent } from '../../lambdas/maintenance.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import type { Storage } from '../../lib/storage.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { collectingStream, functionUrlEvent, installStreamingRuntime, logStreamEvent, scheduledEvent } from '../support/lambda-runtime.ts';
import { testConfig, testStorage } from '../support/stack.ts';

type BufferedHandler = (event: unknown, context: unknown) => Promise<{ statusCode: number; body?: string }>;
type StreamingHandler = (event: unknown, stream: unknown, context: unknown) => Promise<void>;
type MaintenanceHandler = (event: MaintenanceEvent, context: unknown) => Promise<unknown>;

const dir = mkdtempSync(join(tmpdir(), 'queue-bundles-'));
const handlers = {} as Record<FunctionRole, unknown>;
let streamed: Array<{ statusCode: number }>;
let storage: Storage;
const savedEnv = { ...process.env };

beforeAll(async () => {
  const config = testConfig();
  storage = await testStorage(config);
  Object.assign(process.env, {
    QUEUE_BUCKET: config.bucket,
    QUEUE_TOPICS_TABLE: config.topicsTable,
    QUEUE_LOG_TABLE: config.logTable,
    QUEUE_GROUPS_TABLE: config.groupsTable,
    QUEUE_DYNAMODB_ENDPOINT: config.dynamoEndpoint,
    QUEUE_S3_ENDPOINT: config.s3Endpoint,
    AWS_REGION: config.region,
    QUEUE_AUTH_MODE: 'iam',
  });
  streamed = installStreamingRuntime();
  for (const role of FUNCTION_ROLES) {
    const file = join(dir, role, 'index.mjs');
    await bundleHandler(role, file);
    handlers[role] = ((await import(pathToFileURL(file).href)) as { handler: unknown }).handler;
  }
}, 120_000);

afterAll(() => {
  process.env = savedEnv;
  rmSync(dir, { recursive: true, force: true });
});

async function call(role: Exclude<HttpRole, 'produce'>, method: string, path: string, body?: unknown) {
  const res = await (handlers[role] as BufferedHandler)(functionUrlEvent(method, path, body), {});
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

describe('bundled handlers', () => {
  it('create, produce, fetch and consume through the four deployed bundles', async () => {
    expect((await call('admin', 'POST', '/v1/topics', { name: 'bundled', partitions: 2 })).status).toBe(201);

    const { stream, text } = collectingStream();
    await (handlers.produce as StreamingHandler)(functionUrlEvent('POST', '/v1/topics/bundled/records', { records: [{ value: 'one', partition: 1 }, { value: 'two', partition: 1 }] }), stream, {});
    expect(streamed.at(-1)?.statusCode).toBe(200);
    expect(JSON.parse(text()).offsets.map((o: { offset: number }) => o.offset)).toEqual([0, 1]);

    const fetched = await call('fetch', 'GET', '/v1/topics/bundled/partitions/1/records?offset=0');
    expect(fetched.status).toBe(200);
    expect(fetched.body.records.map((r: { value: string }) => r.value)).toEqual(['one', 'two']);

    const joined = await call('groups', 'POST', '/v1/groups/bundled-group/members', { topics: ['bundled'], autoOffsetReset: 'earliest' });
    expect(joined.status).toBe(201);
    const polled = await call('groups', 'POST', `/v1/groups/bundled-group/members/${joined.body.memberId}/poll`, {});
    expect(polled.body.records.map((r: { value: string }) => r.value)).toEqual(['one', 'two']);
  });

  it('maintenance rolls segments after activity (stream event) and on the schedule', async () => {
    expect((await call('admin', 'POST', '/v1/topics', { name: 'maintained', partitions: 2, config: { 'segment.ms': 1 } })).status).toBe(201);
    const produce = (partition: number) => (handlers.produce as StreamingHandler)(functionUrlEvent('POST', '/v1/topics/maintained/records', { records: [{ value: 'v', partition }] }), collectingStream().stream, {});
    const segments = async () => (await call('admin', 'GET', '/v1/topics/maintained')).body.partitions.map((p: { segments: number }) => p.segments);
    const maintenance = handlers.maintenance as MaintenanceHandler;

    await produce(0);
    const { topicId } = await getTopic(storage, 'maintained');
    expect(await maintenance(logStreamEvent([{ p: logPartitionKey(topicId, 0), o: 0 }]), {})).toEqual({ batchItemFailures: [] });
    expect(await segments()).toEqual([1, 0]);

    await produce(1);
    await maintenance(scheduledEvent(), {});
    expect(await segments()).toEqual([1, 1]);
  });

  it('each function serves only its own routes', async () => {
    const res = await call('fetch', 'POST', '/v1/topics', { name: 'nope', partitions: 1 });
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/serves: fetch/);
    expect((await call('admin', 'GET', '/v1/health')).body).toEqual({ status: 'ok' });
  });
});
