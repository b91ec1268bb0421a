// The segment items of a partition: one per log segment object, under p = "<pk>/segments" and
// keyed by the segment's END offset, so that a Query for `o > X` returns first the segment holding
// offset X (if any), then the ones after it, in offset order.
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Storage } from '../storage.ts';
import { segmentsPartitionKey } from './keys.ts';

export interface SegmentItem {
  /** Offsets [base, end) are in this segment (records and gaps). */
  base: number;
  end: number;
  objectKey: string;
  /** Bytes of the whole object. */
  size: number;
  /** Bytes of the frames; the index follows them. */
  dataLength: number;
  indexLength: number;
  indexCrc: number;
  recordCount: number;
  /** Largest record timestamp in the segment (a segment of gaps only has -MAX_SAFE_INTEGER). */
  maxTimestamp: number;
  /** The leader epoch that wrote it. */
  epoch: number;
  createdAt: number;
}

export function segmentToItem(pk: string, s: SegmentItem): Record<string, unknown> {
  return {
    p: segmentsPartitionKey(pk), o: s.end, base: s.base, key: s.objectKey, size: s.size, dataLen: s.dataLength,
    idxLen: s.indexLength, idxCrc: s.indexCrc, recs: s.recordCount, tsMax: s.maxTimestamp, epoch: s.epoch, at: s.createdAt,
  };
}

export function segmentFromItem(item: Record<string, unknown>): SegmentItem {
  return {
    base: item.base as number, end: item.o as number, objectKey: item.key as string, size: item.size as number,
    dataLength: item.dataLen as number, indexLength: item.idxLen as number, indexCrc: item.idxCrc as number,
    recordCount: item.recs as number, maxTimestamp: item.tsMax as number, epoch: item.epoch as number, createdAt: item.at as number,
  };
}

/** Up to `limit` segments ending after `offset`, in offset order (the first holds `offset` if any does). */
export async function segmentsAfter(storage: Storage, pk: string, offset: number, limit: number): Promise<SegmentItem[]> {
  const res = await storage.ddb.send(new QueryCommand({
    TableName: storage.config.logTable,
    KeyConditionExpression: '#p = :p AND #o > :offset',
    ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
    ExpressionAttributeValues: { ':p': segmentsPartitionKey(pk), ':offset': offset },
    ConsistentRead: true,
    Limit: limit,
  }));
  return (res.Items ?? []).map(segmentFromItem);
}
