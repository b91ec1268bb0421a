// Every AWS action a function's code performs is one the construct grants that function's role. The
// routes run in-process on recording clients against the local stack; a call the role may not make
// would fail in AWS with AccessDenied, which no emulator reproduces.
import { beforeAll, describe, expect, it } from 'vitest';
import { SEGMENT_ACTIONS, TABLE_ACTIONS, type DataTable } from '../../cdk/serverless-queue.ts';
import type { FunctionRole } from '../../cdk/bundling.ts';
import { createApp } from '../../lambdas/http/app.ts';
import { drainBackground } from '../../lambdas/http/background.ts';
import { createServices } from '../../lambdas/http/services.ts';
import type { QueueConfig } from '../../lib/config.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';
import { testConfig, testStorage } from '../support/stack.ts';

type Command = { constructor: { name: string }; input: Record<string, unknown> };

const DYNAMO_ACTION: Record<string, string> = {
  GetCommand: 'GetItem', PutCommand: 'PutItem', UpdateCommand: 'UpdateItem', DeleteCommand: 'DeleteItem',
  QueryCommand: 'Query', ScanCommand: 'Scan', BatchWriteCommand: 'BatchWriteItem', BatchGetCommand: 'BatchGetItem',
};
const TRANSACT_ACTION: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' };

/** The IAM actions a command needs, as "table:Action" or "s3:Action". */
function actionsOf(command: Command, tableOf: (name: string) => string): string[] {
  const { name } = command.constructor;
  const input = command.input;
  if (name === 'TransactWriteCommand') {
    return (input.TransactItems as Array<Record<string, { TableName: string }>>).map((item) => {
      const [kind, op] = Object.entries(item)[0]!;
      return `${tableOf(op.TableName)}:${TRANSACT_ACTION[kind]}`;
    });
  }
  if (name === 'BatchWriteCommand') return Object.keys(input.RequestItems as object).map((t) => `${tableOf(t)}:BatchWriteItem`);
  if (DYNAMO_ACTION[name]) return [`${tableOf(input.TableName as string)}:${DYNAMO_ACTION[name]}`];
  return [`s3:${name.replace(/Command$/, '')}`];
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
  return new Set([...tableActions, ...SEGMENT_ACTIONS[role]]);
}

let config: QueueConfig;

beforeAll(async () => {
  config = testConfig();
  await testStorage(config);
});

async function performedBy(role: FunctionRole, scenario: (call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>) => Promise<void>): Promise<Set<string>> {
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

describe('granted actions cover what each function does', () => {
  it('admin, produce, fetch and groups', async () => {
    const admin = await performedBy('admin', async (call) => {
      await call('POST', '/v1/topics', { name: 'iam', partitions: 2 });
      await call('POST', '/v1/topics', { name: 'doomed', partitions: 1 });
      await call('GET', '/v1/topics');
      await call('GET', '/v1/topics/iam');
      await call('POST', '/v1/topics/iam/partitions', { count: 3 });
      await call('DELETE', '/v1/topics/doomed');
    });
    const produce = await performedBy('produce', async (call) => {
      for (let i = 0; i < 10; i++) await call('POST', '/v1/topics/iam/records', { acks: (['all', '1', '0'] as const)[i % 3], records: [{ value: `v${i}`, partition: 0 }, { key: `k${i}`, value: 'x' }] });
    });
    const fetch = await performedBy('fetch', async (call) => {
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
    for (const [role, performed] of Object.entries({ admin, produce, fetch, groups }) as Array<[FunctionRole, Set<string>]>) {
      expect(performed.size, role).toBeGreaterThan(0);
      expect([...performed].filter((action) => !granted(role).has(action)), `${role} performs actions its role is not granted`).toEqual([]);
    }
  });
});
