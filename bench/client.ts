// Benchmark section for the TypeScript client against the local app on a free loopback port: one
// idempotent producer calling send() 100,000 times with 1 KiB values and no await in between
// (records per request, records per second, $ per GiB from the AWS calls counted meanwhile), then
// one consumer reading them all back with eachBatch. It reports; it asserts nothing.
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { Queue, type RecordMetadata } from '../client/index.ts';
import type { Storage } from '../lib/storage.ts';
import { createServices } from '../lambdas/http/services.ts';
import { createLocalApp } from '../local/local-app.ts';
import { costPerRequest, GIB, scaleCost, unitsFromCalls, type CostBreakdown, type PriceTable } from './cost-model.ts';
import { AwsMeter, markdownTable, Meter, round, target, usd, type Target, type Usage } from './log.ts';

const RECORD_BYTES = 1024;
const PARTITIONS = 4;
const TOPIC = 'client-bench';
/** Lambda memory the cost model assumes (as the other sections). */
const LAMBDA_MEMORY_MB = 1024;
/** The target, and the unbatched figure it starts from. */
const TARGET_PER_GIB = 0.05;

interface Leg {
  records: number;
  httpRequests: number;
  ms: number;
  recordsPerSecond: number;
  recordsPerRequest: number;
  calls: Record<string, number>;
  perGiB: CostBreakdown;
}

/**
 * $ per GiB of payload for a leg: every counted AWS call, units the larger of derived and
 * reported, one Lambda invocation per HTTP request lasting the leg's wall time ÷ its requests.
 */
function leg(usage: Usage, records: number, httpRequests: number, ms: number, prices: PriceTable): Leg {
  const derived = unitsFromCalls(usage);
  const total = costPerRequest({
    s3Puts: usage.calls['s3.PutObject'] ?? 0,
    s3Gets: usage.calls['s3.GetObject'] ?? 0,
    writeUnits: Math.max(derived.writeUnits, usage.writeUnits + usage.failedConditionalWrites),
    readUnits: Math.max(derived.readUnits, usage.readUnits),
    lambdaInvocations: httpRequests,
    lambdaMs: ms / httpRequests,
    lambdaMemoryMb: LAMBDA_MEMORY_MB,
  }, prices);
  return {
    records, httpRequests, ms: round(ms), recordsPerSecond: round(records / (ms / 1000)), recordsPerRequest: round(records / httpRequests), calls: usage.calls,
    perGiB: scaleCost(total, GIB / (records * RECORD_BYTES)),
  };
}

export async function benchClient(ctx: { storage: Storage; prices: PriceTable; records: number }): Promise<{ markdown: string; json: Record<string, unknown>; targets: Target[] }> {
  const meter = new Meter(ctx.storage.calls, AwsMeter.install(ctx.storage));
  const server = serve({ fetch: createLocalApp(createServices(ctx.storage), 0).fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  try {
    const queue = new Queue({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    await queue.admin().createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
    const value = 'x'.repeat(RECORD_BYTES);

    // Warm-up: the producer id and the topic's partition count, once per producer, are not per record.
    const producer = queue.producer();
    await producer.send({ topic: TOPIC, messages: [{ value }] });
    const produced = await measure(meter, queue, () => {
      const sends: Array<Promise<RecordMetadata[]>> = [];
      for (let i = 0; i < ctx.records; i++) sends.push(producer.send({ topic: TOPIC, messages: [{ value }] }));
      return Promise.all(sends);
    });
    await producer.disconnect();
    const produce = leg(produced.usage, ctx.records, produced.requests, produced.ms, ctx.prices);

    const total = ctx.records + 1;
    const consumer = queue.consumer({ groupId: 'client-bench', maxWaitTimeInMs: 500 });
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    const consumed = await measure(meter, queue, () => new Promise<void>((resolve, reject) => {
      let seen = 0;
      consumer.run({
        eachBatch: async ({ batch }) => {
          seen += batch.messages.length;
          if (seen >= total) resolve();
        },
      }).catch(reject);
    }).then(() => consumer.disconnect()));
    const consume = leg(consumed.usage, total, consumed.requests, consumed.ms, ctx.prices);

    const inPlusOut = produce.perGiB.total + consume.perGiB.total;
    const targets = [target(`$ per GiB in+out ≤ $${TARGET_PER_GIB}, client send() of 1 KiB records without await`, inPlusOut, 'max', TARGET_PER_GIB, ' $', 5)];
    const parts = (c: CostBreakdown) => `S3 ${usd(c.s3Requests)}, DDB ${usd(c.dynamodbWrites + c.dynamodbReads)}, Lambda ${usd(c.lambdaRequests + c.lambdaDuration)}`;
    const rows = [['producer send() (idempotent)', produce], ['consumer eachBatch', consume]].map(([name, l]) => {
      const x = l as Leg;
      return [name as string, x.records, x.httpRequests, x.recordsPerRequest, x.recordsPerSecond, usd(x.perGiB.total), parts(x.perGiB)];
    });
    const markdown = [
      '### Client: producer and consumer over HTTP',
      '',
      `One process, the TypeScript client against the local app on loopback: one idempotent producer calls \`send()\` ${ctx.records.toLocaleString('en-US')} times with one ${RECORD_BYTES}-byte value each and no await in between (after one warm-up send that gets the producer id and the partition count), on a topic of ${PARTITIONS} partitions; then one consumer-group member reads them all with \`eachBatch\`. HTTP requests are the client's (retries included); $ per GiB from the AWS calls counted meanwhile (capacity units the larger of derived and reported), one ${LAMBDA_MEMORY_MB} MB Lambda invocation per HTTP request lasting the leg's wall time ÷ its requests. Unbatched 1 KiB requests cost about $8.4 per GiB in+out.`,
      '',
      markdownTable(['leg', 'records', 'HTTP requests', 'records / request', 'records / s', '$ / GiB', 'breakdown'], rows),
      '',
      `In+out: ${usd(inPlusOut)} per GiB (target ≤ $${TARGET_PER_GIB}).`,
    ].join('\n');
    return { markdown, json: { recordBytes: RECORD_BYTES, partitions: PARTITIONS, produce, consume, inPlusOutPerGiB: inPlusOut }, targets };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Wall time, the client's HTTP requests and the AWS usage while `work` runs. */
async function measure(meter: Meter, queue: Queue, work: () => Promise<unknown>): Promise<{ ms: number; requests: number; usage: Usage }> {
  const requestsBefore = queue.transport.requests;
  const { ms, usage } = await meter.measure(work);
  return { ms, requests: queue.transport.requests - requestsBefore, usage };
}
