// The log's lifecycle over HTTP API v1: topic config (create, alter, defaults), DeleteRecords,
// ListOffsets, the storage figures of describe, and config changes taking effect in maintenance.
import { beforeAll, describe, expect, it } from 'vitest';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { DEFAULT_TOPIC_CONFIG } from '../../lib/topics/topic-config.ts';
import { Api, expectError, startApi, type FetchedRecord } from './client.ts';

interface PartitionFigures {
  partition: number;
  logStartOffset: number;
  highWatermark: number;
  segments: number;
  bytes: number;
}

let api: Api;
beforeAll(async () => {
  api = await startApi();
});

async function partitions(topic: string): Promise<PartitionFigures[]> {
  return (await api.describe(topic)).partitions as PartitionFigures[];
}

async function config(topic: string): Promise<Record<string, unknown>> {
  return (await api.describe(topic)).config;
}

const alterConfig = (topic: string, changes: unknown) => api.call('PATCH', `/v1/topics/${topic}/config`, changes);
const deleteRecords = (topic: string, body: unknown) => api.call('POST', `/v1/topics/${topic}/delete-records`, body);
const listOffset = (topic: string, partition: number, timestamp: string) => api.call('GET', `/v1/topics/${topic}/partitions/${partition}/offsets?timestamp=${timestamp}`);

/** One maintenance pass over a partition with the topic's current config, as the maintenance function runs it. */
async function maintain(topic: string, partition = 0): Promise<void> {
  const report = await api.services.maintenance.maintainPartition(await getTopic(api.storage, topic), partition);
  expect(report.skipped, JSON.stringify(report)).toBeUndefined();
}

describe('topic config', () => {
  it('a created topic shows every effective key: the defaults, and the values given as numbers or numeric strings', async () => {
    const plain = await api.call('POST', '/v1/topics', { name: 'cfg-default', partitions: 1 });
    expect(plain.status).toBe(201);
    expect(plain.body.config).toEqual(DEFAULT_TOPIC_CONFIG);
    expect(DEFAULT_TOPIC_CONFIG).toEqual({
      'compression.type': 'none', 'cleanup.policy': 'delete', 'retention.ms': 604_800_000, 'retention.bytes': -1, 'segment.bytes': 67_108_864, 'segment.ms': 600_000,
    });

    const given = { 'compression.type': 'gzip', 'cleanup.policy': 'delete', 'retention.ms': '3600000', 'retention.bytes': 1_000_000, 'segment.bytes': '1048576', 'segment.ms': 60_000 };
    const res = await api.call('POST', '/v1/topics', { name: 'cfg-given', partitions: 1, config: given });
    const effective = { 'compression.type': 'gzip', 'cleanup.policy': 'delete', 'retention.ms': 3_600_000, 'retention.bytes': 1_000_000, 'segment.bytes': 1_048_576, 'segment.ms': 60_000 };
    expect(res).toEqual({ status: 201, body: { name: 'cfg-given', partitions: 1, config: effective } });
    expect(await config('cfg-given')).toEqual(effective);
  });

  it.each([
    ['compaction', { 'cleanup.policy': 'compact' }, ['cleanup.policy', 'not supported']],
    ['an unknown key', { 'min.insync.replicas': 2 }, ['min.insync.replicas']],
    ['a retention below -1', { 'retention.ms': -2 }, ['retention.ms']],
    ['a fractional retention', { 'retention.bytes': 1.5 }, ['retention.bytes']],
    ['a non-numeric string', { 'retention.ms': '1h' }, ['retention.ms']],
    ['segments below 1 KiB', { 'segment.bytes': 1023 }, ['segment.bytes']],
    ['a zero roll interval', { 'segment.ms': 0 }, ['segment.ms']],
  ])('create refuses %s with 400 INVALID_CONFIG naming the key, and creates nothing', async (_, bad, mentions) => {
    expectError(await api.call('POST', '/v1/topics', { name: 'cfg-refused', partitions: 1, config: bad }), 400, 'INVALID_CONFIG', mentions);
    expectError(await api.call('GET', '/v1/topics/cfg-refused'), 404, 'UNKNOWN_TOPIC');
  });

  it('PATCH sets the keys given, restores defaults with null, keeps the rest, and answers the full config', async () => {
    await api.createTopic('cfg-alter', 1, { 'compression.type': 'gzip', 'segment.ms': 60_000 });
    const res = await alterConfig('cfg-alter', { config: { 'retention.ms': 3_600_000, 'retention.bytes': '5000', 'segment.ms': null } });
    const effective = { ...DEFAULT_TOPIC_CONFIG, 'compression.type': 'gzip', 'retention.ms': 3_600_000, 'retention.bytes': 5000 };
    expect(res).toEqual({ status: 200, body: { name: 'cfg-alter', config: effective } });
    expect(await config('cfg-alter')).toEqual(effective);
    // An empty change changes nothing; a repeated one is idempotent.
    expect((await alterConfig('cfg-alter', { config: {} })).body.config).toEqual(effective);
    expect((await alterConfig('cfg-alter', { config: { 'retention.ms': 3_600_000 } })).body.config).toEqual(effective);
  });

  it('PATCH refuses bad input before writing anything, even when other keys of the request are valid', async () => {
    await api.createTopic('cfg-keep', 1, { 'retention.ms': 1000 });
    const before = await config('cfg-keep');
    const cases: Array<[unknown, number, string, string[]]> = [
      [{ config: { 'retention.ms': 5, 'cleanup.policy': 'compact' } }, 400, 'INVALID_CONFIG', ['cleanup.policy', 'not supported']],
      [{ config: { 'retention.ms': 5, 'max.message.bytes': 10 } }, 400, 'INVALID_CONFIG', ['max.message.bytes']],
      [{ config: { 'retention.ms': 5, 'segment.bytes': 2 ** 40 } }, 400, 'INVALID_CONFIG', ['segment.bytes']],
      [{ config: { 'retention.ms': 5, 'compression.type': 'zstd' } }, 400, 'INVALID_CONFIG', ['compression.type']],
      [{ config: { 'retention.ms': 5 }, extra: 1 }, 400, 'INVALID_REQUEST', ['extra']],
      [{ config: 'retention.ms=5' }, 400, 'INVALID_REQUEST', ['config']],
      [{}, 400, 'INVALID_REQUEST', ['config']],
      ['{"config":', 400, 'MALFORMED_JSON', []],
    ];
    for (const [body, status, code, mentions] of cases) {
      expectError(await alterConfig('cfg-keep', body), status, code, mentions);
    }
    expect(await config('cfg-keep')).toEqual(before);
    expectError(await alterConfig('cfg-nowhere', { config: { 'retention.ms': 5 } }), 404, 'UNKNOWN_TOPIC', ['cfg-nowhere']);
    expectError(await api.call('GET', '/v1/topics/cfg-nowhere'), 404, 'UNKNOWN_TOPIC');
  });
});

describe('delete records and list offsets', () => {
  it('DeleteRecords raises the log start (never lowers it), -1 meaning the high watermark; fetches below it are 416 naming both bounds', async () => {
    await api.createTopic('trim', 2);
    await api.produce('trim', Array.from({ length: 8 }, (_, i) => ({ value: `v${i}`, partition: 0 })));
    await api.produce('trim', [{ value: 'w0', partition: 1 }, { value: 'w1', partition: 1 }]);
    const everything = await api.fetchAll('trim', 0);

    const res = await deleteRecords('trim', { partitions: [{ partition: 0, offset: 5 }, { partition: 1, offset: -1 }] });
    expect(res).toEqual({ status: 200, body: { partitions: [{ partition: 0, logStartOffset: 5 }, { partition: 1, logStartOffset: 2 }] } });
    expect((await partitions('trim')).map(({ partition, logStartOffset, highWatermark }) => ({ partition, logStartOffset, highWatermark }))).toEqual([
      { partition: 0, logStartOffset: 5, highWatermark: 8 },
      { partition: 1, logStartOffset: 2, highWatermark: 2 },
    ]);
    expectError(await api.fetchRaw('trim', 0, 'offset=4'), 416, 'OFFSET_OUT_OF_RANGE', ['4', '5', '8']);
    expect(await api.fetchAll('trim', 0, 5)).toEqual(everything.slice(5));
    expect((await api.fetch('trim', 1, { offset: 2 })).records).toEqual([]);

    // A late or repeated request for a lower offset succeeds and answers the log start as it is.
    expect((await deleteRecords('trim', { partitions: [{ partition: 0, offset: 3 }] })).body).toEqual({ partitions: [{ partition: 0, logStartOffset: 5 }] });
    expect((await deleteRecords('trim', { partitions: [{ partition: 0, offset: 5 }] })).body).toEqual({ partitions: [{ partition: 0, logStartOffset: 5 }] });
    expect((await partitions('trim'))[0]!.logStartOffset).toBe(5);
  });

  it('DeleteRecords refuses bad input before raising any log start', async () => {
    await api.createTopic('trim-refused', 2);
    await api.produce('trim-refused', [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }, { value: 'c', partition: 1 }]);
    const before = await partitions('trim-refused');
    const cases: Array<[unknown, number, string, string[]]> = [
      [{ partitions: [{ partition: 0, offset: 1 }, { partition: 1, offset: 2 }] }, 416, 'OFFSET_OUT_OF_RANGE', ['2', '1']],
      [{ partitions: [{ partition: 0, offset: 1 }, { partition: 2, offset: 0 }] }, 404, 'UNKNOWN_PARTITION', ['partition 2']],
      [{ partitions: [{ partition: 0, offset: 1 }, { partition: 0, offset: 2 }] }, 400, 'INVALID_REQUEST', ['once']],
      [{ partitions: [{ partition: 0, offset: -2 }] }, 400, 'INVALID_REQUEST', ['offset']],
      [{ partitions: [{ partition: 0, offset: 1.5 }] }, 400, 'INVALID_REQUEST', ['offset']],
      [{ partitions: [{ partition: 0 }] }, 400, 'INVALID_REQUEST', ['offset']],
      [{ partitions: [] }, 400, 'INVALID_REQUEST', ['at least one partition']],
      [{ partitions: [{ partition: 0, offset: 1 }], all: true }, 400, 'INVALID_REQUEST', ['all']],
      ['{"partitions":[', 400, 'MALFORMED_JSON', []],
    ];
    for (const [body, status, code, mentions] of cases) {
      expectError(await deleteRecords('trim-refused', body), status, code, mentions);
    }
    expect(await partitions('trim-refused')).toEqual(before);
    expectError(await deleteRecords('trim-nowhere', { partitions: [{ partition: 0, offset: 0 }] }), 404, 'UNKNOWN_TOPIC', ['trim-nowhere']);
  });

  it('ListOffsets finds the first offset at or after a timestamp, and the earliest and latest offsets', async () => {
    await api.createTopic('times', 2);
    await api.produce('times', [1000, 2000, 2000, 3000].map((timestamp, i) => ({ value: `t${i}`, partition: 0, timestamp })));
    const expectOffset = async (timestamp: string, expected: { offset: number; timestamp: number | null }) => {
      expect(await listOffset('times', 0, timestamp), `timestamp=${timestamp}`).toEqual({ status: 200, body: expected });
    };
    await expectOffset('0', { offset: 0, timestamp: 1000 });
    await expectOffset('1500', { offset: 1, timestamp: 2000 });
    await expectOffset('2000', { offset: 1, timestamp: 2000 });
    await expectOffset('3000', { offset: 3, timestamp: 3000 });
    await expectOffset('3001', { offset: 4, timestamp: null });
    await expectOffset('earliest', { offset: 0, timestamp: null });
    await expectOffset('latest', { offset: 4, timestamp: null });
    expect((await listOffset('times', 1, 'latest')).body).toEqual({ offset: 0, timestamp: null });

    // Below the log start nothing is found: the earliest record at or after the timestamp that is still readable.
    await deleteRecords('times', { partitions: [{ partition: 0, offset: 2 }] });
    await expectOffset('1500', { offset: 2, timestamp: 2000 });
    await expectOffset('earliest', { offset: 2, timestamp: null });
  });

  it('ListOffsets refuses a bad timestamp with 400, an unknown topic or partition with 404', async () => {
    await api.createTopic('times-refused', 1);
    for (const query of ['timestamp=-1', 'timestamp=soon', 'timestamp=1.5', 'timestamp=', '', 'timestamp=1&extra=2']) {
      expectError(await api.call('GET', `/v1/topics/times-refused/partitions/0/offsets?${query}`), 400, 'INVALID_REQUEST', [/timestamp|extra/]);
    }
    expectError(await listOffset('times-refused', 1, 'latest'), 404, 'UNKNOWN_PARTITION', ['partition 1']);
    expectError(await listOffset('times-nowhere', 0, 'latest'), 404, 'UNKNOWN_TOPIC', ['times-nowhere']);
  });
});

describe('config changes take effect in maintenance', () => {
  it('small segment.bytes rolls segments that read back identically; small retention.bytes then moves the log start and frees bytes', async () => {
    await api.createTopic('rolled', 1);
    // Each request is one batch of just over 1 KiB: with segment.bytes 1024 each becomes a segment.
    // Recent timestamps, spaced apart: retention.ms (7 days) expires none of them.
    const start = Date.now();
    for (let i = 0; i < 4; i++) await api.produce('rolled', [{ key: `k${i}`, value: `${i}`.repeat(1100), headers: { n: `${i}` }, timestamp: start + 1000 * i }]);
    const written = await api.fetchAll('rolled', 0);
    const [intake] = await partitions('rolled');
    expect(intake).toMatchObject({ logStartOffset: 0, highWatermark: 4, segments: 0 });
    expect(intake!.bytes).toBeGreaterThan(4 * 1100);

    await maintain('rolled');
    expect(await partitions('rolled'), 'the default 64 MiB segment.bytes rolls nothing yet').toEqual([intake]);

    await alterConfig('rolled', { config: { 'segment.bytes': 1024 } });
    await maintain('rolled');
    const [compacted] = await partitions('rolled');
    expect(compacted).toMatchObject({ logStartOffset: 0, highWatermark: 4, segments: 4 });
    expect(await api.fetchAll('rolled', 0)).toEqual(written);
    expect((await listOffset('rolled', 0, String(start + 1500))).body).toEqual({ offset: 2, timestamp: start + 2000 });

    const kept = Math.floor(compacted!.bytes / 2);
    await alterConfig('rolled', { config: { 'retention.bytes': kept } });
    await maintain('rolled');
    const [retained] = await partitions('rolled');
    expect(retained!.logStartOffset).toBeGreaterThan(0);
    expect(retained!.segments, 'retention.bytes keeps the newest segments').toBeGreaterThan(0);
    expect(retained!.segments).toBe(4 - retained!.logStartOffset);
    expect(retained!.bytes).toBeLessThanOrEqual(kept);
    expect(retained!.highWatermark).toBe(4);
    expectError(await api.fetchRaw('rolled', 0, 'offset=0'), 416, 'OFFSET_OUT_OF_RANGE', [`${retained!.logStartOffset} (log start)`]);
    const rest: FetchedRecord[] = await api.fetchAll('rolled', 0, retained!.logStartOffset);
    expect(rest).toEqual(written.slice(retained!.logStartOffset));
    expect((await listOffset('rolled', 0, 'earliest')).body).toEqual({ offset: retained!.logStartOffset, timestamp: null });
  });
});
