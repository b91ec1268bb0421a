// Topic administration over HTTP API v1: create, list, describe, delete, add partitions, config.
import { DEFAULT_TOPIC_CONFIG } from '../../lib/topics/topic-config.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { readBatchHeader } from '../../lib/codec/segment.ts';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { batchBytes } from '../../lib/log/objects.ts';
import type { DataEntry } from '../../lib/log/sequencer.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { partitionForKey } from '../../lib/partitioner/partitioner.ts';
import { MAX_PARTITIONS } from '../../lib/topics/topic-config.ts';
import { Api, b64, expectError, startApi } from './client.ts';

let api: Api;
beforeAll(async () => {
  api = await startApi();
});

describe('health', () => {
  it('GET /v1/health answers ok', async () => {
    const res = await api.call('GET', '/v1/health');
    expect(res).toEqual({ status: 200, body: { status: 'ok' } });
  });
});

describe('create topic', () => {
  it('answers 201 with the topic and its default config', async () => {
    const res = await api.call('POST', '/v1/topics', { name: 'created', partitions: 3 });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ name: 'created', partitions: 3, config: DEFAULT_TOPIC_CONFIG });
  });

  it('refuses an existing name with 409 TOPIC_EXISTS and keeps the original', async () => {
    await api.createTopic('dup', 2);
    const res = await api.call('POST', '/v1/topics', { name: 'dup', partitions: 5 });
    expectError(res, 409, 'TOPIC_EXISTS', ['dup']);
    expect((await api.describe('dup')).partitions).toHaveLength(2);
  });

  it.each([
    ['249 characters', 'n'.repeat(249)],
    ['every allowed character class', 'aZ09._-'],
    ['three dots', '...'],
    ['leading dot', '.hidden'],
  ])('accepts a name with %s', async (_, name) => {
    await api.createTopic(name, 1);
    const described = await api.describe(name);
    expect(described.name).toBe(name);
    const [offset] = await api.produce(name, [{ value: 'v' }]);
    expect(offset).toMatchObject({ partition: 0, offset: 0 });
  });

  it.each([
    ['250 characters', 'n'.repeat(250)],
    ['an empty name', ''],
    ['a space', 'a b'],
    ['a slash', 'a/b'],
    ['a non-ASCII letter', 'caf\u00e9'],
    ['an asterisk', 'a*'],
    ['a colon', 'a:b'],
    ['"."', '.'],
    ['".."', '..'],
  ])('refuses a name with %s (400 INVALID_TOPIC_NAME)', async (_, name) => {
    const res = await api.call('POST', '/v1/topics', { name, partitions: 1 });
    expectError(res, 400, 'INVALID_TOPIC_NAME', [JSON.stringify(name)]);
  });

  it.each([
    ['zero', 0],
    ['negative', -1],
    ['fractional', 1.5],
    ['above the maximum', MAX_PARTITIONS + 1],
  ])('refuses a partition count that is %s (400 INVALID_PARTITIONS)', async (_, partitions) => {
    const res = await api.call('POST', '/v1/topics', { name: `bounds-${String(partitions).replace('.', '_')}`, partitions });
    expectError(res, 400, 'INVALID_PARTITIONS', ['partitions', String(MAX_PARTITIONS)]);
  });

  it('accepts the minimum and maximum partition counts', async () => {
    await api.createTopic('one-partition', 1);
    await api.createTopic('max-partitions', MAX_PARTITIONS);
    const res = await api.call('GET', '/v1/topics');
    const listed = (res.body.topics as Array<{ name: string; partitions: number }>).filter((t) => t.name === 'one-partition' || t.name === 'max-partitions');
    expect(listed).toEqual([{ name: 'max-partitions', partitions: MAX_PARTITIONS }, { name: 'one-partition', partitions: 1 }]);
    const [last] = await api.produce('max-partitions', [{ value: 'last', partition: MAX_PARTITIONS - 1 }]);
    expect(last).toMatchObject({ partition: MAX_PARTITIONS - 1, offset: 0 });
  });

  it('refuses a partition count given as a string or missing (400 INVALID_REQUEST)', async () => {
    expectError(await api.call('POST', '/v1/topics', { name: 'typed', partitions: '3' }), 400, 'INVALID_REQUEST', ['partitions']);
    expectError(await api.call('POST', '/v1/topics', { name: 'typed' }), 400, 'INVALID_REQUEST', ['partitions']);
    expectError(await api.call('GET', '/v1/topics/typed'), 404, 'UNKNOWN_TOPIC', ['typed']);
  });
});

describe('list topics', () => {
  it('lists every topic with its partition count, sorted by name (code-point order)', async () => {
    const names = ['list-b', 'LIST-Z', 'list-a', 'list_c', 'list.d', 'list-10', 'list-9'];
    for (const [i, name] of names.entries()) await api.createTopic(name, i + 1);
    const res = await api.call('GET', '/v1/topics');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['topics']);
    const topics = res.body.topics as Array<{ name: string; partitions: number }>;
    for (const t of topics) expect(Object.keys(t).sort()).toEqual(['name', 'partitions']);
    const all = topics.map((t) => t.name);
    expect(all).toEqual([...all].sort());
    const mine = topics.filter((t) => names.includes(t.name));
    expect(mine).toEqual([...names.entries()].map(([i, name]) => ({ name, partitions: i + 1 })).sort((a, b) => (a.name < b.name ? -1 : 1)));
  });
});

describe('describe topic', () => {
  it('reports every partition with log start and high watermark after produce, and the config', async () => {
    await api.createTopic('described', 3);
    const before = await api.describe('described');
    expect(before).toEqual({
      name: 'described',
      partitions: [0, 1, 2].map((partition) => ({ partition, logStartOffset: 0, highWatermark: 0, segments: 0, bytes: 0 })),
      config: DEFAULT_TOPIC_CONFIG,
    });
    await api.produce('described', [{ value: 'a', partition: 0 }, { value: 'b', partition: 2 }, { value: 'c', partition: 0 }]);
    await api.produce('described', [{ value: 'd', partition: 0 }]);
    const after = await api.describe('described');
    expect(after.partitions).toMatchObject([
      { partition: 0, logStartOffset: 0, highWatermark: 3, segments: 0 },
      { partition: 1, logStartOffset: 0, highWatermark: 0, segments: 0, bytes: 0 },
      { partition: 2, logStartOffset: 0, highWatermark: 1, segments: 0 },
    ]);
    // Stored bytes: the batches not compacted yet (two of partition 0, one of partition 2).
    expect(after.partitions[0]!.bytes).toBeGreaterThan(after.partitions[2]!.bytes);
    expect(after.partitions[2]!.bytes).toBeGreaterThan(0);
  });

  it('answers 404 UNKNOWN_TOPIC for an unknown topic', async () => {
    expectError(await api.call('GET', '/v1/topics/never-created'), 404, 'UNKNOWN_TOPIC', ['never-created']);
  });
});

describe('delete topic', () => {
  it('answers 204, then the topic is gone for describe, produce, fetch, list and delete', async () => {
    await api.createTopic('doomed', 2);
    await api.produce('doomed', [{ value: 'x', partition: 1 }]);
    const res = await api.call('DELETE', '/v1/topics/doomed');
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    expectError(await api.call('GET', '/v1/topics/doomed'), 404, 'UNKNOWN_TOPIC', ['doomed']);
    expectError(await api.produceRaw('doomed', { records: [{ value: 'y' }] }), 404, 'UNKNOWN_TOPIC', ['doomed']);
    expectError(await api.fetchRaw('doomed', 1, 'offset=0'), 404, 'UNKNOWN_TOPIC', ['doomed']);
    expectError(await api.call('POST', '/v1/topics/doomed/partitions', { count: 3 }), 404, 'UNKNOWN_TOPIC', ['doomed']);
    expectError(await api.call('DELETE', '/v1/topics/doomed'), 404, 'UNKNOWN_TOPIC', ['doomed']);
    const list = await api.call('GET', '/v1/topics');
    expect(list.body.topics.map((t: { name: string }) => t.name)).not.toContain('doomed');
  });

  it('a re-created topic starts empty: offset 0, the old records are not visible', async () => {
    await api.createTopic('phoenix', 2);
    await api.produce('phoenix', [{ value: 'old-0', partition: 0 }, { value: 'old-1', partition: 0 }, { value: 'old-2', partition: 1 }]);
    expect((await api.call('DELETE', '/v1/topics/phoenix')).status).toBe(204);
    await api.createTopic('phoenix', 2);
    expect(await api.highWatermarks('phoenix')).toEqual([0, 0]);
    const fetched = await api.fetch('phoenix', 0, { offset: 0 });
    expect(fetched).toMatchObject({ records: [], nextOffset: 0, highWatermark: 0, logStartOffset: 0 });
    const [offset] = await api.produce('phoenix', [{ value: 'new-0', partition: 0 }]);
    expect(offset).toMatchObject({ partition: 0, offset: 0 });
    const after = await api.fetch('phoenix', 0, { offset: 0 });
    expect(after.records.map((r) => r.value)).toEqual(['new-0']);
    expect(after.highWatermark).toBe(1);
    expectError(await api.fetchRaw('phoenix', 1, 'offset=1'), 416, 'OFFSET_OUT_OF_RANGE');
  });
});

describe('add partitions', () => {
  it('increases the count; new partitions are produce- and fetch-able; keyed routing uses the new count', async () => {
    await api.createTopic('growing', 2);
    const res = await api.call('POST', '/v1/topics/growing/partitions', { count: 5 });
    expect(res).toEqual({ status: 200, body: { name: 'growing', partitions: 5 } });
    const described = await api.describe('growing');
    expect(described.partitions).toEqual([0, 1, 2, 3, 4].map((partition) => ({ partition, logStartOffset: 0, highWatermark: 0, segments: 0, bytes: 0 })));

    const [explicit] = await api.produce('growing', [{ value: 'on-4', partition: 4 }]);
    expect(explicit).toMatchObject({ partition: 4, offset: 0 });
    expect((await api.fetch('growing', 4, { offset: 0 })).records.map((r) => r.value)).toEqual(['on-4']);

    const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`);
    const offsets = await api.produce('growing', keys.map((key) => ({ key, value: key })));
    const expected = keys.map((key) => partitionForKey(Buffer.from(key), 5));
    expect(offsets.map((o) => o.partition)).toEqual(expected);
    // The keys spread over the new partitions too, so routing cannot have used the old count.
    expect(expected.some((p) => p >= 2)).toBe(true);
    for (const partition of new Set(expected)) {
      const values = (await api.fetchAll('growing', partition)).map((r) => r.value);
      expect(values).toEqual(expect.arrayContaining(keys.filter((_, i) => expected[i] === partition)));
    }
  });

  it.each([
    ['equal to', 3],
    ['below', 2],
  ])('refuses a count %s the current one (400 INVALID_PARTITIONS)', async (_, count) => {
    const name = `fixed-${count}`;
    await api.createTopic(name, 3);
    const res = await api.call('POST', `/v1/topics/${name}/partitions`, { count });
    expectError(res, 400, 'INVALID_PARTITIONS', ['count', '3']);
    expect((await api.describe(name)).partitions).toHaveLength(3);
  });

  it('refuses counts out of bounds or of the wrong type', async () => {
    await api.createTopic('bounded', 1);
    expectError(await api.call('POST', '/v1/topics/bounded/partitions', { count: MAX_PARTITIONS + 1 }), 400, 'INVALID_PARTITIONS', ['count']);
    expectError(await api.call('POST', '/v1/topics/bounded/partitions', { count: 2.5 }), 400, 'INVALID_PARTITIONS', ['count']);
    expectError(await api.call('POST', '/v1/topics/bounded/partitions', { count: '2' }), 400, 'INVALID_REQUEST', ['count']);
    expectError(await api.call('POST', '/v1/topics/bounded/partitions', {}), 400, 'INVALID_REQUEST', ['count']);
    expectError(await api.call('POST', '/v1/topics/bounded/partitions', { count: 2, extra: true }), 400, 'INVALID_REQUEST', ['extra']);
    expect((await api.describe('bounded')).partitions).toHaveLength(1);
  });

  it('answers 404 for an unknown topic', async () => {
    expectError(await api.call('POST', '/v1/topics/no-such-topic/partitions', { count: 4 }), 404, 'UNKNOWN_TOPIC', ['no-such-topic']);
  });
});

describe('topic config', () => {
  it('compression.type gzip is stored, described, applied to the segment, and round trips data', async () => {
    const res = await api.call('POST', '/v1/topics', { name: 'zipped', partitions: 1, config: { 'compression.type': 'gzip' } });
    expect(res.status).toBe(201);
    expect(res.body.config).toEqual({ ...DEFAULT_TOPIC_CONFIG, 'compression.type': 'gzip' });
    expect((await api.describe('zipped')).config).toEqual({ ...DEFAULT_TOPIC_CONFIG, 'compression.type': 'gzip' });

    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    const records = [
      { key: b64('k1'), value: b64('hello '.repeat(200)), headers: { h: 'v' } },
      { key: null, value: b64(binary) },
      { key: b64(''), value: null },
    ];
    const offsets = await api.produce('zipped', records, { encoding: 'base64' });
    expect(offsets.map((o) => o.offset)).toEqual([0, 1, 2]);
    const fetched = await api.fetch('zipped', 0, { offset: 0, encoding: 'base64' });
    expect(fetched.records.map(({ key, value, headers }) => ({ key, value, headers }))).toEqual([
      { key: b64('k1'), value: b64('hello '.repeat(200)), headers: { h: 'v' } },
      { key: null, value: b64(binary), headers: {} },
      { key: '', value: null, headers: {} },
    ]);

    // The stored batch really is gzip-compressed, wherever it is stored (inline or in an intake object).
    const { topicId } = await getTopic(api.storage, 'zipped');
    const [entry] = await api.services.sequencer.queryEntries(logPartitionKey(topicId, 0), 0, 1);
    expect(entry?.kind).toBe('data');
    expect(readBatchHeader(await batchBytes(api.storage, entry as DataEntry)).compression).toBe('gzip');
  });

  it('compression.type none is accepted explicitly', async () => {
    const res = await api.call('POST', '/v1/topics', { name: 'plain', partitions: 1, config: { 'compression.type': 'none' } });
    expect(res.status).toBe(201);
    expect(res.body.config).toEqual(DEFAULT_TOPIC_CONFIG);
  });

  it.each([
    ['an unknown key', { 'min.insync.replicas': 2 }, 'min.insync.replicas'],
    ['an unsupported compression', { 'compression.type': 'zstd' }, 'compression.type'],
    ['a non-string compression', { 'compression.type': 1 }, 'compression.type'],
  ])('refuses %s (400 INVALID_CONFIG) and creates nothing', async (_, config, mention) => {
    const res = await api.call('POST', '/v1/topics', { name: 'misconfigured', partitions: 1, config });
    expectError(res, 400, 'INVALID_CONFIG', [mention]);
    expectError(await api.call('GET', '/v1/topics/misconfigured'), 404, 'UNKNOWN_TOPIC');
  });

  it('refuses a config that is not an object (400 INVALID_REQUEST)', async () => {
    expectError(await api.call('POST', '/v1/topics', { name: 'misconfigured', partitions: 1, config: 'gzip' }), 400, 'INVALID_REQUEST', ['config']);
    expectError(await api.call('POST', '/v1/topics', { name: 'misconfigured', partitions: 1, config: null }), 400, 'INVALID_REQUEST', ['config']);
  });
});
