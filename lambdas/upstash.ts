// Upstash-compatible function: Upstash Kafka's REST API (produce, fetch, consumer instances, offsets,
// topics) behind one URL, as its clients expect, over the same tables and bucket as the v1 functions.
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { createLogServices } from './http/services.ts';
import { UPSTASH_ERRORS, upstashRoutes } from './routes/upstash.ts';

export const handler = bufferedHandler(functionApp('upstash', (storage) => upstashRoutes({ storage, ...createLogServices(storage) }), [UPSTASH_ERRORS]));
