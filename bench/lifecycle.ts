// Benchmark section for the log's lifecycle. One partition is written by many one-record requests
// (the worst case for the intake path: one object and one index item per record), then:
//   * replayed from offset 0 before compaction, compacted, and replayed again: S3 GETs per MiB,
//     MiB/s, and what the partition holds in DynamoDB and S3 each time;
//   * what compaction itself takes: calls, capacity units, $ per GiB compacted, duration;
//   * ListOffsets by timestamp at several positions, before and after compaction;
//   * what the hourly maintenance sweep costs on an idle stack of its own.
// It reports; it asserts nothing.
//   npx tsx bench/lifecycle.ts    this section alone; BENCH_SCALE=0.1 writes 2,000 requests
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ListObjectsCommand } from '@aws-sdk/client-s3';
import { paginateQuery } from '@aws-sdk/lib-dynamodb';
import { Maintenance, type PartitionReport } from '../lib/lifecycle/maintenance.ts';
import { mapLimit } from '../lib/lifecycle/map-limit.ts';
import { Fetcher, recordSize, type ListedOffset } from '../lib/log/fetcher.ts';
import { logPartitionKey, segmentsPartitionKey } from '../lib/log/keys.ts';
import { Sequencer } from '../lib/log/sequencer.ts';
import { createStorage, type Storage } from '../lib/storage.ts';
import { createTopic, type Topic } from '../lib/topics/topic-store.ts';
import { MAX_FETCH_BYTES, MAX_FETCH_RECORDS } from '../lambdas/http/schemas.ts';
import { createServices } from '../lambdas/http/services.ts';
import { startLocalStack } from '../local/stack.ts';
import { costPerGiB, costPerRequest, HOURS_PER_MONTH, monthlyCost, unitsFromCalls, type CostBreakdown, type PriceTable, type RequestUsage } from './cost-model.ts';
import { AwsMeter, callList, markdownTable, Meter, ratio, renderSanity, renderTargets, round, target, usd, type Sanity, type Target, type Usage } from './log.ts';
import { closeStorage, loadPrices, provisionedStorage } from './setup.ts';

/** One-record produce requests at BENCH_SCALE=1. */
const FULL_REQUESTS = 20_000;
const VALUE_BYTES = 200;
const PRODUCE_CONCURRENCY = 16;
/** Lookups at the timestamps of the records at these fractions of the log, and one past its last. */
const LOOKUP_POSITIONS = [0, 0.25, 0.5, 0.75, 0.999];
const IDLE_TOPICS = 10;
const IDLE_PARTITIONS = 4;
const IDLE_SWEEPS = 3;
/** Partitions the maintenance function's sweep maintains at once (lambdas/maintenance.ts). */
const SWEEP_CONCURRENCY = 4;
/** The maintenance function's default memory (cdk/serverless-queue.ts). */
const MAINTENANCE_MEMORY_MB = 1024;
/** The deployed schedule sweeps hourly. */
const SWEEP_INTERVAL_MS = 3600_000;
const SWEEPS_PER_MONTH = HOURS_PER_MONTH;

export const lifecycleRequests = (scale: number) => Math.max(100, Math.round(FULL_REQUESTS * scale));

export interface LifecycleContext {
  storage: Storage;
  prices: PriceTable;
  progress: (line: string) => void;
  /** One-record produce requests written to the partition. */
  requests: number;
}

/** What a partition holds: its index entries and segment items, its intake and segment objects. */
interface Footprint {
  entryItems: number;
  segmentItems: number;
  intakeObjects: number;
  segmentObjects: number;
}

interface Replay {
  records: number;
  payloadBytes: number;
  fetches: number;
  ms: number;
  mibPerSec: number;
  s3Gets: number;
  s3GetsPerMiB: number;
  dynamodbReads: number;
  calls: Record<string, number>;
  footprint: Footprint;
}

interface Lookup {
  /** Where the timestamp was taken from: a fraction of the log, or past its last record. */
  position: string;
  timestamp: number;
  expected: ListedOffset;
  found: ListedOffset;
  ms: number;
  dynamodbReads: number;
  s3Gets: number;
  awsCalls: number;
}

export interface Compaction {
  passes: number;
  segments: number;
  entriesDropped: number;
  payloadBytes: number;
  ms: number;
  mibPerSec: number;
  calls: Record<string, number>;
  transactWriteItems: number;
  derivedWriteUnits: number;
  reportedWriteUnits: number;
  derivedReadUnits: number;
  reportedReadUnits: number;
  usage: RequestUsage;
  cost: CostBreakdown;
  perGiB: CostBreakdown;
}

interface IdleSweeps {
  topics: number;
  partitions: number;
  sweeps: number;
  meanMs: number;
  callsPerSweep: Record<string, number>;
  writeUnitsPerSweep: number;
  readUnitsPerSweep: number;
  perMonth: CostBreakdown;
  perPartitionMonth: number;
}

const MIB = 2 ** 20;
const dynamodbReads = (calls: Record<string, number>) => (calls['dynamodb.GetItem'] ?? 0) + (calls['dynamodb.Query'] ?? 0);
const awsCalls = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);

/**
 * What maintenance consumed, as the cost model prices it: S3 lists are billed like PUTs; units are
 * the larger of derived (transactions at 2 per item) and reported; `invocations` of the maintenance
 * function share the wall time.
 */
function maintenanceUsage(usage: Usage, invocations: number, ms: number): RequestUsage {
  const derived = unitsFromCalls(usage);
  return {
    s3Puts: (usage.calls['s3.PutObject'] ?? 0) + (usage.calls['s3.ListObjectsV2'] ?? 0),
    s3Gets: usage.calls['s3.GetObject'] ?? 0,
    s3Deletes: (usage.calls['s3.DeleteObjects'] ?? 0) + (usage.calls['s3.DeleteObject'] ?? 0),
    writeUnits: Math.max(derived.writeUnits, usage.writeUnits + usage.failedConditionalWrites),
    readUnits: Math.max(derived.readUnits, usage.readUnits),
    lambdaInvocations: invocations,
    lambdaMs: ms / invocations,
    lambdaMemoryMb: MAINTENANCE_MEMORY_MB,
  };
}

/** Items under `p` from o = 0 on: index entries or segment items, not the head and state items. */
async function countItems(storage: Storage, p: string): Promise<number> {
  let n = 0;
  for await (const page of paginateQuery({ client: storage.ddb }, {
    TableName: storage.config.logTable, KeyConditionExpression: '#p = :p AND #o >= :zero', ExpressionAttributeNames: { '#p': 'p', '#o': 'o' },
    ExpressionAttributeValues: { ':p': p, ':zero': 0 }, Select: 'COUNT', ConsistentRead: true,
  })) n += page.Count ?? 0;
  return n;
}

/** ListObjects (v1), paged by marker: s3rver cannot make ListObjectsV2 continuation tokens on OpenSSL 3. */
async function countObjects(storage: Storage, prefix: string): Promise<number> {
  let n = 0;
  for (let marker: string | undefined; ;) {
    const res = await storage.s3.send(new ListObjectsCommand({ Bucket: storage.config.bucket, Prefix: prefix, Marker: marker }));
    const keys = res.Contents ?? [];
    n += keys.length;
    if (!res.IsTruncated || keys.length === 0) return n;
    marker = keys.at(-1)!.Key;
  }
}

/** Read through `observer`, whose calls are not metered. */
async function footprint(observer: Storage, topic: Topic): Promise<Footprint> {
  const pk = logPartitionKey(topic.topicId, 0);
  // Object key layouts: the producer's intake objects, the compactor's log segments.
  return {
    entryItems: await countItems(observer, pk), segmentItems: await countItems(observer, segmentsPartitionKey(pk)), intakeObjects: await countObjects(observer, `segments/${topic.topicId}/`), segmentObjects: await countObjects(observer, `logs/${pk}/`),
  };
}

/**
 * Reads the partition from offset 0 to its high watermark, as a consumer catching up would: the
 * largest fetches the HTTP API allows, on a fresh fetcher (no segment index cached yet).
 */
async function replay(storage: Storage, meter: Meter, observer: Storage, topic: Topic, sanity: Sanity[], label: string): Promise<{ replay: Replay; digest: string; timestamps: number[] }> {
  const fetcher = new Fetcher(storage, new Sequencer(storage));
  const hash = createHash('sha256');
  const timestamps: number[] = [];
  let payloadBytes = 0;
  let fetches = 0;
  let anomalies = 0;
  const { ms, usage } = await meter.measure(async () => {
    for (let offset = 0, end = Infinity; offset < end;) {
      const res = await fetcher.fetch({ topic: topic.name, partition: 0, offset, maxRecords: MAX_FETCH_RECORDS, maxBytes: MAX_FETCH_BYTES, waitMs: 0 });
      fetches++;
      end = res.highWatermark;
      anomalies += res.gaps.length;
      for (const r of res.records) {
        if (r.offset !== timestamps.length) anomalies++;
        timestamps[r.offset] = r.timestamp;
        payloadBytes += recordSize(r);
        hash.update(`${r.offset}:${r.timestamp}:`).update(r.value ?? new Uint8Array());
      }
      if (res.nextOffset === offset) break;
      offset = res.nextOffset;
    }
  });
  sanity.push({ check: `lifecycle: replay ${label} read every offset once, in order`, ok: anomalies === 0 && timestamps.length > 0, detail: `${timestamps.length} records in ${fetches} fetches, ${anomalies} anomalies` });
  const mib = payloadBytes / MIB;
  const s3Gets = usage.calls['s3.GetObject'] ?? 0;
  return {
    replay: {
      records: timestamps.length, payloadBytes, fetches, ms: round(ms, 1), mibPerSec: round(mib / (ms / 1000), 3), s3Gets, s3GetsPerMiB: round(s3Gets / mib, 2),
      dynamodbReads: dynamodbReads(usage.calls), calls: usage.calls, footprint: await footprint(observer, topic),
    },
    digest: hash.digest('hex'),
    timestamps,
  };
}

/** Kafka's answer, by brute force: the first offset whose timestamp is at or after `ts`. */
function expectedOffset(timestamps: number[], ts: number): ListedOffset {
  const offset = timestamps.findIndex((t) => t >= ts);
  return offset < 0 ? { offset: timestamps.length, timestamp: null } : { offset, timestamp: timestamps[offset]! };
}

/** Each lookup on a fresh fetcher, so a segment's index is read as a new Lambda instance would. */
async function lookups(storage: Storage, meter: Meter, topic: Topic, timestamps: number[]): Promise<Lookup[]> {
  const cases = [
    ...LOOKUP_POSITIONS.map((f) => ({ position: `${f * 100}%`, timestamp: timestamps[Math.floor(f * (timestamps.length - 1))]! })),
    { position: 'after the last', timestamp: Math.max(...timestamps) + 1 },
  ];
  const results: Lookup[] = [];
  for (const c of cases) {
    const fetcher = new Fetcher(storage, new Sequencer(storage));
    const { value, ms, usage } = await meter.measure(() => fetcher.listOffset(topic.name, 0, c.timestamp));
    results.push({ ...c, expected: expectedOffset(timestamps, c.timestamp), found: value, ms: round(ms, 1), dynamodbReads: dynamodbReads(usage.calls), s3Gets: usage.calls['s3.GetObject'] ?? 0, awsCalls: awsCalls(usage.calls) });
  }
  return results;
}

/** Maintenance passes over partition 0, as the stream-triggered function runs them, until one rolls nothing. */
export async function compact(maintenance: Maintenance, meter: Meter, topic: Topic, payloadBytes: number, prices: PriceTable): Promise<Compaction> {
  const reports: PartitionReport[] = [];
  const { ms, usage } = await meter.measure(async () => {
    for (;;) {
      const report = await maintenance.maintainPartition(topic, 0);
      reports.push(report);
      if (report.skipped) throw new Error(`maintenance of ${topic.name}/0 was skipped: ${report.skipped}`);
      if (report.rolled === 0) return;
    }
  });
  const derived = unitsFromCalls(usage);
  const requestUsage = maintenanceUsage(usage, reports.length, ms);
  return {
    passes: reports.length,
    segments: reports.reduce((n, r) => n + r.rolled, 0),
    entriesDropped: reports.reduce((n, r) => n + r.dropped, 0),
    payloadBytes,
    ms: round(ms, 1),
    mibPerSec: round(payloadBytes / MIB / (ms / 1000), 3),
    calls: usage.calls,
    transactWriteItems: usage.transactWriteItems,
    derivedWriteUnits: derived.writeUnits,
    reportedWriteUnits: round(usage.writeUnits + usage.failedConditionalWrites, 1),
    derivedReadUnits: derived.readUnits,
    reportedReadUnits: round(usage.readUnits, 1),
    usage: requestUsage,
    cost: costPerRequest(requestUsage, prices),
    perGiB: costPerGiB(requestUsage, payloadBytes, prices),
  };
}

/**
 * The hourly sweep on a stack of its own holding nothing but `IDLE_TOPICS` × `IDLE_PARTITIONS`
 * partitions of one record each, after a first sweep compacted them: what every further hour costs.
 */
async function idleSweeps(ctx: LifecycleContext, sanity: Sanity[]): Promise<IdleSweeps> {
  const storage = await provisionedStorage(ctx.storage.config);
  try {
    const meter = new Meter(storage.calls, AwsMeter.install(storage));
    const { producer, sequencer } = createServices(storage);
    const value = randomBytes(VALUE_BYTES);
    for (let t = 0; t < IDLE_TOPICS; t++) {
      const { name } = await createTopic(storage, { name: `bench-idle-${t}`, partitions: IDLE_PARTITIONS });
      await producer.produce(name, Array.from({ length: IDLE_PARTITIONS }, (_, partition) => ({ partition, key: null, value, headers: [] })), 'all');
    }
    // The first sweep an hour after the writes rolls their segments; the ones after find nothing to do.
    const maintenance = new Maintenance(storage, sequencer, { concurrency: SWEEP_CONCURRENCY, compactor: { now: () => Date.now() + SWEEP_INTERVAL_MS } });
    const rolled = (await maintenance.sweep()).reduce((n, r) => n + r.rolled, 0);
    const { value: reports, ms, usage } = await meter.measure(async () => {
      const sweeps: PartitionReport[][] = [];
      for (let i = 0; i < IDLE_SWEEPS; i++) sweeps.push(await maintenance.sweep());
      return sweeps;
    });
    const partitions = IDLE_TOPICS * IDLE_PARTITIONS;
    // A sweep reports the partitions it maintained; on an idle stack none may change or be skipped.
    const changed = reports.flat().filter((r) => r.skipped || Object.entries(r).some(([field, n]) => field !== 'partition' && typeof n === 'number' && n > 0));
    sanity.push({ check: 'lifecycle: idle sweeps changed nothing', ok: changed.length === 0 && rolled === partitions, detail: `${partitions} partitions; the first sweep rolled ${rolled} segments; the measured ones maintained ${reports.map((r) => r.length).join(', ')} partitions, ${changed.length} changed or skipped` });
    // The measured sweeps as one run, IDLE_SWEEPS times fewer such runs a month.
    const measured = maintenanceUsage(usage, IDLE_SWEEPS, ms);
    const { perMonth, perPartitionMonth } = monthlyCost(measured, SWEEPS_PER_MONTH / IDLE_SWEEPS, partitions, ctx.prices);
    return {
      topics: IDLE_TOPICS, partitions, sweeps: IDLE_SWEEPS, meanMs: round(ms / IDLE_SWEEPS, 1),
      callsPerSweep: Object.fromEntries(Object.entries(usage.calls).map(([op, n]) => [op, round(n / IDLE_SWEEPS, 2)])),
      writeUnitsPerSweep: round(measured.writeUnits / IDLE_SWEEPS, 1), readUnitsPerSweep: round(measured.readUnits / IDLE_SWEEPS, 1), perMonth, perPartitionMonth,
    };
  } finally {
    closeStorage(storage);
  }
}

export async function benchLifecycle(ctx: LifecycleContext): Promise<{ markdown: string; json: Record<string, unknown>; targets: Target[] }> {
  const { storage, prices } = ctx;
  const meter = new Meter(storage.calls, AwsMeter.install(storage));
  // Footprints and checks go through their own clients, outside the meter.
  const observer = createStorage(storage.config);
  const sanity: Sanity[] = [];
  try {
    const { producer, sequencer } = createServices(storage);
    const topic = await createTopic(storage, { name: `bench-lifecycle-${randomBytes(3).toString('hex')}`, partitions: 1 });

    ctx.progress(`lifecycle: ${ctx.requests} one-record requests of ${VALUE_BYTES} B, acks=1, ${PRODUCE_CONCURRENCY} at a time`);
    const value = randomBytes(VALUE_BYTES);
    const produced = await meter.measure(() => mapLimit(Array.from({ length: ctx.requests }), PRODUCE_CONCURRENCY, () => producer.produce(topic.name, [{ key: null, value, headers: [] }], '1')));

    ctx.progress('lifecycle: replay before compaction');
    const before = await replay(storage, meter, observer, topic, sanity, 'before compaction');
    sanity.push({ check: 'lifecycle: every produced record was read back', ok: before.replay.records === ctx.requests, detail: `${before.replay.records} of ${ctx.requests}` });
    ctx.progress('lifecycle: timestamp lookups before compaction');
    const lookupsBefore = await lookups(storage, meter, topic, before.timestamps);

    ctx.progress('lifecycle: compaction');
    // Everything is due once the compactor's clock is one segment.ms past the writes.
    const maintenance = new Maintenance(storage, sequencer, { compactor: { now: () => Date.now() + topic.config['segment.ms'] } });
    const compaction = await compact(maintenance, meter, topic, before.replay.payloadBytes, prices);

    ctx.progress('lifecycle: replay after compaction');
    const after = await replay(storage, meter, observer, topic, sanity, 'after compaction');
    sanity.push({ check: 'lifecycle: the replay after compaction returned the same records (offsets, timestamps, values)', ok: after.digest === before.digest, detail: `sha-256 ${after.digest.slice(0, 12)}… vs ${before.digest.slice(0, 12)}…` });
    ctx.progress('lifecycle: timestamp lookups after compaction');
    const lookupsAfter = await lookups(storage, meter, topic, before.timestamps);
    for (const [label, list] of [['before', lookupsBefore], ['after', lookupsAfter]] as const) {
      const wrong = list.filter((l) => l.found.offset !== l.expected.offset || l.found.timestamp !== l.expected.timestamp);
      sanity.push({ check: `lifecycle: timestamp lookups ${label} compaction found the first offset at or after each timestamp`, ok: wrong.length === 0, detail: `${wrong.length} of ${list.length} wrong${wrong.map((l) => `; ${l.position}: ${l.found.offset} instead of ${l.expected.offset}`).join('')}` });
    }

    ctx.progress(`lifecycle: idle sweeps, ${IDLE_TOPICS} topics × ${IDLE_PARTITIONS} partitions`);
    const idle = await idleSweeps(ctx, sanity);

    const segments = Math.max(1, after.replay.footprint.segmentItems);
    // Bounded, not linear: no lookup on the compacted log takes more calls than one at its start.
    const lookupGrowth = (list: Lookup[]) => ratio(Math.max(...list.map((l) => l.awsCalls)), list[0]!.awsCalls);
    const targets: Target[] = [
      target('S3 GETs per MiB replayed after compaction ≤ 2', after.replay.s3GetsPerMiB, 'max', 2, ''),
      target(`replay MiB/s after compaction ≥ 20× before (${ctx.requests} one-record batches)`, ratio(after.replay.mibPerSec, before.replay.mibPerSec), 'min', 20, '×'),
      target('DynamoDB items per segment after compaction (index entries + segment items) = 1', (after.replay.footprint.entryItems + after.replay.footprint.segmentItems) / segments, 'max', 1, ''),
      target('S3 objects per segment after compaction (intake + segment objects) = 1', (after.replay.footprint.intakeObjects + after.replay.footprint.segmentObjects) / segments, 'max', 1, ''),
      target(`timestamp lookups after compaction: most AWS calls at any position ÷ calls at the log start ≤ 1 (before: ${lookupGrowth(lookupsBefore)}×)`, lookupGrowth(lookupsAfter), 'max', 1, '×'),
    ];

    const json = { requests: ctx.requests, valueBytes: VALUE_BYTES, produceConcurrency: PRODUCE_CONCURRENCY, produceMs: round(produced.ms, 1), before: before.replay, after: after.replay, compaction, lookupsBefore, lookupsAfter, idle, sanity };
    return { markdown: render(ctx, produced.ms, before.replay, after.replay, compaction, lookupsBefore, lookupsAfter, idle, sanity), json, targets };
  } finally {
    closeStorage(observer);
  }
}

function render(ctx: LifecycleContext, produceMs: number, before: Replay, after: Replay, c: Compaction, lookupsBefore: Lookup[], lookupsAfter: Lookup[], idle: IdleSweeps, sanity: Sanity[]): string {
  const { prices } = ctx;
  const parts = (x: CostBreakdown) => `S3 ${usd(x.s3Requests)}, DDB writes ${usd(x.dynamodbWrites)}, DDB reads ${usd(x.dynamodbReads)}, Lambda ${usd(x.lambdaRequests + x.lambdaDuration)}`;
  const footprint = (f: Footprint) => [`${f.entryItems} + ${f.segmentItems}`, `${f.intakeObjects} + ${f.segmentObjects}`];
  const replayRow = (name: string, r: Replay) => [name, r.records, round(r.payloadBytes / MIB, 3), r.fetches, r.s3Gets, r.s3GetsPerMiB, r.dynamodbReads, r.ms, r.mibPerSec, ...footprint(r.footprint)];
  const lookupRows = lookupsBefore.map((b, i) => {
    const a = lookupsAfter[i]!;
    return [b.position, b.expected.offset, `${b.found.offset}`, `${b.awsCalls} (${b.dynamodbReads} / ${b.s3Gets})`, b.ms, `${a.found.offset}`, `${a.awsCalls} (${a.dynamodbReads} / ${a.s3Gets})`, a.ms];
  });
  return [
    '### Lifecycle: compaction, replay, timestamp lookups, idle maintenance',
    '',
    `One partition written by ${ctx.requests} one-record requests of ${VALUE_BYTES} B values (domain Producer, acks=1, ${PRODUCE_CONCURRENCY} at a time: ${round(produceMs / 1000, 1)} s), so one intake object and one index entry per record (the partition's head and state items are not counted below). Replay = fetches from offset 0 to the high watermark of up to ${MAX_FETCH_RECORDS} records / ${MAX_FETCH_BYTES / MIB} MiB (the HTTP API's largest) on a fresh fetcher; MiB = record payload (keys, values, headers) returned.`,
    '',
    markdownTable(['replay', 'records', 'payload MiB', 'fetches', 'S3 GETs', 'GETs per MiB (≤ 2 after)', 'DynamoDB reads', 'ms', 'MiB/s (after ≥ 20× before)', 'index entries + segment items', 'intake + segment objects'], [
      replayRow('before compaction', before),
      replayRow('after compaction', after),
      ['after ÷ before', '', '', ratio(after.fetches, before.fetches), ratio(after.s3Gets, before.s3Gets), ratio(after.s3GetsPerMiB, before.s3GetsPerMiB), ratio(after.dynamodbReads, before.dynamodbReads), ratio(after.ms, before.ms), ratio(after.mibPerSec, before.mibPerSec), '', ''],
    ]),
    '',
    `Compaction: \`maintainPartition\` passes (each one maintenance invocation) with the compactor's clock one segment.ms ahead, so everything is due, until a pass rolls nothing. Write units derived = 1 per PutItem/UpdateItem/DeleteItem attempt + 2 per TransactWriteItems item (the lease fence included); read units derived = 1 per GetItem/Query; the cost uses the larger of derived and reported. S3 DeleteObjects is free; Lambda at ${MAINTENANCE_MEMORY_MB} MB arm64 for the measured time (local emulators, not AWS).`,
    '',
    markdownTable(['passes', 'segments rolled', 'entries dropped', 'ms', 'MiB/s compacted', 'AWS calls', 'transaction items', 'WRU derived / reported', 'RRU derived / reported', '$ total', '$ per GiB compacted', '$ per GiB: breakdown'], [[
      c.passes, c.segments, c.entriesDropped, c.ms, c.mibPerSec, callList(c.calls), c.transactWriteItems, `${c.derivedWriteUnits} / ${c.reportedWriteUnits}`, `${c.derivedReadUnits} / ${c.reportedReadUnits}`,
      usd(c.cost.total), usd(c.perGiB.total), parts(c.perGiB),
    ]]),
    '',
    `Timestamp lookups (\`listOffset(topic, 0, timestamp)\`), each on a fresh fetcher: the timestamp of the record at that fraction of the log, or one past the largest. Calls = all AWS calls (DynamoDB reads / S3 GETs). Compacted, a lookup reads the segment items, one segment's time index and the frames it points to: bounded; before, it walks the index entries from the start: linear.`,
    '',
    markdownTable(['timestamp of the record at', 'expected offset', 'before: offset', 'before: calls (DDB / S3)', 'before: ms', 'after: offset', 'after: calls (DDB / S3)', 'after: ms'], lookupRows),
    '',
    `Idle maintenance: the hourly sweep (${SWEEPS_PER_MONTH} a month) on a stack of its own with ${idle.topics} topics × ${idle.partitions / idle.topics} partitions of one record each, after a first sweep compacted them; ${idle.sweeps} sweeps measured, ${SWEEP_CONCURRENCY} partitions at a time as deployed. Priced as one Lambda request + the sweep's mean duration at ${MAINTENANCE_MEMORY_MB} MB + its DynamoDB units (larger of derived and reported) and S3 requests. Not included: DynamoDB Streams reads by the Lambda trigger (free), CloudWatch Logs of the sweep's one log line.`,
    '',
    markdownTable(['partitions', 'sweep ms (mean)', 'calls per sweep', 'WRU / RRU per sweep', '$ per month', '$ per partition-month', '$ per month: breakdown'], [[
      idle.partitions, idle.meanMs, callList(idle.callsPerSweep), `${idle.writeUnitsPerSweep} / ${idle.readUnitsPerSweep}`, usd(idle.perMonth.total), usd(idle.perPartitionMonth), parts(idle.perMonth),
    ]]),
    '',
    `Prices as of ${prices.asOf} (${prices.region}).`,
    '',
    renderSanity(sanity, '#### Lifecycle sanity checks'),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const stack = await startLocalStack();
  const storage = await provisionedStorage(stack);
  try {
    const scale = Number(process.env.BENCH_SCALE ?? 1);
    const result = await benchLifecycle({ storage, prices: loadPrices(), progress: (line) => console.error(`[bench] ${line}`), requests: lifecycleRequests(scale > 0 ? scale : 1) });
    console.log(`${renderTargets(result.targets)}\n\n${result.markdown}`);
  } finally {
    closeStorage(storage);
    await stack.stop();
  }
}
