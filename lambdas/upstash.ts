// Upstash-compatible function: Upstash Kafka's REST API (produce, fetch, consumer instances, offsets,
// topics) behind one URL, as its clients expect, over the same tables and bucket as the v1 functions.
import { createGroupServices } from '../lib/groups/services.ts';
import { Fetcher } from '../lib/log/fetcher.ts';
import { Producer } from '../lib/log/producer.ts';
import { Sequencer } from '../lib/log/sequencer.ts';
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { UPSTASH_ERRORS, upstashRoutes } from './routes/upstash.ts';

export const handler = bufferedHandler(functionApp('upstash', (storage) => {
  const sequencer = new Sequencer(storage);
  const fetcher = new Fetcher(storage, sequencer);
  return upstashRoutes({ storage, fetcher, producer: new Producer(storage, sequencer), groups: createGroupServices(storage, sequencer, fetcher) });
}, [UPSTASH_ERRORS]));
