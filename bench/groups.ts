// Benchmark section for consumer groups: how fast and how many DynamoDB calls it takes for 1, 8 and
// 32 members joining at once to converge; poll throughput of a 4-member group over 12 partitions;
// and what an idle member's heartbeats cost per month. It reports; it asserts nothing.
import { randomBytes } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { CallCounter } from '../lib/aws/clients.ts';
import { createStorage, type Storage } from '../lib/storage.ts';
import { createTopic } from '../lib/topics/topic-store.ts';
import { GROUP_ITEM_KEY } from '../lib/groups/group-store.ts';
import type { MemberAssignment } from '../lib/groups/membership.ts';
import type { GroupServices } from '../lib/groups/services.ts';
import { createServices } from '../lambdas/http/services.ts';
import { readUnitsForBytes, writeUnitsForItem, HOURS_PER_MONTH } from './cost-model.ts';
import { AwsMeter, itemBytes, markdownTable, Meter, round, type Usage } from './log.ts';
import { loadPrices } from './setup.ts';

const CONVERGENCE_SIZES = [1, 8, 32];
const CONVERGENCE_PARTITIONS = 64;
const POLL_MEMBERS = 4;
const POLL_PARTITIONS = 12;
const POLL_RECORDS = 6_000;
const RECORD_BYTES = 100;
const IDLE_ROUNDS = 5;

interface Convergence {
  members: number;
  ms: number;
  heartbeatRounds: number;
  dynamodbCalls: number;
  calls: Record<string, number>;
  failedConditionalWrites: number;
  writeUnits: number;
  readUnits: number;
}

interface IdleCost {
  groupMembers: number;
  groupItemBytes: number;
  heartbeatIntervalMs: number;
  reportedWriteUnitsPerHeartbeat: number;
  reportedReadUnitsPerHeartbeat: number;
  derivedWriteUnitsPerHeartbeat: number;
  derivedReadUnitsPerHeartbeat: number;
  writeUnitsPerMemberMinute: number;
  readUnitsPerMemberMinute: number;
  dollarsPerMemberMonth: number;
}

const owned = (a: MemberAssignment) => a.assignment.flatMap((t) => t.partitions.map((p) => `${t.topic}:${p}`));

/** Heartbeats all members concurrently, round after round, until no assignment changes. */
async function converge(groups: GroupServices, groupId: string, members: MemberAssignment[]): Promise<{ members: MemberAssignment[]; rounds: number }> {
  for (let rounds = 1; ; rounds++) {
    const next = await Promise.all(members.map((m) => groups.membership.heartbeat(groupId, m.memberId, m.memberEpoch, owned(m))));
    const settled = next.every((m, i) => m.memberEpoch === members[i]!.memberEpoch && owned(m).join() === owned(members[i]!).join());
    members = next;
    if (settled && new Set(members.map((m) => m.memberEpoch)).size === 1) return { members, rounds };
  }
}

export async function benchGroups(ctx: { storage: Storage; calls: CallCounter }): Promise<{ markdown: string; json: Record<string, unknown> }> {
  const prices = loadPrices();
  const { groups, producer } = createServices(ctx.storage);
  const meter = new Meter(ctx.calls, AwsMeter.install(ctx.storage));
  // Checks outside the measured calls go through their own clients.
  const observer = createStorage(ctx.storage.config);
  const run = randomBytes(4).toString('hex');
  const dynamodbCalls = (u: Usage) => Object.entries(u.calls).filter(([op]) => op.startsWith('dynamodb.')).reduce((n, [, c]) => n + c, 0);

  // -- Convergence, then the idle cost of the converged group's heartbeats.
  const wide = `bench-groups-wide-${run}`;
  await createTopic(ctx.storage, { name: wide, partitions: CONVERGENCE_PARTITIONS });
  const convergence: Convergence[] = [];
  const idle: IdleCost[] = [];
  for (const n of CONVERGENCE_SIZES) {
    const groupId = `bench-converge-${n}-${run}`;
    const { value, ms, usage } = await meter.measure(async () => {
      const joined = await Promise.all(Array.from({ length: n }, () => groups.membership.join(groupId, { topics: [wide] })));
      return converge(groups, groupId, joined);
    });
    convergence.push({ members: n, ms: round(ms, 1), heartbeatRounds: value.rounds, dynamodbCalls: dynamodbCalls(usage), calls: usage.calls, failedConditionalWrites: usage.failedConditionalWrites, writeUnits: round(usage.writeUnits, 1), readUnits: round(usage.readUnits, 1) });

    // Idle: members heartbeat one at a time (as their intervals would spread them), nothing changes.
    let members = value.members;
    const beats = await meter.measure(async () => {
      for (let r = 0; r < IDLE_ROUNDS; r++) {
        const next: MemberAssignment[] = [];
        for (const m of members) next.push(await groups.membership.heartbeat(groupId, m.memberId, m.memberEpoch, owned(m)));
        members = next;
      }
    });
    const heartbeats = IDLE_ROUNDS * n;
    const stored = await observer.ddb.send(new GetCommand({ TableName: ctx.storage.config.groupsTable, Key: { g: groupId, k: GROUP_ITEM_KEY }, ConsistentRead: true }));
    const bytes = itemBytes(stored.Item);
    const intervalMs = members[0]!.heartbeatIntervalMs;
    const perMinute = 60_000 / intervalMs;
    const derivedWrite = writeUnitsForItem(bytes);
    const derivedRead = readUnitsForBytes(bytes, true);
    const writePerMinute = perMinute * derivedWrite;
    const readPerMinute = perMinute * derivedRead;
    const minutesPerMonth = HOURS_PER_MONTH * 60;
    idle.push({
      groupMembers: n,
      groupItemBytes: bytes,
      heartbeatIntervalMs: intervalMs,
      reportedWriteUnitsPerHeartbeat: round((beats.usage.writeUnits + beats.usage.failedConditionalWrites) / heartbeats, 2),
      reportedReadUnitsPerHeartbeat: round(beats.usage.readUnits / heartbeats, 2),
      derivedWriteUnitsPerHeartbeat: derivedWrite,
      derivedReadUnitsPerHeartbeat: derivedRead,
      writeUnitsPerMemberMinute: round(writePerMinute, 2),
      readUnitsPerMemberMinute: round(readPerMinute, 2),
      dollarsPerMemberMonth: round((writePerMinute * prices.dynamodb.writeRequestUnitPerMillion + readPerMinute * prices.dynamodb.readRequestUnitPerMillion) * minutesPerMonth / 1e6, 4),
    });
  }

  // -- Poll throughput: 4 members, 12 partitions, auto-commit, until every record was delivered.
  const topic = `bench-groups-poll-${run}`;
  await createTopic(ctx.storage, { name: topic, partitions: POLL_PARTITIONS });
  const payload = Buffer.alloc(RECORD_BYTES, 'x');
  for (let i = 0; i < POLL_RECORDS; i += 500) {
    const records = Array.from({ length: 500 }, (_, j) => ({ key: Buffer.from(`k${i + j}`), value: payload, headers: [] }));
    await producer.persist(await producer.prepare(topic, records), 'all');
  }
  const pollGroup = `bench-poll-${run}`;
  const joined = await Promise.all(Array.from({ length: POLL_MEMBERS }, () => groups.membership.join(pollGroup, { topics: [topic], autoOffsetReset: 'earliest' })));
  await converge(groups, pollGroup, joined);
  let delivered = 0;
  let polls = 0;
  const throughput = await meter.measure(() => Promise.all(joined.map(async (m) => {
    let ack: string | undefined;
    while (delivered < POLL_RECORDS) {
      const { records, pollId } = await groups.consumer.poll(pollGroup, m.memberId, { maxRecords: 500, maxBytes: 1024 * 1024, waitMs: 0, autoCommit: true, ack });
      ack = pollId;
      delivered += records.length;
      polls++;
    }
  })));
  const poll = {
    members: POLL_MEMBERS,
    partitions: POLL_PARTITIONS,
    records: delivered,
    recordBytes: RECORD_BYTES,
    ms: round(throughput.ms, 1),
    recordsPerSecond: round(delivered / (throughput.ms / 1000), 0),
    polls,
    dynamodbCallsPerPoll: round(dynamodbCalls(throughput.usage) / polls, 2),
    s3GetsPerPoll: round((throughput.usage.calls['s3.GetObject'] ?? 0) / polls, 2),
    calls: throughput.usage.calls,
  };

  const markdown = [
    '### Consumer groups',
    '',
    `Convergence: N members join a group on a ${CONVERGENCE_PARTITIONS}-partition topic at once, then heartbeat concurrently until no assignment changes.`,
    '',
    markdownTable(['members', 'ms', 'heartbeat rounds', 'DynamoDB calls', 'failed conditional writes', 'WRU', 'RRU'],
      convergence.map((c) => [c.members, c.ms, c.heartbeatRounds, c.dynamodbCalls, c.failedConditionalWrites, c.writeUnits, c.readUnits])),
    '',
    `Poll throughput: ${POLL_MEMBERS} members over ${POLL_PARTITIONS} partitions, ${RECORD_BYTES}-byte records, maxRecords 500, auto-commit: ` +
      `${poll.records} records in ${poll.ms} ms (${poll.recordsPerSecond} records/s on the local emulators), ${poll.polls} polls, ` +
      `${poll.dynamodbCallsPerPoll} DynamoDB calls and ${poll.s3GetsPerPoll} S3 GETs per poll.`,
    '',
    'Idle members: cost of heartbeats alone (one read and one conditional write of the group item each). Units follow the group item size, so the cost per member grows with the group.',
    '',
    markdownTable(['group members', 'group item', 'interval ms', 'WRU/heartbeat (reported)', 'RRU/heartbeat (reported)', 'WRU/heartbeat (size)', 'RRU/heartbeat (size)', 'WRU/member-min', 'RRU/member-min', '$/member-month'],
      idle.map((c) => [c.groupMembers, `${c.groupItemBytes} B`, c.heartbeatIntervalMs, c.reportedWriteUnitsPerHeartbeat, c.reportedReadUnitsPerHeartbeat, c.derivedWriteUnitsPerHeartbeat, c.derivedReadUnitsPerHeartbeat, c.writeUnitsPerMemberMinute, c.readUnitsPerMemberMinute, c.dollarsPerMemberMonth])),
    '',
    `Prices: on-demand $${prices.dynamodb.writeRequestUnitPerMillion}/M WRU, $${prices.dynamodb.readRequestUnitPerMillion}/M RRU (${prices.asOf}); a month is ${HOURS_PER_MONTH} h. Lambda invocations of the heartbeats are not included.`,
  ].join('\n');

  return { markdown, json: { convergence, poll, idle, prices: { asOf: prices.asOf, dynamodb: prices.dynamodb } } };
}
