// The workload: clients of the HTTP API (plain fetch() with timeouts), each a bounded loop that
// records every operation in the history.
import { sleep } from '../lib/retry.ts';
import { History, outputValue, recordValue, type Assignment, type DescribeTopicResult, type ErrorInfo, type FetchResult, type Operation, type PollResult, type ProduceArgs, type ProducerIdentity, type Sequence, type TxnReadArgs, type TxnReadResult } from './history.ts';

export const TOPIC = 'jepsen';
export const PARTITIONS = 4;
/** The transformers read INPUT_TOPIC in their group and write OUTPUT_TOPIC in transactions. */
export const INPUT_TOPIC = 'jepsen-in';
export const OUTPUT_TOPIC = 'jepsen-out';
export const TXN_GROUP = 'transformers';
/** Short enough that a transaction its transformer lost track of is aborted during the run. */
const TRANSACTION_TIMEOUT_MS = 15_000;
/**
 * Small segments, rolled at least every second, so that maintenance passes (compaction, then
 * retention by size and below the log start) run many times during a short run and kills land in
 * the middle of them; retention.bytes keeps about two full segments per partition.
 */
export const TOPIC_CONFIG = { 'segment.bytes': 4096, 'segment.ms': 1000, 'retention.bytes': 8192 };
const SESSION_TIMEOUT_MS = 6000;
const PRODUCE_ATTEMPTS = 3;

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** One HTTP call, abandoned after `timeoutMs` (the client-side timeout). */
export async function call(url: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const signal = AbortSignal.timeout(Math.max(1, timeoutMs));
  const res = await fetch(url + path, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    const error = (json.error ?? {}) as { code?: string; message?: string };
    throw new HttpError(res.status, error.code ?? 'HTTP_ERROR', error.message ?? text);
  }
  return json;
}

/** The valid range a 416 names: "... valid offsets are <log start> (log start) to <high watermark> (high watermark)". */
function outOfRangeBounds(err: HttpError): ErrorInfo['bounds'] {
  const named = err.status === 416 ? /valid offsets are (\d+) \(log start\) to (\d+) \(high watermark\)/.exec(err.message) : null;
  return named ? { logStartOffset: Number(named[1]), highWatermark: Number(named[2]) } : undefined;
}

/** A 4xx was validated and refused before anything was written: fail. Anything else may have happened: info. */
export function classify(err: unknown): { outcome: 'fail' | 'info'; error: ErrorInfo } {
  if (err instanceof HttpError) {
    const bounds = outOfRangeBounds(err);
    return { outcome: err.status < 500 ? 'fail' : 'info', error: { status: err.status, code: err.code, message: err.message, ...(bounds ? { bounds } : {}) } };
  }
  const name = err instanceof Error ? err.name : 'Error';
  return { outcome: 'info', error: { code: name === 'TimeoutError' || name === 'AbortError' ? 'CLIENT_TIMEOUT' : 'CONNECTION', message: err instanceof Error ? err.message : String(err) } };
}

export interface Client {
  history: History;
  random: () => number;
  /** The URL of the server this process talks to now. */
  url(): string;
  deadline: number;
}

const int = (random: () => number, min: number, max: number) => min + Math.floor(random() * (max - min + 1));

/** Mostly generous timeouts; sometimes one short enough to abandon calls the server still completes. */
function timeout(c: Client): number {
  return c.random() < 0.15 ? int(c.random, 20, 400) : 20_000;
}

/** Counts client timeouts as faults; backs off while the server is down (killed, restarting). */
async function afterFailure(c: Client, op: Operation): Promise<void> {
  if (op.error?.code === 'CLIENT_TIMEOUT') c.history.nemesis('client-timeout', `${op.f} #${op.id}`);
  if (op.error?.code === 'CONNECTION') await sleep(int(c.random, 300, 1000));
}

function randomRequest(c: Client, requestId: string, attempt: number, shape: { kind: number; count: number; key: string }): ProduceArgs {
  const records = Array.from({ length: shape.count }, (_, i) => {
    const value = recordValue(requestId, attempt, i);
    if (shape.kind === 0) return { value };
    if (shape.kind === 1) return { value, key: shape.key };
    // Multi-partition: explicit partitions; an invalid one (beyond the topic) must make the request a 4xx.
    return { value, partition: shape.kind === 3 && i === shape.count - 1 ? PARTITIONS + 5 : i % PARTITIONS };
  });
  return { topic: TOPIC, acks: c.random() < 0.5 ? 'all' : '1', requestId, attempt, records };
}

/** Produces until the deadline: unkeyed, keyed, multi-partition and invalid requests; retries what may not have happened. */
export async function producer(c: Client, name: string): Promise<void> {
  for (let n = 0; Date.now() < c.deadline; n++) {
    const roll = c.random();
    const shape = { kind: roll < 0.3 ? 0 : roll < 0.6 ? 1 : roll < 0.95 ? 2 : 3, count: int(c.random, 1, 5), key: `k${int(c.random, 0, 50)}` };
    const requestId = `${name}-${n}`;
    for (let attempt = 0; attempt < PRODUCE_ATTEMPTS; attempt++) {
      const args = randomRequest(c, requestId, attempt, shape);
      const body = { acks: args.acks, records: args.records };
      const op = await c.history.record(name, 'produce', args, async () => (await call(c.url(), 'POST', `/v1/topics/${TOPIC}/records`, body, timeout(c))) as { offsets: Array<{ partition: number; offset: number }> }, classify);
      await afterFailure(c, op);
      if (op.outcome !== 'info') break;
      await sleep(int(c.random, 20, 300));
    }
  }
}

/** Per partition, the next sequence of one producer id; a request takes its records' count from each. */
class Sequences {
  private readonly next = new Map<number, number>();

  of(records: Array<{ partition: number }>): Sequence[] {
    return [...new Set(records.map((r) => r.partition))].sort((a, b) => a - b).map((partition) => ({ partition, baseSequence: this.next.get(partition) ?? 0 }));
  }

  advance(records: Array<{ partition: number }>): void {
    for (const r of records) this.next.set(r.partition, (this.next.get(r.partition) ?? 0) + 1);
  }
}

/** POST /v1/producers until it answers (or the deadline passes): a producer id, transactional or not. */
async function initProducer(c: Client, name: string, transactionalId?: string): Promise<ProducerIdentity | undefined> {
  const body = transactionalId === undefined ? {} : { transactionalId, transactionTimeoutMs: TRANSACTION_TIMEOUT_MS };
  while (Date.now() < c.deadline) {
    const op = await c.history.record(name, 'init-producer', transactionalId === undefined ? {} : { transactionalId }, async () => (await call(c.url(), 'POST', '/v1/producers', body, timeout(c))) as ProducerIdentity, classify);
    if (op.outcome === 'ok') return op.result;
    await afterFailure(c, op);
    await sleep(int(c.random, 50, 300));
  }
  return undefined;
}

/** The answers after which an idempotent producer starts again with a new producer id (Kafka's client does too). */
const RESTART_PRODUCER = new Set(['UNKNOWN_PRODUCER_ID', 'OUT_OF_ORDER_SEQUENCE_NUMBER']);

/**
 * An idempotent producer: one request in flight, each record naming its partition; a request whose
 * outcome is unknown (timeout, lost response, 5xx, server killed) is sent again unchanged until it
 * is answered. After UNKNOWN_PRODUCER_ID or OUT_OF_ORDER it takes a new producer id and sends the
 * request as its next attempt.
 */
export async function idempotentProducer(c: Client, name: string): Promise<void> {
  let identity: ProducerIdentity | undefined;
  let sequences = new Sequences();
  for (let n = 0; Date.now() < c.deadline; n++) {
    const count = int(c.random, 1, 5);
    const single = c.random() < 0.5 ? int(c.random, 0, PARTITIONS - 1) : undefined;
    const requestId = `${name}-${n}`;
    for (let attempt = 0; Date.now() < c.deadline;) {
      identity ??= await initProducer(c, name);
      if (!identity) break;
      const records = Array.from({ length: count }, (_, i) => ({ value: recordValue(requestId, attempt, i), partition: single ?? i % PARTITIONS }));
      const args: ProduceArgs = { topic: TOPIC, acks: c.random() < 0.5 ? 'all' : '1', requestId, attempt, records, ...identity, sequences: sequences.of(records) };
      const body = { acks: args.acks, records, ...identity, sequences: args.sequences };
      const op = await c.history.record(name, 'produce', args, async () => (await call(c.url(), 'POST', `/v1/topics/${TOPIC}/records`, body, timeout(c))) as { offsets: Array<{ partition: number; offset: number }> }, classify);
      await afterFailure(c, op);
      if (op.outcome === 'ok') sequences.advance(records);
      if (op.outcome === 'fail' && RESTART_PRODUCER.has(op.error?.code ?? '')) {
        [identity, sequences] = [undefined, new Sequences()];
        attempt++;
        continue;
      }
      if (op.outcome !== 'info') break;
      await sleep(int(c.random, 20, 300));
    }
  }
}

export async function fetchOnce(c: Client, name: string, partition: number, offset: number, options: { waitMs: number; final?: boolean; timeoutMs?: number }): Promise<Operation<'fetch'>> {
  const op = await c.history.record(name, 'fetch', { topic: TOPIC, partition, offset, ...(options.final ? { final: true } : {}) }, async () => {
    const res = (await call(c.url(), 'GET', `/v1/topics/${TOPIC}/partitions/${partition}/records?offset=${offset}&maxRecords=200&waitMs=${options.waitMs}`, undefined, options.timeoutMs ?? timeout(c))) as FetchResult & { records: Array<{ offset: number; value: string | null; partition: number }> };
    return { records: res.records.map((r) => ({ partition, offset: r.offset, value: r.value })), nextOffset: res.nextOffset, highWatermark: res.highWatermark, logStartOffset: res.logStartOffset, gaps: res.gaps };
  }, classify);
  if (op.error?.code === 'OFFSET_OUT_OF_RANGE' && !op.error.bounds) throw new Error(`fetch #${op.id}: a 416 that names no valid range: ${op.error.message}`);
  return op;
}

/** Where a read from `offset` goes on: past what it read, or up to the log start a 416 names. */
function nextReadOffset(offset: number, op: Operation<'fetch' | 'txn-read'>): number {
  if (op.outcome === 'ok') return Math.max(offset, op.result!.nextOffset);
  return Math.max(offset, op.error?.bounds?.logStartOffset ?? offset);
}

/** Tails every partition, sometimes re-reading from an earlier offset; a 416 below the log start moves on to it. */
export async function fetcher(c: Client, name: string): Promise<void> {
  const next = Array.from({ length: PARTITIONS }, () => 0);
  for (let i = 0; Date.now() < c.deadline; i++) {
    const partition = i % PARTITIONS;
    const offset = c.random() < 0.1 ? int(c.random, 0, next[partition]!) : next[partition]!;
    const op = await fetchOnce(c, name, partition, offset, { waitMs: int(c.random, 0, 300) });
    await afterFailure(c, op);
    next[partition] = nextReadOffset(next[partition]!, op);
    if (op.outcome !== 'ok') await sleep(int(c.random, 20, 200));
  }
}

async function join(c: Client, name: string, group: string): Promise<Operation<'join'>> {
  const body = { topics: [TOPIC], autoOffsetReset: 'earliest', sessionTimeoutMs: SESSION_TIMEOUT_MS, rebalanceTimeoutMs: SESSION_TIMEOUT_MS };
  return c.history.record(name, 'join', { group }, async () => (await call(c.url(), 'POST', `/v1/groups/${group}/members`, body, 10_000)) as Assignment, classify);
}

export async function poll(c: Client, name: string, group: string, memberId: string, ack: string | undefined, options: { timeoutMs?: number; abandoned?: boolean } = {}): Promise<Operation<'poll'>> {
  const args = { group, memberId, ...(ack ? { ack } : {}), ...(options.abandoned ? { abandoned: true } : {}) };
  return c.history.record(name, 'poll', args, async () => {
    const res = (await call(c.url(), 'POST', `/v1/groups/${group}/members/${memberId}/poll`, { ack, waitMs: 200, maxRecords: 100 }, options.timeoutMs ?? timeout(c))) as PollResult;
    return { memberId: res.memberId, memberEpoch: res.memberEpoch, assignment: res.assignment, pollId: res.pollId, records: res.records.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset, value: r.value })) };
  }, classify);
}

/** A client retrying at once: the same ack twice, 0-8 ms apart; the first copy is abandoned after 0-6 ms. */
async function duplicatedPoll(c: Client, name: string, group: string, memberId: string, ack: string | undefined): Promise<Operation<'poll'>> {
  c.history.nemesis('duplicate-poll', `${group} ${memberId}`);
  const first = poll(c, `${name}-copy`, group, memberId, ack, { timeoutMs: int(c.random, 0, 6), abandoned: true });
  await sleep(int(c.random, 0, 8));
  const [, kept] = await Promise.all([first, poll(c, name, group, memberId, ack)]);
  return kept;
}

const rejoin = (op: Operation) => op.error?.code === 'UNKNOWN_MEMBER_ID' || op.error?.code === 'FENCED_MEMBER_EPOCH';

/** A group member: joins, polls with ack (sometimes duplicated), then leaves with ack or vanishes, and joins again. */
export async function member(c: Client, name: string, group: string): Promise<void> {
  while (Date.now() < c.deadline) {
    const joined = await join(c, name, group);
    if (joined.outcome !== 'ok') {
      await sleep(int(c.random, 100, 500));
      continue;
    }
    const memberId = joined.result!.memberId;
    let ack: string | undefined;
    let gone = false;
    for (let polls = int(c.random, 5, 40); polls > 0 && Date.now() < c.deadline && !gone; polls--) {
      const op = c.random() < 0.15 ? await duplicatedPoll(c, name, group, memberId, ack) : await poll(c, name, group, memberId, ack);
      await afterFailure(c, op);
      if (op.outcome === 'ok') ack = op.result!.pollId;
      gone = rejoin(op);
      await sleep(int(c.random, 50, 400));
    }
    if (gone || Date.now() >= c.deadline) continue;
    if (c.random() < 0.6) {
      await c.history.record(name, 'leave', { group, memberId, ...(ack ? { ack } : {}) }, async () => {
        await call(c.url(), 'DELETE', `/v1/groups/${group}/members/${memberId}${ack ? `?ack=${ack}` : ''}`, undefined, timeout(c));
        return {};
      }, classify);
    } else {
      // Vanishes: its session expires and its partitions (and unacknowledged batch) go to others.
      await sleep(int(c.random, 0, SESSION_TIMEOUT_MS));
    }
  }
}

export async function describe<K extends 'describe' | 'txn-describe' = 'describe'>(c: Client, name: string, group: string, timeoutMs = 10_000, f = 'describe' as K, final?: boolean): Promise<Operation<K>> {
  return c.history.record(name, f, { group, ...(final ? { final } : {}) }, async () => {
    const res = (await call(c.url(), 'GET', `/v1/groups/${group}`, undefined, timeoutMs)) as { offsets: Array<{ topic: string; partition: number; committedOffset: number | null; highWatermark: number | null }> };
    return { offsets: res.offsets.map(({ topic, partition, committedOffset, highWatermark }) => ({ topic, partition, committedOffset, highWatermark })) };
  }, classify);
}

export async function describeTopic(c: Client, name: string, timeoutMs = 10_000): Promise<Operation<'describe-topic'>> {
  return c.history.record(name, 'describe-topic', { topic: TOPIC }, async () => {
    const res = (await call(c.url(), 'GET', `/v1/topics/${TOPIC}`, undefined, timeoutMs)) as DescribeTopicResult;
    return { partitions: res.partitions.map(({ partition, logStartOffset, highWatermark, segments, bytes }) => ({ partition, logStartOffset, highWatermark, segments, bytes })) };
  }, classify);
}

/** After the run: describes the topic until a describe succeeds (the faults go on). */
export async function finalDescribe(c: Client): Promise<void> {
  while ((await describeTopic(c, 'final', 30_000)).outcome !== 'ok') {
    if (Date.now() > c.deadline) throw new Error('the topic could not be described after the run');
    await sleep(200);
  }
}

async function deleteRecords(c: Client, name: string, partition: number, offset: number): Promise<Operation<'delete-records'>> {
  const op = await c.history.record(name, 'delete-records', { topic: TOPIC, partition, offset }, async () => {
    const res = (await call(c.url(), 'POST', `/v1/topics/${TOPIC}/delete-records`, { partitions: [{ partition, offset }] }, timeout(c))) as { partitions: Array<{ logStartOffset: number }> };
    return { logStartOffset: res.partitions[0]!.logStartOffset };
  }, classify);
  await afterFailure(c, op);
  return op;
}

/**
 * Describes the topic every 1-2 s (the log start, high watermark and segments of each partition)
 * and deletes the records of one partition up to a point above its log start, at most halfway to
 * its high watermark; sometimes sends that request again at once (a client retry), or a lower
 * offset (a late retry), both of which must change nothing.
 */
export async function trimmer(c: Client, name: string): Promise<void> {
  while (Date.now() < c.deadline) {
    const described = await describeTopic(c, name);
    await afterFailure(c, described);
    const figures = described.result?.partitions[int(c.random, 0, PARTITIONS - 1)];
    if (figures) {
      const { partition, logStartOffset, highWatermark } = figures;
      const offset = Math.min(highWatermark, logStartOffset + int(c.random, 1, Math.max(1, Math.floor((highWatermark - logStartOffset) / 2))));
      const first = await deleteRecords(c, name, partition, offset);
      const roll = c.random();
      if (roll < 0.2 || first.outcome === 'info') await deleteRecords(c, name, partition, offset);
      else if (roll < 0.3) await deleteRecords(c, name, partition, int(c.random, 0, offset));
    }
    await sleep(int(c.random, 1000, 2000));
  }
}

/** Reads the groups' committed offsets, one call at a time. */
export async function describer(c: Client, name: string, groups: string[]): Promise<void> {
  while (Date.now() < c.deadline) {
    for (const group of groups) await describe(c, name, group);
    await sleep(int(c.random, 1000, 2000));
  }
}

/** A read_committed or read_uncommitted fetch of the transformers' input or output topic. */
export async function readIsolated(c: Client, name: string, args: TxnReadArgs, options: { waitMs: number; timeoutMs?: number }): Promise<Operation<'txn-read'>> {
  return c.history.record(name, 'txn-read', args, async () => {
    const query = `offset=${args.offset}&maxRecords=200&waitMs=${options.waitMs}&isolation=${args.isolation}`;
    const res = (await call(c.url(), 'GET', `/v1/topics/${args.topic}/partitions/${args.partition}/records?${query}`, undefined, options.timeoutMs ?? timeout(c))) as TxnReadResult;
    const { nextOffset, highWatermark, lastStableOffset, logStartOffset, gaps } = res;
    return { records: res.records.map((r) => ({ partition: args.partition, offset: r.offset, value: r.value })), nextOffset, highWatermark, lastStableOffset, logStartOffset, gaps };
  }, classify);
}

/** Tails the output topic in read_committed: what each read returns must be committed, once. */
export async function committedReader(c: Client, name: string): Promise<void> {
  const next = Array.from({ length: PARTITIONS }, () => 0);
  for (let i = 0; Date.now() < c.deadline; i++) {
    const partition = i % PARTITIONS;
    const op = await readIsolated(c, name, { topic: OUTPUT_TOPIC, partition, offset: next[partition]!, isolation: 'read_committed' }, { waitMs: int(c.random, 0, 300) });
    await afterFailure(c, op);
    next[partition] = nextReadOffset(next[partition]!, op);
    if (op.outcome !== 'ok') await sleep(int(c.random, 20, 200));
  }
}

/**
 * After the run: reads each partition of the jepsen topic from its log start to its high watermark.
 * Returns, per partition, the end of its data: one past its last record (gaps may follow).
 */
export function finalRead(c: Client): Promise<number[]> {
  return readToEnd(c, (partition, offset) => fetchOnce(c, 'final', partition, offset, { waitMs: 0, final: true, timeoutMs: 30_000 }));
}

/** After the run: the final read of the transformers' input or output topic, up to its high watermark (so past every open transaction). */
export function finalReadIsolated(c: Client, topic: string, isolation: TxnReadArgs['isolation']): Promise<number[]> {
  return readToEnd(c, (partition, offset) => readIsolated(c, 'final', { topic, partition, offset, isolation, final: true }, { waitMs: 0, timeoutMs: 30_000 }));
}

async function readToEnd(c: Client, read: (partition: number, offset: number) => Promise<Operation<'fetch' | 'txn-read'>>): Promise<number[]> {
  const ends: number[] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    let offset = 0;
    let end = 0;
    for (let reads = 0; ; reads++) {
      if (Date.now() > c.deadline || reads > 10_000) throw new Error(`the final read of partition ${partition} did not finish`);
      const op = await read(partition, offset);
      if (op.outcome !== 'ok') {
        // Retention may have raised the log start: the read goes on from there.
        offset = nextReadOffset(offset, op);
        await sleep(200);
        continue;
      }
      const { records, nextOffset, highWatermark } = op.result!;
      if (records.length > 0) end = records.at(-1)!.offset + 1;
      if (nextOffset >= highWatermark) break;
      // read_committed stops at an open transaction until it ends (or times out).
      if (nextOffset === offset) await sleep(200);
      offset = nextOffset;
    }
    ends.push(end);
  }
  return ends;
}

/**
 * After the run: one member per group polls with ack until the group's committed offsets reach
 * `ends` (every record consumed and acknowledged), then leaves.
 */
export async function drain(c: Client, group: string, ends: number[]): Promise<void> {
  const name = `drain-${group}`;
  let memberId: string | undefined;
  let ack: string | undefined;
  while (Date.now() < c.deadline) {
    if (!memberId) {
      memberId = (await join(c, name, group)).result?.memberId;
      continue;
    }
    const op = await poll(c, name, group, memberId, ack, { timeoutMs: 30_000 });
    if (op.outcome === 'ok') ack = op.result!.pollId;
    else if (rejoin(op)) memberId = ack = undefined;
    if (op.outcome === 'ok' && op.result!.records.length === 0) {
      const described = await describe(c, name, group, 30_000);
      const committed = new Map(described.result?.offsets.map((o) => [o.partition, o.committedOffset ?? 0]));
      if (ends.every((end, partition) => end === 0 || (committed.get(partition) ?? 0) >= end)) break;
      await sleep(300);
    }
  }
  if (!memberId || Date.now() >= c.deadline) throw new Error(`group ${group} was not drained in time`);
  await c.history.record(name, 'leave', { group, memberId, ...(ack ? { ack } : {}) }, async () => {
    await call(c.url(), 'DELETE', `/v1/groups/${group}/members/${memberId}${ack ? `?ack=${ack}` : ''}`, undefined, 30_000);
    return {};
  }, classify);
}

/** Writes to the transformers' input topic, each record naming its partition; duplicates there are harmless. */
export async function feeder(c: Client, name: string): Promise<void> {
  for (let n = 0; Date.now() < c.deadline; n++) {
    const records = Array.from({ length: int(c.random, 1, 5) }, (_, i) => ({ value: `${name}-${n}:${i}`, partition: int(c.random, 0, PARTITIONS - 1) }));
    const op = await c.history.record(name, 'feed', { topic: INPUT_TOPIC, records }, async () => (await call(c.url(), 'POST', `/v1/topics/${INPUT_TOPIC}/records`, { records }, timeout(c))) as { offsets: Array<{ partition: number; offset: number }> }, classify);
    await afterFailure(c, op);
    await sleep(int(c.random, 50, 300));
  }
}

/** What ends a transaction that did not commit: abort after a refusal, else a new epoch (which aborts it). */
const FENCED = new Set(['PRODUCER_FENCED', 'UNKNOWN_PRODUCER_ID']);

/**
 * Consume-transform-produce, exactly once: joins TXN_GROUP on INPUT_TOPIC and polls in
 * read_committed without ever acknowledging (so each poll starts at the group's committed offsets);
 * writes one output per input record (to the same partition of OUTPUT_TOPIC) in a transaction,
 * adds the group offsets past the inputs to it, and commits. A transaction refused along the way is
 * aborted; one whose outcome is unknown, or whose abort fails, is ended by initialising the
 * transactional id again (a new epoch fences the old one and aborts what it left open). Runs until
 * the deadline or `done()`, checked only between transactions.
 */
export async function transformer(c: Client, name: string, done: () => boolean): Promise<void> {
  let identity: ProducerIdentity | undefined;
  let sequences = new Sequences();
  let member: { memberId: string; memberEpoch: number } | undefined;
  for (let n = 0; Date.now() < c.deadline && !done();) {
    if (!identity) {
      [identity, sequences] = [await initProducer(c, name, name), new Sequences()];
      continue;
    }
    if (!member) {
      const body = { topics: [INPUT_TOPIC], autoOffsetReset: 'earliest', sessionTimeoutMs: 20_000, rebalanceTimeoutMs: 20_000 };
      const joined = await c.history.record(name, 'txn-join', { group: TXN_GROUP }, async () => (await call(c.url(), 'POST', `/v1/groups/${TXN_GROUP}/members`, body, 10_000)) as Assignment, classify);
      if (joined.outcome === 'ok') member = { memberId: joined.result!.memberId, memberEpoch: joined.result!.memberEpoch };
      else await sleep(int(c.random, 100, 500));
      continue;
    }
    const { memberId } = member;
    const polled = await c.history.record(name, 'txn-poll', { group: TXN_GROUP, memberId }, async () => {
      const res = (await call(c.url(), 'POST', `/v1/groups/${TXN_GROUP}/members/${memberId}/poll`, { autoCommit: false, isolation: 'read_committed', waitMs: 200, maxRecords: 50 }, timeout(c))) as PollResult;
      return { memberId: res.memberId, memberEpoch: res.memberEpoch, assignment: res.assignment, pollId: res.pollId, records: res.records.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset, value: r.value })) };
    }, classify);
    await afterFailure(c, polled);
    if (polled.outcome !== 'ok') {
      if (rejoin(polled)) member = undefined;
      await sleep(int(c.random, 50, 300));
      continue;
    }
    member.memberEpoch = polled.result!.memberEpoch;
    const inputs = polled.result!.records;
    if (inputs.length === 0) continue;
    const transaction = `${name}.${identity.producerEpoch}.${n++}`;
    const step = await transact(c, name, transaction, identity, sequences, member, inputs);
    if (step.outcome === 'ok') continue;
    if (step.error?.code === 'UNKNOWN_MEMBER_ID') member = undefined;
    const refused = step.outcome === 'fail' && !FENCED.has(step.error?.code ?? '');
    if (!refused || (await endTransaction(c, name, transaction, identity, 'abort')).outcome !== 'ok') identity = undefined;
  }
}

/** Writes the outputs of `inputs`, adds the offsets past them and commits; returns the first step that did not succeed, or the commit. */
async function transact(c: Client, name: string, transaction: string, identity: ProducerIdentity, sequences: Sequences, member: { memberId: string; memberEpoch: number }, inputs: PollResult['records']): Promise<Operation> {
  const records = inputs.map((r) => ({ value: outputValue(transaction, r), partition: r.partition }));
  const args = { transaction, topic: OUTPUT_TOPIC, ...identity, sequences: sequences.of(records), records };
  const produced = await c.history.record(name, 'txn-produce', args, async () => {
    const body = { records, ...identity, sequences: args.sequences, transactionalId: name };
    return (await call(c.url(), 'POST', `/v1/topics/${OUTPUT_TOPIC}/records`, body, timeout(c))) as { offsets: Array<{ partition: number; offset: number }> };
  }, classify);
  await afterFailure(c, produced);
  if (produced.outcome !== 'ok') return produced;
  sequences.advance(records);
  const past = new Map<number, number>();
  for (const r of inputs) past.set(r.partition, Math.max(past.get(r.partition) ?? 0, r.offset + 1));
  const offsets = [...past].map(([partition, offset]) => ({ topic: INPUT_TOPIC, partition, offset }));
  const added = await c.history.record(name, 'txn-offsets', { transaction, group: TXN_GROUP, ...member, offsets }, async () => {
    await call(c.url(), 'POST', `/v1/transactions/${name}/offsets`, { ...identity, groupId: TXN_GROUP, ...member, offsets }, timeout(c));
    return {};
  }, classify);
  await afterFailure(c, added);
  if (added.outcome !== 'ok') return added;
  return endTransaction(c, name, transaction, identity, 'commit');
}

async function endTransaction(c: Client, name: string, transaction: string, identity: ProducerIdentity, outcome: 'commit' | 'abort'): Promise<Operation<'txn-end'>> {
  const op = await c.history.record(name, 'txn-end', { transaction, outcome }, async () => {
    await call(c.url(), 'POST', `/v1/transactions/${name}/${outcome}`, identity, timeout(c));
    return {};
  }, classify);
  await afterFailure(c, op);
  return op;
}

/** After the run: the transformers' group's committed offsets of INPUT_TOPIC, once they reach `ends`. */
export async function awaitConsumed(c: Client, ends: number[]): Promise<void> {
  while (Date.now() < c.deadline) {
    const described = await describe(c, 'drain-transformers', TXN_GROUP, 30_000, 'txn-describe');
    const committed = new Map(described.result?.offsets.filter((o) => o.topic === INPUT_TOPIC).map((o) => [o.partition, o.committedOffset ?? 0]));
    if (described.outcome === 'ok' && ends.every((end, partition) => end === 0 || (committed.get(partition) ?? 0) >= end)) return;
    await sleep(500);
  }
  throw new Error(`the transformers did not consume ${INPUT_TOPIC} in time`);
}
