// The produce function's Lambda adapter: with acks=0 the HTTP response is complete before the
// records are persisted, and the invocation does not return until they are (a frozen Lambda would
// otherwise never finish the work). Runs the real handler against the local stack, with a stand-in
// for the Lambda runtime's `awslambda` streaming global.
import type { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../lambdas/http/app.ts';
import { streamingHandler } from '../../lambdas/http/lambda.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { createTopic } from '../../lib/topics/topic-store.ts';
import type { Storage } from '../../lib/storage.ts';
import { isPutOf, withDynamoFaults } from '../support/faults.ts';
import { collectingStream, functionUrlEvent, installStreamingRuntime } from '../support/lambda-runtime.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
let responses: Array<{ statusCode: number }>;

beforeAll(async () => {
  storage = await testStorage();
  responses = installStreamingRuntime();
});

const produceEvent = (topic: string, body: unknown) => functionUrlEvent('POST', `/v1/topics/${topic}/records`, body);

describe('streaming produce handler', () => {
  it('acks=0 completes the response first, then persists before the invocation returns', async () => {
    await createTopic(storage, { name: 'fire-and-forget', partitions: 1 });
    let releaseCommit!: () => void;
    const commitGate = new Promise<void>((r) => (releaseCommit = r));
    const gated = withDynamoFaults(storage, async (cmd) => {
      if (isPutOf(cmd, 'data')) await commitGate;
      return undefined;
    });
    const handler = streamingHandler(createApp(createServices(gated), ['produce'], undefined)) as (event: unknown, stream: Writable, context: unknown) => Promise<void>;

    let responseEnded!: () => void;
    const ended = new Promise<void>((r) => (responseEnded = r));
    const { stream, text } = collectingStream(responseEnded);
    let returned = false;
    const invocation = handler(produceEvent('fire-and-forget', { acks: '0', records: [{ value: 'later' }] }), stream, {}).then(() => (returned = true));

    await ended; // the client has its whole response while the commit is still held back
    expect(responses.at(-1)?.statusCode).toBe(202);
    expect(JSON.parse(text())).toEqual({ accepted: 1 });
    expect(returned).toBe(false);
    const { fetcher } = createServices(storage);
    expect((await fetcher.fetch({ topic: 'fire-and-forget', partition: 0, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 })).highWatermark).toBe(0);

    releaseCommit();
    await invocation; // returns only once the records are persisted
    const page = await fetcher.fetch({ topic: 'fire-and-forget', partition: 0, offset: 0, maxRecords: 10, maxBytes: 1 << 20, waitMs: 0 });
    expect(page.records.map((r) => Buffer.from(r.value!).toString())).toEqual(['later']);
  });

  it('acks=all answers with the offsets after persisting', async () => {
    await createTopic(storage, { name: 'acknowledged', partitions: 1 });
    const handler = streamingHandler(createApp(createServices(storage), ['produce'], undefined)) as (event: unknown, stream: Writable, context: unknown) => Promise<void>;
    const { stream, text } = collectingStream();
    await handler(produceEvent('acknowledged', { records: [{ value: 'now' }] }), stream, {});
    expect(responses.at(-1)?.statusCode).toBe(200);
    expect(JSON.parse(text()).offsets).toEqual([expect.objectContaining({ partition: 0, offset: 0 })]);
  });
});
