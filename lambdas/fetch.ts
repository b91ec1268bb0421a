// Fetch function: reads committed records (long-polls up to waitMs).
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { createLogServices } from './http/services.ts';
import { fetchRoutes } from './routes/fetch.ts';

export const handler = bufferedHandler(functionApp('fetch', (storage) => fetchRoutes(createLogServices(storage))));
