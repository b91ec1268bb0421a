// Lambda adapters for Function URLs. Buffered handlers for most functions; the produce function uses
// response streaming so that acks=0 can end the HTTP response and then finish persisting before
// the invocation returns (a buffered handler cannot answer before it returns).
import type { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import type { APIGatewayProxyEventV2, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Writable } from 'node:stream';
import { drainBackground } from './background.ts';

interface ResponseStreamGlobal {
  streamifyResponse(fn: (event: APIGatewayProxyEventV2, stream: Writable, context: Context) => Promise<void>): unknown;
  HttpResponseStream: { from(stream: Writable, metadata: { statusCode: number; headers: Record<string, string> }): Writable };
}
declare const awslambda: ResponseStreamGlobal;

export function bufferedHandler(app: Hono) {
  return handle(app);
}

export function streamingHandler(app: Hono) {
  const buffered = handle(app);
  return awslambda.streamifyResponse(async (event, responseStream, context) => {
    const result = (await buffered(event as never, context as never)) as APIGatewayProxyResult;
    const body = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body ?? '', 'utf8');
    const stream = awslambda.HttpResponseStream.from(responseStream, { statusCode: result.statusCode, headers: (result.headers ?? {}) as Record<string, string> });
    await new Promise<void>((resolve, reject) => stream.end(body, (err?: Error | null) => (err ? reject(err) : resolve())));
    await drainBackground();
  });
}
