// Bad input over HTTP API v1: every rejected request gets a specific 4xx error naming the offending
// input, and nothing of a rejected produce becomes visible (high watermarks and bucket unchanged).
import { DEFAULT_TOPIC_CONFIG } from '../../lib/topics/topic-config.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, MAX_FETCH_BYTES, MAX_FETCH_RECORDS, MAX_RECORDS_PER_REQUEST, MAX_WAIT_MS } from '../../lambdas/http/schemas.ts';
import { Api, b64, expectError, startApi, withInvalidUtf8, type Reply } from './client.ts';

let api: Api;
const TOPIC = 'target';
const PARTITIONS = 3;

beforeAll(async () => {
  api = await startApi();
  await api.createTopic(TOPIC, PARTITIONS);
  await api.produce(TOPIC, [{ value: 'seed-0', partition: 0 }, { value: 'seed-1', partition: 1 }, { value: 'seed-2', partition: 1 }]);
});

/** Runs a request and asserts that it changed no high watermark and wrote no object. */
async function rejectedWithoutTrace(request: () => Promise<Reply>): Promise<Reply> {
  const hwms = await api.highWatermarks(TOPIC);
  const objects = await api.objectKeys();
  const res = await request();
  // Anything started in the background (acks=0) would have been started by now; give it a moment.
  await new Promise((r) => setTimeout(r, 20));
  expect(await api.highWatermarks(TOPIC)).toEqual(hwms);
  expect(await api.objectKeys()).toEqual(objects);
  return res;
}

const valid = { value: 'ok' };
const records = (...rs: unknown[]) => ({ records: rs });

type Row = [description: string, body: unknown, status: number, code: string, mentions: Array<string | RegExp>];

const produceRows: Row[] = [
  // Malformed bodies
  ['malformed JSON', '{"records":[{"value":"a"}', 400, 'MALFORMED_JSON', ['JSON']],
  ['an empty body', '', 400, 'MALFORMED_JSON', ['JSON']],
  ['trailing garbage after JSON', '{"records":[{"value":"a"}]} x', 400, 'MALFORMED_JSON', ['JSON']],
  ['a JSON array body', [valid], 400, 'INVALID_REQUEST', ['object']],
  ['a JSON null body', 'null', 400, 'INVALID_REQUEST', ['object']],
  // Wrong shapes and types
  ['missing records', {}, 400, 'INVALID_REQUEST', ['records']],
  ['records not an array', { records: valid }, 400, 'INVALID_REQUEST', ['records']],
  ['no records', records(), 400, 'INVALID_REQUEST', ['records', 'at least one']],
  ['a record that is not an object', records('ok'), 400, 'INVALID_REQUEST', ['records.0']],
  ['a missing value', records({ key: 'k' }), 400, 'INVALID_REQUEST', ['records.0.value']],
  ['a numeric value', records({ value: 1 }), 400, 'INVALID_REQUEST', ['records.0.value']],
  ['an object value', records({ value: { a: 1 } }), 400, 'INVALID_REQUEST', ['records.0.value']],
  ['a numeric key', records({ key: 7, value: 'v' }), 400, 'INVALID_REQUEST', ['records.0.key']],
  ['headers as an array', records({ value: 'v', headers: [['h', 'v']] }), 400, 'INVALID_REQUEST', ['records.0.headers']],
  ['a numeric header value', records({ value: 'v', headers: { h: 1 } }), 400, 'INVALID_REQUEST', ['records.0.headers.h']],
  ['a null header value', records({ value: 'v', headers: { h: null } }), 400, 'INVALID_REQUEST', ['records.0.headers.h']],
  ['a negative partition', records({ value: 'v', partition: -1 }), 400, 'INVALID_REQUEST', ['records.0.partition']],
  ['a fractional partition', records({ value: 'v', partition: 1.5 }), 400, 'INVALID_REQUEST', ['records.0.partition']],
  ['a string partition', records({ value: 'v', partition: '1' }), 400, 'INVALID_REQUEST', ['records.0.partition']],
  ['a negative timestamp', records({ value: 'v', timestamp: -5 }), 400, 'INVALID_REQUEST', ['records.0.timestamp']],
  ['a string timestamp', records({ value: 'v', timestamp: '2024-01-01' }), 400, 'INVALID_REQUEST', ['records.0.timestamp']],
  ['an unsafe timestamp', records({ value: 'v', timestamp: 2 ** 60 }), 400, 'INVALID_REQUEST', ['records.0.timestamp']],
  ['an unknown acks', { ...records(valid), acks: 'leader' }, 400, 'INVALID_REQUEST', ['acks']],
  ['a numeric acks', { ...records(valid), acks: 1 }, 400, 'INVALID_REQUEST', ['acks']],
  ['an unknown encoding', { ...records(valid), encoding: 'hex' }, 400, 'INVALID_REQUEST', ['encoding']],
  // Unknown fields
  ['an unknown top-level field', { ...records(valid), compression: 'gzip' }, 400, 'INVALID_REQUEST', ['compression']],
  ['an unknown record field', records(valid, { value: 'v', offset: 3 }), 400, 'INVALID_REQUEST', ['records.1', 'offset']],
  // zod would silently drop a "__proto__" key (losing the header): it is refused instead.
  ['a "__proto__" header name', '{"records":[{"value":"a"},{"value":"b","headers":{"ok":"1","__proto__":"x"}}]}', 400, 'INVALID_REQUEST', ['records.1.headers.__proto__']],
  ['a "__proto__" header name written with escapes', '{"records":[{"value":"b","headers":{"\\u005f_proto__":"x"}}]}', 400, 'INVALID_REQUEST', ['records.0.headers.__proto__']],
  // Invalid base64, including in the last record of the request
  ['invalid base64 characters', { encoding: 'base64', records: [{ value: 'not base64!' }] }, 400, 'INVALID_BASE64', ['records.0.value']],
  ['base64 without padding', { encoding: 'base64', records: [{ value: 'YQ' }] }, 400, 'INVALID_BASE64', ['records.0.value']],
  ['base64url alphabet', { encoding: 'base64', records: [{ value: '-_-_' }] }, 400, 'INVALID_BASE64', ['records.0.value']],
  ['invalid base64 in the key', { encoding: 'base64', records: [{ key: 'a b=', value: b64('v') }] }, 400, 'INVALID_BASE64', ['records.0.key']],
  ['invalid base64 value in record 3 of 3', { encoding: 'base64', records: [{ value: b64('one') }, { key: b64('k'), value: b64('two'), partition: 2 }, { value: 'bad*' }] }, 400, 'INVALID_BASE64', ['records.2.value']],
  ['invalid base64 with acks=0', { encoding: 'base64', acks: '0', records: [{ value: b64('one') }, { value: '%%%%' }] }, 400, 'INVALID_BASE64', ['records.1.value']],
  // Lone surrogates (legal in JSON escapes, impossible in UTF-8) would be stored as U+FFFD: refused.
  ['a lone surrogate in a utf8 value of record 2 of 2', '{"records":[{"value":"ok"},{"value":"a\\ud800b"}]}', 400, 'INVALID_UNICODE', ['records.1.value']],
  ['a lone surrogate in a utf8 key', '{"records":[{"key":"\\udc00","value":"v"}]}', 400, 'INVALID_UNICODE', ['records.0.key']],
  ['a lone surrogate in a header value', '{"records":[{"value":"v","headers":{"h":"x\\udbff"}}]}', 400, 'INVALID_UNICODE', ['records.0.headers.h']],
  ['a lone surrogate in a header name', '{"records":[{"value":"v","headers":{"\\ud800":"x"}}]}', 400, 'INVALID_UNICODE', ['records.0.headers']],
  // Raw bytes that are not UTF-8 would be decoded to U+FFFD: refused, naming the string that holds them.
  ['invalid UTF-8 in the value of record 2 of 2', withInvalidUtf8('{"records":[{"value":"ok"},{"value":"a@@b"}]}'), 400, 'INVALID_UTF8', ['records.1.value']],
  ['invalid UTF-8 in a key', withInvalidUtf8('{"records":[{"key":"@@","value":"v"}]}'), 400, 'INVALID_UTF8', ['records.0.key']],
  ['invalid UTF-8 in a header value', withInvalidUtf8('{"records":[{"value":"v","headers":{"h":"x@@"}}]}'), 400, 'INVALID_UTF8', ['records.0.headers.h']],
  ['invalid UTF-8 in a header name', withInvalidUtf8('{"records":[{"value":"v","headers":{"n@@":"x"}}]}'), 400, 'INVALID_UTF8', ['records.0.headers.n\ufffd']],
  ['invalid UTF-8 after a real U+FFFD', withInvalidUtf8('{"records":[{"value":"\\ufffd"},{"value":"\ufffd"},{"value":"@@"}]}'), 400, 'INVALID_UTF8', ['records.2.value']],
  ['a UTF-8-encoded surrogate', Buffer.from('{"records":[{"value":"\xed\xa0\x80"}]}', 'latin1'), 400, 'INVALID_UTF8', ['records.0.value']],
  ['a truncated UTF-8 sequence', Buffer.from('{"records":[{"value":"\xe2\x82"}]}', 'latin1'), 400, 'INVALID_UTF8', ['records.0.value']],
  ['invalid UTF-8 outside any string', withInvalidUtf8('{"records":[{"value":"v"}]}@@'), 400, 'INVALID_UTF8', ['request body']],
  ['invalid UTF-8 with acks=0', withInvalidUtf8('{"acks":"0","records":[{"value":"@@"}]}'), 400, 'INVALID_UTF8', ['records.0.value']],
  // Unknown partition, including in the last record only
  ['a partition out of range', records({ value: 'v', partition: PARTITIONS }), 404, 'UNKNOWN_PARTITION', [`partition ${PARTITIONS}`, TOPIC]],
  ['a partition out of range in record 3 of 3', records({ value: 'a', partition: 0 }, { key: 'k', value: 'b' }, { value: 'c', partition: 99 }), 404, 'UNKNOWN_PARTITION', ['partition 99']],
  ['a partition out of range with acks=0', { acks: '0', records: [{ value: 'a' }, { value: 'b', partition: 1_000_000 }] }, 404, 'UNKNOWN_PARTITION', ['partition 1000000']],
  ['a huge partition', records({ value: 'v', partition: Number.MAX_SAFE_INTEGER }), 404, 'UNKNOWN_PARTITION', [String(Number.MAX_SAFE_INTEGER)]],
];

describe('produce: rejected requests leave no trace', () => {
  it.each(produceRows)('%s', async (_, body, status, code, mentions) => {
    const res = await rejectedWithoutTrace(() => api.produceRaw(TOPIC, body));
    expectError(res, status, code, mentions);
  });

  it('too many records (above the per-request maximum)', async () => {
    const body = records(...Array.from({ length: MAX_RECORDS_PER_REQUEST + 1 }, (_, i) => ({ value: String(i) })));
    const res = await rejectedWithoutTrace(() => api.produceRaw(TOPIC, body));
    expectError(res, 400, 'INVALID_REQUEST', ['records', String(MAX_RECORDS_PER_REQUEST)]);
  });

  it('a body above the Lambda payload limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const body = JSON.stringify(records({ value: 'x'.repeat(MAX_BODY_BYTES) }));
    const res = await rejectedWithoutTrace(() => api.produceRaw(TOPIC, body));
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', [String(MAX_BODY_BYTES)]);
  });

  it('a body above the limit that declares its Content-Length is 413 too', async () => {
    const body = JSON.stringify(records({ value: 'x'.repeat(MAX_BODY_BYTES) }));
    const res = await rejectedWithoutTrace(async () => {
      const r = await api.app.request(`/v1/topics/${TOPIC}/records`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } });
      return { status: r.status, body: await r.json() };
    });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', [String(MAX_BODY_BYTES)]);
  });

  it('many records whose values are valid until the last is rejected as a whole', async () => {
    const body = { encoding: 'base64', records: [...Array.from({ length: 500 }, (_, i) => ({ key: b64(`k${i}`), value: b64(`v${i}`) })), { value: 'Zm9v=' }] };
    const res = await rejectedWithoutTrace(() => api.produceRaw(TOPIC, body));
    expectError(res, 400, 'INVALID_BASE64', ['records.500.value']);
  });

  it('an unknown topic is 404 UNKNOWN_TOPIC and writes nothing', async () => {
    const res = await rejectedWithoutTrace(() => api.produceRaw('no-such-topic', records(valid)));
    expectError(res, 404, 'UNKNOWN_TOPIC', ['no-such-topic']);
    const fireAndForget = await rejectedWithoutTrace(() => api.produceRaw('no-such-topic', { acks: '0', records: [valid] }));
    expectError(fireAndForget, 404, 'UNKNOWN_TOPIC', ['no-such-topic']);
  });

  it('the topic still accepts and serves valid records afterwards', async () => {
    const before = await api.highWatermarks(TOPIC);
    const [offset] = await api.produce(TOPIC, [{ value: 'after', partition: 0 }]);
    expect(offset).toMatchObject({ partition: 0, offset: before[0] });
    const page = await api.fetch(TOPIC, 0, { offset: 0 });
    expect(page.records.map((r) => r.value)).toEqual(['seed-0', 'after']);
  });
});

describe('produce: large base64 values', () => {
  /** A base64 value of `chars` characters (a multiple of 4) whose last quartet is `tail`. */
  const base64Of = (chars: number, tail: string) => 'AQEB'.repeat(chars / 4 - 1) + tail;
  const bodyWith = (value: string) => JSON.stringify({ encoding: 'base64', records: [{ value, partition: 2 }] });
  /** The longest base64 value (a multiple of 4) whose body still fits the body limit. */
  const LONGEST = Math.floor((MAX_BODY_BYTES - bodyWith('').length) / 4) * 4;

  it('a value of 4.5 M characters (3.4 MiB) is stored and reads back byte for byte', async () => {
    const value = base64Of(4_500_000, 'AQE=');
    const res = await api.produceRaw(TOPIC, bodyWith(value));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const page = await api.fetch(TOPIC, 2, { offset: res.body.offsets[0].offset, encoding: 'base64' });
    expect(page.records[0]!.value === value).toBe(true);
  });

  it('an invalid character at the end of the longest value the body limit admits is 400 INVALID_BASE64', async () => {
    const res = await rejectedWithoutTrace(() => api.produceRaw(TOPIC, bodyWith(base64Of(LONGEST, 'AQ*='))));
    expectError(res, 400, 'INVALID_BASE64', ['records.0.value']);
  });

  it('the longest valid value the body limit admits is 413 RECORD_TOO_LARGE: no response could return it', async () => {
    const res = await rejectedWithoutTrace(() => api.produceRaw(TOPIC, bodyWith(base64Of(LONGEST, 'AQEB'))));
    expectError(res, 413, 'RECORD_TOO_LARGE', ['records.0']);
  });
});

describe('fetch: bad parameters', () => {
  const fetchRows: Array<[description: string, partition: string, query: string, status: number, code: string, mentions: Array<string | RegExp>]> = [
    ['a missing offset', '0', '', 400, 'INVALID_REQUEST', ['offset']],
    ['an empty offset', '0', 'offset=', 400, 'INVALID_REQUEST', ['offset']],
    ['a negative offset', '0', 'offset=-1', 400, 'INVALID_REQUEST', ['offset']],
    ['a non-integer offset', '0', 'offset=abc', 400, 'INVALID_REQUEST', ['offset']],
    ['a fractional offset', '0', 'offset=1.5', 400, 'INVALID_REQUEST', ['offset']],
    ['an exponent offset', '0', 'offset=1e3', 400, 'INVALID_REQUEST', ['offset']],
    ['an offset with a sign', '0', 'offset=%2B1', 400, 'INVALID_REQUEST', ['offset']],
    ['an offset with spaces', '0', 'offset=%201', 400, 'INVALID_REQUEST', ['offset']],
    ['an offset beyond the safe integers', '0', 'offset=9999999999999999', 400, 'INVALID_REQUEST', ['offset']],
    ['an offset with too many digits', '0', 'offset=99999999999999999999', 400, 'INVALID_REQUEST', ['offset']],
    ['maxRecords of 0', '0', 'offset=0&maxRecords=0', 400, 'INVALID_REQUEST', ['maxRecords']],
    ['maxRecords above the maximum', '0', `offset=0&maxRecords=${MAX_FETCH_RECORDS + 1}`, 400, 'INVALID_REQUEST', ['maxRecords', String(MAX_FETCH_RECORDS)]],
    ['a non-integer maxRecords', '0', 'offset=0&maxRecords=ten', 400, 'INVALID_REQUEST', ['maxRecords']],
    ['maxBytes of 0', '0', 'offset=0&maxBytes=0', 400, 'INVALID_REQUEST', ['maxBytes']],
    ['maxBytes above the maximum', '0', `offset=0&maxBytes=${MAX_FETCH_BYTES + 1}`, 400, 'INVALID_REQUEST', ['maxBytes', String(MAX_FETCH_BYTES)]],
    ['a negative waitMs', '0', 'offset=0&waitMs=-1', 400, 'INVALID_REQUEST', ['waitMs']],
    ['waitMs above the maximum', '0', `offset=0&waitMs=${MAX_WAIT_MS + 1}`, 400, 'INVALID_REQUEST', ['waitMs', String(MAX_WAIT_MS)]],
    ['a non-integer waitMs', '0', 'offset=0&waitMs=soon', 400, 'INVALID_REQUEST', ['waitMs']],
    ['an unknown encoding', '0', 'offset=0&encoding=hex', 400, 'INVALID_REQUEST', ['encoding']],
    ['an unknown parameter', '0', 'offset=0&limit=5', 400, 'INVALID_REQUEST', ['query', 'limit']],
    ['a misspelled parameter', '0', 'ofset=0', 400, 'INVALID_REQUEST', ['ofset']],
    ['a repeated parameter', '0', 'offset=0&offset=2', 400, 'INVALID_REQUEST', ['offset', 'once']],
    ['a repeated optional parameter', '0', 'offset=0&maxRecords=1&maxRecords=1', 400, 'INVALID_REQUEST', ['maxRecords', 'once']],
    ['a non-integer partition', 'first', 'offset=0', 400, 'INVALID_REQUEST', ['path parameter partition']],
    ['a negative partition', '-1', 'offset=0', 400, 'INVALID_REQUEST', ['partition']],
    ['a partition above the maximum', '1000001', 'offset=0', 400, 'INVALID_REQUEST', ['partition']],
    ['a partition out of range', String(PARTITIONS), 'offset=0', 404, 'UNKNOWN_PARTITION', [`partition ${PARTITIONS}`, TOPIC]],
    ['an offset above the high watermark', '0', 'offset=1000', 416, 'OFFSET_OUT_OF_RANGE', ['1000', '(log start)', '(high watermark)']],
  ];

  it.each(fetchRows)('%s', async (_, partition, query, status, code, mentions) => {
    expectError(await api.fetchRaw(TOPIC, partition, query), status, code, mentions);
  });

  it('an unknown topic is 404 UNKNOWN_TOPIC, also when long-polling', async () => {
    expectError(await api.fetchRaw('no-such-topic', 0, 'offset=0'), 404, 'UNKNOWN_TOPIC', ['no-such-topic']);
    expectError(await api.fetchRaw('no-such-topic', 0, 'offset=0&waitMs=20000'), 404, 'UNKNOWN_TOPIC', ['no-such-topic']);
  });

  it('an offset above the high watermark is 416 at once, also when long-polling', async () => {
    expectError(await api.fetchRaw(TOPIC, 1, 'offset=3&waitMs=20000'), 416, 'OFFSET_OUT_OF_RANGE', ['offset 3', '0 (log start)', '2 (high watermark)']);
  });
});

describe('admin: bad input', () => {
  const adminRows: Array<[description: string, method: string, path: string, body: unknown, status: number, code: string, mentions: Array<string | RegExp>]> = [
    ['create: malformed JSON', 'POST', '/v1/topics', '{"name":', 400, 'MALFORMED_JSON', ['JSON']],
    ['create: empty body', 'POST', '/v1/topics', '', 400, 'MALFORMED_JSON', ['JSON']],
    ['create: missing name', 'POST', '/v1/topics', { partitions: 1 }, 400, 'INVALID_REQUEST', ['name']],
    ['create: numeric name', 'POST', '/v1/topics', { name: 5, partitions: 1 }, 400, 'INVALID_REQUEST', ['name']],
    ['create: unknown field', 'POST', '/v1/topics', { name: 'x', partitions: 1, replicationFactor: 3 }, 400, 'INVALID_REQUEST', ['replicationFactor']],
    ['create: a "__proto__" config key', 'POST', '/v1/topics', '{"name":"x","partitions":1,"config":{"__proto__":{"compression.type":"gzip"}}}', 400, 'INVALID_REQUEST', ['config.__proto__']],
    ['create: invalid UTF-8 in the name', 'POST', '/v1/topics', withInvalidUtf8('{"name":"t@@","partitions":1}'), 400, 'INVALID_UTF8', ['name']],
    ['create: existing topic', 'POST', '/v1/topics', { name: TOPIC, partitions: 1 }, 409, 'TOPIC_EXISTS', [TOPIC]],
    ['add partitions: malformed JSON', 'POST', `/v1/topics/${TOPIC}/partitions`, '{count:4}', 400, 'MALFORMED_JSON', ['JSON']],
    ['add partitions: count as a string', 'POST', `/v1/topics/${TOPIC}/partitions`, { count: '4' }, 400, 'INVALID_REQUEST', ['count']],
    ['add partitions: decrease', 'POST', `/v1/topics/${TOPIC}/partitions`, { count: 1 }, 400, 'INVALID_PARTITIONS', ['count']],
    ['describe: unknown topic', 'GET', '/v1/topics/no-such-topic', undefined, 404, 'UNKNOWN_TOPIC', ['no-such-topic']],
    ['delete: unknown topic', 'DELETE', '/v1/topics/no-such-topic', undefined, 404, 'UNKNOWN_TOPIC', ['no-such-topic']],
    ['unknown route', 'GET', '/v1/nothing-here', undefined, 404, 'NOT_FOUND', ['/v1/nothing-here']],
    ['unsupported method', 'PUT', `/v1/topics/${TOPIC}`, { partitions: 5 }, 405, 'METHOD_NOT_ALLOWED', ['PUT', 'GET, DELETE, HEAD']],
  ];

  it.each(adminRows)('%s', async (_, method, path, body, status, code, mentions) => {
    expectError(await api.call(method, path, body), status, code, mentions);
    const described = await api.describe(TOPIC);
    expect(described.partitions).toHaveLength(PARTITIONS);
    expect(described.config).toEqual(DEFAULT_TOPIC_CONFIG);
  });

  it('rejected creates create nothing', async () => {
    const list = await api.call('GET', '/v1/topics');
    expect(list.body).toEqual({ topics: [{ name: TOPIC, partitions: PARTITIONS }] });
  });
});

describe('topic names in the path', () => {
  const impossible = ['x'.repeat(3000), 'a%23b', 'a%3Ab'];
  it.each(impossible)('%s is a 400 on every topic route, before any storage call', async (name) => {
    const cases: Array<[string, string, unknown?]> = [
      ['GET', `/v1/topics/${name}`],
      ['DELETE', `/v1/topics/${name}`],
      ['POST', `/v1/topics/${name}/partitions`, { count: 5 }],
      ['POST', `/v1/topics/${name}/records`, records(valid)],
      ['GET', `/v1/topics/${name}/partitions/0/records?offset=0`],
    ];
    for (const [method, path, body] of cases) expectError(await api.call(method, path, body), 400, 'INVALID_TOPIC_NAME', ['topic name']);
  });
});
