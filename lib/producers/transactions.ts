// The transaction coordinator: one item per transactional id (lib/producers/producer-store.ts)
// holding its producer, epoch and open transaction. Argued in docs/architecture.md ("Transactions").
//   register    a transaction's first write to a partition pins it there (head attribute
//               txn_<producerId> = the next offset) in the same DynamoDB transaction that adds the
//               partition to the coordinator item; readers in read_committed stop at the lowest pin
//   end         commit or abort: the coordinator item goes to prepareCommit/prepareAbort (a commit
//               writes the group offsets in that same transaction: the decision), then each
//               partition gets its marker and loses its pin (Sequencer.endTransaction), then the
//               item returns to empty. Any step may be repeated by anyone who finds it unfinished.
//   init        POST /v1/producers with a transactional id bumps the epoch (fencing the previous
//               producer) and finishes or aborts whatever transaction it left
//   timeout     a transaction past its deadline is aborted (with an epoch bump, as in Kafka) by the
//               next reader it blocks, the next init, or its own producer's next request
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isTransactionConflict, transactOnce } from '../aws/transactions.ts';
import { ConflictError, InvalidRequestError, PartitionLogMissingError, StorageUnavailableError } from '../errors.ts';
import type { Offsets } from '../groups/offsets.ts';
import type { Committer, OffsetCommit, TopicOffset } from '../groups/group-store.ts';
import { retry } from '../retry.ts';
import type { Sequencer, TransactItem, TransactionOutcome, TransactionPin } from '../log/sequencer.ts';
import { PRODUCER_ID_TTL_MS, expiresIn, producerFenced, producerKey, transactionKey, unknownProducer, type ProducerIdentity, type ProducerStore } from './producer-store.ts';

/** Kafka's transaction.timeout.ms default and the largest we accept (Kafka's broker default max). */
export const DEFAULT_TRANSACTION_TIMEOUT_MS = 60_000;
export const MAX_TRANSACTION_TIMEOUT_MS = 15 * 60_000;
/** Partitions one registration transaction pins (TransactWriteItems takes 100 items). */
const PINS_PER_TRANSACTION = 99;

/** Reads and bumps a timeout abort tries while the transaction keeps changing under it (registrations). */
const MAX_ABORT_ATTEMPTS = 8;

export type TransactionState = 'empty' | 'ongoing' | 'prepareCommit' | 'prepareAbort';

export interface TransactionItem {
  transactionalId: string;
  producerId: number;
  epoch: number;
  /** The number of the current (or next) transaction: transactions closed so far. */
  transaction: number;
  state: TransactionState;
  timeoutMs: number;
  /** Partition log keys the open transaction wrote to (pinned). */
  partitions: string[];
  deadline?: number;
  offsets?: TransactionOffsets;
  /** How the last closed transaction ended: a retried commit or abort is answered by it. */
  lastOutcome?: TransactionOutcome;
}

/** Offsets added to the transaction by one group member (Kafka's sendOffsetsToTransaction). */
export interface TransactionOffsets {
  groupId: string;
  member: Committer;
  offsets: TopicOffset[];
}

const prepared: Record<TransactionOutcome, TransactionState> = { commit: 'prepareCommit', abort: 'prepareAbort' };

// Named condition clauses of the coordinator item. Each guards one timeline:
const clauses = {
  // Producer P (epoch e) writes → P' inits with the same transactional id (epoch e+1) → P's
  // later write, offsets or commit must fail: P is a zombie.
  epochMatches: '#pid = :pid AND #epoch = :epoch',
  // P's commit moved the item to prepareCommit → P's delayed write must not join the transaction
  // whose markers are being written (it would land after its marker, outside its range).
  writable: '(#state = :empty OR #state = :ongoing)',
  // Registration after the deadline: the transaction is (about to be) aborted for its timeout.
  beforeDeadline: '(attribute_not_exists(#deadline) OR #deadline > :now)',
  // Two completers, or a completer and an init, move the item from the state they read, once.
  stateIs: '#state = :from',
  // Batch b of transaction n stalls → n is aborted and closed → the producer (same epoch) starts
  // n+1 in the same partition → b must not commit into n+1: it lies below n's marker.
  transactionIs: '#txnSeq = :transaction',
  // A timeout abort judged transaction n expired → the producer decided n (or a new epoch took
  // over, or n closed and n+1 began) → the abort must change nothing.
  expired: '#deadline <= :now',
};

function transactionFromItem(item: Record<string, unknown>): TransactionItem {
  return {
    transactionalId: (item.g as string).slice('txn/'.length),
    producerId: item.pid as number,
    epoch: item.epoch as number,
    transaction: item.txnSeq as number,
    state: item.state as TransactionState,
    timeoutMs: item.timeoutMs as number,
    partitions: item.partitions instanceof Set ? [...(item.partitions as Set<string>)].sort() : [],
    deadline: item.deadline as number | undefined,
    offsets: item.offsets as TransactionOffsets | undefined,
    lastOutcome: item.lastOutcome as TransactionOutcome | undefined,
  };
}

export class TransactionCoordinator {
  constructor(
    private readonly producers: ProducerStore,
    private readonly sequencer: Sequencer,
    private readonly offsets: Offsets,
  ) {}

  private get table() {
    return this.producers.table;
  }

  private now() {
    return this.producers.now();
  }

  async read(transactionalId: string): Promise<TransactionItem | undefined> {
    const res = await this.producers.storage.ddb.send(new GetCommand({ TableName: this.table, Key: transactionKey(transactionalId), ConsistentRead: true }));
    return res.Item ? transactionFromItem(res.Item) : undefined;
  }

  /**
   * Kafka's InitProducerId with a transactional id: the id's producer at a new epoch. The previous
   * epoch is fenced from here on; a transaction it left open is aborted, one it was committing is
   * finished first.
   */
  async init(transactionalId: string, timeoutMs: number): Promise<ProducerIdentity> {
    for (;;) {
      const current = await this.read(transactionalId);
      if (!current) {
        const producer = await this.producers.create(0, transactionalId);
        try {
          await this.producers.storage.ddb.send(new PutCommand({
            TableName: this.table,
            Item: { ...transactionKey(transactionalId), pid: producer.producerId, epoch: 0, txnSeq: 0, state: 'empty', timeoutMs, expiresAt: expiresIn(this.now(), PRODUCER_ID_TTL_MS) },
            ConditionExpression: 'attribute_not_exists(#g)',
            ExpressionAttributeNames: { '#g': 'g' },
          }));
          return { producerId: producer.producerId, producerEpoch: 0 };
        } catch (err) {
          if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
          continue; // another init created it first: bump from there
        }
      }
      if (current.state === 'prepareCommit' || current.state === 'prepareAbort') {
        await this.complete(current);
        continue;
      }
      // Raced another init or completer, or a registration: read again.
      if (!(await this.bumpEpoch(current, timeoutMs))) continue;
      return { producerId: current.producerId, producerEpoch: current.epoch + 1 };
    }
  }

  /**
   * Moves the transactional id to the next epoch, fencing its producer, and aborts the transaction
   * it had open (completing the abort). False, with nothing changed, if the item is no longer as
   * read: another epoch, state or partition set, or (`onlyIfExpired`) a transaction that has not
   * timed out.
   */
  private async bumpEpoch(current: TransactionItem, timeoutMs: number, onlyIfExpired = false): Promise<boolean> {
    const epoch = current.epoch + 1;
    const now = this.now();
    const conditions = [`#epoch = :previous`, clauses.stateIs, clauses.transactionIs, ...(onlyIfExpired ? [clauses.expired] : [])];
    try {
      await transactOnce(this.producers.storage, [
        {
          Update: {
            TableName: this.table,
            Key: transactionKey(current.transactionalId),
            // An open transaction is aborted at the new epoch: the old producer can no longer touch it.
            UpdateExpression: 'SET #epoch = :epoch, #state = :next, #timeoutMs = :timeoutMs, #expiresAt = :expiresAt',
            ConditionExpression: conditions.join(' AND '),
            ExpressionAttributeNames: { '#epoch': 'epoch', '#state': 'state', '#timeoutMs': 'timeoutMs', '#expiresAt': 'expiresAt', '#txnSeq': 'txnSeq', ...(onlyIfExpired && { '#deadline': 'deadline' }) },
            ExpressionAttributeValues: {
              ':epoch': epoch, ':previous': current.epoch, ':from': current.state, ':transaction': current.transaction,
              ':next': current.state === 'ongoing' ? 'prepareAbort' : 'empty', ':timeoutMs': timeoutMs, ':expiresAt': expiresIn(now, PRODUCER_ID_TTL_MS),
              ...(onlyIfExpired && { ':now': now }),
            },
          },
        },
        this.producerEpochUpdate(current.producerId, epoch, current.transactionalId),
      ]);
    } catch (err) {
      if (err instanceof TransactionCanceledException) return false;
      throw err;
    }
    if (current.state === 'ongoing') await this.completeDecided({ ...current, epoch, state: 'prepareAbort' });
    return true;
  }

  /**
   * Completes a transaction just decided (`decided`: as read before the decision, with the decided
   * epoch and state), from the coordinator item read again: a registration may have added a
   * partition between that read and the decision, and none can after it (`writable`), so only a
   * read after the decision has them all. Nothing to do if it was completed meanwhile.
   */
  private async completeDecided(decided: TransactionItem): Promise<void> {
    const after = await this.read(decided.transactionalId);
    if (after && after.epoch === decided.epoch && after.transaction === decided.transaction && after.state === decided.state) await this.complete(after);
  }

  /** The producer id at the new epoch; written whole, as the TTL may have deleted it meanwhile. */
  private producerEpochUpdate(producerId: number, epoch: number, transactionalId: string): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: producerKey(producerId),
        UpdateExpression: 'SET #epoch = :epoch, #tid = :tid, #expiresAt = :expiresAt',
        ExpressionAttributeNames: { '#epoch': 'epoch', '#tid': 'tid', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: { ':epoch': epoch, ':tid': transactionalId, ':expiresAt': expiresIn(this.now(), PRODUCER_ID_TTL_MS) },
      },
    };
  }

  /**
   * Joins `pks` to the producer's transaction (starting one if none is open) and pins the
   * transaction on each partition, atomically per chunk of partitions. Returns the transaction's
   * number, which its batches' commits check.
   */
  async register(identity: ProducerIdentity, transactionalId: string, pks: string[]): Promise<number> {
    const current = await this.read(transactionalId);
    if (!current || current.producerId !== identity.producerId || current.epoch !== identity.producerEpoch) throw await this.refusal(identity, transactionalId);
    const { transaction } = current;
    for (let i = 0; i < pks.length; i += PINS_PER_TRANSACTION) {
      const chunk = pks.slice(i, i + PINS_PER_TRANSACTION);
      const now = this.now();
      try {
        await transactOnce(this.producers.storage, [
          {
            Update: {
              TableName: this.table,
              Key: transactionKey(transactionalId),
              UpdateExpression: 'SET #state = :ongoing, #deadline = if_not_exists(#deadline, :deadline) ADD #partitions :pks REMOVE #expiresAt',
              ConditionExpression: `${clauses.epochMatches} AND ${clauses.transactionIs} AND ${clauses.writable} AND ${clauses.beforeDeadline}`,
              ExpressionAttributeNames: { '#pid': 'pid', '#epoch': 'epoch', '#txnSeq': 'txnSeq', '#state': 'state', '#deadline': 'deadline', '#partitions': 'partitions', '#expiresAt': 'expiresAt' },
              ExpressionAttributeValues: { ':pid': identity.producerId, ':epoch': identity.producerEpoch, ':transaction': transaction, ':empty': 'empty', ':ongoing': 'ongoing', ':now': now, ':deadline': now + current.timeoutMs, ':pks': new Set(chunk) },
            },
          },
          ...chunk.map((pk) => this.sequencer.pinItem(pk, { producerId: identity.producerId, transaction })),
        ]);
      } catch (err) {
        if (!(err instanceof TransactionCanceledException)) throw err;
        const [coordinator, ...heads] = (err.CancellationReasons ?? []).map((r) => r.Code === 'ConditionalCheckFailed');
        // A head's condition: the topic was deleted meanwhile.
        if (!coordinator && heads.some(Boolean)) throw new PartitionLogMissingError(`a partition log of transaction ${transaction} of ${JSON.stringify(transactionalId)} no longer exists`, { cause: err });
        if (!coordinator) throw new StorageUnavailableError(`registering the transaction of ${JSON.stringify(transactionalId)} kept conflicting with other writes; retry`, { cause: err });
        throw await this.refusal(identity, transactionalId, err);
      }
    }
    return transaction;
  }

  /** The check a transactional batch's commit carries: the transaction is still open at this epoch, with the partition. */
  batchCheck(identity: ProducerIdentity, transactionalId: string, transaction: number, pk: string): TransactItem {
    return {
      ConditionCheck: {
        TableName: this.table,
        Key: transactionKey(transactionalId),
        ConditionExpression: `${clauses.epochMatches} AND ${clauses.transactionIs} AND #state = :ongoing AND contains(#partitions, :pk)`,
        ExpressionAttributeNames: { '#pid': 'pid', '#epoch': 'epoch', '#txnSeq': 'txnSeq', '#state': 'state', '#partitions': 'partitions' },
        ExpressionAttributeValues: { ':pid': identity.producerId, ':epoch': identity.producerEpoch, ':transaction': transaction, ':ongoing': 'ongoing', ':pk': pk },
      },
    };
  }

  /** Why the coordinator item refused `identity`'s write: fenced, timed out (then aborted), or not open. */
  async refusal(identity: ProducerIdentity, transactionalId: string, cause?: unknown): Promise<Error> {
    const current = await this.read(transactionalId);
    if (!current || current.producerId !== identity.producerId) return unknownProducer(identity.producerId);
    if (current.epoch > identity.producerEpoch) return producerFenced(identity.producerId, identity.producerEpoch, current.epoch);
    if (current.epoch < identity.producerEpoch) return unknownProducer(identity.producerId);
    if (current.deadline !== undefined && current.deadline <= this.now() && current.state === 'ongoing') {
      await this.abortExpired(transactionalId, current.transaction);
      return new ConflictError('PRODUCER_FENCED', `the transaction of ${JSON.stringify(transactionalId)} passed its timeout of ${current.timeoutMs} ms and was aborted; the producer was fenced (initialise it again)`, { cause });
    }
    if (isTransactionConflict(cause)) return new ConflictError('CONCURRENT_TRANSACTIONS', `the transaction of ${JSON.stringify(transactionalId)} is being changed concurrently; retry`, { cause });
    return new ConflictError('INVALID_TXN_STATE', `the transaction of ${JSON.stringify(transactionalId)} is ${current.state === 'empty' ? 'not open' : `being completed (${current.state})`}: a write must come before commit or abort`, { cause });
  }

  /** Adds a group member's offsets, committed with the transaction (Kafka's sendOffsetsToTransaction). */
  async addOffsets(identity: ProducerIdentity, transactionalId: string, groupId: string, member: Committer, offsets: OffsetCommit[]): Promise<void> {
    const tagged = await this.offsets.validateForTransaction(offsets);
    const current = await this.read(transactionalId);
    if (current?.offsets && (current.offsets.groupId !== groupId || current.offsets.member.memberId !== member.memberId)) {
      throw new InvalidRequestError('INVALID_TXN_STATE', `the transaction already holds offsets of group ${JSON.stringify(current.offsets.groupId)} member ${current.offsets.member.memberId}; one transaction commits offsets of one group member`);
    }
    const byPartition = new Map((current?.offsets?.offsets ?? []).map((o) => [`${o.topic}:${o.partition}`, o]));
    for (const o of tagged) byPartition.set(`${o.topic}:${o.partition}`, o);
    if (byPartition.size > 98) throw new InvalidRequestError('TOO_MANY_OFFSETS', 'a transaction commits offsets of at most 98 partitions');
    const now = this.now();
    try {
      await retry(() => this.producers.storage.ddb.send(new UpdateCommand({
        TableName: this.table,
        Key: transactionKey(transactionalId),
        UpdateExpression: 'SET #state = :ongoing, #deadline = if_not_exists(#deadline, :deadline), #offsets = :offsets REMOVE #expiresAt',
        ConditionExpression: `${clauses.epochMatches} AND ${clauses.writable} AND ${clauses.beforeDeadline}`,
        ExpressionAttributeNames: { '#pid': 'pid', '#epoch': 'epoch', '#state': 'state', '#deadline': 'deadline', '#offsets': 'offsets', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: {
          ':pid': identity.producerId, ':epoch': identity.producerEpoch, ':empty': 'empty', ':ongoing': 'ongoing', ':now': now,
          ':deadline': now + (current?.timeoutMs ?? DEFAULT_TRANSACTION_TIMEOUT_MS),
          ':offsets': { groupId, member, offsets: [...byPartition.values()] },
        },
      })));
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
      throw await this.refusal(identity, transactionalId, err);
    }
  }

  /** Kafka's EndTxn: commit or abort the producer's open transaction. */
  async end(identity: ProducerIdentity, transactionalId: string, outcome: TransactionOutcome): Promise<void> {
    const current = await this.read(transactionalId);
    if (!current || current.producerId !== identity.producerId || current.epoch !== identity.producerEpoch) throw await this.refusal(identity, transactionalId);
    if (current.state === 'empty') {
      // A retry of the call that ended the last transaction is answered as it was; the opposite
      // outcome cannot be had any more (Kafka's INVALID_TXN_STATE). Nothing ever written: nothing to end.
      if (current.lastOutcome === undefined || current.lastOutcome === outcome) return;
      throw new ConflictError('INVALID_TXN_STATE', `no transaction of ${JSON.stringify(transactionalId)} is open: the last one was ${current.lastOutcome === 'commit' ? 'committed' : 'aborted'}`);
    }
    if (current.state === 'ongoing') {
      if (outcome === 'commit' && current.deadline !== undefined && current.deadline <= this.now()) throw await this.refusal(identity, transactionalId);
      await this.decide(current, outcome);
    } else if (current.state !== prepared[outcome]) {
      throw new ConflictError('INVALID_TXN_STATE', `the transaction of ${JSON.stringify(transactionalId)} is already ${current.state === 'prepareCommit' ? 'committing' : 'aborting'}`);
    }
    await this.completeDecided({ ...current, state: prepared[outcome] });
  }

  /**
   * The decision: ongoing → prepareCommit (with the group offsets, fenced by the member's epoch) or
   * prepareAbort. From here the outcome is fixed; completing it only records it per partition.
   */
  private async decide(current: TransactionItem, outcome: TransactionOutcome): Promise<void> {
    const offsets = outcome === 'commit' ? current.offsets : undefined;
    let puts = offsets?.offsets ?? [];
    for (;;) {
      const groupItems = offsets ? this.offsets.transactionalCommitItems(offsets.groupId, offsets.member, offsets.offsets, puts) : [];
      // One token for every attempt: a retry after an applied but unanswered decision is a no-op,
      // not a refusal by its own effect (the state is no longer ongoing).
      try {
        await transactOnce(this.producers.storage, [
          {
            Update: {
              TableName: this.table,
              Key: transactionKey(current.transactionalId),
              UpdateExpression: 'SET #state = :next',
              ConditionExpression: `${clauses.epochMatches} AND ${clauses.stateIs}`,
              ExpressionAttributeNames: { '#pid': 'pid', '#epoch': 'epoch', '#state': 'state' },
              ExpressionAttributeValues: { ':pid': current.producerId, ':epoch': current.epoch, ':from': 'ongoing', ':next': prepared[outcome] },
            },
          },
          ...groupItems,
        ]);
        return;
      } catch (err) {
        if (!(err instanceof TransactionCanceledException)) throw err;
        const [coordinator, fence, ...behind] = (err.CancellationReasons ?? []).map((r) => r.Code === 'ConditionalCheckFailed');
        if (coordinator) throw await this.refusal({ producerId: current.producerId, producerEpoch: current.epoch }, current.transactionalId, err);
        if (fence && offsets) throw await this.offsets.whyRejected(offsets.groupId, offsets.member, offsets.offsets);
        // An offset already committed further (by this member outside the transaction): never lowered.
        if (!behind.some(Boolean)) throw err;
        puts = puts.filter((_, i) => !behind[i]);
      }
    }
  }

  /** Records a decided outcome in every partition, then closes the transaction. Idempotent. */
  async complete(current: TransactionItem): Promise<void> {
    const outcome: TransactionOutcome = current.state === 'prepareCommit' ? 'commit' : 'abort';
    await Promise.all(current.partitions.map(async (pk) => {
      // A deleted topic's partition has nothing left to complete.
      const pins = await this.sequencer.openTransactions(pk).catch((err: unknown) => {
        if (err instanceof PartitionLogMissingError) return [];
        throw err;
      });
      const pin = pins.find((p) => p.producerId === current.producerId && p.transaction === current.transaction);
      if (pin) await this.sequencer.endTransaction(pk, pin, outcome);
    }));
    try {
      await retry(() => this.producers.storage.ddb.send(new UpdateCommand({
        TableName: this.table,
        Key: transactionKey(current.transactionalId),
        UpdateExpression: 'SET #state = :empty, #lastOutcome = :outcome, #expiresAt = :expiresAt REMOVE #partitions, #offsets, #deadline ADD #txnSeq :one',
        ConditionExpression: `#epoch = :epoch AND ${clauses.transactionIs} AND ${clauses.stateIs}`,
        ExpressionAttributeNames: { '#epoch': 'epoch', '#txnSeq': 'txnSeq', '#state': 'state', '#lastOutcome': 'lastOutcome', '#partitions': 'partitions', '#offsets': 'offsets', '#deadline': 'deadline', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: { ':epoch': current.epoch, ':transaction': current.transaction, ':from': current.state, ':empty': 'empty', ':outcome': outcome, ':one': 1, ':expiresAt': expiresIn(this.now(), PRODUCER_ID_TTL_MS) },
      })));
    } catch (err) {
      // Someone else closed it (a concurrent completer, or an init that bumped the epoch meanwhile).
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    }
  }

  /**
   * Aborts the transactional id's open transaction (transaction number `transaction`, if given) if
   * it passed its deadline, bumping the epoch so its producer is fenced (Kafka's coordinator-side
   * timeout); finishes it if it is already decided. Only that transaction: one decided, closed or
   * taken over by another epoch meanwhile is left as it is (never a bump of whatever came next).
   * Returns whether the transaction was ended here.
   */
  async abortExpired(transactionalId: string, transaction?: number): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ABORT_ATTEMPTS; attempt++) {
      const current = await this.read(transactionalId);
      if (!current || (transaction !== undefined && current.transaction !== transaction)) return false;
      if (current.state === 'prepareCommit' || current.state === 'prepareAbort') {
        await this.complete(current);
        return true;
      }
      if (current.state !== 'ongoing' || current.deadline === undefined || current.deadline > this.now()) return false;
      // Refused if anything moved since the read (a decision, a registration, another epoch): read again.
      if (await this.bumpEpoch(current, current.timeoutMs, true)) return true;
      transaction = current.transaction;
    }
    return false;
  }

  /**
   * A read_committed reader, or compaction, is held at `pk`'s pin of `producerId`: abort its
   * transaction if it timed out. A pin whose producer id is gone (expired) can belong to no open
   * transaction: it is aborted in place. Returns whether the transaction was ended.
   */
  async unblock(pk: string, pin: TransactionPin): Promise<boolean> {
    const producer = await this.producers.get(pin.producerId);
    if (producer?.transactionalId !== undefined) return this.abortExpired(producer.transactionalId, pin.transaction);
    return !producer && (await this.sequencer.endTransaction(pk, pin, 'abort'));
  }
}
