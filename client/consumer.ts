// A consumer-group member. run() joins the group and loops: poll, process, acknowledge. The server
// assigns partitions and rebalances (docs/consumer-groups.md); this loop turns its poll/ack protocol
// into kafkajs' eachMessage / eachBatch:
//   - A batch is acknowledged (its pollId sent as the next poll's `ack`, which commits it with
//     autoCommit) only when every record in it was processed. A record whose handler threw, and
//     everything after it, is never committed: the processed part is committed explicitly, the
//     batch is not acknowledged, and the server delivers it again; records this member already
//     processed are skipped, so processing resumes at the record that failed.
//   - Partitions are released only by polls, which come after the batch was processed, so a batch
//     is processed while its partitions are owned. Long processing sends heartbeats that keep
//     every partition (no `owned` list), so a long handler does not lose its session.
//   - disconnect() stops after the current batch and leaves, acknowledging what was processed.
import { fromBase64 } from './bytes.ts';
import { ConflictError, NotFoundError, QueueError } from './errors.ts';
import { backoffDelay, mayFollowDirectUrl, sleep, type RequestOptions, type RetryOptions, type Transport } from './transport.ts';

export interface ConsumerOptions {
  groupId: string;
  /** @default 45000 */
  sessionTimeout?: number;
  /** @default 60000 */
  rebalanceTimeout?: number;
  /** @default 'uniform' (the group's assignor is fixed by its first member) */
  assignor?: 'uniform' | 'range';
  /** How long a poll waits for records (server-side, billed as the function's time) while data may be arriving. @default 5000 */
  maxWaitTimeInMs?: number;
  /**
   * Once the server says nothing is being written (the poll's `watch`), the pause between polls
   * instead: each costs one cheap read, so an idle member costs well under $1 a month and a new
   * record arrives within about half of this on average (docs/architecture.md, Cheap waiting). @default 1500
   */
  idlePollIntervalMs?: number;
  /**
   * Records per poll, at most. One poll is one HTTP request whether it returns 1 record or
   * thousands, so the default leaves the bound to maxBytes (about 960 records of 1 KiB).
   * @default 5000
   */
  maxRecords?: number;
  /** Bytes per poll. @default 1048576 */
  maxBytes?: number;
  /** Backoff before processing again after a handler threw. */
  retry?: RetryOptions;
  onPartitionsAssigned?: (assignment: TopicPartitions[]) => void | Promise<void>;
  onPartitionsRevoked?: (assignment: TopicPartitions[]) => void | Promise<void>;
  /** A handler threw (the batch will be processed again from that record) or a poll failed. @default console.error */
  onError?: (err: unknown) => void;
}

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface KafkaMessage {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string | null>;
  offset: number;
  timestamp: number;
}

export interface EachMessagePayload {
  topic: string;
  partition: number;
  message: KafkaMessage;
  heartbeat(): Promise<void>;
  pause(): () => void;
}

export interface Batch {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
  firstOffset(): number | null;
  lastOffset(): number | null;
}

export interface EachBatchPayload {
  batch: Batch;
  /** Marks `offset` and everything before it in the batch processed. */
  resolveOffset(offset: number): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  pause(): () => void;
}

export interface RunConfig {
  eachMessage?: (payload: EachMessagePayload) => Promise<void>;
  eachBatch?: (payload: EachBatchPayload) => Promise<void>;
  /** @default true */
  autoCommit?: boolean;
  /** Resolve a batch's last offset when eachBatch returns. @default true */
  eachBatchAutoResolve?: boolean;
  /** Called after a poll that returned nothing: every owned partition is at its end. */
  onIdle?: () => void | Promise<void>;
}

interface MemberReply {
  memberId: string;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  assignment: TopicPartitions[];
}

interface PollReply extends MemberReply {
  pollId: string;
  watch?: string;
  records: Array<{ topic: string; partition: number; offset: number; timestamp: number; key: string | null; value: string | null; headers: Record<string, string | null> }>;
}

type PolledRecord = PollReply['records'][number];

/** The recommended pause between idle polls: see docs/architecture.md, "Cheap waiting". */
export const IDLE_POLL_INTERVAL_MS = 1500;

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

export class Consumer {
  private readonly topics = new Set<string>();
  private fromBeginning = false;
  private member?: MemberReply;
  private owned = new Set<string>();
  /** Per partition, the offset after the last record processed here: redelivered records below it are skipped. */
  private readonly processed = new Map<string, number>();
  private readonly paused = new Set<string>();
  private running = false;
  private loop?: Promise<void>;
  private polling?: AbortController;
  private readonly groupPath: string;
  /** The groups function's own URL, named by the single base URL's router, while it accepts us. */
  private direct?: Transport;
  private directRefused = false;

  constructor(private readonly transport: Transport, private readonly options: ConsumerOptions) {
    this.groupPath = `/v1/groups/${encodeURIComponent(options.groupId)}`;
  }

  /** kafkajs compatibility: the member joins in run(). */
  async connect(): Promise<void> {}

  async subscribe({ topics, topic, fromBeginning }: { topics?: string[]; topic?: string; fromBeginning?: boolean }): Promise<void> {
    if (this.running) throw new Error('subscribe before run()');
    for (const name of [...(topics ?? []), ...(topic ? [topic] : [])]) this.topics.add(name);
    this.fromBeginning = fromBeginning ?? this.fromBeginning;
  }

  /** Joins the group and starts consuming; resolves once joined (consuming goes on until disconnect). */
  async run(config: RunConfig): Promise<void> {
    if (!config.eachMessage === !config.eachBatch) throw new Error('run() takes exactly one of eachMessage and eachBatch');
    if (this.topics.size === 0) throw new Error('subscribe to at least one topic before run()');
    this.running = true;
    await this.join();
    this.loop = this.consume(config);
  }

  /** Stops after the current batch and leaves the group, acknowledging what was processed. */
  async disconnect(): Promise<void> {
    this.running = false;
    this.polling?.abort();
    await this.loop;
  }

  /** Stops delivering records of these partitions (all of a topic without `partitions`) until resumed. */
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void {
    for (const key of this.keysOf(topics)) this.paused.add(key);
  }

  resume(topics: Array<{ topic: string; partitions?: number[] }>): void {
    for (const key of this.keysOf(topics)) this.paused.delete(key);
  }

  /**
   * Continues a partition at `offset`. Only forward: within a group the server holds the member's
   * position and committed offsets never move back; rewind an empty group with admin.resetOffsets.
   */
  seek({ topic, partition, offset }: { topic: string; partition: number; offset: number | string }): void {
    const key = tpKey(topic, partition);
    const target = Number(offset);
    const current = this.processed.get(key);
    if (current !== undefined && target < current) throw new Error(`cannot seek ${key} back to ${target} (at ${current}): reset the group's offsets while it is empty instead`);
    this.processed.set(key, target);
  }

  /** Commits offsets (the next offset to read) of partitions this member owns. */
  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: number | string }>): Promise<void> {
    const member = this.requireMember();
    await this.groupRequest('POST', '/offsets', {
      body: { memberId: member.memberId, memberEpoch: member.memberEpoch, offsets: offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset: Number(offset) })) },
    });
  }

  /** What this member owns now. */
  assignment(): TopicPartitions[] {
    return this.member?.assignment ?? [];
  }

  /**
   * A call on this member's group. Behind a deployed stack's single base URL, the first answer names
   * the groups function's own URL, and later calls go there: each poll is then one Lambda
   * invocation, not two. If that URL refuses us (IAM mode, granted the base URL only), cannot be
   * reached from here, or answers as no function of ours would, the call is sent again through the
   * base URL, which is used from then on.
   */
  private async groupRequest<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const direct = this.direct;
    if (direct) {
      try {
        return await direct.request<T>(method, `${this.groupPath}${path}`, options);
      } catch (err) {
        if (options.signal?.aborted || !(err instanceof QueueError && (err.status === 0 || err.status === 401 || err.status === 403 || err.code.startsWith('HTTP_')))) throw err;
        this.direct = undefined;
        this.directRefused = true;
      }
    }
    return this.transport.request<T>(method, `${this.groupPath}${path}`, {
      ...options,
      onDirectUrl: (url) => {
        if (!this.directRefused && mayFollowDirectUrl(this.transport.baseUrl, url, this.transport.options.directUrls)) this.direct = this.transport.at(url);
      },
    });
  }

  private async join(): Promise<void> {
    const member = await this.groupRequest<MemberReply>('POST', '/members', {
      body: {
        topics: [...this.topics],
        autoOffsetReset: this.fromBeginning ? 'earliest' : 'latest',
        ...(this.options.sessionTimeout !== undefined ? { sessionTimeoutMs: this.options.sessionTimeout } : {}),
        ...(this.options.rebalanceTimeout !== undefined ? { rebalanceTimeoutMs: this.options.rebalanceTimeout } : {}),
        ...(this.options.assignor ? { assignor: this.options.assignor } : {}),
      },
    });
    await this.assign(member);
  }

  private async consume(config: RunConfig): Promise<void> {
    const autoCommit = config.autoCommit ?? true;
    /** The pollId of the last batch processed in full, until a poll response shows the server got it. */
    let ack: string | undefined;
    /** The last reply's watch: nothing was being written, so poll with it (and without waiting) after a pause. */
    let watch: string | undefined;
    let failures = 0;
    while (this.running) {
      let reply: PollReply;
      try {
        this.polling = new AbortController();
        reply = await this.groupRequest<PollReply>('POST', `/members/${this.requireMember().memberId}/poll`, {
          body: { waitMs: this.options.maxWaitTimeInMs ?? 5000, maxRecords: this.options.maxRecords ?? 5000, maxBytes: this.options.maxBytes ?? 1024 * 1024, autoCommit, encoding: 'base64', ...(ack ? { ack } : {}), ...(watch ? { watch, waitMs: 0 } : {}) },
          waitMs: this.options.maxWaitTimeInMs ?? 5000,
          signal: this.polling.signal,
        });
      } catch (err) {
        if (!this.running) break;
        if (err instanceof NotFoundError && err.code === 'UNKNOWN_MEMBER_ID') {
          // Expired (or removed): everything it owned may be someone else's now. Join again.
          ack = undefined;
          watch = undefined;
          await this.assign({ ...this.requireMember(), assignment: [] });
          await this.join();
          continue;
        }
        this.reportError(err);
        await sleep(backoffDelay(failures++, this.options.retry ?? {}));
        continue;
      }
      ack = undefined;
      await this.assign(reply, reply.records);
      const records = reply.records.filter((r) => r.offset >= (this.processed.get(tpKey(r.topic, r.partition)) ?? 0));
      const withheld = records.filter((r) => this.paused.has(tpKey(r.topic, r.partition)) || this.paused.has(r.topic));
      const toProcess = records.filter((r) => !withheld.includes(r));
      const outcome = await this.withHeartbeats(() => this.process(toProcess, config));
      if (outcome === 'complete' && withheld.length === 0) {
        ack = reply.pollId;
        failures = 0;
      } else {
        // Not acknowledged: the batch comes again. Commit what was processed, so another member
        // taking these partitions meanwhile does not process it again.
        if (autoCommit) await this.commitProcessed(reply.records);
        if (typeof outcome === 'object') {
          this.reportError(outcome.error);
          await sleep(backoffDelay(failures++, this.options.retry ?? {}));
        } else if (toProcess.length === 0) {
          // Only paused partitions have records: wait instead of fetching them again at once.
          await sleep(Math.min(1000, this.options.maxWaitTimeInMs ?? 5000));
        }
      }
      if (reply.records.length === 0) await config.onIdle?.();
      watch = reply.watch;
      if (watch && reply.records.length === 0 && this.running) await sleep(this.options.idlePollIntervalMs ?? IDLE_POLL_INTERVAL_MS);
    }
    await this.leave(ack);
  }

  /**
   * Runs the handlers. 'stopped': a partition was paused, the consumer stopped or eachBatch left
   * records unresolved; `error`: a handler threw. Either way processing stops there.
   */
  private async process(records: PolledRecord[], config: RunConfig): Promise<'complete' | 'stopped' | { error: unknown }> {
    const byPartition = new Map<string, PolledRecord[]>();
    for (const record of records) {
      const key = tpKey(record.topic, record.partition);
      byPartition.set(key, [...(byPartition.get(key) ?? []), record]);
    }
    const heartbeat = () => this.heartbeat();
    for (const [key, partitionRecords] of byPartition) {
      const { topic, partition } = partitionRecords[0]!;
      const pause = () => {
        this.paused.add(key);
        return () => this.paused.delete(key);
      };
      const messages = partitionRecords.map(toMessage);
      try {
        if (config.eachMessage) {
          for (const message of messages) {
            if (!this.running || this.paused.has(key)) break;
            await config.eachMessage({ topic, partition, message, heartbeat, pause });
            this.processed.set(key, message.offset + 1);
          }
        } else {
          const resolveOffset = (offset: number) => this.processed.set(key, Math.max(this.processed.get(key) ?? 0, offset + 1));
          await config.eachBatch!({
            batch: { topic, partition, messages, firstOffset: () => messages[0]?.offset ?? null, lastOffset: () => messages.at(-1)?.offset ?? null },
            resolveOffset, heartbeat, pause,
            isRunning: () => this.running,
          });
          if (config.eachBatchAutoResolve ?? true) resolveOffset(messages.at(-1)!.offset);
        }
      } catch (error) {
        return { error };
      }
      if ((this.processed.get(key) ?? 0) <= messages.at(-1)!.offset) return 'stopped';
    }
    return 'complete';
  }

  /** Heartbeats every heartbeatIntervalMs while `work` runs, so long processing keeps the session. */
  private async withHeartbeats<T>(work: () => Promise<T>): Promise<T> {
    const timer = setInterval(() => void this.heartbeat().catch((err) => this.reportError(err)), this.requireMember().heartbeatIntervalMs);
    try {
      return await work();
    } finally {
      clearInterval(timer);
    }
  }

  private async heartbeat(): Promise<void> {
    const member = this.requireMember();
    // No `owned` list: everything stays held until the next poll, after this batch.
    const reply = await this.groupRequest<MemberReply>('POST', `/members/${member.memberId}/heartbeat`, { body: { memberEpoch: member.memberEpoch } });
    if (this.member?.memberId === reply.memberId) this.member = { ...reply, assignment: this.member.assignment };
  }

  /** Commits, per partition of the batch, the offset after its last processed record. */
  private async commitProcessed(records: PolledRecord[]): Promise<void> {
    const offsets = [...new Set(records.map((r) => tpKey(r.topic, r.partition)))].flatMap((key) => {
      const offset = this.processed.get(key);
      const record = records.find((r) => tpKey(r.topic, r.partition) === key)!;
      return offset !== undefined && offset > record.offset ? [{ topic: record.topic, partition: record.partition, offset }] : [];
    });
    if (offsets.length === 0) return;
    try {
      await this.commitOffsets(offsets);
    } catch (err) {
      // Fenced: the partitions moved on; their new owner starts from the last commit (at least once).
      if (!(err instanceof ConflictError || err instanceof NotFoundError)) this.reportError(err);
    }
  }

  private async leave(ack: string | undefined): Promise<void> {
    const member = this.member;
    if (!member) return;
    try {
      await this.groupRequest('DELETE', `/members/${member.memberId}`, { query: { ack } });
    } finally {
      await this.assign({ ...member, assignment: [] });
      this.member = undefined;
    }
  }

  /**
   * Takes a reply's assignment, calling the revoke and assign callbacks for what changed. A poll's
   * records may come from partitions being revoked, which the member owns until its next poll
   * releases them: those count as held until then.
   */
  private async assign(reply: MemberReply, records: PolledRecord[] = []): Promise<void> {
    const next = new Set([...reply.assignment.flatMap(({ topic, partitions }) => partitions.map((p) => tpKey(topic, p))), ...records.map((r) => tpKey(r.topic, r.partition))]);
    const revoked = [...this.owned].filter((key) => !next.has(key));
    const assigned = [...next].filter((key) => !this.owned.has(key));
    this.member = reply;
    this.owned = next;
    // A partition that comes back later starts from the group's committed offset, not from here.
    for (const key of revoked) this.processed.delete(key);
    if (revoked.length > 0) await this.options.onPartitionsRevoked?.(grouped(revoked));
    if (assigned.length > 0) await this.options.onPartitionsAssigned?.(grouped(assigned));
  }

  private requireMember(): MemberReply {
    if (!this.member) throw new Error('the consumer is not running: call run() first');
    return this.member;
  }

  private keysOf(topics: Array<{ topic: string; partitions?: number[] }>): string[] {
    return topics.flatMap(({ topic, partitions }) => (partitions ? partitions.map((p) => tpKey(topic, p)) : [topic]));
  }

  private reportError(err: unknown): void {
    (this.options.onError ?? ((e) => console.error(e instanceof QueueError ? `${e.code}: ${e.message}` : e)))(err);
  }
}

function toMessage(record: PolledRecord): KafkaMessage {
  return {
    key: record.key === null ? null : fromBase64(record.key),
    value: record.value === null ? null : fromBase64(record.value),
    headers: record.headers,
    offset: record.offset,
    timestamp: record.timestamp,
  };
}

function grouped(keys: string[]): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const key of keys) {
    const at = key.lastIndexOf(':');
    const topic = key.slice(0, at);
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(key.slice(at + 1))]);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
}
