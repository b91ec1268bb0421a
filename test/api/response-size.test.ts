// Fetch and poll responses never exceed what a Lambda function can return (MAX_RESPONSE_BYTES), in
// any encoding: the records are measured as serialised (escaping included), a response stops before
// the limit, and a record too large to return alone is a clear 413 that consumes nothing.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_SUBSCRIBED_TOPICS } from '../../lambdas/routes/groups.ts';
import { MAX_BODY_BYTES, MAX_FETCH_BYTES, MAX_RESPONSE_BYTES, RESPONSE_ENVELOPE_BYTES } from '../../lambdas/http/schemas.ts';
import { MAX_GAPS_PER_FETCH } from '../../lib/log/fetcher.ts';
import { MAX_PARTITIONS } from '../../lib/topics/topic-config.ts';
import { startGroupApi, type GroupApi } from '../groups/group-client.ts';
import { b64, expectError, type Reply } from './client.ts';

let api: GroupApi;
/** 600 KB of 0x01: 3.6 MB as utf8 JSON ("\u0001" per byte), 800 KB as base64. */
const ESCAPED = b64(new Uint8Array(600_000).fill(1));
/** 3 MB of 0x01: 18 MB as utf8 JSON, 4 MB as base64. */
const HUGE = b64(new Uint8Array(3_000_000).fill(1));

beforeAll(async () => {
  api = await startGroupApi();
  await api.createTopic('escaped', 2);
  await api.produce('escaped', [{ value: ESCAPED, partition: 0 }, { value: ESCAPED, partition: 0 }, { value: ESCAPED, partition: 0 }, { value: ESCAPED, partition: 1 }], { encoding: 'base64' });
  await api.createTopic('huge', 1);
  await api.produce('huge', [{ value: HUGE }], { encoding: 'base64' });
});

/** A request whose reply must fit a Lambda response. */
async function sized(method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await api.app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
  return { status: res.status, body: JSON.parse(text) };
}

describe('the room kept for all but the records covers the largest envelope', () => {
  it('of a fetch: three offsets and a gap for every index entry read', () => {
    const gap = { startOffset: Number.MAX_SAFE_INTEGER, endOffset: Number.MAX_SAFE_INTEGER };
    const envelope = { records: [], nextOffset: Number.MAX_SAFE_INTEGER, highWatermark: Number.MAX_SAFE_INTEGER, logStartOffset: Number.MAX_SAFE_INTEGER, gaps: Array(MAX_GAPS_PER_FETCH).fill(gap) };
    expect(Buffer.byteLength(JSON.stringify(envelope))).toBeLessThan(RESPONSE_ENVELOPE_BYTES);
  });

  it('of a poll: the largest assignment', () => {
    const assignment = Array.from({ length: MAX_SUBSCRIBED_TOPICS }, (_, t) => ({ topic: String(t).padStart(249, 'x'), partitions: Array.from({ length: MAX_PARTITIONS }, (_, p) => p) }));
    const envelope = { memberId: randomUUID(), memberEpoch: Number.MAX_SAFE_INTEGER, heartbeatIntervalMs: Number.MAX_SAFE_INTEGER, assignment, pollId: randomUUID(), records: [] };
    expect(Buffer.byteLength(JSON.stringify(envelope))).toBeLessThan(RESPONSE_ENVELOPE_BYTES);
  });
});

describe('fetch', () => {
  it('stops before the limit when escaping inflates the records, and the next fetch goes on from there', async () => {
    const values: string[] = [];
    for (let offset = 0; offset < 3;) {
      const res = await sized('GET', `/v1/topics/escaped/partitions/0/records?offset=${offset}&maxBytes=${MAX_FETCH_BYTES}`);
      expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
      expect(res.body.records.length).toBeGreaterThan(0);
      values.push(...res.body.records.map((r: { value: string }) => r.value));
      offset = res.body.nextOffset;
    }
    expect(values).toEqual(Array(3).fill('\u0001'.repeat(600_000)));
  });

  it('a record too large for a response on its own is 413 naming its offset and base64, which returns it', async () => {
    expectError(await sized('GET', '/v1/topics/huge/partitions/0/records?offset=0'), 413, 'RECORD_TOO_LARGE_FOR_RESPONSE', ['offset 0', 'base64']);
    const res = await sized('GET', '/v1/topics/huge/partitions/0/records?offset=0&encoding=base64');
    expect(res.status).toBe(200);
    expect(res.body.records.map((r: { value: string }) => r.value === HUGE)).toEqual([true]);
  });
});

describe('poll', () => {
  it('stops before the limit, over all partitions, and delivers (and commits) only what it returned: every record once', async () => {
    const member = await api.join('sized', { topics: ['escaped'], autoOffsetReset: 'earliest' });
    const delivered: string[] = [];
    for (let round = 0; round < 10 && delivered.length < 4; round++) {
      const res = await sized('POST', `/v1/groups/sized/members/${member.id}/poll`, { ack: member.pollId, maxBytes: MAX_FETCH_BYTES });
      expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
      member.pollId = res.body.pollId;
      delivered.push(...res.body.records.map((r: { partition: number; offset: number }) => `${r.partition}:${r.offset}`));
    }
    expect(delivered.sort()).toEqual(['0:0', '0:1', '0:2', '1:0']);
    await member.leave();
    expect(await api.committed('sized')).toEqual({ 'escaped:0': 3, 'escaped:1': 1 });
  });

  it('a record too large for a response on its own is 413 and is delivered, not skipped, once polled as base64', async () => {
    const member = await api.join('too-large', { topics: ['huge'], autoOffsetReset: 'earliest' });
    const path = `/v1/groups/too-large/members/${member.id}/poll`;
    expectError(await sized('POST', path, {}), 413, 'RECORD_TOO_LARGE_FOR_RESPONSE', ['offset 0', 'base64']);
    expectError(await sized('POST', path, {}), 413, 'RECORD_TOO_LARGE_FOR_RESPONSE', ['offset 0']);
    const res = await sized('POST', path, { encoding: 'base64' });
    expect(res.status).toBe(200);
    expect(res.body.records.map((r: { offset: number; value: string }) => [r.offset, r.value === HUGE])).toEqual([[0, true]]);
  });
});

describe('produce', () => {
  it('refuses a record that could not be returned even as base64 with 413 RECORD_TOO_LARGE, writing nothing', async () => {
    const before = await api.objectKeys();
    const value = 'x'.repeat(MAX_BODY_BYTES - 1024);
    expectError(await api.produceRaw('escaped', { records: [{ value: 'fits' }, { value }] }), 413, 'RECORD_TOO_LARGE', ['records.1', 'split']);
    expect(await api.objectKeys()).toEqual(before);
    expect(await api.highWatermarks('escaped')).toEqual([3, 1]);
  });
});
