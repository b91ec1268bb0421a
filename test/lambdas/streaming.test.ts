// The produce function's Lambda adapter: with acks=0 the HTTP response is complete before the
// records are persisted, and the invocation does not return until they are (a frozen Lambda would
// otherwise never finish the work). Runs the real handler against the local stack, with a stand-in
// for the Lambda runtime's `awslambda` streaming global.
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../lambdas/http/app.ts';
import { streamingHandler } from '../../lambdas/http/lambda.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { createTopic } from '../../lib/topics/topic-store.ts';
import type { Storage } from '../../lib/storage.ts';
import { isPutOf, withDynamoFaults } from '../support/faults.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
const responses: Array<{ statusCode: number }> = [];

beforeAll(async () => {
  storage = await testStorage();
  (globalThis as Record<string, unknown>).awslambda = {
    streamifyResponse: (fn: unknown) => fn,
    HttpResponseStream: { from: (stream: Writable, metadata: { statusCode: number }) => (responses.push(metadata), stream) },
  };
});

function functionUrlEvent(path: string, body: unknown) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', host: 'example.lambda-url.us-east-1.on.aws' },
    requestContext: { http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, domainName: 'example.lambda-url.us-east-1.on.aws', requestId: 'r1', routeKey: '$default', stage: '$default', time: '', timeEpoch: 0, accountId: 'anonymous', apiId: 'example' },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

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

    const chunks: Buffer[] = [];
    let responseEnded!: () => void;
    const ended = new Promise<void>((r) => (responseEnded = r));
    const stream = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
      final(done) {
        responseEnded();
        done();
      },
    });
    let returned = false;
    const invocation = handler(functionUrlEvent('/v1/topics/fire-and-forget/records', { acks: '0', records: [{ value: 'later' }] }), stream, {}).then(() => (returned = true));

    await ended; // the client has its whole response while the commit is still held back
    expect(responses.at(-1)?.statusCode).toBe(202);
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8'))).toEqual({ accepted: 1 });
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
    const chunks: Buffer[] = [];
    const stream = new Writable({ write(chunk, _e, done) { chunks.push(Buffer.from(chunk)); done(); } });
    await handler(functionUrlEvent('/v1/topics/acknowledged/records', { records: [{ value: 'now' }] }), stream, {});
    expect(responses.at(-1)?.statusCode).toBe(200);
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8')).offsets).toEqual([expect.objectContaining({ partition: 0, offset: 0 })]);
  });
});
