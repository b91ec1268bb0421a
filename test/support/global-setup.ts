// Starts one local stack (DynamoDB Local + s3rver on free ports) for the whole test run.
import type { TestProject } from 'vitest/node';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';

let stack: LocalStack | undefined;

export async function setup(project: TestProject) {
  stack = await startLocalStack();
  project.provide('dynamoEndpoint', stack.dynamoEndpoint);
  project.provide('s3Endpoint', stack.s3Endpoint);
}

export async function teardown() {
  await stack?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    s3Endpoint: string;
  }
}
