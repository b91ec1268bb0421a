// Request parsing helpers shared by the routes: JSON bodies and query strings validated by schema.
import { isUtf8 } from 'node:buffer';
import type { Context } from 'hono';
import type { z } from 'zod';
import { InvalidRequestError } from '../../lib/errors.ts';
import { zodMessage } from './errors.ts';

/** A JSON body; `ifEmpty`, when given, stands for an empty body (curl -X POST without -d). */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S, ifEmpty?: z.input<S>): Promise<z.infer<S>> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  // Decoding invalid UTF-8 would silently store U+FFFD in its place: refuse, naming where it is.
  if (!isUtf8(bytes)) throw invalidUtf8(bytes);
  const text = UTF8.decode(bytes);
  if (ifEmpty !== undefined && text.trim() === '') return parseWith(schema, ifEmpty);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InvalidRequestError('MALFORMED_JSON', 'request body is not valid JSON');
  }
  // zod silently drops "__proto__" keys (e.g. a record header of that name): refuse, never lose data.
  const protoKey = pathWhere(raw, (key) => key === '__proto__');
  if (protoKey) throw new InvalidRequestError('INVALID_REQUEST', `${protoKey}: the key "__proto__" is not supported`);
  return parseWith(schema, raw);
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown, root = 'body'): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new InvalidRequestError('INVALID_REQUEST', zodMessage(parsed.error, root));
  return parsed.data;
}

const UTF8 = new TextDecoder();

/** Stands for an invalid sequence while locating it: valid UTF-8 never decodes to a lone surrogate. */
const INVALID_MARK = '\udfff';

/**
 * INVALID_UTF8 naming the first string (key or value) that holds invalid bytes. Every byte of an
 * invalid sequence is >= 0x80 and ASCII bytes always start a character, so each run of non-ASCII
 * bytes decodes on its own: the invalid runs become a mark, and JSON parsing shows where it lands.
 */
function invalidUtf8(bytes: Uint8Array): InvalidRequestError {
  let text = '';
  for (let start = 0, end = 0; start < bytes.length; start = end) {
    const ascii = bytes[start]! < 0x80;
    for (end = start + 1; end < bytes.length && bytes[end]! < 0x80 === ascii; end++);
    const run = bytes.subarray(start, end);
    text += ascii || isUtf8(run) ? UTF8.decode(run) : INVALID_MARK;
  }
  let field: string | undefined;
  try {
    const holdsMark = (value: unknown) => typeof value === 'string' && value.includes(INVALID_MARK);
    field = pathWhere(JSON.parse(text), (key, value) => holdsMark(key) || holdsMark(value));
  } catch {
    // The invalid bytes lie outside any string: only the body as a whole can be named.
  }
  return new InvalidRequestError('INVALID_UTF8', `${field?.replaceAll(INVALID_MARK, '\ufffd') ?? 'the request body'} is not valid UTF-8 (for binary data, send base64 with "encoding":"base64")`);
}

/** The dotted path of the first entry, in document order, whose key or value `matches`. Iterative: nesting may be deep. */
function pathWhere(root: unknown, matches: (key: string, value: unknown) => boolean): string | undefined {
  interface Node { value: unknown; key: string; parent?: Node }
  const stack: Node[] = [{ value: root, key: '' }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    if (matches(node.key, node.value)) {
      const path: string[] = [];
      for (let n: Node | undefined = node; n?.parent; n = n.parent) path.unshift(n.key);
      return path.length > 0 ? path.join('.') : 'body';
    }
    if (typeof node.value !== 'object' || node.value === null) continue;
    const entries = Object.entries(node.value);
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ key: entries[i]![0], value: entries[i]![1], parent: node });
  }
  return undefined;
}
