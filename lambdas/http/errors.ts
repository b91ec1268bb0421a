// Maps every failure to an error body with a fitting status: the v1 body {"error":{"code","message"}},
// or, on the routes of another API the app speaks (Upstash Kafka's), that API's error format.
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

/** The body of an error response with this code, message and status. */
export type ErrorFormat = (code: string, message: string, status: number) => unknown;

/** The error format of the routes whose paths match `paths`. */
export interface ErrorDialect {
  paths: RegExp;
  format: ErrorFormat;
}

export const v1ErrorFormat: ErrorFormat = (code, message) => errorBody(code, message);

/** The error format of a request path: the first dialect whose paths match, else v1. */
export function errorFormatFor(dialects: readonly ErrorDialect[]): (path: string) => ErrorFormat {
  return (path) => dialects.find((d) => d.paths.test(path))?.format ?? v1ErrorFormat;
}

export function toErrorResponse(err: unknown, c: Context, format: ErrorFormat = v1ErrorFormat) {
  const respond = (code: string, message: string, status: ContentfulStatusCode) => c.json(format(code, message, status) as object, status);
  if (err instanceof QueueError) return respond(err.code, err.message, err.status as ContentfulStatusCode);
  if (err instanceof ZodError) return respond('INVALID_REQUEST', zodMessage(err), 400);
  if (err instanceof HTTPException) return respond(err.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'HTTP_ERROR', err.message, err.status as ContentfulStatusCode);
  console.error(JSON.stringify({ level: 'error', message: 'unhandled error', error: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }));
  return respond('INTERNAL_ERROR', 'the server failed to process the request', 500);
}
