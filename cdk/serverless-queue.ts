// The queue as a reusable construct: segment bucket, tables, one function per role with its
// Function URL, and the least IAM permissions each role's code paths need. Nothing here costs money
// while idle except stored bytes (and alarms, which are therefore opt-in).
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { GROUPS_TABLE, LOG_TABLE, TOPICS_TABLE, type TableSchema } from '../lib/aws/schema.ts';
import { API_KEYS_TABLE } from '../lib/auth/api-keys.ts';
import type { AuthMode } from '../lambdas/http/auth.ts';
import { FUNCTION_ROLES, HANDLER_BUNDLE, handlerEntry, PROJECT_ROOT, type FunctionRole } from './bundling.ts';

export type { AuthMode, FunctionRole };

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
  /** Memory (MB, which also sets CPU share) per function. @default produce 1024, fetch 1024, admin 512, groups 512 */
  readonly memorySizes?: Readonly<Partial<Record<FunctionRole, number>>>;
  /**
   * 'iam': Function URLs with AWS_IAM auth, callers sign with SigV4. 'api-key': public Function URLs
   * whose handlers require a key from the API keys table. Never open without one of the two. @default 'iam'
   */
  readonly authMode?: AuthMode;
  /** CloudWatch alarms on each function's errors and throttles; each alarm costs about $0.10/month. @default false */
  readonly alarms?: boolean;
}

const DEFAULT_MEMORY_MB: Record<FunctionRole, number> = { produce: 1024, fetch: 1024, admin: 512, groups: 512 };

// Long enough for the longest request each role serves: acks=all waits out the 15 s gap timeout plus
// 10 s, fetch and poll long-poll up to 20 s.
const FUNCTION_TIMEOUT = Duration.seconds(30);

export type DataTable = 'topics' | 'log' | 'groups';

/** DynamoDB actions per role and table, from the calls each role's code makes (see the comments). */
export const TABLE_ACTIONS: Record<FunctionRole, Partial<Record<DataTable, string[]>>> = {
  // Producer: topic lookup; Sequencer.reserve/advance (UpdateItem), commit/tombstone (PutItem), read.
  produce: { topics: ['GetItem'], log: ['GetItem', 'Query', 'PutItem', 'UpdateItem'] },
  // Fetcher: topic lookup; Sequencer.readResolved, which tombstones expired holes and advances hwm.
  fetch: { topics: ['GetItem'], log: ['GetItem', 'Query', 'PutItem', 'UpdateItem'] },
  // topic-store: create/describe/list/delete/add partitions; new topics' heads via BatchWriteItem,
  // added partitions' heads via conditional PutItem (never overwriting a live head), deleted
  // topics' heads retired via UpdateItem.
  admin: { topics: ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Scan'], log: ['GetItem', 'Query', 'PutItem', 'UpdateItem', 'BatchWriteItem'] },
  // GroupStore: conditional Puts and TransactWriteItems (Put, Delete, ConditionCheck), offsets by
  // Query, group list by Scan; polls read the log through the Fetcher's path.
  groups: {
    groups: ['GetItem', 'PutItem', 'DeleteItem', 'Query', 'Scan', 'ConditionCheckItem'],
    topics: ['GetItem'],
    log: ['GetItem', 'Query', 'PutItem', 'UpdateItem'],
  },
};

/** Segment object actions per role: the producer writes segments, readers range-GET them. */
export const SEGMENT_ACTIONS: Record<FunctionRole, string[]> = { produce: ['s3:PutObject'], fetch: ['s3:GetObject'], admin: [], groups: ['s3:GetObject'] };

/** Every segment object key starts with this (Producer.prepare). */
const SEGMENT_KEY_PATTERN = 'segments/*';

export class ServerlessQueue extends Construct {
  readonly authMode: AuthMode;
  readonly bucket: s3.Bucket;
  readonly tables: Readonly<Record<DataTable, dynamodb.Table>>;
  /** Only in 'api-key' auth mode. */
  readonly apiKeysTable?: dynamodb.Table;
  readonly functions: Readonly<Record<FunctionRole, nodejs.NodejsFunction>>;
  readonly urls: Readonly<Record<FunctionRole, lambda.FunctionUrl>>;
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

    const table = (name: string, schema: TableSchema) => new dynamodb.Table(this, `${pascalCase(name)}Table`, {
      tableName: `${prefix}-${name}`,
      partitionKey: attribute(schema.partitionKey),
      sortKey: schema.sortKey && attribute(schema.sortKey),
      timeToLiveAttribute: schema.ttlAttribute,
      // On-demand: no capacity is billed while idle. Encryption at rest uses the AWS-owned key (free).
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    this.tables = { topics: table('topics', TOPICS_TABLE), log: table('log', LOG_TABLE), groups: table('groups', GROUPS_TABLE) };
    if (this.authMode === 'api-key') this.apiKeysTable = table('api-keys', API_KEYS_TABLE);

    const environment: Record<string, string> = {
      QUEUE_BUCKET: this.bucket.bucketName,
      QUEUE_TOPICS_TABLE: this.tables.topics.tableName,
      QUEUE_LOG_TABLE: this.tables.log.tableName,
      QUEUE_GROUPS_TABLE: this.tables.groups.tableName,
      QUEUE_AUTH_MODE: this.authMode,
      ...(this.apiKeysTable ? { QUEUE_API_KEYS_TABLE: this.apiKeysTable.tableName } : {}),
    };

    const functions = {} as Record<FunctionRole, nodejs.NodejsFunction>;
    const urls = {} as Record<FunctionRole, lambda.FunctionUrl>;
    const alarms: cloudwatch.Alarm[] = [];
    for (const role of FUNCTION_ROLES) {
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
        timeout: FUNCTION_TIMEOUT,
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
      this.grantAccess(role, fn);
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'nodejs22.x is pinned on purpose: the bundles target node22, the runtime LocalStack and the project test against; upgrade deliberately.',
      });
      urls[role] = fn.addFunctionUrl({
        // NONE only in api-key mode, where every handler refuses requests without a valid key.
        authType: this.authMode === 'api-key' ? lambda.FunctionUrlAuthType.NONE : lambda.FunctionUrlAuthType.AWS_IAM,
        // produce answers acks=0 before persisting, which needs a streamed response.
        invokeMode: role === 'produce' ? lambda.InvokeMode.RESPONSE_STREAM : lambda.InvokeMode.BUFFERED,
      });
      if (props.alarms) alarms.push(...this.functionAlarms(role, fn));
      functions[role] = fn;
    }
    this.functions = functions;
    this.urls = urls;
    this.alarms = alarms;
  }

  /**
   * Lets `grantee` call the Function URLs of `roles` with SigV4 ('iam' auth mode): both
   * lambda:InvokeFunctionUrl and lambda:InvokeFunction, each limited to Function URL calls.
   */
  grantInvokeUrls(grantee: iam.IGrantable, roles: readonly FunctionRole[] = FUNCTION_ROLES): void {
    for (const role of roles) this.urls[role].grantInvokeUrl(grantee);
  }

  private grantAccess(role: FunctionRole, fn: lambda.IFunction): void {
    for (const [name, actions] of Object.entries(TABLE_ACTIONS[role]) as Array<[DataTable, string[]]>) {
      this.tables[name].grant(fn, ...actions.map((a) => `dynamodb:${a}`));
    }
    // Handlers look up the presented key's id and nothing else.
    this.apiKeysTable?.grant(fn, 'dynamodb:GetItem');
    if (SEGMENT_ACTIONS[role].length > 0) {
      iam.Grant.addToPrincipal({ grantee: fn, actions: SEGMENT_ACTIONS[role], resourceArns: [this.bucket.arnForObjects(SEGMENT_KEY_PATTERN)] });
      const bucketLogicalId: string = Stack.of(this).resolve((this.bucket.node.defaultChild as s3.CfnBucket).logicalId);
      Validations.of(fn.role!).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${SEGMENT_KEY_PATTERN}]`,
        reason: 'Segment objects have random keys under segments/: the grant is that prefix, with explicit actions only.',
      });
    }
  }

  private functionAlarms(role: FunctionRole, fn: lambda.Function): cloudwatch.Alarm[] {
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
