// DeleteRecords (Kafka's admin call): raise a partition's log start. Anyone may do it, not only the
// leader: the log start only ever grows, so this write and the leader's retention commute. The
// leader later removes segments and entries wholly below it (see retention and the compactor).
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { OffsetOutOfRangeError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import { STATE_OFFSET } from '../log/keys.ts';
import type { Sequencer } from '../log/sequencer.ts';

// Named condition clauses. Each guards one timeline:
const clauses = {
  // Admin A deletes records up to 900, admin B (or a retry of an older call) up to 500 afterwards:
  // B must not lower the log start and make deleted offsets readable again.
  logStartBelow: 'attribute_not_exists(#logStart) OR #logStart < :offset',
};

/** One partition's part of a DeleteRecords call: its new log start, or undefined for its high watermark. */
export interface DeleteRecordsTarget {
  pk: string;
  offset?: number;
}

/**
 * Raises the log start of each target partition to its offset (the high watermark when omitted, as
 * Kafka's -1), which must be at most the high watermark: every target is checked before any is
 * written, so a refused call changes nothing. Returns each log start afterwards (higher if it
 * already was).
 */
export async function deleteRecords(storage: Storage, sequencer: Sequencer, targets: DeleteRecordsTarget[]): Promise<number[]> {
  // The high watermark never goes down, so a check now still holds when the write lands.
  const offsets = await Promise.all(targets.map(async ({ pk, offset }) => {
    const view = await sequencer.readResolved(pk, undefined, { withTail: false });
    const target = offset ?? view.highWatermark;
    if (target > view.highWatermark || target < 0) throw new OffsetOutOfRangeError(target, view.state.logStart, view.highWatermark);
    return target;
  }));
  return Promise.all(targets.map(({ pk }, i) => raiseLogStart(storage, sequencer, pk, offsets[i]!)));
}

async function raiseLogStart(storage: Storage, sequencer: Sequencer, pk: string, target: number): Promise<number> {
  try {
    await retry(() => storage.ddb.send(new UpdateCommand({
      TableName: storage.config.logTable,
      Key: { p: pk, o: STATE_OFFSET },
      UpdateExpression: 'SET #logStart = :offset',
      ConditionExpression: clauses.logStartBelow,
      ExpressionAttributeNames: { '#logStart': 'logStart' },
      ExpressionAttributeValues: { ':offset': target },
    })));
    return target;
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) throw err;
    return (await sequencer.read(pk, { withTail: false })).state.logStart;
  }
}
