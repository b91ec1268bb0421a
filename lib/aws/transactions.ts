// How a cancelled TransactWriteItems is told apart: a condition failed, or it lost a race.
import { randomUUID } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';

/** One item of a TransactWriteItems call. */
export type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/** Another transaction held one of the items: the same transaction may succeed when tried again. */
export function isTransactionConflict(err: unknown): boolean {
  return err instanceof TransactionCanceledException && (err.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict');
}

/**
 * Runs TransactWriteItems with one idempotency token for every attempt, retrying conflicts and
 * transient faults: a retry of a transaction that was applied but not answered succeeds as a no-op
 * instead of being refused by its own effects.
 */
export async function transactOnce(storage: Storage, items: TransactItem[]): Promise<void> {
  const ClientRequestToken = randomUUID();
  await retry(() => storage.ddb.send(new TransactWriteCommand({ ClientRequestToken, TransactItems: items })), { isRetryable: isTransactionConflict });
}
