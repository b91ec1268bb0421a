// Produce function: response streaming, so acks=0 can answer before persisting.
import { functionApp } from './http/base-app.ts';
import { streamingHandler } from './http/lambda.ts';
import { createLogServices } from './http/services.ts';
import { produceRoutes } from './routes/produce.ts';

export const handler = streamingHandler(functionApp('produce', (storage) => produceRoutes(createLogServices(storage))));
