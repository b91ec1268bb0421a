// Topic administration: create, list, describe, delete, add partitions.
import { Hono } from 'hono';
import { addPartitions, createTopic, deleteTopic, getTopic, listTopics } from '../../lib/topics/topic-store.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { addPartitionsBody, createTopicBody } from '../http/schemas.ts';
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
    const partitions = await Promise.all(Array.from({ length: topic.partitions }, async (_, partition) => {
      const view = await sequencer.read(logPartitionKey(topic.topicId, partition));
      return { partition, logStartOffset: view.head.logStart, highWatermark: view.highWatermark };
    }));
    return c.json({ name: topic.name, partitions, config: topic.config });
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
