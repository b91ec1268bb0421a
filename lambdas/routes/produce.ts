// Produce: validate everything, then upload and sequence (or, with acks=0, answer first).
import { Hono } from 'hono';
import { decodeField, utf8Bytes } from '../http/encoding.ts';
import { runInBackground } from '../http/background.ts';
import { produceBody } from '../http/schemas.ts';
import { jsonBody } from '../http/request.ts';
import type { Services } from '../http/services.ts';

export function produceRoutes({ producer }: Pick<Services, 'producer'>): Hono {
  const app = new Hono();

  app.post('/v1/topics/:topic/records', async (c) => {
    const body = await jsonBody(c, produceBody);
    const encoding = body.encoding ?? 'utf8';
    const records = body.records.map((r, i) => ({
      key: decodeField(r.key, encoding, `records.${i}.key`),
      value: decodeField(r.value, encoding, `records.${i}.value`),
      headers: Object.entries(r.headers ?? {}).map(([key, value]) => {
        utf8Bytes(key, `records.${i}.headers name ${JSON.stringify(key)}`);
        return { key, value: utf8Bytes(value, `records.${i}.headers.${key}`) };
      }),
      partition: r.partition,
      timestamp: r.timestamp,
    }));
    const plan = await producer.prepare(c.req.param('topic'), records);
    const acks = body.acks ?? 'all';
    if (acks === '0') {
      runInBackground(() => producer.persist(plan, '0'), `produce to ${plan.topic.name}`);
      return c.json({ accepted: records.length }, 202);
    }
    const offsets = await producer.persist(plan, acks);
    return c.json({ offsets });
  });

  return app;
}
