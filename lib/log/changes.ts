// Per-topic change markers: one small item per topic that producers bump after a commit, so an idle
// reader can ask "anything new in these topics?" with one eventually consistent read per topic
// instead of reading every partition's head (see docs/architecture.md, "Cheap waiting").
//
// A bump per produce request would cost a write unit each, so a process bumps a topic at most once
// per CHANGE_QUIET_MS: a batch committed within that time of the process's own last bump is covered
// by that bump. Readers therefore trust the marker only once its last bump is older than
// CHANGE_QUIET_MS plus CLOCK_SKEW_MS (markerSettled): until then they read the partitions.
import { BatchGetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';

/** A process bumps a topic's marker at most once per this long. */
export const CHANGE_QUIET_MS = 1_000;
/** What readers allow for clocks of different processes (and a bump's time in flight). */
export const CLOCK_SKEW_MS = 1_000;
/** DynamoDB's BatchGetItem limit. */
const KEYS_PER_BATCH_GET = 100;

/** A topic's marker: bumps so far, and the writer's clock at the newest one (0 if never bumped). */
export interface ChangeMarker {
  seq: number;
  at: number;
}

export function changesKey(topicId: string): { p: string; o: number } {
  return { p: `changes#${topicId}`, o: 0 };
}

/** Bumps after more than CHANGE_QUIET_MS may have gone unannounced: readers must read the partitions. */
export function markerSettled(marker: ChangeMarker, now: number): boolean {
  return now >= marker.at + CHANGE_QUIET_MS + CLOCK_SKEW_MS;
}

export class TopicChanges {
  private readonly bumpedAt = new Map<string, number>();

  constructor(private readonly storage: Storage, private readonly now: () => number = Date.now) {}

  /**
   * Called after a batch of `topicId` committed. Skipped when this process bumped it less than
   * CHANGE_QUIET_MS ago: readers keep reading partitions for that long after a bump anyway.
   */
  async bump(topicId: string): Promise<void> {
    const now = this.now();
    const last = this.bumpedAt.get(topicId);
    if (last !== undefined && now - last < CHANGE_QUIET_MS && last <= now) return;
    try {
      await retry(() => this.storage.ddb.send(new UpdateCommand({
        TableName: this.storage.config.logTable,
        Key: changesKey(topicId),
        UpdateExpression: 'SET #at = :now ADD #seq :one',
        // Bump B1 (at t1) lands after bump B2 (at t2 > t1): `at` must stay t2, or readers would
        // trust the marker before the quiet time after B2 is over.
        ConditionExpression: 'attribute_not_exists(#at) OR #at <= :now',
        ExpressionAttributeNames: { '#at': 'at', '#seq': 'seq' },
        ExpressionAttributeValues: { ':now': now, ':one': 1 },
      })));
    } catch (err) {
      // A newer bump is there: it was made after our commit, and announces it.
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
    this.bumpedAt.set(topicId, now);
  }

  /** The markers of these topics, eventually consistent (half a read unit each). */
  async read(topicIds: string[]): Promise<Record<string, ChangeMarker>> {
    const markers: Record<string, ChangeMarker> = Object.fromEntries(topicIds.map((id) => [id, { seq: 0, at: 0 }]));
    const table = this.storage.config.logTable;
    for (let i = 0; i < topicIds.length; i += KEYS_PER_BATCH_GET) {
      let keys: Record<string, unknown>[] | undefined = topicIds.slice(i, i + KEYS_PER_BATCH_GET).map(changesKey);
      while (keys && keys.length > 0) {
        const res = await retry(() => this.storage.ddb.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: false } } })));
        for (const item of res.Responses?.[table] ?? []) markers[(item.p as string).slice('changes#'.length)] = { seq: item.seq as number, at: item.at as number };
        keys = res.UnprocessedKeys?.[table]?.Keys;
      }
    }
    return markers;
  }
}
