// BatchWriteItem in chunks of 25, resubmitting unprocessed items with backoff until all are done.
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { retry, sleep } from '../retry.ts';
import type { Storage } from '../storage.ts';

export async function batchWrite(storage: Storage, table: string, requests: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let pending = requests.slice(i, i + 25);
    for (let attempt = 0; pending.length > 0; attempt++) {
      const res = await retry(() => storage.ddb.send(new BatchWriteCommand({ RequestItems: { [table]: pending } })));
      pending = (res.UnprocessedItems?.[table] ?? []) as Record<string, unknown>[];
      if (pending.length > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
    }
  }
}
