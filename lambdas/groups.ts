// Consumer-groups function: membership, poll (long-polls up to waitMs), offsets, group admin.
import { createApp } from './http/app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { sharedServices } from './http/services.ts';

export const handler = bufferedHandler(createApp(sharedServices(), ['groups']));
