// The workload: clients of the HTTP API (plain fetch() with timeouts), each a bounded loop that
// records every operation in the history.
import { sleep } from '../lib/retry.ts';
import { History, recordValue, type Assignment, type DescribeTopicResult, type ErrorInfo, type FetchResult, type Operation, type PollResult, type ProduceArgs } from './history.ts';

export const TOPIC = 'jepsen';
export const PARTITIONS = 4;
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

export async function fetchOnce(c: Client, name: string, partition: number, offset: number, options: { waitMs: number; final?: boolean; timeoutMs?: number }): Promise<Operation<'fetch'>> {
  const op = await c.history.record(name, 'fetch', { topic: TOPIC, partition, offset, ...(options.final ? { final: true } : {}) }, async () => {
    const res = (await call(c.url(), 'GET', `/v1/topics/${TOPIC}/partitions/${partition}/records?offset=${offset}&maxRecords=200&waitMs=${options.waitMs}`, undefined, options.timeoutMs ?? timeout(c))) as FetchResult & { records: Array<{ offset: number; value: string | null; partition: number }> };
    return { records: res.records.map((r) => ({ partition, offset: r.offset, value: r.value })), nextOffset: res.nextOffset, highWatermark: res.highWatermark, logStartOffset: res.logStartOffset, gaps: res.gaps };
  }, classify);
  if (op.error?.code === 'OFFSET_OUT_OF_RANGE' && !op.error.bounds) throw new Error(`fetch #${op.id}: a 416 that names no valid range: ${op.error.message}`);
  return op;
}

/** Where a read from `offset` goes on: past what it read, or up to the log start a 416 names. */
function nextReadOffset(offset: number, op: Operation<'fetch'>): number {
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

export async function describe(c: Client, name: string, group: string, timeoutMs = 10_000): Promise<Operation<'describe'>> {
  return c.history.record(name, 'describe', { group }, async () => {
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

/**
 * After the run: reads each partition from its log start to its high watermark. Returns, per partition,
 * the end of its data: one past its last record (gaps may follow).
 */
export async function finalRead(c: Client): Promise<number[]> {
  const ends: number[] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    let offset = 0;
    let end = 0;
    for (let reads = 0; ; reads++) {
      if (Date.now() > c.deadline || reads > 10_000) throw new Error(`the final read of partition ${partition} did not finish`);
      const op = await fetchOnce(c, 'final', partition, offset, { waitMs: 0, final: true, timeoutMs: 30_000 });
      if (op.outcome !== 'ok') {
        // Retention may have raised the log start: the read goes on from there.
        offset = nextReadOffset(offset, op);
        await sleep(200);
        continue;
      }
      const { records, nextOffset, highWatermark } = op.result!;
      if (records.length > 0) end = records.at(-1)!.offset + 1;
      offset = nextOffset;
      if (offset >= highWatermark) break;
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
