// Key/value encodings of the JSON API: UTF-8 strings or strict base64.
import { InvalidRequestError } from '../../lib/errors.ts';
import type { FetchedRecord } from '../../lib/log/fetcher.ts';

export type Encoding = 'utf8' | 'base64';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Matches a lone surrogate: JSON can carry one ("\ud800"), UTF-8 cannot. */
const LONE_SURROGATE = /\p{Cs}/u;

/** UTF-8 bytes of a string; Buffer.from would silently store U+FFFD for a lone surrogate, so refuse it. */
export function utf8Bytes(value: string, field: string): Buffer {
  if (LONE_SURROGATE.test(value)) throw new InvalidRequestError('INVALID_UNICODE', `${field} contains a lone UTF-16 surrogate, which has no UTF-8 form`);
  return Buffer.from(value, 'utf8');
}

export function decodeField(value: string | null | undefined, encoding: Encoding, field: string): Uint8Array | null {
  if (value === null || value === undefined) return null;
  if (encoding === 'utf8') return utf8Bytes(value, field);
  // Buffer.from(..., 'base64') silently skips bad characters; refuse instead of storing garbage.
  if (!BASE64.test(value)) throw new InvalidRequestError('INVALID_BASE64', `${field} is not valid base64`);
  return Buffer.from(value, 'base64');
}

export function encodeField(bytes: Uint8Array | null, encoding: Encoding): string | null {
  if (bytes === null) return null;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding);
}

/** The JSON form of a fetched record, as the fetch and poll responses carry it (header values are always UTF-8). */
export function recordJson(record: FetchedRecord, encoding: Encoding) {
  return {
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: encodeField(record.key, encoding),
    value: encodeField(record.value, encoding),
    headers: Object.fromEntries(record.headers.map((h) => [h.key, h.value === null ? null : Buffer.from(h.value).toString('utf8')])),
  };
}
