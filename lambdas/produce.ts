// Produce function: response streaming, so acks=0 can answer before persisting.
import { createApp } from './http/app.ts';
import { streamingHandler } from './http/lambda.ts';
import { sharedServices } from './http/services.ts';

export const handler = streamingHandler(createApp(sharedServices(), ['produce']));
