// The partition's lifecycle state item (o = STATE_OFFSET beside the head): what the leader of the
// partition maintains, apart from the producers' head. Readers get it with the head in one Query.
//   epoch, holder, until   the leader lease (lib/lifecycle/lease.ts)
//   logStart               offsets below are deleted (retention, DeleteRecords); only ever raised
//   segEnd                 offsets in [logStart, segEnd) are served by segments, not index entries
//   segs, segBytes         live segments and their bytes (describe reports them)
//   trashed                expired segment objects waiting in <pk>/trash for their grace period
export interface PartitionState {
  leaderEpoch: number;
  leaseUntil: number;
  logStart: number;
  segmentsEnd: number;
  segmentCount: number;
  segmentBytes: number;
  /** Expired segment objects waiting for their grace period to end. */
  trashed: number;
}

export const INITIAL_STATE: PartitionState = { leaderEpoch: 0, leaseUntil: 0, logStart: 0, segmentsEnd: 0, segmentCount: 0, segmentBytes: 0, trashed: 0 };

export function stateFromItem(item: Record<string, unknown> | undefined): PartitionState {
  if (!item) return INITIAL_STATE;
  return {
    leaderEpoch: (item.epoch as number | undefined) ?? 0,
    leaseUntil: (item.until as number | undefined) ?? 0,
    logStart: (item.logStart as number | undefined) ?? 0,
    segmentsEnd: (item.segEnd as number | undefined) ?? 0,
    segmentCount: (item.segs as number | undefined) ?? 0,
    segmentBytes: (item.segBytes as number | undefined) ?? 0,
    trashed: (item.trashed as number | undefined) ?? 0,
  };
}
