// Shared helpers of the HTTP API tests: an isolated storage + in-process app per test file, JSON
// request helpers, and the probes behind the "nothing of a rejected request is visible" checks.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Hono } from 'hono';
import { expect } from 'vitest';
import { createApp } from '../../lambdas/http/app.ts';
import { createServices, type Services } from '../../lambdas/http/services.ts';
import type { Storage } from '../../lib/storage.ts';
import { testStorage } from '../support/stack.ts';

export interface Reply<T = any> {
  status: number;
  body: T;
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface ProducedOffset {
  partition: number;
  offset: number;
  timestamp: number;
}

export interface FetchedRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string | null>;
}

export interface FetchReply {
  records: FetchedRecord[];
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
  gaps: Array<{ startOffset: number; endOffset: number }>;
}

export interface ProduceRecordInput {
  key?: string | null;
  value: string | null;
  headers?: Record<string, string>;
  partition?: number;
  timestamp?: number;
}

export class Api {
  constructor(readonly app: Hono, readonly services: Services) {}

  get storage(): Storage {
    return this.services.storage;
  }

  /** `body` objects are sent as JSON; strings and bytes are sent verbatim (for malformed bodies). */
  async call<T = any>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await this.app.request(path, init);
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  async createTopic(name: string, partitions: number, config?: Record<string, unknown>): Promise<void> {
    const res = await this.call('POST', '/v1/topics', { name, partitions, ...(config ? { config } : {}) });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }

  produceRaw(topic: string, body: unknown): Promise<Reply> {
    return this.call('POST', `/v1/topics/${topic}/records`, body);
  }

  /** Produces with the given options and expects 200; returns the offsets. */
  async produce(topic: string, records: ProduceRecordInput[], options: { acks?: 'all' | '1'; encoding?: 'utf8' | 'base64' } = {}): Promise<ProducedOffset[]> {
    const res = await this.produceRaw(topic, { records, ...options });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.offsets).toHaveLength(records.length);
    return res.body.offsets as ProducedOffset[];
  }

  fetchRaw(topic: string, partition: number | string, query: string): Promise<Reply> {
    return this.call('GET', `/v1/topics/${topic}/partitions/${partition}/records${query ? `?${query}` : ''}`);
  }

  async fetch(topic: string, partition: number, params: Record<string, string | number>): Promise<FetchReply> {
    const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const res = await this.fetchRaw(topic, partition, query);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as FetchReply;
  }

  /** Reads a whole partition from `from` by chaining nextOffset. */
  async fetchAll(topic: string, partition: number, from = 0, params: Record<string, string | number> = {}): Promise<FetchedRecord[]> {
    const records: FetchedRecord[] = [];
    let offset = from;
    for (let page = 0; page < 10_000; page++) {
      const res = await this.fetch(topic, partition, { ...params, offset });
      records.push(...res.records);
      if (res.nextOffset === res.highWatermark) return records;
      expect(res.nextOffset).toBeGreaterThan(offset);
      offset = res.nextOffset;
    }
    throw new Error('fetchAll did not reach the high watermark');
  }

  async describe(topic: string): Promise<{ name: string; partitions: Array<{ partition: number; logStartOffset: number; highWatermark: number; segments: number; bytes: number }>; config: Record<string, unknown> }> {
    const res = await this.call('GET', `/v1/topics/${topic}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  }

  async highWatermarks(topic: string): Promise<number[]> {
    return (await this.describe(topic)).partitions.map((p) => p.highWatermark);
  }

  /** Every object key in the test bucket, sorted. */
  async objectKeys(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.storage.s3.send(new ListObjectsV2Command({ Bucket: this.storage.config.bucket, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}

export async function startApi(): Promise<Api> {
  const services = createServices(await testStorage());
  return new Api(createApp(services), services);
}

/** Asserts a v1 error reply: status, code, and a message that names the offending input. */
export function expectError(res: Reply, status: number, code: string, mentions: Array<string | RegExp> = []): void {
  const detail = JSON.stringify(res.body);
  expect(res.status, detail).toBe(status);
  expect(Object.keys(res.body ?? {}), detail).toEqual(['error']);
  expect(res.body.error.code, detail).toBe(code);
  expect(typeof res.body.error.message, detail).toBe('string');
  expect(res.body.error.message.length, detail).toBeGreaterThan(0);
  for (const m of mentions) {
    if (typeof m === 'string') expect(res.body.error.message, detail).toContain(m);
    else expect(res.body.error.message, detail).toMatch(m);
  }
}

/** `json` as UTF-8 bytes, with each "@@" replaced by the raw bytes ff fe, which are never valid UTF-8. */
export function withInvalidUtf8(json: string): Uint8Array {
  return Buffer.concat(json.split('@@').flatMap((part, i) => (i === 0 ? [Buffer.from(part)] : [Buffer.from([0xff, 0xfe]), Buffer.from(part)])));
}

export function b64(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString('base64');
}

/** Polls until `probe` yields a value; the bound is generous because loaded CI machines are slow. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000, delayMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delayMs));
  }
}
