// Topic names and per-topic configuration: validated here, before anything is written.
import { InvalidRequestError } from '../errors.ts';
import type { Compression } from '../codec/segment.ts';

export const MAX_PARTITIONS = 1024;
/** Kafka's rule: 1 to 249 characters from [a-zA-Z0-9._-], and not "." or "..". */
export const TOPIC_NAME = /^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$/;
export const TOPIC_NAME_RULE = 'topic names are 1 to 249 characters from [a-zA-Z0-9._-], and not "." or ".."';

/** Kafka's topic settings that this system implements, under Kafka's names. */
export interface TopicConfig {
  'compression.type': Compression;
  'cleanup.policy': 'delete';
  /** Segments whose largest timestamp is older are deleted; -1 keeps them forever. */
  'retention.ms': number;
  /** A partition's segments beyond this many bytes are deleted, oldest first; -1 is unlimited. */
  'retention.bytes': number;
  /** A segment is rolled once this many bytes of batches are waiting. */
  'segment.bytes': number;
  /** ... or once the oldest waiting batch is this old. */
  'segment.ms': number;
}

// Kafka's defaults for retention; segment sizes chosen for S3 (docs/architecture.md, "Lifecycle"):
// 64 MiB segments replay in a few large GETs and fit one maintenance invocation's memory; rolling
// every 10 minutes bounds the uncompacted index entries (and their DynamoDB storage) to 10 minutes
// of requests for one PUT per partition per 10 minutes ($0.02 per active partition-month).
export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  'compression.type': 'none',
  'cleanup.policy': 'delete',
  'retention.ms': 7 * 24 * 3600 * 1000,
  'retention.bytes': -1,
  'segment.bytes': 64 * 1024 * 1024,
  'segment.ms': 10 * 60 * 1000,
};

const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024;

type Setting = { [K in keyof TopicConfig]: (value: unknown, key: K) => TopicConfig[K] };

function integer(min: number, max: number, rule: string) {
  return (value: unknown, key: string): number => {
    // Kafka's tools send every config value as a string: accept "3600000" as well as 3600000.
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidRequestError('INVALID_CONFIG', `${key} must be ${rule}`);
    return n;
  };
}

const settings: Setting = {
  'compression.type': (value) => {
    if (value !== 'none' && value !== 'gzip') throw new InvalidRequestError('INVALID_CONFIG', 'compression.type must be "none" or "gzip" (zstd is reserved in the format but not implemented yet)');
    return value;
  },
  'cleanup.policy': (value) => {
    if (value === 'compact' || value === 'compact,delete' || value === 'delete,compact') throw new InvalidRequestError('INVALID_CONFIG', 'cleanup.policy=compact (log compaction by key) is not supported yet; use "delete"');
    if (value !== 'delete') throw new InvalidRequestError('INVALID_CONFIG', 'cleanup.policy must be "delete"');
    return value;
  },
  'retention.ms': integer(-1, Number.MAX_SAFE_INTEGER, 'an integer number of milliseconds, or -1 for unlimited'),
  'retention.bytes': integer(-1, Number.MAX_SAFE_INTEGER, 'an integer number of bytes, or -1 for unlimited'),
  'segment.bytes': integer(1024, MAX_SEGMENT_BYTES, `an integer from 1024 to ${MAX_SEGMENT_BYTES}`),
  'segment.ms': integer(1, Number.MAX_SAFE_INTEGER, 'a positive integer number of milliseconds'),
};

const SUPPORTED = Object.keys(settings).join(', ');

export function validateTopicName(name: string): void {
  if (!TOPIC_NAME.test(name)) throw new InvalidRequestError('INVALID_TOPIC_NAME', `topic name ${JSON.stringify(name.slice(0, 300))} is invalid: ${TOPIC_NAME_RULE}`);
}

export function validatePartitionCount(count: unknown, field = 'partitions'): number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
    throw new InvalidRequestError('INVALID_PARTITIONS', `${field} must be an integer from 1 to ${MAX_PARTITIONS}`);
  }
  return count;
}

/**
 * Applies `changes` to `base` (Kafka's IncrementalAlterConfigs): a value sets a key, null restores
 * its default. Only settings this system implements are accepted; anything else is refused by name.
 */
export function parseTopicConfig(changes: Record<string, unknown> | undefined, base: Partial<TopicConfig> = {}): TopicConfig {
  const config: TopicConfig = { ...DEFAULT_TOPIC_CONFIG, ...base };
  for (const [key, value] of Object.entries(changes ?? {})) {
    if (!Object.hasOwn(settings, key)) throw new InvalidRequestError('INVALID_CONFIG', `unknown or unsupported topic config ${JSON.stringify(key)}: supported keys are ${SUPPORTED}`);
    const name = key as keyof TopicConfig;
    (config as unknown as Record<string, unknown>)[name] = value === null ? DEFAULT_TOPIC_CONFIG[name] : (settings[name] as (v: unknown, k: string) => unknown)(value, name);
  }
  return config;
}
