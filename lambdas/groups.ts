// Consumer-groups function: membership, poll (long-polls up to waitMs), offsets, group admin.
import { functionApp } from './http/base-app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { createLogServices } from './http/services.ts';
import { groupRoutes } from './routes/groups.ts';

export const handler = bufferedHandler(functionApp('groups', (storage) => groupRoutes(createLogServices(storage))));
