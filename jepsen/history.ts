// The history of a run: every client operation as an invoke event and one completion (ok, fail or
// info), plus the nemesis's events, each with the time it happened. Written as JSONL as the run
// goes, so a run that dies still leaves what it saw.
//   ok    the operation happened, with this result;
//   fail  it certainly did not happen (a 4xx answer: validated before anything is written);
//   info  unknown: a timeout, a dropped connection, a 5xx. It may or may not have taken effect.
import { appendFileSync } from 'node:fs';

/** A record value names the request that wrote it: `<requestId>:<attempt>:<index in the request>`. */
export interface RecordRef {
  partition: number;
  offset: number;
  value: string | null;
}

export interface ProduceArgs {
  topic: string;
  acks: 'all' | '1';
  requestId: string;
  attempt: number;
  /** `partition` only where the request names it; otherwise the server routes (one key, or unkeyed). */
  records: Array<{ value: string; key?: string; partition?: number }>;
  /**
   * An idempotent request (POST /v1/producers): its producer and each partition's first sequence.
   * A retry after an unknown outcome resends the same request (same attempt, values and
   * sequences); `attempt` grows only when the producer re-initialised, so one attempt is one
   * producer id.
   */
  producerId?: number;
  producerEpoch?: number;
  sequences?: Sequence[];
}
export interface Sequence {
  partition: number;
  baseSequence: number;
}
export interface ProduceResult {
  offsets: Array<{ partition: number; offset: number }>;
}

export interface FetchArgs {
  topic: string;
  partition: number;
  offset: number;
  /** One of the reads after the run that cover each partition from its start. */
  final?: boolean;
}
export interface FetchResult {
  records: RecordRef[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
  gaps: Array<{ startOffset: number; endOffset: number }>;
}

export interface Assignment {
  memberId: string;
  memberEpoch: number;
  assignment: Array<{ topic: string; partitions: number[] }>;
}
export interface JoinArgs {
  group: string;
}
export interface PollArgs {
  group: string;
  memberId: string;
  ack?: string;
  /** The first copy of a duplicated poll: the client drops its answer, whatever it is. */
  abandoned?: boolean;
}
export interface PollResult extends Assignment {
  pollId: string;
  records: Array<RecordRef & { topic: string }>;
}
export interface LeaveArgs {
  group: string;
  memberId: string;
  ack?: string;
}
export interface DescribeArgs {
  group: string;
}
export interface DescribeResult {
  offsets: Array<{ topic: string; partition: number; committedOffset: number | null; highWatermark: number | null }>;
}

export interface DescribeTopicArgs {
  topic: string;
}
export interface PartitionFigures {
  partition: number;
  logStartOffset: number;
  highWatermark: number;
  segments: number;
  bytes: number;
}
export interface DescribeTopicResult {
  partitions: PartitionFigures[];
}
/** DeleteRecords of one partition up to `offset`. */
export interface DeleteRecordsArgs {
  topic: string;
  partition: number;
  offset: number;
}
/** The partition's log start after the call (higher than asked if it already was). */
export interface DeleteRecordsResult {
  logStartOffset: number;
}

/** A plain write to the transformers' input topic: what it wrote is judged by the final read of that topic. */
export interface FeedArgs {
  topic: string;
  records: Array<{ value: string; partition: number }>;
}
export interface InitProducerArgs {
  transactionalId?: string;
}
export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
}
/**
 * One step of a transformer's transaction, named `<transactionalId>.<epoch>.<n>` (its n-th at that
 * epoch). Each output record's value is `<transaction>|<input topic>/<partition>/<offset>`.
 */
export interface TxnProduceArgs extends ProducerIdentity {
  transaction: string;
  topic: string;
  sequences: Sequence[];
  records: Array<{ value: string; partition: number }>;
}
export interface TxnOffsetsArgs {
  transaction: string;
  group: string;
  memberId: string;
  memberEpoch: number;
  offsets: Array<{ topic: string; partition: number; offset: number }>;
}
export interface TxnEndArgs {
  transaction: string;
  outcome: 'commit' | 'abort';
}
/** A read of the transformers' input or output topic, with its isolation level. */
export interface TxnReadArgs extends FetchArgs {
  isolation: 'read_committed' | 'read_uncommitted';
}
export interface TxnReadResult extends FetchResult {
  lastStableOffset: number;
}

export interface Ops {
  produce: { args: ProduceArgs; result: ProduceResult };
  fetch: { args: FetchArgs; result: FetchResult };
  join: { args: JoinArgs; result: Assignment };
  poll: { args: PollArgs; result: PollResult };
  leave: { args: LeaveArgs; result: Record<string, never> };
  describe: { args: DescribeArgs; result: DescribeResult };
  'describe-topic': { args: DescribeTopicArgs; result: DescribeTopicResult };
  'delete-records': { args: DeleteRecordsArgs; result: DeleteRecordsResult };
  'init-producer': { args: InitProducerArgs; result: ProducerIdentity };
  feed: { args: FeedArgs; result: ProduceResult };
  'txn-join': { args: JoinArgs; result: Assignment };
  'txn-poll': { args: PollArgs; result: PollResult };
  'txn-produce': { args: TxnProduceArgs; result: ProduceResult };
  'txn-offsets': { args: TxnOffsetsArgs; result: Record<string, never> };
  'txn-end': { args: TxnEndArgs; result: Record<string, never> };
  'txn-read': { args: TxnReadArgs; result: TxnReadResult };
  /** The transformers' group: `final` once they stopped (nothing moves it after). */
  'txn-describe': { args: DescribeArgs & { final?: boolean }; result: DescribeResult };
}
export type OpName = keyof Ops;

export interface ErrorInfo {
  status?: number;
  code?: string;
  message: string;
  /** A 416's valid range at the time it was refused, as its message names it. */
  bounds?: { logStartOffset: number; highWatermark: number };
}

export type Outcome = 'ok' | 'fail' | 'info';

export type ClientEvent =
  | { type: 'invoke'; id: number; process: string; time: number; f: OpName; args: Ops[OpName]['args'] }
  | { type: Outcome; id: number; process: string; time: number; f: OpName; result?: Ops[OpName]['result']; error?: ErrorInfo };

/**
 * What the nemesis did: `kill` (kill -9 of every process of the stack), `restart`, `skew-on` and
 * `skew-off` (the writer with an offset clock runs in between), and each fault the fault layer
 * injected into an AWS call (`delay`, `lose`, `throttle`, with the call in `detail`).
 */
export type NemesisFault = 'kill' | 'restart' | 'skew-on' | 'skew-off' | 'delay' | 'lose' | 'throttle' | 'client-timeout' | 'duplicate-poll';
export interface NemesisEvent {
  type: 'nemesis';
  time: number;
  fault: NemesisFault;
  detail?: string;
}

export type HistoryEvent = ClientEvent | NemesisEvent;

/** An invoke paired with its completion; a missing completion (the run ended first) is info. */
export interface Operation<K extends OpName = OpName> {
  id: number;
  process: string;
  f: K;
  args: Ops[K]['args'];
  outcome: Outcome;
  result?: Ops[K]['result'];
  error?: ErrorInfo;
  invokedAt: number;
  completedAt: number;
}

export function pairOperations(events: HistoryEvent[]): Operation[] {
  const open = new Map<number, Extract<ClientEvent, { type: 'invoke' }>>();
  const ops: Operation[] = [];
  for (const e of events) {
    if (e.type === 'nemesis') continue;
    if (e.type === 'invoke') {
      open.set(e.id, e);
      continue;
    }
    const invoke = open.get(e.id);
    if (!invoke) continue;
    open.delete(e.id);
    ops.push({ id: e.id, process: e.process, f: invoke.f, args: invoke.args, outcome: e.type, result: e.result, error: e.error, invokedAt: invoke.time, completedAt: e.time });
  }
  for (const invoke of open.values()) ops.push({ id: invoke.id, process: invoke.process, f: invoke.f, args: invoke.args, outcome: 'info', invokedAt: invoke.time, completedAt: Infinity });
  return ops;
}

export function isOp<K extends OpName>(f: K): (op: Operation) => op is Operation<K> {
  return (op): op is Operation<K> => op.f === f;
}

export function recordValue(requestId: string, attempt: number, index: number): string {
  return `${requestId}:${attempt}:${index}`;
}

export function outputValue(transaction: string, input: { topic: string; partition: number; offset: number }): string {
  return `${transaction}|${input.topic}/${input.partition}/${input.offset}`;
}

export function parseOutputValue(value: string | null): { transaction: string; input: string } | undefined {
  const match = /^(.+)\|(.+\/\d+\/\d+)$/.exec(value ?? '');
  return match ? { transaction: match[1]!, input: match[2]! } : undefined;
}

export function parseRecordValue(value: string | null): { requestId: string; attempt: number; index: number } | undefined {
  const match = /^(.+):(\d+):(\d+)$/.exec(value ?? '');
  return match ? { requestId: match[1]!, attempt: Number(match[2]), index: Number(match[3]) } : undefined;
}

/** Appends every event to a JSONL file as it happens, and keeps them for the checker. */
export class History {
  readonly events: HistoryEvent[] = [];
  private nextId = 0;

  constructor(private readonly file?: string) {}

  add(event: HistoryEvent): void {
    this.events.push(event);
    if (this.file) appendFileSync(this.file, JSON.stringify(event) + '\n');
  }

  nemesis(fault: NemesisFault, detail?: string, time = Date.now()): void {
    this.add({ type: 'nemesis', time, fault, detail });
  }

  /** Runs `call`, recording its invoke and completion; `classify` turns a thrown error into fail or info. */
  async record<K extends OpName>(process: string, f: K, args: Ops[K]['args'], call: () => Promise<Ops[K]['result']>, classify: (err: unknown) => { outcome: 'fail' | 'info'; error: ErrorInfo }): Promise<Operation<K>> {
    const id = this.nextId++;
    const invokedAt = Date.now();
    this.add({ type: 'invoke', id, process, time: invokedAt, f, args });
    try {
      const result = await call();
      const completedAt = Date.now();
      this.add({ type: 'ok', id, process, time: completedAt, f, result });
      return { id, process, f, args, outcome: 'ok', result, invokedAt, completedAt };
    } catch (err) {
      const { outcome, error } = classify(err);
      const completedAt = Date.now();
      this.add({ type: outcome, id, process, time: completedAt, f, error });
      return { id, process, f, args, outcome, error, invokedAt, completedAt };
    }
  }
}
