// The producer: send() queues records per topic; a flush sends each topic's queue as one request
// (split only beyond batchBytes or the server's 10,000 records), lingerMs after the first record
// queued or at once when batchBytes are waiting (Kafka's linger.ms and batch.size). One request
// costs the same for 1 record as for 1,000, so batching is what makes small records cheap.
//
// Idempotent by default (Kafka's enable.idempotence): one POST /v1/producers gives a producer id,
// the producer routes every record to a partition itself (murmur2 of the key, or one partition per
// request for unkeyed records) and numbers each partition's records. The transport retries a
// request with the same body, hence the same sequences, and the server answers a batch it already
// committed with the original offsets: a retry never duplicates. Sequences advance only when a
// request succeeded; a request that failed may or may not have been written, so the next one starts
// a new producer id rather than reuse its sequences (a different batch at a committed sequence would
// be taken for a retry). Requests of one topic go one at a time, in order, so sequences reach the
// server in order and a retry never reorders records. With `idempotent: false`, a retry of a request
// that was written the first time writes its records again (at-least-once).
import { byteLength, fromUtf8, toBase64, type Bytes } from './bytes.ts';
import { Admin } from './admin.ts';
import { InvalidRequestError, NotFoundError, OutOfOrderSequenceError, ProducerFencedError } from './errors.ts';
import { partitionForKey } from './partitioner.ts';
import type { Transport } from './transport.ts';

export type Acks = 'all' | '1' | '0' | -1 | 1 | 0;

export interface Message {
  key?: Bytes;
  value: Bytes;
  headers?: Record<string, string | Uint8Array>;
  partition?: number;
  /** Milliseconds since the epoch (a number, or a string as kafkajs takes it). */
  timestamp?: number | string;
}

export interface ProducerRecord {
  topic: string;
  messages: Message[];
  acks?: Acks;
}

/** Where one message was written (with acks 0, nothing is known: partition and offset are -1). */
export interface RecordMetadata {
  topicName: string;
  partition: number;
  offset: number;
  timestamp: number;
}

export interface ProducerOptions {
  /** How long a record waits for more to share its request. 0 still batches the sends of one tick. @default 0 */
  lingerMs?: number;
  /** A topic's queue is sent once this many key and value bytes wait. @default 1048576 */
  batchBytes?: number;
  /** @default 'all' */
  acks?: Acks;
  /** Retries never duplicate records (needs acks 'all' or '1'); false: at-least-once. @default true */
  idempotent?: boolean;
}

/** The server's bound on records per produce request. */
export const MAX_RECORDS_PER_REQUEST = 10_000;
/** The server's (Lambda's) bound on a request body; batches stay well below it. */
const MAX_BODY_BYTES = 6 * 1024 * 1024;
/** Per record, what the JSON around key and value adds (field names, offsets of headers). */
const RECORD_OVERHEAD_BYTES = 64;
/** The server's bound on a sequence (int32); a producer id is renewed before reaching it. */
const MAX_SEQUENCE = 2 ** 31 - 1;
/** How long a topic's partition count is trusted before it is read again (Kafka's metadata.max.age.ms). */
const METADATA_MAX_AGE_MS = 5 * 60_000;

interface Queued {
  message: Message;
  bytes: number;
  resolve: (metadata: RecordMetadata) => void;
  reject: (err: unknown) => void;
}

interface TopicQueue {
  topic: string;
  acks: '0' | '1' | 'all';
  queued: Queued[];
  bytes: number;
  timer?: ReturnType<typeof setTimeout>;
  /** The requests sent so far, in order: each starts when the previous one settled. */
  sending: Promise<void>;
  /** Where the next request's unkeyed records go (idempotent producers): one partition per request, the next one each time. */
  stickyPartition?: number;
}

/** One producer id and, per partition it wrote, the sequence of the next record. */
interface ProducerSession {
  producerId: number;
  producerEpoch: number;
  /** By `${topic}/${partition}`. */
  nextSequence: Map<string, number>;
  /** Set when a request failed: the next request gets a new producer id. */
  abandoned: boolean;
}

/** What makes a request idempotent: the producer id and, per partition written, its first record's sequence. */
interface Sequenced {
  producerId: number;
  producerEpoch: number;
  sequences: Array<{ partition: number; baseSequence: number }>;
}

export class Producer {
  private readonly queues = new Map<string, TopicQueue>();
  private connected = true;
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly idempotent: boolean;
  private readonly admin: Admin;
  private sessionInit?: Promise<ProducerSession>;
  private readonly partitionCounts = new Map<string, { count: Promise<number>; readAt: number }>();
  /** PRODUCER_FENCED or OUT_OF_ORDER_SEQUENCE_NUMBER: every later send fails with it. */
  private fatal?: ProducerFencedError | OutOfOrderSequenceError;

  constructor(private readonly transport: Transport, private readonly options: ProducerOptions = {}) {
    this.lingerMs = options.lingerMs ?? 0;
    this.batchBytes = Math.min(options.batchBytes ?? 1024 * 1024, MAX_BODY_BYTES / 2);
    this.idempotent = options.idempotent ?? true;
    this.admin = new Admin(transport);
    if (options.acks !== undefined) this.checkAcks(normaliseAcks(options.acks));
  }

  /** kafkajs compatibility: nothing to connect, requests are stateless. */
  async connect(): Promise<void> {}

  /** Resolves once every message is written (acks), to where each one went, in order. */
  send(record: ProducerRecord): Promise<RecordMetadata[]> {
    if (!this.connected) return Promise.reject(new Error('the producer is disconnected'));
    if (this.fatal) return Promise.reject(this.fatal);
    const acks = normaliseAcks(record.acks ?? this.options.acks ?? 'all');
    try {
      this.checkAcks(acks);
    } catch (err) {
      return Promise.reject(err);
    }
    const queue = this.queueOf(record.topic, acks);
    const results = record.messages.map((message) => new Promise<RecordMetadata>((resolve, reject) => {
      const bytes = byteLength(message.key) + byteLength(message.value) + RECORD_OVERHEAD_BYTES;
      // Full batches go before the record that would overflow them (else it would go alone).
      if (queue.queued.length > 0 && queue.bytes + bytes > this.batchBytes) this.dispatch(queue);
      queue.queued.push({ message, bytes, resolve, reject });
      queue.bytes += bytes;
    }));
    if (queue.bytes >= this.batchBytes) this.dispatch(queue);
    else queue.timer ??= setTimeout(() => this.dispatch(queue), this.lingerMs);
    return Promise.all(results);
  }

  async sendBatch({ topicMessages, acks }: { topicMessages: Array<{ topic: string; messages: Message[] }>; acks?: Acks }): Promise<RecordMetadata[]> {
    return (await Promise.all(topicMessages.map(({ topic, messages }) => this.send({ topic, messages, acks })))).flat();
  }

  /** Sends everything queued now and resolves once all of it (and everything sent before) is settled. */
  async flush(): Promise<void> {
    for (const queue of this.queues.values()) this.dispatch(queue);
    await Promise.all([...this.queues.values()].map((queue) => queue.sending));
  }

  /** Flushes, then refuses further sends. */
  async disconnect(): Promise<void> {
    this.connected = false;
    await this.flush();
  }

  private queueOf(topic: string, acks: TopicQueue['acks']): TopicQueue {
    const id = `${acks}/${topic}`;
    let queue = this.queues.get(id);
    if (!queue) this.queues.set(id, (queue = { topic, acks, queued: [], bytes: 0, sending: Promise.resolve() }));
    return queue;
  }

  /** Takes the queue's records, in batches of up to batchBytes, onto its chain of requests. */
  private dispatch(queue: TopicQueue): void {
    clearTimeout(queue.timer);
    queue.timer = undefined;
    const queued = queue.queued;
    queue.queued = [];
    queue.bytes = 0;
    for (const batch of batches(queued, this.batchBytes)) {
      queue.sending = queue.sending.then(() => this.sendRequest(queue, batch));
    }
  }

  private checkAcks(acks: TopicQueue['acks']): void {
    if (this.idempotent && acks === '0') throw new InvalidRequestError("an idempotent producer needs acks 'all' or '1': with acks 0 it never learns whether a batch was written; create the producer with idempotent: false to use acks 0", 'INVALID_ACKS', 0, false);
  }

  private async sendRequest(queue: TopicQueue, batch: Queued[]): Promise<void> {
    try {
      const reply = this.idempotent ? await this.sendSequenced(queue, batch) : await this.post(queue, requestBody(queue, batch));
      batch.forEach((queued, i) => {
        const written = reply.offsets?.[i];
        queued.resolve({ topicName: queue.topic, partition: written?.partition ?? -1, offset: written?.offset ?? -1, timestamp: written?.timestamp ?? -1 });
      });
    } catch (err) {
      if (err instanceof ProducerFencedError || err instanceof OutOfOrderSequenceError) this.fatal ??= err;
      for (const queued of batch) queued.reject(err);
    }
  }

  private post(queue: TopicQueue, body: ReturnType<typeof requestBody>) {
    return this.transport.request<{ offsets?: Array<{ partition: number; offset: number; timestamp: number }> }>('POST', `/v1/topics/${encodeURIComponent(queue.topic)}/records`, { body });
  }

  /**
   * One idempotent request: routed, numbered, and re-sent once under a new producer id when the
   * server no longer knows this one (UNKNOWN_PRODUCER_ID: its state expired, nothing was written).
   */
  private async sendSequenced(queue: TopicQueue, batch: Queued[]) {
    if (this.fatal) throw this.fatal;
    const partitions = await this.route(queue, batch);
    const counts = new Map<number, number>();
    for (const partition of partitions) counts.set(partition, (counts.get(partition) ?? 0) + 1);
    for (let renewed = false; ; renewed = true) {
      const session = await this.session();
      const sequences = [...counts.keys()].map((partition) => ({ partition, baseSequence: session.nextSequence.get(`${queue.topic}/${partition}`) ?? 0 }));
      if (sequences.some(({ partition, baseSequence }) => baseSequence + counts.get(partition)! - 1 > MAX_SEQUENCE)) {
        session.abandoned = true;
        continue;
      }
      try {
        const reply = await this.post(queue, requestBody(queue, batch, partitions, { producerId: session.producerId, producerEpoch: session.producerEpoch, sequences }));
        for (const { partition, baseSequence } of sequences) session.nextSequence.set(`${queue.topic}/${partition}`, baseSequence + counts.get(partition)!);
        return reply;
      } catch (err) {
        session.abandoned = true;
        if (renewed || !(err instanceof NotFoundError && err.code === 'UNKNOWN_PRODUCER_ID')) throw err;
      }
    }
  }

  /** The current producer id, initialised (POST /v1/producers) on first use and after it was abandoned. */
  private async session(): Promise<ProducerSession> {
    for (;;) {
      const init = (this.sessionInit ??= this.transport.request<{ producerId: number; producerEpoch: number }>('POST', '/v1/producers', { body: {} })
        .then(({ producerId, producerEpoch }) => ({ producerId, producerEpoch, nextSequence: new Map(), abandoned: false })));
      try {
        const session = await init;
        if (!session.abandoned) return session;
      } catch (err) {
        if (this.sessionInit === init) this.sessionInit = undefined;
        throw err;
      }
      if (this.sessionInit === init) this.sessionInit = undefined;
    }
  }

  /** Each record's partition: its own, murmur2 of its key, or for unkeyed records the request's sticky partition. */
  private async route(queue: TopicQueue, batch: Queued[]): Promise<number[]> {
    if (batch.every(({ message }) => message.partition !== undefined)) return batch.map(({ message }) => message.partition!);
    const count = await this.partitionCount(queue.topic);
    const sticky = (queue.stickyPartition ?? Math.floor(Math.random() * count)) % count;
    queue.stickyPartition = sticky + 1;
    return batch.map(({ message }) => message.partition ?? (message.key === null || message.key === undefined ? sticky : partitionForKey(message.key, count)));
  }

  private partitionCount(topic: string): Promise<number> {
    const cached = this.partitionCounts.get(topic);
    if (cached && Date.now() - cached.readAt < METADATA_MAX_AGE_MS) return cached.count;
    const count = this.admin.describeTopic(topic).then((t) => t.partitions.length);
    this.partitionCounts.set(topic, { count, readAt: Date.now() });
    count.catch(() => this.partitionCounts.get(topic)?.count === count && this.partitionCounts.delete(topic));
    return count;
  }
}

/** Consecutive runs of queued records within batchBytes and the server's record bound (a larger record goes alone). */
function* batches(queued: Queued[], batchBytes: number): Generator<Queued[]> {
  let batch: Queued[] = [];
  let bytes = 0;
  for (const entry of queued) {
    if (batch.length > 0 && (bytes + entry.bytes > batchBytes || batch.length === MAX_RECORDS_PER_REQUEST)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(entry);
    bytes += entry.bytes;
  }
  if (batch.length > 0) yield batch;
}

/** The body of one produce request; an idempotent one names each record's partition and each partition's first sequence. */
function requestBody(queue: TopicQueue, batch: Queued[], partitions?: number[], sequenced?: Sequenced) {
  // Base64 only when some key or value is binary: text stays readable (and a third smaller).
  const binary = batch.some(({ message }) => isBinary(message.key) || isBinary(message.value));
  const encode = (value: Bytes) => (value === null || value === undefined ? null : binary ? toBase64(value) : (value as string));
  return {
    ...(binary ? { encoding: 'base64' } : {}),
    acks: queue.acks,
    ...sequenced,
    records: batch.map(({ message }, i) => ({
      partition: partitions?.[i] ?? message.partition,
      key: encode(message.key),
      value: encode(message.value),
      ...(message.headers ? { headers: Object.fromEntries(Object.entries(message.headers).map(([name, value]) => [name, typeof value === 'string' ? value : fromUtf8(value)])) } : {}),
      ...(message.timestamp !== undefined ? { timestamp: Number(message.timestamp) } : {}),
    })),
  };
}

function isBinary(value: Bytes): value is Uint8Array {
  return value instanceof Uint8Array;
}

function normaliseAcks(acks: Acks): TopicQueue['acks'] {
  if (acks === -1 || acks === 'all') return 'all';
  return String(acks) as '0' | '1';
}
