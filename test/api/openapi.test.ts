// docs/openapi.json documents exactly the routes the app serves, with the bounds of the request
// schemas, and real responses conform to the documented response schemas.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../../lambdas/http/app.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { deleteRecordsBody, fetchQuery, MAX_BODY_BYTES, MAX_FETCH_BYTES, MAX_FETCH_RECORDS, MAX_RECORDS_PER_REQUEST, MAX_RESPONSE_BYTES, MAX_WAIT_MS, offsetsQuery, RESPONSE_ENVELOPE_BYTES } from '../../lambdas/http/schemas.ts';
import { commitBody, groupParam, heartbeatBody, joinBody, leaveQuery, MAX_METADATA_CHARS, MAX_SUBSCRIBED_TOPICS, memberIdParam, pollBody, resetBody } from '../../lambdas/routes/groups.ts';
import { MAX_OFFSETS_PER_COMMIT } from '../../lib/groups/group-store.ts';
import { REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS } from '../../lib/groups/model.ts';
import { createStorage } from '../../lib/storage.ts';
import { DEFAULT_TOPIC_CONFIG, MAX_PARTITIONS, parseTopicConfig } from '../../lib/topics/topic-config.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { Member, startGroupApi, type Assignment, type GroupApi } from '../groups/group-client.ts';
import { testConfig } from '../support/stack.ts';
import { Api, eventually, startApi, type Reply } from './client.ts';

type Json = any;
const doc: Json = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function resolve(node: Json): Json {
  let current = node;
  for (let depth = 0; current && typeof current.$ref === 'string'; depth++) {
    if (depth > 20) throw new Error(`$ref cycle at ${node.$ref}`);
    const ref: string = current.$ref;
    if (!ref.startsWith('#/')) throw new Error(`external $ref ${ref}`);
    current = ref.slice(2).split('/').reduce((n: Json, part) => n?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    if (current === undefined) throw new Error(`unresolved $ref ${ref}`);
  }
  return current;
}

function documentedOperations(): string[] {
  return Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
}

function operation(method: string, path: string): Json {
  const op = doc.paths[path]?.[method];
  if (!op) throw new Error(`${method} ${path} is not documented`);
  return op;
}

function parametersOf(method: string, path: string): Json[] {
  return [...(doc.paths[path].parameters ?? []), ...(operation(method, path).parameters ?? [])].map(resolve);
}

/** A validator for the subset of JSON Schema the document uses. Returns the problems found. */
function validate(schemaNode: Json, value: unknown, at = '$'): string[] {
  const schema = resolve(schemaNode);
  const problems: string[] = [];
  if ('const' in schema && value !== schema.const) problems.push(`${at}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  if (schema.type) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
    const ok = types.includes(actual) || (actual === 'integer' && types.includes('number'));
    if (!ok) return [...problems, `${at}: expected ${types.join('|')}, got ${actual}`];
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${at}: ${value} < ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${at}: ${value} > ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) problems.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) problems.push(`${at}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) problems.push(`${at}: longer than ${schema.maxLength}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) problems.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) problems.push(`${at}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, i) => problems.push(...validate(schema.items, v, `${at}[${i}]`)));
  } else if (value !== null && typeof value === 'object') {
    const props: Record<string, Json> = schema.properties ?? {};
    for (const key of schema.required ?? []) if (!(key in value)) problems.push(`${at}: missing ${key}`);
    for (const [key, v] of Object.entries(value)) {
      if (key in props) problems.push(...validate(props[key], v, `${at}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: unexpected property ${key}`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') problems.push(...validate(schema.additionalProperties, v, `${at}.${key}`));
    }
  }
  if (schema.not && validate(schema.not, value, at).length === 0) problems.push(`${at}: matches a forbidden schema`);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && schema.dependentRequired) {
    for (const [key, needed] of Object.entries(schema.dependentRequired as Record<string, string[]>)) {
      if (key in value) for (const other of needed) if (!(other in value)) problems.push(`${at}: ${key} requires ${other}`);
    }
  }
  for (const keyword of ['anyOf', 'oneOf'] as const) {
    if (!schema[keyword]) continue;
    const matching = (schema[keyword] as Json[]).filter((branch) => validate(branch, value, at).length === 0).length;
    if (matching === 0) problems.push(`${at}: matches none of ${keyword}`);
    else if (keyword === 'oneOf' && matching > 1) problems.push(`${at}: matches ${matching} branches of oneOf`);
  }
  return problems;
}

/** A schema with every $ref inlined and annotations dropped: what constrains values, to compare with zod's JSON Schema. */
const ANNOTATIONS = new Set(['description', 'default', 'example', 'examples', 'title', '$schema', 'dependentRequired']);
function constraints(node: Json): Json {
  if (Array.isArray(node)) return node.map(constraints);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(resolve(node) as Json)) {
    if (ANNOTATIONS.has(key)) continue;
    if (key === 'properties') out[key] = Object.fromEntries(Object.entries(value as Json).map(([name, v]) => [name, constraints(v)]));
    else if (key === 'required') out[key] = [...(value as string[])].sort();
    // zod writes its unions as anyOf; the document says oneOf where the branches are disjoint.
    else out[key === 'oneOf' ? 'anyOf' : key] = constraints(value);
  }
  return out;
}

/** Asserts the response is documented for its status and conforms to the documented schema. */
function expectConforms(method: string, path: string, res: Reply): void {
  const response = resolve(operation(method, path).responses[String(res.status)] ?? operation(method, path).responses[`${String(res.status)[0]}XX`]);
  expect(response, `${method} ${path} ${res.status} is not documented`).toBeDefined();
  const schema = response.content?.['application/json']?.schema;
  if (!schema) {
    expect(res.body).toBeUndefined();
    return;
  }
  expect(validate(schema, res.body), `${method} ${path} ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`).toEqual([]);
}

describe('openapi document', () => {
  it('is OpenAPI 3.1 and every $ref resolves', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.version).toBeTruthy();
    const refs: string[] = [];
    const walk = (node: Json) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        if (typeof node.$ref === 'string') refs.push(node.$ref);
        Object.values(node).forEach(walk);
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of refs) expect(() => resolve({ $ref: ref }), ref).not.toThrow();
  });

  it('documents every route the admin, produce, fetch and groups route groups serve, and nothing else', () => {
    const app = createApp(createServices(createStorage(testConfig())), ['admin', 'produce', 'fetch', 'groups']);
    const served = [...new Set(app.routes
      .filter((r) => r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`))].sort();
    expect(served.length).toBeGreaterThanOrEqual(17);
    expect(served.filter((route) => route.includes('/v1/groups'))).toHaveLength(9);
    expect(documentedOperations().sort()).toEqual(served);
  });

  it('declares every path template parameter, and operation ids are unique', () => {
    const ids = new Set<string>();
    for (const op of documentedOperations()) {
      const [method, path] = op.split(' ') as [string, string];
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      const declared = parametersOf(method.toLowerCase(), path).filter((p) => p.in === 'path');
      expect(declared.map((p) => p.name).sort(), op).toEqual(templated);
      for (const p of declared) expect(p.required, `${op} ${p.name}`).toBe(true);
      const id = operation(method.toLowerCase(), path).operationId;
      expect(id, op).toBeTruthy();
      expect(ids.has(id), id).toBe(false);
      ids.add(id);
    }
  });

  it('documents the error object for every 4xx/5xx response, and 400/413 wherever a body is taken', () => {
    const errorSchema = resolve(doc.components.schemas.Error);
    expect(errorSchema.required).toEqual(['error']);
    expect(resolve(errorSchema.properties.error).required).toEqual(['code', 'message']);
    for (const op of documentedOperations()) {
      const [method, path] = op.split(' ') as [string, string];
      const operationDoc = operation(method.toLowerCase(), path);
      for (const [status, responseRef] of Object.entries(operationDoc.responses as Record<string, Json>)) {
        if (!/^[45]/.test(status)) continue;
        expect(resolve(responseRef).content['application/json'].schema.$ref, `${op} ${status}`).toBe('#/components/schemas/Error');
      }
      if (operationDoc.requestBody) {
        expect(Object.keys(operationDoc.responses), op).toEqual(expect.arrayContaining(['400', '413']));
        expect(String(resolve(doc.components.responses.PayloadTooLarge).description)).toContain(String(MAX_BODY_BYTES));
      }
    }
    for (const op of ['get /v1/topics/{topic}/partitions/{partition}/records', 'post /v1/groups/{group}/members/{memberId}/poll']) {
      const [method, path] = op.split(' ') as [string, string];
      expect(String(resolve(operation(method, path).responses['413']).description), op).toContain('RECORD_TOO_LARGE_FOR_RESPONSE');
    }
    expect(String(resolve(doc.components.responses.RecordTooLargeForResponse).description)).toContain(String(MAX_RESPONSE_BYTES - RESPONSE_ENVELOPE_BYTES));
  });

  it('documents the fetch query parameters exactly as the server accepts them, with the same bounds', () => {
    const params = parametersOf('get', '/v1/topics/{topic}/partitions/{partition}/records');
    const query = params.filter((p) => p.in === 'query');
    expect(query.map((p) => p.name).sort()).toEqual(Object.keys(fetchQuery.shape).sort());
    const byName = Object.fromEntries(query.map((p) => [p.name, resolve(p.schema)]));
    expect(query.find((p) => p.name === 'offset')!.required).toBe(true);
    expect([byName.offset.minimum, byName.offset.maximum]).toEqual([0, Number.MAX_SAFE_INTEGER]);
    expect([byName.maxRecords.minimum, byName.maxRecords.maximum]).toEqual([1, MAX_FETCH_RECORDS]);
    expect([byName.maxBytes.minimum, byName.maxBytes.maximum]).toEqual([1, MAX_FETCH_BYTES]);
    expect([byName.waitMs.minimum, byName.waitMs.maximum]).toEqual([0, MAX_WAIT_MS]);
    expect(byName.encoding.enum).toEqual(['utf8', 'base64']);
    const partition = resolve(params.find((p) => p.name === 'partition')!.schema);
    expect([partition.minimum, partition.maximum]).toEqual([0, 1_000_000]);
  });

  it('documents the offsets query parameter exactly as the server accepts it', () => {
    const query = parametersOf('get', '/v1/topics/{topic}/partitions/{partition}/offsets').filter((p) => p.in === 'query');
    expect(query.map((p) => p.name)).toEqual(Object.keys(offsetsQuery.shape));
    expect(query[0]!.required).toBe(true);
    const [named, millis] = resolve(query[0]!.schema).oneOf.map(resolve);
    expect(named.enum).toEqual(['earliest', 'latest']);
    expect([millis.type, millis.minimum, millis.maximum]).toEqual(['integer', 0, Number.MAX_SAFE_INTEGER]);
  });

  it('documents every topic config key with the default of the code, and accepts and refuses the values the code does', () => {
    const effective = resolve(doc.components.schemas.TopicConfig);
    expect(Object.keys(effective.properties)).toEqual(Object.keys(DEFAULT_TOPIC_CONFIG));
    expect([...effective.required].sort()).toEqual(Object.keys(DEFAULT_TOPIC_CONFIG).sort());
    expect(Object.fromEntries(Object.entries(effective.properties as Record<string, Json>).map(([key, p]) => [key, p.default]))).toEqual(DEFAULT_TOPIC_CONFIG);
    expect(validate(effective, DEFAULT_TOPIC_CONFIG)).toEqual([]);
    const changes = doc.components.schemas.TopicConfigChanges;
    expect(Object.keys(resolve(changes).properties)).toEqual(Object.keys(DEFAULT_TOPIC_CONFIG));
    const samples: Array<Record<string, unknown>> = [
      {}, { 'compression.type': 'gzip', 'cleanup.policy': 'delete', 'retention.ms': -1, 'retention.bytes': 0, 'segment.bytes': 1024, 'segment.ms': 1 },
      { 'retention.ms': '3600000', 'segment.bytes': '1073741824' }, { 'retention.ms': null, 'compression.type': null, 'cleanup.policy': null },
      { 'segment.bytes': 1023 }, { 'segment.bytes': 2 ** 30 + 1 }, { 'segment.ms': 0 }, { 'retention.ms': -2 }, { 'retention.bytes': 1.5 },
      { 'retention.ms': Number.MAX_SAFE_INTEGER + 1 }, { 'retention.ms': '1h' }, { 'retention.ms': '1.5' }, { 'retention.ms': true },
      { 'cleanup.policy': 'compact' }, { 'compression.type': 'zstd' }, { 'min.insync.replicas': 2 },
    ];
    for (const sample of samples) {
      const accepted = (() => {
        try {
          parseTopicConfig(sample);
          return true;
        } catch {
          return false;
        }
      })();
      expect(validate(changes, sample).length === 0, JSON.stringify(sample)).toBe(accepted);
    }
  });

  it('documents the request body bounds of the schemas', () => {
    const schemas = doc.components.schemas;
    const produce = resolve(schemas.ProduceRequest);
    expect([produce.properties.records.minItems, produce.properties.records.maxItems]).toEqual([1, MAX_RECORDS_PER_REQUEST]);
    expect(resolve(produce.properties.acks).enum).toEqual(['all', '1', '0']);
    expect(resolve(produce.properties.encoding).enum).toEqual(['utf8', 'base64']);
    expect(resolve(schemas.CreateTopicRequest).properties.partitions.maximum).toBe(MAX_PARTITIONS);
    expect(resolve(schemas.AddPartitionsRequest).properties.count.maximum).toBe(MAX_PARTITIONS);
    expect(resolve(schemas.TopicName).maxLength).toBe(249);
    expect(constraints(schemas.DeleteRecordsRequest)).toEqual(constraints(z.toJSONSchema(deleteRecordsBody, { io: 'input' })));
  });

  it('the documented request schemas accept valid requests and refuse what the server refuses', () => {
    const produce = doc.components.schemas.ProduceRequest;
    expect(validate(produce, { records: [{ key: 'k', value: 'v', headers: { h: 'x' }, partition: 0, timestamp: 1 }, { value: null }], acks: '0', encoding: 'base64' })).toEqual([]);
    expect(validate(produce, { records: [] })).not.toEqual([]);
    expect(validate(produce, { records: [{ value: 1 }] })).not.toEqual([]);
    expect(validate(produce, { records: [{ value: 'v', extra: 1 }] })).not.toEqual([]);
    expect(validate(produce, { records: [{ value: 'v', partition: -1 }] })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: '..', partitions: 1 })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'a'.repeat(250), partitions: 1 })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'ok', partitions: 1, config: { 'min.insync.replicas': 1 } })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'ok', partitions: 1, config: { 'cleanup.policy': 'compact' } })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'ok', partitions: 1, config: { 'retention.ms': '3600000', 'segment.bytes': 1024 } })).toEqual([]);
    expect(validate(doc.components.schemas.DeleteRecordsRequest, { partitions: [{ partition: 0, offset: -1 }, { partition: 1, offset: 5 }] })).toEqual([]);
    expect(validate(doc.components.schemas.DeleteRecordsRequest, { partitions: [{ partition: 0, offset: -2 }] })).not.toEqual([]);
    expect(validate(doc.components.schemas.DeleteRecordsRequest, { partitions: [] })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'ok.name_-1', partitions: 1024, config: { 'compression.type': 'gzip' } })).toEqual([]);
  });

  /** Each group route taking a body: the documented request schema and the zod schema the route parses it with. */
  const GROUP_BODIES: Array<[method: string, path: string, schemaName: string, schema: z.ZodType]> = [
    ['post', '/v1/groups/{group}/members', 'JoinGroupRequest', joinBody],
    ['post', '/v1/groups/{group}/members/{memberId}/heartbeat', 'HeartbeatRequest', heartbeatBody],
    ['post', '/v1/groups/{group}/members/{memberId}/poll', 'PollRequest', pollBody],
    ['post', '/v1/groups/{group}/offsets', 'CommitOffsetsRequest', commitBody],
    ['post', '/v1/groups/{group}/offsets/reset', 'ResetOffsetsRequest', resetBody],
  ];

  it('documents the group request bodies with exactly the constraints of the zod schemas the routes parse them with', () => {
    const withBody = documentedOperations().filter((op) => {
      const [method, path] = op.split(' ') as [string, string];
      return path.startsWith('/v1/groups') && operation(method.toLowerCase(), path).requestBody;
    });
    expect(withBody.sort()).toEqual(GROUP_BODIES.map(([method, path]) => `${method.toUpperCase()} ${path}`).sort());
    for (const [method, path, name, schema] of GROUP_BODIES) {
      const body = operation(method, path).requestBody;
      expect(body.content['application/json'].schema.$ref, path).toBe(`#/components/schemas/${name}`);
      // Only poll takes an empty body (as {}).
      expect(body.required, path).toBe(!path.endsWith('/poll'));
      expect(constraints(doc.components.schemas[name]), name).toEqual(constraints(z.toJSONSchema(schema, { io: 'input' })));
    }
  });

  it('documents the group bounds, defaults and path parameters of the code', () => {
    const schemas = doc.components.schemas;
    const join = resolve(schemas.JoinGroupRequest).properties;
    expect([join.topics.minItems, join.topics.maxItems]).toEqual([1, MAX_SUBSCRIBED_TOPICS]);
    expect([join.sessionTimeoutMs.minimum, join.sessionTimeoutMs.maximum, join.sessionTimeoutMs.default]).toEqual([SESSION_TIMEOUT_MS.min, SESSION_TIMEOUT_MS.max, SESSION_TIMEOUT_MS.default]);
    expect([join.rebalanceTimeoutMs.minimum, join.rebalanceTimeoutMs.maximum, join.rebalanceTimeoutMs.default]).toEqual([REBALANCE_TIMEOUT_MS.min, REBALANCE_TIMEOUT_MS.max, REBALANCE_TIMEOUT_MS.default]);
    expect(resolve(join.assignor).enum).toEqual(['uniform', 'range']);
    expect(resolve(join.autoOffsetReset).enum).toEqual(['earliest', 'latest']);
    const commit = resolve(schemas.CommitOffsetsRequest);
    expect([commit.properties.offsets.minItems, commit.properties.offsets.maxItems]).toEqual([1, MAX_OFFSETS_PER_COMMIT]);
    expect(commit.dependentRequired).toEqual({ memberId: ['memberEpoch'], memberEpoch: ['memberId'] });
    expect(resolve(commit.properties.offsets.items).properties.metadata.maxLength).toBe(MAX_METADATA_CHARS);
    expect(resolve(schemas.GroupPartitionOffset).properties.metadata.maxLength).toBe(MAX_METADATA_CHARS);
    const poll = resolve(schemas.PollRequest).properties;
    expect([poll.maxRecords.minimum, poll.maxRecords.maximum]).toEqual([1, MAX_FETCH_RECORDS]);
    expect([poll.maxBytes.minimum, poll.maxBytes.maximum]).toEqual([1, MAX_FETCH_BYTES]);
    expect([poll.waitMs.minimum, poll.waitMs.maximum]).toEqual([0, MAX_WAIT_MS]);
    expect(resolve(poll.encoding).enum).toEqual(['utf8', 'base64']);
    // The heartbeat interval is a third of the session timeout.
    for (const name of ['MemberAssignment', 'PollResponse']) {
      const interval = resolve(schemas[name]).properties.heartbeatIntervalMs;
      expect([interval.minimum, interval.maximum], name).toEqual([Math.floor(SESSION_TIMEOUT_MS.min / 3), Math.floor(SESSION_TIMEOUT_MS.max / 3)]);
    }
    const session = resolve(schemas.GroupMember).properties.sessionTimeoutMs;
    expect([session.minimum, session.maximum]).toEqual([SESSION_TIMEOUT_MS.min, SESSION_TIMEOUT_MS.max]);
    // Path parameters: the patterns the routes check.
    expect(resolve(schemas.GroupId).pattern).toBe((z.toJSONSchema(groupParam) as Json).pattern);
    expect(resolve(schemas.MemberId).pattern).toBe((z.toJSONSchema(memberIdParam) as Json).pattern);
    // The leave's query parameter, as the route parses it.
    const leaveParams = parametersOf('delete', '/v1/groups/{group}/members/{memberId}').filter((p) => p.in === 'query');
    expect(leaveParams.map((p) => p.name)).toEqual(Object.keys(leaveQuery.shape));
    expect(resolve(leaveParams[0]!.schema).pattern).toBe((z.toJSONSchema(leaveQuery) as Json).properties.ack.pattern);
    expect(resolve(schemas.PollId).pattern).toBe((z.toJSONSchema(pollBody) as Json).properties.ack.pattern);
    for (const op of documentedOperations().filter((o) => o.includes('{group}'))) {
      const [method, path] = op.split(' ') as [string, string];
      const params = parametersOf(method.toLowerCase(), path);
      expect(params.find((p) => p.name === 'group')?.schema.$ref, op).toBe('#/components/schemas/GroupId');
      if (path.includes('{memberId}')) expect(params.find((p) => p.name === 'memberId')?.schema.$ref, op).toBe('#/components/schemas/MemberId');
    }
  });

  it('the documented group request schemas accept and refuse what the zod schemas do', () => {
    const uuid = '6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11';
    const offset = { topic: 't', partition: 0, offset: 1 };
    const samples: Record<string, unknown[]> = {
      JoinGroupRequest: [
        { topics: ['t'] },
        { topics: ['t', 'u'], sessionTimeoutMs: SESSION_TIMEOUT_MS.min, rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS.max, assignor: 'range', autoOffsetReset: 'earliest' },
        {}, { topics: [] }, { topics: Array(MAX_SUBSCRIBED_TOPICS + 1).fill('t') }, { topics: [''] }, { topics: ['a'.repeat(250)] },
        { topics: ['t'], sessionTimeoutMs: SESSION_TIMEOUT_MS.min - 1 }, { topics: ['t'], sessionTimeoutMs: 6000.5 }, { topics: ['t'], rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS.max + 1 },
        { topics: ['t'], assignor: 'roundrobin' }, { topics: ['t'], autoOffsetReset: 'none' }, { topics: ['t'], extra: 1 },
        { topics: ['a.b_c-1', '...'] }, { topics: ['a#b'] }, { topics: ['a:b'] }, { topics: ['.'] }, { topics: ['..'] }, { topics: ['a b'] },
      ],
      HeartbeatRequest: [
        { memberEpoch: 0 }, { memberEpoch: 3, owned: [{ topic: 't', partitions: [0, 1] }, { topic: 'u', partitions: [] }] },
        {}, { memberEpoch: -1 }, { memberEpoch: 1.5 }, { memberEpoch: 1, owned: [{ topic: 't' }] }, { memberEpoch: 1, owned: [{ topic: 't', partitions: [1_000_001] }] },
        { memberEpoch: 1, owned: [{ topic: 't', partitions: [0], extra: 1 }] },
      ],
      PollRequest: [
        {}, { maxRecords: 1, maxBytes: MAX_FETCH_BYTES, waitMs: MAX_WAIT_MS, autoCommit: false, encoding: 'base64' },
        { ack: uuid }, { ack: 'not-a-uuid' }, { ack: null },
        { maxRecords: 0 }, { maxRecords: MAX_FETCH_RECORDS + 1 }, { maxBytes: 0 }, { waitMs: MAX_WAIT_MS + 1 }, { waitMs: -1 }, { autoCommit: 'yes' }, { encoding: 'hex' }, { max: 1 },
      ],
      CommitOffsetsRequest: [
        { offsets: [offset] }, { memberId: uuid, memberEpoch: 0, offsets: [{ ...offset, metadata: 'm'.repeat(MAX_METADATA_CHARS) }] },
        { offsets: Array.from({ length: MAX_OFFSETS_PER_COMMIT }, (_, partition) => ({ ...offset, partition })) },
        { memberId: uuid, offsets: [offset] }, { memberEpoch: 1, offsets: [offset] }, { memberId: 'not-a-uuid', memberEpoch: 1, offsets: [offset] },
        { offsets: [] }, { offsets: Array.from({ length: MAX_OFFSETS_PER_COMMIT + 1 }, (_, partition) => ({ ...offset, partition })) },
        { offsets: [{ ...offset, metadata: 'm'.repeat(MAX_METADATA_CHARS + 1) }] }, { offsets: [{ ...offset, offset: -1 }] }, { offsets: [{ ...offset, offset: 1.5 }] },
        { offsets: [{ topic: 't', partition: 0 }] }, { offsets: [offset], extra: 1 }, { offsets: [{ ...offset, topic: 't#0' }] },
      ],
      ResetOffsetsRequest: [
        { topic: 't', to: 'earliest' }, { topic: 't', to: 'latest' }, { topic: 't', partitions: [0, 2], to: { timestamp: 5 } }, { topic: 't', to: { offset: 0 } },
        { topic: 't', to: 'middle' }, { topic: 't', to: { offset: 1, timestamp: 2 } }, { topic: 't', to: {} }, { topic: 't', to: { offset: -1 } },
        { topic: 't', partitions: [], to: 'latest' }, { to: 'latest' }, { topic: 't' }, { topic: 't', to: 'latest', extra: 1 }, { topic: 't:0', to: 'latest' },
      ],
    };
    const zodSchemas = Object.fromEntries(GROUP_BODIES.map(([, , name, schema]) => [name, schema]));
    expect(Object.keys(samples).sort()).toEqual(Object.keys(zodSchemas).sort());
    for (const [name, values] of Object.entries(samples)) {
      const verdicts = values.map((value) => zodSchemas[name]!.safeParse(value).success);
      expect(verdicts, name).toContain(true);
      expect(verdicts, name).toContain(false);
      values.forEach((value, i) => {
        expect(validate(doc.components.schemas[name], value).length === 0, `${name} ${JSON.stringify(value).slice(0, 200)}`).toBe(verdicts[i]);
      });
    }
  });

  it('every documented response example conforms to its schema', () => {
    let checked = 0;
    for (const op of documentedOperations()) {
      const [method, path] = op.split(' ') as [string, string];
      for (const [status, response] of Object.entries(operation(method.toLowerCase(), path).responses as Record<string, Json>)) {
        const media = resolve(response).content?.['application/json'];
        if (media?.example === undefined) continue;
        expect(validate(media.schema, media.example), `${op} ${status}`).toEqual([]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });
});

describe('real responses conform to the document', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi();
  });

  it('for every route, success and error', async () => {
    expectConforms('get', '/v1/health', await api.call('GET', '/v1/health'));
    expectConforms('post', '/v1/topics', await api.call('POST', '/v1/topics', { name: 'doc', partitions: 2, config: { 'compression.type': 'gzip' } }));
    expectConforms('post', '/v1/topics', await api.call('POST', '/v1/topics', { name: 'doc', partitions: 2 }));
    expectConforms('post', '/v1/topics', await api.call('POST', '/v1/topics', '{'));
    expectConforms('get', '/v1/topics', await api.call('GET', '/v1/topics'));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { records: [{ key: 'a', value: 'b', headers: { h: 'v' } }, { value: null, partition: 1, timestamp: 5 }] }));
    const [before] = await api.highWatermarks('doc');
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { acks: '0', records: [{ value: 'x', partition: 0 }] }));
    await eventually(async () => ((await api.highWatermarks('doc'))[0] === before! + 1 ? true : undefined));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { records: [{ value: 'x', partition: 9 }] }));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { records: [{ value: 'x'.repeat(MAX_BODY_BYTES) }] }));
    expectConforms('get', '/v1/topics/{topic}', await api.call('GET', '/v1/topics/doc'));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=0&encoding=base64'));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=7'));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=0&bogus=1'));

    // Config, DeleteRecords, ListOffsets, and describe after maintenance rolled a segment.
    const CONFIG = '/v1/topics/{topic}/config';
    const DELETE_RECORDS = '/v1/topics/{topic}/delete-records';
    const OFFSETS = '/v1/topics/{topic}/partitions/{partition}/offsets';
    expectConforms('patch', CONFIG, await api.call('PATCH', '/v1/topics/doc/config', { config: { 'retention.ms': '3600000', 'segment.ms': 1, 'compression.type': null } }));
    expectConforms('patch', CONFIG, await api.call('PATCH', '/v1/topics/doc/config', { config: { 'cleanup.policy': 'compact' } }));
    expectConforms('patch', CONFIG, await api.call('PATCH', '/v1/topics/nope/config', { config: {} }));
    await api.services.maintenance.maintainPartition(await getTopic(api.storage, 'doc'), 1);
    const described = await api.call('GET', '/v1/topics/doc');
    expectConforms('get', '/v1/topics/{topic}', described);
    expect(described.body.partitions[1].segments).toBeGreaterThan(0);
    expectConforms('get', OFFSETS, await api.call('GET', '/v1/topics/doc/partitions/1/offsets?timestamp=0'));
    expectConforms('get', OFFSETS, await api.call('GET', '/v1/topics/doc/partitions/1/offsets?timestamp=latest'));
    expectConforms('get', OFFSETS, await api.call('GET', '/v1/topics/doc/partitions/1/offsets?timestamp=yesterday'));
    expectConforms('get', OFFSETS, await api.call('GET', '/v1/topics/doc/partitions/9/offsets?timestamp=earliest'));
    expectConforms('post', DELETE_RECORDS, await api.call('POST', '/v1/topics/doc/delete-records', { partitions: [{ partition: 1, offset: -1 }] }));
    expectConforms('post', DELETE_RECORDS, await api.call('POST', '/v1/topics/doc/delete-records', { partitions: [{ partition: 0, offset: 99 }] }));
    expectConforms('post', DELETE_RECORDS, await api.call('POST', '/v1/topics/doc/delete-records', { partitions: [{ partition: 9, offset: 0 }] }));
    expectConforms('post', DELETE_RECORDS, await api.call('POST', '/v1/topics/doc/delete-records', { partitions: [{ partition: 0, offset: 0 }, { partition: 0, offset: 0 }] }));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=0'));
    expectConforms('post', '/v1/topics/{topic}/partitions', await api.call('POST', '/v1/topics/doc/partitions', { count: 3 }));
    expectConforms('post', '/v1/topics/{topic}/partitions', await api.call('POST', '/v1/topics/doc/partitions', { count: 3 }));
    expectConforms('delete', '/v1/topics/{topic}', await api.call('DELETE', '/v1/topics/doc'));
    expectConforms('delete', '/v1/topics/{topic}', await api.call('DELETE', '/v1/topics/doc'));
    expectConforms('get', '/v1/topics/{topic}', await api.call('GET', '/v1/topics/doc'));
  });
});

describe('real consumer-group responses conform to the document', () => {
  const LIST = '/v1/groups';
  const GROUP = '/v1/groups/{group}';
  const JOIN = '/v1/groups/{group}/members';
  const MEMBER = '/v1/groups/{group}/members/{memberId}';
  const HEARTBEAT = '/v1/groups/{group}/members/{memberId}/heartbeat';
  const POLL = '/v1/groups/{group}/members/{memberId}/poll';
  const COMMIT = '/v1/groups/{group}/offsets';
  const RESET = '/v1/groups/{group}/offsets/reset';
  const nobody = '6f1c1c8e-8f43-4f43-9d55-0a3b0c1f3a11';
  let api: GroupApi;

  beforeAll(async () => {
    api = await startGroupApi();
    await api.createTopic('jobs', 2);
    await api.produce('jobs', [{ key: 'a', value: 'one', headers: { h: 'v' }, partition: 0 }, { value: null, partition: 0 }, { key: 'b', value: 'two', partition: 1 }]);
  });

  /** Asserts the status (and error code), then that the reply conforms to the document. */
  function expectReply(method: string, path: string, res: Reply, status: number, code?: string): void {
    const detail = `${method.toUpperCase()} ${path}: ${JSON.stringify(res.body)?.slice(0, 300)}`;
    expect(res.status, detail).toBe(status);
    if (code) expect(res.body?.error?.code, detail).toBe(code);
    expectConforms(method, path, res);
  }

  const joinRaw = (group: string, body: unknown) => api.call('POST', `/v1/groups/${group}/members`, body);
  const memberPath = (m: Member | string, action = '') => `/v1/groups/doc/members/${typeof m === 'string' ? m : m.id}${action}`;

  it('for every group route, success and error', async () => {
    expectReply('get', LIST, await api.call('GET', '/v1/groups'), 200);

    // Join.
    const joined = await joinRaw('doc', { topics: ['jobs'], sessionTimeoutMs: 6000, rebalanceTimeoutMs: 1000, assignor: 'uniform', autoOffsetReset: 'earliest' });
    expectReply('post', JOIN, joined, 201);
    const a = new Member(api, 'doc', joined.body as Assignment);
    expect(a.owns).toEqual(['jobs:0', 'jobs:1']);
    expectReply('post', JOIN, await joinRaw('doc', { topics: ['nope'] }), 404, 'UNKNOWN_TOPIC');
    expectReply('post', JOIN, await joinRaw('doc', { topics: [] }), 400, 'INVALID_REQUEST');
    expectReply('post', JOIN, await joinRaw('doc', { topics: ['orders#0'] }), 400, 'INVALID_REQUEST');
    expectReply('post', JOIN, await joinRaw('doc', '{"topics":'), 400, 'MALFORMED_JSON');
    expectReply('post', JOIN, await joinRaw('bad%20id', { topics: ['jobs'] }), 400, 'INVALID_REQUEST');
    expectReply('post', JOIN, await joinRaw('doc', { topics: ['jobs'], assignor: 'range' }), 409, 'INCONSISTENT_ASSIGNOR');
    expectReply('post', JOIN, await joinRaw('doc', { topics: ['x'.repeat(MAX_BODY_BYTES)] }), 413, 'PAYLOAD_TOO_LARGE');

    // Heartbeat.
    expectReply('post', HEARTBEAT, await a.heartbeat(), 200);
    expectReply('post', HEARTBEAT, await api.call('POST', memberPath(a, '/heartbeat'), { memberEpoch: a.last.memberEpoch + 5 }), 409, 'FENCED_MEMBER_EPOCH');
    expectReply('post', HEARTBEAT, await api.call('POST', memberPath(nobody, '/heartbeat'), { memberEpoch: 1 }), 409, 'UNKNOWN_MEMBER_ID');
    expectReply('post', HEARTBEAT, await api.call('POST', memberPath('not-a-uuid', '/heartbeat'), { memberEpoch: 1 }), 400, 'INVALID_REQUEST');
    expectReply('post', HEARTBEAT, await api.call('POST', memberPath(a, '/heartbeat'), { memberEpoch: -1 }), 400, 'INVALID_REQUEST');

    // Poll: an empty body, a retry that did not acknowledge it (the batch again, base64), then acknowledged polls.
    const poll = async (body: unknown, records: number) => {
      const res = await api.call('POST', memberPath(a, '/poll'), body);
      expectReply('post', POLL, res, 200);
      expect(res.body.records, JSON.stringify(res.body)).toHaveLength(records);
      return res;
    };
    const first = await poll('', 3);
    const again = await poll({ maxRecords: 2, encoding: 'base64' }, 2);
    expect(again.body.records.map((r: { topic: string }) => r.topic)).toEqual(['jobs', 'jobs']);
    expect(again.body.pollId).not.toBe(first.body.pollId);
    const rest = await poll({ waitMs: 0, ack: again.body.pollId }, 1);
    expect(rest.body.records[0]).toMatchObject({ topic: 'jobs', headers: expect.any(Object) });
    const drained = await poll({ ack: rest.body.pollId }, 0);
    expectReply('post', POLL, await api.call('POST', memberPath(nobody, '/poll'), {}), 409, 'UNKNOWN_MEMBER_ID');
    expectReply('post', POLL, await api.call('POST', memberPath(a, '/poll'), { waitMs: MAX_WAIT_MS + 1 }), 400, 'INVALID_REQUEST');
    expectReply('post', POLL, await api.call('POST', memberPath(a, '/poll'), { ack: 'not-a-uuid' }), 400, 'INVALID_REQUEST');
    expectReply('post', POLL, await api.call('POST', memberPath(a, '/poll'), '{'), 400, 'MALFORMED_JSON');

    // Commit.
    expectReply('post', COMMIT, await a.commit([{ topic: 'jobs', partition: 0, offset: 2 }]), 204);
    expectReply('post', COMMIT, await api.call('POST', '/v1/groups/doc/offsets', { memberId: a.id, memberEpoch: a.last.memberEpoch, offsets: [{ topic: 'jobs', partition: 1, offset: 1, metadata: 'batch-1' }] }), 204);
    expectReply('post', COMMIT, await a.commit([{ topic: 'jobs', partition: 0, offset: 2 }], a.last.memberEpoch + 5), 409, 'FENCED_MEMBER_EPOCH');
    expectReply('post', COMMIT, await api.call('POST', '/v1/groups/doc/offsets', { memberId: nobody, memberEpoch: 1, offsets: [{ topic: 'jobs', partition: 0, offset: 1 }] }), 409, 'UNKNOWN_MEMBER_ID');
    expectReply('post', COMMIT, await api.call('POST', '/v1/groups/doc/offsets', { offsets: [{ topic: 'jobs', partition: 0, offset: 1 }] }), 409, 'NON_EMPTY_GROUP');
    expectReply('post', COMMIT, await a.commit([{ topic: 'jobs', partition: 0, offset: 1 }, { topic: 'jobs', partition: 0, offset: 2 }]), 400, 'DUPLICATE_PARTITION');
    expectReply('post', COMMIT, await a.commit([{ topic: 'jobs', partition: 7, offset: 1 }]), 404, 'UNKNOWN_PARTITION');
    expectReply('post', COMMIT, await api.call('POST', '/v1/groups/doc/offsets', { memberId: a.id, offsets: [{ topic: 'jobs', partition: 0, offset: 1 }] }), 400, 'INVALID_REQUEST');

    // Describe and list: a second member makes partitions move (revoking / pending); an idle group has nulls.
    const b = await api.join('doc', { topics: ['jobs'] });
    const described = await api.call('GET', '/v1/groups/doc');
    expectReply('get', GROUP, described, 200);
    expect(described.body.members).toHaveLength(2);
    expect(described.body.offsets).toContainEqual(expect.objectContaining({ topic: 'jobs', partition: 1, committedOffset: 1, metadata: 'batch-1', highWatermark: 1, lag: 0 }));
    const idle = await api.join('doc-idle', { topics: ['jobs'] });
    const idleDescribed = await api.call('GET', '/v1/groups/doc-idle');
    expectReply('get', GROUP, idleDescribed, 200);
    expect(idleDescribed.body.offsets[0]).toMatchObject({ committedOffset: null, metadata: null, committedAt: null, lag: null });
    expectReply('get', GROUP, await api.call('GET', '/v1/groups/nobody-here'), 404, 'UNKNOWN_GROUP');
    expectReply('get', GROUP, await api.call('GET', '/v1/groups/bad%20id'), 400, 'INVALID_REQUEST');
    const listed = await api.call('GET', '/v1/groups');
    expectReply('get', LIST, listed, 200);
    expect(listed.body.groups.map((g: { group: string }) => g.group)).toEqual(['doc', 'doc-idle']);

    // Reset and delete need an empty group.
    expectReply('post', RESET, await api.call('POST', '/v1/groups/doc/offsets/reset', { topic: 'jobs', to: 'earliest' }), 409, 'NON_EMPTY_GROUP');
    expectReply('delete', GROUP, await api.call('DELETE', '/v1/groups/doc'), 409, 'NON_EMPTY_GROUP');

    // Leave (idempotent), acknowledging the last poll, or not.
    expectReply('delete', MEMBER, await api.call('DELETE', `${memberPath(a)}?ack=not-a-uuid`), 400, 'INVALID_REQUEST');
    expectReply('delete', MEMBER, await api.call('DELETE', `${memberPath(a)}?bogus=1`), 400, 'INVALID_REQUEST');
    expectReply('delete', MEMBER, await api.call('DELETE', `${memberPath(a)}?ack=${drained.body.pollId}`), 204);
    expectReply('delete', MEMBER, await a.leave(), 204);
    expectReply('delete', MEMBER, await b.leave(), 204);
    expectReply('delete', MEMBER, await idle.leave(), 204);
    expectReply('delete', MEMBER, await api.call('DELETE', memberPath('not-a-uuid')), 400, 'INVALID_REQUEST');

    // Reset.
    const reset = (body: unknown) => api.call('POST', '/v1/groups/doc/offsets/reset', body);
    const resetReply = await reset({ topic: 'jobs', to: 'earliest' });
    expectReply('post', RESET, resetReply, 200);
    expect(resetReply.body.offsets).toEqual([{ topic: 'jobs', partition: 0, offset: 0 }, { topic: 'jobs', partition: 1, offset: 0 }]);
    expectReply('post', RESET, await reset({ topic: 'jobs', partitions: [0], to: { timestamp: 0 } }), 200);
    expectReply('post', RESET, await reset({ topic: 'jobs', partitions: [1], to: { offset: 1 } }), 200);
    expectReply('post', RESET, await reset({ topic: 'jobs', partitions: [0], to: { offset: 99 } }), 416, 'OFFSET_OUT_OF_RANGE');
    expectReply('post', RESET, await reset({ topic: 'jobs', partitions: [5], to: 'latest' }), 404, 'UNKNOWN_PARTITION');
    expectReply('post', RESET, await reset({ topic: 'nope', to: 'latest' }), 404, 'UNKNOWN_TOPIC');
    expectReply('post', RESET, await reset({ topic: 'jobs', to: 'middle' }), 400, 'INVALID_REQUEST');

    // A standalone commit, now that the group is empty.
    expectReply('post', COMMIT, await api.call('POST', '/v1/groups/doc/offsets', { offsets: [{ topic: 'jobs', partition: 0, offset: 2 }] }), 204);
    expectReply('post', COMMIT, await api.call('POST', '/v1/groups/doc/offsets', { offsets: [{ topic: 'jobs', partition: 0, offset: 3 }] }), 416, 'OFFSET_OUT_OF_RANGE');

    // Delete.
    expectReply('delete', GROUP, await api.call('DELETE', '/v1/groups/doc'), 204);
    expectReply('delete', GROUP, await api.call('DELETE', '/v1/groups/doc'), 404, 'UNKNOWN_GROUP');
    expectReply('delete', GROUP, await api.call('DELETE', '/v1/groups/bad%20id'), 400, 'INVALID_REQUEST');
    expectReply('get', GROUP, await api.call('GET', '/v1/groups/doc'), 404, 'UNKNOWN_GROUP');
  });
});
