// Small writes (docs/architecture.md, "Small writes"): $ per GiB in+out at 1 KiB to 1 MiB with the
// inline path, sequential AWS round trips per produce at each acks level, and the inline bytes a
// partition holds in DynamoDB over a steady load with maintenance running as `npm start` runs it.
//   npx tsx bench/small-writes.ts   runs this section alone and prints it
import { paginateQuery } from '@aws-sdk/lib-dynamodb';
import { allItems } from '../lib/aws/pages.ts';
import { logPartitionKey } from '../lib/log/keys.ts';
import type { Acks } from '../lib/log/producer.ts';
import { sleep } from '../lib/retry.ts';
import type { Storage } from '../lib/storage.ts';
import { Maintenance } from '../lib/lifecycle/maintenance.ts';
import { Sequencer } from '../lib/log/sequencer.ts';
import { createTopic, getTopic } from '../lib/topics/topic-store.ts';
import { createServices, type Services } from '../lambdas/http/services.ts';
import { costPerGiB, requestsPerGiB, type PriceTable } from './cost-model.ts';
import { compact } from './lifecycle.ts';
import { benchSize, LAMBDA_MEMORY_MB, markdownTable, round, usageOf, usd, type Meter, type Sanity, type SizeSpec } from './log.ts';

const KIB = 1024;

export interface SmallWritesContext {
  storage: Storage;
  services: Services;
  meter: Meter;
  prices: PriceTable;
  progress: (line: string) => void;
  scale: number;
}

/**
 * The longest chain of AWS calls each starting after the previous one ended: the sequential round
 * trips of a request (calls in parallel count once).
 */
function sequentialRoundTrips(calls: Array<{ start: number; end: number }>): number {
  const depth: number[] = [];
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  for (const [i, call] of sorted.entries()) {
    depth[i] = 1 + Math.max(0, ...sorted.slice(0, i).flatMap((c, j) => (c.end <= call.start ? [depth[j]!] : [])));
  }
  return Math.max(0, ...depth);
}

/** Times every AWS call made through `storage`'s clients while `fn` runs. */
async function traced(storage: Storage, fn: () => Promise<unknown>): Promise<number> {
  const calls: Array<{ start: number; end: number }> = [];
  const clients = [storage.ddb, storage.s3] as Array<{ send: (command: unknown) => Promise<unknown> }>;
  const originals = clients.map((c) => c.send);
  clients.forEach((c, i) => {
    c.send = async (command: unknown) => {
      const call = { start: performance.now(), end: Infinity };
      calls.push(call);
      try {
        return await originals[i]!.call(c, command);
      } finally {
        call.end = performance.now();
      }
    };
  });
  try {
    await fn();
  } finally {
    clients.forEach((c, i) => (c.send = originals[i]!));
  }
  return sequentialRoundTrips(calls);
}

export async function benchSmallWrites(ctx: SmallWritesContext) {
  const sanity: Sanity[] = [];
  const specs: SizeSpec[] = [
    { bytes: KIB, ops: 100, warmup: 10 },
    { bytes: 16 * KIB, ops: 60, warmup: 5 },
    { bytes: 64 * KIB, ops: 40, warmup: 5 },
    { bytes: 1024 * KIB, ops: 15, warmup: 3 },
  ].map((s) => ({ ...s, ops: Math.max(3, Math.round(s.ops * ctx.scale)) }));
  // 1 KiB once more with the inline path off: what the same requests cost through S3 intake objects.
  const intakeStorage = { ...ctx.storage, config: { ...ctx.storage.config, inlineMaxBytes: 0 } };
  const runs = [...specs.map((spec) => ({ spec, services: ctx.services })), { spec: specs[0]!, services: createServices(intakeStorage) }];
  const costs = [];
  for (const { spec, services } of runs) {
    const size = await benchSize({ ...ctx, services }, spec, sanity);
    const [usageIn, usageOut] = [usageOf(size.produceAcksAll), usageOf(size.fetch)];
    const [inPerGiB, outPerGiB] = [costPerGiB(usageIn, spec.bytes, ctx.prices), costPerGiB(usageOut, spec.bytes, ctx.prices)];
    // What the lifecycle later spends on the same bytes: compacting them into a segment and
    // deleting their entries (and intake objects), everything due at once.
    ctx.progress(`small writes: compacting the ${size.label} log`);
    const topic = await getTopic(ctx.storage, size.topics.all);
    const maintenance = new Maintenance(ctx.storage, new Sequencer(ctx.storage), { compactor: { now: () => Date.now() + topic.config['segment.ms'] } });
    const compaction = await compact(maintenance, ctx.meter, topic, (spec.warmup + spec.ops) * spec.bytes, ctx.prices);
    // Lambda time is the one part priced from local timings: what the rest costs, and what each
    // millisecond of it (in and out together) adds.
    const withoutLambdaTime = inPerGiB.total - inPerGiB.lambdaDuration + outPerGiB.total - outPerGiB.lambdaDuration;
    const perLambdaMs = (ctx.prices.lambda.arm64PerGBSecond * (LAMBDA_MEMORY_MB / 1024) / 1000) * requestsPerGiB(spec.bytes);
    costs.push({ label: size.label, path: (size.produceAcksAll.callsPerOp['s3.PutObject'] ?? 0) === 0 ? 'inline' : 'S3 intake object', s3PutsPerRequest: usageIn.s3Puts, inPerGiB: inPerGiB.total, outPerGiB: outPerGiB.total, inPlusOutPerGiB: inPerGiB.total + outPerGiB.total, withoutLambdaTime, perLambdaMs, lambdaMs: usageIn.lambdaMs + usageOut.lambdaMs, compactionPerGiB: compaction.perGiB.total, in: usageIn, out: usageOut, compaction: { entriesDropped: compaction.entriesDropped, calls: compaction.calls, usage: compaction.usage, perGiB: compaction.perGiB } });
  }

  ctx.progress('small writes: sequential round trips per produce');
  const roundTrips = [];
  for (const bytes of [KIB, 64 * KIB]) {
    const topic = await createTopic(ctx.storage, { name: `bench-rtt-${bytes}-${Date.now()}`, partitions: 1 });
    const records = [{ key: null, value: new Uint8Array(bytes), headers: [], partition: 0 }];
    for (const acks of ['1', 'all'] as Acks[]) {
      const counts: number[] = [];
      for (let i = 0; i < 20; i++) counts.push(await traced(ctx.storage, () => ctx.services.producer.produce(topic.name, records, acks)));
      counts.sort((a, b) => a - b);
      roundTrips.push({ size: `${bytes / KIB} KiB`, acks, p50: counts[counts.length >> 1]!, max: counts.at(-1)! });
    }
    roundTrips.push({ size: `${bytes / KIB} KiB`, acks: '0', p50: 0, max: 0 });
  }

  ctx.progress('small writes: inline bytes held over a steady load');
  const seconds = Math.max(10, Math.round(60 * ctx.scale));
  const rate = 50;
  const topic = await createTopic(ctx.storage, { name: `bench-steady-${Date.now()}`, partitions: 1 });
  const pk = logPartitionKey(topic.topicId, 0);
  const held: number[] = [];
  const inlineBytes = async () => (await allItems(paginateQuery({ client: ctx.storage.ddb }, {
    TableName: ctx.storage.config.logTable, KeyConditionExpression: '#p = :p AND #o >= :zero', ExpressionAttributeNames: { '#p': 'p', '#o': 'o' }, ExpressionAttributeValues: { ':p': pk, ':zero': 0 }, ConsistentRead: true,
  }))).reduce((sum, item) => sum + ((item.b as Uint8Array | undefined)?.length ?? 0), 0);
  const end = Date.now() + seconds * 1000;
  let stop = false;
  // Maintenance as `npm start` runs it: a pass a couple of seconds after activity.
  const maintenance = (async () => {
    while (!stop) {
      await sleep(2000);
      await ctx.services.maintenance.maintainPartition(await getTopic(ctx.storage, topic.name), 0).catch(() => undefined);
    }
  })();
  const value = new Uint8Array(KIB);
  for (let second = 0; Date.now() < end; second++) {
    const tick = Date.now();
    await Promise.all(Array.from({ length: rate }, () => ctx.services.producer.produce(topic.name, [{ key: null, value, headers: [], partition: 0 }], '1')));
    held.push(await inlineBytes());
    await sleep(Math.max(0, 1000 - (Date.now() - tick)));
  }
  stop = true;
  await maintenance;
  const steady = { seconds: held.length, requestsPerSecond: rate, requestBytes: KIB, maxInlineBytes: Math.max(...held), lastInlineBytes: held.at(-1)!, samples: held };

  const markdown = [
    '### Small writes',
    '',
    `Requests of at most ${ctx.storage.config.inlineMaxBytes} encoded bytes store their batch inline in the index entry (no S3 PUT). Cost as in "Cost per GiB": in = produce acks=all, out = one fetch of the batch (in order from the start of the log, on the producer's process), counted calls and units, Lambda ${LAMBDA_MEMORY_MB} MB for the measured local p50 (the local emulators' latency: neither AWS's nor steady from run to run; see below the table). Compaction = the maintenance passes that later copy the same batches into a segment and delete their entries (and intake objects), as in "Lifecycle"; it is not part of in+out (nor was it in the figures before small writes), and is shown so that nothing the small path saves is only moved there.`,
    '',
    markdownTable(['request size', 'path', 'S3 PUTs / request', 'in $/GiB', 'out $/GiB', 'in+out $/GiB', 'compaction $/GiB', 'in+out+compaction $/GiB'], costs.map((c) => [c.label, c.path, c.s3PutsPerRequest, usd(c.inPerGiB), usd(c.outPerGiB), usd(c.inPlusOutPerGiB), usd(c.compactionPerGiB), usd(c.inPlusOutPerGiB + c.compactionPerGiB)])),
    '',
    `Lambda time is the part of the 1 KiB inline figure that depends on latency: without it (DynamoDB units and Lambda requests only) in+out is ${usd(costs[0]!.withoutLambdaTime)} per GiB, and each millisecond of Lambda time (in and out together, ${LAMBDA_MEMORY_MB} MB) adds ${usd(costs[0]!.perLambdaMs)}: within $3 up to ${round((3 - costs[0]!.withoutLambdaTime) / costs[0]!.perLambdaMs, 1)} ms in all. Measured here: ${round(costs[0]!.lambdaMs, 1)} ms (the p50s of in and out). In AWS a produce waits on two DynamoDB calls in sequence (reserve, commit) and a fetch on one parallel pair (the head, and the entries: those added since the process's last read for a reader at the tail, those from its offset for a reader below the walked floor), a few milliseconds each.`,
    '',
    'Sequential AWS round trips before the answer: the longest chain of SDK calls each starting after the previous one ended (20 requests each; parallel calls count once). acks=0 answers before any call.',
    '',
    markdownTable(['size', 'acks', 'p50', 'max'], roundTrips.map((r) => [r.size, r.acks, r.p50, r.max])),
    '',
    `Inline bytes held in DynamoDB by one partition under ${rate} requests of 1 KiB per second for ${steady.seconds} s (acks=1), maintenance passes every 2 s (default segment.ms and segment.bytes; inline batches roll at 1 MiB): at most ${round(steady.maxInlineBytes / KIB)} KiB, ${round(steady.lastInlineBytes / KIB)} KiB at the end.`,
  ].join('\n');
  return { markdown, json: { costs, roundTrips, steady, sanity } };
}
