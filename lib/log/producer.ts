// The write path: validate and route records, upload ONE segment object for the whole request,
// then sequence each partition's batch. Nothing is visible until its index entry is committed.
import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { encodeSegment, type BatchInput, type SegmentRecord } from '../codec/segment.ts';
import { NotFoundError } from '../errors.ts';
import { choosePartition, StickyPartitioner } from '../partitioner/partitioner.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { getTopicCached, onTopicLogs, uniqueTimeKey, type Topic } from '../topics/topic-store.ts';
import { logPartitionKey } from './keys.ts';
import type { Sequencer } from './sequencer.ts';

export type Acks = 'all' | '1' | '0';

export interface ProduceRecord extends Omit<SegmentRecord, 'timestamp'> {
  partition?: number;
  timestamp?: number;
}

export interface RecordOffset {
  partition: number;
  offset: number;
  timestamp: number;
}

/** A validated request, ready to persist: routing done, segment encoded, nothing written yet. */
export interface ProducePlan {
  topic: Topic;
  objectKey: string;
  bytes: Uint8Array;
  batches: Array<{ partition: number; position: number; length: number; recordCount: number; firstTimestamp: number; maxTimestamp: number }>;
  /** For each request record, in order: its partition and index within that partition's batch. */
  placements: Array<{ partition: number; index: number; timestamp: number }>;
}

const MAX_STICKY_TOPICS = 1024;

/** Key prefix of orphan records in the log table, for a garbage collector to find. */
export const ORPHANS_PARTITION_KEY = '_orphans';

/** Told of every committed request: the local server schedules maintenance with it. */
export type PersistedListener = (topic: Topic, partitions: number[]) => void;

export class Producer {
  /** One rotation per topic, so unkeyed load spreads evenly over each topic's partitions. */
  private readonly sticky = new Map<string, StickyPartitioner>();
  private readonly listeners: PersistedListener[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly sequencer: Sequencer,
  ) {}

  private stickyFor(topicId: string): StickyPartitioner {
    let partitioner = this.sticky.get(topicId);
    // Bounded: a process producing to very many topics starts their rotations afresh.
    if (!partitioner && this.sticky.size >= MAX_STICKY_TOPICS) this.sticky.clear();
    if (!partitioner) this.sticky.set(topicId, (partitioner = new StickyPartitioner()));
    return partitioner;
  }

  async prepare(topicName: string, records: ProduceRecord[], now = Date.now()): Promise<ProducePlan> {
    const maxExplicit = Math.max(-1, ...records.map((r) => r.partition ?? -1));
    const topic = await getTopicCached(this.storage, topicName, maxExplicit + 1);
    if (maxExplicit >= topic.partitions) {
      throw new NotFoundError('UNKNOWN_PARTITION', `partition ${maxExplicit} does not exist: topic ${JSON.stringify(topicName)} has partitions 0 to ${topic.partitions - 1}`);
    }
    let stickyPartition: number | undefined;
    const stickyChoice = () => (stickyPartition ??= this.stickyFor(topic.topicId).next(topic.partitions));
    const byPartition = new Map<number, SegmentRecord[]>();
    const placements = records.map((record) => {
      const partition = choosePartition(record, topic.partitions, stickyChoice);
      const timestamp = record.timestamp ?? now;
      let batch = byPartition.get(partition);
      if (!batch) byPartition.set(partition, (batch = []));
      batch.push({ key: record.key, value: record.value, headers: record.headers, timestamp });
      return { partition, index: batch.length - 1, timestamp };
    });
    const inputs: BatchInput[] = [...byPartition.entries()].map(([partition, recs]) => ({ partition, records: recs, compression: topic.config['compression.type'] }));
    const segment = encodeSegment(inputs);
    const day = new Date(now).toISOString().slice(0, 10);
    return { topic, objectKey: `segments/${topic.topicId}/${day}/${randomUUID()}.seg`, bytes: segment.bytes, batches: segment.batches, placements };
  }

  /** Upload, then sequence every partition's batch in parallel. */
  async persist(plan: ProducePlan, acks: Acks): Promise<RecordOffset[]> {
    const offsets = await onTopicLogs(this.storage, plan.topic.name, () => this.uploadAndSequence(plan, acks));
    for (const listener of this.listeners) listener(plan.topic, plan.batches.map((b) => b.partition));
    return offsets;
  }

  onPersisted(listener: PersistedListener): void {
    this.listeners.push(listener);
  }

  private async uploadAndSequence(plan: ProducePlan, acks: Acks): Promise<RecordOffset[]> {
    await retry(() => this.storage.s3.send(new PutObjectCommand({ Bucket: this.storage.config.bucket, Key: plan.objectKey, Body: plan.bytes, ContentType: 'application/octet-stream' })));
    const results = await Promise.allSettled(plan.batches.map((batch) =>
      this.sequencer.sequence(logPartitionKey(plan.topic.topicId, batch.partition), { objectKey: plan.objectKey, parts: plan.batches.length, position: batch.position, length: batch.length, recordCount: batch.recordCount, firstTimestamp: batch.firstTimestamp, maxTimestamp: batch.maxTimestamp }, acks)));
    const failed = plan.batches.filter((_, i) => results[i]!.status === 'rejected');
    if (failed.length > 0) {
      await this.recordOrphans(plan, failed.map((b) => b.partition), results.find((r) => r.status === 'rejected') as PromiseRejectedResult);
      throw (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    }
    const bases = new Map(plan.batches.map((b, i) => [b.partition, (results[i] as PromiseFulfilledResult<number>).value]));
    return plan.placements.map((p) => ({ partition: p.partition, offset: bases.get(p.partition)! + p.index, timestamp: p.timestamp }));
  }

  async produce(topicName: string, records: ProduceRecord[], acks: Acks = 'all'): Promise<RecordOffset[]> {
    return this.persist(await this.prepare(topicName, records), acks);
  }

  /**
   * Best effort: the batches of an uploaded object that never got an index entry. A crash before
   * this point leaves no record; a collector then finds the object by listing the topic's prefix
   * and checking its directory against the index (see docs/architecture.md).
   */
  private async recordOrphans(plan: ProducePlan, partitions: number[], failure: PromiseRejectedResult): Promise<void> {
    const reason = failure.reason instanceof Error ? `${failure.reason.name}: ${failure.reason.message}` : String(failure.reason);
    await this.storage.ddb.send(new PutCommand({
      TableName: this.storage.config.logTable,
      Item: { p: ORPHANS_PARTITION_KEY, o: uniqueTimeKey(), key: plan.objectKey, topicId: plan.topic.topicId, partitions, parts: plan.batches.length, reason },
    })).catch(() => undefined);
  }
}
