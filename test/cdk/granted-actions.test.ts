// Every AWS action a function's code performs is one the construct grants that function's role. The
// routes run in-process on recording clients against the local stack; a call the role may not make
// would fail in AWS with AccessDenied, which no emulator reproduces.
import { beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_ACTIONS, TABLE_ACTIONS, type DataTable } from '../../cdk/serverless-queue.ts';
import type { FunctionRole, HttpRole } from '../../cdk/bundling.ts';
import { createApp } from '../../lambdas/http/app.ts';
import { drainBackground } from '../../lambdas/http/background.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { maintenanceHandler } from '../../lambdas/maintenance.ts';
import type { QueueConfig } from '../../lib/config.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { logStreamEvent, scheduledEvent } from '../support/lambda-runtime.ts';
import { testConfig, testStorage } from '../support/stack.ts';

type Command = { constructor: { name: string }; input: Record<string, unknown> };

const DYNAMO_ACTION: Record<string, string> = {
  GetCommand: 'GetItem', PutCommand: 'PutItem', UpdateCommand: 'UpdateItem', DeleteCommand: 'DeleteItem',
  QueryCommand: 'Query', ScanCommand: 'Scan', BatchWriteCommand: 'BatchWriteItem', BatchGetCommand: 'BatchGetItem',
};
const TRANSACT_ACTION: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' };

/** The IAM action of each S3 command, and the object keys (or listed prefix) it applies to. */
const S3_ACTION: Record<string, [string, (input: Record<string, unknown>) => string[]]> = {
  GetObjectCommand: ['s3:GetObject', (input) => [input.Key as string]],
  PutObjectCommand: ['s3:PutObject', (input) => [input.Key as string]],
  DeleteObjectsCommand: ['s3:DeleteObject', (input) => (input.Delete as { Objects: Array<{ Key: string }> }).Objects.map((o) => o.Key)],
  ListObjectsCommand: ['s3:ListBucket', (input) => [input.Prefix as string]],
};

/** The IAM actions a command needs, as "table:Action" or "<key prefix>:s3:Action". */
function actionsOf(command: Command, tableOf: (name: string) => string): string[] {
  const { name } = command.constructor;
  const input = command.input;
  if (name === 'TransactWriteCommand') {
    return (input.TransactItems as Array<Record<string, { TableName: string }>>).map((item) => {
      const [kind, op] = Object.entries(item)[0]!;
      return `${tableOf(op.TableName)}:${TRANSACT_ACTION[kind]}`;
    });
  }
  if (name === 'BatchWriteCommand' || name === 'BatchGetCommand') return Object.keys(input.RequestItems as object).map((t) => `${tableOf(t)}:${name === 'BatchGetCommand' ? 'BatchGetItem' : 'BatchWriteItem'}`);
  if (DYNAMO_ACTION[name]) return [`${tableOf(input.TableName as string)}:${DYNAMO_ACTION[name]}`];
  const [action, keys] = S3_ACTION[name] ?? [`s3:${name.replace(/Command$/, '')}`, () => ['']];
  return keys(input).map((key) => `${key.split('/')[0]}:${action}`);
}

function recordingStorage(config: QueueConfig, performed: Set<string>): Storage {
  const storage = createStorage(config);
  const tables: Record<string, DataTable> = { [config.topicsTable]: 'topics', [config.logTable]: 'log', [config.groupsTable]: 'groups' };
  const tableOf = (name: string) => tables[name] ?? `unknown table ${name}`;
  for (const client of [storage.ddb, storage.s3] as unknown as Array<{ send: (command: Command) => Promise<unknown> }>) {
    const send = client.send.bind(client);
    client.send = (command: Command) => {
      for (const action of actionsOf(command, tableOf)) performed.add(action);
      return send(command);
    };
  }
  return storage;
}

function granted(role: FunctionRole): Set<string> {
  const tableActions = Object.entries(TABLE_ACTIONS[role]).flatMap(([table, actions]) => actions!.map((a) => `${table}:${a}`));
  const objectActions = Object.entries(OBJECT_ACTIONS[role]).flatMap(([prefix, actions]) => actions!.map((a) => `${prefix}:${a}`));
  return new Set([...tableActions, ...objectActions]);
}

let config: QueueConfig;

beforeAll(async () => {
  config = testConfig();
  await testStorage(config);
});

async function performedBy(role: HttpRole, scenario: (call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>) => Promise<void>): Promise<Set<string>> {
  const performed = new Set<string>();
  const app = createApp(createServices(recordingStorage(config, performed)), [role], undefined);
  await scenario(async (method, path, body) => {
    const res = await app.request(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    expect(res.status, `${method} ${path}: ${text}`).toBeLessThan(400);
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  });
  await drainBackground();
  return performed;
}

/** The maintenance function's handler on recording clients. */
function recordingMaintenance(performed: Set<string>) {
  const storage = recordingStorage(config, performed);
  // No grace periods: trashed segments and the deleted topic go in the same sweep.
  return maintenanceHandler(storage, createServices(storage, {}, {}, { retention: { deleteGraceMs: 0 }, collector: { graceMs: 0 } }).maintenance);
}

const union = (...sets: Array<Set<string>>) => new Set(sets.flatMap((set) => [...set]));

describe('granted actions cover what each function does', () => {
  it('admin, produce, fetch, groups, upstash and maintenance', async () => {
    const admin = await performedBy('admin', async (call) => {
      // Batches are due for a segment as soon as they are committed.
      await call('POST', '/v1/topics', { name: 'iam', partitions: 2, config: { 'segment.ms': 1 } });
      await call('POST', '/v1/topics', { name: 'doomed', partitions: 1 });
      await call('GET', '/v1/topics');
      await call('GET', '/v1/topics/iam');
      await call('POST', '/v1/topics/iam/partitions', { count: 3 });
      await call('DELETE', '/v1/topics/doomed');
    });
    const produce = await performedBy('produce', async (call) => {
      // Small requests go inline in their entries, larger ones through an intake object in S3.
      for (let i = 0; i < 10; i++) await call('POST', '/v1/topics/iam/records', { acks: (['all', '1', '0'] as const)[i % 3], records: [{ value: i % 2 ? `v${i}` : `v${i}`.padEnd(8192, '.'), partition: 0 }, { key: `k${i}`, value: 'x' }] });
      // An idempotent producer, and transactions committed, aborted and one left to time out.
      const { body: idempotent } = await call('POST', '/v1/producers', {});
      await call('POST', '/v1/topics/iam/records', { records: [{ value: 'i', partition: 1 }], ...idempotent, sequences: [{ partition: 1, baseSequence: 0 }] });
      const { body: txn } = await call('POST', '/v1/producers', { transactionalId: 'iam-txn', transactionTimeoutMs: 1000 });
      const transactional = (baseSequence: number) => ({ records: [{ value: 't', partition: 0 }], ...txn, sequences: [{ partition: 0, baseSequence }], transactionalId: 'iam-txn' });
      await call('POST', '/v1/topics/iam/records', transactional(0));
      await call('POST', '/v1/transactions/iam-txn/abort', txn);
      await call('POST', '/v1/topics/iam/records', transactional(1));
      await call('POST', '/v1/transactions/iam-txn/commit', txn);
      await call('POST', '/v1/topics/iam/records', transactional(2));
      // One more left to time out where no read_committed reader goes: maintenance aborts it.
      const { body: held } = await call('POST', '/v1/producers', { transactionalId: 'iam-held', transactionTimeoutMs: 1000 });
      await call('POST', '/v1/topics/iam/records', { records: [{ value: 'h', partition: 2 }], ...held, sequences: [{ partition: 2, baseSequence: 0 }], transactionalId: 'iam-held' });
    });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const fetch = await performedBy('fetch', async (call) => {
      // Held by the timed-out transaction, the reader aborts it.
      await call('GET', '/v1/topics/iam/partitions/0/records?offset=0&isolation=read_committed');
      await call('GET', '/v1/topics/iam/partitions/0/records?offset=0');
      await call('GET', '/v1/topics/iam/partitions/0/records?offset=3&maxRecords=2');
      const { body } = await call('GET', '/v1/topics/iam/partitions/0/records?offset=0&maxRecords=10000');
      await call('GET', `/v1/topics/iam/partitions/0/records?offset=${body.highWatermark}&waitMs=50`);
    });
    const groups = await performedBy('groups', async (call) => {
      const { body: member } = await call('POST', '/v1/groups/iam-group/members', { topics: ['iam'], autoOffsetReset: 'earliest' });
      await call('POST', `/v1/groups/iam-group/members/${member.memberId}/heartbeat`, { memberEpoch: member.memberEpoch, owned: [] });
      const { body: first } = await call('POST', `/v1/groups/iam-group/members/${member.memberId}/poll`, {});
      const { body: second } = await call('POST', `/v1/groups/iam-group/members/${member.memberId}/poll`, { ack: first.pollId });
      await call('GET', '/v1/groups/iam-group');
      await call('GET', '/v1/groups');
      await call('DELETE', `/v1/groups/iam-group/members/${member.memberId}?ack=${second.pollId}`);
      await call('POST', '/v1/groups/iam-group/offsets', { offsets: [{ topic: 'iam', partition: 0, offset: 1 }] });
      await call('POST', '/v1/groups/iam-group/offsets/reset', { topic: 'iam', to: 'earliest' });
      await call('DELETE', '/v1/groups/iam-group');
    });

    // After activity: maintenance rolls every partition's batches into segments.
    const maintenance = new Set<string>();
    const { topicId } = await getTopic(createStorage(config), 'iam');
    const activity = logStreamEvent([0, 1, 2].map((partition) => ({ p: logPartitionKey(topicId, partition), o: 0 })));
    expect(await recordingMaintenance(maintenance)(activity)).toEqual({ batchItemFailures: [] });
    // Readers now read segments, by offset and by timestamp.
    const fetchSegments = await performedBy('fetch', async (call) => {
      await call('GET', '/v1/topics/iam/partitions/0/records?offset=0');
      await call('GET', '/v1/topics/iam/partitions/0/offsets?timestamp=0');
    });
    const pollSegments = await performedBy('groups', async (call) => {
      const { body: member } = await call('POST', '/v1/groups/iam-late/members', { topics: ['iam'], autoOffsetReset: 'earliest' });
      await call('POST', `/v1/groups/iam-late/members/${member.memberId}/poll`, {});
    });
    // Upstash's API, on the segments too (fetch and consume read them).
    const upstash = await performedBy('upstash', async (call) => {
      await call('POST', '/produce', [{ topic: 'iam', value: 'u1' }, { topic: 'iam', value: 'u2', key: 'k', partition: 1 }]);
      await call('GET', '/produce/iam/u3');
      await call('POST', '/webhook?topic=iam', 'hook');
      await call('POST', '/fetch', { topic: 'iam', partition: 0, offset: 0, timeout: 0 });
      await call('POST', '/consume/iam-upstash/one', { topic: 'iam', timeout: 0 });
      await call('POST', '/consume/iam-upstash/one', { topic: 'iam', timeout: 0 });
      await call('POST', '/commit/iam-upstash/one', undefined);
      await call('POST', '/commit/iam-upstash/one', { topic: 'iam', partition: 0, offset: 0 });
      await call('POST', '/committed/iam-upstash/one', [{ topic: 'iam', partition: 0 }]);
      await call('POST', '/offsets/0', [{ topic: 'iam', partition: 0 }]);
      await call('GET', '/topics');
      await call('GET', '/consumers');
      await call('POST', '/delete-consumer/iam-upstash/one', undefined);
    });

    // Retention removes the segments at the next sweep, and admin moves the log start.
    const adminLater = await performedBy('admin', async (call) => {
      await call('PATCH', '/v1/topics/iam/config', { config: { 'retention.ms': 1 } });
      await call('POST', '/v1/topics/iam/delete-records', { partitions: [{ partition: 1, offset: 1 }] });
      await call('GET', '/v1/topics/iam');
    });
    await recordingMaintenance(maintenance)(scheduledEvent());
    // The scenario did roll, expire, release intake objects, and collect the deleted topic.
    for (const action of ['logs:s3:PutObject', 'logs:s3:DeleteObject', 'segments:s3:DeleteObject', 'segments:s3:ListBucket', 'logs:s3:ListBucket', 'log:ConditionCheckItem', 'log:BatchWriteItem']) {
      expect(maintenance, action).toContain(action);
    }

    const performedByRole: Record<FunctionRole, Set<string>> = {
      admin: union(admin, adminLater),
      produce,
      fetch: union(fetch, fetchSegments),
      groups: union(groups, pollSegments),
      upstash,
      maintenance,
    };
    for (const [role, performed] of Object.entries(performedByRole) as Array<[FunctionRole, Set<string>]>) {
      expect(performed.size, role).toBeGreaterThan(0);
      expect([...performed].filter((action) => !granted(role).has(action)), `${role} performs actions its role is not granted`).toEqual([]);
    }
  });
});
