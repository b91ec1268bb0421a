// Maintenance function (no Function URL): maintains the partitions the log table's stream reports new
// items of (batched for up to a minute), and sweeps every partition on a low-rate schedule for the
// idle ones. Maintenance is idempotent and leased per partition, so a retried batch, a duplicate
// delivery or a sweep overlapping a batch changes nothing twice.
import type { DynamoDBBatchResponse, DynamoDBStreamEvent, ScheduledEvent } from 'aws-lambda';
import type { Maintenance, PartitionReport } from '../lib/lifecycle/maintenance.ts';
import { mapLimit } from '../lib/lifecycle/map-limit.ts';
import { partitionOf } from '../lib/log/keys.ts';
import { createStorage, type Storage } from '../lib/storage.ts';
import { listTopics } from '../lib/topics/topic-store.ts';
import { createServices } from './http/services.ts';

/** Partitions maintained at once; each may hold a segment being rolled (up to segment.bytes) in memory. */
export const PARTITIONS_AT_ONCE = 4;

export type MaintenanceEvent = DynamoDBStreamEvent | ScheduledEvent;

export function maintenanceHandler(storage: Storage, maintenance: Maintenance) {
  return async (event: MaintenanceEvent): Promise<DynamoDBBatchResponse | void> => {
    if ('Records' in event) return maintainChanged(storage, maintenance, event);
    if (event['detail-type'] !== 'Scheduled Event') throw new TypeError(`the maintenance function takes DynamoDB stream batches and scheduled events; got ${JSON.stringify(event).slice(0, 200)}`);
    logReports('schedule', await maintenance.sweep());
  };
}

/**
 * Maintains each partition the batch has new items of, once. A partition that fails is reported
 * with all its records: Lambda then retries the batch from the lowest of them, which repeats the
 * partitions after it too, harmlessly. Anything else (say, listing the topics) fails the batch.
 */
async function maintainChanged(storage: Storage, maintenance: Maintenance, event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> {
  const changed = new Map<string, { topicId: string; partition: number; sequenceNumbers: string[] }>();
  for (const record of event.Records) {
    const pk = record.dynamodb?.Keys?.p?.S;
    const partition = pk === undefined ? undefined : partitionOf(pk);
    if (!partition) continue;
    let entry = changed.get(pk!);
    if (!entry) changed.set(pk!, (entry = { ...partition, sequenceNumbers: [] }));
    entry.sequenceNumbers.push(record.dynamodb!.SequenceNumber!);
  }
  if (changed.size === 0) return { batchItemFailures: [] };
  const topics = new Map((await listTopics(storage)).map((topic) => [topic.topicId, topic]));
  const failed: string[] = [];
  const reports = await mapLimit([...changed.values()], PARTITIONS_AT_ONCE, async ({ topicId, partition, sequenceNumbers }) => {
    const topic = topics.get(topicId);
    // A deleted topic (the collector removes its items), or a partition being added that the
    // topic does not list yet (the sweep maintains it once it does).
    if (!topic || partition >= topic.partitions) return [];
    try {
      return [await maintenance.maintainPartition(topic, partition)];
    } catch (err) {
      console.error(JSON.stringify({ level: 'error', message: `maintenance of ${topic.name}/${partition} failed`, error: err instanceof Error ? err.message : String(err) }));
      failed.push(...sequenceNumbers);
      return [];
    }
  });
  logReports('stream', reports.flat());
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/** One log line per invocation, listing only the partitions where something happened. */
function logReports(trigger: 'stream' | 'schedule', reports: PartitionReport[]): void {
  const changed = reports.filter((r) => r.skipped || Object.entries(r).some(([field, value]) => field !== 'partition' && typeof value === 'number' && value > 0));
  console.log(JSON.stringify({ level: 'info', message: `maintenance (${trigger})`, partitions: reports.length, changed }));
}

const storage = createStorage();
// The full services, so that compaction held by a timed-out transaction can have it aborted.
export const handler = maintenanceHandler(storage, createServices(storage, {}, {}, { concurrency: PARTITIONS_AT_ONCE }).maintenance);
