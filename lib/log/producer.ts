// The write path: validate and route records, upload ONE segment object for the whole request
// (or, for a small request, none: each batch goes inline in its index entry), then sequence each
// partition's batch. Nothing is visible until its index entry is committed.
import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { encodeSegment, type BatchInput, type SegmentRecord } from '../codec/segment.ts';
import { InvalidRequestError, NotFoundError } from '../errors.ts';
import { DuplicateBatch, type Append, type Idempotence, type SequencedBatch } from '../producers/idempotence.ts';
import type { ProducerIdentity } from '../producers/producer-store.ts';
import type { TransactionCoordinator } from '../producers/transactions.ts';
import { choosePartition, StickyPartitioner } from '../partitioner/partitioner.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { getTopicCached, onTopicLogs, uniqueTimeKey, type Topic } from '../topics/topic-store.ts';
import { logPartitionKey } from './keys.ts';
import type { BatchRef, CommitGuard, Sequencer } from './sequencer.ts';
import { TopicChanges } from './changes.ts';

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

/** An idempotent (and maybe transactional) producer's request: its id and each partition's first sequence. */
export interface ProducerRequest extends ProducerIdentity {
  sequences: Array<{ partition: number; baseSequence: number }>;
  transactionalId?: string;
}

/** A validated request, ready to persist: routing done, segment encoded, nothing written yet. */
export interface ProducePlan {
  topic: Topic;
  /** Where the intake object goes; undefined for a small write, whose batches go inline in their entries. */
  objectKey?: string;
  bytes: Uint8Array;
  batches: Array<{ partition: number; position: number; length: number; recordCount: number; firstTimestamp: number; maxTimestamp: number }>;
  /** For each request record, in order: its partition, index within that partition's batch, and whether its timestamp is the request's. */
  placements: Array<{ partition: number; index: number; timestamp: number; defaulted: boolean }>;
  /** The timestamp given to records that carry none. */
  now: number;
  producer?: ProducerRequest;
}

/** Idempotent produce and transactions; absent, producer ids are refused. */
export interface ProducerServices {
  idempotence: Idempotence;
  transactions: TransactionCoordinator;
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
  private readonly changes: TopicChanges;

  constructor(
    private readonly storage: Storage,
    private readonly sequencer: Sequencer,
    private readonly producers?: ProducerServices,
  ) {
    this.changes = new TopicChanges(storage);
  }

  private stickyFor(topicId: string): StickyPartitioner {
    let partitioner = this.sticky.get(topicId);
    // Bounded: a process producing to very many topics starts their rotations afresh.
    if (!partitioner && this.sticky.size >= MAX_STICKY_TOPICS) this.sticky.clear();
    if (!partitioner) this.sticky.set(topicId, (partitioner = new StickyPartitioner()));
    return partitioner;
  }

  async prepare(topicName: string, records: ProduceRecord[], now = Date.now(), producer?: ProducerRequest): Promise<ProducePlan> {
    if (producer) {
      // The producer numbers each partition's records, so it must know every record's partition.
      const unrouted = records.findIndex((r) => r.partition === undefined && r.key === null);
      if (unrouted >= 0) throw new InvalidRequestError('INVALID_REQUEST', `records.${unrouted} has neither a partition nor a key: in an idempotent request the producer chooses every record's partition`);
    }
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
      return { partition, index: batch.length - 1, timestamp, defaulted: record.timestamp === undefined };
    });
    if (producer) assertSequencesCover(producer, [...byPartition.keys()]);
    const inputs: BatchInput[] = [...byPartition.entries()].map(([partition, recs]) => ({ partition, records: recs, compression: topic.config['compression.type'] }));
    const segment = encodeSegment(inputs);
    const day = new Date(now).toISOString().slice(0, 10);
    const inline = segment.bytes.length <= this.storage.config.inlineMaxBytes;
    return { topic, objectKey: inline ? undefined : `segments/${topic.topicId}/${day}/${randomUUID()}.seg`, bytes: segment.bytes, batches: segment.batches, placements, now, producer };
  }

  /** Upload, then sequence every partition's batch in parallel. */
  async persist(plan: ProducePlan, acks: Acks): Promise<RecordOffset[]> {
    const offsets = await onTopicLogs(this.storage, plan.topic.name, () => this.uploadAndSequence(plan, acks));
    // After the commits: an idle reader that sees the bump finds the batches (lib/log/changes.ts).
    await this.changes.bump(plan.topic.topicId);
    for (const listener of this.listeners) listener(plan.topic, plan.batches.map((b) => b.partition));
    return offsets;
  }

  onPersisted(listener: PersistedListener): void {
    this.listeners.push(listener);
  }

  private async uploadAndSequence(plan: ProducePlan, acks: Acks): Promise<RecordOffset[]> {
    const { objectKey } = plan;
    // A small write has nothing to upload: its batches go inline in their entries.
    const upload = objectKey && retry(() => this.storage.s3.send(new PutObjectCommand({ Bucket: this.storage.config.bucket, Key: objectKey, Body: plan.bytes, ContentType: 'application/octet-stream' })));
    // An idempotent request's sequence checks read while the upload runs; all pass or nothing is written.
    const guards = plan.producer ? this.guards(plan, plan.producer) : undefined;
    guards?.catch(() => undefined);
    await upload;
    const guarded = await guards;
    const results = await Promise.allSettled(plan.batches.map(async (batch, i) => {
      const pk = logPartitionKey(plan.topic.topicId, batch.partition);
      const guard = guarded?.[i];
      if (guard instanceof DuplicateBatch) return this.original(pk, guard, batch.recordCount, acks);
      try {
        const base = await this.sequencer.sequence(pk, batchRef(plan, i), acks, guard);
        return { base, timestamp: plan.now };
      } catch (err) {
        // A retry that raced its own first attempt, which committed.
        if (err instanceof DuplicateBatch) return this.original(pk, err, batch.recordCount, acks);
        throw err;
      }
    }));
    // Partitions whose batch of this object got no entry: failed, or retries answered by the original.
    const unreferenced = plan.batches.filter((_, i) => results[i]!.status === 'rejected' || guarded?.[i] instanceof DuplicateBatch || (results[i] as PromiseFulfilledResult<{ duplicate?: true }>).value.duplicate);
    const failure = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (objectKey && unreferenced.length > 0) await this.recordOrphans(plan, objectKey, unreferenced.map((b) => b.partition), failure?.reason ?? 'retry of committed batches');
    if (failure) throw failure.reason;
    const written = new Map(plan.batches.map((b, i) => [b.partition, (results[i] as PromiseFulfilledResult<{ base: number; timestamp: number }>).value]));
    return plan.placements.map((p) => {
      const { base, timestamp } = written.get(p.partition)!;
      return { partition: p.partition, offset: base + p.index, timestamp: p.defaulted ? timestamp : p.timestamp };
    });
  }

  /**
   * Per batch of the plan: the guard its commit carries, or the DuplicateBatch it is a retry of.
   * Checks every partition first (nothing is written if one is refused), then joins the
   * transaction (if any) in the partitions that append.
   */
  private async guards(plan: ProducePlan, request: ProducerRequest): Promise<Array<CommitGuard | DuplicateBatch>> {
    if (!this.producers) throw new InvalidRequestError('INVALID_REQUEST', 'this deployment does not serve idempotent producers');
    const { idempotence, transactions } = this.producers;
    const { transactionalId } = request;
    const sequenceOf = new Map(request.sequences.map((s) => [s.partition, s.baseSequence]));
    const batches = plan.batches.map((b): [string, SequencedBatch] => [logPartitionKey(plan.topic.topicId, b.partition), { ...request, baseSequence: sequenceOf.get(b.partition)!, count: b.recordCount }]);
    // Activity keeps the producer id alive; a failed refresh is retried by the next request.
    const refreshed = idempotence.store.refresh(request.producerId).catch(() => undefined);
    const checks = await Promise.all(batches.map(async ([pk, batch]): Promise<Append | DuplicateBatch> => {
      try {
        return await idempotence.check(pk, batch);
      } catch (err) {
        if (err instanceof DuplicateBatch) return err;
        throw err;
      }
    }));
    await refreshed;
    const transaction = transactionalId === undefined ? undefined : await transactions.register(request, transactionalId, batches.filter((_, i) => !(checks[i] instanceof DuplicateBatch)).map(([pk]) => pk));
    return checks.map((check, i) => {
      if (check instanceof DuplicateBatch) return check;
      const [pk, batch] = batches[i]!;
      return transactionalId === undefined
        ? idempotence.guard(pk, batch, check, plan.now)
        : { ...idempotence.guard(pk, batch, check, plan.now, [transactions.batchCheck(request, transactionalId, transaction!, pk)], () => transactions.refusal(request, transactionalId)), transactionalProducerId: request.producerId };
    });
  }

  /** A retried batch's original offsets, once visible if acks=all asks for it. */
  private async original(pk: string, duplicate: DuplicateBatch, count: number, acks: Acks): Promise<{ base: number; timestamp: number; duplicate: true }> {
    if (acks === 'all') await this.sequencer.awaitVisible(pk, duplicate.baseOffset + count);
    return { base: duplicate.baseOffset, timestamp: duplicate.timestamp, duplicate: true };
  }

  async produce(topicName: string, records: ProduceRecord[], acks: Acks = 'all', producer?: ProducerRequest): Promise<RecordOffset[]> {
    return this.persist(await this.prepare(topicName, records, Date.now(), producer), acks);
  }

  /**
   * Best effort: the batches of an uploaded object that never got an index entry. A crash before
   * this point leaves no record; a collector then finds the object by listing the topic's prefix
   * and checking its directory against the index (see docs/architecture.md).
   */
  private async recordOrphans(plan: ProducePlan, objectKey: string, partitions: number[], failure: unknown): Promise<void> {
    const reason = failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure);
    await this.storage.ddb.send(new PutCommand({
      TableName: this.storage.config.logTable,
      Item: { p: ORPHANS_PARTITION_KEY, o: uniqueTimeKey(), key: objectKey, topicId: plan.topic.topicId, partitions, parts: plan.batches.length, reason },
    })).catch(() => undefined);
  }
}

/** Where the plan's `i`th batch lives: in the intake object, or (a small write) inline. */
export function batchRef(plan: ProducePlan, i: number): BatchRef {
  const { position, length, recordCount, firstTimestamp, maxTimestamp } = plan.batches[i]!;
  // Inline: the batch's own bytes, exactly as the intake object would hold them (CRC included).
  const source = plan.objectKey ? { objectKey: plan.objectKey, parts: plan.batches.length, position } : { inline: plan.bytes.slice(position, position + length) };
  return { ...source, length, recordCount, firstTimestamp, maxTimestamp };
}

/** An idempotent request names a first sequence for exactly the partitions it writes. */
function assertSequencesCover(producer: ProducerRequest, partitions: number[]): void {
  const named = new Set<number>();
  for (const { partition } of producer.sequences) {
    if (named.has(partition)) throw new InvalidRequestError('INVALID_SEQUENCES', `sequences name partition ${partition} twice`);
    named.add(partition);
  }
  const missing = partitions.filter((p) => !named.has(p)).sort((a, b) => a - b);
  const extra = [...named].filter((p) => !partitions.includes(p)).sort((a, b) => a - b);
  if (missing.length > 0 || extra.length > 0) {
    throw new InvalidRequestError('INVALID_SEQUENCES', `sequences must name exactly the partitions the records go to (${[...partitions].sort((a, b) => a - b).join(', ')})${missing.length > 0 ? `; missing ${missing.join(', ')}` : ''}${extra.length > 0 ? `; no record goes to ${extra.join(', ')}` : ''}`);
  }
}
