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
  return parseWith(schema, raw);
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new InvalidRequestError('INVALID_REQUEST', zodMessage(parsed.error));
  return parsed.data;
}
