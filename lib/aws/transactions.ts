// How a cancelled TransactWriteItems is told apart: a condition failed, or it lost a race.
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';

/** Another transaction held one of the items: the same transaction may succeed when tried again. */
export function isTransactionConflict(err: unknown): boolean {
  return err instanceof TransactionCanceledException && (err.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict');
}
