// The checker: a pure function from a history to the anomalies in it. Each class below is an
// invariant of docs/architecture.md or docs/consumer-groups.md stated over what clients observed.
// The jepsen topic's partitions are named by number alone; the transformers' input and output
// topics (consume-transform-produce in transactions) are only ever read through their own operations.
import { isOp, pairOperations, parseOutputValue, parseRecordValue, type HistoryEvent, type NemesisEvent, type Operation } from './history.ts';

export const ANOMALY_CLASSES = {
  'lost-write': 'an acknowledged record was read as a gap, or is not in the final read at its offset with its value (and the log start had not passed it)',
  'two-values': 'two different values were seen at one offset',
  'unexplained-duplicate': 'one record of one request attempt is at two offsets (not a client retry)',
  'failed-write-visible': 'a record of a request answered 4xx was read',
  'non-contiguous': 'records of one request in one partition are not at contiguous offsets in request order',
  'hwm-decrease': 'a read saw a lower high watermark than a read that completed before it started',
  'log-start-decrease': 'a read saw a lower log start, or read below a log start, than one seen or raised before it started',
  'stale-read': 'a fetch missed a record acknowledged (acks=all) before the fetch started',
  'silent-skip': 'a fetch skipped offsets without reporting them as a gap',
  'unexplained-gap': 'a gap appeared with no writer death, lost call or clock fault before it',
  'group-skip': 'a record was never delivered to a group that consumed from the start, though the log start had not passed it',
  'double-ownership': 'two members were assigned one partition at one member epoch',
  'commit-backwards': 'a committed offset went down',
  'commit-past-hwm': 'a committed offset is beyond the high watermark',
  'idempotent-duplicate': 'a record of an idempotent request is at two offsets under one producer id (its retries resend it unchanged)',
  'output-duplicate': 'an input record has outputs at two offsets in read_committed reads of the output topic',
  'output-missing': 'an output of a transaction whose commit was acknowledged is not in the final read_committed read at its offset',
  'aborted-read': "a read_committed read returned an output of a transaction that never committed: no commit was sent for it, or it was refused (Jepsen's G1a)",
  'open-read': 'a read_committed read returned an output of a transaction before its commit was sent',
  'offsets-mismatch': "the transformers' committed offsets disagree with the outputs: an output read before a describe that shows its input not committed, an output at or past the final committed offset, or an input below it without an output",
} as const;
export type AnomalyClass = keyof typeof ANOMALY_CLASSES;

export interface Anomaly {
  class: AnomalyClass;
  message: string;
}

export interface CheckOptions {
  /** A gap is explained by a cause at most this long before it was first seen. */
  gapCauseWindowMs: number;
  /** Groups drained after the run; each must have been delivered every record of the final read. */
  drainedGroups: string[];
}

export interface CheckResult {
  anomalies: Anomaly[];
  counts: Record<AnomalyClass, number>;
  /** Same record (request, index) written by two attempts of one request: explained, not an anomaly. */
  retryDuplicates: number;
  /** The same, for idempotent requests: each attempt under its own producer id (after a re-initialisation). */
  reinitDuplicates: number;
  /** Idempotent requests sent again after an unknown outcome (each must have written once). */
  idempotentRetries: number;
  /** Transactions whose commit was acknowledged, and those that never committed (no commit sent, or refused). */
  transactions: { committed: number; aborted: number };
  /** What topic describes saw change between one and the next: proof that compaction and retention ran. */
  lifecycle: { segmentsRolled: number; logStartMoves: number };
}

type Key = string;
const at = (partition: number, offset: number): Key => `${partition}/${offset}`;
const isServerError = (op: Operation) => op.outcome === 'info' || (op.error?.status ?? 0) >= 500;

export function check(events: HistoryEvent[], options: CheckOptions): CheckResult {
  const ops = pairOperations(events);
  const nemesis = events.filter((e): e is NemesisEvent => e.type === 'nemesis');
  const anomalies: Anomaly[] = [];
  const report = (cls: AnomalyClass, message: string) => anomalies.push({ class: cls, message });

  const produces = ops.filter(isOp('produce'));
  const fetches = ops.filter(isOp('fetch')).filter((op) => op.outcome === 'ok');
  const polls = ops.filter(isOp('poll')).filter((op) => op.outcome === 'ok');
  const describes = ops.filter(isOp('describe')).filter((op) => op.outcome === 'ok');
  const topicDescribes = ops.filter(isOp('describe-topic')).filter((op) => op.outcome === 'ok');
  const refusedFetches = ops.filter(isOp('fetch')).filter((op) => op.error?.bounds !== undefined);

  // Every observation of (partition, offset) -> values: acknowledged offsets and every read.
  const seen = new Map<Key, Set<string | null>>();
  const observe = (partition: number, offset: number, value: string | null, source: string) => {
    const values = seen.get(at(partition, offset));
    if (values && !values.has(value)) report('two-values', `partition ${partition} offset ${offset}: ${JSON.stringify([...values][0])} and ${JSON.stringify(value)} (${source})`);
    addTo(seen, at(partition, offset), value);
  };
  for (const op of produces) {
    if (op.outcome !== 'ok') continue;
    op.result!.offsets.forEach((o, i) => observe(o.partition, o.offset, op.args.records[i]?.value ?? null, `produce #${op.id}`));
  }
  for (const op of fetches) for (const r of op.result!.records) observe(op.args.partition, r.offset, r.value, `fetch #${op.id}`);
  for (const op of polls) for (const r of op.result!.records) observe(r.partition, r.offset, r.value, `poll #${op.id} of ${op.args.group}`);

  // The final read: each partition from its start, after the faults stopped.
  const final = new Map<Key, string | null>();
  const finalHwm = new Map<number, number>();
  for (const op of fetches.filter((f) => f.args.final)) {
    for (const r of op.result!.records) final.set(at(op.args.partition, r.offset), r.value);
    finalHwm.set(op.args.partition, Math.max(finalHwm.get(op.args.partition) ?? 0, op.result!.highWatermark));
  }
  // Offsets the final read passed because the log start was above them: a 416 naming it.
  const deletedBeforeFinal = refusedFetches.filter((op) => op.args.final).map((op) => ({ partition: op.args.partition, startOffset: op.args.offset, endOffset: op.error!.bounds!.logStartOffset }));
  // Each gap once (re-reads report it again), with the first fetch that reported it.
  const gapsByRange = new Map<string, { partition: number; startOffset: number; endOffset: number; id: number }>();
  for (const op of fetches) for (const g of op.result!.gaps) {
    const range = `${at(op.args.partition, g.startOffset)}-${g.endOffset}`;
    if (!gapsByRange.has(range)) gapsByRange.set(range, { ...g, partition: op.args.partition, id: op.id });
  }
  const gapsRead = [...gapsByRange.values()];
  const within = (partition: number, offset: number) => (r: { partition: number; startOffset: number; endOffset: number }) => r.partition === partition && r.startOffset <= offset && offset < r.endOffset;
  for (const op of produces) {
    if (op.outcome !== 'ok') continue;
    op.result!.offsets.forEach((o, i) => {
      const value = op.args.records[i]?.value;
      const acknowledged = `produce #${op.id} (${op.args.requestId} attempt ${op.args.attempt}) record ${i} acknowledged at partition ${o.partition} offset ${o.offset}`;
      const gap = gapsRead.find(within(o.partition, o.offset));
      if (gap) report('lost-write', `${acknowledged}, fetch #${gap.id} read a gap there`);
      const key = at(o.partition, o.offset);
      if (final.get(key) !== value && (final.has(key) || !deletedBeforeFinal.some(within(o.partition, o.offset)))) report('lost-write', `${acknowledged}, final read has ${JSON.stringify(final.get(key))}`);
    });
  }

  // Duplicates, 4xx records and contiguity, by the request identity inside each value.
  // An attempt failed if every send of it was refused (an idempotent retry resends one attempt).
  const attemptKey = (op: Operation<'produce'>) => `${op.args.requestId}:${op.args.attempt}`;
  const mayHaveWritten = new Set(produces.filter((op) => op.outcome !== 'fail').map(attemptKey));
  const failed = new Set(produces.filter((op) => op.outcome === 'fail').map(attemptKey).filter((key) => !mayHaveWritten.has(key)));
  const placements = new Map<string, Set<Key>>();
  const byBatch = new Map<string, Map<number, number>>();
  let [retryDuplicates, reinitDuplicates] = [0, 0];
  const attemptsOf = new Map<string, Set<number>>();
  const requestOf = new Map(produces.map((op) => [op.args.requestId, op.args]));
  const idempotent = (requestId: string) => requestOf.get(requestId)?.producerId !== undefined;
  for (const [key, value] of [...seen].flatMap(([k, values]) => [...values].map((v) => [k, v] as const))) {
    const ref = parseRecordValue(value);
    if (!ref) continue;
    const [partition, offset] = key.split('/').map(Number) as [number, number];
    const attemptKey = `${ref.requestId}:${ref.attempt}`;
    if (failed.has(attemptKey)) report('failed-write-visible', `${value} at partition ${partition} offset ${offset}: its request was answered 4xx`);
    addTo(placements, `${attemptKey}:${ref.index}`, key);
    addTo(attemptsOf, `${ref.requestId}:${ref.index}`, ref.attempt);
    const batch = `${attemptKey}@${partition}`;
    byBatch.set(batch, (byBatch.get(batch) ?? new Map()).set(ref.index, offset));
  }
  // An idempotent request's retries resend the same values under the same producer id: its
  // records may be at one offset each. A new attempt comes only with a new producer id, after the
  // server refused the last one: the request's unacknowledged records may then land twice.
  for (const [record, places] of placements) if (places.size > 1) report(idempotent(record.split(':')[0]!) ? 'idempotent-duplicate' : 'unexplained-duplicate', `${record} is at ${[...places].join(', ')}`);
  for (const [record, attempts] of attemptsOf) {
    if (idempotent(record.split(':')[0]!)) reinitDuplicates += attempts.size - 1;
    else retryDuplicates += attempts.size - 1;
  }
  const sends = new Map<string, number>();
  for (const op of produces) if (op.args.producerId !== undefined) sends.set(attemptKey(op), (sends.get(attemptKey(op)) ?? 0) + 1);
  const idempotentRetries = [...sends.values()].reduce((sum, n) => sum + n - 1, 0);
  for (const [batch, offsets] of byBatch) checkContiguous(batch, offsets, requestOf.get(batch.split(':')[0]!)?.records, report);
  for (const op of produces) {
    if (op.outcome !== 'ok') continue;
    const byPartition = new Map<number, Map<number, number>>();
    op.result!.offsets.forEach((o, i) => byPartition.set(o.partition, (byPartition.get(o.partition) ?? new Map()).set(i, o.offset)));
    for (const [partition, offsets] of byPartition) checkContiguous(`${op.args.requestId}:${op.args.attempt}@${partition} (acknowledged)`, offsets, op.args.records, report);
  }

  // Each fetch accounts for every offset it crossed: a record or a reported gap.
  for (const op of fetches) {
    const { records, nextOffset, gaps, highWatermark } = op.result!;
    let expected = op.args.offset;
    for (const r of [...records].sort((a, b) => a.offset - b.offset)) {
      expected = pastGaps(expected, gaps);
      if (r.offset !== expected) report('silent-skip', `fetch #${op.id} of partition ${op.args.partition} from ${op.args.offset}: expected offset ${expected}, got ${r.offset}`);
      expected = r.offset + 1;
    }
    expected = pastGaps(expected, gaps);
    if (nextOffset !== expected) report('silent-skip', `fetch #${op.id} of partition ${op.args.partition} from ${op.args.offset}: nextOffset ${nextOffset}, but records and gaps end at ${expected}`);
    if (records.some((r) => r.offset >= highWatermark)) report('silent-skip', `fetch #${op.id} returned a record at or above its high watermark ${highWatermark}`);
  }

  // High watermarks: a read never sees less than a read that completed before it started.
  const hwmReads: Array<Observation & { partition: number }> = [
    ...fetches.map((op) => ({ op, key: op.args.partition, partition: op.args.partition, value: op.result!.highWatermark })),
    ...describes.flatMap((op) => op.result!.offsets.flatMap((o) => (o.highWatermark === null ? [] : [{ op, key: o.partition, partition: o.partition, value: o.highWatermark }]))),
    ...topicDescribes.flatMap((op) => op.result!.partitions.map((p) => ({ op, key: p.partition, partition: p.partition, value: p.highWatermark }))),
    // A 416 names the valid range when it refused: an offset below the log start is no decrease.
    ...refusedFetches.map((op) => ({ op, key: op.args.partition, partition: op.args.partition, value: op.error!.bounds!.highWatermark })),
  ];
  forEachAfter(hwmReads, hwmReads, (r, before) => {
    if (r.value < before.value) report('hwm-decrease', `${r.op.f} #${r.op.id} saw high watermark ${r.value} of partition ${r.partition}; #${before.id} had seen ${before.value}`);
  });
  // acks=all: a fetch that started after the acknowledgement has a high watermark above the offset.
  const acked = produces.filter((op) => op.outcome === 'ok' && op.args.acks === 'all').flatMap((op) => op.result!.offsets.map((o) => ({ op, key: o.partition, value: o.offset })));
  const fetchHwms = hwmReads.filter((r) => r.op.f === 'fetch');
  forEachAfter(fetchHwms, acked, (r, before) => {
    if (before.value >= r.value) report('stale-read', `fetch #${r.op.id} of partition ${r.partition} saw high watermark ${r.value}, but offset ${before.value} was acknowledged by produce #${before.id} before it started`);
  });

  // The log start only grows. Reads of it (fetches, 416s, topic describes, DeleteRecords answers)
  // bound it from below and above; a fetch or poll served at an offset bounds it from above.
  const logStartReads: Array<Observation & { partition: number }> = [
    ...fetches.map((op) => ({ op, key: op.args.partition, partition: op.args.partition, value: op.result!.logStartOffset })),
    ...refusedFetches.map((op) => ({ op, key: op.args.partition, partition: op.args.partition, value: op.error!.bounds!.logStartOffset })),
    ...topicDescribes.flatMap((op) => op.result!.partitions.map((p) => ({ op, key: p.partition, partition: p.partition, value: p.logStartOffset }))),
    ...ops.filter(isOp('delete-records')).filter((op) => op.outcome === 'ok').map((op) => ({ op, key: op.args.partition, partition: op.args.partition, value: op.result!.logStartOffset })),
  ];
  const servedAt: Array<Observation & { partition: number }> = [
    ...fetches.map((op) => ({ op, key: op.args.partition, partition: op.args.partition, value: op.args.offset })),
    ...polls.flatMap((op) => [...lowestPerPartition(op.result!.records)].map(([partition, offset]) => ({ op, key: partition, partition, value: offset }))),
  ];
  forEachAfter([...logStartReads, ...servedAt], logStartReads, (r, before) => {
    if (r.value < before.value) report('log-start-decrease', `${r.op.f} #${r.op.id} ${servedAt.includes(r) ? 'was served from offset' : 'saw log start'} ${r.value} of partition ${r.partition}; #${before.id} had seen log start ${before.value}`);
  });
  for (const op of ops.filter(isOp('delete-records'))) {
    if (op.outcome === 'ok' && op.result!.logStartOffset < op.args.offset) report('log-start-decrease', `delete-records #${op.id} to offset ${op.args.offset} of partition ${op.args.partition} answered log start ${op.result!.logStartOffset}`);
  }

  // Gaps: each needs a cause shortly before it was first seen.
  const causes = [
    ...nemesis.filter((e) => e.fault === 'kill' || ((e.fault === 'lose' || e.fault === 'throttle') && e.detail?.startsWith('dynamodb.'))).map((e) => e.time),
    ...produces.filter(isServerError).map((op) => op.invokedAt),
  ].sort((a, b) => a - b);
  const skewed = windows(nemesis, 'skew-on', 'skew-off', 'kill');
  const gapSeen = new Map<Key, number>();
  for (const op of fetches) for (const g of op.result!.gaps) {
    const key = at(op.args.partition, g.startOffset);
    gapSeen.set(key, Math.min(gapSeen.get(key) ?? Infinity, op.completedAt));
  }
  // Time counts only while the stack was up: holes time out only then.
  const down = windows(nemesis, 'kill', 'restart');
  const recent = (cause: number, time: number) => cause <= time && uptime(cause, time, down) <= options.gapCauseWindowMs;
  for (const [key, time] of gapSeen) {
    const explained = causes.some((t) => recent(t, time)) || skewed.some(([on, off]) => recent(on, time) || (on <= time && recent(Math.min(off, time), time)));
    if (!explained) report('unexplained-gap', `gap at ${key} first seen at ${time} with no cause in the ${options.gapCauseWindowMs} ms of uptime before`);
  }

  // Groups: every record seen, delivered at least once to each drained group unless the log start
  // had passed it when the group moved past it. The group moved past a record it was never
  // delivered before its first kept poll that delivered a later offset (or, for a record of the
  // final read, before its last operation: the drain); the log start then was at most any seen by
  // an operation invoked after that.
  const logStartAfter = upperBoundsAfter([...logStartReads, ...servedAt]);
  for (const group of options.drainedGroups) {
    const kept = polls.filter((op) => op.args.group === group && !op.args.abandoned);
    const delivered = new Set(kept.flatMap((op) => op.result!.records.map((r) => at(r.partition, r.offset))));
    const passedAt = firstDeliveryPast(kept);
    const groupEnd = ops.reduce((end, op) => ((op.args as { group?: string }).group === group ? Math.max(end, op.completedAt) : end), -Infinity);
    for (const key of seen.keys()) {
      if (delivered.has(key)) continue;
      const [partition, offset] = key.split('/').map(Number) as [number, number];
      const passed = passedAt(partition, offset) ?? (final.has(key) ? groupEnd : undefined);
      if (passed === undefined) continue;
      const bound = logStartAfter(partition, passed);
      if (bound && bound.value <= offset) report('group-skip', `group ${group} was never delivered the record at ${key}; #${bound.id} saw log start at most ${bound.value} after the group moved past it`);
    }
  }
  const owners = new Map<string, Set<string>>();
  for (const op of [...ops.filter(isOp('join')), ...ops.filter(isOp('txn-join')), ...polls, ...ops.filter(isOp('txn-poll'))]) {
    if (op.outcome !== 'ok') continue;
    const { memberId, memberEpoch, assignment } = op.result!;
    for (const t of assignment) for (const p of t.partitions) {
      addTo(owners, `${op.args.group} ${t.topic}/${p} at member epoch ${memberEpoch}`, memberId);
    }
  }
  for (const [key, members] of owners) if (members.size > 1) report('double-ownership', `${key}: ${[...members].join(', ')}`);

  // Committed offsets never go down, and never pass the high watermark.
  const commits = describes.flatMap((op) => op.result!.offsets.map((o) => ({ op, key: `${op.args.group} ${o.topic}/${o.partition}`, partition: o.partition, value: o.committedOffset ?? -1, committed: o.committedOffset, hwm: o.highWatermark })));
  forEachAfter(commits, commits, (c, before) => {
    if (c.value < before.value) report('commit-backwards', `describe #${c.op.id}: ${c.key} committed ${c.committed}; #${before.id} had seen ${before.value}`);
  });
  // The final read bounds only what was committed before it started: the high watermark may grow
  // afterwards (a hole resolving, a write whose client gave up completing), and a later commit with it.
  const finalReadStarted = Math.min(...fetches.filter((f) => f.args.final).map((f) => f.invokedAt));
  for (const c of commits) {
    if (c.committed === null) continue;
    const limit = Math.min(c.hwm ?? Infinity, c.op.completedAt < finalReadStarted ? (finalHwm.get(c.partition) ?? Infinity) : Infinity);
    if (c.committed > limit) report('commit-past-hwm', `describe #${c.op.id}: ${c.key} committed ${c.committed}, high watermark ${limit}`);
  }

  const transactions = checkTransactions(ops, report);
  const counts = Object.fromEntries(Object.keys(ANOMALY_CLASSES).map((cls) => [cls, anomalies.filter((a) => a.class === cls).length])) as Record<AnomalyClass, number>;
  return { anomalies, counts, retryDuplicates, reinitDuplicates, idempotentRetries, transactions, lifecycle: lifecycleSeen(topicDescribes) };
}

/**
 * Consume-transform-produce: each output names its transaction and its input. Outputs are judged
 * in read_committed reads of the output topic (the topic of the transformers' writes), offsets in
 * the transformers' group's describes of the input topic (the topic of their offsets).
 */
function checkTransactions(ops: Operation[], report: (cls: AnomalyClass, message: string) => void): CheckResult['transactions'] {
  const produced = ops.filter(isOp('txn-produce'));
  const outputTopic = produced[0]?.args.topic;
  const inputTopic = ops.filter(isOp('txn-offsets'))[0]?.args.offsets[0]?.topic;
  // A commit answered ok committed; one not answered may have; one refused (4xx) did not.
  const commitSent = new Map<string, number>();
  const mayHaveCommitted = new Set<string>();
  const committed = new Set<string>();
  for (const op of ops.filter(isOp('txn-end'))) {
    if (op.args.outcome !== 'commit') continue;
    commitSent.set(op.args.transaction, Math.min(commitSent.get(op.args.transaction) ?? Infinity, op.invokedAt));
    if (op.outcome !== 'fail') mayHaveCommitted.add(op.args.transaction);
    if (op.outcome === 'ok') committed.add(op.args.transaction);
  }
  const transactions = new Set(produced.map((op) => op.args.transaction));
  const counts = { committed: committed.size, aborted: [...transactions].filter((t) => !mayHaveCommitted.has(t)).length };
  if (outputTopic === undefined || inputTopic === undefined) return counts;

  const reads = ops.filter(isOp('txn-read')).filter((op) => op.outcome === 'ok');
  const outputReads = reads.filter((op) => op.args.topic === outputTopic && op.args.isolation === 'read_committed');
  const outputsOf = new Map<string, Set<Key>>();
  // Per input partition, the input offsets whose outputs each read returned.
  const outputsRead: Array<Observation & { partition: number }> = [];
  for (const op of outputReads) for (const r of op.result!.records) {
    const output = parseOutputValue(r.value);
    if (!output) continue;
    const place = at(r.partition, r.offset);
    addTo(outputsOf, output.input, place);
    const [, partition, offset] = output.input.split('/');
    outputsRead.push({ op, key: Number(partition), partition: Number(partition), value: Number(offset) });
    const read = `${op.args.final ? 'the final read' : `txn-read #${op.id}`} returned ${r.value} at ${outputTopic} ${place}`;
    if (!mayHaveCommitted.has(output.transaction)) report('aborted-read', `${read}: ${commitSent.has(output.transaction) ? 'its commit was refused' : 'no commit was sent for it'}`);
    else if (op.completedAt < commitSent.get(output.transaction)!) report('open-read', `${read}, before its commit was sent at ${commitSent.get(output.transaction)}`);
  }
  for (const [input, places] of outputsOf) if (places.size > 1) report('output-duplicate', `input ${input} has outputs at ${outputTopic} ${[...places].join(', ')}`);

  // Offsets commit with their outputs: once an output was read, every describe after it shows its input committed.
  const describes = ops.filter(isOp('txn-describe')).filter((op) => op.outcome === 'ok');
  const committedOffsets = describes.flatMap((op) => op.result!.offsets.filter((o) => o.topic === inputTopic).map((o) => ({ op, key: o.partition, partition: o.partition, value: o.committedOffset ?? 0 })));
  forEachAfter(committedOffsets, outputsRead, (c, before) => {
    if (c.value <= before.value) report('offsets-mismatch', `txn-describe #${c.op.id} saw ${inputTopic} partition ${c.partition} committed at ${c.value}, but read #${before.id} had returned the output of input offset ${before.value}`);
  });

  // The final state, once every input was consumed: outputs of exactly the inputs below the committed offsets.
  const finalOutput = new Map<Key, string | null>();
  for (const op of outputReads.filter((r) => r.args.final)) for (const r of op.result!.records) finalOutput.set(at(r.partition, r.offset), r.value);
  for (const op of produced) {
    if (op.outcome !== 'ok' || !committed.has(op.args.transaction)) continue;
    op.result!.offsets.forEach((o, i) => {
      const key = at(o.partition, o.offset);
      if (finalOutput.get(key) !== op.args.records[i]?.value) report('output-missing', `${op.args.records[i]?.value} was acknowledged at ${outputTopic} ${key} and its transaction committed; the final read has ${JSON.stringify(finalOutput.get(key))}`);
    });
  }
  const finalDescribe = describes.filter((op) => op.args.final).at(-1);
  if (!finalDescribe) return counts;
  const finalCommitted = new Map(finalDescribe.result!.offsets.filter((o) => o.topic === inputTopic).map((o) => [o.partition, o.committedOffset ?? 0]));
  const outputInputs = new Set([...finalOutput.values()].map((v) => parseOutputValue(v)?.input));
  for (const input of outputInputs) {
    if (input === undefined) continue;
    const [, partition, offset] = input.split('/').map(Number) as [number, number, number];
    if (offset >= (finalCommitted.get(partition) ?? 0)) report('offsets-mismatch', `the final read has an output of input ${input}, but the group's committed offset of partition ${partition} is ${finalCommitted.get(partition) ?? 0}`);
  }
  const finalInputs = reads.filter((op) => op.args.topic === inputTopic && op.args.final).flatMap((op) => op.result!.records);
  for (const r of finalInputs) {
    const input = `${inputTopic}/${r.partition}/${r.offset}`;
    if (r.offset < (finalCommitted.get(r.partition) ?? 0) && !outputInputs.has(input)) report('offsets-mismatch', `input ${input} is below the group's committed offset ${finalCommitted.get(r.partition)}, but the final read has no output of it`);
  }
  return counts;
}

/** Segments rolled and log start moves between one topic describe and the next (lower bounds: retention removes segments too). */
function lifecycleSeen(describes: Array<Operation<'describe-topic'>>): CheckResult['lifecycle'] {
  const last = new Map<number, { segments: number; logStartOffset: number }>();
  const seen = { segmentsRolled: 0, logStartMoves: 0 };
  for (const op of [...describes].sort((a, b) => a.completedAt - b.completedAt)) {
    for (const p of op.result!.partitions) {
      const before = last.get(p.partition) ?? { segments: 0, logStartOffset: 0 };
      seen.segmentsRolled += Math.max(0, p.segments - before.segments);
      if (p.logStartOffset > before.logStartOffset) seen.logStartMoves++;
      last.set(p.partition, p);
    }
  }
  return seen;
}

function lowestPerPartition(records: Array<{ partition: number; offset: number }>): Map<number, number> {
  const lowest = new Map<number, number>();
  for (const r of records) lowest.set(r.partition, Math.min(lowest.get(r.partition) ?? Infinity, r.offset));
  return lowest;
}

/** (partition, offset) -> when the first of `polls` that delivered a later offset of the partition completed. */
function firstDeliveryPast(polls: Array<Operation<'poll'>>): (partition: number, offset: number) => number | undefined {
  // Per partition, the polls by the highest offset each delivered, and the earliest completion from each on.
  const byPartition = new Map<number, Array<{ highest: number; completedAt: number }>>();
  for (const op of polls) {
    const highest = new Map<number, number>();
    for (const r of op.result!.records) highest.set(r.partition, Math.max(highest.get(r.partition) ?? -1, r.offset));
    for (const [partition, offset] of highest) listIn(byPartition, partition).push({ highest: offset, completedAt: op.completedAt });
  }
  for (const list of byPartition.values()) {
    list.sort((a, b) => a.highest - b.highest);
    for (let i = list.length - 2; i >= 0; i--) list[i]!.completedAt = Math.min(list[i]!.completedAt, list[i + 1]!.completedAt);
  }
  return (partition, offset) => {
    const list = byPartition.get(partition) ?? [];
    const first = firstIndex(list, (e) => e.highest > offset);
    return list[first]?.completedAt;
  };
}

/** (partition, time) -> the lowest of `bounds` seen by an operation invoked at or after `time`. */
function upperBoundsAfter(bounds: Array<Observation & { partition: number }>): (partition: number, time: number) => { value: number; id: number } | undefined {
  const byPartition = new Map<number, Array<{ invokedAt: number; value: number; id: number }>>();
  for (const b of bounds) listIn(byPartition, b.partition).push({ invokedAt: b.op.invokedAt, value: b.value, id: b.op.id });
  for (const list of byPartition.values()) {
    list.sort((a, b) => a.invokedAt - b.invokedAt);
    for (let i = list.length - 2; i >= 0; i--) if (list[i + 1]!.value < list[i]!.value) [list[i]!.value, list[i]!.id] = [list[i + 1]!.value, list[i + 1]!.id];
  }
  return (partition, time) => {
    const list = byPartition.get(partition) ?? [];
    const first = list[firstIndex(list, (e) => e.invokedAt >= time)];
    return first && { value: first.value, id: first.id };
  };
}

/** The first index of a sorted list whose element satisfies `past` (monotone: false, then true); the length if none. */
function firstIndex<T>(list: T[], past: (item: T) => boolean): number {
  let [low, high] = [0, list.length];
  while (low < high) {
    const mid = (low + high) >> 1;
    if (past(list[mid]!)) high = mid;
    else low = mid + 1;
  }
  return low;
}

function addTo<K, V>(sets: Map<K, Set<V>>, key: K, value: V): void {
  sets.set(key, (sets.get(key) ?? new Set()).add(value));
}

function listIn<K, V>(lists: Map<K, V[]>, key: K): V[] {
  const list = lists.get(key) ?? [];
  lists.set(key, list);
  return list;
}

/** Offsets of one request's batch in one partition: record i of the request's records there is base + i. */
function checkContiguous(batch: string, offsets: Map<number, number>, records: Array<{ partition?: number }> | undefined, report: (cls: AnomalyClass, message: string) => void): void {
  const partition = Number(batch.split('@')[1]?.split(' ')[0]);
  // The indices the request sent to this partition: all (one key, or unkeyed), or those naming it.
  const indices = records?.some((r) => r.partition !== undefined) ? records.flatMap((r, i) => (r.partition === partition ? [i] : [])) : [...(records?.keys() ?? offsets.keys())];
  const rank = new Map(indices.map((index, position) => [index, position]));
  let base: number | undefined;
  for (const [index, offset] of [...offsets].sort((a, b) => a[0] - b[0])) {
    const position = rank.get(index);
    if (position === undefined) {
      report('non-contiguous', `${batch}: record ${index} was not sent to this partition, found at offset ${offset}`);
      continue;
    }
    base ??= offset - position;
    if (offset !== base + position) report('non-contiguous', `${batch}: record ${index} at offset ${offset}, expected ${base + position}`);
  }
}

function pastGaps(offset: number, gaps: Array<{ startOffset: number; endOffset: number }>): number {
  for (let moved = true; moved;) {
    moved = false;
    for (const g of gaps) if (g.startOffset <= offset && offset < g.endOffset) [offset, moved] = [g.endOffset, true];
  }
  return offset;
}

/** [start, end] intervals from each `start` event to the next `end` event (end is Infinity if none came). */
function windows(nemesis: NemesisEvent[], start: NemesisEvent['fault'], ...ends: Array<NemesisEvent['fault']>): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  let from: number | undefined;
  for (const e of nemesis) {
    if (e.fault === start) from ??= e.time;
    else if (ends.includes(e.fault) && from !== undefined) {
      found.push([from, e.time]);
      from = undefined;
    }
  }
  if (from !== undefined) found.push([from, Infinity]);
  return found;
}

/** Milliseconds between `from` and `to` outside the `down` intervals. */
function uptime(from: number, to: number, down: Array<[number, number]>): number {
  let up = to - from;
  for (const [start, end] of down) up -= Math.max(0, Math.min(to, end) - Math.max(from, start));
  return up;
}

interface Observation {
  op: Operation;
  key: string | number;
  value: number;
}

/**
 * Real-time order: calls `visit(item, before)` for each item with the largest value among the
 * `earlier` observations of the same key whose operation completed before the item's was invoked.
 */
function forEachAfter<T extends Observation>(items: T[], earlier: Observation[], visit: (item: T, before: { value: number; id: number }) => void): void {
  const done = [...earlier].sort((a, b) => a.op.completedAt - b.op.completedAt);
  const best = new Map<string | number, { value: number; id: number }>();
  let next = 0;
  for (const item of [...items].sort((a, b) => a.op.invokedAt - b.op.invokedAt)) {
    for (; next < done.length && done[next]!.op.completedAt < item.op.invokedAt; next++) {
      const d = done[next]!;
      if (d.value > (best.get(d.key)?.value ?? -Infinity)) best.set(d.key, { value: d.value, id: d.op.id });
    }
    const before = best.get(item.key);
    if (before) visit(item, before);
  }
}
