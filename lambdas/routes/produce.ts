// Produce: validate everything, then upload and sequence (or, with acks=0, answer first).
import { Hono } from 'hono';
import { RecordTooLargeError } from '../../lib/errors.ts';
import type { ProduceRecord } from '../../lib/log/producer.ts';
import { MAX_PARTITIONS } from '../../lib/topics/topic-config.ts';
import { decodeField, polledRecordJson, responseBudget, utf8Bytes } from '../http/encoding.ts';
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
    assertReturnable(c.req.param('topic'), records);
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

/**
 * Every stored record can be read back: alone, in base64 (the smaller encoding), it fits a fetch
 * or poll response at the largest offset, timestamp and partition. The body limit alone does not
 * ensure it: base64 is 4/3 of the bytes a utf8 body carried, and header values are escaped.
 */
export function assertReturnable(topic: string, records: ProduceRecord[]): void {
  const budget = responseBudget('base64', polledRecordJson);
  for (const [i, record] of records.entries()) {
    const size = budget.sizeOf({ ...record, topic, partition: MAX_PARTITIONS - 1, offset: Number.MAX_SAFE_INTEGER, timestamp: Number.MAX_SAFE_INTEGER });
    if (size > budget.bytes) throw new RecordTooLargeError('RECORD_TOO_LARGE', `records.${i} would take ${size} bytes in a fetch or poll response even as base64, more than the ${budget.bytes} one can carry; split it into smaller records`);
  }
}
