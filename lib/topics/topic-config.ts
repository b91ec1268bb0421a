// Topic names and per-topic configuration: validated here, before anything is written.
import { InvalidRequestError } from '../errors.ts';
import type { Compression } from '../codec/segment.ts';

export const MAX_PARTITIONS = 1024;
/** Kafka's rule: 1 to 249 characters from [a-zA-Z0-9._-], and not "." or "..". */
export const TOPIC_NAME = /^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$/;
export const TOPIC_NAME_RULE = 'topic names are 1 to 249 characters from [a-zA-Z0-9._-], and not "." or ".."';

export interface TopicConfig {
  'compression.type': Compression;
}

export const DEFAULT_TOPIC_CONFIG: TopicConfig = { 'compression.type': 'none' };

export function validateTopicName(name: string): void {
  if (!TOPIC_NAME.test(name)) throw new InvalidRequestError('INVALID_TOPIC_NAME', `topic name ${JSON.stringify(name.slice(0, 300))} is invalid: ${TOPIC_NAME_RULE}`);
}

export function validatePartitionCount(count: unknown, field = 'partitions'): number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
    throw new InvalidRequestError('INVALID_PARTITIONS', `${field} must be an integer from 1 to ${MAX_PARTITIONS}`);
  }
  return count;
}

/** Only settings this system implements are accepted; anything else is refused by name. */
export function parseTopicConfig(input: Record<string, unknown> | undefined): TopicConfig {
  const config: TopicConfig = { ...DEFAULT_TOPIC_CONFIG };
  for (const [key, value] of Object.entries(input ?? {})) {
    if (key === 'compression.type') {
      if (value !== 'none' && value !== 'gzip') {
        throw new InvalidRequestError('INVALID_CONFIG', `compression.type must be "none" or "gzip" (zstd is reserved in the format but not implemented yet)`);
      }
      config['compression.type'] = value;
    } else {
      throw new InvalidRequestError('INVALID_CONFIG', `unknown or unsupported topic config ${JSON.stringify(key)}: supported keys are compression.type`);
    }
  }
  return config;
}
