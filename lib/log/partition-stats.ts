// What `describe` reports per partition: its bounds and the storage it holds (segments plus the
// batches not yet compacted), so anyone can see retention and compaction keep storage bounded.
import { paginateQuery } from '@aws-sdk/lib-dynamodb';
import type { Storage } from '../storage.ts';
import type { Sequencer } from './sequencer.ts';

export interface PartitionStats {
  partition: number;
  logStartOffset: number;
  highWatermark: number;
  /** Log segments (compacted runs of batches). */
  segments: number;
  /** Bytes of record batches stored: in segments, and in intake objects not compacted yet. */
  bytes: number;
}

export async function partitionStats(storage: Storage, sequencer: Sequencer, pk: string, partition: number): Promise<PartitionStats> {
  const view = await sequencer.read(pk, { withTail: false });
  let intakeBytes = 0;
  // Only the uncompacted tail: at most segment.ms of batches (plus what awaits the next pass).
  for await (const page of paginateQuery({ client: storage.ddb }, {
    TableName: storage.config.logTable,
    KeyConditionExpression: '#p = :p AND #o >= :from',
    ExpressionAttributeNames: { '#p': 'p', '#o': 'o', '#len': 'len' },
    ExpressionAttributeValues: { ':p': pk, ':from': view.state.segmentsEnd },
    ProjectionExpression: '#len',
    ConsistentRead: true,
  })) {
    for (const item of page.Items ?? []) intakeBytes += (item.len as number | undefined) ?? 0;
  }
  return {
    partition,
    logStartOffset: view.state.logStart,
    highWatermark: view.highWatermark,
    segments: view.state.segmentCount,
    bytes: view.state.segmentBytes + intakeBytes,
  };
}
