// Fetch function: reads committed records (long-polls up to waitMs).
import { Fetcher } from '../lib/log/fetcher.ts';
import { Sequencer } from '../lib/log/sequencer.ts';
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { fetchRoutes } from './routes/fetch.ts';

export const handler = bufferedHandler(functionApp('fetch', (storage) => fetchRoutes({ fetcher: new Fetcher(storage, new Sequencer(storage)) })));
