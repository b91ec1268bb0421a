// Benchmark section for waiting consumers and fetch by bytes: what an idle member of a 12-partition
// topic costs a month when it polls as the client does by default (watch polls every
// IDLE_POLL_INTERVAL_MS, a full poll at each heartbeat), how long a record produced to the idle
// topic takes to reach it, and how many fetches replay a log of small batches. It reports; it
// asserts nothing.
import { randomBytes } from 'node:crypto';
import { DEFAULT_MEMORY_MB } from '../cdk/serverless-queue.ts';
import { IDLE_POLL_INTERVAL_MS } from '../client/consumer.ts';
import { createServices } from '../lambdas/http/services.ts';
import { MAX_ENTRIES_PER_FETCH } from '../lib/log/fetcher.ts';
import type { Storage } from '../lib/storage.ts';
import { sleep } from '../lib/retry.ts';
import { createTopic } from '../lib/topics/topic-store.ts';
import { costPerRequest, HOURS_PER_MONTH, scaleCost, addCosts, type CostBreakdown, type PriceTable } from './cost-model.ts';
import { Latency, markdownTable, Meter, round, Series, usageOf, usd, type LatencySummary, type SeriesResult } from './log.ts';

const PARTITIONS = 12;
const WATCH_POLLS = 40;
const HEARTBEAT_POLLS = 5;
const BLIND_POLLS = 5;
// The wait is uniform over the poll interval: 60 samples put its median within about ±70 ms.
const WAKE_UPS = 60;
/** The log the replay reads: single-record batches of RECORD_BYTES, produced CONCURRENCY at a time. */
const REPLAY_BATCHES = 10_000;
const RECORD_BYTES = 100;
const CONCURRENCY = 20;
/** The cap a fetch had before fetch by bytes. */
const FORMER_ENTRIES_PER_FETCH = 64;
const MINUTES_PER_MONTH = HOURS_PER_MONTH * 60;

export interface WaitingBenchContext {
  storage: Storage;
  meter: Meter;
  prices: PriceTable;
  progress: (message: string) => void;
  scale: number;
}

interface PollCost {
  series: SeriesResult;
  perPoll: CostBreakdown;
}

export async function benchWaiting(ctx: WaitingBenchContext): Promise<{ markdown: string; json: Record<string, unknown> }> {
  const { storage, prices, meter } = ctx;
  // The group's clock runs ahead by `skew` so that heartbeats fall due without waiting for them.
  let skew = 0;
  const { groups, producer, fetcher } = createServices(storage, {}, { now: () => Date.now() + skew });
  const run = randomBytes(4).toString('hex');
  const memoryMb = DEFAULT_MEMORY_MB.groups;
  const priced = (series: SeriesResult): PollCost => ({ series, perPoll: costPerRequest({ ...usageOf(series), lambdaMemoryMb: memoryMb }, prices) });

  // -- An idle member: polls until it holds a watch, then the three kinds of poll it makes.
  const topic = `bench-idle-${run}`;
  await createTopic(storage, { name: topic, partitions: PARTITIONS });
  const groupId = `bench-idle-${run}`;
  const { memberId, heartbeatIntervalMs } = await groups.membership.join(groupId, { topics: [topic], autoOffsetReset: 'earliest' });
  const options = { maxRecords: 500, maxBytes: 1 << 20, waitMs: 0, autoCommit: true };
  let last = await groups.consumer.poll(groupId, memberId, options);
  /** Polls as the client does: with the last answer's ack and watch; until a watch comes, every 200 ms. */
  const untilWatched = async () => {
    for (;;) {
      last = await groups.consumer.poll(groupId, memberId, { ...options, ack: last.pollId, watch: last.watch });
      if (last.watch && last.records.length === 0) return;
      await sleep(200);
    }
  };
  await untilWatched();
  ctx.progress('waiting: idle polls');
  const watchSeries = new Series('watch poll', meter);
  for (let i = 0; i < WATCH_POLLS; i++) last = await watchSeries.measure(0, () => groups.consumer.poll(groupId, memberId, { ...options, ack: last.pollId, watch: last.watch }));
  const heartbeatSeries = new Series('heartbeat poll', meter);
  for (let i = 0; i < HEARTBEAT_POLLS; i++) {
    skew += heartbeatIntervalMs;
    last = await heartbeatSeries.measure(0, () => groups.consumer.poll(groupId, memberId, { ...options, ack: last.pollId, watch: last.watch }));
  }
  // Back to the producers' clock: markers are trusted only by clocks within CLOCK_SKEW_MS of theirs.
  skew = 0;
  const blindSeries = new Series('poll without watch', meter);
  for (let i = 0; i < BLIND_POLLS; i++) last = await blindSeries.measure(0, () => groups.consumer.poll(groupId, memberId, { ...options, ack: last.pollId }));
  const [watchPoll, heartbeatPoll, blindPoll] = [watchSeries, heartbeatSeries, blindSeries].map((s) => priced(s.result())) as [PollCost, PollCost, PollCost];

  const heartbeatsPerMinute = 60_000 / heartbeatIntervalMs;
  const pollsPerMinute = 60_000 / IDLE_POLL_INTERVAL_MS;
  const watchPollsPerMinute = pollsPerMinute - heartbeatsPerMinute;
  const perMonth = (cost: CostBreakdown, perMinute: number) => scaleCost(cost, perMinute * MINUTES_PER_MONTH);
  const idleMonth = addCosts(perMonth(watchPoll.perPoll, watchPollsPerMinute), perMonth(heartbeatPoll.perPoll, heartbeatsPerMinute));
  const blindMonth = perMonth(blindPoll.perPoll, pollsPerMinute);

  // -- Wake-up: a record produced to the idle topic at a random moment of the poll interval.
  ctx.progress('waiting: wake-up latency');
  const wakeUp = new Latency();
  const trials = WAKE_UPS;
  for (let trial = 0; trial < trials; trial++) {
    await untilWatched();
    let producedAt = 0;
    const produced = (async () => {
      await sleep(Math.random() * IDLE_POLL_INTERVAL_MS);
      await producer.produce(topic, [{ key: null, value: Buffer.from(`wake ${trial}`), headers: [], partition: trial % PARTITIONS }], '1');
      producedAt = performance.now();
    })();
    for (;;) {
      last = await groups.consumer.poll(groupId, memberId, { ...options, ack: last.pollId, watch: last.watch });
      if (last.records.length > 0) break;
      await sleep(last.watch ? IDLE_POLL_INTERVAL_MS : 0);
    }
    await produced;
    wakeUp.record(performance.now() - producedAt);
  }
  const latency: LatencySummary = wakeUp.summary();

  // -- Replay: fetches from offset 0 to the end of a log of small batches.
  const batches = Math.max(100, Math.round(REPLAY_BATCHES * ctx.scale));
  ctx.progress(`waiting: producing ${batches} small batches`);
  const replayTopic = `bench-replay-${run}`;
  await createTopic(storage, { name: replayTopic, partitions: 1 });
  const value = Buffer.alloc(RECORD_BYTES, 'r');
  for (let i = 0; i < batches; i += CONCURRENCY) {
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, batches - i) }, () => producer.produce(replayTopic, [{ key: null, value, headers: [], partition: 0 }], '1')));
  }
  const replay = { batches, recordBytes: RECORD_BYTES, maxRecords: MAX_ENTRIES_PER_FETCH, maxBytes: 4 << 20, fetches: 0, records: 0, formerFetches: Math.ceil(batches / FORMER_ENTRIES_PER_FETCH), ms: 0 };
  const replayed = await meter.measure(async () => {
    for (let offset = 0; ;) {
      const page = await fetcher.fetch({ topic: replayTopic, partition: 0, offset, maxRecords: replay.maxRecords, maxBytes: replay.maxBytes, waitMs: 0 });
      if (page.nextOffset === offset) return;
      replay.fetches++;
      replay.records += page.records.length;
      offset = page.nextOffset;
    }
  });
  replay.ms = round(replayed.ms, 1);

  const row = (label: string, p: PollCost, perMinute: number) => [label, round(perMinute, 1), p.series.p50Ms, round(usageOf(p.series).readUnits, 2), round(usageOf(p.series).writeUnits, 2),
    Object.entries(p.series.callsPerOp).map(([op, n]) => `${op.replace(/^dynamodb\./, '')} ${n}`).join(', '), usd(perMonth(p.perPoll, perMinute).total)];
  const markdown = [
    '### Waiting consumers and fetch by bytes',
    '',
    `An idle member of a ${PARTITIONS}-partition topic (one member, session timeout 45 s: heartbeat every ${heartbeatIntervalMs} ms) polling as the client does by default: with the last answer's watch every ${IDLE_POLL_INTERVAL_MS} ms, in full once the heartbeat is due. ` +
      `Each poll is priced as one Lambda request of the groups function (${memoryMb} MB arm64) lasting the measured p50 (local emulators, not AWS), plus its DynamoDB units (larger of reported and derived; a marker read counts as a whole read unit, twice what an eventually consistent read of one small item costs).`,
    '',
    markdownTable(['poll', 'per idle minute', 'p50 ms', 'RRU', 'WRU', 'calls', '$/month'], [
      row('watch poll', watchPoll, watchPollsPerMinute),
      row('heartbeat poll (full; partitions read once a minute)', heartbeatPoll, heartbeatsPerMinute),
      row('for comparison: every poll in full, without watch', blindPoll, pollsPerMinute),
    ]),
    '',
    `**Idle member: ${usd(idleMonth.total)} per month** (requests ${usd(idleMonth.lambdaRequests)}, Lambda time ${usd(idleMonth.lambdaDuration)}, DynamoDB reads ${usd(idleMonth.dynamodbReads)}, writes ${usd(idleMonth.dynamodbWrites)}); ` +
      `every poll in full at the same cadence: ${usd(blindMonth.total)}.`,
    '',
    `Wake-up latency (${latency.count} records, each produced with acks=1 at a random moment of the member's ${IDLE_POLL_INTERVAL_MS} ms interval; from the produce's answer to the poll that returns it): **p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms**.`,
    '',
    `Replay: ${replay.batches} single-record batches of ${RECORD_BYTES} B read from offset 0 with maxRecords ${replay.maxRecords} and maxBytes ${replay.maxBytes}: **${replay.fetches} fetch call(s)** (${replay.records} records, ${replay.ms} ms); at 64 batches per fetch it took ${replay.formerFetches}.`,
  ].join('\n');
  return {
    markdown,
    json: {
      partitions: PARTITIONS,
      heartbeatIntervalMs,
      idlePollIntervalMs: IDLE_POLL_INTERVAL_MS,
      lambdaMemoryMb: memoryMb,
      polls: { watch: watchPoll, heartbeat: heartbeatPoll, withoutWatch: blindPoll },
      idleMemberPerMonth: idleMonth,
      everyPollInFullPerMonth: blindMonth,
      wakeUpLatency: latency,
      replay,
      prices: { asOf: prices.asOf, dynamodb: prices.dynamodb, lambda: prices.lambda },
    },
  };
}
