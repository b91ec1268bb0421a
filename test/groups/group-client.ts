// Helpers of the consumer-group tests: an app on an isolated storage with a settable clock, and
// members that follow the protocol (report what they own, use the latest epoch).
import { randomUUID } from 'node:crypto';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { expect } from 'vitest';
import { createApp } from '../../lambdas/http/app.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { GROUP_ITEM_KEY, GroupStore } from '../../lib/groups/group-store.ts';
import { HEAD_OFFSET, logPartitionKey } from '../../lib/log/keys.ts';
import type { Storage } from '../../lib/storage.ts';
import { ensureHeads, getTopic, type Topic } from '../../lib/topics/topic-store.ts';
import { Api, type Reply } from '../api/client.ts';
import { withDynamoFaults } from '../support/faults.ts';
import { testStorage } from '../support/stack.ts';

export interface Assignment {
  memberId: string;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  assignment: Array<{ topic: string; partitions: number[] }>;
}

export interface PolledRecord {
  topic: string;
  partition: number;
  offset: number;
  value: string | null;
}

export class GroupApi extends Api {
  /** The injected clock of session expiry: starts at the real time, moves only when told. */
  time = Date.now();

  readonly store = new GroupStore(this.storage);

  advance(ms: number): void {
    this.time += ms;
  }

  async join(group: string, body: Record<string, unknown>): Promise<Member> {
    const res = await this.call('POST', `/v1/groups/${group}/members`, body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return new Member(this, group, res.body as Assignment);
  }

  async describeGroup(group: string): Promise<any> {
    const res = await this.call('GET', `/v1/groups/${group}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  }

  async committed(group: string): Promise<Record<string, number | null>> {
    const described = await this.describeGroup(group);
    return Object.fromEntries(described.offsets.map((o: any) => [`${o.topic}:${o.partition}`, o.committedOffset]));
  }

  /**
   * The same API on the same tables and clock (this one's: advance it here), where `hook` runs once, just before the first
   * DynamoDB command `matches` accepts is sent: another request lands in the middle of this one.
   */
  interleaved(matches: (command: DynamoCommand) => boolean, hook: () => Promise<unknown>): { api: GroupApi; fired: () => boolean } {
    let fired = false;
    const storage = withDynamoFaults(this.storage, async (command) => {
      if (!fired && matches(command)) {
        fired = true;
        await hook();
      }
      return undefined;
    });
    const services = createServices(storage, {}, { now: () => this.time });
    return { api: new GroupApi(createApp(services), services), fired: () => fired };
  }

  /** Fails if two members of the stored group own one partition. */
  async expectExclusiveOwnership(group: string): Promise<void> {
    const stored = await this.store.read(group);
    const owners = new Map<string, string>();
    for (const m of Object.values(stored?.members ?? {})) {
      for (const tp of m.assigned) {
        expect(owners.get(tp), `${tp} owned twice`).toBeUndefined();
        owners.set(tp, m.memberId);
      }
    }
  }
}

export class Member {
  /** The pollId of the last poll response received: the next poll and the leave acknowledge it. Clear it to act as a client whose response was lost. */
  pollId: string | undefined;

  constructor(readonly api: GroupApi, readonly group: string, public last: Assignment) {}

  get id(): string {
    return this.last.memberId;
  }

  get owns(): string[] {
    return this.last.assignment.flatMap((a) => a.partitions.map((p) => `${a.topic}:${p}`)).sort();
  }

  async heartbeat(): Promise<Reply> {
    const res = await this.api.call('POST', `/v1/groups/${this.group}/members/${this.id}/heartbeat`, { memberEpoch: this.last.memberEpoch, owned: this.last.assignment });
    if (res.status === 200) this.last = res.body as Assignment;
    return res;
  }

  async poll(body: Record<string, unknown> = {}): Promise<PolledRecord[]> {
    const res = await this.pollRaw(body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const { records, pollId, ...assignment } = res.body;
    this.last = assignment as Assignment;
    this.pollId = pollId;
    return records as PolledRecord[];
  }

  /** One poll request acknowledging the last response received; the member's state is left as it was. */
  pollRaw(body: Record<string, unknown> = {}): Promise<Reply> {
    return this.api.call('POST', `/v1/groups/${this.group}/members/${this.id}/poll`, { waitMs: 0, ack: this.pollId, ...body });
  }

  commit(offsets: Array<{ topic: string; partition: number; offset: number; metadata?: string }>, memberEpoch = this.last.memberEpoch): Promise<Reply> {
    return this.api.call('POST', `/v1/groups/${this.group}/offsets`, { memberId: this.id, memberEpoch, offsets });
  }

  /** This member as seen through another API instance (same member id, epoch and last pollId). */
  via(api: GroupApi): Member {
    const other = new Member(api, this.group, this.last);
    other.pollId = this.pollId;
    return other;
  }

  leave(): Promise<Reply> {
    const ack = this.pollId ? `?ack=${this.pollId}` : '';
    return this.api.call('DELETE', `/v1/groups/${this.group}/members/${this.id}${ack}`);
  }
}

type DynamoCommand = Parameters<Parameters<typeof withDynamoFaults>[1]>[0];

/** A member commit: the transaction whose first item checks the member's epoch on the group item. */
export function isMemberCommit(command: DynamoCommand): boolean {
  const items = command.input.TransactItems as Array<Record<string, any>> | undefined;
  return command.constructor.name === 'TransactWriteCommand' && items?.[0]?.ConditionCheck?.Key?.k === GROUP_ITEM_KEY && String(items[0]!.ConditionCheck.ConditionExpression).includes('memberEpoch');
}

/** A conditional Put of a group item (any membership change, a poll's start or its batch). */
export function isGroupPut(command: DynamoCommand): boolean {
  return command.constructor.name === 'PutCommand' && (command.input.Item as Record<string, unknown> | undefined)?.k === GROUP_ITEM_KEY;
}

/**
 * Deletes a topic and re-creates it under a new topicId the way another process would: straight in
 * the tables, so this process's topic cache (getTopicCached) still holds the old incarnation.
 */
export async function recreateBehindCache(storage: Storage, name: string): Promise<Topic> {
  const old = await getTopic(storage, name);
  for (let p = 0; p < old.partitions; p++) {
    await storage.ddb.send(new DeleteCommand({ TableName: storage.config.logTable, Key: { p: logPartitionKey(old.topicId, p), o: HEAD_OFFSET } }));
  }
  const topic: Topic = { ...old, topicId: randomUUID(), createdAt: Date.now() };
  await ensureHeads(storage, topic.topicId, 0, topic.partitions);
  await storage.ddb.send(new PutCommand({ TableName: storage.config.topicsTable, Item: topic }));
  return topic;
}

export async function startGroupApi(): Promise<GroupApi> {
  const storage = await testStorage();
  let api: GroupApi | undefined;
  const services = createServices(storage, {}, { now: () => api!.time });
  api = new GroupApi(createApp(services), services);
  return api;
}

/** Heartbeats every member until the group is stable (bounded: the protocol needs a few rounds). */
export async function settle(api: GroupApi, members: Member[]): Promise<void> {
  for (let round = 0; round < 10; round++) {
    for (const m of members) expect((await m.heartbeat()).status).toBe(200);
    await api.expectExclusiveOwnership(members[0]!.group);
    if ((await api.describeGroup(members[0]!.group)).state === 'stable') return;
  }
  throw new Error('group did not become stable');
}

/** `count` records with distinct values, spread over the topic's partitions by key. */
export async function produceNumbered(api: GroupApi, topic: string, count: number, prefix = 'r'): Promise<string[]> {
  const values = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  for (let i = 0; i < count; i += 100) await api.produce(topic, values.slice(i, i + 100).map((value) => ({ key: value, value })));
  return values;
}
