// Request parsing helpers shared by the routes: JSON bodies and query strings validated by schema.
import type { Context } from 'hono';
import type { z } from 'zod';
import { InvalidRequestError } from '../../lib/errors.ts';
import { zodMessage } from './errors.ts';

export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text());
  } catch {
    throw new InvalidRequestError('MALFORMED_JSON', 'request body is not valid JSON');
  }
  // zod silently drops "__proto__" keys (e.g. a record header of that name): refuse, never lose data.
  const protoKey = protoKeyPath(raw);
  if (protoKey) throw new InvalidRequestError('INVALID_REQUEST', `${protoKey}: the key "__proto__" is not supported`);
  return parseWith(schema, raw);
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown, root = 'body'): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new InvalidRequestError('INVALID_REQUEST', zodMessage(parsed.error, root));
  return parsed.data;
}

/** The path of the first own "__proto__" key in a parsed JSON value (iterative: nesting may be deep). */
function protoKeyPath(root: unknown): string | undefined {
  interface Node { value: unknown; key: string; parent?: Node }
  const stack: Node[] = [{ value: root, key: '' }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { value } = node;
    if (typeof value !== 'object' || value === null) continue;
    if (!Array.isArray(value) && Object.hasOwn(value, '__proto__')) {
      const path = ['__proto__'];
      for (let n: Node | undefined = node; n?.parent; n = n.parent) path.unshift(n.key);
      return path.join('.');
    }
    for (const [key, child] of Object.entries(value)) stack.push({ value: child, key, parent: node });
  }
  return undefined;
}
