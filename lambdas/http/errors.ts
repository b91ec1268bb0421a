// Maps every failure to the v1 error body {"error":{"code","message"}} with a fitting status.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ZodError } from 'zod';
import { QueueError } from '../../lib/errors.ts';

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** `root` names what was parsed (the body, the query string, a path parameter) for issues at its top. */
export function zodMessage(err: ZodError, root = 'body'): string {
  return err.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : root}: ${issue.message}`).join('; ');
}

export function toErrorResponse(err: unknown, c: Context) {
  if (err instanceof QueueError) return c.json(errorBody(err.code, err.message), err.status as ContentfulStatusCode);
  if (err instanceof ZodError) return c.json(errorBody('INVALID_REQUEST', zodMessage(err)), 400);
  if (err instanceof HTTPException) return c.json(errorBody(err.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'HTTP_ERROR', err.message), err.status);
  console.error(JSON.stringify({ level: 'error', message: 'unhandled error', error: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }));
  return c.json(errorBody('INTERNAL_ERROR', 'the server failed to process the request'), 500);
}
