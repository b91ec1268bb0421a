// A partition with its producer, fetcher and maintenance on a clock the test moves, plus the
// reference reads that compaction, retention and collection must leave unchanged.
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Fetcher, type FetchResult } from '../../lib/log/fetcher.ts';
import { logPartitionKey, segmentsPartitionKey } from '../../lib/log/keys.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer } from '../../lib/log/sequencer.ts';
import { Maintenance, type MaintenanceOptions } from '../../lib/lifecycle/maintenance.ts';
import type { Storage } from '../../lib/storage.ts';
import { alterTopicConfig, createTopic, getTopic, type Topic } from '../../lib/topics/topic-store.ts';

let topicCount = 0;

export const text = (s: string) => new TextEncoder().encode(s);

export interface Clock {
  now: number;
}

export async function lifecyclePartition(storage: Storage, config: Record<string, unknown> = {}, options: Partial<MaintenanceOptions> = {}) {
  const topic = await createTopic(storage, { name: `life-${process.pid}-${topicCount++}`, partitions: 1, config });
  const clock: Clock = { now: Date.now() };
  const now = () => clock.now;
  const sequencer = new Sequencer(storage, { now });
  const maintenance = new Maintenance(storage, sequencer, {
    ...options,
    lease: { now, ...options.lease },
    compactor: { now, ...options.compactor },
    retention: { now, ...options.retention },
    collector: { now, ...options.collector },
  });
  const pk = logPartitionKey(topic.topicId, 0);
  return {
    topic, clock, pk, sequencer, maintenance,
    producer: new Producer(storage, sequencer),
    fetcher: new Fetcher(storage, sequencer),
    /** One maintenance pass with the topic's current config. */
    maintain: async () => maintenance.maintainPartition(await getTopic(storage, topic.name), 0),
    configure: (changes: Record<string, unknown>) => alterTopicConfig(storage, topic.name, changes),
  };
}

export interface ReadOutcome {
  records: Array<{ offset: number; timestamp: number; key: string | null; value: string | null; headers: string }>;
  gaps: FetchResult['gaps'];
  nextOffset: number;
}

/** A fetch result in comparable form: bytes as hex, headers serialised. */
export function comparable(page: FetchResult): ReadOutcome {
  const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));
  return {
    records: page.records.map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: JSON.stringify(r.headers.map((h) => [h.key, hex(h.value)])) })),
    gaps: page.gaps,
    nextOffset: page.nextOffset,
  };
}

/** Everything from `from` to the high watermark, fetched page by page. */
export async function replay(fetcher: Fetcher, topic: Topic, from = 0, pageRecords = 7): Promise<ReadOutcome> {
  const all: ReadOutcome = { records: [], gaps: [], nextOffset: from };
  for (let offset = from; ;) {
    const page = comparable(await fetcher.fetch({ topic: topic.name, partition: 0, offset, maxRecords: pageRecords, maxBytes: 1 << 20, waitMs: 0 }));
    all.records.push(...page.records);
    all.gaps.push(...page.gaps);
    all.nextOffset = page.nextOffset;
    if (page.nextOffset === offset) return mergeGaps(all);
    offset = page.nextOffset;
  }
}

/** Adjacent gap ranges joined: how pages split a run of gaps is not part of what a read returns. */
export function mergeGaps(outcome: ReadOutcome): ReadOutcome {
  const gaps: FetchResult['gaps'] = [];
  for (const g of outcome.gaps) {
    const last = gaps.at(-1);
    if (last && last.endOffset === g.startOffset) last.endOffset = g.endOffset;
    else gaps.push({ ...g });
  }
  return { ...outcome, gaps };
}

/** The index items of a partition: entries (o >= 0) and segment items. */
export async function indexItems(storage: Storage, pk: string): Promise<{ entries: number; segments: number }> {
  const count = async (p: string, extra = '') => (await storage.ddb.send(new QueryCommand({
    TableName: storage.config.logTable,
    KeyConditionExpression: `#p = :p${extra}`,
    ExpressionAttributeNames: extra ? { '#p': 'p', '#o': 'o' } : { '#p': 'p' },
    ExpressionAttributeValues: extra ? { ':p': p, ':zero': 0 } : { ':p': p },
    ConsistentRead: true,
  }))).Items?.length ?? 0;
  return { entries: await count(pk, ' AND #o >= :zero'), segments: await count(segmentsPartitionKey(pk)) };
}

export async function objectKeys(storage: Storage, prefix: string): Promise<string[]> {
  const res = await storage.s3.send(new ListObjectsV2Command({ Bucket: storage.config.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!);
}
