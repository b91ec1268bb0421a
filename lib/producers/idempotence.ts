// Idempotent produce: per producer and partition, the last sequence and the last RECENT_BATCHES
// batches, updated in the same DynamoDB transaction as the batch's index entry. Argued in
// docs/architecture.md ("Idempotent producers"):
//   - a batch is appended only if its first sequence follows the stored last one (same epoch), or
//     starts a new epoch at 0: the condition is part of the commit, so of two attempts of one batch
//     (a retry racing a slow first attempt) exactly one commits, and the other gives up its
//     reservation as a gap and answers with the winner's offsets;
//   - a retry of a committed batch is answered from the stored batches with the original offsets;
//   - a batch whose predecessor has not committed yet waits for it (bounded) before reserving, so
//     pipelined requests land in sequence order, and a lost predecessor is OUT_OF_ORDER.
import { ConflictError, InvalidRequestError, NotFoundError } from '../errors.ts';
import { sleep } from '../retry.ts';
import type { CommitGuard, DataEntry, TransactItem } from '../log/sequencer.ts';
import { PRODUCER_STATE_TTL_MS, RECENT_BATCHES, expiresIn, producerFenced, sequenceKey, type ProducerIdentity, type ProducerStore, type SequenceState } from './producer-store.ts';

/** How long a batch waits for its predecessor (sent earlier, still in flight) to commit. */
export const IN_FLIGHT_WAIT_MS = 5_000;
/** Kafka's sequences are int32; ours do not wrap: a producer re-initialises before. */
export const MAX_SEQUENCE = 2 ** 31 - 1;

export interface SequencedBatch extends ProducerIdentity {
  baseSequence: number;
  count: number;
  transactionalId?: string;
}

/** The batch is a retry of one already committed: its original base offset and time. */
export class DuplicateBatch extends Error {
  constructor(readonly baseOffset: number, readonly timestamp: number) {
    super(`batch already committed at offset ${baseOffset}`);
  }
}

/** What a batch may do: append after `previous` (undefined: the first of its epoch here). */
export interface Append {
  previous: SequenceState | undefined;
}

type Verdict = Append | DuplicateBatch | 'wait' | Error;

function outOfOrder(batch: SequencedBatch, pk: string, expected: number): ConflictError {
  return new ConflictError('OUT_OF_ORDER_SEQUENCE_NUMBER', `producer ${batch.producerId} sent sequence ${batch.baseSequence} to ${pk} but the next expected is ${expected}: an earlier batch was lost; nothing was written`);
}

/**
 * Pure: what the stored state says about `batch`. A batch ahead of the state may have its
 * predecessors in flight: 'wait', unless `waited` already.
 */
export function judge(state: SequenceState | undefined, batch: SequencedBatch, pk: string, waited = false): Verdict {
  if (!state || state.epoch < batch.producerEpoch) {
    if (batch.baseSequence === 0) return { previous: undefined };
    if (!waited) return 'wait';
    if (!state) return new NotFoundError('UNKNOWN_PRODUCER_ID', `partition ${pk} has no state of producer ${batch.producerId} (never written, or expired after ${PRODUCER_STATE_TTL_MS / 3600_000} hours idle) and sequence ${batch.baseSequence} is not 0: restart the producer with POST /v1/producers`);
    return outOfOrder(batch, pk, 0);
  }
  if (state.epoch > batch.producerEpoch) return producerFenced(batch.producerId, batch.producerEpoch, state.epoch);
  if (batch.baseSequence === state.lastSequence + 1) return { previous: state };
  if (batch.baseSequence > state.lastSequence + 1) return waited ? outOfOrder(batch, pk, state.lastSequence + 1) : 'wait';
  const original = state.recent.find(([base]) => base === batch.baseSequence);
  if (original && original[1] === batch.count) return new DuplicateBatch(original[2], original[3]);
  if (original) return new InvalidRequestError('INVALID_SEQUENCE', `sequence ${batch.baseSequence} of producer ${batch.producerId} in ${pk} was a batch of ${original[1]} records, not ${batch.count}`);
  return new ConflictError('DUPLICATE_SEQUENCE_NUMBER', `sequence ${batch.baseSequence} of producer ${batch.producerId} in ${pk} was committed before the last ${RECENT_BATCHES} batches; its offsets are no longer known`);
}

// Named condition clauses of the sequence item. Each guards one timeline:
const clauses = {
  // Attempts A and B of batch s both read last = s-1 → A commits (last = s) → B must not commit
  // too, or the batch would be in the log twice.
  sequenceFollows: '#epoch = :epoch AND #lastSeq = :previousSeq',
  // B (sequence s+1) reserved offsets before A (sequence s) did, then waited for A: offsets must
  // follow sequences, so B may not commit below A's batch (it reserves again).
  offsetsFollow: '#lastOffset < :base',
  // A producer re-initialised (epoch e+1) has written here → a zombie at epoch e must not.
  epochNewer: '#epoch < :epoch',
  // A partition's first batch of this producer, or the first after the state expired.
  stateAbsent: 'attribute_not_exists(#lastSeq) OR #expiresAt <= :nowSeconds',
  // An idempotent (non-transactional) batch may not continue a transactional producer's
  // sequence, nor the reverse (the kind is checked against the producer id on a partition's first
  // batch only).
  nonTransactional: 'attribute_not_exists(#tid)',
  sameTransactionalId: '#tid = :tid',
};

export class Idempotence {
  constructor(readonly store: ProducerStore) {}

  /**
   * Decides whether `batch` appends to `pk` or is a retry (DuplicateBatch thrown), waiting for an
   * in-flight predecessor. Refusals are thrown as their 4xx.
   */
  async check(pk: string, batch: SequencedBatch): Promise<Append> {
    const deadline = this.store.now() + IN_FLIGHT_WAIT_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const verdict = judge(await this.store.sequenceState(batch.producerId, pk), batch, pk, this.store.now() >= deadline);
      if (verdict instanceof Error) throw verdict;
      if (verdict !== 'wait') {
        // A new epoch or partition: the id must exist at this epoch (later batches are held to it by the condition).
        if (verdict.previous === undefined) await this.verifyKind(batch);
        return verdict;
      }
      await sleep(delay);
    }
  }

  private async verifyKind(batch: SequencedBatch): Promise<void> {
    const producer = await this.store.verify(batch);
    if (producer.transactionalId !== batch.transactionalId) {
      throw new InvalidRequestError('INVALID_TXN_STATE', producer.transactionalId === undefined
        ? `producer ${batch.producerId} is not transactional: leave transactionalId out`
        : `producer ${batch.producerId} belongs to transactional id ${JSON.stringify(producer.transactionalId)}: its batches must name it`);
    }
  }

  /**
   * The guard committing `batch`'s sequence with its entry; `more` are further items (the
   * transaction's check) whose refusal `refusedMore` explains.
   */
  guard(pk: string, batch: SequencedBatch, append: Append, timestamp: number, more: TransactItem[] = [], refusedMore?: () => Promise<Error>): CommitGuard {
    return {
      items: (entry: DataEntry) => [this.sequenceUpdate(pk, batch, append, entry, timestamp), ...more],
      refused: async ([sequence]) => {
        if (!sequence && refusedMore) return refusedMore();
        const verdict = judge(await this.store.sequenceState(batch.producerId, pk), batch, pk, true);
        if (verdict instanceof Error) return verdict;
        // Refused, yet the state now says "append" or "wait": a concurrent attempt moved it meanwhile.
        return outOfOrder(batch, pk, batch.baseSequence);
      },
    };
  }

  private sequenceUpdate(pk: string, batch: SequencedBatch, { previous }: Append, entry: DataEntry, timestamp: number): TransactItem {
    const now = this.store.now();
    const recent = [...(previous?.recent ?? []), [batch.baseSequence, batch.count, entry.base, timestamp]].slice(-RECENT_BATCHES);
    const condition = previous === undefined
      ? `((${clauses.stateAbsent}) OR ${clauses.epochNewer})`
      : `${clauses.sequenceFollows} AND ${clauses.offsetsFollow} AND ${batch.transactionalId === undefined ? clauses.nonTransactional : clauses.sameTransactionalId}`;
    return {
      Update: {
        TableName: this.store.table,
        Key: sequenceKey(batch.producerId, pk),
        UpdateExpression: `SET #epoch = :epoch, #lastSeq = :lastSeq, #lastOffset = :lastOffset, #recent = :recent, #expiresAt = :expiresAt${batch.transactionalId === undefined ? '' : ', #tid = :tid'}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: {
          '#epoch': 'epoch', '#lastSeq': 'lastSeq', '#lastOffset': 'lastOffset', '#recent': 'recent', '#expiresAt': 'expiresAt',
          ...((batch.transactionalId !== undefined || previous !== undefined) && { '#tid': 'tid' }),
        },
        ExpressionAttributeValues: {
          ':epoch': batch.producerEpoch,
          ':lastSeq': batch.baseSequence + batch.count - 1,
          ':lastOffset': entry.base + entry.count - 1,
          ':recent': recent,
          ':expiresAt': expiresIn(now, PRODUCER_STATE_TTL_MS),
          ...(previous === undefined ? { ':nowSeconds': Math.floor(now / 1000) } : { ':previousSeq': previous.lastSequence, ':base': entry.base }),
          ...(batch.transactionalId !== undefined && { ':tid': batch.transactionalId }),
        },
      },
    };
  }
}
