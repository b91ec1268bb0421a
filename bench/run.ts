// `npm run bench`: starts the local stack (DynamoDB Local + s3rver), runs every benchmark section,
// prints a markdown report and writes bench/results/latest.{json,md}. A benchmark, not a test: the
// exit code is 0 unless something crashed, whichever targets are met.
//   BENCH_SCALE=0.2 npm run bench   fewer operations per size, for a quick look
//   npm run bench -- --only producers   runs that section alone and merges it into the last report
//   npm run bench -- --only client      (likewise: client, small-writes, waiting)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, arch } from 'node:os';
import { parseArgs } from 'node:util';
import { createStorage, type Storage } from '../lib/storage.ts';
import { createServices } from '../lambdas/http/services.ts';
import { benchBundles } from './bundles.ts';
import { benchClient } from './client.ts';
import { benchGroups } from './groups.ts';
import { benchLifecycle, lifecycleRequests } from './lifecycle.ts';
import { benchProducers } from './producers.ts';
import { benchSmallWrites } from './small-writes.ts';
import { benchWaiting } from './waiting.ts';
import { startLocalStack, type LocalStack } from '../local/stack.ts';
import {
  kinesisOnDemandPerGiB, kinesisStreamMonthly, mskServerlessPerGiB, storagePerGiBMonth,
  type CostBreakdown, type PriceTable,
} from './cost-model.ts';
import {
  AwsMeter, benchContention, benchHttp, benchSize, benchThroughput, callList, DEFAULT_SIZES, inOutCost, LAMBDA_MEMORY_MB, markdownTable, Meter, ratio, renderSanity, renderTargets, round, target, usd,
  type ContentionResult, type SizeCost, type HttpResult, type Sanity, type SeriesResult, type SizeResult, type SizeSpec, type Target, type ThroughputResult,
} from './log.ts';
import { closeStorage, loadPrices, provisionedStorage, warmUp } from './setup.ts';

const CONTENDING_WRITERS = 32;
const THROUGHPUT_WORKERS = 4;

type SectionResult = { markdown: string; json: Record<string, unknown> };

const progress = (line: string) => console.error(`[bench] ${line}`);

function scaled(sizes: SizeSpec[]): SizeSpec[] {
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  if (!(scale > 0) || scale === 1) return sizes;
  return sizes.map((s) => ({ ...s, ops: Math.max(3, Math.round(s.ops * scale)), warmup: Math.max(1, Math.round(s.warmup * scale)) }));
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Targets

function evaluateTargets(sizes: SizeResult[], throughput: ThroughputResult, costs: SizeCost[], contention: ContentionResult[]): Target[] {
  const targets: Target[] = [];
  for (const s of sizes) {
    for (const series of [s.produceAcksAll, s.produceAcks1]) {
      targets.push(target(`${series.name} p50 ≤ 1.3× floor, ${s.label}`, ratio(series.p50Ms, s.floorProduce.p50Ms), 'max', 1.3, '×'));
    }
  }
  const mib = sizes.find((s) => s.bytes === 2 ** 20);
  if (mib) {
    for (const series of [mib.produceAcksAll, mib.produceAcks1]) {
      targets.push(target(`${series.name} MiB/s ≥ 0.8× bare S3 PUT MiB/s, 1 MiB, sequential`, ratio(series.mibPerSec, mib.floorPut.mibPerSec), 'min', 0.8, '×'));
    }
  }
  for (const [name, mibps] of [['produce acks=all', throughput.produceAcksAllMiBps], ['produce acks=1', throughput.produceAcks1MiBps]] as const) {
    targets.push(target(`${name} MiB/s ≥ 0.8× bare S3 PUT MiB/s, ${throughput.label}, ${throughput.concurrency} concurrent workers`, ratio(mibps, throughput.bareS3PutMiBps), 'min', 0.8, '×'));
  }
  const mibCost = costs.find((c) => c.bytes === 2 ** 20);
  if (mibCost) targets.push(target('$ per GiB in+out ≤ $0.01, 1 MiB requests', mibCost.inPlusOutPerGiB, 'max', 0.01, ' $', 5));
  const maxPuts = Math.max(...sizes.flatMap((s) => [s.produceAcksAll, s.produceAcks1].map((x) => x.maxCallsPerOp['s3.PutObject'] ?? 0)));
  const minPuts = Math.min(...sizes.flatMap((s) => [s.produceAcksAll, s.produceAcks1].map((x) => x.callsPerOp['s3.PutObject'] ?? 0)));
  targets.push(target('S3 PUTs per produce request = 1 (most any request made, all sizes)', maxPuts, 'max', 1, '', 0));
  targets.push(target('S3 PUTs per produce request = 1 (fewest on average, all sizes)', minPuts, 'min', 1, '', 3));
  for (const c of contention) {
    targets.push(target(`DynamoDB write attempts per committed batch ≤ 2.5, ${c.writers} writers, acks=${c.acks}`, c.dynamoWriteAttemptsPerOp, 'max', 2.5, ''));
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Report

function renderLog(sizes: SizeResult[]): string {
  const rows: Array<Array<string | number>> = [];
  for (const s of sizes) {
    const row = (x: SeriesResult, p50Ratio: number | string, mibRatio: number | string) =>
      rows.push([x.name, s.label, x.count, x.p50Ms, x.p99Ms, x.mibPerSec, p50Ratio, mibRatio, x.awsCallsPerOp]);
    row(s.floorProduce, '', '');
    row(s.floorPut, '', '');
    for (const x of [s.produceAcksAll, s.produceAcks1]) row(x, ratio(x.p50Ms, s.floorProduce.p50Ms), ratio(x.mibPerSec, s.floorPut.mibPerSec));
    row(s.floorFetch, '', '');
    row(s.floorGet, '', '');
    row(s.fetch, ratio(s.fetch.p50Ms, s.floorFetch.p50Ms), ratio(s.fetch.mibPerSec, s.floorGet.mibPerSec));
  }
  const latency = markdownTable(['path', 'size', 'ops', 'p50 ms', 'p99 ms', 'MiB/s', 'p50 ÷ floor', 'MiB/s ÷ bare S3', 'AWS calls/op'], rows);
  const usageRows = sizes.flatMap((s) => [s.floorProduce, s.produceAcksAll, s.produceAcks1, s.floorFetch, s.fetch].map((x) => [
    x.name, s.label, callList(x.callsPerOp), x.awsCallsPerOp, `${x.derivedWriteUnitsPerOp} / ${x.reportedWriteUnitsPerOp}`, `${x.derivedReadUnitsPerOp} / ${x.reportedReadUnitsPerOp}`,
    `${x.meanMs} = ${x.s3MsPerOp} + ${x.dynamodbMsPerOp} + ${round(x.meanMs - x.s3MsPerOp - x.dynamodbMsPerOp)}`,
  ]));
  const usage = markdownTable(['path', 'size', 'AWS calls per request (SDK attempts)', 'total', 'WCU derived / reported', 'RCU derived / reported', 'mean ms = S3 + DynamoDB + rest'], usageRows);
  return [
    '### Produce and fetch (domain objects, sequential, one partition)',
    '',
    `Requests are batches of 1 KiB records (${sizes.map((s) => `${s.label}: ${s.recordsPerRequest}`).join(', ')} records). Floors run in the same loop, interleaved: produce floor = S3 PutObject of the same segment bytes + one DynamoDB PutItem; fetch floor = ranged S3 GetObject of the same batch + one strongly consistent GetItem. "p50 ÷ floor" compares with the full floor; "MiB/s ÷ bare S3" with the S3 step alone. MiB/s = payload ÷ summed latency of the sequential loop.`,
    '',
    latency,
    '',
    '### AWS calls and capacity per request',
    '',
    'Calls are SDK attempts counted by the client middleware. WCU/RCU "derived" assume every item written is under 1 KB and every read returns under 4 KB (one unit per call, half for an eventually consistent GetItem or Query, failed conditional writes included); "reported" is what DynamoDB Local returned via ReturnConsumedCapacity, plus one WCU per failed conditional write. The cost model uses the larger. The last column splits the mean latency into wall time inside S3 calls, inside DynamoDB calls, and the rest (encoding/decoding, CRCs, our code, event-loop waits).',
    '',
    usage,
  ].join('\n');
}

function renderThroughput(t: ThroughputResult): string {
  const rows = [['bare S3 PUT', t.bareS3PutMiBps, ''], ['floor: S3 PUT + DynamoDB PutItem', t.floorMiBps, ratio(t.floorMiBps, t.bareS3PutMiBps)], ['produce acks=all', t.produceAcksAllMiBps, ratio(t.produceAcksAllMiBps, t.bareS3PutMiBps)], ['produce acks=1', t.produceAcks1MiBps, ratio(t.produceAcks1MiBps, t.bareS3PutMiBps)]];
  return [
    `### Aggregate throughput, ${t.label} requests, ${t.concurrency} concurrent workers`,
    '',
    `Each worker sends its requests back to back (produce: one partition per worker); variants alternate round by round; ${t.requestsPerVariant} measured requests per variant. MiB/s = payload ÷ wall time.`,
    '',
    markdownTable(['path', 'MiB/s', '÷ bare S3 PUT'], rows),
  ].join('\n');
}

function renderHttp(h: HttpResult): string {
  const rows = [[h.produceDomain, h.produceHttp], [h.fetchDomain, h.fetchHttp]].map(([d, x]) => [x!.name.replace(', HTTP', ''), h.label, d!.p50Ms, x!.p50Ms, round(x!.p50Ms - d!.p50Ms), ratio(x!.p50Ms, d!.p50Ms), d!.p99Ms, x!.p99Ms]);
  return [
    '### HTTP adapter overhead',
    '',
    `Transport: ${h.transport}; ${h.produceHttp.count} requests each, interleaved with the same calls on the domain objects.`,
    '',
    markdownTable(['path', 'size', 'domain p50 ms', 'HTTP p50 ms', 'overhead ms', 'HTTP ÷ domain', 'domain p99 ms', 'HTTP p99 ms'], rows),
  ].join('\n');
}

function renderContention(results: ContentionResult[]): string {
  const rows = results.map((c) => [`acks=${c.acks}`, c.writers, c.rounds, c.committedBatches, c.dynamoWriteAttemptsPerOp, c.updateItemPerBatch, c.putItemPerBatch, c.failedConditionalWritesPerBatch, c.dynamoReadsPerBatch, c.reportedWriteUnitsPerOp, c.latency.p50Ms, c.latency.p99Ms]);
  return [
    `### ${CONTENDING_WRITERS} concurrent writers on one partition`,
    '',
    'Each round fires all writers at once (one 100-byte record each) and waits for all; one warm-up round is excluded. Write attempts = UpdateItem + PutItem + DeleteItem SDK attempts (failed conditional writes and retries included).',
    '',
    markdownTable(['acks', 'writers', 'rounds', 'batches', 'DDB write attempts / batch', 'UpdateItem', 'PutItem', 'failed cond. writes', 'DDB reads / batch', 'WCU / batch (reported)', 'p50 ms', 'p99 ms'], rows),
  ].join('\n');
}

function renderCost(costs: SizeCost[], prices: PriceTable): string {
  const k = kinesisOnDemandPerGiB(prices);
  const m = mskServerlessPerGiB(prices);
  const parts = (c: CostBreakdown) => `S3 ${usd(c.s3Requests)}, DDB ${usd(c.dynamodbWrites + c.dynamodbReads)}, Lambda ${usd(c.lambdaRequests + c.lambdaDuration)}`;
  const rows = costs.map((c) => [c.label, usd(c.inPerGiB.total), usd(c.outPerGiB.total), usd(c.inPlusOutPerGiB), parts(c.inPerGiB), parts(c.outPerGiB), `${usd(k.inPerGiB)} / ${usd(k.outPerGiB)} / ${usd(k.inPlusOutPerGiB)}`, `${usd(m.inPerGiB)} / ${usd(m.outPerGiB)} / ${usd(m.inPlusOutPerGiB)}`]);
  return [
    `### Cost per GiB (prices as of ${prices.asOf}, ${prices.region})`,
    '',
    `In = one produce request (acks=all) per request-size of payload; out = one fetch of one such batch. Per request: counted S3 PUTs/GETs, DynamoDB units (larger of derived and reported), one Lambda invocation of ${LAMBDA_MEMORY_MB} MB arm64 lasting the measured domain p50 (rounded up to 1 ms; local-emulator latency, not AWS). Kinesis and MSK columns are in / out / in+out.`,
    '',
    markdownTable(['request size', 'in $/GiB', 'out $/GiB', 'in+out $/GiB', 'in: breakdown', 'out: breakdown', 'Kinesis on-demand', 'MSK Serverless'], rows),
    '',
    `Not in the per-GiB figures: S3 storage ${usd(storagePerGiBMonth(prices))} per GiB-month of retention; Kinesis on-demand ${usd(kinesisStreamMonthly(prices))} per stream-month (${usd(prices.kinesisOnDemand.streamHour)}/stream-hour); MSK Serverless cluster- and partition-hour fees (not in the price table); data transfer out of AWS.`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
/** Runs one section; a crash is reported in the results instead of ending the whole run. */
async function section<T extends SectionResult>(name: string, run: () => Promise<T>): Promise<T | { error: string }> {
  try {
    progress(`running ${name}`);
    return await run();
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(`[bench] ${name} crashed: ${error}`);
    return { error };
  }
}

/** A section's own clients on the shared stack, so its meters and call counts start from nothing. */
function ownContext(storage: Storage) {
  const own = createStorage(storage.config);
  return { storage: own, services: createServices(own), meter: new Meter(own.calls, AwsMeter.install(own)) };
}

/**
 * Sections that can run alone (`--only <name>`). In latest.md their markdown sits between two
 * comment lines, so a lone run replaces exactly it and keeps every other figure of the last run.
 */
const STANDALONE = {
  producers: {
    title: 'Idempotent producers and transactions',
    run: (storage: Storage, prices: PriceTable) => benchProducers({ ...ownContext(storage), prices, progress, scale: SCALE }),
  },
  'small-writes': {
    title: 'Small writes',
    run: (storage: Storage, prices: PriceTable) => benchSmallWrites({ ...ownContext(storage), prices, progress, scale: SCALE }),
  },
  client: {
    title: 'Client',
    // 100,000 sends of 1 KiB (the issue's figure) at full scale.
    run: (storage: Storage, prices: PriceTable) => benchClient({ storage: createStorage(storage.config), prices, records: Math.max(1000, Math.round(100_000 * SCALE)) }),
  },
  waiting: {
    title: 'Waiting consumers and fetch by bytes',
    run: (storage: Storage, prices: PriceTable) => benchWaiting({ ...ownContext(storage), prices, progress, scale: SCALE }),
  },
};
type StandaloneName = keyof typeof STANDALONE;

const SCALE = Number(process.env.BENCH_SCALE ?? 1) > 0 ? Number(process.env.BENCH_SCALE ?? 1) : 1;
const OUT_DIR = new URL('./results/', import.meta.url);
const sectionStart = (name: string) => `<!-- section ${name} -->`;
const sectionEnd = (name: string) => `<!-- /section ${name} -->`;

const rendered = (title: string, s: SectionResult | { error: string } | undefined) => (s === undefined ? [] : 'error' in s ? [`### ${title}`, '', `Section crashed: ${s.error.split('\n')[0]}`] : [s.markdown]);
const delimited = (name: StandaloneName, s: SectionResult | { error: string }) => [sectionStart(name), ...rendered(STANDALONE[name].title, s), sectionEnd(name)].join('\n\n');

/** Starts the local stack and provisioned storage, runs `fn`, always stops them. Returns the exit code. */
async function onLocalStack(fn: (storage: Storage) => Promise<boolean>): Promise<number> {
  let stack: LocalStack | undefined;
  let storage: Storage | undefined;
  let crashed = false;
  try {
    progress('starting DynamoDB Local and s3rver');
    stack = await startLocalStack();
    storage = await provisionedStorage(stack);
    progress('warming up the emulators');
    await warmUp(storage);
    crashed = await fn(storage);
  } catch (err) {
    crashed = true;
    console.error(`[bench] crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    closeStorage(storage);
    await stack?.stop().catch((err: unknown) => console.error(`[bench] stopping the local stack failed: ${String(err)}`));
  }
  return crashed ? 1 : 0;
}

function writeResults(json: Record<string, unknown>, markdown: string): void {
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(new URL('latest.json', OUT_DIR), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(new URL('latest.md', OUT_DIR), markdown);
  progress('wrote bench/results/latest.json and bench/results/latest.md');
}

/** Runs one standalone section and merges it into the last report, keeping every other figure. */
async function refreshSection(name: StandaloneName): Promise<number> {
  const [jsonUrl, mdUrl] = [new URL('latest.json', OUT_DIR), new URL('latest.md', OUT_DIR)];
  if (!existsSync(jsonUrl) || !existsSync(mdUrl)) {
    console.error('[bench] --only merges into bench/results/latest.{json,md}: run the full benchmark first');
    return 1;
  }
  const prices = loadPrices();
  return onLocalStack(async (storage) => {
    const result = await section(STANDALONE[name].title, () => STANDALONE[name].run(storage, prices));
    const refreshedAt = new Date().toISOString();
    const json = JSON.parse(readFileSync(jsonUrl, 'utf8')) as Record<string, unknown>;
    json[name] = result;
    json.refreshed = { ...(json.refreshed as Record<string, unknown> | undefined), [name]: { at: refreshedAt, commit: gitCommit(), scale: SCALE } };
    const note = `_Section refreshed alone at ${refreshedAt}${gitCommit() ? ` (commit ${gitCommit()})` : ''} with \`npm run bench -- --only ${name}\`${SCALE !== 1 ? ` (BENCH_SCALE=${SCALE})` : ''}; every other section is from the full run in the header._`;
    const block = delimited(name, result).replace(`${sectionStart(name)}\n\n`, `${sectionStart(name)}\n\n${note}\n\n`);
    const markdown = readFileSync(mdUrl, 'utf8');
    const [from, to] = [markdown.indexOf(sectionStart(name)), markdown.indexOf(sectionEnd(name))];
    const merged = from >= 0 && to > from
      ? markdown.slice(0, from) + block + markdown.slice(to + sectionEnd(name).length)
      : `${markdown.trimEnd()}\n\n${block}\n`;
    writeResults(json, merged);
    console.log(block);
    return 'error' in result;
  });
}

async function runAll(): Promise<number> {
  const prices = loadPrices();
  const started = new Date();
  return onLocalStack(async (storage) => {
    const meter = new Meter(storage.calls, AwsMeter.install(storage));
    const services = createServices(storage);
    const ctx = { storage, services, meter, progress };
    const sanity: Sanity[] = [];

    const sizes: SizeResult[] = [];
    for (const spec of scaled(DEFAULT_SIZES)) sizes.push(await benchSize(ctx, spec, sanity));
    const throughput = await benchThroughput(ctx, { bytes: 2 ** 20, concurrency: THROUGHPUT_WORKERS, opsPerWorker: 4, rounds: Math.max(1, Math.round(5 * SCALE)), warmupRounds: 1 }, sanity);
    const [httpSpec] = scaled([{ bytes: 64 * 1024, ops: 50, warmup: 5 }]);
    const http = await benchHttp(ctx, httpSpec!, sanity);
    const rounds = Math.max(2, Math.round(8 * SCALE));
    const contention: ContentionResult[] = [];
    for (const acks of ['all', '1'] as const) contention.push(await benchContention(ctx, { writers: CONTENDING_WRITERS, rounds, warmupRounds: 1, acks }, sanity));

    // Own clients, so the groups section's meters and call counts start from nothing.
    const groupStorage = createStorage(storage.config);
    const groups = await section('consumer groups', () => benchGroups({ storage: groupStorage, calls: groupStorage.calls }));
    const lifecycleStorage = createStorage(storage.config);
    const lifecycle = await section('lifecycle', () => benchLifecycle({ storage: lifecycleStorage, prices, progress, requests: lifecycleRequests(SCALE) }));
    const bundles = await section('bundles', () => benchBundles());
    const producers = await section(STANDALONE.producers.title, () => STANDALONE.producers.run(storage, prices));
    const client = await section(STANDALONE.client.title, () => STANDALONE.client.run(storage, prices));
    const smallWrites = await section(STANDALONE['small-writes'].title, () => STANDALONE['small-writes'].run(storage, prices));
    const waiting = await section(STANDALONE.waiting.title, () => STANDALONE.waiting.run(storage, prices));

    const costs = sizes.map((s) => inOutCost(s.label, s.bytes, s.produceAcksAll, s.fetch, prices));
    const targets = [...evaluateTargets(sizes, throughput, costs, contention), ...(lifecycle && 'targets' in lifecycle ? lifecycle.targets : []), ...('targets' in client ? client.targets : [])];
    const environment = { node: process.version, platform: `${platform()}-${arch()}`, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', backend: 'local: DynamoDB Local (in-memory) + s3rver on loopback, one machine' };
    const header = [
      `## Benchmark ${started.toISOString()}${gitCommit() ? ` (commit ${gitCommit()})` : ''}`,
      '',
      `${environment.backend}; Node ${environment.node}, ${environment.platform}, ${environment.cpus} CPUs. Absolute numbers describe emulators on one machine, not AWS; ratios to the same run's floor are the meaningful part.`,
    ].join('\n');
    const markdown = [
      header, renderTargets(targets), renderLog(sizes), renderThroughput(throughput), renderHttp(http), renderContention(contention), renderCost(costs, prices), renderSanity(sanity),
      ...rendered('Consumer groups', groups), ...rendered('Lifecycle', lifecycle), ...rendered('Bundles', bundles), delimited('producers', producers), delimited('small-writes', smallWrites), delimited('waiting', waiting), delimited('client', client),
    ].join('\n\n') + '\n';
    const json = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      commit: gitCommit(),
      environment,
      assumptions: {
        lambdaMemoryMb: LAMBDA_MEMORY_MB,
        lambdaDuration: 'measured domain p50 of the request, rounded up to 1 ms',
        capacityUnits: 'max(derived: 1 WCU per write attempt, 1 RCU per read call (0.5 for an eventually consistent GetItem or Query), 2 WCU per TransactWriteItems item; reported: DynamoDB Local ConsumedCapacity + 1 WCU per failed conditional write)',
        gib: 2 ** 30,
      },
      prices,
      targets,
      sizes,
      throughput,
      http,
      contention,
      cost: costs,
      comparators: { kinesisOnDemand: { ...kinesisOnDemandPerGiB(prices), streamMonthly: kinesisStreamMonthly(prices) }, mskServerless: mskServerlessPerGiB(prices), s3StoragePerGiBMonth: storagePerGiBMonth(prices) },
      sanity,
      groups,
      lifecycle,
      bundles,
      producers,
      'small-writes': smallWrites,
      waiting,
      client,
    };
    writeResults(json, markdown);
    console.log(markdown);
    return [groups, lifecycle, bundles, producers, smallWrites, waiting, client].some((s) => s && 'error' in s);
  });
}

const { values: args } = parseArgs({ options: { only: { type: 'string' } } });
if (args.only !== undefined && !(args.only in STANDALONE)) {
  console.error(`[bench] --only takes one of: ${Object.keys(STANDALONE).join(', ')}`);
  process.exit(2);
}
process.exit(await (args.only === undefined ? runAll() : refreshSection(args.only as StandaloneName)));
