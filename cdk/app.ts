// `npx cdk synth|deploy` entry (see cdk.json). Settings come from CDK context, e.g.
//   npx cdk deploy -c prefix=orders -c authMode=api-key -c alarms=true -c removalPolicy=destroy
// Every synth runs the cdk-nag AwsSolutions checks; an unsuppressed finding fails it.
import { App, RemovalPolicy, Validations } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import { QueueStack } from './queue-stack.ts';
import type { AuthMode } from './serverless-queue.ts';

const app = new App();

/** A context value (from -c or cdk.json, so possibly a boolean) that must be one of `allowed`. */
function choice<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
  const value = String(app.node.tryGetContext(key) ?? fallback);
  if (!allowed.includes(value as T)) throw new Error(`context ${key} must be one of ${allowed.join(', ')}; got ${JSON.stringify(value)}`);
  return value as T;
}

const prefix = String(app.node.tryGetContext('prefix') ?? 'queue');
if (!/^[a-z][a-z0-9-]{0,30}$/.test(prefix)) throw new Error(`context prefix must be lowercase letters, digits and dashes (at most 31), starting with a letter; got ${JSON.stringify(prefix)}`);

new QueueStack(app, app.node.tryGetContext('stackName') ?? `${prefix}-stack`, {
  description: 'Serverless message queue with Kafka semantics on S3, DynamoDB and Lambda',
  queue: {
    namePrefix: prefix,
    authMode: choice<AuthMode>('authMode', ['iam', 'api-key'], 'iam'),
    alarms: choice('alarms', ['true', 'false'], 'false') === 'true',
    removalPolicy: choice('removalPolicy', ['retain', 'destroy'], 'retain') === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
  },
});
// cdk-nag is CommonJS whose exports Node cannot detect statically, hence the default import.
Validations.of(app).addPlugins(new cdkNag.AwsSolutionsChecks(app));
