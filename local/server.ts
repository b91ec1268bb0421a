// `npm start`: the whole system on this machine. Starts DynamoDB Local and s3rver (unless endpoints
// are configured), creates the bucket and tables, serves the real handlers' routes over HTTP, and
// runs partition maintenance (compaction, retention, collection) a moment after writes.
// It stops with everything it started on SIGINT, SIGTERM or SIGHUP, or when its parent process ends.
//   npm start                  data persists in ./.data
//   npm start -- --in-memory   throwaway run
//   PORT=9000 npm start        another port (default 8787)
//   QUEUE_AUTH_MODE=api-key npm start   require API keys (issue them with scripts/api-keys.ts)
// For the fault-injection suite (jepsen/) only:
//   QUEUE_FAULTS=seed=7,lose=0.02,...   inject faults into AWS calls (local/faults.ts); each is logged
//   QUEUE_CLOCK_OFFSET_MS=16000         this server's clocks (sequencer, groups, maintenance) run ahead (or behind)
import { serve } from '@hono/node-server';
import { parseArgs } from 'node:util';
import { configFromEnv } from '../lib/config.ts';
import { createStorage } from '../lib/storage.ts';
import { drainBackground } from '../lambdas/http/background.ts';
import { createServices } from '../lambdas/http/services.ts';
import { authModeFromEnv } from '../lambdas/http/auth.ts';
import { API_KEYS_TABLE, apiKeysTableFromEnv } from '../lib/auth/api-keys.ts';
import { injectFaults, parseFaults } from './faults.ts';
import { createLocalApp } from './local-app.ts';
import { MaintenanceLoop } from './maintenance-loop.ts';
import { ensureTable, provision } from './provision.ts';
import { startLocalStack, type LocalStack } from './stack.ts';

const { values } = parseArgs({ options: { 'in-memory': { type: 'boolean', default: false }, 'data-dir': { type: 'string', default: '.data' } } });
const port = Number(process.env.PORT ?? 8787);
// Read before the slow start-up, so that a parent that ends meanwhile is noticed too (see below).
const parent = process.ppid;

let stack: LocalStack | undefined;
try {
  const env = { ...process.env };
  if (!env.AWS_ENDPOINT_URL && !env.QUEUE_DYNAMODB_ENDPOINT) {
    stack = await startLocalStack(values['in-memory'] ? {} : { dataDir: values['data-dir'] });
    for (const line of stack.repaired) console.log(`repaired S3 data after an interrupted run: ${line}`);
    env.QUEUE_DYNAMODB_ENDPOINT = stack.dynamoEndpoint;
    env.QUEUE_S3_ENDPOINT = stack.s3Endpoint;
  }
  const storage = createStorage(configFromEnv(env));
  await provision(storage);
  const authMode = authModeFromEnv(env);
  if (authMode === 'api-key') await ensureTable(storage, apiKeysTableFromEnv(env), API_KEYS_TABLE);
  // After provisioning, so that a fault never stops the server from starting.
  if (env.QUEUE_FAULTS) injectFaults(storage, parseFaults(env.QUEUE_FAULTS), (fault, operation) => console.log(`injected ${JSON.stringify({ fault, operation, at: Date.now() })}`));
  const clockOffsetMs = Number(env.QUEUE_CLOCK_OFFSET_MS ?? 0);
  if (!Number.isFinite(clockOffsetMs)) throw new Error(`QUEUE_CLOCK_OFFSET_MS must be a number of milliseconds, not ${env.QUEUE_CLOCK_OFFSET_MS}`);
  const clock = { now: () => Date.now() + clockOffsetMs };
  const services = createServices(storage, clock, clock, { lease: clock, compactor: clock, retention: clock, collector: clock });
  // What the maintenance function does in AWS, triggered the same way: by writes (and a sweep).
  const maintenance = new MaintenanceLoop(services.maintenance);
  services.producer.onPersisted((topic, partitions) => maintenance.touch(topic, partitions));
  const app = createLocalApp(services, port);
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
    if (stack) console.log(`emulators: dynamodb ${stack.dynamoEndpoint} s3 ${stack.s3Endpoint}`);
    console.log(`queue API listening on http://127.0.0.1:${info.port} (${stack ? (values['in-memory'] ? 'in-memory' : `data in ${values['data-dir']}`) : 'external AWS endpoints'})`);
    // The key CLI talks to the same DynamoDB: QUEUE_DYNAMODB_ENDPOINT=<endpoint> npx tsx scripts/api-keys.ts create --name dev
    if (authMode === 'api-key') console.log(`API keys required; keys table ${apiKeysTableFromEnv(env)} at ${storage.config.dynamoEndpoint ?? 'AWS'}`);
  });
  server.once('error', (err: NodeJS.ErrnoException) => void fail(err.code === 'EADDRINUSE' ? new Error(`port ${port} is in use (another npm start still running?); PORT=<port> npm start picks another`) : err));
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log('shutting down...');
    server.close();
    await drainBackground();
    await maintenance.stop();
    await stack?.stop();
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown);
  // npm passes SIGINT and SIGTERM on, but not SIGHUP, and nobody passes on a SIGKILL: whenever the
  // process that started the server ends, this one is handed to another parent, and stops as if
  // signalled. (`npm start` execs this file, so that parent is npm itself, not a shell.)
  setInterval(() => process.ppid !== parent && void shutdown(), 500).unref();
} catch (err) {
  await fail(err);
}

async function fail(err: unknown): Promise<never> {
  await stack?.stop();
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
