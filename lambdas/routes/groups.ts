// Consumer groups: membership (join, heartbeat, leave), poll, offsets (commit, reset) and admin.
// The schemas are exported for test/api/openapi.test.ts, which checks docs/openapi.json against them.
import { Hono, type Context } from 'hono';
import * as z from 'zod';
import { MAX_WATCH_CHARS } from '../../lib/groups/consumer.ts';
import { MAX_OFFSETS_PER_COMMIT } from '../../lib/groups/group-store.ts';
import { GROUP_ID, REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS, topicPartition } from '../../lib/groups/model.ts';
import { TOPIC_NAME, TOPIC_NAME_RULE } from '../../lib/topics/topic-config.ts';
import { polledRecordJson, responseBudget } from '../http/encoding.ts';
import { jsonBody, parseWith } from '../http/request.ts';
import { MAX_FETCH_BYTES, MAX_FETCH_RECORDS, MAX_WAIT_MS, isolationField } from '../http/schemas.ts';
import type { Services } from '../http/services.ts';

/** Kafka's offset.metadata.max.bytes default. */
export const MAX_METADATA_CHARS = 4096;
export const MAX_SUBSCRIBED_TOPICS = 100;

const nonNegativeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const partitionNumber = z.number().int().nonnegative().max(1_000_000);
/**
 * Kafka's topic name rule, as lib/topics/topic-config.ts validates it (the lookahead refuses "." and
 * ".."), checked here so the API document states it. It also keeps '#' and ':' out of the group
 * table's keys ("offset#<topic>#<partition>", "topic:partition").
 */
export const topicName = z.string().min(1).max(249).regex(TOPIC_NAME, TOPIC_NAME_RULE);
export const groupParam = z.string().regex(GROUP_ID, 'group ids are 1 to 249 characters from [a-zA-Z0-9._-]');
export const memberIdParam = z.uuid('member ids are the UUIDs returned by join');
const pollId = z.uuid('poll ids are the UUIDs returned by poll');
const boundedInt = (min: number, max: number) => z.number().int().min(min).max(max);

export const joinBody = z.strictObject({
  topics: z.array(topicName).min(1, 'subscribe to at least one topic').max(MAX_SUBSCRIBED_TOPICS),
  sessionTimeoutMs: boundedInt(SESSION_TIMEOUT_MS.min, SESSION_TIMEOUT_MS.max).optional(),
  rebalanceTimeoutMs: boundedInt(REBALANCE_TIMEOUT_MS.min, REBALANCE_TIMEOUT_MS.max).optional(),
  assignor: z.enum(['uniform', 'range']).optional(),
  autoOffsetReset: z.enum(['earliest', 'latest']).optional(),
});

const partitionsByTopic = z.array(z.strictObject({ topic: topicName, partitions: z.array(partitionNumber) }));

export const heartbeatBody = z.strictObject({ memberEpoch: nonNegativeInt, owned: partitionsByTopic.optional() });

export const commitBody = z.strictObject({
  memberId: memberIdParam.optional(),
  memberEpoch: nonNegativeInt.optional(),
  offsets: z.array(z.strictObject({
    topic: topicName,
    partition: partitionNumber,
    offset: nonNegativeInt,
    metadata: z.string().max(MAX_METADATA_CHARS).optional(),
  })).min(1, 'at least one offset is required').max(MAX_OFFSETS_PER_COMMIT, `at most ${MAX_OFFSETS_PER_COMMIT} offsets per commit`),
}).refine((b) => (b.memberId === undefined) === (b.memberEpoch === undefined), 'memberId and memberEpoch go together (omit both only to commit for an empty group)');

export const resetBody = z.strictObject({
  topic: topicName,
  partitions: z.array(partitionNumber).min(1).optional(),
  to: z.union([z.enum(['earliest', 'latest']), z.strictObject({ timestamp: nonNegativeInt }), z.strictObject({ offset: nonNegativeInt })]),
});

export const pollBody = z.strictObject({
  maxRecords: boundedInt(1, MAX_FETCH_RECORDS).optional(),
  maxBytes: boundedInt(1, MAX_FETCH_BYTES).optional(),
  waitMs: boundedInt(0, MAX_WAIT_MS).optional(),
  autoCommit: z.boolean().optional(),
  encoding: z.enum(['utf8', 'base64']).optional(),
  ack: pollId.optional(),
  isolation: isolationField.optional(),
  watch: z.string().max(MAX_WATCH_CHARS).optional(),
});

export const leaveQuery = z.strictObject({ ack: pollId.optional() });

export function groupRoutes({ groups }: Pick<Services, 'groups'>): Hono {
  const app = new Hono();
  const group = (c: Context) => parseWith(groupParam, c.req.param('group'), 'path parameter group');
  const member = (c: Context) => parseWith(memberIdParam, c.req.param('memberId'), 'path parameter memberId');

  app.get('/v1/groups', async (c) => c.json({ groups: await groups.admin.list() }));

  app.get('/v1/groups/:group', async (c) => c.json(await groups.admin.describe(group(c))));

  app.delete('/v1/groups/:group', async (c) => {
    await groups.admin.delete(group(c));
    return c.body(null, 204);
  });

  app.post('/v1/groups/:group/members', async (c) => {
    const groupId = group(c);
    const body = await jsonBody(c, joinBody);
    return c.json(await groups.membership.join(groupId, body), 201);
  });

  app.post('/v1/groups/:group/members/:memberId/heartbeat', async (c) => {
    const [groupId, memberId] = [group(c), member(c)];
    const body = await jsonBody(c, heartbeatBody);
    const owned = body.owned?.flatMap((t) => t.partitions.map((p) => topicPartition(t.topic, p)));
    return c.json(await groups.membership.heartbeat(groupId, memberId, body.memberEpoch, owned));
  });

  app.delete('/v1/groups/:group/members/:memberId', async (c) => {
    const [groupId, memberId] = [group(c), member(c)];
    const query = parseWith(leaveQuery, c.req.query(), 'query');
    await groups.membership.leave(groupId, memberId, query.ack);
    return c.body(null, 204);
  });

  app.post('/v1/groups/:group/members/:memberId/poll', async (c) => {
    const [groupId, memberId] = [group(c), member(c)];
    const body = await jsonBody(c, pollBody, {});
    const encoding = body.encoding ?? 'utf8';
    const result = await groups.consumer.poll(groupId, memberId, {
      maxRecords: body.maxRecords ?? 500,
      maxBytes: body.maxBytes ?? 1024 * 1024,
      waitMs: body.waitMs ?? 0,
      autoCommit: body.autoCommit ?? true,
      ack: body.ack,
      isolation: body.isolation,
      watch: body.watch,
      budget: responseBudget(encoding, polledRecordJson),
    });
    return c.json({ ...result, records: result.records.map((r) => polledRecordJson(r, encoding)) });
  });

  app.post('/v1/groups/:group/offsets', async (c) => {
    const groupId = group(c);
    const body = await jsonBody(c, commitBody);
    const committer = body.memberId !== undefined && body.memberEpoch !== undefined ? { memberId: body.memberId, memberEpoch: body.memberEpoch } : undefined;
    await groups.offsets.commit(groupId, body.offsets, committer);
    return c.body(null, 204);
  });

  app.post('/v1/groups/:group/offsets/reset', async (c) => {
    const groupId = group(c);
    const body = await jsonBody(c, resetBody);
    const offsets = await groups.offsets.reset(groupId, body.topic, body.partitions, body.to);
    return c.json({ offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })) });
  });

  return app;
}
