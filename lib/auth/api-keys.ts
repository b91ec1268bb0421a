// API keys for clients that cannot sign requests with SigV4. A key is "qk_<id>_<secret>": the id
// finds the stored item with one GetItem, the 256-bit secret is what proves possession. Only the
// SHA-256 of the whole key is stored; a slow password hash would add nothing for a random secret of
// this length, and it would add latency to every request.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TableSchema } from '../aws/schema.ts';

/** One item per key, keyed by its public id; DynamoDB TTL removes keys some time after they expire. */
export const API_KEYS_TABLE: TableSchema = { partitionKey: { name: 'id', type: 'S' }, ttlAttribute: 'expiresAt' };

export function apiKeysTableFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.QUEUE_API_KEYS_TABLE ?? `${env.QUEUE_NAME_PREFIX ?? 'queue'}-api-keys`;
}

const KEY_FORMAT = /^qk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface IssuedApiKey {
  id: string;
  /** The key itself: shown to its owner once, never stored. */
  key: string;
  hash: string;
}

export function issueApiKey(): IssuedApiKey {
  const id = randomBytes(8).toString('hex');
  const key = `qk_${id}_${randomBytes(32).toString('base64url')}`;
  return { id, key, hash: hashApiKey(key) };
}

/** The id of a well-formed key, or undefined: malformed input never reaches the table. */
export function apiKeyId(key: string): string | undefined {
  return KEY_FORMAT.exec(key)?.[1];
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Compares digests in constant time, so response timing says nothing about how much matched. */
export function apiKeyMatches(key: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(key, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
