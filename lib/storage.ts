// The storage context every domain operation receives: configuration plus the shared AWS clients.
import { configFromEnv, type QueueConfig } from './config.ts';
import { createClients, type AwsClients } from './aws/clients.ts';

export interface Storage extends AwsClients {
  config: QueueConfig;
}

export function createStorage(config: QueueConfig = configFromEnv()): Storage {
  return { config, ...createClients(config) };
}
