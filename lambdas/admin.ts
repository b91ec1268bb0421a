// Admin function: topic management and health.
import { createApp } from './http/app.ts';
import { bufferedHandler } from './http/lambda.ts';
import { sharedServices } from './http/services.ts';

export const handler = bufferedHandler(createApp(sharedServices(), ['admin']));
