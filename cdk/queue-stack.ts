// The ready-to-deploy stack: the ServerlessQueue construct plus outputs for clients and the key CLI.
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { HTTP_ROLES } from './bundling.ts';
import { pascalCase, ServerlessQueue, type ServerlessQueueProps } from './serverless-queue.ts';

export interface QueueStackProps extends StackProps {
  readonly queue?: ServerlessQueueProps;
}

export class QueueStack extends Stack {
  readonly queue: ServerlessQueue;

  constructor(scope: Construct, id: string, props: QueueStackProps = {}) {
    super(scope, id, props);
    const queue = (this.queue = new ServerlessQueue(this, 'Queue', props.queue));
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output('Url', queue.url.url, `The base URL for clients and the CLI (QUEUE_URL): every route, forwarded to the function serving it (${queue.authMode === 'iam' ? 'SigV4-signed requests, service "lambda"' : 'API key required'})`);
    for (const role of HTTP_ROLES) {
      output(`${pascalCase(role)}Url`, queue.urls[role].url, `HTTPS endpoint of the ${role} function (${queue.authMode === 'iam' ? 'SigV4-signed requests, service "lambda"' : 'API key required'})`);
    }
    output('AuthMode', queue.authMode, 'How callers authenticate: iam (SigV4) or api-key');
    output('BucketName', queue.bucket.bucketName, 'S3 bucket holding the segment objects');
    output('TopicsTableName', queue.tables.topics.tableName, 'DynamoDB table of topic metadata');
    output('LogTableName', queue.tables.log.tableName, 'DynamoDB table of partition heads and the offset index');
    output('GroupsTableName', queue.tables.groups.tableName, 'DynamoDB table of consumer groups and committed offsets');
    if (queue.apiKeysTable) output('ApiKeysTableName', queue.apiKeysTable.tableName, 'DynamoDB table of API key hashes: set QUEUE_API_KEYS_TABLE to it for scripts/api-keys.ts');
  }
}
