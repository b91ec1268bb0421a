// Unit tests of the API-key primitives and the header/mode parsing of the auth middleware.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { apiKeyId, apiKeyMatches, apiKeysTableFromEnv, hashApiKey, issueApiKey } from '../../lib/auth/api-keys.ts';
import { authModeFromEnv, presentedApiKey } from '../../lambdas/http/auth.ts';

const headers = (h: Record<string, string>) => ({ header: (name: string) => h[name.toLowerCase()] });

describe('API keys', () => {
  it('issues unique keys whose id is readable and whose hash is the SHA-256 of the key', () => {
    const a = issueApiKey();
    const b = issueApiKey();
    expect(a.key).toMatch(/^qk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(apiKeyId(a.key)).toBe(a.id);
    expect(a.hash).toBe(createHash('sha256').update(a.key).digest('hex'));
    expect(hashApiKey(a.key)).toBe(a.hash);
  });

  it('rejects malformed keys before any lookup', () => {
    const { key } = issueApiKey();
    for (const bad of ['', 'qk_', key.slice(0, -1), `${key}x`, key.replace('qk_', 'xx_'), ` ${key}`, key.toUpperCase()]) {
      expect(apiKeyId(bad), bad).toBeUndefined();
    }
  });

  it('matches only the exact key against a stored hash, whatever the stored value looks like', () => {
    const { key, hash } = issueApiKey();
    expect(apiKeyMatches(key, hash)).toBe(true);
    expect(apiKeyMatches(issueApiKey().key, hash)).toBe(false);
    expect(apiKeyMatches(key, hash.slice(2))).toBe(false);
    expect(apiKeyMatches(key, '')).toBe(false);
    expect(apiKeyMatches(key, 'not hex')).toBe(false);
  });

  it('names the keys table from the environment', () => {
    expect(apiKeysTableFromEnv({})).toBe('queue-api-keys');
    expect(apiKeysTableFromEnv({ QUEUE_NAME_PREFIX: 'orders' })).toBe('orders-api-keys');
    expect(apiKeysTableFromEnv({ QUEUE_NAME_PREFIX: 'orders', QUEUE_API_KEYS_TABLE: 'keys' })).toBe('keys');
  });
});

describe('auth middleware configuration', () => {
  it('reads the key from x-api-key, a Bearer authorization header, or the password of Basic auth (any user name)', () => {
    expect(presentedApiKey(headers({ 'x-api-key': 'k1' }))).toBe('k1');
    expect(presentedApiKey(headers({ authorization: 'Bearer k2' }))).toBe('k2');
    expect(presentedApiKey(headers({ authorization: 'bearer   k3 ' }))).toBe('k3');
    expect(presentedApiKey(headers({ authorization: `Basic ${Buffer.from('anyone:k4').toString('base64')}` }))).toBe('k4');
    expect(presentedApiKey(headers({ authorization: `basic ${Buffer.from('a:b:k5').toString('base64')}` }))).toBe('b:k5');
    // No colon: no password, so no key.
    expect(presentedApiKey(headers({ authorization: `Basic ${Buffer.from('k6').toString('base64')}` }))).toBeUndefined();
    expect(presentedApiKey(headers({}))).toBeUndefined();
  });

  it('defaults to IAM mode and refuses unknown modes rather than running unchecked', () => {
    expect(authModeFromEnv({})).toBe('iam');
    expect(authModeFromEnv({ QUEUE_AUTH_MODE: 'api-key' })).toBe('api-key');
    expect(() => authModeFromEnv({ QUEUE_AUTH_MODE: 'none' })).toThrow(/QUEUE_AUTH_MODE/);
    expect(() => authModeFromEnv({ QUEUE_AUTH_MODE: 'apikey' })).toThrow(/QUEUE_AUTH_MODE/);
  });
});
