// API-key mode end to end on the local emulators: the real app behind the middleware, keys issued,
// rotated and revoked through the store and the CLI, against DynamoDB Local.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ApiKeyStore, type ApiKeyStoreOptions } from '../../lib/auth/api-key-store.ts';
import { API_KEYS_TABLE } from '../../lib/auth/api-keys.ts';
import type { Storage } from '../../lib/storage.ts';
import { createApp } from '../../lambdas/http/app.ts';
import { apiKeyAuth, authFromEnv } from '../../lambdas/http/auth.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { ensureTable } from '../../local/provision.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
let table: string;

beforeAll(async () => {
  storage = await testStorage();
  table = `t-${randomBytes(5).toString('hex')}-api-keys`;
  await ensureTable(storage, table, API_KEYS_TABLE);
});

function appWith(options: Partial<ApiKeyStoreOptions> = {}) {
  const store = new ApiKeyStore(storage.ddb, table, options);
  return { store, app: createApp(createServices(storage), undefined, apiKeyAuth(store)) };
}

async function expectUnauthorized(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer');
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe('UNAUTHORIZED');
  expect(body.error.message).toMatch(/API key/);
}

describe('API-key auth', () => {
  it('refuses every route without a valid key, before reading the body', async () => {
    const { app, store } = appWith();
    const { key } = await store.create('refusals');
    await expectUnauthorized(await app.request('/v1/health'));
    await expectUnauthorized(await app.request('/v1/topics', { method: 'POST', body: '{not json' }));
    await expectUnauthorized(await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'x-api-key': 'qk_nope' }, body: '{}' }));
    // A well-formed key with a known id but another secret.
    const forged = `${key.slice(0, 20)}${'A'.repeat(43)}`;
    await expectUnauthorized(await app.request('/v1/topics', { headers: { 'x-api-key': forged } }));
    await expectUnauthorized(await app.request('/v1/topics', { headers: { authorization: `Basic ${key}` } }));
  });

  it('serves requests that carry a valid key in either header', async () => {
    const { app, store } = appWith();
    const { key } = await store.create('client');
    const created = await app.request('/v1/topics', { method: 'POST', headers: { 'x-api-key': key }, body: JSON.stringify({ name: 'auth-orders', partitions: 1 }) });
    expect(created.status).toBe(201);
    const produced = await app.request('/v1/topics/auth-orders/records', { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify({ records: [{ value: 'hi' }] }) });
    expect(produced.status).toBe(200);
    const fetched = await app.request('/v1/topics/auth-orders/partitions/0/records?offset=0', { headers: { authorization: `bearer ${key}` } });
    expect(((await fetched.json()) as { records: Array<{ value: string }> }).records.map((r) => r.value)).toEqual(['hi']);
  });

  it('refuses expired keys even before DynamoDB TTL has deleted them', async () => {
    const { app, store } = appWith();
    const { key } = await store.create('expired', Math.floor(Date.now() / 1000) - 1);
    await expectUnauthorized(await app.request('/v1/topics', { headers: { 'x-api-key': key } }));
  });

  it('caches lookups briefly: a revocation elsewhere takes effect when the entry expires', async () => {
    let now = Date.now();
    const { app } = appWith({ cacheTtlMs: 30_000, now: () => now });
    const admin = new ApiKeyStore(storage.ddb, table);
    const { key, info } = await admin.create('revoked');
    expect((await app.request('/v1/health', { headers: { 'x-api-key': key } })).status).toBe(200);
    await admin.revoke(info.id);
    expect((await app.request('/v1/health', { headers: { 'x-api-key': key } })).status).toBe(200);
    now += 30_001;
    await expectUnauthorized(await app.request('/v1/health', { headers: { 'x-api-key': key } }));
    await expect(admin.revoke(info.id)).rejects.toThrow(/does not exist/);
  });

  it('rotates a key: the successor works at once, the old key until its grace period ends', async () => {
    let now = Date.now();
    const { app, store } = appWith({ cacheTtlMs: 0, now: () => now });
    const old = await store.create('rotated');
    const next = await store.rotate(old.info.id, 3600);
    expect(next.info.name).toBe('rotated');
    expect(next.key).not.toBe(old.key);
    for (const key of [old.key, next.key]) expect((await app.request('/v1/health', { headers: { 'x-api-key': key } })).status).toBe(200);
    now += 3601 * 1000;
    await expectUnauthorized(await app.request('/v1/health', { headers: { 'x-api-key': old.key } }));
    expect((await app.request('/v1/health', { headers: { 'x-api-key': next.key } })).status).toBe(200);
    await expect(store.rotate('0000000000000000', 60)).rejects.toThrow(/does not exist/);
  });

  it('never lists the stored hashes', async () => {
    const { store } = appWith();
    const { info } = await store.create('listed');
    const listed = (await store.list()).find((k) => k.id === info.id);
    expect(listed).toEqual(info);
    expect(JSON.stringify(await store.list())).not.toMatch(/hash/);
  });

  it('is what QUEUE_AUTH_MODE=api-key installs', async () => {
    const auth = authFromEnv(storage, { QUEUE_AUTH_MODE: 'api-key', QUEUE_API_KEYS_TABLE: table });
    expect(auth).toBeDefined();
    await expectUnauthorized(await createApp(createServices(storage), undefined, auth).request('/v1/topics'));
    expect(authFromEnv(storage, {})).toBeUndefined();
  });

  it('issues, lists and revokes keys with the CLI, printing the key once on stdout', async () => {
    const run = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/api-keys.ts', ...args], {
      env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', QUEUE_DYNAMODB_ENDPOINT: inject('dynamoEndpoint'), QUEUE_API_KEYS_TABLE: table, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' },
    });
    const created = await run('create', '--name', 'from-cli', '--expires-in-days', '30');
    const key = created.stdout.trim();
    expect(key).toMatch(/^qk_/);
    expect(created.stderr).toMatch(/not shown again/);
    const { app } = appWith();
    expect((await app.request('/v1/health', { headers: { 'x-api-key': key } })).status).toBe(200);
    const id = key.slice(3, 19);
    expect((await run('list')).stdout).toMatch(new RegExp(`${id}  from-cli  created .* expires `));
    await run('revoke', id);
    await expect(run('revoke', id)).rejects.toThrow(/does not exist/);
  });
});
