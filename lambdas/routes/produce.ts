// Produce: validate everything, then upload and sequence (or, with acks=0, answer first).
import { Hono, type Context } from 'hono';
import { DEFAULT_TRANSACTION_TIMEOUT_MS } from '../../lib/producers/transactions.ts';
import { RecordTooLargeError } from '../../lib/errors.ts';
import type { ProduceRecord } from '../../lib/log/producer.ts';
import { MAX_PARTITIONS } from '../../lib/topics/topic-config.ts';
import { decodeField, polledRecordJson, responseBudget, utf8Bytes } from '../http/encoding.ts';
import { runInBackground } from '../http/background.ts';
import { endTransactionBody, initProducerBody, produceBody, transactionalIdParam, transactionOffsetsBody } from '../http/schemas.ts';
import { jsonBody, parseWith } from '../http/request.ts';
import type { Services } from '../http/services.ts';

export function produceRoutes({ producer, producers }: Pick<Services, 'producer' | 'producers'>): Hono {
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
    const identity = body.producerId === undefined ? undefined : { producerId: body.producerId, producerEpoch: body.producerEpoch!, sequences: body.sequences!, transactionalId: body.transactionalId };
    const plan = await producer.prepare(c.req.param('topic'), records, Date.now(), identity);
    const acks = body.acks ?? 'all';
    if (acks === '0') {
      runInBackground(() => producer.persist(plan, '0'), `produce to ${plan.topic.name}`);
      return c.json({ accepted: records.length }, 202);
    }
    const offsets = await producer.persist(plan, acks);
    return c.json({ offsets });
  });

  // Kafka's InitProducerId: a new producer id, or with a transactional id its producer at a new
  // epoch (fencing the previous one and aborting what it left open).
  app.post('/v1/producers', async (c) => {
    const body = await jsonBody(c, initProducerBody, {});
    const identity = body.transactionalId === undefined
      ? await producers.store.create(0).then((p) => ({ producerId: p.producerId, producerEpoch: p.epoch }))
      : await producers.transactions.init(body.transactionalId, body.transactionTimeoutMs ?? DEFAULT_TRANSACTION_TIMEOUT_MS);
    return c.json(identity);
  });

  const transactionalId = (c: Context) => parseWith(transactionalIdParam, c.req.param('transactionalId'), 'path parameter transactionalId');

  // Kafka's TxnOffsetCommit (sendOffsetsToTransaction): committed with the transaction, or not at all.
  app.post('/v1/transactions/:transactionalId/offsets', async (c) => {
    const { producerId, producerEpoch, groupId, memberId, memberEpoch, offsets } = await jsonBody(c, transactionOffsetsBody);
    await producers.transactions.addOffsets({ producerId, producerEpoch }, transactionalId(c), groupId, { memberId, memberEpoch }, offsets);
    return c.json({});
  });

  // Kafka's EndTxn.
  for (const outcome of ['commit', 'abort'] as const) {
    app.post(`/v1/transactions/:transactionalId/${outcome}`, async (c) => {
      const identity = await jsonBody(c, endTransactionBody);
      await producers.transactions.end(identity, transactionalId(c), outcome);
      return c.json({});
    });
  }

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
