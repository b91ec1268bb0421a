// Topic and group administration, named as in kafkajs' admin client where one exists.
import { ConflictError } from './errors.ts';
import type { Transport } from './transport.ts';

export interface TopicDescription {
  name: string;
  partitions: Array<{ partition: number; logStartOffset: number; highWatermark: number; segments: number; bytes: number }>;
  config: Record<string, unknown>;
}

export interface GroupDescription {
  group: string;
  state: 'empty' | 'reconciling' | 'stable';
  groupEpoch: number;
  assignor: 'uniform' | 'range';
  members: Array<{ memberId: string; memberEpoch: number; topics: string[]; assignment: Array<{ topic: string; partitions: number[] }>; revoking: Array<{ topic: string; partitions: number[] }>; pending: Array<{ topic: string; partitions: number[] }>; sessionTimeoutMs: number; lastHeartbeatAt: number }>;
  offsets: Array<{ topic: string; partition: number; committedOffset: number | null; metadata: string | null; committedAt: number | null; highWatermark: number | null; lag: number | null }>;
}

export type ResetTarget = 'earliest' | 'latest' | { timestamp: number } | { offset: number };

export class Admin {
  constructor(private readonly transport: Transport) {}

  /** kafkajs compatibility: nothing to connect. */
  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}

  /** Creates one topic; a topic that exists already is a ConflictError (TOPIC_EXISTS). */
  async createTopic(topic: string, partitions = 1, config?: Record<string, string | number>): Promise<void> {
    await this.transport.request('POST', '/v1/topics', { body: { name: topic, partitions, ...(config ? { config } : {}) } });
  }

  /** Resolves to true if every topic was created, false if some existed already (kafkajs' meaning). */
  async createTopics({ topics }: { topics: Array<{ topic: string; numPartitions?: number; configEntries?: Array<{ name: string; value: string }> }> }): Promise<boolean> {
    const created = await Promise.all(topics.map(async ({ topic, numPartitions, configEntries }) => {
      try {
        await this.createTopic(topic, numPartitions, configEntries && Object.fromEntries(configEntries.map((e) => [e.name, e.value])));
        return true;
      } catch (err) {
        if (err instanceof ConflictError && err.code === 'TOPIC_EXISTS') return false;
        throw err;
      }
    }));
    return created.every(Boolean);
  }

  async listTopics(): Promise<string[]> {
    return (await this.listTopicsWithPartitions()).map((t) => t.name);
  }

  async listTopicsWithPartitions(): Promise<Array<{ name: string; partitions: number }>> {
    return (await this.transport.request<{ topics: Array<{ name: string; partitions: number }> }>('GET', '/v1/topics')).topics;
  }

  /** Per partition: log start, high watermark, segments and bytes stored; and the topic's config. */
  async describeTopic(topic: string): Promise<TopicDescription> {
    return this.transport.request('GET', `/v1/topics/${encodeURIComponent(topic)}`);
  }

  async deleteTopics({ topics }: { topics: string[] }): Promise<void> {
    await Promise.all(topics.map((topic) => this.transport.request('DELETE', `/v1/topics/${encodeURIComponent(topic)}`)));
  }

  /** Grows topics to `count` partitions in total. */
  async createPartitions({ topicPartitions }: { topicPartitions: Array<{ topic: string; count: number }> }): Promise<void> {
    await Promise.all(topicPartitions.map(({ topic, count }) => this.transport.request('POST', `/v1/topics/${encodeURIComponent(topic)}/partitions`, { body: { count } })));
  }

  /** Kafka's IncrementalAlterConfigs: a value sets a key, null restores its default. Resolves to the full config. */
  async alterTopicConfig(topic: string, config: Record<string, string | number | null>): Promise<Record<string, unknown>> {
    return (await this.transport.request<{ config: Record<string, unknown> }>('PATCH', `/v1/topics/${encodeURIComponent(topic)}/config`, { body: { config } })).config;
  }

  /** kafkajs' fetchTopicOffsets: per partition, the log start (low) and the high watermark (high, also offset). */
  async fetchTopicOffsets(topic: string): Promise<Array<{ partition: number; offset: number; high: number; low: number }>> {
    const { partitions } = await this.describeTopic(topic);
    return partitions.map((p) => ({ partition: p.partition, offset: p.highWatermark, high: p.highWatermark, low: p.logStartOffset }));
  }

  /** Kafka's ListOffsets: per partition, the first offset at or after `timestamp` (the high watermark if none). */
  async fetchTopicOffsetsByTimestamp(topic: string, timestamp: number | 'earliest' | 'latest'): Promise<Array<{ partition: number; offset: number }>> {
    const { partitions } = await this.describeTopic(topic);
    return Promise.all(partitions.map(async ({ partition }) => {
      const { offset } = await this.transport.request<{ offset: number }>('GET', `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/offsets`, { query: { timestamp } });
      return { partition, offset };
    }));
  }

  /** Kafka's DeleteRecords: raises each partition's log start to `offset` (-1: the high watermark). */
  async deleteTopicRecords({ topic, partitions }: { topic: string; partitions: Array<{ partition: number; offset: number | string }> }): Promise<Array<{ partition: number; logStartOffset: number }>> {
    const body = { partitions: partitions.map(({ partition, offset }) => ({ partition, offset: Number(offset) })) };
    return (await this.transport.request<{ partitions: Array<{ partition: number; logStartOffset: number }> }>('POST', `/v1/topics/${encodeURIComponent(topic)}/delete-records`, { body })).partitions;
  }

  async listGroups(): Promise<{ groups: Array<{ groupId: string; state: string; members: number }> }> {
    const { groups } = await this.transport.request<{ groups: Array<{ group: string; state: string; members: number }> }>('GET', '/v1/groups');
    return { groups: groups.map((g) => ({ ...g, groupId: g.group })) };
  }

  /** Members, assignments, committed offsets and lag. */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    return this.transport.request('GET', `/v1/groups/${encodeURIComponent(groupId)}`);
  }

  /** Rewinds or forwards an empty group's offsets of a topic (all partitions unless named). */
  async resetOffsets({ groupId, topic, partitions, to }: { groupId: string; topic: string; partitions?: number[]; to: ResetTarget }): Promise<Array<{ topic: string; partition: number; offset: number }>> {
    return (await this.transport.request<{ offsets: Array<{ topic: string; partition: number; offset: number }> }>('POST', `/v1/groups/${encodeURIComponent(groupId)}/offsets/reset`, { body: { topic, ...(partitions ? { partitions } : {}), to } })).offsets;
  }

  /** kafkajs' setOffsets: commits offsets for an empty group. */
  async setOffsets({ groupId, topic, partitions }: { groupId: string; topic: string; partitions: Array<{ partition: number; offset: number | string }> }): Promise<void> {
    await this.transport.request('POST', `/v1/groups/${encodeURIComponent(groupId)}/offsets`, { body: { offsets: partitions.map(({ partition, offset }) => ({ topic, partition, offset: Number(offset) })) } });
  }

  async deleteGroups(groupIds: string[]): Promise<void> {
    await Promise.all(groupIds.map((groupId) => this.transport.request('DELETE', `/v1/groups/${encodeURIComponent(groupId)}`)));
  }
}
