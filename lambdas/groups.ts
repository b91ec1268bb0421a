// Consumer-groups function: membership, poll (long-polls up to waitMs), offsets, group admin.
import { createGroupServices } from '../lib/groups/services.ts';
import { Fetcher } from '../lib/log/fetcher.ts';
import { Sequencer } from '../lib/log/sequencer.ts';
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { groupRoutes } from './routes/groups.ts';

export const handler = bufferedHandler(functionApp('groups', (storage) => {
  const sequencer = new Sequencer(storage);
  return groupRoutes({ groups: createGroupServices(storage, sequencer, new Fetcher(storage, sequencer)) });
}));
