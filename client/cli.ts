// s3kq: the queue's command line, thin over the client (kcat / kafka-console-* for this queue).
//   s3kq topics create orders --partitions 3        s3kq produce orders -K: < lines.txt
//   s3kq consume orders --from-beginning            s3kq groups describe billing
// The endpoint: --url or QUEUE_URL (default the local server). Auth: --api-key or QUEUE_API_KEY;
// SigV4 with the default AWS credential chain for Function URLs (*.on.aws) or with --iam.
// Exit codes: 0 success, 1 the request failed (the server's code is printed), 2 invalid usage,
// 3 not found (unknown topic, group, ...), 4 conflict (exists already, group not empty, ...).
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { fromUtf8 } from './bytes.ts';
import { ConflictError, NotFoundError, QueueError } from './errors.ts';
import { Queue, type Auth, type KafkaMessage, type Message, type ResetTarget } from './index.ts';

interface GlobalOptions {
  url: string;
  apiKey?: string;
  iam?: boolean;
  json?: boolean;
}

const EXIT = { failed: 1, usage: 2, notFound: 3, conflict: 4 } as const;

const program = new Command('s3kq')
  .description('Command line for the serverless Kafka-semantics queue')
  .addOption(new Option('--url <url>', 'the queue base URL').env('QUEUE_URL').default('http://127.0.0.1:8787'))
  .addOption(new Option('--api-key <key>', 'API key (stacks deployed with authMode api-key)').env('QUEUE_API_KEY'))
  .option('--iam', 'sign requests with SigV4 using the default AWS credential chain (automatic for *.on.aws URLs)')
  .option('--json', 'machine-readable output (JSON); errors as {"error":{...}} on stderr')
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text) });

const globals = () => program.opts<GlobalOptions>();

function queue(): Queue {
  const { url, apiKey, iam } = globals();
  let auth: Auth | undefined;
  if (apiKey) auth = { type: 'api-key', key: apiKey };
  else if (iam || /\.on\.aws$/.test(new URL(url).hostname)) auth = { type: 'sigv4' };
  return new Queue({ url, auth });
}

/** Prints `data` as JSON with --json, else the human form. */
function print(data: unknown, human: () => string): void {
  process.stdout.write(`${globals().json ? JSON.stringify(data) : human()}\n`);
}

function table(header: string[], rows: Array<Array<string | number | null>>): string {
  const cells = [header, ...rows.map((row) => row.map((cell) => (cell === null ? '-' : String(cell))))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** `key=value` pairs of a repeated option. */
function pairs(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at < 1) throw new CommanderError(EXIT.usage, 'usage', `expected key=value, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

const integer = (name: string) => (value: string) => {
  if (!/^-?\d+$/.test(value)) throw new CommanderError(EXIT.usage, 'usage', `${name} must be an integer, got ${JSON.stringify(value)}`);
  return Number(value);
};

// ---- topics ----
const topics = program.command('topics').description('create, list, describe, alter and delete topics');

topics.command('list').description('list topics').action(async () => {
  const list = await queue().admin().listTopicsWithPartitions();
  print({ topics: list }, () => table(['TOPIC', 'PARTITIONS'], list.map((t) => [t.name, t.partitions])));
});

topics.command('create <name>').description('create a topic')
  .option('-p, --partitions <n>', 'partition count', integer('--partitions'), 1)
  .option('-c, --config <key=value>', 'topic config (Kafka names), repeatable', pairs)
  .action(async (name: string, options: { partitions: number; config?: Record<string, string> }) => {
    await queue().admin().createTopic(name, options.partitions, options.config);
    print({ name, partitions: options.partitions }, () => `created topic ${name} with ${options.partitions} partition(s)`);
  });

topics.command('describe <name>').description('partitions (log start, high watermark, segments, bytes) and config').action(async (name: string) => {
  const topic = await queue().admin().describeTopic(name);
  print(topic, () => [
    `topic ${topic.name}`,
    table(['PARTITION', 'LOG-START', 'HIGH-WATERMARK', 'SEGMENTS', 'BYTES'], topic.partitions.map((p) => [p.partition, p.logStartOffset, p.highWatermark, p.segments, p.bytes])),
    '',
    table(['CONFIG', 'VALUE'], Object.entries(topic.config).map(([key, value]) => [key, String(value)])),
  ].join('\n'));
});

topics.command('alter <name>').description('change config (key= restores the default) or grow the partition count')
  .option('-c, --config <key=value>', 'set a config key, or restore its default with key=, repeatable', pairs)
  .option('-p, --partitions <n>', 'grow to this many partitions', integer('--partitions'))
  .action(async (name: string, options: { config?: Record<string, string>; partitions?: number }) => {
    if (!options.config && options.partitions === undefined) throw new CommanderError(EXIT.usage, 'usage', 'give --config and/or --partitions');
    const admin = queue().admin();
    if (options.partitions !== undefined) await admin.createPartitions({ topicPartitions: [{ topic: name, count: options.partitions }] });
    const config = options.config ? await admin.alterTopicConfig(name, Object.fromEntries(Object.entries(options.config).map(([k, v]) => [k, v === '' ? null : v]))) : undefined;
    print({ name, ...(options.partitions !== undefined ? { partitions: options.partitions } : {}), ...(config ? { config } : {}) }, () => `altered topic ${name}`);
  });

topics.command('delete <name>').description('delete a topic and its records').action(async (name: string) => {
  await queue().admin().deleteTopics({ topics: [name] });
  print({ deleted: name }, () => `deleted topic ${name}`);
});

// ---- produce ----
program.command('produce <topic>').description('produce one record per line of stdin (or of --file)')
  .option('-K, --key-separator <sep>', 'split each line at the first <sep> into key and value (kcat -K)')
  .option('-H, --header <key=value>', 'a header on every record, repeatable', pairs)
  .option('-p, --partition <n>', 'write every record to this partition', integer('--partition'))
  .option('-f, --file <path>', 'read lines from a file (with a progress bar) instead of stdin')
  .option('--linger-ms <ms>', 'how long records wait to share a request', integer('--linger-ms'), 5)
  .addOption(new Option('--acks <acks>', 'acknowledgement level (0: not idempotent, a retry may duplicate)').choices(['all', '1', '0']).default('all'))
  .action(async (topic: string, options: { keySeparator?: string; header?: Record<string, string>; partition?: number; file?: string; lingerMs: number; acks: 'all' | '1' | '0' }) => {
    // Idempotent (retries never duplicate) except with acks 0, which cannot be.
    const producer = queue().producer({ lingerMs: options.lingerMs, acks: options.acks, idempotent: options.acks !== '0' });
    const input = options.file ? createReadStream(options.file) : process.stdin;
    const bar = options.file && !globals().json ? new cliProgress.SingleBar({ format: 'producing [{bar}] {percentage}% | {value}/{total} bytes | {records} records', stream: process.stderr, noTTYOutput: false }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(options.file ? statSync(options.file).size : 0, 0, { records: 0 });
    let records = 0;
    let bytesRead = 0;
    const sends: Array<Promise<unknown>> = [];
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      bytesRead += Buffer.byteLength(line) + 1;
      sends.push(producer.send({ topic, messages: [messageOf(line, options)] }).then(() => bar?.update(bytesRead, { records: ++records })));
    }
    await producer.disconnect();
    const results = await Promise.allSettled(sends);
    bar?.stop();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    print({ topic, records: results.length }, () => `produced ${results.length} record(s) to ${topic}`);
  });

function messageOf(line: string, options: { keySeparator?: string; header?: Record<string, string>; partition?: number }): Message {
  const at = options.keySeparator ? line.indexOf(options.keySeparator) : -1;
  return {
    ...(at >= 0 ? { key: line.slice(0, at), value: line.slice(at + options.keySeparator!.length) } : { value: line }),
    ...(options.header ? { headers: options.header } : {}),
    ...(options.partition !== undefined ? { partition: options.partition } : {}),
  };
}

// ---- consume ----
interface ConsumeOptions {
  fromBeginning?: boolean;
  group?: string;
  follow?: boolean;
  offset?: number;
  timestamp?: number;
  partition?: number;
  count?: number;
  format: string;
}

interface Printable extends KafkaMessage {
  topic: string;
  partition: number;
}

program.command('consume <topic>').description('print records; exits at the end of the log unless --follow')
  .option('-b, --from-beginning', 'start at the log start (default: the end, only new records)')
  .option('-g, --group <id>', 'consume as a member of this group (committing what it printed)')
  .option('-F, --follow', 'keep waiting for new records')
  .option('-o, --offset <n>', 'start at this offset (each partition; without --group)', integer('--offset'))
  .option('-t, --timestamp <ms>', 'start at the first record at or after this time (without --group)', integer('--timestamp'))
  .option('-p, --partition <n>', 'read only this partition (without --group)', integer('--partition'))
  .option('-c, --count <n>', 'exit after this many records', integer('--count'))
  .option('--format <format>', 'value, json (one object per line), or a kcat format string: %t topic %p partition %o offset %k key %s value %T timestamp %h headers, \\n \\t', 'value')
  .action(async (topic: string, options: ConsumeOptions) => {
    const write = formatter(globals().json ? 'json' : options.format);
    if (options.group) {
      if (options.offset !== undefined || options.timestamp !== undefined || options.partition !== undefined) throw new CommanderError(EXIT.usage, 'usage', '--offset, --timestamp and --partition read without a group; a group starts at its committed offsets (reset them with groups reset)');
      await consumeInGroup(topic, options, write);
    } else {
      await consumePartitions(topic, options, write);
    }
  });

function formatter(format: string): (record: Printable) => void {
  const text = (bytes: Uint8Array | null) => (bytes === null ? '' : fromUtf8(bytes));
  if (format === 'value') return (r) => process.stdout.write(`${text(r.value)}\n`);
  if (format === 'json') {
    return (r) => process.stdout.write(`${JSON.stringify({ topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key === null ? null : text(r.key), value: r.value === null ? null : text(r.value), headers: r.headers })}\n`);
  }
  const fields: Record<string, (r: Printable) => string> = {
    t: (r) => r.topic, p: (r) => String(r.partition), o: (r) => String(r.offset), k: (r) => text(r.key), s: (r) => text(r.value), T: (r) => String(r.timestamp),
    h: (r) => Object.entries(r.headers).map(([k, v]) => `${k}=${v ?? ''}`).join(','), '%': () => '%',
  };
  const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };
  return (r) => process.stdout.write(format.replace(/%(.)|\\(.)/g, (all, field: string | undefined, escaped: string | undefined) => (field !== undefined ? fields[field]?.(r) ?? all : escapes[escaped!] ?? all)));
}

/** Reads partitions directly (no group): from the start, an offset, a time, or the end. */
async function consumePartitions(topic: string, options: ConsumeOptions, write: (record: Printable) => void): Promise<void> {
  const q = queue();
  const { partitions } = await q.admin().describeTopic(topic);
  const chosen = partitions.filter((p) => options.partition === undefined || p.partition === options.partition);
  if (chosen.length === 0) throw new NotFoundError(`topic ${topic} has no partition ${options.partition}`, 'UNKNOWN_PARTITION', 404, false);
  const byTime = options.timestamp !== undefined ? new Map((await q.admin().fetchTopicOffsetsByTimestamp(topic, options.timestamp)).map((o) => [o.partition, o.offset])) : undefined;
  const positions = new Map(chosen.map((p) => [p.partition, options.offset ?? byTime?.get(p.partition) ?? (options.fromBeginning ? p.logStartOffset : p.highWatermark)]));
  let printed = 0;
  for (;;) {
    let caughtUp = true;
    for (const [partition, offset] of positions) {
      const reply = await q.transport.request<{ records: Array<{ offset: number; timestamp: number; key: string | null; value: string | null; headers: Record<string, string | null> }>; nextOffset: number; highWatermark: number }>(
        'GET', `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records`, { query: { offset, encoding: 'base64', ...(options.follow && positions.size === 1 ? { waitMs: 5000 } : {}) }, waitMs: 5000 });
      for (const record of reply.records) {
        write({ topic, partition, offset: record.offset, timestamp: record.timestamp, headers: record.headers, key: record.key === null ? null : Buffer.from(record.key, 'base64'), value: record.value === null ? null : Buffer.from(record.value, 'base64') });
        if (++printed === options.count) return;
      }
      positions.set(partition, reply.nextOffset);
      if (reply.nextOffset < reply.highWatermark) caughtUp = false;
    }
    if (caughtUp && !options.follow) return;
    // Several partitions followed: look again shortly rather than long-poll one while others wait.
    if (caughtUp && positions.size > 1) await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Consumes as a group member: exits (leaving, with what it printed committed) at the end unless --follow. */
async function consumeInGroup(topic: string, options: ConsumeOptions, write: (record: Printable) => void): Promise<void> {
  let failure: unknown;
  const consumer = queue().consumer({ groupId: options.group!, maxWaitTimeInMs: options.follow ? 5000 : 500, onError: (err) => (failure ??= err) });
  let printed = 0;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= consumer.disconnect());
  await consumer.subscribe({ topics: [topic], fromBeginning: options.fromBeginning ?? false });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (printed === options.count) return;
        write({ ...message, topic, partition });
        if (++printed === options.count) void stop().then(resolve);
      },
      onIdle: () => void (!options.follow && stop().then(resolve)),
    });
  });
  await done;
  if (failure) throw failure;
}

// ---- groups ----
const groups = program.command('groups').description('list, describe (with lag), reset and delete consumer groups');

groups.command('list').description('list groups').action(async () => {
  const { groups: list } = await queue().admin().listGroups();
  print({ groups: list }, () => table(['GROUP', 'STATE', 'MEMBERS'], list.map((g) => [g.groupId, g.state, g.members])));
});

groups.command('describe <group>').description('members, committed offsets and lag per partition').action(async (groupId: string) => {
  const group = await queue().admin().describeGroup(groupId);
  const totalLag = group.offsets.reduce((sum, o) => sum + (o.lag ?? 0), 0);
  print(group, () => [
    `group ${group.group}: ${group.state}, ${group.members.length} member(s), epoch ${group.groupEpoch}, assignor ${group.assignor}, total lag ${totalLag}`,
    '',
    table(['TOPIC', 'PARTITION', 'COMMITTED', 'HIGH-WATERMARK', 'LAG'], group.offsets.map((o) => [o.topic, o.partition, o.committedOffset, o.highWatermark, o.lag])),
    ...(group.members.length > 0 ? ['', table(['MEMBER', 'EPOCH', 'ASSIGNMENT'], group.members.map((m) => [m.memberId, m.memberEpoch, m.assignment.map((a) => `${a.topic}:${a.partitions.join(',')}`).join(' ')]))] : []),
  ].join('\n'));
});

groups.command('reset <group>').description("move an empty group's offsets of a topic")
  .requiredOption('--topic <topic>', 'the topic')
  .option('--to <where>', 'earliest, latest, or an offset', 'earliest')
  .option('-t, --timestamp <ms>', 'the first offset at or after this time', integer('--timestamp'))
  .option('-p, --partition <n>', 'only this partition', integer('--partition'))
  .action(async (groupId: string, options: { topic: string; to: string; timestamp?: number; partition?: number }) => {
    let to: ResetTarget;
    if (options.timestamp !== undefined) to = { timestamp: options.timestamp };
    else if (options.to === 'earliest' || options.to === 'latest') to = options.to;
    else to = { offset: integer('--to')(options.to) };
    const offsets = await queue().admin().resetOffsets({ groupId, topic: options.topic, to, ...(options.partition !== undefined ? { partitions: [options.partition] } : {}) });
    print({ offsets }, () => table(['TOPIC', 'PARTITION', 'OFFSET'], offsets.map((o) => [o.topic, o.partition, o.offset])));
  });

groups.command('delete <group>').description('delete an empty group and its offsets').action(async (groupId: string) => {
  await queue().admin().deleteGroups([groupId]);
  print({ deleted: groupId }, () => `deleted group ${groupId}`);
});

function exitCodeOf(err: unknown): number {
  if (err instanceof NotFoundError) return EXIT.notFound;
  if (err instanceof ConflictError) return EXIT.conflict;
  return EXIT.failed;
}

/** Exits once everything written to stdout and stderr is out (a pipe takes writes asynchronously). */
async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
  process.exit(code);
}

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version print and succeed; commander has already printed its own usage errors.
    if (err.code === 'usage') process.stderr.write(`error: ${err.message}\n`);
    await exit(err.exitCode === 0 ? 0 : EXIT.usage);
  }
  if (globals().json) {
    process.stderr.write(`${JSON.stringify({ error: err instanceof QueueError ? { code: err.code, status: err.status, message: err.message } : { code: 'CLIENT_ERROR', message: String(err) } })}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof QueueError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err)}\n`);
  }
  await exit(exitCodeOf(err));
}
await exit(0);
