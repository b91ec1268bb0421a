// The contract of a server-side assignor: a pure function from members, subscriptions and partition
// counts (plus the previous target, for stickiness) to each member's target partitions.
import type { AssignorName, TopicPartition } from '../model.ts';
import { rangeAssignor } from './range.ts';
import { uniformStickyAssignor } from './uniform-sticky.ts';

export interface AssignmentSpec {
  members: Array<{ memberId: string; topics: string[] }>;
  /** Partition count of every subscribed topic that exists. */
  partitionCounts: Record<string, number>;
  /** Each member's target at the previous group epoch. */
  previous: Record<string, TopicPartition[]>;
}

/** Every member in the spec gets an entry, possibly empty. */
export type Assignor = (spec: AssignmentSpec) => Record<string, TopicPartition[]>;

export const ASSIGNORS: Record<AssignorName, Assignor> = { uniform: uniformStickyAssignor, range: rangeAssignor };
