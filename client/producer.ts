// The producer: send() queues records per topic; a flush sends each topic's queue as one request
// (split only beyond batchBytes or the server's 10,000 records), lingerMs after the first record
// queued or at once when batchBytes are waiting (Kafka's linger.ms and batch.size). One request
// costs the same for 1 record as for 1,000, so batching is what makes small records cheap.
//
// Delivery is at-least-once: a request retried after a timeout or a 5xx may have been written the
// first time too, and then its records are in the log twice. Requests of one topic go one at a
// time, in order, so a retry never reorders records. (Idempotent producers will make retries
// exactly-once: see requestBody, the one place where partitions and sequences will be set.)
import { byteLength, fromUtf8, toBase64, type Bytes } from './bytes.ts';
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
}

/** The server's bound on records per produce request. */
export const MAX_RECORDS_PER_REQUEST = 10_000;
/** The server's (Lambda's) bound on a request body; batches stay well below it. */
const MAX_BODY_BYTES = 6 * 1024 * 1024;
/** Per record, what the JSON around key and value adds (field names, offsets of headers). */
const RECORD_OVERHEAD_BYTES = 64;

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
}

export class Producer {
  private readonly queues = new Map<string, TopicQueue>();
  private connected = true;
  private readonly lingerMs: number;
  private readonly batchBytes: number;

  constructor(private readonly transport: Transport, private readonly options: ProducerOptions = {}) {
    this.lingerMs = options.lingerMs ?? 0;
    this.batchBytes = Math.min(options.batchBytes ?? 1024 * 1024, MAX_BODY_BYTES / 2);
  }

  /** kafkajs compatibility: nothing to connect, requests are stateless. */
  async connect(): Promise<void> {}

  /** Resolves once every message is written (acks), to where each one went, in order. */
  send(record: ProducerRecord): Promise<RecordMetadata[]> {
    if (!this.connected) return Promise.reject(new Error('the producer is disconnected'));
    const queue = this.queueOf(record.topic, normaliseAcks(record.acks ?? this.options.acks ?? 'all'));
    const results = record.messages.map((message) => new Promise<RecordMetadata>((resolve, reject) => {
      const bytes = byteLength(message.key) + byteLength(message.value) + RECORD_OVERHEAD_BYTES;
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

  private async sendRequest(queue: TopicQueue, batch: Queued[]): Promise<void> {
    try {
      const reply = await this.transport.request<{ offsets?: Array<{ partition: number; offset: number; timestamp: number }> }>('POST', `/v1/topics/${encodeURIComponent(queue.topic)}/records`, { body: requestBody(queue, batch) });
      batch.forEach((queued, i) => {
        const written = reply.offsets?.[i];
        queued.resolve({ topicName: queue.topic, partition: written?.partition ?? -1, offset: written?.offset ?? -1, timestamp: written?.timestamp ?? -1 });
      });
    } catch (err) {
      for (const queued of batch) queued.reject(err);
    }
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

/**
 * The body of one produce request: the one place where, for idempotent producers, each record's
 * partition (murmur2 of the key, see partitioner.ts) and each partition's sequence will be set.
 */
function requestBody(queue: TopicQueue, batch: Queued[]) {
  // Base64 only when some key or value is binary: text stays readable (and a third smaller).
  const binary = batch.some(({ message }) => isBinary(message.key) || isBinary(message.value));
  const encode = (value: Bytes) => (value === null || value === undefined ? null : binary ? toBase64(value) : (value as string));
  return {
    ...(binary ? { encoding: 'base64' } : {}),
    acks: queue.acks,
    records: batch.map(({ message }) => ({
      key: encode(message.key),
      value: encode(message.value),
      ...(message.headers ? { headers: Object.fromEntries(Object.entries(message.headers).map(([name, value]) => [name, typeof value === 'string' ? value : fromUtf8(value)])) } : {}),
      ...(message.partition !== undefined ? { partition: message.partition } : {}),
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
