// The client's transport against stub servers (pure request logic): SigV4 as the AWS SDK's signer
// computes it, API keys, retries only of retryable failures, typed errors; and its partitioner
// against the server's.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidRequestError, partitionForKey, Queue, ServerError } from '../../client/index.ts';
import { partitionForKey as serverPartitionForKey } from '../../lib/partitioner/partitioner.ts';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let close: (() => void) | undefined;
afterEach(() => close?.());

/** A server answering each request with the next of `replies` (the last one repeats); records what it got. */
async function stub(replies: Array<[status: number, body: unknown]>): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const [status, reply] = replies[Math.min(received.length, replies.length) - 1]!;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = () => server.close();
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token' };

describe('authentication', () => {
  it('signs with SigV4 (service lambda) exactly as the AWS SDK signer does for the same request', async () => {
    const { url, received } = await stub([[200, { offsets: [] }]]);
    const queue = new Queue({ url, auth: { type: 'sigv4', region: 'eu-west-1', credentials } });
    await queue.transport.request('POST', '/v1/topics/or ders/records', { body: { records: [{ value: 'a' }] }, query: { b: '2', a: 'x y' } });
    const got = received[0]!;
    const amzDate = String(got.headers['x-amz-date']);
    const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
    const target = new URL(url);
    const expected = await new SignatureV4({ service: 'lambda', region: 'eu-west-1', credentials, sha256: Sha256 }).sign({
      method: 'POST',
      protocol: 'http:',
      hostname: target.hostname,
      port: Number(target.port),
      path: '/v1/topics/or%20ders/records',
      query: { a: 'x y', b: '2' },
      headers: { host: target.host, 'content-type': 'application/json' },
      body: got.body,
    }, { signingDate });
    expect(got.headers.authorization).toBe(expected.headers.authorization);
    expect(got.headers['x-amz-security-token']).toBe('session-token');
    expect(got.headers['x-amz-content-sha256']).toBe(expected.headers['x-amz-content-sha256']);
    expect(got.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/);
  });

  it('takes the region from a Function URL host name', async () => {
    const { regionOf } = await import('../../client/auth.ts');
    expect(regionOf(new URL('https://abc123.lambda-url.ap-southeast-2.on.aws/'))).toBe('ap-southeast-2');
  });

  it('sends an API key as x-api-key', async () => {
    const { url, received } = await stub([[200, { topics: [] }]]);
    await new Queue({ url, auth: { type: 'api-key', key: 'sekret' } }).admin().listTopics();
    expect(received[0]!.headers['x-api-key']).toBe('sekret');
    expect(received[0]!.headers.authorization).toBeUndefined();
  });
});

describe('retries and errors', () => {
  it('retries a retryable failure with backoff, then succeeds', async () => {
    const { url, received } = await stub([[503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'try again' } }], [503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'try again' } }], [200, { topics: [{ name: 't', partitions: 1 }] }]]);
    expect(await new Queue({ url, retry: { initialRetryTimeMs: 1 } }).admin().listTopics()).toEqual(['t']);
    expect(received).toHaveLength(3);
  });

  it('gives up after the configured retries with the typed, retryable error', async () => {
    const { url, received } = await stub([[503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'down' } }]]);
    const err = await new Queue({ url, retry: { retries: 2, initialRetryTimeMs: 1 } }).admin().listTopics().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', status: 503, retryable: true, message: 'down' });
    expect(received).toHaveLength(3);
  });

  it('never retries a non-retryable failure', async () => {
    const { url, received } = await stub([[400, { error: { code: 'INVALID_TOPIC_NAME', message: 'bad name' } }]]);
    const err = await new Queue({ url }).admin().createTopics({ topics: [{ topic: '..' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ code: 'INVALID_TOPIC_NAME', status: 400, retryable: false });
    expect(received).toHaveLength(1);
  });

  it('a refused connection is a retryable NetworkError', async () => {
    const { url } = await stub([[200, {}]]);
    close!();
    const err = await new Queue({ url, retry: { retries: 1, initialRetryTimeMs: 1 } }).admin().listTopics().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'NetworkError', code: 'NETWORK_ERROR', status: 0, retryable: true });
  });
});

describe("the client's partitioner", () => {
  it("agrees with the server's murmur2 partitioner for any key and partition count", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 1000 }), (key, partitions) => {
      expect(partitionForKey(key, partitions)).toBe(serverPartitionForKey(key, partitions));
    }), { numRuns: 2000 });
    expect(partitionForKey('customer-1', 6)).toBe(serverPartitionForKey(Buffer.from('customer-1'), 6));
  });
});
