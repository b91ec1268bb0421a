// Manages the API keys of a deployment in API-key auth mode. The new key is printed once, on stdout;
// only its hash is stored, so a lost key cannot be recovered, only rotated or revoked.
//   npx tsx scripts/api-keys.ts create --name billing [--expires-in-days 90]
//   npx tsx scripts/api-keys.ts rotate <id> [--grace-hours 24] [--expires-in-days 90]
//   npx tsx scripts/api-keys.ts revoke <id>
//   npx tsx scripts/api-keys.ts list
// The table is --table, else QUEUE_API_KEYS_TABLE (the stack output ApiKeysTableName), else
// "<QUEUE_NAME_PREFIX>-api-keys"; AWS credentials and region come from the usual AWS environment,
// and QUEUE_DYNAMODB_ENDPOINT points it at a local emulator.
import { parseArgs } from 'node:util';
import { API_KEY_CACHE_TTL_MS, ApiKeyStore, type ApiKeyInfo } from '../lib/auth/api-key-store.ts';
import { apiKeysTableFromEnv } from '../lib/auth/api-keys.ts';
import { configFromEnv } from '../lib/config.ts';
import { createStorage } from '../lib/storage.ts';

const USAGE = 'usage: api-keys.ts create --name <name> [--expires-in-days N] | rotate <id> [--grace-hours H] [--expires-in-days N] | revoke <id> | list  [--table <name>]';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string' },
    'expires-in-days': { type: 'string' },
    'grace-hours': { type: 'string', default: '24' },
    table: { type: 'string' },
  },
});

function positiveNumber(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

function expiresAt(): number | undefined {
  const days = values['expires-in-days'];
  return days === undefined ? undefined : Math.floor(Date.now() / 1000 + positiveNumber('expires-in-days', days) * 86_400);
}

function describe(info: ApiKeyInfo): string {
  const expiry = info.expiresAt === undefined ? 'never expires' : `expires ${new Date(info.expiresAt * 1000).toISOString()}`;
  return `${info.id}  ${info.name}  created ${new Date(info.createdAt).toISOString()}  ${expiry}`;
}

function printNewKey(result: { key: string; info: ApiKeyInfo }): void {
  console.error(`issued ${describe(result.info)}\nstore this key now; it is not shown again:`);
  console.log(result.key);
}

const table = values.table ?? apiKeysTableFromEnv();
const store = new ApiKeyStore(createStorage(configFromEnv()).ddb, table);
const [command, id] = positionals;

try {
  if (command === 'create' && values.name) {
    printNewKey(await store.create(values.name, expiresAt()));
  } else if (command === 'rotate' && id) {
    printNewKey(await store.rotate(id, positiveNumber('grace-hours', values['grace-hours']) * 3600, expiresAt()));
    console.error(`the old key ${id} stops working in ${values['grace-hours']} hours (or at its own expiry, if sooner)`);
  } else if (command === 'revoke' && id) {
    await store.revoke(id);
    console.error(`revoked ${id}; handlers that cached it refuse it within ${API_KEY_CACHE_TTL_MS / 1000} seconds`);
  } else if (command === 'list') {
    for (const info of await store.list()) console.log(describe(info));
  } else {
    console.error(USAGE);
    process.exitCode = 2;
  }
} catch (err) {
  console.error(`${table}: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
