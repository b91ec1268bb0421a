// Partition leader leases: one maintenance writer per partition (compaction, retention, garbage
// collection), elected and fenced through the partition's state item (o = STATE_OFFSET).
//   acquire: UpdateItem SET epoch = epoch + 1, holder, until IF the lease is free or expired
//   renew:   UpdateItem SET until IF epoch is still ours
//   fence:   every write the leader makes carries `epoch = :ours` in the same conditional write or
//            transaction (see `fence`), so a leader that lost the lease can change nothing.
// Safety never depends on clocks: the epoch only ever grows, and a write conditioned on it fails
// once anybody else took the lease. Time decides only when a lease may be taken over.
import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { LeaderFencedError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { STATE_OFFSET } from '../log/keys.ts';
import { stateFromItem, type PartitionState } from '../log/partition-state.ts';

export interface LeaseOptions {
  /** How long a lease lasts without renewal; maintenance steps renew well within it. */
  durationMs: number;
  now: () => number;
}

export const DEFAULT_LEASE_OPTIONS: LeaseOptions = { durationMs: 60_000, now: Date.now };

/** A held lease: the epoch is what fences the leader's writes. */
export interface Leadership {
  pk: string;
  epoch: number;
  holder: string;
  until: number;
  /** The previous leader's lease ran out instead of being released: it may have left work half done. */
  takenOver: boolean;
}

// Named condition clauses of the state item. Each guards one timeline:
export const leaseClauses = {
  // L1 takes the lease until t and crashes → nobody may take it before t (by the taker's clock) →
  // L2 takes it after t with epoch + 1. A clock running fast only hands over early, and then the
  // epoch fences L1 (below).
  leaseFree: 'attribute_not_exists(#epoch) OR #until < :now',
  // L1 leads at epoch 5 and pauses (a frozen Lambda, a GC pause) past its lease → L2 takes epoch 6
  // and rolls a segment → L1 resumes and tries to commit, delete or advance: every such write must
  // fail, whatever L1's clock says.
  epochMatches: '#epoch = :epoch',
};

export class Leases {
  readonly options: LeaseOptions;

  constructor(private readonly storage: Storage, options: Partial<LeaseOptions> = {}) {
    this.options = { ...DEFAULT_LEASE_OPTIONS, ...options };
  }

  private get table() {
    return this.storage.config.logTable;
  }

  /** Takes the partition's lease if nobody holds a live one; undefined if somebody does. */
  async acquire(pk: string): Promise<Leadership | undefined> {
    const holder = randomBytes(6).toString('base64url');
    const now = this.options.now();
    const until = now + this.options.durationMs;
    try {
      const res = await retry(() => this.storage.ddb.send(new UpdateCommand({
        TableName: this.table,
        Key: { p: pk, o: STATE_OFFSET },
        // The state item is created by the first leader; its counters start at zero.
        UpdateExpression: 'SET #epoch = if_not_exists(#epoch, :zero) + :one, #holder = :holder, #until = :until, #logStart = if_not_exists(#logStart, :zero), #segEnd = if_not_exists(#segEnd, :zero)',
        ConditionExpression: leaseClauses.leaseFree,
        ExpressionAttributeNames: { '#epoch': 'epoch', '#holder': 'holder', '#until': 'until', '#logStart': 'logStart', '#segEnd': 'segEnd' },
        ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':holder': holder, ':until': until, ':now': now },
        ReturnValues: 'ALL_OLD',
      })));
      const previous = res.Attributes;
      return { pk, epoch: ((previous?.epoch as number | undefined) ?? 0) + 1, holder, until, takenOver: ((previous?.until as number | undefined) ?? 0) > 0 };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
  }

  /** Extends the lease; LeaderFencedError if another leader took over meanwhile. */
  async renew(lease: Leadership): Promise<Leadership> {
    const until = this.options.now() + this.options.durationMs;
    await this.updateFenced(lease, 'SET #until = :until', { '#until': 'until' }, { ':until': until });
    return { ...lease, until };
  }

  /** Lets the next maintenance run take over at once instead of waiting for the lease to expire. */
  async release(lease: Leadership): Promise<void> {
    await this.updateFenced(lease, 'SET #until = :zero', { '#until': 'until' }, { ':zero': 0 }).catch((err: unknown) => {
      if (!(err instanceof LeaderFencedError)) throw err;
    });
  }

  /** A ConditionCheck for a transaction: the write happens only while `lease` is current. */
  fence(lease: Leadership) {
    return {
      ConditionCheck: {
        TableName: this.table,
        Key: { p: lease.pk, o: STATE_OFFSET },
        ConditionExpression: leaseClauses.epochMatches,
        ExpressionAttributeNames: { '#epoch': 'epoch' },
        ExpressionAttributeValues: { ':epoch': lease.epoch },
      },
    };
  }

  /**
   * An update of the state item, applied only while `lease` is current and `condition` (if any)
   * holds. LeaderFencedError if the epoch moved on; undefined if only `condition` failed.
   */
  async updateFenced(lease: Leadership, update: string, names: Record<string, string>, values: Record<string, unknown>, condition?: string): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await retry(() => this.storage.ddb.send(new UpdateCommand({
        TableName: this.table,
        Key: { p: lease.pk, o: STATE_OFFSET },
        UpdateExpression: update,
        ConditionExpression: condition ? `${leaseClauses.epochMatches} AND (${condition})` : leaseClauses.epochMatches,
        ExpressionAttributeNames: { '#epoch': 'epoch', ...names },
        ExpressionAttributeValues: { ':epoch': lease.epoch, ...values },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      })));
      return res.Attributes!;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const current = err.Item ? (unmarshall(err.Item).epoch as number | undefined) : await this.epochOf(lease.pk);
      if (current !== lease.epoch) throw fenced(lease, current);
      return undefined;
    }
  }

  /** The partition's current leader epoch (0 if nobody ever led it). */
  async epochOf(pk: string): Promise<number> {
    return (await this.stateOf(pk)).leaderEpoch;
  }

  /** The partition's state item, read consistently. */
  async stateOf(pk: string): Promise<PartitionState> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: { p: pk, o: STATE_OFFSET }, ConsistentRead: true }));
    return stateFromItem(res.Item);
  }
}

export function fenced(lease: Leadership, current: number | undefined): LeaderFencedError {
  return new LeaderFencedError(`leader of ${lease.pk} at epoch ${lease.epoch} was fenced: the partition's leader epoch is now ${current ?? 'unknown'}`);
}
