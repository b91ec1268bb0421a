// The uniform sticky assignor (Kafka's default server-side assignor, in spirit): balanced, and it
// moves as few partitions as it can.
//   1. Every member keeps the partitions of its previous target that are still valid for it.
//   2. Partitions left over go, one at a time, to the eligible member holding the fewest.
//   3. While some member holds a partition that an eligible member with at least two fewer
//      partitions could take, move it. Each move lowers the sum of squared counts, so this ends,
//      and when it ends no partition can move to make the assignment more even ("balanced"). With
//      identical subscriptions, that means every count is floor or ceil of partitions/members.
import { compareTopicPartitions, parseTopicPartition, topicPartition, type TopicPartition } from '../model.ts';
import type { AssignmentSpec } from './assignor.ts';

export function uniformStickyAssignor(spec: AssignmentSpec): Record<string, TopicPartition[]> {
  const members = [...spec.members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  const subscriptions = new Map(members.map((m) => [m.memberId, new Set(m.topics)]));
  const holdings = new Map(members.map((m) => [m.memberId, new Set<TopicPartition>()]));
  const owner = new Map<TopicPartition, string>();
  const exists = (tp: TopicPartition) => {
    const { topic, partition } = parseTopicPartition(tp);
    return partition < (spec.partitionCounts[topic] ?? 0);
  };
  const give = (tp: TopicPartition, memberId: string) => {
    const previousOwner = owner.get(tp);
    if (previousOwner !== undefined) holdings.get(previousOwner)!.delete(tp);
    holdings.get(memberId)!.add(tp);
    owner.set(tp, memberId);
  };
  /** The eligible member with the fewest partitions (ties: lowest member id). */
  const leastLoaded = (tp: TopicPartition): string | undefined => {
    const { topic } = parseTopicPartition(tp);
    let best: string | undefined;
    for (const m of members) {
      if (!subscriptions.get(m.memberId)!.has(topic)) continue;
      if (best === undefined || holdings.get(m.memberId)!.size < holdings.get(best)!.size) best = m.memberId;
    }
    return best;
  };

  const nextMove = (): { tp: TopicPartition; to: string } | undefined => {
    const byLoad = [...members].sort((a, b) => holdings.get(b.memberId)!.size - holdings.get(a.memberId)!.size);
    for (const from of byLoad) {
      for (const tp of [...holdings.get(from.memberId)!].sort(compareTopicPartitions).reverse()) {
        const to = leastLoaded(tp)!;
        if (holdings.get(from.memberId)!.size > holdings.get(to)!.size + 1) return { tp, to };
      }
    }
    return undefined;
  };

  for (const m of members) {
    for (const tp of spec.previous[m.memberId] ?? []) {
      if (exists(tp) && subscriptions.get(m.memberId)!.has(parseTopicPartition(tp).topic) && !owner.has(tp)) give(tp, m.memberId);
    }
  }

  const leftOver: TopicPartition[] = [];
  for (const [topic, count] of Object.entries(spec.partitionCounts)) {
    for (let p = 0; p < count; p++) if (!owner.has(topicPartition(topic, p))) leftOver.push(topicPartition(topic, p));
  }
  for (const tp of leftOver.sort(compareTopicPartitions)) {
    const memberId = leastLoaded(tp);
    if (memberId !== undefined) give(tp, memberId);
  }

  // One move at a time, always from the most loaded member that can give, so no member gives more
  // than balance requires (moving several from one member at once would over-drain it).
  for (;;) {
    const move = nextMove();
    if (!move) break;
    give(move.tp, move.to);
  }

  return Object.fromEntries(members.map((m) => [m.memberId, [...holdings.get(m.memberId)!].sort(compareTopicPartitions)]));
}
