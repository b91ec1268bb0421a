// docs/openapi.json documents exactly the routes the app serves, with the bounds of the request
// schemas, and real responses conform to the documented response schemas.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../lambdas/http/app.ts';
import { createServices } from '../../lambdas/http/services.ts';
import { fetchQuery, MAX_BODY_BYTES, MAX_FETCH_BYTES, MAX_FETCH_RECORDS, MAX_RECORDS_PER_REQUEST, MAX_WAIT_MS } from '../../lambdas/http/schemas.ts';
import { createStorage } from '../../lib/storage.ts';
import { MAX_PARTITIONS } from '../../lib/topics/topic-config.ts';
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
  return problems;
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

  it('documents every route the admin, produce and fetch groups serve, and nothing else', () => {
    const app = createApp(createServices(createStorage(testConfig())), ['admin', 'produce', 'fetch']);
    const served = [...new Set(app.routes
      .filter((r) => r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`))].sort();
    expect(served.length).toBeGreaterThanOrEqual(8);
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

  it('documents the request body bounds of the schemas', () => {
    const schemas = doc.components.schemas;
    const produce = resolve(schemas.ProduceRequest);
    expect([produce.properties.records.minItems, produce.properties.records.maxItems]).toEqual([1, MAX_RECORDS_PER_REQUEST]);
    expect(resolve(produce.properties.acks).enum).toEqual(['all', '1', '0']);
    expect(resolve(produce.properties.encoding).enum).toEqual(['utf8', 'base64']);
    expect(resolve(schemas.CreateTopicRequest).properties.partitions.maximum).toBe(MAX_PARTITIONS);
    expect(resolve(schemas.AddPartitionsRequest).properties.count.maximum).toBe(MAX_PARTITIONS);
    expect(resolve(schemas.TopicName).maxLength).toBe(249);
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
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'ok', partitions: 1, config: { 'retention.ms': 1 } })).not.toEqual([]);
    expect(validate(doc.components.schemas.CreateTopicRequest, { name: 'ok.name_-1', partitions: 1024, config: { 'compression.type': 'gzip' } })).toEqual([]);
  });
});

describe('real responses conform to the document', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi();
  });

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

  it('for every route, success and error', async () => {
    expectConforms('get', '/v1/health', await api.call('GET', '/v1/health'));
    expectConforms('post', '/v1/topics', await api.call('POST', '/v1/topics', { name: 'doc', partitions: 2, config: { 'compression.type': 'gzip' } }));
    expectConforms('post', '/v1/topics', await api.call('POST', '/v1/topics', { name: 'doc', partitions: 2 }));
    expectConforms('post', '/v1/topics', await api.call('POST', '/v1/topics', '{'));
    expectConforms('get', '/v1/topics', await api.call('GET', '/v1/topics'));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { records: [{ key: 'a', value: 'b', headers: { h: 'v' } }, { value: null, partition: 1, timestamp: 5 }] }));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { acks: '0', records: [{ value: 'x', partition: 0 }] }));
    await eventually(async () => ((await api.highWatermarks('doc'))[0] === 1 ? true : undefined));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { records: [{ value: 'x', partition: 9 }] }));
    expectConforms('post', '/v1/topics/{topic}/records', await api.produceRaw('doc', { records: [{ value: 'x'.repeat(MAX_BODY_BYTES) }] }));
    expectConforms('get', '/v1/topics/{topic}', await api.call('GET', '/v1/topics/doc'));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=0&encoding=base64'));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=7'));
    expectConforms('get', '/v1/topics/{topic}/partitions/{partition}/records', await api.fetchRaw('doc', 1, 'offset=0&bogus=1'));
    expectConforms('post', '/v1/topics/{topic}/partitions', await api.call('POST', '/v1/topics/doc/partitions', { count: 3 }));
    expectConforms('post', '/v1/topics/{topic}/partitions', await api.call('POST', '/v1/topics/doc/partitions', { count: 3 }));
    expectConforms('delete', '/v1/topics/{topic}', await api.call('DELETE', '/v1/topics/doc'));
    expectConforms('delete', '/v1/topics/{topic}', await api.call('DELETE', '/v1/topics/doc'));
    expectConforms('get', '/v1/topics/{topic}', await api.call('GET', '/v1/topics/doc'));
  });
});
