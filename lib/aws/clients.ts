// One S3 and one DynamoDB client per process (Lambda reuses them across invocations), each with a
// middleware that counts every attempt by operation, so benchmarks can report AWS calls per request.
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { QueueConfig } from '../config.ts';

export class CallCounter {
  private readonly counts = new Map<string, number>();
  record(operation: string): void {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + 1);
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort());
  }
  total(prefix = ''): number {
    let sum = 0;
    for (const [op, n] of this.counts) if (op.startsWith(prefix)) sum += n;
    return sum;
  }
  reset(): void {
    this.counts.clear();
  }
}

export interface AwsClients {
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  calls: CallCounter;
}

/** Wraps one attempt of a call: `send` performs it (the request goes out, the response is parsed). */
export type AttemptMiddleware = (operation: string, send: () => Promise<unknown>) => Promise<unknown>;

type Stack = { add: (mw: (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => Promise<unknown>, opts: { step: 'deserialize'; name: string }) => void };

/**
 * Runs `middleware` around every attempt of every call of this client, named `<service>.<Operation>`.
 * The deserialize step runs once per attempt, inside the SDK's retry loop, so what the middleware
 * throws is seen by the SDK's retry strategy like a real response.
 */
export function aroundEachAttempt(client: { middlewareStack: unknown }, service: string, name: string, middleware: AttemptMiddleware): void {
  (client.middlewareStack as Stack).add((next, context) => (args) =>
    middleware(`${service}.${(context.commandName ?? 'Unknown').replace(/Command$/, '')}`, () => next(args)), { step: 'deserialize', name });
}

export function createClients(config: QueueConfig, calls = new CallCounter()): AwsClients {
  const credentials = config.dynamoEndpoint || config.s3Endpoint ? localCredentials() : undefined;
  const s3 = new S3Client({
    region: config.region,
    endpoint: config.s3Endpoint,
    forcePathStyle: config.s3ForcePathStyle,
    credentials,
    // Emulators do not all understand the newer default checksum trailers; we check our own CRC32C.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const dynamo = new DynamoDBClient({ region: config.region, endpoint: config.dynamoEndpoint, credentials });
  const countAttempt: AttemptMiddleware = (operation, send) => {
    calls.record(operation);
    return send();
  };
  aroundEachAttempt(s3, 's3', 'countAttempts', countAttempt);
  aroundEachAttempt(dynamo, 'dynamodb', 'countAttempts', countAttempt);
  const ddb = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  return { s3, ddb, calls };
}

/** Explicit credentials only when the environment has none and an endpoint points at an emulator. */
function localCredentials() {
  if (process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE || process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI) return undefined;
  return { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
}
