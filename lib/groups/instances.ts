// Named consumer instances, as Upstash Kafka's REST API has them: a group member whose id is a name
// the client chose, which exists from its first consume until it is deleted or its session expires,
// and whose client never acknowledges a batch. So each consume acknowledges what the instance's
// previous consume returned (LAST_DELIVERY), and with auto-commit commits it first: Kafka's
// auto-commit, which commits on a later poll the positions after what earlier polls returned. A
// batch is never committed by the consume that returns it, so an instance that stops (crashes, or
// expires) has its last batch delivered again to the partition's next owner: at least once.
// The price of having no acknowledgement: a response lost on its way counts as received once the
// next consume of the instance arrives (as it did on Upstash, whose consumer had moved on too).
import type { GroupCoordinator } from './coordinator.ts';
import type { Consumer, PollOptions, PolledRecord } from './consumer.ts';
import type { Membership } from './membership.ts';
import { LAST_DELIVERY, SESSION_TIMEOUT_MS, type AutoOffsetReset } from './model.ts';

/** An instance lives this long after its last call, like a Kafka REST proxy's idle consumer (5 minutes). */
export const INSTANCE_SESSION_TIMEOUT_MS = SESSION_TIMEOUT_MS.max;

export interface ConsumeOptions extends Omit<PollOptions, 'ack'> {
  topics: string[];
  /** Where an instance created by this consume starts partitions without a committed offset. */
  autoOffsetReset: AutoOffsetReset;
}

export class NamedInstances {
  constructor(private readonly coordinator: GroupCoordinator, private readonly membership: Membership, private readonly consumer: Consumer) {}

  /**
   * Creates the instance if it does not exist (joining the group: its first consumes may return
   * nothing while partitions are handed over), re-subscribes it if `topics` changed (leaving, so
   * its last batch is committed under auto-commit, and joining again), then polls.
   */
  async consume(groupId: string, instance: string, options: ConsumeOptions): Promise<PolledRecord[]> {
    const stored = await this.coordinator.store.read(groupId);
    const member = stored && this.coordinator.project(stored).members[instance];
    const topics = [...new Set(options.topics)].sort();
    const subscribed = member !== undefined && member.topics.length === topics.length && member.topics.every((t, i) => t === topics[i]);
    if (member && !subscribed) await this.membership.leave(groupId, instance, LAST_DELIVERY);
    if (!subscribed) {
      await this.membership.join(groupId, { memberId: instance, topics, sessionTimeoutMs: INSTANCE_SESSION_TIMEOUT_MS, autoOffsetReset: options.autoOffsetReset });
    }
    const { records } = await this.consumer.poll(groupId, instance, { ...options, ack: LAST_DELIVERY });
    return records;
  }

  /** Removes the instance at once; under auto-commit its last batch is committed first (Kafka's close()). */
  async remove(groupId: string, instance: string): Promise<void> {
    await this.membership.leave(groupId, instance, LAST_DELIVERY);
  }
}
