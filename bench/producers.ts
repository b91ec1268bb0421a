// Benchmark section for idempotent producers and transactions: what idempotence adds to a produce
// request at 1 KiB and 1 MiB (AWS calls, DynamoDB units, $ per GiB in+out), interleaved with plain
// requests in the same loop; and what a transaction over 1, 4 and 16 partitions costs per commit,
// against plain and idempotent requests carrying the same records, with the commit's latency.
// Producer ids are created before the measured loops (init is not counted). It reports; it asserts
// nothing.
import { randomBytes } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { HEAD_OFFSET, logPartitionKey } from '../lib/log/keys.ts';
import type { ProduceRecord, ProducerRequest } from '../lib/log/producer.ts';
import { sequenceKey, transactionKey, type ProducerIdentity } from '../lib/producers/producer-store.ts';
import { DEFAULT_TRANSACTION_TIMEOUT_MS } from '../lib/producers/transactions.ts';
import { getTopic } from '../lib/topics/topic-store.ts';
import { addCosts, costPerRequest, type CostBreakdown, type PriceTable } from './cost-model.ts';
import {
  batchOf, benchTopic, callList, formatBytes, inOutCost, itemBytes, markdownTable, ratio, RECORD_BYTES, renderSanity, rotated, round, Series, usageOf, usd,
  type LogBenchContext, type Sanity, type SeriesResult, type SizeCost, type SizeSpec,
} from './log.ts';

export const IDEMPOTENT_SIZES: SizeSpec[] = [
  { bytes: 1024, ops: 100, warmup: 10 },
  { bytes: 1024 * 1024, ops: 20, warmup: 3 },
];
export const TRANSACTION_PARTITIONS = [1, 4, 16];
const TRANSACTIONS = 30;
const TRANSACTION_WARMUP = 3;

export interface ProducersBenchContext extends LogBenchContext {
  prices: PriceTable;
  scale: number;
}

interface IdempotentSizeResult {
  bytes: number;
  label: string;
  recordsPerRequest: number;
  plain: SeriesResult;
  idempotent: SeriesResult;
  plainFetch: SeriesResult;
  idempotentFetch: SeriesResult;
  plainCost: SizeCost;
  idempotentCost: SizeCost;
}

interface TransactionResult {
  partitions: number;
  transactions: number;
  /** Plain and idempotent requests carrying the transaction's records (one 1 KiB record per partition). */
  plain: SeriesResult;
  idempotent: SeriesResult;
  /** The transactional produce request: sequence checks, registration (pins), batch commits. */
  produce: SeriesResult;
  /** EndTxn(commit): decision, one marker per partition, close. */
  commit: SeriesResult;
  /** Both requests of one transaction. */
  transaction: SeriesResult;
  /** Two HTTP requests (produce, commit), each one Lambda invocation lasting its p50. */
  costPerTransaction: CostBreakdown;
  costPerPlainRequest: CostBreakdown;
  /** Sizes of the items a transaction writes, read at their largest (transaction open). */
  itemBytes: Record<string, number>;
}

let run = 0;

/** Plain and idempotent produce requests of `spec.bytes`, interleaved, then fetches of both. */
async function benchIdempotentSize(ctx: ProducersBenchContext, spec: SizeSpec, sanity: Sanity[]): Promise<IdempotentSizeResult> {
  const { storage, meter, services } = ctx;
  const { producer, fetcher } = services;
  const label = formatBytes(spec.bytes);
  const records = batchOf(spec.bytes, randomBytes(Math.min(spec.bytes, RECORD_BYTES))).map((r) => ({ ...r, partition: 0 }));
  const payloadBytes = records.length * Math.min(spec.bytes, RECORD_BYTES);
  const topics = { plain: await benchTopic(storage, `plain-${spec.bytes}`), idempotent: await benchTopic(storage, `idempotent-${spec.bytes}`) };
  const { producerId, epoch } = await services.producers.store.create(0);
  const s = {
    plain: new Series('produce acks=all', meter),
    idempotent: new Series('produce acks=all, idempotent', meter),
    plainFetch: new Series('fetch', meter),
    idempotentFetch: new Series('fetch of idempotent batches', meter),
  };
  const bases = { plain: [] as number[], idempotent: [] as number[] };
  const total = spec.warmup + spec.ops;
  ctx.progress(`idempotent produce ${label}: ${spec.warmup} warm-up + ${spec.ops} measured iterations × 2 variants`);
  for (let i = 0; i < total; i++) {
    const record = i >= spec.warmup;
    const request: ProducerRequest = { producerId, producerEpoch: epoch, sequences: [{ partition: 0, baseSequence: i * records.length }] };
    await rotated(i, [
      async () => void bases.plain.push((await s.plain.measure(payloadBytes, () => producer.produce(topics.plain, records, 'all'), record))[0]!.offset),
      async () => void bases.idempotent.push((await s.idempotent.measure(payloadBytes, () => producer.produce(topics.idempotent, records, 'all', request), record))[0]!.offset),
    ]);
  }
  const outOfPlace = (b: number[]) => b.filter((base, i) => base !== i * records.length).length;
  sanity.push({ check: `idempotent produce ${label}: offsets contiguous from 0 on both topics`, ok: outOfPlace(bases.plain) + outOfPlace(bases.idempotent) === 0, detail: `${outOfPlace(bases.plain)} plain and ${outOfPlace(bases.idempotent)} idempotent requests out of place` });

  let fetchErrors = 0;
  for (let i = 0; i < total; i++) {
    const record = i >= spec.warmup;
    const fetchOne = (series: Series, topic: string, offset: number) => async () => {
      const res = await series.measure(payloadBytes, () => fetcher.fetch({ topic, partition: 0, offset, maxRecords: records.length, maxBytes: payloadBytes, waitMs: 0 }), record);
      if (res.records.length !== records.length || res.records[0]!.offset !== offset) fetchErrors++;
    };
    await rotated(i, [fetchOne(s.plainFetch, topics.plain, bases.plain[i]!), fetchOne(s.idempotentFetch, topics.idempotent, bases.idempotent[i]!)]);
  }
  sanity.push({ check: `idempotent produce ${label}: every batch read back whole at its offset`, ok: fetchErrors === 0, detail: `${fetchErrors} mismatches in ${2 * total} fetches` });

  const result = { plain: s.plain.result(), idempotent: s.idempotent.result(), plainFetch: s.plainFetch.result(), idempotentFetch: s.idempotentFetch.result() };
  return {
    bytes: spec.bytes,
    label,
    recordsPerRequest: records.length,
    ...result,
    plainCost: inOutCost(label, payloadBytes, result.plain, result.plainFetch, ctx.prices),
    idempotentCost: inOutCost(label, payloadBytes, result.idempotent, result.idempotentFetch, ctx.prices),
  };
}

/**
 * Transactions writing one 1 KiB record to each of `partitions` partitions and committing,
 * interleaved with a plain and an idempotent request carrying the same records.
 */
async function benchTransactions(ctx: ProducersBenchContext, partitions: number, spec: { transactions: number; warmup: number }, sanity: Sanity[]): Promise<TransactionResult> {
  const { storage, meter, services } = ctx;
  const { producer, fetcher, producers } = services;
  const { transactions: coordinator } = producers;
  const value = randomBytes(RECORD_BYTES);
  const records: ProduceRecord[] = Array.from({ length: partitions }, (_, partition) => ({ key: null, value, headers: [], partition }));
  const payloadBytes = partitions * RECORD_BYTES;
  const topics = { plain: await benchTopic(storage, `txn-plain-${partitions}`, partitions), idempotent: await benchTopic(storage, `txn-idempotent-${partitions}`, partitions), transactional: await benchTopic(storage, `txn-${partitions}`, partitions) };
  const idempotent = await producers.store.create(0);
  const transactionalId = `bench-${partitions}-${++run}-${randomBytes(3).toString('hex')}`;
  const txn: ProducerIdentity = await coordinator.init(transactionalId, DEFAULT_TRANSACTION_TIMEOUT_MS);
  const request = (identity: ProducerIdentity, i: number, tid?: string): ProducerRequest => ({ ...identity, sequences: records.map((_, partition) => ({ partition, baseSequence: i })), transactionalId: tid });
  const s = {
    plain: new Series('produce acks=all', meter),
    idempotent: new Series('produce acks=all, idempotent', meter),
    produce: new Series('transactional produce (sequence checks, registration, batch commits)', meter),
    commit: new Series('commit (decision, markers, close)', meter),
    transaction: new Series('transaction: produce + commit', meter),
  };
  const runTransaction = async (i: number, record: boolean) => {
    await s.produce.measure(payloadBytes, () => producer.produce(topics.transactional, records, 'all', request(txn, i, transactionalId)), record);
    await s.commit.measure(payloadBytes, () => coordinator.end(txn, transactionalId, 'commit'), record);
  };
  const total = spec.warmup + spec.transactions;
  ctx.progress(`transactions over ${partitions} partitions: ${spec.warmup} warm-up + ${spec.transactions} measured iterations × 3 variants`);
  for (let i = 0; i < total; i++) {
    const record = i >= spec.warmup;
    await rotated(i, [
      async () => void (await s.plain.measure(payloadBytes, () => producer.produce(topics.plain, records, 'all'), record)),
      async () => void (await s.idempotent.measure(payloadBytes, () => producer.produce(topics.idempotent, records, 'all', request({ producerId: idempotent.producerId, producerEpoch: idempotent.epoch }, i)), record)),
      () => s.transaction.measure(payloadBytes, () => runTransaction(i, record), record),
    ]);
  }

  // One more transaction, unmeasured, to read the items it writes while it is open.
  const { topicId } = await getTopic(storage, topics.transactional);
  const last = logPartitionKey(topicId, partitions - 1);
  await producer.produce(topics.transactional, records, 'all', request(txn, total, transactionalId));
  const read = async (table: string, key: Record<string, unknown>) => itemBytes((await storage.ddb.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item);
  const { groupsTable, logTable } = storage.config;
  const sizes = {
    'coordinator (transaction open)': await read(groupsTable, transactionKey(transactionalId)),
    'sequence state': await read(groupsTable, sequenceKey(txn.producerId, last)),
    'partition head (pinned)': await read(logTable, { p: last, o: HEAD_OFFSET }),
    'index entry': await read(logTable, { p: last, o: 2 * total }),
  };
  await coordinator.end(txn, transactionalId, 'commit');
  sizes['coordinator (transaction open)'] = Math.max(sizes['coordinator (transaction open)'], await read(groupsTable, transactionKey(transactionalId)));
  sizes['index entry'] = Math.max(sizes['index entry'], await read(logTable, { p: last, o: 2 * total + 1 }));

  // Every partition: total + 1 committed records, each followed by its commit marker; all stable.
  const anomalies: string[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    let [records, aborted, offset] = [0, 0, 0];
    for (;;) {
      const res = await fetcher.fetch({ topic: topics.transactional, partition, offset, maxRecords: 10_000, maxBytes: 64 * 1024 * 1024, waitMs: 0, isolation: 'read_committed' });
      records += res.records.length;
      aborted += res.abortedTransactions.length;
      if (res.nextOffset === offset || res.nextOffset >= res.lastStableOffset) {
        if (records !== total + 1 || res.lastStableOffset !== res.highWatermark || res.highWatermark !== 2 * (total + 1) || aborted > 0) {
          anomalies.push(`partition ${partition}: ${records} records, high watermark ${res.highWatermark}, last stable offset ${res.lastStableOffset}, ${aborted} aborted`);
        }
        break;
      }
      offset = res.nextOffset;
    }
  }
  sanity.push({ check: `transactions over ${partitions} partitions: read_committed sees all ${total + 1} committed records, each followed by its marker, nothing left open`, ok: anomalies.length === 0, detail: anomalies.length === 0 ? `${partitions} partitions read` : anomalies.slice(0, 3).join('; ') });

  const result = { plain: s.plain.result(), idempotent: s.idempotent.result(), produce: s.produce.result(), commit: s.commit.result(), transaction: s.transaction.result() };
  const perRequest = (x: SeriesResult) => costPerRequest(usageOf(x), ctx.prices);
  return { partitions, transactions: spec.transactions, ...result, costPerTransaction: addCosts(perRequest(result.produce), perRequest(result.commit)), costPerPlainRequest: perRequest(result.plain), itemBytes: sizes };
}

const wcu = (x: SeriesResult) => `${x.derivedWriteUnitsPerOp} / ${x.reportedWriteUnitsPerOp}`;
const maxWcu = (x: SeriesResult) => Math.max(x.derivedWriteUnitsPerOp, x.reportedWriteUnitsPerOp);
const ddbCalls = (x: SeriesResult) => round(Object.entries(x.callsPerOp).filter(([op]) => op.startsWith('dynamodb.')).reduce((n, [, c]) => n + c, 0), 4);

function renderIdempotent(sizes: IdempotentSizeResult[]): string {
  const rows = sizes.flatMap((z) => [z.plain, z.idempotent].map((x) => [
    x.name, z.label, x.count, x.p50Ms, x.p99Ms, ratio(x.p50Ms, z.plain.p50Ms), callList(x.callsPerOp), x.awsCallsPerOp, ratio(ddbCalls(x), ddbCalls(z.plain)), wcu(x), ratio(maxWcu(x), maxWcu(z.plain)), `${x.derivedReadUnitsPerOp} / ${x.reportedReadUnitsPerOp}`,
  ]));
  const costRows = sizes.flatMap((z) => [[z.plain, z.plainCost], [z.idempotent, z.idempotentCost]] as const).map(([x, c]) => [
    x.name, c.label, usd(c.inPerGiB.total), usd(c.outPerGiB.total), usd(c.inPlusOutPerGiB), `DDB ${usd(c.inPerGiB.dynamodbWrites + c.inPerGiB.dynamodbReads)}, S3 ${usd(c.inPerGiB.s3Requests)}, Lambda ${usd(c.inPerGiB.lambdaRequests + c.inPerGiB.lambdaDuration)}`,
    ratio(c.inPlusOutPerGiB, sizes.find((z) => z.label === c.label)!.plainCost.inPlusOutPerGiB),
  ]);
  return [
    '### Idempotent produce against plain produce (domain objects, sequential, one partition, acks=all)',
    '',
    'Each iteration sends one plain and one idempotent request of the same 1 KiB records (rotated order); ratios are to the plain request of the same run. The idempotent request carries its producer id, epoch and base sequence; its sequence check (GetItem of the sequence state, run while the segment uploads) and the sequence update committed with the index entry (TransactWriteItems of 2 items instead of a PutItem) are the additions. WCU "derived" counts 1 per write attempt and 2 per TransactWriteItems item (assumes every item is under 1 KB; see the item sizes below); "reported" is DynamoDB Local\'s ConsumedCapacity.',
    '',
    markdownTable(['path', 'size', 'ops', 'p50 ms', 'p99 ms', 'p50 ÷ plain', 'AWS calls per request (SDK attempts)', 'total', 'DDB calls ÷ plain', 'WCU derived / reported', 'WCU ÷ plain', 'RCU derived / reported'], rows),
    '',
    'Cost per GiB (same model as the log section: in = the produce request, out = a fetch of its batch, one Lambda invocation each lasting the measured p50 on the emulators):',
    '',
    markdownTable(['path', 'request size', 'in $/GiB', 'out $/GiB', 'in+out $/GiB', 'in: breakdown', 'in+out ÷ plain'], costRows),
  ].join('\n');
}

function renderTransactions(results: TransactionResult[]): string {
  const rows = results.flatMap((t) => [t.plain, t.idempotent, t.produce, t.commit, t.transaction].map((x) => [
    x.name, t.partitions, callList(x.callsPerOp), ddbCalls(x), ratio(ddbCalls(x), ddbCalls(t.plain)), round(x.dynamoWriteAttemptsPerOp + (x.callsPerOp['dynamodb.TransactWriteItems'] ?? 0), 4), x.transactWriteItemsPerOp, wcu(x), ratio(maxWcu(x), maxWcu(t.plain)), `${x.derivedReadUnitsPerOp} / ${x.reportedReadUnitsPerOp}`,
  ]));
  const latencyRows = results.map((t) => [t.partitions, t.transactions, t.plain.p50Ms, t.produce.p50Ms, t.produce.p99Ms, t.commit.p50Ms, t.commit.p99Ms, t.commit.maxMs, ratio(t.commit.p50Ms, t.plain.p50Ms), t.transaction.p50Ms, t.transaction.p99Ms]);
  const costRows = results.map((t) => [t.partitions, usd(t.costPerPlainRequest.total * 1e6), usd(t.costPerTransaction.total * 1e6), ratio(t.costPerTransaction.total, t.costPerPlainRequest.total), usd((t.costPerTransaction.dynamodbWrites + t.costPerTransaction.dynamodbReads) * 1e6)]);
  const sizes = results.map((t) => `${t.partitions} partitions: ${Object.entries(t.itemBytes).map(([k, b]) => `${k} ${b} B`).join(', ')}`);
  return [
    '### Transactions over N partitions (domain objects, sequential, acks=all)',
    '',
    'A transaction = one produce request with one 1 KiB record per partition (transactional id, producer id and sequences), then EndTxn(commit). Init (POST /v1/producers) is done once per run, not counted. Each iteration also sends a plain and an idempotent request with the same records (rotated order); "÷ plain" is to the plain request of the same run. Produce = sequence checks (GetItem per partition), registration (one TransactWriteItems: coordinator + a pin per partition), per partition a reservation (UpdateItem) and a batch commit (TransactWriteItems: entry + sequence + check on the coordinator). Commit = coordinator read (GetItem), decision (TransactWriteItems), per partition a head read (Query), a marker reservation (UpdateItem) and the marker commit (TransactWriteItems: marker + unpin), then close (UpdateItem). By that design, DynamoDB writes per transaction = 4N + 3 and transactional items = 6N + 2, plus the occasional high-watermark advance (one reservation in 8). WCU "derived" = 1 per single-item write + 2 per TransactWriteItems item (assumes every item is under 1 KB; the sizes below show the partition head passing 1 KB once its reservation list grows, when each of its writes costs 2 units, 4 in a transaction); DynamoDB Local reports fewer units for transactions than that (not every item of a TransactWriteItems, ConditionChecks included, which AWS bills as writes), so the cost uses the derived figure.',
    '',
    markdownTable(['path', 'N', 'AWS calls per request or transaction (SDK attempts)', 'DDB calls', 'DDB calls ÷ plain', 'DDB write calls (TransactWriteItems included)', 'transact items', 'WCU derived / reported', 'WCU ÷ plain', 'RCU derived / reported'], rows),
    '',
    'Latency in ms, measured locally against the emulators (DynamoDB Local, s3rver), not AWS:',
    '',
    markdownTable(['N', 'transactions', 'plain produce p50', 'txn produce p50', 'txn produce p99', 'commit p50', 'commit p99', 'commit max', 'commit p50 ÷ plain produce p50', 'transaction p50', 'transaction p99'], latencyRows),
    '',
    'Cost in $ per million (two Lambda invocations per transaction, each lasting its request\'s measured p50):',
    '',
    markdownTable(['N', 'plain request $/M', 'transaction $/M', 'transaction ÷ plain', 'of which DynamoDB $/M'], costRows),
    '',
    `Largest item of each kind a transaction writes (DynamoDB item size, read while the transaction is open and after commit): ${sizes.join('; ')}.`,
  ].join('\n');
}

export async function benchProducers(ctx: ProducersBenchContext): Promise<{ markdown: string; json: Record<string, unknown> }> {
  const sanity: Sanity[] = [];
  const scaled = (n: number, min: number) => Math.max(min, Math.round(n * ctx.scale));
  const idempotent: IdempotentSizeResult[] = [];
  for (const spec of IDEMPOTENT_SIZES) idempotent.push(await benchIdempotentSize(ctx, { ...spec, ops: scaled(spec.ops, 3), warmup: scaled(spec.warmup, 1) }, sanity));
  const transactions: TransactionResult[] = [];
  for (const n of TRANSACTION_PARTITIONS) transactions.push(await benchTransactions(ctx, n, { transactions: scaled(TRANSACTIONS, 3), warmup: scaled(TRANSACTION_WARMUP, 1) }, sanity));
  return {
    markdown: [renderIdempotent(idempotent), renderTransactions(transactions), renderSanity(sanity, '### Sanity checks (idempotent producers and transactions)')].join('\n\n'),
    json: { idempotent, transactions, sanity },
  };
}
