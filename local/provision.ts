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

type AwsError = { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };

/** Creates the bucket only when HeadBucket says it does not exist; any other answer is an error. */
async function ensureBucket(storage: Storage): Promise<void> {
  const bucket = storage.config.bucket;
  try {
    await storage.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    // A bucket that exists but cannot be read (an S3 error, access denied) must not be taken for a
    // missing one: creating it would fail with a misleading "already exists", or hide the fault.
    const e = err as AwsError;
    if (!(e.$metadata?.httpStatusCode === 404 || e.name === 'NotFound' || e.name === 'NoSuchBucket')) {
      throw new Error(`cannot check S3 bucket ${bucket} at ${storage.config.s3Endpoint ?? 'AWS'}: HeadBucket answered HTTP ${e.$metadata?.httpStatusCode ?? '?'} ${e.name ?? ''}`.trimEnd(), { cause: err });
    }
  }
  try {
    await storage.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    // Another process provisioning the same names created it between our HeadBucket and CreateBucket
    // (s3rver answers BucketAlreadyExists for a bucket of its own).
    const name = (err as AwsError).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  }
}

export async function provision(storage: Storage): Promise<void> {
  const { config } = storage;
  await Promise.all([
    ensureTable(storage, config.topicsTable, TOPICS_TABLE),
    ensureTable(storage, config.logTable, LOG_TABLE),
    ensureTable(storage, config.groupsTable, GROUPS_TABLE),
    ensureBucket(storage),
  ]);
}
