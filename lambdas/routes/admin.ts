// Topic administration: create, list, describe, delete, add partitions, alter config, delete records.
import { Hono } from 'hono';
import { NotFoundError } from '../../lib/errors.ts';
import { deleteRecords } from '../../lib/lifecycle/delete-records.ts';
import { addPartitions, alterTopicConfig, createTopic, deleteTopic, getTopic, listTopics, onTopicLogs } from '../../lib/topics/topic-store.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { partitionStats } from '../../lib/log/partition-stats.ts';
import { addPartitionsBody, alterConfigBody, createTopicBody, deleteRecordsBody } from '../http/schemas.ts';
import { jsonBody } from '../http/request.ts';
import type { Services } from '../http/services.ts';

export function adminRoutes({ storage, sequencer }: Pick<Services, 'storage' | 'sequencer'>): Hono {
  const app = new Hono();

  app.post('/v1/topics', async (c) => {
    const body = await jsonBody(c, createTopicBody);
    const topic = await createTopic(storage, body);
    return c.json({ name: topic.name, partitions: topic.partitions, config: topic.config }, 201);
  });

  app.get('/v1/topics', async (c) => {
    const topics = await listTopics(storage);
    return c.json({ topics: topics.map((t) => ({ name: t.name, partitions: t.partitions })) });
  });

  app.get('/v1/topics/:topic', async (c) => {
    const topic = await getTopic(storage, c.req.param('topic'));
    const partitions = await Promise.all(Array.from({ length: topic.partitions }, (_, partition) => partitionStats(storage, sequencer, logPartitionKey(topic.topicId, partition), partition)));
    return c.json({ name: topic.name, partitions, config: topic.config });
  });

  app.patch('/v1/topics/:topic/config', async (c) => {
    const { config } = await jsonBody(c, alterConfigBody);
    const topic = await alterTopicConfig(storage, c.req.param('topic'), config);
    return c.json({ name: topic.name, config: topic.config });
  });

  app.post('/v1/topics/:topic/delete-records', async (c) => {
    const { partitions } = await jsonBody(c, deleteRecordsBody);
    const name = c.req.param('topic');
    const topic = await getTopic(storage, name);
    const unknown = partitions.find((p) => p.partition >= topic.partitions);
    if (unknown) throw new NotFoundError('UNKNOWN_PARTITION', `partition ${unknown.partition} does not exist: topic ${JSON.stringify(name)} has partitions 0 to ${topic.partitions - 1}`);
    const starts = await onTopicLogs(storage, name, () => deleteRecords(storage, sequencer, partitions.map(({ partition, offset }) => ({ pk: logPartitionKey(topic.topicId, partition), offset: offset === -1 ? undefined : offset }))));
    const results = partitions.map(({ partition }, i) => ({ partition, logStartOffset: starts[i]! }));
    return c.json({ partitions: results });
  });

  app.delete('/v1/topics/:topic', async (c) => {
    await deleteTopic(storage, c.req.param('topic'));
    return c.body(null, 204);
  });

  app.post('/v1/topics/:topic/partitions', async (c) => {
    const { count } = await jsonBody(c, addPartitionsBody);
    const topic = await addPartitions(storage, c.req.param('topic'), count);
    return c.json({ name: topic.name, partitions: topic.partitions });
  });

  return app;
}
