// Applies one state-machine event to a stored group: reads it, resolves the subscribed topics'
// metadata (partition counts can change under a group), runs the pure transition and writes the
// result conditionally. Every group operation goes through here.
import { NotFoundError } from '../errors.ts';
import type { Storage } from '../storage.ts';
import { forgetCachedTopic, getTopicCached, type Topic } from '../topics/topic-store.ts';
import { GroupStore, type CommittedOffset } from './group-store.ts';
import { DEFAULT_ASSIGNOR, newGroup, type Group, type TopicMeta } from './model.ts';
import { transition, type GroupEvent } from './reconcile.ts';

export interface GroupOptions {
  /** The clock of session expiry; injected in tests. */
  now: () => number;
}

export const DEFAULT_GROUP_OPTIONS: GroupOptions = { now: Date.now };

export interface ApplyOptions {
  /** What to do when the group does not exist: create it, or throw this. */
  ifAbsent: 'create' | (() => Error);
  /** A group just read, to save the first read (stale is fine: the write is conditional). */
  known?: Group;
  /** Offsets written in the same transaction as the group. */
  offsets?: CommittedOffset[];
}

export class GroupCoordinator {
  readonly store: GroupStore;
  readonly options: GroupOptions;

  constructor(readonly storage: Storage, options: Partial<GroupOptions> = {}) {
    this.store = new GroupStore(storage);
    this.options = { ...DEFAULT_GROUP_OPTIONS, ...options };
  }

  now(): number {
    return this.options.now();
  }

  async apply(groupId: string, event: GroupEvent, options: ApplyOptions): Promise<Group> {
    return this.store.mutate(groupId, async (current) => {
      const group = current ?? absent(groupId, event, options, this.now());
      const joining = event.type === 'join' ? event.join.topics : [];
      const topics = await this.topicMetadata([...Object.values(group.members).flatMap((m) => m.topics), ...joining], group.topics);
      return { group: transition(group, event, { now: this.now(), topics }), offsets: options.offsets };
    }, options.known);
  }

  /** The group as the next write would see it (expired members removed), without writing. */
  project(group: Group): Group {
    return transition(group, { type: 'touch' }, { now: this.now(), topics: group.topics });
  }

  /**
   * The current metadata of these topics; a deleted one is missing. The per-process cache answers
   * only when it agrees with what the group records (`recorded`): a cache entry can be up to
   * TOPIC_CACHE_TTL_MS old, so a topicId (or a smaller partition count) that differs from the
   * recorded one may be a deleted incarnation this process still remembers. Then, as for a topic
   * not recorded yet, only a consistent read decides what the group records.
   */
  private async topicMetadata(names: string[], recorded: Record<string, TopicMeta>): Promise<Record<string, TopicMeta>> {
    const metadata: Record<string, TopicMeta> = {};
    await Promise.all([...new Set(names)].map(async (name) => {
      const known = recorded[name];
      // A cached count below the recorded one is stale (partitions are never removed): re-read.
      let topic = await this.lookUp(() => getTopicCached(this.storage, name, known?.partitions ?? 0));
      if (topic?.topicId !== known?.topicId) {
        forgetCachedTopic(this.storage, name);
        topic = await this.lookUp(() => getTopicCached(this.storage, name));
      }
      if (topic) metadata[name] = { topicId: topic.topicId, partitions: topic.partitions };
    }));
    return metadata;
  }

  /** A deleted topic simply has no partitions to assign. */
  private async lookUp(read: () => Promise<Topic>): Promise<Topic | undefined> {
    try {
      return await read();
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }
}

function absent(groupId: string, event: GroupEvent, options: ApplyOptions, now: number): Group {
  if (options.ifAbsent !== 'create') throw options.ifAbsent();
  return newGroup(groupId, (event.type === 'join' ? event.join.assignor : undefined) ?? DEFAULT_ASSIGNOR, now);
}
