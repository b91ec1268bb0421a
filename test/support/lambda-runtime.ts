// Stand-ins for what the Lambda runtime gives a function: Function URL events (payload v2) and the
// `awslambda` global that response-streaming handlers use.
import { Writable } from 'node:stream';
import type { DynamoDBStreamEvent, ScheduledEvent } from 'aws-lambda';

export function functionUrlEvent(method: string, pathAndQuery: string, body?: unknown) {
  const [path, query = ''] = pathAndQuery.split('?');
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    headers: { 'content-type': 'application/json', host: 'example.lambda-url.us-east-1.on.aws' },
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, domainName: 'example.lambda-url.us-east-1.on.aws', requestId: 'r1', routeKey: '$default', stage: '$default', time: '', timeEpoch: 0, accountId: 'anonymous', apiId: 'example' },
    body: body === undefined ? undefined : JSON.stringify(body),
    isBase64Encoded: false,
  };
}

/** Installs the runtime's streaming global; returns the status codes streamed responses declared. */
export function installStreamingRuntime(): Array<{ statusCode: number }> {
  const responses: Array<{ statusCode: number }> = [];
  (globalThis as Record<string, unknown>).awslambda = {
    streamifyResponse: (fn: unknown) => fn,
    HttpResponseStream: { from: (stream: Writable, metadata: { statusCode: number }) => (responses.push(metadata), stream) },
  };
  return responses;
}

/** A response stream that collects what the handler writes. */
export function collectingStream(onEnd?: () => void): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
    final(done) {
      onEnd?.();
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** A batch from the log table's stream (KEYS_ONLY, INSERTs only, as the filter passes them). */
export function logStreamEvent(keys: Array<{ p: string; o: number }>): DynamoDBStreamEvent {
  return {
    Records: keys.map(({ p, o }, i) => ({
      eventID: `event-${i}`,
      eventName: 'INSERT',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: 'us-east-1',
      dynamodb: { ApproximateCreationDateTime: 0, Keys: { p: { S: p }, o: { N: String(o) } }, SequenceNumber: String(100_000 + i), SizeBytes: 64, StreamViewType: 'KEYS_ONLY' },
      eventSourceARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/queue-log/stream/2026-01-01T00:00:00.000',
    })),
  };
}

/** What an EventBridge schedule delivers. */
export function scheduledEvent(): ScheduledEvent {
  return {
    version: '0', id: 'schedule-1', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012',
    time: new Date().toISOString(), region: 'us-east-1', resources: ['arn:aws:events:us-east-1:123456789012:rule/maintenance'], detail: {},
  };
}
