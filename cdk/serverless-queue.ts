// The queue as a reusable construct: segment bucket, tables, one function per route group with its
// Function URL, the maintenance function woken by the log table's stream and an hourly schedule, and
// the least IAM permissions each role's code paths need. Nothing here costs money while idle except
// stored bytes and the hourly maintenance sweep, about $0.006 a month plus $0.0023 per partition
// (docs/deploy.md, "Cost at idle"); alarms cost money while idle and are therefore opt-in.
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { GROUPS_TABLE, LOG_TABLE, TOPICS_TABLE, type TableSchema } from '../lib/aws/schema.ts';
import { API_KEYS_TABLE } from '../lib/auth/api-keys.ts';
import type { AuthMode } from '../lambdas/http/auth.ts';
import { HANDLER_BUNDLE, handlerEntry, HTTP_ROLES, PROJECT_ROOT, type DeployedHandler, type FunctionRole, type HttpRole } from './bundling.ts';

export type { AuthMode, FunctionRole, HttpRole };

export interface ServerlessQueueProps {
  /** Prefix of the table and function names; distinct prefixes let several queues share an account. @default 'queue' */
  readonly namePrefix?: string;
  /** How long the functions' CloudWatch logs are kept. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the bucket, tables and log groups when they leave the stack. RETAIN keeps the
   * data (delete it by hand); DESTROY deletes it, emptying the bucket first. @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Memory (MB, which also sets CPU share) per function. Maintenance holds up to four segments being
const DEFAULT_MEMORY_MB: Record<DeployedHandler, number> = { produce: 1024, fetch: 1024, admin: 512, groups: 512, upstash: 1024, maintenance: 1024, router: 256 };
   */
  readonly memorySizes?: Readonly<Partial<Record<DeployedHandler, number>>>;
  /**
   * 'iam': Function URLs with AWS_IAM auth, callers sign with SigV4. 'api-key': public Function URLs
   * whose handlers require a key from the API keys table. Never open without one of the two. @default 'iam'
   */
  readonly authMode?: AuthMode;
  /** CloudWatch alarms on each function's errors and throttles; each alarm costs about $0.10/month. @default false */
  readonly alarms?: boolean;
}

export const DEFAULT_MEMORY_MB: Record<DeployedHandler, number> = { produce: 1024, fetch: 1024, admin: 512, groups: 512, upstash: 1024, maintenance: 1024, router: 256 };

// Long enough for the longest request each role serves: acks=all waits out the 15 s gap timeout plus
// 10 s, fetch and poll long-poll up to 20 s.
const HTTP_TIMEOUT = Duration.seconds(30);
// The router waits for the function it forwards to.
const ROUTER_TIMEOUT = Duration.seconds(35);
// A pass renews its partition's lease (60 s) between segment rolls and rolls a bounded number; a
// sweep that runs out of time leaves the rest to the next trigger (leases of a killed run expire).
const MAINTENANCE_TIMEOUT = Duration.minutes(5);
// Idle partitions get no stream events: this is how late their retention (and their last segment
// roll) may happen, and what the idle cost is proportional to.
const SWEEP_RATE = Duration.hours(1);

export type DataTable = 'topics' | 'log' | 'groups';

/** What idempotent producers and transactions do in the groups table (lib/producers). */
const PRODUCER_STATE_ACTIONS = ['GetItem', 'PutItem', 'UpdateItem', 'ConditionCheckItem'];

/** DynamoDB actions per role and table, from the calls each role's code makes (see the comments). */
export const TABLE_ACTIONS: Record<FunctionRole, Partial<Record<DataTable, string[]>>> = {
  // Producer: topic lookup; Sequencer.reserve/advance (UpdateItem), commit/tombstone (PutItem), read.
  // Idempotent producers and transactions (lib/producers): producer, sequence and transaction items
  // in the groups table (GetItem, PutItem, UpdateItem, ConditionCheckItem in the batch's commit),
  // a transaction's group offsets (PutItem, ConditionCheckItem on the group item; GetItem to explain
  // a refusal); pins and markers on the log (UpdateItem, PutItem).
  produce: { topics: ['GetItem'], log: ['GetItem', 'Query', 'PutItem', 'UpdateItem'], groups: PRODUCER_STATE_ACTIONS },
  // Fetcher: topic lookup; Sequencer.readResolved, which tombstones expired holes and advances hwm;
  // a read_committed reader held by a timed-out transaction aborts it (TransactionCoordinator).
  fetch: { topics: ['GetItem'], log: ['GetItem', 'Query', 'PutItem', 'UpdateItem'], groups: PRODUCER_STATE_ACTIONS },
  // topic-store: create/describe/list/delete/add partitions/alter config; new topics' heads via
  // BatchWriteItem, added partitions' heads via conditional PutItem (never overwriting a live head),
  // deleted topics recorded for the collector (PutItem) and their heads retired (UpdateItem);
  // describe queries the uncompacted entries; DeleteRecords raises the log start (UpdateItem).
  admin: { topics: ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Scan'], log: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'BatchWriteItem'] },
  // GroupStore: conditional Puts and TransactWriteItems (Put, Delete, ConditionCheck), offsets by
  // Query, group list by Scan; polls read the log through the Fetcher's path, and the topics'
  // change markers (BatchGetItem, lib/log/changes.ts).
  groups: {
    groups: ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query', 'Scan', 'ConditionCheckItem'],
    topics: ['GetItem'],
    log: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'BatchGetItem'],
  },
  // lib/lifecycle: leases and partition state by UpdateItem and GetItem; compaction reads entries
  // through the Sequencer (Query, and its tombstones and hwm advances), commits and drops them in
  // transactions fenced by the lease (PutItem, DeleteItem, ConditionCheckItem), counts releases of
  // shared intake objects (UpdateItem); the collector queries its records and deletes them
  // (DeleteItem) and a deleted topic's items (BatchWriteItem); the sweep lists topics (Scan), the
  // collector checks a deleted topic's name (GetItem). Compaction held by a transaction past its
  // timeout aborts it (TransactionCoordinator: producer and transaction items, markers on the log).
  // Upstash's API behind one URL: produce, fetch and consumer groups (change markers too), and the topic list (Scan).
  upstash: {
    groups: ['GetItem', 'PutItem', 'DeleteItem', 'Query', 'Scan', 'ConditionCheckItem'],
    topics: ['GetItem', 'Scan'],
    log: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'BatchGetItem'],
  },
  maintenance: {
    topics: ['GetItem', 'Scan'],
    log: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'ConditionCheckItem'],
    groups: PRODUCER_STATE_ACTIONS,
  },
};

/** Object key prefixes: intake objects (Producer.prepare) and log segments (Compactor.write). */
export type ObjectPrefix = 'segments' | 'logs';

/**
 * S3 actions per role and key prefix; s3:ListBucket means listing under the prefix. The producer
 * writes intake objects, readers range-GET both kinds, maintenance copies intake objects into
 * segments and deletes what nothing references any more (the collector lists a deleted topic's).
 */
export const OBJECT_ACTIONS: Record<FunctionRole, Partial<Record<ObjectPrefix, string[]>>> = {
  produce: { segments: ['s3:PutObject'] },
  fetch: { segments: ['s3:GetObject'], logs: ['s3:GetObject'] },
  admin: {},
  groups: { segments: ['s3:GetObject'], logs: ['s3:GetObject'] },
  upstash: { segments: ['s3:PutObject', 's3:GetObject'], logs: ['s3:GetObject'] },
  maintenance: { segments: ['s3:GetObject', 's3:DeleteObject', 's3:ListBucket'], logs: ['s3:PutObject', 's3:DeleteObject', 's3:ListBucket'] },
};

export class ServerlessQueue extends Construct {
  readonly authMode: AuthMode;
  readonly bucket: s3.Bucket;
  readonly tables: Readonly<Record<DataTable, dynamodb.Table>>;
  /** Only in 'api-key' auth mode. */
  readonly apiKeysTable?: dynamodb.Table;
  readonly functions: Readonly<Record<FunctionRole, nodejs.NodejsFunction>>;
  readonly urls: Readonly<Record<HttpRole, lambda.FunctionUrl>>;
  /** The single base URL for clients: the router function, which forwards each request to the function serving it. */
  readonly url: lambda.FunctionUrl;
  readonly router: nodejs.NodejsFunction;
  /** Invokes the maintenance function's sweep every hour. */
  readonly maintenanceSchedule: events.Rule;
  /** Empty unless `alarms` is set; add actions (e.g. an SNS topic) to them as needed. */
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: ServerlessQueueProps = {}) {
    super(scope, id);
    const prefix = props.namePrefix ?? 'queue';
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.authMode = props.authMode ?? 'iam';

    this.bucket = new s3.Bucket(this, 'Segments', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    // cdk-nag (AwsSolutions) findings, acknowledged where they arise, each with its reason.
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Server access logs need a second bucket and bill per request; object-level auditing, when wanted, is CloudTrail data events, an account-level choice.',
    });

    const table = (name: string, schema: TableSchema, stream?: dynamodb.StreamViewType) => new dynamodb.Table(this, `${pascalCase(name)}Table`, {
      tableName: `${prefix}-${name}`,
      partitionKey: attribute(schema.partitionKey),
      sortKey: schema.sortKey && attribute(schema.sortKey),
      timeToLiveAttribute: schema.ttlAttribute,
      // On-demand: no capacity is billed while idle. Encryption at rest uses the AWS-owned key (free).
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      stream,
      removalPolicy,
    });
    this.tables = {
      topics: table('topics', TOPICS_TABLE),
      // The stream wakes maintenance after activity; the keys say which partition (KEYS_ONLY).
      log: table('log', LOG_TABLE, dynamodb.StreamViewType.KEYS_ONLY),
      groups: table('groups', GROUPS_TABLE),
    };
    if (this.authMode === 'api-key') this.apiKeysTable = table('api-keys', API_KEYS_TABLE);

    const dataEnvironment: Record<string, string> = {
      QUEUE_BUCKET: this.bucket.bucketName,
      QUEUE_TOPICS_TABLE: this.tables.topics.tableName,
      QUEUE_LOG_TABLE: this.tables.log.tableName,
      QUEUE_GROUPS_TABLE: this.tables.groups.tableName,
    };
    const httpEnvironment: Record<string, string> = {
      ...dataEnvironment,
      QUEUE_AUTH_MODE: this.authMode,
      ...(this.apiKeysTable ? { QUEUE_API_KEYS_TABLE: this.apiKeysTable.tableName } : {}),
    };

    const alarms: cloudwatch.Alarm[] = [];
    const roleFunction = (role: DeployedHandler, environment: Record<string, string>, timeout: Duration) => {
      const logGroup = new logs.LogGroup(this, `${pascalCase(role)}Logs`, { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH, removalPolicy });
      // An own role instead of AWSLambdaBasicExecutionRole, whose log permissions cover every group.
      const executionRole = new iam.Role(this, `${pascalCase(role)}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      logGroup.grantWrite(executionRole);
      const fn = new nodejs.NodejsFunction(this, `${pascalCase(role)}Function`, {
        functionName: `${prefix}-${role}`,
        entry: handlerEntry(role),
        handler: 'handler',
        projectRoot: PROJECT_ROOT,
        depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: props.memorySizes?.[role] ?? DEFAULT_MEMORY_MB[role],
        timeout,
        role: executionRole,
        logGroup,
        environment,
        bundling: {
          forceDockerBundling: false,
          format: nodejs.OutputFormat.ESM,
          target: HANDLER_BUNDLE.target,
          minify: HANDLER_BUNDLE.minify,
          mainFields: [...HANDLER_BUNDLE.mainFields],
          externalModules: [...HANDLER_BUNDLE.externalModules],
          banner: HANDLER_BUNDLE.banner,
          sourceMap: false,
        },
      });
      if (role !== 'router') this.grantAccess(role, fn);
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'nodejs22.x is pinned on purpose: the bundles target node22, the runtime LocalStack and the project test against; upgrade deliberately.',
      });
      if (props.alarms) alarms.push(...this.functionAlarms(role, fn));
      return fn;
    };

    const functions = {} as Record<FunctionRole, nodejs.NodejsFunction>;
    const urls = {} as Record<HttpRole, lambda.FunctionUrl>;
    // NONE only in api-key mode, where every handler refuses requests without a valid key.
    const urlAuthType = this.authMode === 'api-key' ? lambda.FunctionUrlAuthType.NONE : lambda.FunctionUrlAuthType.AWS_IAM;
    for (const role of HTTP_ROLES) {
      const fn = (functions[role] = roleFunction(role, httpEnvironment, HTTP_TIMEOUT));
      // Handlers look up the presented key's id and nothing else.
      this.apiKeysTable?.grant(fn, 'dynamodb:GetItem');
      urls[role] = fn.addFunctionUrl({
        authType: urlAuthType,
        // produce answers acks=0 before persisting, which needs a streamed response.
        invokeMode: role === 'produce' ? lambda.InvokeMode.RESPONSE_STREAM : lambda.InvokeMode.BUFFERED,
      });
    }

    // One base URL: the router forwards by path (lambdas/http/routing.ts) and may invoke only the
    // four Function URLs, signing as itself in iam mode; in api-key mode the functions check the key.
    this.router = roleFunction('router', {
      QUEUE_AUTH_MODE: this.authMode,
      ...Object.fromEntries(HTTP_ROLES.map((role) => [`QUEUE_${role.toUpperCase()}_URL`, urls[role].url])),
    }, ROUTER_TIMEOUT);
    if (this.authMode === 'iam') for (const role of HTTP_ROLES) urls[role].grantInvokeUrl(this.router);
    this.url = this.router.addFunctionUrl({ authType: urlAuthType, invokeMode: lambda.InvokeMode.BUFFERED });

    const maintenance = (functions.maintenance = roleFunction('maintenance', dataEnvironment, MAINTENANCE_TIMEOUT));
    // Granted by hand: the event source construct would allow ListStreams on every stream ("*").
    this.tables.log.grantStream(maintenance, 'dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams');
    maintenance.addEventSourceMapping('LogStream', {
      eventSourceArn: this.tables.log.tableStreamArn!,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      // New items only: index entries, segments, records of deleted topics and orphan uploads. The
      // head update of every produce is a MODIFY, and maintenance's own deletions are REMOVEs.
      filters: [lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.isEqual('INSERT') })],
      // At most one invocation per shard and minute of activity, however many produces.
      batchSize: 1000,
      maxBatchingWindow: Duration.seconds(60),
      // A failed partition is reported by its records (lambdas/maintenance.ts); a batch that keeps
      // failing is split, then given up on: the hourly sweep maintains every partition anyway.
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: 3,
    });
    this.maintenanceSchedule = new events.Rule(this, 'MaintenanceSchedule', {
      description: 'Sweeps every partition (retention of idle ones) and collects garbage',
      schedule: events.Schedule.rate(SWEEP_RATE),
      targets: [new targets.LambdaFunction(maintenance)],
    });

    this.functions = functions;
    this.urls = urls;
    this.alarms = alarms;
  }

  /**
   * Lets `grantee` call the Function URLs of `roles` with SigV4 ('iam' auth mode): both
   * lambda:InvokeFunctionUrl and lambda:InvokeFunction, each limited to Function URL calls.
   */
  grantInvokeUrls(grantee: iam.IGrantable, roles: readonly HttpRole[] = HTTP_ROLES): void {
    for (const role of roles) this.urls[role].grantInvokeUrl(grantee);
  }

  /** Lets `grantee` call the single base URL (the router) with SigV4 ('iam' auth mode). */
  grantInvokeUrl(grantee: iam.IGrantable): void {
    this.url.grantInvokeUrl(grantee);
  }

  private grantAccess(role: FunctionRole, fn: lambda.IFunction): void {
    for (const [name, actions] of Object.entries(TABLE_ACTIONS[role]) as Array<[DataTable, string[]]>) {
      this.tables[name].grant(fn, ...actions.map((a) => `dynamodb:${a}`));
    }
    const bucketLogicalId: string = Stack.of(this).resolve((this.bucket.node.defaultChild as s3.CfnBucket).logicalId);
    const listed: string[] = [];
    for (const [prefix, actions] of Object.entries(OBJECT_ACTIONS[role]) as Array<[ObjectPrefix, string[]]>) {
      const pattern = `${prefix}/*`;
      if (actions.includes('s3:ListBucket')) listed.push(pattern);
      iam.Grant.addToPrincipal({ grantee: fn, actions: actions.filter((a) => a !== 's3:ListBucket'), resourceArns: [this.bucket.arnForObjects(pattern)] });
      Validations.of(fn.role!).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${pattern}]`,
        reason: `Objects have random keys under ${prefix}/: the grant is that prefix, with explicit actions only.`,
      });
    }
    // Listing is granted on the bucket, so the prefixes are a condition.
    if (listed.length > 0) fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': listed } } }));
  }

  private functionAlarms(role: DeployedHandler, fn: lambda.Function): cloudwatch.Alarm[] {
    const alarm = (kind: string, metric: cloudwatch.Metric) => new cloudwatch.Alarm(this, `${pascalCase(role)}${kind}Alarm`, {
      alarmDescription: `${kind} of the ${role} function`,
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No invocations means no datapoints: idle is healthy.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const period = Duration.minutes(5);
    return [alarm('Errors', fn.metricErrors({ period, statistic: 'Sum' })), alarm('Throttles', fn.metricThrottles({ period, statistic: 'Sum' }))];
  }
}

function attribute(key: TableSchema['partitionKey']): dynamodb.Attribute {
  return { name: key.name, type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER };
}

/** "api-keys" → "ApiKeys": construct ids from role and table names. */
export function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
}
