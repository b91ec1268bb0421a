// The aborted-transaction index of a partition: one item per aborted transaction, keyed by its
// marker's offset (docs/architecture.md, "Transactions"). Its `stable` attribute is a bound on the
// first offsets of every transaction aborted later, which lets a lookup stop early, as Kafka's
// transaction index does with its last stable offsets.
import { paginateQuery } from '@aws-sdk/lib-dynamodb';
import type { Storage } from '../storage.ts';
import { abortedPartitionKey } from './keys.ts';

export interface AbortedTransaction {
  producerId: number;
  /** At or below the transaction's first offset in the partition. */
  firstOffset: number;
  /** The offset of its abort marker: every record of it lies below. */
  markerOffset: number;
}

/** The aborted transactions that may hold records in [from, to). */
export async function abortedTransactions(storage: Storage, pk: string, from: number, to: number): Promise<AbortedTransaction[]> {
  const found: AbortedTransaction[] = [];
  const pages = paginateQuery({ client: storage.ddb, pageSize: 100 }, {
    TableName: storage.config.logTable,
    KeyConditionExpression: '#p = :p AND #o > :from',
    ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
    ExpressionAttributeValues: { ':p': abortedPartitionKey(pk), ':from': from },
    ConsistentRead: true,
  });
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      if ((item.first as number) < to) found.push({ producerId: item.pid as number, firstOffset: item.first as number, markerOffset: item.o as number });
      // Transactions aborted after this one start at or above its `stable`: none reaches below `to`.
      if ((item.stable as number) >= to) return found;
    }
  }
  return found;
}

/** Whether the batch at `base` of `producerId` belongs to one of `aborted`. */
export function isAborted(aborted: AbortedTransaction[], producerId: number, base: number): boolean {
  return aborted.some((t) => t.producerId === producerId && t.firstOffset <= base && base < t.markerOffset);
}
