// The garbage collector for what no partition leader owns: deleted topics (their log items and
// objects) and uploads whose commit failed (recorded under _orphans by the producer). Both are
// collected only after a grace period, and only once nothing can refer to them any more:
//   * a deleted topic: its topic item is gone (or names another incarnation), so no request can
//     resolve its topicId; its heads were retired first, so no write can start; in-flight reads of
//     it end within the grace period;
//   * an orphan upload: a partition whose batch of it got no entry (and was not compacted, which
//     would have released it) never will: the producer gave up on it before recording it.
import { DeleteCommand, GetCommand, QueryCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { batchWrite } from '../aws/batch-write.ts';
import { allItems } from '../aws/pages.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { ORPHANS_PARTITION_KEY } from '../log/producer.ts';
import { changesKey } from '../log/changes.ts';
import { logPartitionKey, partitionItemKeys } from '../log/keys.ts';
import { keysUnder } from '../log/objects.ts';
import { DELETED_TOPICS_PARTITION_KEY } from '../topics/topic-store.ts';
import type { Compactor } from './compactor.ts';

export interface CollectorOptions {
  /** Deleted topics and orphan uploads are collected this long after they were recorded. */
  graceMs: number;
  now: () => number;
}

export const DEFAULT_COLLECTOR_OPTIONS: CollectorOptions = { graceMs: 60 * 60_000, now: Date.now };

export interface CollectionReport {
  topics: number;
  orphans: number;
  objects: number;
  items: number;
}

export class Collector {
  readonly options: CollectorOptions;

  constructor(private readonly storage: Storage, private readonly compactor: Compactor, options: Partial<CollectorOptions> = {}) {
    this.options = { ...DEFAULT_COLLECTOR_OPTIONS, ...options };
  }

  private get table() {
    return this.storage.config.logTable;
  }

  async collect(): Promise<CollectionReport> {
    const report: CollectionReport = { topics: 0, orphans: 0, objects: 0, items: 0 };
    for (const record of await this.due(DELETED_TOPICS_PARTITION_KEY)) {
      if (await this.collectTopic(record, report)) report.topics++;
    }
    for (const record of await this.due(ORPHANS_PARTITION_KEY)) {
      await this.collectOrphan(record, report);
      report.orphans++;
    }
    return report;
  }

  /** Records under `pk` older than the grace period. */
  private async due(pk: string): Promise<Array<Record<string, unknown>>> {
    return allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#p = :p AND #o < :before',
      ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
      ExpressionAttributeValues: { ':p': pk, ':before': (this.options.now() - this.options.graceMs) * 1000 },
      ConsistentRead: true,
    }));
  }

  private async collectTopic(record: Record<string, unknown>, report: CollectionReport): Promise<boolean> {
    const { topicId, partitions, name } = record as { topicId: string; partitions: number; name: string };
    // A deletion that stopped halfway left the topic item: it is not deleted until someone finishes it.
    const current = await this.storage.ddb.send(new GetCommand({ TableName: this.storage.config.topicsTable, Key: { name }, ConsistentRead: true }));
    if (current.Item?.topicId === topicId) return false;
    for (let partition = 0; partition < partitions; partition++) {
      const pk = logPartitionKey(topicId, partition);
      for (const key of partitionItemKeys(pk)) report.items += await this.deleteAllItems(key);
    }
    // Producers bump it only after a commit, which a deleted topic's heads refuse.
    report.items += await this.deleteAllItems(changesKey(topicId).p);
    for (const prefix of [`segments/${topicId}/`, `logs/${topicId}/`]) report.objects += await this.deletePrefix(prefix);
    await this.forget(record);
    return true;
  }

  private async collectOrphan(record: Record<string, unknown>, report: CollectionReport): Promise<void> {
    const { key, topicId, partitions, parts } = record as { key: string; topicId: string; partitions: number[]; parts: number };
    for (const partition of partitions) {
      const pk = logPartitionKey(topicId, partition);
      if (await this.referencedBy(pk, key)) continue;
      // Released on behalf of the batch that never got an entry; the producer's other partitions
      // release theirs when they are compacted.
      if (await this.compactor.releaseFor(pk, key, parts)) report.objects++;
    }
    await this.forget(record);
  }

  /** Whether an entry of `pk` points into the object, or `pk` already released it (compacted). */
  private async referencedBy(pk: string, objectKey: string): Promise<boolean> {
    if (await this.compactor.released(pk, objectKey)) return true;
    const entries = await allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#p = :p AND #o >= :zero',
      FilterExpression: '#key = :key',
      ExpressionAttributeNames: { '#p': 'p', '#o': 'o', '#key': 'key' },
      ExpressionAttributeValues: { ':p': pk, ':zero': 0, ':key': objectKey },
      ProjectionExpression: '#o',
      ConsistentRead: true,
    }));
    return entries.length > 0;
  }

  private async forget(record: Record<string, unknown>): Promise<void> {
    await retry(() => this.storage.ddb.send(new DeleteCommand({ TableName: this.table, Key: { p: record.p, o: record.o } })));
  }

  private async deleteAllItems(pk: string): Promise<number> {
    let deleted = 0;
    for (;;) {
      const page = await this.storage.ddb.send(new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
        ExpressionAttributeValues: { ':p': pk },
        ProjectionExpression: '#p, #o',
        ConsistentRead: true,
        Limit: 500,
      }));
      const keys = page.Items ?? [];
      if (keys.length === 0) return deleted;
      await batchWrite(this.storage, this.table, keys.map((Key) => ({ DeleteRequest: { Key } })));
      deleted += keys.length;
    }
  }

  private async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    for await (const keys of keysUnder(this.storage, prefix)) {
      await this.compactor.deleteObjects(keys);
      deleted += keys.length;
    }
    return deleted;
  }
}
