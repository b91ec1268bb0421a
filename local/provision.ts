// Creates the bucket and tables for local runs and tests (in AWS the CDK stack owns them).
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { GROUPS_TABLE, LOG_TABLE, TOPICS_TABLE, type TableSchema } from '../lib/aws/schema.ts';
import type { Storage } from '../lib/storage.ts';

export async function ensureTable(storage: Storage, name: string, schema: TableSchema): Promise<void> {
  const keys = [schema.partitionKey, ...(schema.sortKey ? [schema.sortKey] : [])];
  try {
    await storage.ddb.send(new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: keys.map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
      KeySchema: keys.map((k, i) => ({ AttributeName: k.name, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
    }));
    if (schema.ttlAttribute) {
      await storage.ddb.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true } }));
    }
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  for (;;) {
    const { Table } = await storage.ddb.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function provision(storage: Storage): Promise<void> {
  const { config } = storage;
  await Promise.all([
    ensureTable(storage, config.topicsTable, TOPICS_TABLE),
    ensureTable(storage, config.logTable, LOG_TABLE),
    ensureTable(storage, config.groupsTable, GROUPS_TABLE),
    storage.s3.send(new HeadBucketCommand({ Bucket: config.bucket })).catch(() => storage.s3.send(new CreateBucketCommand({ Bucket: config.bucket }))),
  ]);
}
