// `npm run jepsen`: a bounded, self-stopping fault-injection run against the local stack. Records
// a history of every operation, checks it (jepsen/checker.ts), prints counts per operation, per
// fault and per anomaly class, and exits non-zero on any anomaly.
//   npm run jepsen                 the short run (about 2 minutes)
//   npm run jepsen -- --long       a longer run with more kills
//   npm run jepsen -- --seed 42    replay the workload's and the fault layer's random choices
//   npm run jepsen -- --keep       keep the data directory and the history (kept anyway on anomalies)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { seededRandom } from '../local/faults.ts';
import { freePort } from '../local/stack.ts';
import { sleep } from '../lib/retry.ts';
import { ANOMALY_CLASSES, check } from './checker.ts';
import { Cluster } from './cluster.ts';
import { History, pairOperations } from './history.ts';
import { awaitConsumed, call, committedReader, describe, describer, drain, feeder, fetcher, finalDescribe, finalRead, finalReadIsolated, idempotentProducer, INPUT_TOPIC, member, OUTPUT_TOPIC, PARTITIONS, producer, TOPIC, TOPIC_CONFIG, transformer, trimmer, TXN_GROUP, type Client } from './workload.ts';

const { values } = parseArgs({ options: { long: { type: 'boolean', default: false }, short: { type: 'boolean', default: false }, seed: { type: 'string' }, keep: { type: 'boolean', default: false } } });
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const plan = values.long
  ? { workloadMs: 300_000, kills: 6, producers: 2, idempotentProducers: 2, fetchers: 2, membersPerGroup: 3, transformers: 3 }
  : { workloadMs: 40_000, kills: 1, producers: 1, idempotentProducers: 1, fetchers: 1, membersPerGroup: 2, transformers: 2 };
const GROUPS = ['g1', 'g2'];
/** The sequencer's gap timeout (15 s) plus slack: after this, every hole left by a killed writer can be resolved. */
const HOLE_RESOLUTION_MS = 16_000;
/** One writer's clock runs ahead by more than the gap timeout: it claims other writers' fresh reservations as gaps. */
const CLOCK_OFFSET_MS = 20_000;
const FAULTS = 'delay=0.05,delayMs=300,lose=0.01,throttle=0.02';

const random = seededRandom(seed);
const dataDir = mkdtempSync(join(tmpdir(), 'queue-jepsen-'));
const history = new History(join(dataDir, 'history.jsonl'));
const log = (line: string) => console.log(`[jepsen +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
const started = Date.now();
const cluster = new Cluster({
  dataDir: join(dataDir, 'stack'),
  serverLog: join(dataDir, 'servers.log'),
  mainPort: await freePort(),
  skewedPort: await freePort(),
  clockOffsetMs: CLOCK_OFFSET_MS,
  onFault: (fault, operation, time) => history.nemesis(fault, operation, time),
  log,
});
const faultSpec = () => `${FAULTS},seed=${Math.floor(random() * 2 ** 31)}`;

let exitCode = 1;
try {
  log(`seed ${seed}, data in ${dataDir}`);
  cluster.faults = faultSpec();
  await cluster.start();
  const deadline = Date.now() + plan.workloadMs;
  const client = (url: () => string, deadlineAt = deadline): Client => ({ history, random: seededRandom(Math.floor(random() * 2 ** 31)), url, deadline: deadlineAt });
  const main = () => cluster.mainUrl;
  await call(cluster.mainUrl, 'POST', '/v1/topics', { name: TOPIC, partitions: PARTITIONS, config: TOPIC_CONFIG }, 30_000);
  // The transformers' topics keep every record (no retention): every input must have its output.
  for (const name of [INPUT_TOPIC, OUTPUT_TOPIC]) await call(cluster.mainUrl, 'POST', '/v1/topics', { name, partitions: PARTITIONS, config: { 'segment.bytes': 4096, 'segment.ms': 1000 } }, 30_000);
  log(`workload for ${plan.workloadMs / 1000} s`);

  // The transformers go on after the workload until every input was consumed.
  let inputConsumed = false;
  const transformers = Array.from({ length: plan.transformers }, (_, i) => transformer(client(main, deadline + 180_000), `transformer-${i}`, () => inputConsumed));

  const workers = [
    // The first producer talks to the server with the offset clock while that one runs.
    ...Array.from({ length: plan.producers }, (_, i) => producer(client(i === 0 ? () => (cluster.skewedRunning ? cluster.skewedUrl : cluster.mainUrl) : main), `producer-${i}`)),
    ...Array.from({ length: plan.idempotentProducers }, (_, i) => idempotentProducer(client(main), `idempotent-${i}`)),
    ...Array.from({ length: plan.fetchers }, (_, i) => fetcher(client(main), `fetcher-${i}`)),
    feeder(client(main), 'feeder'),
    committedReader(client(main), 'committed-reader'),
    ...GROUPS.flatMap((g) => Array.from({ length: plan.membersPerGroup }, (_, i) => member(client(main), `${g}-member-${i}`, g))),
    describer(client(main), 'describer', GROUPS),
    trimmer(client(main), 'trimmer'),
  ];
  await Promise.all([...workers, nemesis(deadline)]);

  // The writers stop; the faults go on (the final reads retry). Holes left by writers that died
  // resolve once their reservations pass the gap timeout.
  log('workload done; waiting for holes to time out before the final read');
  await cluster.killSkewed();
  history.nemesis('skew-off', 'end of the workload');
  await sleep(HOLE_RESOLUTION_MS);
  const after = client(main, Date.now() + 120_000);
  const ends = await finalRead(after);
  log(`final read: records end at ${ends.join(', ')}; draining groups`);
  for (const group of GROUPS) await drain(after, group, ends);
  // The log starts after every group was drained: the groups skipped nothing at or above them.
  await finalDescribe(after);
  await awaitConsumed(after, await finalReadIsolated(after, INPUT_TOPIC, 'read_uncommitted'));
  inputConsumed = true;
  await Promise.all(transformers);
  log('transformers consumed every input; final read_committed read of the output');
  await finalReadIsolated(after, OUTPUT_TOPIC, 'read_committed');
  await describe(after, 'final', TXN_GROUP, 30_000, 'txn-describe', true);

  const result = check(history.events, { gapCauseWindowMs: 60_000, drainedGroups: GROUPS });
  printReport(result);
  if (cluster.startFailures.length > 0) log(`restarts that needed another attempt: ${cluster.startFailures.length}\n  ${cluster.startFailures.map((f) => f.split('\n').slice(0, 3).join(' | ')).join('\n  ')}`);
  exitCode = result.anomalies.length > 0 ? 1 : 0;
} catch (err) {
  log(`run failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
} finally {
  await cluster.killAll();
  if (exitCode === 0 && !values.keep) rmSync(dataDir, { recursive: true, force: true });
  else log(`history kept in ${join(dataDir, 'history.jsonl')}, the servers' stderr in ${join(dataDir, 'servers.log')}`);
}
process.exit(exitCode);

/** Kills the whole stack `plan.kills` times and runs the writer with the offset clock for the middle third. */
async function nemesis(deadline: number): Promise<void> {
  const span = deadline - Date.now();
  const events = [
    { at: span / 3, action: 'skew-on' },
    { at: (2 * span) / 3, action: 'skew-off' },
    ...Array.from({ length: plan.kills }, (_, i) => ({ at: ((i + 0.5 + (random() - 0.5) * 0.5) * span) / plan.kills, action: 'kill' })),
  ].sort((a, b) => a.at - b.at);
  const start = Date.now();
  let skew = false;
  for (const event of events) {
    await sleep(Math.max(0, start + event.at - Date.now()));
    if (event.action === 'kill') {
      await cluster.killAll();
      history.nemesis('kill', 'all');
      log('kill -9 of the stack');
      cluster.faults = faultSpec();
      await cluster.start();
      history.nemesis('restart');
      log('restarted');
      if (skew) await startSkewed();
    } else if (event.action === 'skew-on') {
      skew = true;
      await startSkewed();
    } else {
      skew = false;
      await cluster.killSkewed();
      history.nemesis('skew-off');
    }
  }
}

async function startSkewed(): Promise<void> {
  await cluster.startSkewed();
  history.nemesis('skew-on', `clock +${CLOCK_OFFSET_MS} ms`);
  log(`writer with clock +${CLOCK_OFFSET_MS} ms up`);
}

function printReport(result: ReturnType<typeof check>): void {
  const ops = pairOperations(history.events);
  const perOp = new Map<string, Record<string, number>>();
  for (const op of ops) {
    const counts = perOp.get(op.f) ?? { ok: 0, fail: 0, info: 0 };
    counts[op.outcome] = (counts[op.outcome] ?? 0) + 1;
    perOp.set(op.f, counts);
  }
  const perFault = new Map<string, number>();
  for (const e of history.events) if (e.type === 'nemesis') perFault.set(e.fault, (perFault.get(e.fault) ?? 0) + 1);
  console.log('\noperations (ok / fail / info):');
  for (const [f, c] of [...perOp].sort()) console.log(`  ${f.padEnd(14)} ${c.ok} / ${c.fail} / ${c.info}`);
  console.log(`  records written twice by a client retry (explained): ${result.retryDuplicates}`);
  console.log(`  idempotent records written under two producer ids (explained): ${result.reinitDuplicates}`);
  console.log(`  idempotent requests retried after an unknown outcome: ${result.idempotentRetries}`);
  console.log(`  transactions committed / aborted: ${result.transactions.committed} / ${result.transactions.aborted}`);
  console.log('lifecycle (seen by describe):');
  console.log(`  segments rolled        ${result.lifecycle.segmentsRolled}`);
  console.log(`  log start moves        ${result.lifecycle.logStartMoves}`);
  console.log('faults:');
  for (const [fault, n] of [...perFault].sort()) console.log(`  ${fault.padEnd(16)} ${n}`);
  console.log('anomalies:');
  for (const cls of Object.keys(ANOMALY_CLASSES) as Array<keyof typeof ANOMALY_CLASSES>) console.log(`  ${cls.padEnd(22)} ${result.counts[cls]}`);
  for (const a of result.anomalies.slice(0, 50)) console.log(`  ! ${a.class}: ${a.message}`);
  if (result.anomalies.length > 50) console.log(`  ... and ${result.anomalies.length - 50} more (see the history)`);
  console.log(result.anomalies.length === 0 ? '\nno anomalies' : `\n${result.anomalies.length} anomalies`);
}
