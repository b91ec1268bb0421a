// Produce function: response streaming, so acks=0 can answer before persisting.
import { Producer } from '../lib/log/producer.ts';
import { Sequencer } from '../lib/log/sequencer.ts';
import { functionApp } from './http/base-app.ts';
import { streamingHandler } from './http/lambda.ts';
import { produceRoutes } from './routes/produce.ts';

export const handler = streamingHandler(functionApp('produce', (storage) => produceRoutes({ producer: new Producer(storage, new Sequencer(storage)) })));
