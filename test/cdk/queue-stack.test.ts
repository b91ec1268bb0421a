// Template-level checks of the deployable stack: security and cost properties of every resource,
// IAM actions per function, environment wiring, and cdk-nag AwsSolutions with zero unsuppressed
// findings. Each variant is synthesised once, with real (local esbuild) bundling, offline.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, RemovalPolicy, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import cdkNag from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUPS_TABLE, LOG_TABLE, TOPICS_TABLE, type TableSchema } from '../../lib/aws/schema.ts';
import { API_KEYS_TABLE } from '../../lib/auth/api-keys.ts';
import { FUNCTION_ROLES, HTTP_ROLES, type DeployedHandler, type FunctionRole } from '../../cdk/bundling.ts';
import { QueueStack } from '../../cdk/queue-stack.ts';
import type { ServerlessQueueProps } from '../../cdk/serverless-queue.ts';

interface Synthesised {
  stack: QueueStack;
  template: Template;
  outdir: string;
  /** Logical id of a construct's CloudFormation resource. */
  id(construct: { node: { defaultChild?: unknown } }): string;
}

const outdirs: string[] = [];

function synth(props: ServerlessQueueProps, extend?: (stack: QueueStack) => void): Synthesised {
  const outdir = mkdtempSync(join(tmpdir(), 'queue-cdk-'));
  outdirs.push(outdir);
  const app = new App({ outdir });
  const stack = new QueueStack(app, 'QueueTest', { queue: props });
  extend?.(stack);
  const template = Template.fromStack(stack);
  return { stack, template, outdir, id: (c) => stack.resolve(stack.getLogicalId(c.node.defaultChild as CfnElement)) as string };
}

afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

type TableName = 'topics' | 'log' | 'groups' | 'apiKeys';
/** What a grant applies to: a table, the log table's stream, the bucket itself, or objects under a prefix. */
type Granted = TableName | 'logStream' | 'bucket' | 'segments/*' | 'logs/*';

/** The least privilege each role needs, stated independently of the construct's own table. */
/** A synth bundles all seven functions with esbuild: minutes on a loaded two-core machine. */
const SYNTH_TIMEOUT_MS = 240_000;

const EXPECTED_ACCESS: Record<FunctionRole, Partial<Record<Granted, string[]>>> = {
  produce: {
    topics: ['dynamodb:GetItem'],
    log: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
    groups: ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    'segments/*': ['s3:PutObject'],
  },
  fetch: {
    topics: ['dynamodb:GetItem'],
    log: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
    groups: ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    'segments/*': ['s3:GetObject'],
    'logs/*': ['s3:GetObject'],
  },
  admin: {
    topics: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
    log: ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
  },
  groups: {
    groups: ['dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
    topics: ['dynamodb:GetItem'],
    log: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
    'segments/*': ['s3:GetObject'],
    'logs/*': ['s3:GetObject'],
  },
  upstash: {
    groups: ['dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan'],
    topics: ['dynamodb:GetItem', 'dynamodb:Scan'],
    log: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
    'segments/*': ['s3:GetObject', 's3:PutObject'],
    'logs/*': ['s3:GetObject'],
  },
  maintenance: {
    topics: ['dynamodb:GetItem', 'dynamodb:Scan'],
    log: ['dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
    // A transaction past its timeout that holds compaction is aborted (lib/producers).
    groups: ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    logStream: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
    bucket: ['s3:ListBucket'],
    'segments/*': ['s3:DeleteObject', 's3:GetObject'],
    'logs/*': ['s3:DeleteObject', 's3:PutObject'],
  },
};

/** Actions granted to a function's role, keyed by the resource they apply to. */
function grantsOf(s: Synthesised, role: DeployedHandler): Record<string, string[]> {
  const fn = s.template.findResources('AWS::Lambda::Function', { Properties: { FunctionName: `queue-${role}` } });
  const fnProps = Object.values(fn)[0]!.Properties as { Role: { 'Fn::GetAtt': [string, string] } };
  const roleId = fnProps.Role['Fn::GetAtt'][0];
  const grants: Record<string, Set<string>> = {};
  for (const policy of Object.values(s.template.findResources('AWS::IAM::Policy'))) {
    const { Roles, PolicyDocument } = policy.Properties as { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Array<{ Effect: string; Action: string | string[]; Resource: unknown }> } };
    if (!Roles.some((r) => r.Ref === roleId)) continue;
    for (const statement of PolicyDocument.Statement) {
      expect(statement.Effect).toBe('Allow');
      for (const resource of [statement.Resource].flat()) {
        const key = JSON.stringify(resource);
        for (const action of [statement.Action].flat()) (grants[key] ??= new Set()).add(action);
      }
    }
  }
  return Object.fromEntries(Object.entries(grants).map(([k, v]) => [k, [...v].sort()]));
}

function nagFindings(s: Synthesised) {
  const report = new cdkNag.AwsSolutionsChecks().validateScope(s.stack);
  return report.violations.map((v) => `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
}

function expectTable(s: Synthesised, name: string, schema: TableSchema, deletionPolicy: string, streamViewType?: string): void {
  const keys = [schema.partitionKey, ...(schema.sortKey ? [schema.sortKey] : [])];
  s.template.hasResource('AWS::DynamoDB::Table', {
    DeletionPolicy: deletionPolicy,
    Properties: {
      TableName: name,
      KeySchema: keys.map((k, i) => ({ AttributeName: k.name, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
      AttributeDefinitions: keys.map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
      BillingMode: 'PAY_PER_REQUEST',
      ProvisionedThroughput: Match.absent(),
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      // DynamoDB always encrypts at rest; no SSESpecification means the AWS-owned key, which is free.
      SSESpecification: Match.absent(),
      TimeToLiveSpecification: schema.ttlAttribute ? { AttributeName: schema.ttlAttribute, Enabled: true } : Match.absent(),
      StreamSpecification: streamViewType ? { StreamViewType: streamViewType } : Match.absent(),
    },
  });
}

describe('QueueStack with defaults (IAM auth)', () => {
  let s: Synthesised;
  let caller: iam.Role;
  beforeAll(() => {
    s = synth({}, (stack) => {
      caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
      stack.queue.grantInvokeUrls(caller, ['produce', 'fetch']);
    });
  }, SYNTH_TIMEOUT_MS);

  it('keeps the segment bucket private, encrypted, TLS-only, and cleans up failed uploads', () => {
    s.template.resourceCountIs('AWS::S3::Bucket', 1);
    s.template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LifecycleConfiguration: { Rules: [Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' })] },
      },
    });
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  it('creates the tables from lib/aws/schema.ts: on-demand, PITR, TTL where items expire, retained; the log streams its keys', () => {
    s.template.resourceCountIs('AWS::DynamoDB::Table', 3);
    expectTable(s, 'queue-topics', TOPICS_TABLE, 'Retain');
    expectTable(s, 'queue-log', LOG_TABLE, 'Retain', 'KEYS_ONLY');
    expectTable(s, 'queue-groups', GROUPS_TABLE, 'Retain');
  });

  it('runs one arm64 nodejs22.x function per role, wired to the bucket and tables', () => {
    s.template.resourceCountIs('AWS::Lambda::Function', 7); // the roles and the router
    const memory: Record<FunctionRole, number> = { produce: 1024, fetch: 1024, admin: 512, groups: 512, upstash: 1024, maintenance: 1024 };
    const { queue } = s.stack;
    for (const role of FUNCTION_ROLES) {
      const http = role !== 'maintenance';
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `queue-${role}`,
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: memory[role],
        Timeout: http ? 30 : 300,
        LoggingConfig: { LogGroup: { Ref: s.id(queue.functions[role].logGroup) } },
        Environment: {
          Variables: {
            QUEUE_BUCKET: { Ref: s.id(queue.bucket) },
            QUEUE_TOPICS_TABLE: { Ref: s.id(queue.tables.topics) },
            QUEUE_LOG_TABLE: { Ref: s.id(queue.tables.log) },
            QUEUE_GROUPS_TABLE: { Ref: s.id(queue.tables.groups) },
            // Maintenance serves no requests, so it has no auth mode.
            QUEUE_AUTH_MODE: http ? 'iam' : Match.absent(),
            QUEUE_API_KEYS_TABLE: Match.absent(),
          },
        },
      });
    }
  });

  it('bundles each handler, AWS SDK included, as ESM with the createRequire banner', () => {
    for (const role of FUNCTION_ROLES) {
      const code = s.template.toJSON().Resources[s.id(s.stack.queue.functions[role])].Properties.Code as { S3Key: string };
      const bundle = join(s.outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`, 'index.mjs');
      expect(existsSync(bundle), `${role} bundle at ${bundle}`).toBe(true);
      const source = readFileSync(bundle, 'utf8');
      expect(source.startsWith("import { createRequire as __queueCreateRequire } from 'node:module';")).toBe(true);
      // Every static import left is a Node built-in: dependencies, the SDK too, are in the bundle.
      const imported = [...source.matchAll(/\bfrom\s*["']([@\w][^"']*)["']/g)].map((m) => m[1]!);
      expect(imported.length).toBeGreaterThan(0);
      expect(imported.filter((specifier) => !specifier.startsWith('node:')), role).toEqual([]);
    }
  });

  it('serves every HTTP role on an AWS_IAM Function URL; produce streams its responses', () => {
    s.template.resourceCountIs('AWS::Lambda::Url', 6); // and the router's
    for (const role of HTTP_ROLES) {
      s.template.hasResourceProperties('AWS::Lambda::Url', {
        TargetFunctionArn: { 'Fn::GetAtt': [s.id(s.stack.queue.functions[role]), 'Arn'] },
        AuthType: 'AWS_IAM',
        InvokeMode: role === 'produce' ? 'RESPONSE_STREAM' : 'BUFFERED',
      });
    }
    // Nothing grants invocation to the world: the one permission lets the schedule invoke maintenance.
    s.template.resourceCountIs('AWS::Lambda::Permission', 1);
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [s.id(s.stack.queue.functions.maintenance), 'Arn'] },
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [s.id(s.stack.queue.maintenanceSchedule), 'Arn'] },
    });
  });

  it('gives clients one base URL: the router, which may only invoke the four Function URLs', () => {
    const { queue } = s.stack;
    s.template.hasResourceProperties('AWS::Lambda::Url', { TargetFunctionArn: { 'Fn::GetAtt': [s.id(queue.router), 'Arn'] }, AuthType: 'AWS_IAM', InvokeMode: 'BUFFERED' });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'queue-router',
      MemorySize: 256,
      Timeout: 35,
      Environment: { Variables: Object.fromEntries([['QUEUE_AUTH_MODE', 'iam'], ...HTTP_ROLES.map((role) => [`QUEUE_${role.toUpperCase()}_URL`, { 'Fn::GetAtt': [s.id(queue.urls[role]), 'FunctionUrl'] }])]) },
    });
    const grants = grantsOf(s, 'router');
    const invoked = Object.entries(grants).filter(([, actions]) => actions.some((a) => a.startsWith('lambda:')));
    expect(invoked.map(([resource]) => resource).sort()).toEqual(HTTP_ROLES.map((role) => JSON.stringify({ 'Fn::GetAtt': [s.id(queue.functions[role]), 'Arn'] })).sort());
    for (const [, actions] of invoked) expect(actions.every((a) => a.startsWith('lambda:Invoke'))).toBe(true);
    // Nothing but invoking and its own logs: no table, bucket or key access.
    expect(Object.values(grants).flat().filter((a) => !a.startsWith('lambda:Invoke') && !a.startsWith('logs:'))).toEqual([]);
    s.template.hasOutput('Url', { Value: { 'Fn::GetAtt': [s.id(queue.url), 'FunctionUrl'] } });
  });

  it('wakes maintenance with new items of the log table, batched for a minute, and sweeps hourly', () => {
    const maintenance = s.id(s.stack.queue.functions.maintenance);
    s.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: maintenance },
      EventSourceArn: { 'Fn::GetAtt': [s.id(s.stack.queue.tables.log), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      // Head updates (a MODIFY per produce) and maintenance's own deletions never invoke it.
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'] }) }] },
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 60,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 3,
    });
    s.template.resourceCountIs('AWS::Events::Rule', 1);
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [maintenance, 'Arn'] } })],
    });
    // Not an HTTP function: no URL, no output.
    expect(s.template.findResources('AWS::Lambda::Url', { Properties: { TargetFunctionArn: { 'Fn::GetAtt': [maintenance, 'Arn'] } } })).toEqual({});
  });

  it('grants each function exactly the actions its code uses, on its own resources, without wildcards', () => {
    const { queue } = s.stack;
    const bucketArn = { 'Fn::GetAtt': [s.id(queue.bucket), 'Arn'] };
    const resources: Record<Granted, string> = {
      topics: JSON.stringify({ 'Fn::GetAtt': [s.id(queue.tables.topics), 'Arn'] }),
      log: JSON.stringify({ 'Fn::GetAtt': [s.id(queue.tables.log), 'Arn'] }),
      groups: JSON.stringify({ 'Fn::GetAtt': [s.id(queue.tables.groups), 'Arn'] }),
      apiKeys: 'absent in IAM mode',
      logStream: JSON.stringify({ 'Fn::GetAtt': [s.id(queue.tables.log), 'StreamArn'] }),
      bucket: JSON.stringify(bucketArn),
      'segments/*': JSON.stringify({ 'Fn::Join': ['', [bucketArn, '/segments/*']] }),
      'logs/*': JSON.stringify({ 'Fn::Join': ['', [bucketArn, '/logs/*']] }),
    };
    for (const role of FUNCTION_ROLES) {
      const logGroup = JSON.stringify({ 'Fn::GetAtt': [s.id(queue.functions[role].logGroup), 'Arn'] });
      const expected = Object.fromEntries([
        ...Object.entries(EXPECTED_ACCESS[role]).map(([name, actions]) => [resources[name as Granted], actions]),
        [logGroup, ['logs:CreateLogStream', 'logs:PutLogEvents']],
      ]);
      expect(grantsOf(s, role), role).toEqual(expected);
    }
    // Listing is on the bucket, so it is confined to the two prefixes by a condition.
    s.template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([{ Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringLike: { 's3:prefix': ['segments/*', 'logs/*'] } } }]) },
    });
    for (const role of Object.values(s.template.findResources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('grants callers SigV4 access to chosen endpoints, through Function URLs only', () => {
    const statements = (fn: string) => [
      { Effect: 'Allow', Action: 'lambda:InvokeFunctionUrl', Resource: { 'Fn::GetAtt': [fn, 'Arn'] }, Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } } },
      { Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [fn, 'Arn'] }, Condition: { Bool: { 'lambda:InvokedViaFunctionUrl': true } } },
    ];
    s.template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: s.id(caller) }],
      PolicyDocument: { Statement: [...statements(s.id(s.stack.queue.functions.produce)), ...statements(s.id(s.stack.queue.functions.fetch))] },
    });
  });

  it('keeps logs for a month and creates no alarms (they cost money while idle)', () => {
    s.template.resourceCountIs('AWS::Logs::LogGroup', 7);
    s.template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
  });

  it('outputs the endpoints, bucket and table names', () => {
    for (const name of ['ProduceUrl', 'FetchUrl', 'AdminUrl', 'GroupsUrl', 'UpstashUrl', 'AuthMode', 'BucketName', 'TopicsTableName', 'LogTableName', 'GroupsTableName']) {
      s.template.hasOutput(name, {});
    }
    expect(s.template.findOutputs('ApiKeysTableName')).toEqual({});
    expect(s.template.findOutputs('MaintenanceUrl')).toEqual({});
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged in code', () => {
    expect(nagFindings(s)).toEqual([]);
  });
});

describe('QueueStack in API-key mode with alarms and DESTROY', () => {
  let s: Synthesised;
  beforeAll(() => {
    s = synth({ authMode: 'api-key', alarms: true, removalPolicy: RemovalPolicy.DESTROY, namePrefix: 'queue', memorySizes: { admin: 256 } });
  }, SYNTH_TIMEOUT_MS);

  it('makes the URLs public only because every handler checks API keys', () => {
    s.template.allResourcesProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
    for (const role of HTTP_ROLES) {
      s.template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `queue-${role}`,
        Environment: { Variables: Match.objectLike({ QUEUE_AUTH_MODE: 'api-key', QUEUE_API_KEYS_TABLE: { Ref: s.id(s.stack.queue.apiKeysTable!) } }) },
      });
    }
    s.template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'queue-admin', MemorySize: 256 });
    s.template.hasResourceProperties('AWS::Lambda::Permission', { Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' });
    s.template.hasOutput('ApiKeysTableName', {});
  });

  it('stores key hashes in their own table, readable by the HTTP handlers with GetItem only', () => {
    s.template.resourceCountIs('AWS::DynamoDB::Table', 4);
    expectTable(s, 'queue-api-keys', API_KEYS_TABLE, 'Delete');
    const apiKeys = JSON.stringify({ 'Fn::GetAtt': [s.id(s.stack.queue.apiKeysTable!), 'Arn'] });
    for (const role of HTTP_ROLES) expect(grantsOf(s, role)[apiKeys], role).toEqual(['dynamodb:GetItem']);
    expect(grantsOf(s, 'maintenance')[apiKeys]).toBeUndefined();
  });

  it('alarms on errors and throttles of every function, treating silence as healthy', () => {
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 14);
    for (const metric of ['Errors', 'Throttles']) {
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metric, Namespace: 'AWS/Lambda', Threshold: 1, TreatMissingData: 'notBreaching' });
    }
  });

  it('deletes data on removal, emptying the bucket first', () => {
    s.template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    s.template.resourceCountIs('Custom::S3AutoDeleteObjects', 1);
    s.template.allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged in code', () => {
    expect(nagFindings(s)).toEqual([]);
  });
});
