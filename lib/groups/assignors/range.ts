// Kafka's range assignor: per topic, the subscribers sorted by member id each take a contiguous
// range; the first (partitions % subscribers) of them take one extra. Not sticky, by definition.
import { topicPartition, type TopicPartition } from '../model.ts';
import type { AssignmentSpec } from './assignor.ts';

export function rangeAssignor(spec: AssignmentSpec): Record<string, TopicPartition[]> {
  const result: Record<string, TopicPartition[]> = Object.fromEntries(spec.members.map((m) => [m.memberId, []]));
  for (const [topic, count] of Object.entries(spec.partitionCounts).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const subscribers = spec.members.filter((m) => m.topics.includes(topic)).map((m) => m.memberId).sort();
    const each = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    subscribers.forEach((memberId, i) => {
      const start = each * i + Math.min(i, extra);
      const length = each + (i < extra ? 1 : 0);
      for (let p = start; p < start + length; p++) result[memberId]!.push(topicPartition(topic, p));
    });
  }
  return result;
}
