// The checker must be able to fail: each anomaly class is planted in an otherwise clean synthetic
// history and must be reported, alone.
import { describe, expect, it } from 'vitest';
import { ANOMALY_CLASSES, check, type AnomalyClass } from '../../jepsen/checker.ts';
import type { HistoryEvent, OpName, Ops, Outcome, ErrorInfo, NemesisEvent } from '../../jepsen/history.ts';

let nextId = 0;
function op<K extends OpName>(f: K, args: Ops[K]['args'], invokedAt: number, completedAt: number, outcome: Outcome, result?: Ops[K]['result'], error?: ErrorInfo): HistoryEvent[] {
  const id = nextId++;
  return [
    { type: 'invoke', id, process: 'p', time: invokedAt, f, args },
    { type: outcome, id, process: 'p', time: completedAt, f, result, error },
  ];
}
const nemesis = (fault: NemesisEvent['fault'], time: number): HistoryEvent => ({ type: 'nemesis', fault, time });
const produce = (requestId: string, attempt: number, count: number, acks: 'all' | '1' = 'all') => ({ topic: 't', acks, requestId, attempt, records: Array.from({ length: count }, (_, i) => ({ value: `${requestId}:${attempt}:${i}` })) });
const rec = (offset: number, value: string, partition = 0) => ({ partition, offset, value });
const fetched = (partition: number, offset: number, records: Array<{ offset: number; value: string }>, nextOffset: number, highWatermark: number, gaps: Array<{ startOffset: number; endOffset: number }> = [], logStartOffset = 0) =>
  ({ records: records.map((r) => ({ partition, ...r })), nextOffset, highWatermark, logStartOffset, gaps });
const outOfRange = (partition: number, offset: number, logStartOffset: number, highWatermark: number) =>
  ({ status: 416, code: 'OFFSET_OUT_OF_RANGE', message: `offset ${offset} is out of range`, bounds: { logStartOffset, highWatermark } });
const figures = (...partitions: Array<[partition: number, logStartOffset: number, highWatermark: number, segments: number]>) =>
  ({ partitions: partitions.map(([partition, logStartOffset, highWatermark, segments]) => ({ partition, logStartOffset, highWatermark, segments, bytes: 100 * segments })) });
const assigned = (memberId: string, memberEpoch: number, partitions: number[]) => ({ memberId, memberEpoch, assignment: [{ topic: 't', partitions }] });
const offsets = (committedOffset: number | null, highWatermark: number) => ({ offsets: [{ topic: 't', partition: 0, committedOffset, highWatermark }] });
const idempotentProduce = (requestId: string, attempt: number, producerId: number, partition: number, baseSequence: number) =>
  ({ ...produce(requestId, attempt, 1), records: [{ value: `${requestId}:${attempt}:0`, partition }], producerId, producerEpoch: 0, sequences: [{ partition, baseSequence }] });
const unknownProducer = { status: 404, code: 'UNKNOWN_PRODUCER_ID', message: 'unknown producer' };

// The transformers: inputs of topic 'in', outputs to topic 'out' (same partition), transactions of transformer 'tx'.
const output = (transaction: string, partition: number, offset: number) => `${transaction}|in/${partition}/${offset}`;
const txnProduce = (transaction: string, inputs: Array<[partition: number, offset: number]>) =>
  ({ transaction, topic: 'out', producerId: 9, producerEpoch: 0, sequences: [{ partition: inputs[0]![0], baseSequence: 0 }], records: inputs.map(([partition, offset]) => ({ value: output(transaction, partition, offset), partition })) });
const txnOffsets = (transaction: string, partition: number, offset: number) => ({ transaction, group: 'tg', memberId: 'T', memberEpoch: 1, offsets: [{ topic: 'in', partition, offset }] });
const txnRead = (time: number, topic: string, partition: number, isolation: 'read_committed' | 'read_uncommitted', records: Array<{ offset: number; value: string }>, end: number, final = false) =>
  op('txn-read', { topic, partition, offset: 0, isolation, ...(final ? { final } : {}) }, time, time + 0.5, 'ok', { ...fetched(partition, 0, records, end, end), lastStableOffset: end });
const groupOffsets = (committedOffset: number) => ({ offsets: [{ topic: 'in', partition: 0, committedOffset, highWatermark: 3 }] });

/**
 * A clean history: acknowledged writes (one retried after a timeout, its first attempt landing too),
 * a 4xx write, a gap after a kill, reads, a group member and committed offsets. Partition 2 has its
 * records deleted below offset 2 (DeleteRecords): a fetch below is 416, the group skips them, the
 * final read starts at 2; compaction rolled segments meanwhile.
 */
function cleanHistory(): HistoryEvent[] {
  const log = [rec(0, 'r0:0:0'), rec(1, 'r0:0:1'), rec(2, 'r1:1:0'), rec(3, 'r1:0:0')];
  const trimmed = [rec(0, 'r6:0:0', 2), rec(1, 'r6:0:1', 2), rec(2, 'r6:0:2', 2)];
  return [
    ...op('produce', produce('r0', 0, 2), 1, 2, 'ok', { offsets: [{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }] }),
    ...op('produce', produce('r1', 0, 1), 3, 4, 'info', undefined, { code: 'CLIENT_TIMEOUT', message: 'timeout' }),
    ...op('produce', produce('r1', 1, 1), 5, 6, 'ok', { offsets: [{ partition: 0, offset: 2 }] }),
    ...op('produce', produce('r2', 0, 1), 5, 6, 'fail', undefined, { status: 400, code: 'INVALID_REQUEST', message: 'bad' }),
    ...op('fetch', { topic: 't', partition: 0, offset: 0 }, 7, 8, 'ok', fetched(0, 0, log, 4, 4)),
    ...op('join', { group: 'g' }, 7, 8, 'ok', assigned('A', 1, [0])),
    ...op('poll', { group: 'g', memberId: 'A' }, 8, 9, 'ok', { ...assigned('A', 1, [0]), pollId: 'P1', records: log.map((r) => ({ ...r, topic: 't' })) }),
    ...op('describe', { group: 'g' }, 9, 10, 'ok', offsets(4, 4)),
    nemesis('kill', 10),
    nemesis('restart', 11),
    ...op('produce', produce('r6', 0, 3), 12, 13, 'ok', { offsets: trimmed.map(({ partition, offset }) => ({ partition, offset })) }),
    ...op('fetch', { topic: 't', partition: 2, offset: 0 }, 13, 14, 'ok', fetched(2, 0, trimmed, 3, 3)),
    ...op('delete-records', { topic: 't', partition: 2, offset: 2 }, 14, 15, 'ok', { logStartOffset: 2 }),
    ...op('describe-topic', { topic: 't' }, 15, 16, 'ok', figures([0, 0, 4, 1], [2, 2, 3, 1])),
    ...op('fetch', { topic: 't', partition: 2, offset: 0 }, 16, 17, 'fail', undefined, outOfRange(2, 0, 2, 3)),
    ...op('poll', { group: 'g', memberId: 'A' }, 17, 18, 'ok', { ...assigned('A', 2, [0, 2]), pollId: 'P2', records: [{ ...trimmed[2]!, topic: 't' }] }),
    ...op('fetch', { topic: 't', partition: 0, offset: 0, final: true }, 20, 21, 'ok', fetched(0, 0, log, 5, 5, [{ startOffset: 4, endOffset: 5 }])),
    ...op('fetch', { topic: 't', partition: 2, offset: 0, final: true }, 20, 21, 'fail', undefined, outOfRange(2, 0, 2, 3)),
    ...op('fetch', { topic: 't', partition: 2, offset: 2, final: true }, 21, 22, 'ok', fetched(2, 2, trimmed.slice(2), 3, 3, [], 2)),
    ...op('describe', { group: 'g' }, 21, 22, 'ok', offsets(4, 5)),
    ...op('describe-topic', { topic: 't' }, 22, 23, 'ok', figures([0, 0, 5, 2], [2, 2, 3, 0])),
    ...idempotentHistory(),
    ...transactionHistory(),
  ].sort((a, b) => a.time - b.time);
}

/**
 * Idempotent writes to partition 4: r10 retried after a timeout (the same attempt, written once);
 * r11's first attempt unknown, then refused (the producer id expired), sent again under a new
 * producer id; the first attempt landed late: the one duplicate a re-initialisation explains. The
 * group consumes them.
 */
function idempotentHistory(): HistoryEvent[] {
  return [
    ...op('produce', idempotentProduce('r10', 0, 7, 4, 0), 12, 12.5, 'info', undefined, { code: 'CLIENT_TIMEOUT', message: 'timeout' }),
    ...op('produce', idempotentProduce('r10', 0, 7, 4, 0), 12.6, 13, 'ok', { offsets: [{ partition: 4, offset: 0 }] }),
    ...op('produce', idempotentProduce('r11', 0, 7, 4, 1), 13, 13.2, 'info', undefined, { code: 'CLIENT_TIMEOUT', message: 'timeout' }),
    ...op('produce', idempotentProduce('r11', 0, 7, 4, 1), 13.3, 13.4, 'fail', undefined, unknownProducer),
    ...op('init-producer', {}, 13.4, 13.5, 'ok', { producerId: 8, producerEpoch: 0 }),
    ...op('produce', idempotentProduce('r11', 1, 8, 4, 0), 13.5, 13.6, 'ok', { offsets: [{ partition: 4, offset: 1 }] }),
    ...op('poll', { group: 'g', memberId: 'A' }, 19, 19.5, 'ok', { ...assigned('A', 2, [0, 2, 4]), pollId: 'P5', records: [rec(0, 'r10:0:0', 4), rec(1, 'r11:1:0', 4), rec(2, 'r11:0:0', 4)].map((r) => ({ ...r, topic: 't' })) }),
    ...op('fetch', { topic: 't', partition: 4, offset: 0, final: true }, 20, 21, 'ok', fetched(4, 0, [{ offset: 0, value: 'r10:0:0' }, { offset: 1, value: 'r11:1:0' }, { offset: 2, value: 'r11:0:0' }], 3, 3)),
  ];
}

/**
 * Consume-transform-produce: tx.0.0 turns inputs 0 and 1 of partition 0 into outputs 0 and 1
 * (the marker takes 2) and commits with offset 2; tx.0.1 writes input 0 of partition 1's output,
 * its commit is refused and it is aborted; tx.0.2 turns input 2 into output 5 and commits with
 * offset 3. A read_committed read after the first commit, a describe after it, and the final reads
 * once every input was consumed.
 */
function transactionHistory(): HistoryEvent[] {
  return [
    ...op('txn-join', { group: 'tg' }, 40, 40.5, 'ok', assigned('T', 1, [0, 1])),
    ...op('txn-poll', { group: 'tg', memberId: 'T' }, 40.5, 41, 'ok', { ...assigned('T', 1, [0, 1]), pollId: 'Q1', records: [{ ...rec(0, 'a', 0), topic: 'in' }, { ...rec(1, 'b', 0), topic: 'in' }] }),
    ...op('txn-produce', txnProduce('tx.0.0', [[0, 0], [0, 1]]), 41, 42, 'ok', { offsets: [{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }] }),
    ...op('txn-offsets', txnOffsets('tx.0.0', 0, 2), 42, 43, 'ok', {}),
    ...op('txn-end', { transaction: 'tx.0.0', outcome: 'commit' }, 43, 44, 'ok', {}),
    ...txnRead(44, 'out', 0, 'read_committed', [{ offset: 0, value: output('tx.0.0', 0, 0) }, { offset: 1, value: output('tx.0.0', 0, 1) }], 3),
    ...op('txn-describe', { group: 'tg' }, 45, 46, 'ok', groupOffsets(2)),
    ...op('txn-produce', txnProduce('tx.0.1', [[1, 0]]), 46, 46.5, 'ok', { offsets: [{ partition: 1, offset: 0 }] }),
    ...op('txn-end', { transaction: 'tx.0.1', outcome: 'commit' }, 46.5, 47, 'fail', undefined, { status: 409, code: 'FENCED_MEMBER_EPOCH', message: 'fenced' }),
    ...op('txn-end', { transaction: 'tx.0.1', outcome: 'abort' }, 47, 47.5, 'ok', {}),
    ...op('txn-produce', txnProduce('tx.0.2', [[0, 2]]), 47.5, 48, 'ok', { offsets: [{ partition: 0, offset: 5 }] }),
    ...op('txn-offsets', txnOffsets('tx.0.2', 0, 3), 48, 48.5, 'ok', {}),
    ...op('txn-end', { transaction: 'tx.0.2', outcome: 'commit' }, 48.5, 49, 'ok', {}),
    ...txnRead(50, 'in', 0, 'read_uncommitted', [{ offset: 0, value: 'a' }, { offset: 1, value: 'b' }, { offset: 2, value: 'c' }], 3, true),
    ...txnRead(51, 'out', 0, 'read_committed', [{ offset: 0, value: output('tx.0.0', 0, 0) }, { offset: 1, value: output('tx.0.0', 0, 1) }, { offset: 5, value: output('tx.0.2', 0, 2) }], 7, true),
    ...op('txn-describe', { group: 'tg', final: true }, 52, 53, 'ok', groupOffsets(3)),
  ];
}

const options = { gapCauseWindowMs: 60_000, drainedGroups: ['g'] };

const plants: Record<AnomalyClass, { history: HistoryEvent[]; drainedGroups?: string[] }> = {
  'lost-write': { history: op('produce', produce('r9', 0, 1, '1'), 30, 31, 'ok', { offsets: [{ partition: 0, offset: 7 }] }) },
  'two-values': { history: op('fetch', { topic: 't', partition: 0, offset: 1 }, 30, 31, 'ok', fetched(0, 1, [{ offset: 1, value: 'something else' }], 2, 5)) },
  'unexplained-duplicate': { history: op('poll', { group: 'g', memberId: 'A' }, 30, 31, 'ok', { ...assigned('A', 1, [0, 1]), pollId: 'P2', records: [{ ...rec(0, 'r0:0:1', 1), topic: 't' }] }) },
  'failed-write-visible': { history: op('fetch', { topic: 't', partition: 1, offset: 5 }, 30, 31, 'ok', fetched(1, 5, [{ offset: 5, value: 'r2:0:0' }], 6, 6)) },
  'non-contiguous': { history: op('fetch', { topic: 't', partition: 3, offset: 0 }, 30, 31, 'ok', fetched(3, 0, [{ offset: 0, value: 'r5:0:0' }, { offset: 2, value: 'r5:0:1' }], 3, 3, [{ startOffset: 1, endOffset: 2 }])) },
  'hwm-decrease': { history: op('fetch', { topic: 't', partition: 0, offset: 3 }, 30, 31, 'ok', fetched(0, 3, [], 3, 3)) },
  // Reads after a DeleteRecords was answered see its log start, at least.
  'log-start-decrease': { history: [...op('delete-records', { topic: 't', partition: 0, offset: 1 }, 30, 31, 'ok', { logStartOffset: 1 }), ...op('describe-topic', { topic: 't' }, 32, 33, 'ok', figures([0, 0, 5, 2]))] },
  'stale-read': { history: op('fetch', { topic: 't', partition: 0, offset: 0 }, 2.5, 2.6, 'ok', fetched(0, 0, [{ offset: 0, value: 'r0:0:0' }], 1, 1)) },
  'silent-skip': { history: op('fetch', { topic: 't', partition: 0, offset: 0 }, 8.5, 8.6, 'ok', fetched(0, 0, [{ offset: 0, value: 'r0:0:0' }, { offset: 2, value: 'r1:1:0' }], 3, 4)) },
  'unexplained-gap': { history: op('fetch', { topic: 't', partition: 1, offset: 0 }, 90_000, 90_001, 'ok', fetched(1, 0, [], 1, 1, [{ startOffset: 0, endOffset: 1 }])) },
  // Passed the record at 3 (a later one delivered), though the log start stayed below it.
  'group-skip': {
    history: [
      ...op('fetch', { topic: 't', partition: 2, offset: 3 }, 29, 30, 'ok', fetched(2, 3, [{ offset: 3, value: 'r7:0:0' }], 4, 4, [], 2)),
      ...op('poll', { group: 'g', memberId: 'A' }, 30, 31, 'ok', { ...assigned('A', 2, [0, 2]), pollId: 'P4', records: [{ ...rec(4, 'r8:0:0', 2), topic: 't' }] }),
      ...op('describe-topic', { topic: 't' }, 32, 33, 'ok', figures([0, 0, 5, 2], [2, 2, 5, 0])),
    ],
  },
  'double-ownership': { history: op('poll', { group: 'g', memberId: 'B' }, 30, 31, 'ok', { ...assigned('B', 1, [0]), pollId: 'P3', records: [] }) },
  'commit-backwards': { history: op('describe', { group: 'g' }, 30, 31, 'ok', offsets(3, 5)) },
  // Committed past the high watermark the same describe read after it.
  'commit-past-hwm': { history: op('describe', { group: 'g' }, 30, 31, 'ok', offsets(6, 5)) },
  // r10's one attempt (one producer id) read at a second offset.
  'idempotent-duplicate': { history: op('fetch', { topic: 't', partition: 4, offset: 3 }, 30, 31, 'ok', fetched(4, 3, [{ offset: 3, value: 'r10:0:0' }], 4, 4)) },
  // Input 2's output read again at offset 6.
  'output-duplicate': { history: txnRead(60, 'out', 0, 'read_committed', [{ offset: 6, value: output('tx.0.2', 0, 2) }], 7) },
  // A committed transaction's acknowledged output that no read has.
  'output-missing': {
    history: [
      ...op('txn-produce', txnProduce('tx.0.3', [[0, 1]]), 60, 61, 'ok', { offsets: [{ partition: 0, offset: 7 }] }),
      ...op('txn-end', { transaction: 'tx.0.3', outcome: 'commit' }, 61, 62, 'ok', {}),
    ],
  },
  // The output of tx.0.1, whose commit was refused.
  'aborted-read': { history: txnRead(60, 'out', 1, 'read_committed', [{ offset: 0, value: output('tx.0.1', 1, 0) }], 2) },
  // tx.0.0's output read before its commit was sent.
  'open-read': { history: txnRead(42, 'out', 0, 'read_committed', [{ offset: 0, value: output('tx.0.0', 0, 0) }], 2) },
  // After input 2's output was read, the group's offset shows it uncommitted.
  'offsets-mismatch': { history: op('txn-describe', { group: 'tg' }, 60, 61, 'ok', groupOffsets(2)) },
};

describe('checker', () => {
  it('finds nothing in a clean history, tells a client retry duplicate apart, and counts what the lifecycle did', () => {
    const result = check(cleanHistory(), options);
    expect(result.anomalies).toEqual([]);
    expect(result.retryDuplicates).toBe(1);
    expect(result.reinitDuplicates).toBe(1);
    expect(result.idempotentRetries).toBe(2);
    expect(result.transactions).toEqual({ committed: 2, aborted: 1 });
    // Partition 0 rolled two segments; partition 2 one, then retention removed it; its log start moved once.
    expect(result.lifecycle).toEqual({ segmentsRolled: 3, logStartMoves: 1 });
  });

  it('bounds a commit by the final read only if it was seen before that read started: the high watermark may grow afterwards', () => {
    // Committed 6 while the final read (t=20) found the log ending at 5: the commit was seen before it.
    const early = check([...cleanHistory(), ...op('describe', { group: 'g' }, 18, 19, 'ok', offsets(6, 6))], options);
    expect(early.anomalies.map((a) => a.class)).toContain('commit-past-hwm');
    // The same commit seen after the final read, with a high watermark of 6 read alongside it: a
    // hole at the end resolved, or a write whose client gave up completed, meanwhile.
    expect(check([...cleanHistory(), ...op('describe', { group: 'g' }, 30, 31, 'ok', offsets(6, 6))], options).anomalies).toEqual([]);
  });

  it('every anomaly class has a planted case', () => {
    expect(Object.keys(plants).sort()).toEqual(Object.keys(ANOMALY_CLASSES).sort());
  });

  it('a 416 naming a high watermark below one seen before is a decrease', () => {
    const refused = op('fetch', { topic: 't', partition: 0, offset: 5 }, 30, 31, 'fail', undefined, outOfRange(0, 5, 0, 4));
    expect(check([...cleanHistory(), ...refused], options).anomalies.map((a) => a.class)).toEqual(['hwm-decrease']);
  });

  it('a group never delivered a record still in the log when it was drained skipped it', () => {
    // The five records of partitions 0 and 2, and the three of partition 4.
    expect(check(cleanHistory(), { ...options, drainedGroups: ['g', 'g2'] }).anomalies.map((a) => a.class)).toEqual(Array(8).fill('group-skip'));
  });

  it('an acknowledged record read as a gap is lost, even once the log start passed it', () => {
    const gapped = op('fetch', { topic: 't', partition: 2, offset: 1 }, 14, 14.5, 'ok', fetched(2, 1, [rec(2, 'r6:0:2', 2)], 3, 3, [{ startOffset: 1, endOffset: 2 }]));
    expect(check([...cleanHistory(), ...gapped].sort((a, b) => a.time - b.time), options).anomalies.map((a) => a.class)).toEqual(['lost-write']);
  });

  it('DeleteRecords answering a log start below the offset asked for lowered it', () => {
    const lowered = op('delete-records', { topic: 't', partition: 2, offset: 3 }, 30, 31, 'ok', { logStartOffset: 2 });
    expect(check([...cleanHistory(), ...lowered], options).anomalies.map((a) => a.class)).toEqual(['log-start-decrease']);
  });

  it.each(Object.keys(plants) as AnomalyClass[])('detects %s, and only it', (cls) => {
    const plant = plants[cls];
    const result = check([...cleanHistory(), ...plant.history].sort((a, b) => a.time - b.time), { ...options, drainedGroups: plant.drainedGroups ?? options.drainedGroups });
    expect(result.counts[cls], JSON.stringify(result.anomalies)).toBeGreaterThan(0);
    expect(result.anomalies.filter((a) => a.class !== cls)).toEqual([]);
  });
});
