// Upstash Kafka's REST API, beside v1 and over the same topics, logs and consumer groups, so code
// written for the `@upstash/kafka` client runs here by changing its URL and credentials
// (docs/migrating-from-upstash.md). Only the shapes are translated here; consumer instances are
// lib/groups/instances.ts. Errors on these paths are Upstash's {"error": message, "status"}.
import { Hono, type Context } from 'hono';
import * as z from 'zod';
import type { FetchedRecord } from '../../lib/log/fetcher.ts';
import type { ProduceRecord, RecordOffset } from '../../lib/log/producer.ts';
import { GROUP_ID } from '../../lib/groups/model.ts';
import { MAX_OFFSETS_PER_COMMIT } from '../../lib/groups/group-store.ts';
import { listTopics } from '../../lib/topics/topic-store.ts';
import { decodeField, encodeField, responseBudget, utf8Bytes } from '../http/encoding.ts';
import type { ErrorDialect } from '../http/errors.ts';
import { jsonBody, parseWith } from '../http/request.ts';
import { MAX_RECORDS_PER_REQUEST, MAX_WAIT_MS, offsetsQuery } from '../http/schemas.ts';
import type { Services } from '../http/services.ts';
import { groupParam, MAX_SUBSCRIBED_TOPICS, partitionNumber, topicName } from './groups.ts';
import { assertReturnable } from './produce.ts';

/** Upstash answered every failure with this body, and its client parses every body as JSON. */
export const UPSTASH_ERRORS: ErrorDialect = {
  paths: /^\/(produce|webhook|fetch|consume|commit|committed|topics|consumers|delete-consumer|offsets)(\/|$)/,
  format: (_code, message, status) => ({ error: message, status }),
};

/** Upstash's defaults: fetch and consume wait up to a second for records. */
const DEFAULT_TIMEOUT_MS = 1000;
const MAX_RECORDS_PER_RESPONSE = 500;
const MAX_BYTES_PER_RESPONSE = 1024 * 1024;

const nonNegativeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const timeout = z.number().int().min(0).max(MAX_WAIT_MS);
const header = z.strictObject({ key: z.string(), value: z.string() });
const messageFields = {
  key: z.string().optional(),
  value: z.string(),
  partition: partitionNumber.optional(),
  timestamp: nonNegativeInt.optional(),
  headers: z.array(header).optional(),
};
const topicMessage = z.strictObject({ topic: topicName, ...messageFields });
const message = z.strictObject(messageFields);
const topicPartition = z.strictObject({ topic: topicName, partition: partitionNumber });
const topicPartitionOffset = z.strictObject({ topic: topicName, partition: partitionNumber, offset: nonNegativeInt });

/** A JSON body of one `item` or a non-empty array of them, as a list; `null` for an empty body if `emptyAllowed`. */
async function oneOrMany<S extends z.ZodType>(c: Context, item: S, max: number): Promise<Array<z.infer<S>>>;
async function oneOrMany<S extends z.ZodType>(c: Context, item: S, max: number, emptyAllowed: true): Promise<Array<z.infer<S>> | null>;
async function oneOrMany<S extends z.ZodType>(c: Context, item: S, max: number, emptyAllowed = false): Promise<Array<z.infer<S>> | null> {
  const raw = await jsonBody(c, z.unknown(), emptyAllowed ? null : undefined);
  if (raw === null && emptyAllowed) return null;
  return Array.isArray(raw) ? parseWith(z.array(item).min(1).max(max), raw) : [parseWith(item, raw)];
}

const fetchBody = z.strictObject({
  topic: topicName.optional(),
  partition: partitionNumber.optional(),
  offset: nonNegativeInt.optional(),
  topicPartitionOffsets: z.array(topicPartitionOffset).max(MAX_SUBSCRIBED_TOPICS).optional(),
  timeout: timeout.optional(),
}).refine((b) => [b.topic, b.partition, b.offset].every((v) => v === undefined) || [b.topic, b.partition, b.offset].every((v) => v !== undefined), 'topic, partition and offset go together')
  .refine((b) => b.topic !== undefined || (b.topicPartitionOffsets?.length ?? 0) > 0, 'name a topic, partition and offset, or topicPartitionOffsets');

const consumeBody = z.strictObject({
  topic: topicName.optional(),
  topics: z.array(topicName).min(1).max(MAX_SUBSCRIBED_TOPICS).optional(),
  timeout: timeout.optional(),
}).refine((b) => (b.topic === undefined) !== (b.topics === undefined), 'name either topic or topics');

/** Kafka's consumer settings, as the client sends them in headers (Upstash's defaults when absent). */
const consumeHeaders = z.object({
  'kafka-enable-auto-commit': z.enum(['true', 'false']).optional(),
  'kafka-auto-commit-interval': z.string().regex(/^\d{1,9}$/, 'Kafka-Auto-Commit-Interval must be a number of milliseconds').optional(),
  'kafka-auto-offset-reset': z.enum(['earliest', 'latest'], 'Kafka-Auto-Offset-Reset must be earliest or latest ("none" is not supported)').optional(),
});

const instanceParam = z.string().regex(GROUP_ID, 'instance names are 1 to 249 characters from [a-zA-Z0-9._-]');

/**
 * Request headers a webhook does not keep as record headers: HTTP's own, the credentials, and
 * what proxies and AWS add on the way (Upstash kept "all but the standard HTTP headers").
 */
const WEBHOOK_DROPPED_HEADERS = /^(accept(-.*)?|authorization|cache-control|connection|content-(length|type|encoding)|cookie|expect|forwarded|host|keep-alive|origin|pragma|proxy-.*|referer|te|trailer|transfer-encoding|upgrade|user-agent|sec-.*|via|x-api-key|x-forwarded-.*|x-amzn?-.*)$/i;

type UpstashMessage = z.infer<typeof message>;

export function upstashRoutes({ producer, fetcher, groups, storage }: Pick<Services, 'producer' | 'fetcher' | 'groups' | 'storage'>): Hono {
  const app = new Hono();
  const member = (c: Context) => [parseWith(groupParam, c.req.param('group'), 'path parameter group'), parseWith(instanceParam, c.req.param('instance'), 'path parameter instance')] as const;

  /** Produces to each topic of the request (validated and encoded, all of them, before anything is written). */
  const produce = async (messages: Array<UpstashMessage & { topic: string }>): Promise<Array<RecordOffset & { topic: string }>> => {
    const byTopic = new Map<string, number[]>();
    messages.forEach((m, i) => byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), i]));
    const plans = await Promise.all([...byTopic].map(async ([topic, indices]) => {
      const records = indices.map((i) => produceRecord(messages[i]!, messages.length > 1 ? `${i}` : 'body'));
      assertReturnable(topic, records);
      return { indices, plan: await producer.prepare(topic, records) };
    }));
    // One object per topic: a request naming several topics is not atomic across them.
    const offsets = new Array<RecordOffset & { topic: string }>(messages.length);
    await Promise.all(plans.map(async ({ indices, plan }) => {
      (await producer.persist(plan, 'all')).forEach((o, j) => (offsets[indices[j]!] = { topic: plan.topic.name, ...o }));
    }));
    return offsets;
  };

  app.post('/produce', async (c) => {
    return c.json(await produce(await oneOrMany(c, topicMessage, MAX_RECORDS_PER_REQUEST)));
  });

  app.on(['GET', 'POST'], '/produce/:topic', async (c) => {
    const messages = await oneOrMany(c, message, MAX_RECORDS_PER_REQUEST);
    return c.json(await produce(messages.map((m) => ({ ...m, topic: c.req.param('topic') }))));
  });

  app.get('/produce/:topic/:message', async (c) => {
    const [offset] = await produce([{ topic: c.req.param('topic'), value: c.req.param('message'), key: c.req.query('key') }]);
    return c.json(offset);
  });

  app.post('/webhook', async (c) => {
    const topic = parseWith(z.strictObject({ topic: topicName }), c.req.query(), 'query');
    const headers = Object.entries(c.req.header()).filter(([name]) => !WEBHOOK_DROPPED_HEADERS.test(name)).map(([key, value]) => ({ key, value: utf8Bytes(value, `header ${key}`) }));
    const record = { key: null, value: new Uint8Array(await c.req.arrayBuffer()), headers };
    assertReturnable(topic.topic, [record]);
    const [offset] = await producer.produce(topic.topic, [record]);
    return c.json({ topic: topic.topic, ...offset! });
  });

  app.post('/fetch', async (c) => {
    const body = await jsonBody(c, fetchBody);
    const wanted = [...(body.topicPartitionOffsets ?? []), ...(body.topic !== undefined ? [{ topic: body.topic, partition: body.partition!, offset: body.offset! }] : [])];
    // The response's room, shared evenly: each partition long-polls on its own, all at once.
    const share = { maxRecords: Math.ceil(MAX_RECORDS_PER_RESPONSE / wanted.length), maxBytes: Math.floor(MAX_BYTES_PER_RESPONSE / wanted.length) };
    const batches = await Promise.all(wanted.map(async ({ topic, partition, offset }) => {
      const budget = upstashBudget(topic);
      const result = await fetcher.fetch({ topic, partition, offset, ...share, waitMs: body.timeout ?? DEFAULT_TIMEOUT_MS, budget: { ...budget, bytes: Math.floor(budget.bytes / wanted.length) } });
      return result.records.map((r) => upstashMessage(topic, r));
    }));
    return c.json(batches.flat());
  });

  app.post('/consume/:group/:instance', async (c) => {
    const [groupId, instance] = member(c);
    const settings = parseWith(consumeHeaders, c.req.header(), 'headers');
    const body = await jsonBody(c, consumeBody);
    const records = await groups.instances.consume(groupId, instance, {
      topics: body.topics ?? [body.topic!],
      autoOffsetReset: settings['kafka-auto-offset-reset'] ?? 'latest',
      // Committed on each later consume: at least as often as any Kafka-Auto-Commit-Interval asks.
      autoCommit: settings['kafka-enable-auto-commit'] !== 'false',
      waitMs: body.timeout ?? DEFAULT_TIMEOUT_MS,
      maxRecords: MAX_RECORDS_PER_RESPONSE,
      maxBytes: MAX_BYTES_PER_RESPONSE,
      budget: upstashBudget(),
    });
    return c.json(records.map((r) => upstashMessage(r.topic, r)));
  });

  app.post('/commit/:group/:instance', async (c) => {
    const [groupId, instance] = member(c);
    // An empty body commits what the instance was handed.
    const offsets = await oneOrMany(c, topicPartitionOffset, MAX_OFFSETS_PER_COMMIT, true);
    if (offsets === null) await groups.offsets.commitDelivered(groupId, instance);
    else await groups.offsets.commitAsCurrentOwner(groupId, instance, offsets);
    return c.json({ result: 'Success' });
  });

  app.post('/committed/:group/:instance', async (c) => {
    const [groupId] = member(c);
    const committed = await groups.offsets.committedFor(groupId, await oneOrMany(c, topicPartition, MAX_OFFSETS_PER_COMMIT));
    // Kafka's OffsetFetch answers -1 for a partition without a committed offset.
    return c.json(committed.map(({ topic, partition, offset }) => ({ topic, partition, offset: offset ?? -1 })));
  });

  app.post('/delete-consumer/:group/:instance', async (c) => {
    const [groupId, instance] = member(c);
    await groups.instances.remove(groupId, instance);
    return c.json({ result: 'Success' });
  });

  app.post('/offsets/:timestamp', async (c) => {
    const { timestamp } = parseWith(offsetsQuery, { timestamp: c.req.param('timestamp') }, 'path parameter timestamp');
    const wanted = await oneOrMany(c, topicPartition, MAX_OFFSETS_PER_COMMIT);
    return c.json(await Promise.all(wanted.map(async ({ topic, partition }) => ({ topic, partition, offset: (await fetcher.listOffset(topic, partition, timestamp)).offset }))));
  });

  app.get('/topics', async (c) => c.json(Object.fromEntries((await listTopics(storage)).map((t) => [t.name, t.partitions]))));

  app.get('/consumers', async (c) => {
    const assigned = await groups.admin.assignments();
    return c.json(assigned.map((g) => ({ name: g.group, instances: g.members.map((m) => ({ name: m.memberId, topics: m.assignment })) })));
  });

  return app;
}

/** A message as Upstash returns it: keys and values as UTF-8 text (absent: ""), headers as a list. */
function upstashMessage(topic: string, record: FetchedRecord) {
  return {
    topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: encodeField(record.key, 'utf8') ?? '',
    value: encodeField(record.value, 'utf8') ?? '',
    headers: record.headers.map((h) => ({ key: h.key, value: encodeField(h.value, 'utf8') ?? '' })),
  };
}

/** The response room of fetched or consumed records, measured as upstashMessage serialises them. */
function upstashBudget(topic?: string) {
  const budget = responseBudget<FetchedRecord & { topic?: string }>('utf8', (r) => upstashMessage(topic ?? r.topic!, r));
  return { ...budget, remedy: 'read it with the v1 API in base64 (GET /v1/topics/{topic}/partitions/{partition}/records?encoding=base64)' };
}

function produceRecord(m: UpstashMessage, at: string): ProduceRecord {
  return {
    key: decodeField(m.key, 'utf8', `${at}.key`),
    value: decodeField(m.value, 'utf8', `${at}.value`),
    headers: (m.headers ?? []).map((h, i) => ({ key: (utf8Bytes(h.key, `${at}.headers.${i}.key`), h.key), value: utf8Bytes(h.value, `${at}.headers.${i}.value`) })),
    partition: m.partition,
    timestamp: m.timestamp,
  };
}
