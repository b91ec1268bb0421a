// Key/value encodings of the JSON API: UTF-8 strings or strict base64.
import { InvalidRequestError } from '../../lib/errors.ts';
import type { PolledRecord } from '../../lib/groups/consumer.ts';
import type { FetchedRecord, ReadBudget } from '../../lib/log/fetcher.ts';
import { MAX_RESPONSE_BYTES, RESPONSE_ENVELOPE_BYTES } from './schemas.ts';

export type Encoding = 'utf8' | 'base64';
/** 1 at the char codes of the standard base64 alphabet. */
const BASE64_ALPHABET = new Uint8Array(128);
for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') BASE64_ALPHABET[char.charCodeAt(0)] = 1;

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
  if (!isStrictBase64(value)) throw new InvalidRequestError('INVALID_BASE64', `${field} is not valid base64`);
  return Buffer.from(value, 'base64');
}

/**
 * Padded standard base64: whole quartets of the standard alphabet, the last one ending in at most
 * two '='. A loop, not one regex over the value: a regex's backtracking over megabytes overflows the stack.
 */
function isStrictBase64(value: string): boolean {
  if (value.length % 4 !== 0) return false;
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  for (let i = 0; i < value.length - padding; i++) if (BASE64_ALPHABET[value.charCodeAt(i)] !== 1) return false;
  return true;
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

/** The JSON form of a polled record: a fetched record's, plus its topic. */
export function polledRecordJson(record: PolledRecord, encoding: Encoding) {
  return { topic: record.topic, ...recordJson(record, encoding) };
}

/**
 * What the records of one fetch or poll response may take, measured exactly as the response
 * serialises them: escaping can make a record's JSON form six times its bytes (utf8 "\u0001").
 */
export function responseBudget<R extends FetchedRecord>(encoding: Encoding, toJson: (record: R, encoding: Encoding) => unknown): ReadBudget<R> {
  return {
    bytes: MAX_RESPONSE_BYTES - RESPONSE_ENVELOPE_BYTES,
    // Plus one for the comma that separates it from the next record.
    sizeOf: (record) => Buffer.byteLength(JSON.stringify(toJson(record, encoding))) + 1,
    remedy: encoding === 'utf8' ? 'read it with encoding base64 (?encoding=base64 to fetch, "encoding":"base64" to poll), which escapes nothing' : undefined,
  };
}
