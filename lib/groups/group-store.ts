// Consumer-group items in DynamoDB (table layout in lib/aws/schema.ts, argued in
// docs/consumer-groups.md):
//   k = "group"                          the group item: epoch, assignor, members, and `version`
//   k = "offset#<topic>#<partition>"     one committed offset, tagged with the topic's topicId
// Every membership change is read (consistent) → pure transition → Put conditioned on the version
// read, retried with jitter on conflict. Member commits are a transaction of a ConditionCheck on
// the group item (the member holds the partitions at that epoch) and the offset Puts, so a
// rejected commit writes nothing; each Put never lowers its partition's offset, so committed offsets
// only move back through writes that require an empty group (reset, standalone commit).
// Heartbeats never touch offset items, commits never bump version.
import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, paginateQuery, paginateScan, type PutCommandInput } from '@aws-sdk/lib-dynamodb';
import { allItems, byCodeUnits } from '../aws/pages.ts';
import { isTransactionConflict } from '../aws/transactions.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import type { TransactItem } from '../log/sequencer.ts';
import { sortedTopicPartitions, type Group, type Member, type TopicPartition } from './model.ts';

export const GROUP_ITEM_KEY = 'group';
const OFFSET_KEY_PREFIX = 'offset#';
/** TransactWriteItems takes 100 items; one is the group condition. */
export const MAX_OFFSETS_PER_COMMIT = 99;

export interface OffsetCommit {
  topic: string;
  partition: number;
  offset: number;
  metadata?: string;
}

/** An offset of one topic incarnation: `topicId` tells a deleted topic's offsets from its namesake's. */
export interface TopicOffset extends OffsetCommit {
  topicId: string;
}

export interface CommittedOffset extends TopicOffset {
  committedAt: number;
  /** Absent for standalone commits and resets. */
  memberId?: string;
  memberEpoch?: number;
}

/** Who commits as a member: checked against the group item in the same transaction. */
export interface Committer {
  memberId: string;
  memberEpoch: number;
}

export function offsetKey(topic: string, partition: number): string {
  return `${OFFSET_KEY_PREFIX}${topic}#${partition}`;
}

/** Another writer changed the group item between our read and our write: re-read and re-apply. */
class GroupChangedError extends ConflictError {
  override readonly retryable = true;
  constructor(groupId: string) {
    super('CONCURRENT_MODIFICATION', `group ${groupId} kept changing under concurrent writers; retry the request`);
  }
}

// Named condition clauses (of the group item unless said otherwise). Each guards one timeline:
const clauses = {
  // A and B both read version 7 → A writes version 8 (say, B's partition moved to A) → B's write,
  // computed from version 7, must fail and be recomputed from 8: no update is ever lost.
  versionMatches: '#version = :expectedVersion',
  // A and B both find no group → both create it → exactly one creation wins; the other re-reads.
  groupAbsent: 'attribute_not_exists(#g)',
  // M commits at epoch 5 → M's revocation completes (epoch 6), or M expires and another member
  // takes its partitions → M's delayed commit must fail rather than overwrite the new owner's.
  memberEpochMatches: '#members.#member.#memberEpoch = :memberEpoch',
  // M owns p at epoch 5 → M releases p (its epoch may stay 5 while other revocations are pending)
  // → N takes p and commits → M's late commit of p must fail.
  memberOwns: (i: number) => `contains(#members.#member.#assigned, :tp${i})`,
  // On a member's offset Put. M's poll P1 reads the group (its batch up to 5 pending) and stalls →
  // the client's retry P2 commits 5, the client's next poll commits 10 → P1's late commit of 5 must
  // not move the offset back (nor may a duplicated explicit commit arriving after a later one). An
  // offset of another topic incarnation, or one stored before offsets were tagged, counts as absent.
  offsetNotBehind: 'attribute_not_exists(#offset) OR #offset <= :offset OR attribute_not_exists(#topicId) OR #topicId <> :topicId',
  // D marks the group deleting at version v and stalls → a helper finishes the deletion and a new
  // group is created under the same id → D's late deletes must not remove the new group's offsets.
  stillDeleting: '#version = :expectedVersion AND #deleting = :true',
};

export class GroupStore {
  constructor(private readonly storage: Storage) {}

  private get table() {
    return this.storage.config.groupsTable;
  }

  async read(groupId: string): Promise<Group | undefined> {
    const res = await this.storage.ddb.send(new GetCommand({ TableName: this.table, Key: { g: groupId, k: GROUP_ITEM_KEY }, ConsistentRead: true }));
    return res.Item ? groupFromItem(res.Item) : undefined;
  }

  /**
   * Applies `change` to the current group and writes the result (with `offsets`, atomically) only if
   * the group is unchanged since it was read; otherwise re-reads and re-applies, so `change` must be
   * a function of the group it is given. `known`, a group just read or written, saves the first read.
   * A group being deleted is first deleted for good (so `change` sees no group).
   */
  async mutate(groupId: string, change: (current: Group | undefined) => Promise<{ group: Group; offsets?: CommittedOffset[] }>, known?: Group): Promise<Group> {
    return retry(async (attempt) => {
      let current = attempt === 0 && known ? known : await this.read(groupId);
      if (current?.deleting) {
        await this.finishDeletion(current);
        current = await this.read(groupId);
      }
      const { group, offsets = [] } = await change(current);
      const next: Group = { ...group, version: (current?.version ?? 0) + 1 };
      const put: PutCommandInput = {
        TableName: this.table,
        Item: groupToItem(next),
        ConditionExpression: current ? clauses.versionMatches : clauses.groupAbsent,
        ExpressionAttributeNames: current ? { '#version': 'version' } : { '#g': 'g' },
        ExpressionAttributeValues: current ? { ':expectedVersion': current.version } : undefined,
      };
      try {
        if (offsets.length === 0) {
          await this.storage.ddb.send(new PutCommand(put));
        } else {
          await this.storage.ddb.send(new TransactWriteCommand({
            TransactItems: [{ Put: put }, ...offsets.map((o) => ({ Put: { TableName: this.table, Item: offsetToItem(groupId, o) } }))],
          }));
        }
      } catch (err) {
        // With offsets this is a transaction: a failed version condition cancels it with reason
        // ConditionalCheckFailed rather than throwing ConditionalCheckFailedException.
        if (isConditionFailure(err) || isTransactionConflict(err)) throw new GroupChangedError(groupId);
        throw err;
      }
      return next;
    }, { attempts: 40, baseDelayMs: 10, maxDelayMs: 400 });
  }

  /**
   * Writes offsets only if the member is in the group at `memberEpoch` and owns every partition.
   * Returns false (nothing written) otherwise. An offset below the one stored for the same
   * topic incarnation (a late or duplicated commit) is left alone: the transaction is cancelled, its
   * cancellation reasons name those Puts, and the others are committed again without them. The
   * ConditionCheck keeps checking every partition (even when no Put is left), so the answer keeps
   * its meaning.
   */
  async commitAsMember(groupId: string, member: Committer, offsets: TopicOffset[], now: number): Promise<boolean> {
    let ahead = offsets;
    for (;;) {
      try {
        await retry(() => this.storage.ddb.send(this.memberCommit(groupId, member, offsets, ahead, now)), { isRetryable: isTransactionConflict });
        return true;
      } catch (err) {
        if (!(err instanceof TransactionCanceledException)) throw err;
        // Reasons are positional: the group's ConditionCheck first, then one per offset Put.
        const [fence, ...puts] = (err.CancellationReasons ?? []).map((r) => r.Code === 'ConditionalCheckFailed');
        if (fence) return false;
        if (!puts.some(Boolean)) throw err;
        ahead = ahead.filter((_, i) => !puts[i]);
      }
    }
  }

  private memberCommit(groupId: string, member: Committer, owned: TopicOffset[], puts: TopicOffset[], now: number): TransactWriteCommand {
    return new TransactWriteCommand({ TransactItems: this.memberCommitItems(groupId, member, owned, puts, now) });
  }

  /**
   * The fence on every partition of `owned`, then a Put of each offset in `puts`: a member's commit,
   * also part of a producer transaction's commit (sendOffsetsToTransaction).
   */
  memberCommitItems(groupId: string, member: Committer, owned: TopicOffset[], puts: TopicOffset[], now: number): TransactItem[] {
    return [
        {
          ConditionCheck: {
            TableName: this.table,
            Key: { g: groupId, k: GROUP_ITEM_KEY },
            ConditionExpression: [clauses.memberEpochMatches, ...owned.map((_, i) => clauses.memberOwns(i))].join(' AND '),
            ExpressionAttributeNames: { '#members': 'members', '#member': member.memberId, '#memberEpoch': 'memberEpoch', '#assigned': 'assigned' },
            ExpressionAttributeValues: {
              ':memberEpoch': member.memberEpoch,
              ...Object.fromEntries(owned.map((o, i) => [`:tp${i}`, `${o.topic}:${o.partition}`])),
            },
          },
        },
        ...puts.map((o) => ({
          Put: {
            TableName: this.table,
            Item: offsetToItem(groupId, { ...o, committedAt: now, memberId: member.memberId, memberEpoch: member.memberEpoch }),
            ConditionExpression: clauses.offsetNotBehind,
            ExpressionAttributeNames: { '#offset': 'offset', '#topicId': 'topicId' },
            ExpressionAttributeValues: { ':offset': o.offset, ':topicId': o.topicId },
          },
        })),
    ];
  }

  async readOffsets(groupId: string): Promise<CommittedOffset[]> {
    const items = await allItems(paginateQuery({ client: this.storage.ddb }, {
      TableName: this.table,
      KeyConditionExpression: '#g = :g AND begins_with(#k, :prefix)',
      ExpressionAttributeNames: { '#g': 'g', '#k': 'k' },
      ExpressionAttributeValues: { ':g': groupId, ':prefix': OFFSET_KEY_PREFIX },
      ConsistentRead: true,
    }));
    return items.map(offsetFromItem);
  }

  async list(): Promise<Group[]> {
    const items = await allItems(paginateScan({ client: this.storage.ddb }, {
      TableName: this.table,
      FilterExpression: '#k = :group',
      ExpressionAttributeNames: { '#k': 'k' },
      ExpressionAttributeValues: { ':group': GROUP_ITEM_KEY },
    }));
    return items.map(groupFromItem).filter((g) => !g.deleting).sort((a, b) => byCodeUnits(a.groupId, b.groupId));
  }

  /** Deletes offsets, then the group item, while the group still is the one marked for deletion. */
  async finishDeletion(marked: Group): Promise<void> {
    const fence = {
      TableName: this.table,
      Key: { g: marked.groupId, k: GROUP_ITEM_KEY },
      ConditionExpression: clauses.stillDeleting,
      ExpressionAttributeNames: { '#version': 'version', '#deleting': 'deleting' },
      ExpressionAttributeValues: { ':expectedVersion': marked.version, ':true': true },
    };
    try {
      for (;;) {
        const page = await this.storage.ddb.send(new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#g = :g AND begins_with(#k, :prefix)',
          ExpressionAttributeNames: { '#g': 'g', '#k': 'k' },
          ExpressionAttributeValues: { ':g': marked.groupId, ':prefix': OFFSET_KEY_PREFIX },
          ProjectionExpression: '#g, #k',
          ConsistentRead: true,
          Limit: MAX_OFFSETS_PER_COMMIT,
        }));
        const keys = page.Items ?? [];
        if (keys.length === 0) break;
        await retry(() => this.storage.ddb.send(new TransactWriteCommand({
          TransactItems: [{ ConditionCheck: fence }, ...keys.map((key) => ({ Delete: { TableName: this.table, Key: { g: key.g, k: key.k } } }))],
        })), { isRetryable: isTransactionConflict });
      }
      await this.storage.ddb.send(new DeleteCommand(fence));
    } catch (err) {
      // Someone else finished this deletion (and maybe created a new group): nothing left to do.
      if (!isConditionFailure(err)) throw err;
    }
  }
}

function isConditionFailure(err: unknown): boolean {
  if (err instanceof ConditionalCheckFailedException) return true;
  return err instanceof TransactionCanceledException && (err.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed');
}


export function requireGroup(group: Group | undefined, groupId: string): Group {
  if (!group) throw new NotFoundError('UNKNOWN_GROUP', `group ${JSON.stringify(groupId)} does not exist`);
  return group;
}

/**
 * A fresh member id. Random so that concurrent joins never collide; it is no secret (describe lists
 * every member id), so it authorises nothing.
 */
export function newMemberId(): string {
  return randomUUID();
}

/** A fresh poll id: names one poll's batch, which the next poll acknowledges by sending it back. */
export function newPollId(): string {
  return randomUUID();
}

// Item codecs. Partition lists are string sets (so conditions can use contains()); DynamoDB has no
// empty set, so an empty list is an absent attribute.
function toSet(tps: TopicPartition[]): Set<string> | undefined {
  return tps.length > 0 ? new Set(tps) : undefined;
}

function fromSet(value: unknown): TopicPartition[] {
  return value instanceof Set ? sortedTopicPartitions(value as Set<string>) : [];
}

function groupToItem(group: Group): Record<string, unknown> {
  const members = Object.fromEntries(Object.entries(group.members).map(([id, m]) => {
    // Stable members own exactly their target: store the list once (heartbeats pay per KB).
    const targetIsAssigned = m.target.length === m.assigned.length && m.target.every((tp, i) => tp === m.assigned[i]);
    return [id, {
      ...m,
      assigned: toSet(m.assigned),
      target: targetIsAssigned ? undefined : toSet(m.target),
      targetIsAssigned: targetIsAssigned || undefined,
    }];
  }));
  return { g: group.groupId, k: GROUP_ITEM_KEY, ...group, groupId: undefined, members };
}

function groupFromItem(item: Record<string, unknown>): Group {
  const members = Object.fromEntries(Object.entries(item.members as Record<string, Record<string, unknown>>).map(([id, stored]) => {
    const { assigned, target, targetIsAssigned, ...rest } = stored;
    const member: Member = {
      ...(rest as unknown as Member),
      assigned: fromSet(assigned),
      target: fromSet(targetIsAssigned ? assigned : target),
    };
    return [id, member];
  }));
  const { g, k: _k, ...rest } = item;
  return { ...(rest as unknown as Group), groupId: g as string, members };
}

/** Field by field: callers' objects may carry more than an offset (an offset item is paid per KB). */
function offsetToItem(groupId: string, o: CommittedOffset): Record<string, unknown> {
  const { topic, partition, topicId, offset, metadata, committedAt, memberId, memberEpoch } = o;
  return { g: groupId, k: offsetKey(topic, partition), topic, partition, topicId, offset, metadata, committedAt, memberId, memberEpoch };
}

function offsetFromItem(item: Record<string, unknown>): CommittedOffset {
  const { g: _g, k: _k, ...offset } = item;
  return offset as unknown as CommittedOffset;
}
