// Admin function: topic management and health.
import { Sequencer } from '../lib/log/sequencer.ts';
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { adminRoutes } from './routes/admin.ts';

export const handler = bufferedHandler(functionApp('admin', (storage) => adminRoutes({ storage, sequencer: new Sequencer(storage) })));
