// Producer state in the groups table (which expires items by TTL for free), argued in
// docs/architecture.md ("Idempotent producers", "Transactions"):
//   g = "producer/<producerId>"              k = "producer"     the id exists: its epoch, its transactional id
//   g = "producer/<producerId>/<logPk>"      k = "sequence"     per partition: the last sequence and the
//                                                               last batches, to recognise retries
//   g = "txn/<transactionalId>"              k = "transaction"  the transactional id's producer, epoch and
//                                                               open transaction (state, partitions, offsets)
// One partition key each, so no producer or partition is a hot key for another.
import { randomInt } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ConflictError, NotFoundError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';

/** Kafka's producer.id.expiration.ms: a partition forgets a producer this long after its last batch. */
export const PRODUCER_STATE_TTL_MS = 24 * 3600_000;
/** Kafka's transactional.id.expiration.ms: an idle producer id or transactional id goes after this. */
export const PRODUCER_ID_TTL_MS = 7 * 24 * 3600_000;
/** An active producer id's expiry is pushed back at most this often (one write a day per id). */
export const PRODUCER_ID_REFRESH_MS = 24 * 3600_000;
/** Batches per producer and partition whose retries are answered with their original offsets (Kafka: 5). */
export const RECENT_BATCHES = 5;

export interface ProducerIdentity {
  producerId: number;
  producerEpoch: number;
}

export interface ProducerItem {
  producerId: number;
  epoch: number;
  transactionalId?: string;
}

/** A batch a partition remembers: its first sequence, records, base offset and the time it was given. */
export type RecentBatch = [baseSequence: number, count: number, baseOffset: number, timestamp: number];

export interface SequenceState {
  epoch: number;
  lastSequence: number;
  lastOffset: number;
  recent: RecentBatch[];
}

export function producerKey(producerId: number) {
  return { g: `producer/${producerId}`, k: 'producer' };
}

export function sequenceKey(producerId: number, pk: string) {
  return { g: `producer/${producerId}/${pk}`, k: 'sequence' };
}

export function transactionKey(transactionalId: string) {
  return { g: `txn/${transactionalId}`, k: 'transaction' };
}

/** An epoch-seconds TTL `ms` from `now`. */
export function expiresIn(now: number, ms: number): number {
  return Math.ceil((now + ms) / 1000);
}

export function unknownProducer(producerId: number): NotFoundError {
  return new NotFoundError('UNKNOWN_PRODUCER_ID', `producer id ${producerId} is unknown or expired (after ${PRODUCER_ID_TTL_MS / 3600_000} hours idle): get a new one with POST /v1/producers`);
}

export function producerFenced(producerId: number, epoch: number, current: number): ConflictError {
  return new ConflictError('PRODUCER_FENCED', `producer ${producerId} at epoch ${epoch} was fenced by a newer producer with the same transactional id (epoch ${current}); this producer must stop`);
}

export class ProducerStore {
  constructor(readonly storage: Storage, readonly now: () => number = Date.now) {}

  get table() {
    return this.storage.config.groupsTable;
  }

  /** Creates a producer id no one holds (random: no allocator to contend on, retried on a clash). */
  async create(epoch: number, transactionalId?: string): Promise<ProducerItem> {
    for (;;) {
      // Positive and exact in a double, so every JSON client reads it back unchanged.
      const producerId = randomInt(1, 2 ** 47);
      try {
        await retry(() => this.storage.ddb.send(new PutCommand({
          TableName: this.table,
          Item: { ...producerKey(producerId), epoch, tid: transactionalId, expiresAt: expiresIn(this.now(), PRODUCER_ID_TTL_MS) },
          ConditionExpression: 'attribute_not_exists(#g)',
          ExpressionAttributeNames: { '#g': 'g' },
        })));
        return { producerId, epoch, transactionalId };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
    }
  }

  async get(producerId: number): Promise<ProducerItem | undefined> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: producerKey(producerId), ConsistentRead: true }));
    const item = res.Item;
    if (!item || (item.expiresAt as number) * 1000 <= this.now()) return undefined;
    return { producerId, epoch: item.epoch as number, transactionalId: item.tid as string | undefined };
  }

  /** The producer id exists at exactly this epoch (else UNKNOWN_PRODUCER_ID or PRODUCER_FENCED). */
  async verify(identity: ProducerIdentity): Promise<ProducerItem> {
    const item = await this.get(identity.producerId);
    if (!item || item.epoch < identity.producerEpoch) throw unknownProducer(identity.producerId);
    if (item.epoch > identity.producerEpoch) throw producerFenced(identity.producerId, identity.producerEpoch, item.epoch);
    return item;
  }

  /**
   * Keeps an active producer id alive (its expiry counts from its last use, not its creation):
   * an eventually consistent read per request, and a write once its expiry is a day old. An id
   * already expired stays expired.
   */
  async refresh(producerId: number): Promise<void> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: producerKey(producerId), ProjectionExpression: '#expiresAt', ExpressionAttributeNames: { '#expiresAt': 'expiresAt' } }));
    const expiresAt = res.Item?.expiresAt as number | undefined;
    const now = this.now();
    if (expiresAt === undefined || expiresAt * 1000 <= now || expiresAt * 1000 - now > PRODUCER_ID_TTL_MS - PRODUCER_ID_REFRESH_MS) return;
    await this.storage.ddb.send(new UpdateCommand({
      TableName: this.table,
      Key: producerKey(producerId),
      UpdateExpression: 'SET #expiresAt = :expiresAt',
      // Only while it exists and nobody pushed it further meanwhile (never brought back, never moved back).
      ConditionExpression: 'attribute_exists(#g) AND #expiresAt = :seen',
      ExpressionAttributeNames: { '#g': 'g', '#expiresAt': 'expiresAt' },
      ExpressionAttributeValues: { ':expiresAt': expiresIn(now, PRODUCER_ID_TTL_MS), ':seen': expiresAt },
    })).catch((err: unknown) => {
      if ((err as Error).name !== 'ConditionalCheckFailedException') throw err;
    });
  }

  async sequenceState(producerId: number, pk: string): Promise<SequenceState | undefined> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: sequenceKey(producerId, pk), ConsistentRead: true }));
    const item = res.Item;
    // TTL deletion lags by up to days: an expired item counts as gone already.
    if (!item || (item.expiresAt as number) * 1000 <= this.now()) return undefined;
    return { epoch: item.epoch as number, lastSequence: item.lastSeq as number, lastOffset: item.lastOffset as number, recent: item.recent as RecentBatch[] };
  }
}
