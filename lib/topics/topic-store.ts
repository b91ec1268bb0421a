// Topic metadata in DynamoDB. A topic is an item keyed by name holding an immutable random topicId;
// each partition's log lives under "<topicId>/<partition>", so deleting and re-creating a name gives
// an empty log, never the old records.
import { randomUUID } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { allItems, byCodeUnits } from '../aws/pages.ts';
import { batchWrite } from '../aws/batch-write.ts';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ConflictError, InvalidRequestError, NotFoundError, PartitionLogMissingError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { HEAD_OFFSET, logPartitionKey } from '../log/keys.ts';
import { emptyHead } from '../log/sequencer.ts';
import { DEFAULT_TOPIC_CONFIG, parseTopicConfig, validatePartitionCount, validateTopicName, type TopicConfig } from './topic-config.ts';

export interface Topic {
  name: string;
  topicId: string;
  partitions: number;
  config: TopicConfig;
  createdAt: number;
}

export async function createTopic(storage: Storage, input: { name: string; partitions: number; config?: Record<string, unknown> }): Promise<Topic> {
  validateTopicName(input.name);
  const topic: Topic = {
    name: input.name,
    topicId: randomUUID(),
    partitions: validatePartitionCount(input.partitions),
    config: parseTopicConfig(input.config),
    createdAt: Date.now(),
  };
  // The common conflict is answered before anything is written; a concurrent create that wins the
  // race below leaves this attempt's heads unreachable (a few small items, harmless).
  const existing = await storage.ddb.send(new GetCommand({ TableName: storage.config.topicsTable, Key: { name: input.name }, ConsistentRead: true }));
  if (existing.Item) throw new ConflictError('TOPIC_EXISTS', `topic ${JSON.stringify(input.name)} already exists`);
  // Heads first: until the topic item exists nobody knows this topicId, so a crash in between
  // leaves only unreachable heads, never a topic with missing partitions.
  await createHeads(storage, topic.topicId, 0, topic.partitions);
  try {
    await storage.ddb.send(new PutCommand({
      TableName: storage.config.topicsTable,
      Item: topic,
      ConditionExpression: 'attribute_not_exists(#name)',
      ExpressionAttributeNames: { '#name': 'name' },
    }));
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) throw new ConflictError('TOPIC_EXISTS', `topic ${JSON.stringify(input.name)} already exists`);
    throw err;
  }
  forgetCachedTopic(storage, topic.name);
  return topic;
}

export async function getTopic(storage: Storage, name: string): Promise<Topic> {
  // Before any storage call: a name that can never exist (say, over DynamoDB's key size) is a 400.
  validateTopicName(name);
  const res = await storage.ddb.send(new GetCommand({ TableName: storage.config.topicsTable, Key: { name }, ConsistentRead: true }));
  if (!res.Item) throw new NotFoundError('UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} does not exist`);
  return topicFromItem(res.Item);
}

/** All topics, by name in code-unit order. */
export async function listTopics(storage: Storage): Promise<Topic[]> {
  const items = await allItems(paginateScan({ client: storage.ddb }, { TableName: storage.config.topicsTable, ConsistentRead: true }));
  return items.map(topicFromItem).sort((a, b) => byCodeUnits(a.name, b.name));
}

/**
 * Retires the partition heads, then deletes the topic item. A retired head refuses every
 * reservation, so from the first step on no producer (even one with cached metadata) can start a
 * write; a deletion that stops halfway is finished by calling it again, because the topic item is
 * still there; and a retired head is never created again (see ensureHeads). Index entries, retired
 * heads and segment objects stay behind for a garbage collector (not built yet).
 */
export async function deleteTopic(storage: Storage, name: string): Promise<void> {
  for (let attempt = 0; attempt < MAX_DELETE_ATTEMPTS; attempt++) {
    const topic = await getTopic(storage, name);
    forgetCachedTopic(storage, name);
    // First, so a deletion that stops anywhere below is still collected (see lib/lifecycle/collector.ts).
    await retry(() => storage.ddb.send(new PutCommand({ TableName: storage.config.logTable, Item: { p: DELETED_TOPICS_PARTITION_KEY, o: uniqueTimeKey(), topicId: topic.topicId, partitions: topic.partitions, name } })));
    await forEachPartition(0, topic.partitions, (p) => storage.ddb.send(new UpdateCommand({
      TableName: storage.config.logTable,
      Key: { p: logPartitionKey(topic.topicId, p), o: HEAD_OFFSET },
      UpdateExpression: 'SET #deleted = :true',
      ExpressionAttributeNames: { '#deleted': 'deleted' },
      ExpressionAttributeValues: { ':true': true },
    })));
    try {
      await storage.ddb.send(new DeleteCommand({
        TableName: storage.config.topicsTable,
        Key: { name },
        // Partitions added meanwhile have heads this pass did not retire: retire them too, then
        // delete. A different topicId means the name belongs to a re-created topic: leave it be.
        ConditionExpression: '#topicId = :topicId AND #partitions = :partitions',
        ExpressionAttributeNames: { '#topicId': 'topicId', '#partitions': 'partitions' },
        ExpressionAttributeValues: { ':topicId': topic.topicId, ':partitions': topic.partitions },
      }));
      return;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      if ((await getTopic(storage, name)).topicId !== topic.topicId) throw new NotFoundError('UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} was deleted concurrently`);
    }
  }
  throw new ConflictError('CONCURRENT_MODIFICATION', `topic ${JSON.stringify(name)} kept growing while being deleted; retry`);
}

const MAX_DELETE_ATTEMPTS = 5;

/** Records of deleted topics in the log table, for the collector to remove their logs and objects. */
export const DELETED_TOPICS_PARTITION_KEY = '_deleted';

/** A sort key for time-ordered records (deleted topics, orphans): milliseconds, plus room for ties. */
export function uniqueTimeKey(now = Date.now()): number {
  return now * 1000 + Math.floor(Math.random() * 1000);
}

/**
 * Changes a topic's configuration (Kafka's IncrementalAlterConfigs): each key given is set, or
 * restored to its default with null. Validated before anything is written.
 */
export async function alterTopicConfig(storage: Storage, name: string, changes: Record<string, unknown>): Promise<Topic> {
  const topic = await getTopic(storage, name);
  const config = parseTopicConfig(changes, topic.config);
  try {
    const res = await storage.ddb.send(new UpdateCommand({
      TableName: storage.config.topicsTable,
      Key: { name },
      UpdateExpression: 'SET #config = :config',
      // A topic deleted and re-created meanwhile is another topic: never configure it by accident.
      ConditionExpression: '#topicId = :topicId',
      ExpressionAttributeNames: { '#config': 'config', '#topicId': 'topicId' },
      ExpressionAttributeValues: { ':config': config, ':topicId': topic.topicId },
      ReturnValues: 'ALL_NEW',
    }));
    forgetCachedTopic(storage, name);
    return topicFromItem(res.Attributes!);
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
    throw new NotFoundError('UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} was deleted while its config was being changed`);
  }
}

/** A stored topic, its config completed with the defaults of settings added since it was created. */
function topicFromItem(item: Record<string, unknown>): Topic {
  const topic = item as unknown as Topic;
  return { ...topic, config: { ...DEFAULT_TOPIC_CONFIG, ...topic.config } };
}

/** Raises the partition count; Kafka never decreases it because keys would move. */
export async function addPartitions(storage: Storage, name: string, count: number): Promise<Topic> {
  validatePartitionCount(count, 'count');
  const topic = await getTopic(storage, name);
  if (count <= topic.partitions) {
    throw new InvalidRequestError('INVALID_PARTITIONS', `topic ${JSON.stringify(name)} has ${topic.partitions} partitions; count must be greater (partitions are never removed)`);
  }
  await ensureHeads(storage, topic.topicId, topic.partitions, count);
  try {
    const res = await storage.ddb.send(new UpdateCommand({
      TableName: storage.config.topicsTable,
      Key: { name },
      UpdateExpression: 'SET #partitions = :count',
      // Guards against a concurrent delete/re-create or a concurrent increase.
      ConditionExpression: '#topicId = :topicId AND #partitions = :current',
      ExpressionAttributeNames: { '#partitions': 'partitions', '#topicId': 'topicId' },
      ExpressionAttributeValues: { ':count': count, ':topicId': topic.topicId, ':current': topic.partitions },
      ReturnValues: 'ALL_NEW',
    }));
    forgetCachedTopic(storage, name);
    return topicFromItem(res.Attributes!);
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
    await getTopic(storage, name); // 404 if it was deleted meanwhile
    throw new ConflictError('CONCURRENT_MODIFICATION', `topic ${JSON.stringify(name)} changed while adding partitions; retry`);
  }
}

/**
 * Creates missing heads of an existing topic, never touching one that exists: two admins adding
 * partitions at once (or one retrying) both write heads 1..n, and by the time the slower one
 * writes, producers may already be using them. An unconditional put would reset a live head to
 * offset 0 and re-issue committed offsets.
 */
export async function ensureHeads(storage: Storage, topicId: string, from: number, to: number): Promise<void> {
  await forEachPartition(from, to, async (p) => {
    try {
      await storage.ddb.send(new PutCommand({
        TableName: storage.config.logTable,
        Item: { p: logPartitionKey(topicId, p), ...emptyHead() },
        // Also false for a retired head: a deleted partition never comes back at offset 0.
        ConditionExpression: 'attribute_not_exists(#p)',
        ExpressionAttributeNames: { '#p': 'p' },
      }));
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  });
}

/** Runs `write` (retrying transient faults) for partitions from..to-1, a bounded number at a time. */
async function forEachPartition(from: number, to: number, write: (partition: number) => Promise<unknown>): Promise<void> {
  for (let start = from; start < to; start += HEAD_WRITE_CONCURRENCY) {
    const batch = Array.from({ length: Math.min(HEAD_WRITE_CONCURRENCY, to - start) }, (_, i) => start + i);
    await Promise.all(batch.map((p) => retry(() => write(p))));
  }
}

const HEAD_WRITE_CONCURRENCY = 16;

/** Heads of a brand-new topicId: nobody can know it yet, so unconditional batch writes are safe. */
async function createHeads(storage: Storage, topicId: string, from: number, to: number): Promise<void> {
  const puts = [];
  for (let p = from; p < to; p++) puts.push({ PutRequest: { Item: { p: logPartitionKey(topicId, p), ...emptyHead() } } });
  await batchWrite(storage, storage.config.logTable, puts);
}

/**
 * A short-lived per-process cache of topic metadata for the hot paths. It is safe because it is
 * never the last word: a deleted topic's heads are gone, so a producer with stale metadata fails its
 * reservation; a partition beyond the cached count triggers a fresh read.
 */
const topicCache = new Map<string, { topic: Topic; expires: number }>();
export const TOPIC_CACHE_TTL_MS = 5000;
const cacheKey = (storage: Storage, name: string) => `${storage.config.topicsTable}/${name}`;

export async function getTopicCached(storage: Storage, name: string, minPartitions = 0): Promise<Topic> {
  const hit = topicCache.get(cacheKey(storage, name));
  if (hit && hit.expires > Date.now() && hit.topic.partitions >= minPartitions) return hit.topic;
  const topic = await getTopic(storage, name);
  topicCache.set(cacheKey(storage, name), { topic, expires: Date.now() + TOPIC_CACHE_TTL_MS });
  return topic;
}

export function forgetCachedTopic(storage: Storage, name: string): void {
  topicCache.delete(cacheKey(storage, name));
}

/**
 * Runs an operation on a topic's partition logs; if a log is gone (the topic was deleted while the
 * request was in flight, or the cached metadata is stale) the cache entry is dropped and the caller
 * hears UNKNOWN_TOPIC by name, never an internal key.
 */
export async function onTopicLogs<T>(storage: Storage, name: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (!(err instanceof PartitionLogMissingError)) throw err;
    forgetCachedTopic(storage, name);
    throw new NotFoundError('UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} was deleted or re-created while the request was in flight; nothing was written, retry to use the current topic`, { cause: err });
  }
}
