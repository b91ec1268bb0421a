// Benchmark sections for the log: produce and fetch at several request sizes against their raw
// floor, the HTTP adapter's overhead, and 32 writers racing on one partition. Also the shared
// measuring helpers (latency histogram, per-operation AWS usage), exported for the other sections.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { serve } from '@hono/node-server';
import * as hdr from 'hdr-histogram-js';
import type { CallCounter } from '../lib/aws/clients.ts';
import type { Acks, ProduceRecord } from '../lib/log/producer.ts';
import type { Storage } from '../lib/storage.ts';
import { createTopic } from '../lib/topics/topic-store.ts';
import { createApp } from '../lambdas/http/app.ts';
import type { Services } from '../lambdas/http/services.ts';
import { costPerGiB, dynamoWriteAttempts, sumOperations, unitsFromCalls, type CostBreakdown, type PriceTable, type RequestUsage } from './cost-model.ts';

// ---------------------------------------------------------------------------------------------
// Measuring helpers

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** Latencies in an HDR histogram at microsecond resolution (3 significant digits). */
export class Latency {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  private sumMs = 0;

  record(ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
    this.sumMs += ms;
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** Sum of the recorded latencies: the busy time of a sequential loop. */
  get totalMs(): number {
    return this.sumMs;
  }

  percentileMs(p: number): number {
    return this.count === 0 ? NaN : this.histogram.getValueAtPercentile(p) / 1000;
  }

  summary(): LatencySummary {
    return { count: this.count, p50Ms: round(this.percentileMs(50)), p99Ms: round(this.percentileMs(99)), meanMs: round(this.count ? this.sumMs / this.count : NaN), maxMs: round(this.histogram.maxValue / 1000) };
  }
}

/** Times one async call; latency in ms from performance.now(). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export interface AwsTotals {
  /** Units DynamoDB reported (ReturnConsumedCapacity: TOTAL) for successful calls. */
  writeUnits: number;
  readUnits: number;
  /** Conditional writes that failed: DynamoDB reports no capacity for them, yet bills one unit. */
  failedConditionalWrites: number;
  /** Items of TransactWriteItems requests, summed over requests: billed per item, not per call. */
  transactWriteItems: number;
  /** Eventually consistent GetItem and Query calls: half the read units of a consistent one. */
  eventualReads: number;
  /** Wall time inside SDK calls (all attempts, signing and parsing included), by service. */
  s3Ms: number;
  dynamodbMs: number;
}

const WRITE_COMMANDS = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);
const EVENTUAL_READ_COMMANDS = new Set(['GetItemCommand', 'QueryCommand']);
const CAPACITY_COMMANDS = new Set([...WRITE_COMMANDS, 'GetItemCommand', 'QueryCommand', 'ScanCommand', 'BatchGetItemCommand', 'TransactGetItemsCommand']);

type ConsumedCapacity = { CapacityUnits?: number; WriteCapacityUnits?: number; ReadCapacityUnits?: number };
type Args = { input: Record<string, unknown> };
type InitializeStack = { add: (mw: (next: (args: Args) => Promise<{ output: Record<string, unknown> }>, context: { commandName?: string }) => (args: Args) => Promise<{ output: Record<string, unknown> }>, opts: { step: 'initialize'; name: string }) => void };

/**
 * Middleware on the benchmark's own clients (the library code is unchanged): times every SDK call
 * and asks DynamoDB for the capacity each data-plane call consumed (ReturnConsumedCapacity).
 */
export class AwsMeter {
  private readonly totals: AwsTotals = { writeUnits: 0, readUnits: 0, failedConditionalWrites: 0, transactWriteItems: 0, eventualReads: 0, s3Ms: 0, dynamodbMs: 0 };

  static install(storage: Storage): AwsMeter {
    const meter = new AwsMeter();
    const t = meter.totals;
    (storage.s3.middlewareStack as unknown as InitializeStack).add((next) => async (args) => {
      const start = performance.now();
      try {
        return await next(args);
      } finally {
        t.s3Ms += performance.now() - start;
      }
    }, { step: 'initialize', name: 'benchTiming' });
    (storage.ddb.middlewareStack as unknown as InitializeStack).add((next, context) => async (args) => {
      const command = context.commandName ?? '';
      const metered = CAPACITY_COMMANDS.has(command);
      const isWrite = WRITE_COMMANDS.has(command);
      if (command === 'TransactWriteItemsCommand') t.transactWriteItems += (args.input.TransactItems as unknown[] | undefined)?.length ?? 0;
      if (EVENTUAL_READ_COMMANDS.has(command) && args.input.ConsistentRead !== true) t.eventualReads++;
      const start = performance.now();
      try {
        const result = await next(metered ? { ...args, input: { ...args.input, ReturnConsumedCapacity: 'TOTAL' } } : args);
        const consumed = result.output.ConsumedCapacity as ConsumedCapacity | ConsumedCapacity[] | undefined;
        for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
          const units = c.CapacityUnits ?? (c.WriteCapacityUnits ?? 0) + (c.ReadCapacityUnits ?? 0);
          if (isWrite) t.writeUnits += units;
          else t.readUnits += units;
        }
        return result;
      } catch (err) {
        if (isWrite && (err as { name?: string }).name === 'ConditionalCheckFailedException') t.failedConditionalWrites++;
        throw err;
      } finally {
        t.dynamodbMs += performance.now() - start;
      }
    }, { step: 'initialize', name: 'benchTimingAndCapacity' });
    return meter;
  }

  snapshot(): AwsTotals {
    return { ...this.totals };
  }
}

/** AWS usage so far: SDK attempts by operation, consumed capacity, time in SDK calls. */
export interface Usage extends AwsTotals {
  calls: Record<string, number>;
}

export class Meter {
  constructor(readonly calls: CallCounter, readonly aws: AwsMeter) {}

  take(): Usage {
    return { calls: this.calls.snapshot(), ...this.aws.snapshot() };
  }

  /** Runs `fn` and reports its wall time and the AWS usage meanwhile (of anything running then). */
  async measure<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; usage: Usage }> {
    const before = this.take();
    const { ms, value } = await timed(fn);
    return { value, ms, usage: Meter.diff(before, this.take()) };
  }

  static diff(before: Usage, after: Usage): Usage {
    const calls: Record<string, number> = {};
    for (const [op, n] of Object.entries(after.calls)) {
      const d = n - (before.calls[op] ?? 0);
      if (d !== 0) calls[op] = d;
    }
    return {
      calls,
      writeUnits: after.writeUnits - before.writeUnits,
      readUnits: after.readUnits - before.readUnits,
      failedConditionalWrites: after.failedConditionalWrites - before.failedConditionalWrites,
      transactWriteItems: after.transactWriteItems - before.transactWriteItems,
      eventualReads: after.eventualReads - before.eventualReads,
      s3Ms: after.s3Ms - before.s3Ms,
      dynamodbMs: after.dynamodbMs - before.dynamodbMs,
    };
  }

  static add(into: Usage, d: Usage): void {
    for (const [op, n] of Object.entries(d.calls)) into.calls[op] = (into.calls[op] ?? 0) + n;
    into.writeUnits += d.writeUnits;
    into.readUnits += d.readUnits;
    into.failedConditionalWrites += d.failedConditionalWrites;
    into.transactWriteItems += d.transactWriteItems;
    into.eventualReads += d.eventualReads;
    into.s3Ms += d.s3Ms;
    into.dynamodbMs += d.dynamodbMs;
  }

  static empty(): Usage {
    return { calls: {}, writeUnits: 0, readUnits: 0, failedConditionalWrites: 0, transactWriteItems: 0, eventualReads: 0, s3Ms: 0, dynamodbMs: 0 };
  }
}

export interface PerOpUsage {
  callsPerOp: Record<string, number>;
  /** The most of each operation any single request made. */
  maxCallsPerOp: Record<string, number>;
  awsCallsPerOp: number;
  dynamoWriteAttemptsPerOp: number;
  /** Items of TransactWriteItems requests (each billed twice per KB), summed over attempts. */
  transactWriteItemsPerOp: number;
  /** Capacity from call counts under the 1 KB write / 4 KB read assumption (cost-model.ts). */
  derivedWriteUnitsPerOp: number;
  derivedReadUnitsPerOp: number;
  /** Capacity reported by the emulator, plus one write unit per failed conditional write. */
  reportedWriteUnitsPerOp: number;
  reportedReadUnitsPerOp: number;
  /** Mean wall time per request inside S3 and DynamoDB SDK calls (they may overlap when parallel). */
  s3MsPerOp: number;
  dynamodbMsPerOp: number;
}

export function perOpUsage(total: Usage, ops: number, maxCalls: Record<string, number> = {}): PerOpUsage {
  const per = (n: number) => round(ops > 0 ? n / ops : NaN, 4);
  const derived = unitsFromCalls(total);
  return {
    callsPerOp: Object.fromEntries(Object.entries(total.calls).map(([op, n]) => [op, per(n)])),
    maxCallsPerOp: maxCalls,
    awsCallsPerOp: per(sumOperations(total.calls, Object.keys(total.calls))),
    dynamoWriteAttemptsPerOp: per(dynamoWriteAttempts(total.calls)),
    transactWriteItemsPerOp: per(total.transactWriteItems),
    derivedWriteUnitsPerOp: per(derived.writeUnits),
    derivedReadUnitsPerOp: per(derived.readUnits),
    reportedWriteUnitsPerOp: per(total.writeUnits + total.failedConditionalWrites),
    reportedReadUnitsPerOp: per(total.readUnits),
    s3MsPerOp: round(ops > 0 ? total.s3Ms / ops : NaN),
    dynamodbMsPerOp: round(ops > 0 ? total.dynamodbMs / ops : NaN),
  };
}

export interface SeriesResult extends LatencySummary, PerOpUsage {
  name: string;
  bytesPerOp: number;
  /** Payload MiB over the summed latency of a sequential loop. */
  mibPerSec: number;
}

/** One measured variant of a sequential loop: latency, payload bytes and AWS usage per operation. */
export class Series {
  readonly latency = new Latency();
  private bytes = 0;
  private readonly usage = Meter.empty();
  private readonly maxCalls: Record<string, number> = {};

  constructor(readonly name: string, private readonly meter?: Meter) {}

  /** Runs `fn` and, when `record` is set, records it; `fn` must not overlap other metered calls. */
  async measure<T>(bytes: number, fn: () => Promise<T>, record = true): Promise<T> {
    const before = this.meter?.take();
    const { ms, value } = await timed(fn);
    if (!record) return value;
    this.sample(ms, bytes);
    if (this.meter && before) {
      const d = Meter.diff(before, this.meter.take());
      for (const [op, n] of Object.entries(d.calls)) this.maxCalls[op] = Math.max(this.maxCalls[op] ?? 0, n);
      Meter.add(this.usage, d);
    }
    return value;
  }

  /** Records a latency measured elsewhere (e.g. one step of another series' operation). */
  sample(ms: number, bytes: number): void {
    this.latency.record(ms);
    this.bytes += bytes;
  }

  result(): SeriesResult {
    const summary = this.latency.summary();
    const seconds = this.latency.totalMs / 1000;
    return {
      name: this.name,
      ...summary,
      bytesPerOp: summary.count ? Math.round(this.bytes / summary.count) : 0,
      mibPerSec: round(seconds > 0 ? this.bytes / 2 ** 20 / seconds : NaN),
      ...perOpUsage(this.usage, summary.count, { ...this.maxCalls }),
    };
  }
}

/** DynamoDB's item size: attribute names plus values (numbers about 1 byte per 2 digits). */
export function itemBytes(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return Math.ceil(String(value).replace(/[-.]/g, '').length / 2) + 1;
  if (value instanceof Set) return [...value].reduce((n: number, v) => n + itemBytes(v), 0);
  if (Array.isArray(value)) return 3 + value.reduce((n: number, v) => n + 1 + itemBytes(v), 0);
  return 3 + Object.entries(value as Record<string, unknown>).reduce((n, [k, v]) => n + Buffer.byteLength(k) + 1 + itemBytes(v), 0);
}

/** Lambda memory the cost model assumes for the produce and fetch functions. */
export const LAMBDA_MEMORY_MB = 1024;

export interface SizeCost {
  bytes: number;
  label: string;
  usageIn: RequestUsage;
  usageOut: RequestUsage;
  inPerGiB: CostBreakdown;
  outPerGiB: CostBreakdown;
  inPlusOutPerGiB: number;
}

/** Per-request usage from a measured series: counted S3 calls, the larger of derived and reported units. */
export function usageOf(series: SeriesResult): RequestUsage {
  return {
    s3Puts: series.callsPerOp['s3.PutObject'] ?? 0,
    s3Gets: series.callsPerOp['s3.GetObject'] ?? 0,
    writeUnits: Math.max(series.derivedWriteUnitsPerOp, series.reportedWriteUnitsPerOp),
    readUnits: Math.max(series.derivedReadUnitsPerOp, series.reportedReadUnitsPerOp),
    lambdaInvocations: 1,
    lambdaMs: series.p50Ms,
    lambdaMemoryMb: LAMBDA_MEMORY_MB,
  };
}

/** $ per GiB moved in (one `produce` request per `bytes` of payload) and out (one `fetch` of it). */
export function inOutCost(label: string, bytes: number, produce: SeriesResult, fetch: SeriesResult, prices: PriceTable): SizeCost {
  const usageIn = usageOf(produce);
  const usageOut = usageOf(fetch);
  const inPerGiB = costPerGiB(usageIn, bytes, prices);
  const outPerGiB = costPerGiB(usageOut, bytes, prices);
  return { bytes, label, usageIn, usageOut, inPerGiB, outPerGiB, inPlusOutPerGiB: inPerGiB.total + outPerGiB.total };
}

export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function ratio(ours: number, floor: number): number {
  return round(floor > 0 ? ours / floor : NaN, 3);
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 20 && bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

export function markdownTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '–') : v).replace(/\|/g, '\\|');
  return [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Targets and formatting

export interface Target {
  target: string;
  value: number;
  threshold: number;
  /** 'max': value must be at most threshold; 'min': at least. */
  kind: 'max' | 'min';
  unit: string;
  met: boolean;
  distance: string;
}

export function target(name: string, value: number, kind: 'max' | 'min', threshold: number, unit: string, digits = 3): Target {
  const met = Number.isFinite(value) && (kind === 'max' ? value <= threshold : value >= threshold);
  const gap = kind === 'max' ? threshold - value : value - threshold;
  const pct = threshold !== 0 ? ` (${round((Math.abs(gap) / threshold) * 100, 1)}%)` : '';
  const distance = !Number.isFinite(value) ? 'not measured' : gap === 0 ? 'exactly at the threshold' : `${round(Math.abs(gap), digits)}${unit} ${met ? 'of headroom' : kind === 'max' ? 'over' : 'short'}${pct}`;
  return { target: name, value: round(value, digits), threshold, kind, unit, met, distance };
}

export const usd = (n: number) => (n >= 0.1 ? `$${n.toFixed(3)}` : `$${n.toPrecision(3)}`);
export const callList = (calls: Record<string, number>) => Object.entries(calls).map(([op, n]) => `${op.replace(/^(s3|dynamodb)\./, '')} ${n}`).join(', ');

export function renderSanity(checks: Sanity[], title = '### Sanity checks'): string {
  return [title, '', ...checks.map((c) => `- ${c.ok ? 'ok' : 'FAILED'}: ${c.check} (${c.detail})`)].join('\n');
}

export function renderTargets(targets: Target[]): string {
  return ['### Targets', '', markdownTable(['target', 'value', 'threshold', 'met', 'distance'], targets.map((t) => [t.target, `${t.value}${t.unit}`, `${t.kind === 'max' ? '≤' : '≥'} ${t.threshold}${t.unit}`, t.met ? 'met' : 'NOT met', t.distance]))].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Sections

export interface LogBenchContext {
  storage: Storage;
  services: Services;
  meter: Meter;
  progress: (line: string) => void;
}

export interface SizeSpec {
  bytes: number;
  ops: number;
  warmup: number;
}

/** Requests are batches of 1 KiB records (one record for the 1 KiB size), Kafka-style. */
export const RECORD_BYTES = 1024;

export const DEFAULT_SIZES: SizeSpec[] = [
  { bytes: 1024, ops: 200, warmup: 20 },
  { bytes: 64 * 1024, ops: 100, warmup: 10 },
  { bytes: 1024 * 1024, ops: 30, warmup: 5 },
];

export interface SizeResult {
  bytes: number;
  label: string;
  /** The topics written: `all` by acks=all (then fetched), `one` by acks=1. */
  topics: { all: string; one: string };
  recordsPerRequest: number;
  segmentBytes: number;
  produceAcksAll: SeriesResult;
  produceAcks1: SeriesResult;
  fetch: SeriesResult;
  /** S3 PutObject of the same segment bytes, then one DynamoDB PutItem, sequentially. */
  floorProduce: SeriesResult;
  /** The PutObject step of floorProduce alone. */
  floorPut: SeriesResult;
  /** Ranged S3 GetObject of the same batch, then one strongly consistent DynamoDB GetItem. */
  floorFetch: SeriesResult;
  /** The GetObject step of floorFetch alone. */
  floorGet: SeriesResult;
}

export interface Sanity {
  check: string;
  ok: boolean;
  detail: string;
}

let topicSeq = 0;
export async function benchTopic(storage: Storage, purpose: string, partitions = 1): Promise<string> {
  const name = `bench-${purpose}-${++topicSeq}`;
  await createTopic(storage, { name, partitions });
  return name;
}

export function batchOf(bytes: number, value: Uint8Array | ((i: number) => Uint8Array)): ProduceRecord[] {
  const count = Math.max(1, Math.round(bytes / RECORD_BYTES));
  return Array.from({ length: count }, (_, i) => ({ key: null, value: typeof value === 'function' ? value(i) : value, headers: [] }));
}

/** An item shaped like an index entry, for the raw floor's DynamoDB write and read. */
function floorItem(tag: string, i: number) {
  return { p: `bench-floor/${tag}`, o: i, n: 1, tok: 'floorfloor', at: Date.now(), kind: 'data', key: `segments/${'0'.repeat(36)}/2026-01-01/${'0'.repeat(36)}.seg`, pos: 16, len: 1024, ts0: Date.now(), tsMax: Date.now() };
}

/** Runs the steps of one iteration in an order rotated by `i`, so no variant always goes first. */
export async function rotated(i: number, steps: Array<() => Promise<void>>): Promise<void> {
  for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
}

/**
 * Produce and fetch at one request size. Variants are interleaved per iteration (floor, acks=all,
 * acks=1, rotated) so drift in the emulators hits them alike; each loop is sequential.
 */
export async function benchSize(ctx: LogBenchContext, spec: SizeSpec, sanity: Sanity[]): Promise<SizeResult> {
  const { storage, meter } = ctx;
  const { producer, fetcher } = ctx.services;
  const { bucket, logTable } = storage.config;
  const label = formatBytes(spec.bytes);
  const tag = String(spec.bytes);
  const records = batchOf(spec.bytes, randomBytes(Math.min(spec.bytes, RECORD_BYTES)));
  const payloadBytes = records.reduce((s, r) => s + (r.value?.length ?? 0), 0);
  const topics = { all: await benchTopic(storage, `all-${tag}`), one: await benchTopic(storage, `one-${tag}`) };
  // The floor writes exactly the bytes our produce uploads for this batch.
  const segment = (await producer.prepare(topics.all, records)).bytes;

  const s = {
    all: new Series('produce acks=all', meter),
    one: new Series('produce acks=1', meter),
    floor: new Series('floor: S3 PUT + DynamoDB PutItem', meter),
    floorPut: new Series('floor: S3 PUT only'),
    fetch: new Series('fetch', meter),
    floorFetch: new Series('floor: S3 ranged GET + DynamoDB GetItem', meter),
    floorGet: new Series('floor: S3 ranged GET only'),
  };
  const produced: Array<{ base: number; position: number; length: number }> = [];
  const expectedNext = { all: 0, one: 0 };
  let offsetErrors = 0;

  const ourProduce = (acks: Acks, record: boolean) => async () => {
    const which = acks === 'all' ? 'all' : 'one';
    await s[which].measure(payloadBytes, async () => {
      const plan = await producer.prepare(topics[which], records);
      const offsets = await producer.persist(plan, acks);
      const base = offsets[0]!.offset;
      if (base !== expectedNext[which] || offsets.some((o, k) => o.offset !== base + k)) offsetErrors++;
      expectedNext[which] = base + offsets.length;
      if (acks === 'all') produced.push({ base, position: plan.batches[0]!.position, length: plan.batches[0]!.length });
    }, record);
  };

  const total = spec.warmup + spec.ops;
  ctx.progress(`produce ${label}: ${spec.warmup} warm-up + ${spec.ops} measured iterations × 3 variants`);
  for (let i = 0; i < total; i++) {
    const record = i >= spec.warmup;
    await rotated(i, [
      async () => {
        let putMs = 0;
        await s.floor.measure(payloadBytes, async () => {
          putMs = (await timed(() => storage.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `bench-floor/${tag}/${i}.seg`, Body: segment, ContentType: 'application/octet-stream' })))).ms;
          await storage.ddb.send(new PutCommand({ TableName: logTable, Item: floorItem(tag, i) }));
        }, record);
        if (record) s.floorPut.sample(putMs, payloadBytes);
      },
      ourProduce('all', record),
      ourProduce('1', record),
    ]);
  }
  sanity.push({ check: `produce ${label}: offsets contiguous from 0 on both topics`, ok: offsetErrors === 0, detail: `${offsetErrors} requests out of sequence; acks=all ended at ${expectedNext.all}, acks=1 at ${expectedNext.one}` });

  ctx.progress(`fetch ${label}: ${produced.length} iterations × 2 variants`);
  let fetchErrors = 0;
  for (const [i, batch] of produced.entries()) {
    const record = i >= spec.warmup;
    await rotated(i, [
      async () => {
        await s.fetch.measure(payloadBytes, async () => {
          const res = await fetcher.fetch({ topic: topics.all, partition: 0, offset: batch.base, maxRecords: records.length, maxBytes: payloadBytes, waitMs: 0 });
          if (res.records.length !== records.length || res.records[0]!.offset !== batch.base || res.records.at(-1)!.value!.length !== records.at(-1)!.value!.length) fetchErrors++;
        }, record);
      },
      async () => {
        let getMs = 0;
        await s.floorFetch.measure(payloadBytes, async () => {
          getMs = (await timed(async () => {
            // The floor's own upload of the same segment bytes (small writes upload none).
            const res = await storage.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `bench-floor/${tag}/${i}.seg`, Range: `bytes=${batch.position}-${batch.position + batch.length - 1}` }));
            await res.Body!.transformToByteArray();
          })).ms;
          await storage.ddb.send(new GetCommand({ TableName: logTable, Key: { p: `bench-floor/${tag}`, o: i }, ConsistentRead: true }));
        }, record);
        if (record) s.floorGet.sample(getMs, payloadBytes);
      },
    ]);
  }
  sanity.push({ check: `fetch ${label}: every batch read back whole at its offset`, ok: fetchErrors === 0 && produced.length === total, detail: `${fetchErrors} mismatches in ${produced.length} fetches` });

  return {
    bytes: spec.bytes,
    label,
    topics,
    recordsPerRequest: records.length,
    segmentBytes: segment.length,
    produceAcksAll: s.all.result(),
    produceAcks1: s.one.result(),
    fetch: s.fetch.result(),
    floorProduce: s.floor.result(),
    floorPut: s.floorPut.result(),
    floorFetch: s.floorFetch.result(),
    floorGet: s.floorGet.result(),
  };
}

export interface HttpResult {
  transport: string;
  bytes: number;
  label: string;
  produceDomain: SeriesResult;
  produceHttp: SeriesResult;
  fetchDomain: SeriesResult;
  fetchHttp: SeriesResult;
}

/**
 * One configuration (64 KiB, acks=all) through the real HTTP stack: the Hono app served by
 * @hono/node-server on a loopback port and called with fetch(), interleaved with the same
 * requests made on the domain objects directly.
 */
export async function benchHttp(ctx: LogBenchContext, spec: SizeSpec, sanity: Sanity[]): Promise<HttpResult> {
  const { storage, meter } = ctx;
  const { producer, fetcher } = ctx.services;
  const app = createApp(ctx.services);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const srv = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(srv));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const topic = await benchTopic(storage, 'http');
    const text = 'x'.repeat(Math.min(spec.bytes, RECORD_BYTES));
    const records = batchOf(spec.bytes, Buffer.from(text, 'utf8'));
    const payloadBytes = records.length * text.length;
    const body = JSON.stringify({ records: records.map(() => ({ value: text })), acks: 'all' });
    const s = {
      produceDomain: new Series('produce acks=all, domain', meter),
      produceHttp: new Series('produce acks=all, HTTP', meter),
      fetchDomain: new Series('fetch, domain', meter),
      fetchHttp: new Series('fetch, HTTP', meter),
    };
    const bases: number[] = [];
    let errors = 0;
    const total = spec.warmup + spec.ops;
    ctx.progress(`HTTP ${formatBytes(spec.bytes)}: ${total} iterations × 4 variants`);
    for (let i = 0; i < total; i++) {
      const record = i >= spec.warmup;
      await rotated(i, [
        async () => {
          const offsets = await s.produceDomain.measure(payloadBytes, () => producer.produce(topic, records, 'all'), record);
          bases.push(offsets[0]!.offset);
        },
        async () => {
          const res = await s.produceHttp.measure(payloadBytes, async () => {
            const r = await fetch(`${base}/v1/topics/${topic}/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
            return { status: r.status, json: (await r.json()) as { offsets?: Array<{ offset: number }> } };
          }, record);
          if (res.status !== 200 || res.json.offsets?.length !== records.length) errors++;
          else bases.push(res.json.offsets[0]!.offset);
        },
      ]);
    }
    for (const [i, offset] of bases.entries()) {
      const record = i >= 2 * spec.warmup;
      await rotated(i, [
        async () => {
          const res = await s.fetchDomain.measure(payloadBytes, () => fetcher.fetch({ topic, partition: 0, offset, maxRecords: records.length, maxBytes: payloadBytes, waitMs: 0 }), record);
          if (res.records.length !== records.length) errors++;
        },
        async () => {
          const res = await s.fetchHttp.measure(payloadBytes, async () => {
            const r = await fetch(`${base}/v1/topics/${topic}/partitions/0/records?offset=${offset}&maxRecords=${records.length}&maxBytes=${payloadBytes}`);
            return { status: r.status, json: (await r.json()) as { records?: unknown[] } };
          }, record);
          if (res.status !== 200 || res.json.records?.length !== records.length) errors++;
        },
      ]);
    }
    sanity.push({ check: 'HTTP: every produce and fetch answered 200 with all records', ok: errors === 0, detail: `${errors} failures` });
    return {
      transport: '@hono/node-server on 127.0.0.1, called with fetch() (keep-alive), JSON bodies with UTF-8 values',
      bytes: spec.bytes,
      label: formatBytes(spec.bytes),
      produceDomain: s.produceDomain.result(),
      produceHttp: s.produceHttp.result(),
      fetchDomain: s.fetchDomain.result(),
      fetchHttp: s.fetchHttp.result(),
    };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface ContentionSpec {
  writers: number;
  rounds: number;
  warmupRounds: number;
  acks: Acks;
}

export interface ContentionResult extends PerOpUsage {
  acks: Acks;
  writers: number;
  rounds: number;
  committedBatches: number;
  failedRequests: number;
  latency: LatencySummary;
  updateItemPerBatch: number;
  putItemPerBatch: number;
  failedConditionalWritesPerBatch: number;
  dynamoReadsPerBatch: number;
}

/**
 * `writers` produce calls (one small record each) fired at once at a one-partition topic, for
 * several rounds. Usage is taken over the measured rounds as a whole (the calls overlap), so the
 * per-op figures here are per committed batch. Afterwards the offsets are checked, both as handed
 * out and as read back.
 */
export async function benchContention(ctx: LogBenchContext, spec: ContentionSpec, sanity: Sanity[]): Promise<ContentionResult> {
  const { storage, meter } = ctx;
  const { producer, fetcher } = ctx.services;
  const topic = await benchTopic(storage, `contended-acks-${spec.acks}`);
  const latency = new Latency();
  const offsets: number[] = [];
  let failed = 0;
  let committed = 0;
  let before = meter.take();
  ctx.progress(`contention acks=${spec.acks}: ${spec.warmupRounds} warm-up + ${spec.rounds} rounds of ${spec.writers} concurrent writers`);
  for (let round = 0; round < spec.warmupRounds + spec.rounds; round++) {
    if (round === spec.warmupRounds) before = meter.take();
    const measured = round >= spec.warmupRounds;
    const results = await Promise.allSettled(Array.from({ length: spec.writers }, (_, w) => timed(() => producer.produce(topic, [{ key: null, value: Buffer.from(`round ${round} writer ${w} `.padEnd(100, '.')), headers: [] }], spec.acks))));
    for (const r of results) {
      if (r.status === 'rejected') {
        failed++;
        continue;
      }
      offsets.push(...r.value.value.map((o) => o.offset));
      if (measured) {
        committed++;
        latency.record(r.value.ms);
      }
    }
  }
  const usage = Meter.diff(before, meter.take());

  const sorted = [...offsets].sort((a, b) => a - b);
  const duplicates = sorted.filter((o, i) => i > 0 && o === sorted[i - 1]).length;
  const gaps = sorted.filter((o, i) => o !== i).length;
  sanity.push({ check: `contention acks=${spec.acks}: returned offsets are 0..${offsets.length - 1}, no duplicates or gaps`, ok: failed === 0 && duplicates === 0 && gaps === 0 && sorted.length > 0, detail: `${offsets.length} offsets, ${duplicates} duplicates, ${gaps} out of place, ${failed} failed requests` });

  // Read the whole partition back: every offset once, in order, no gap entries crossed.
  let next = 0;
  let readBack = 0;
  let readErrors = 0;
  for (let guard = 0; next < offsets.length && guard < offsets.length + 10; guard++) {
    const res = await fetcher.fetch({ topic, partition: 0, offset: next, maxRecords: 1000, maxBytes: 4 * 1024 * 1024, waitMs: 0 });
    if (res.gaps.length > 0) readErrors += res.gaps.length;
    for (const r of res.records) {
      if (r.offset !== next) readErrors++;
      next = r.offset + 1;
      readBack++;
    }
    if (res.records.length === 0) break;
  }
  sanity.push({ check: `contention acks=${spec.acks}: read back gap-free and duplicate-free`, ok: readErrors === 0 && readBack === offsets.length, detail: `${readBack} of ${offsets.length} records read back, ${readErrors} anomalies` });

  const per = (n: number) => round(committed ? n / committed : NaN, 3);
  return {
    acks: spec.acks,
    writers: spec.writers,
    rounds: spec.rounds,
    committedBatches: committed,
    failedRequests: failed,
    latency: latency.summary(),
    updateItemPerBatch: per(usage.calls['dynamodb.UpdateItem'] ?? 0),
    putItemPerBatch: per(usage.calls['dynamodb.PutItem'] ?? 0),
    failedConditionalWritesPerBatch: per(usage.failedConditionalWrites),
    dynamoReadsPerBatch: per(sumOperations(usage.calls, ['dynamodb.GetItem', 'dynamodb.Query'])),
    ...perOpUsage(usage, committed),
  };
}

export interface ThroughputSpec {
  bytes: number;
  concurrency: number;
  opsPerWorker: number;
  rounds: number;
  warmupRounds: number;
}

export interface ThroughputResult {
  bytes: number;
  label: string;
  concurrency: number;
  requestsPerVariant: number;
  /** Payload MiB over the wall time of all workers, per variant. */
  bareS3PutMiBps: number;
  floorMiBps: number;
  produceAcksAllMiBps: number;
  produceAcks1MiBps: number;
}

/**
 * Aggregate throughput with `concurrency` workers, each issuing its requests back to back (one
 * partition per worker for produce), against the same number of workers doing bare S3 PUTs of the
 * same bytes, or the floor (PUT + PutItem). Variants alternate round by round.
 */
export async function benchThroughput(ctx: LogBenchContext, spec: ThroughputSpec, sanity: Sanity[]): Promise<ThroughputResult> {
  const { storage } = ctx;
  const { producer } = ctx.services;
  const { bucket, logTable } = storage.config;
  const label = formatBytes(spec.bytes);
  const name = `throughput-${spec.bytes}`;
  const topic = await benchTopic(storage, name, spec.concurrency);
  const value = randomBytes(Math.min(spec.bytes, RECORD_BYTES));
  const byWorker = Array.from({ length: spec.concurrency }, (_, w) => batchOf(spec.bytes, value).map((r) => ({ ...r, partition: w })));
  const payloadBytes = byWorker[0]!.reduce((s, r) => s + (r.value?.length ?? 0), 0);
  const segment = (await producer.prepare(topic, byWorker[0]!)).bytes;
  let failures = 0;
  let seq = 0;
  const variants: Record<'put' | 'floor' | 'all' | 'one', (w: number) => Promise<unknown>> = {
    put: () => storage.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `bench-floor/${name}/${++seq}.seg`, Body: segment, ContentType: 'application/octet-stream' })),
    floor: async () => {
      const i = ++seq;
      await storage.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `bench-floor/${name}/${i}.seg`, Body: segment, ContentType: 'application/octet-stream' }));
      await storage.ddb.send(new PutCommand({ TableName: logTable, Item: floorItem(name, i) }));
    },
    all: (w) => producer.produce(topic, byWorker[w]!, 'all'),
    one: (w) => producer.produce(topic, byWorker[w]!, '1'),
  };
  const wall = { put: 0, floor: 0, all: 0, one: 0 };
  const order = Object.keys(variants) as Array<keyof typeof variants>;
  ctx.progress(`throughput ${label}: ${spec.warmupRounds} warm-up + ${spec.rounds} rounds × ${order.length} variants × ${spec.concurrency} workers × ${spec.opsPerWorker} requests`);
  for (let r = 0; r < spec.warmupRounds + spec.rounds; r++) {
    await rotated(r, order.map((v) => async () => {
      const { ms } = await timed(() => Promise.all(Array.from({ length: spec.concurrency }, async (_, w) => {
        for (let k = 0; k < spec.opsPerWorker; k++) await variants[v](w).catch(() => failures++);
      })));
      if (r >= spec.warmupRounds) wall[v] += ms;
    }));
  }
  sanity.push({ check: `throughput ${label}: every request succeeded`, ok: failures === 0, detail: `${failures} failures` });
  const requests = spec.rounds * spec.concurrency * spec.opsPerWorker;
  const mibps = (ms: number) => round((requests * payloadBytes) / 2 ** 20 / (ms / 1000));
  return {
    bytes: spec.bytes,
    label,
    concurrency: spec.concurrency,
    requestsPerVariant: requests,
    bareS3PutMiBps: mibps(wall.put),
    floorMiBps: mibps(wall.floor),
    produceAcksAllMiBps: mibps(wall.all),
    produceAcks1MiBps: mibps(wall.one),
  };
}
