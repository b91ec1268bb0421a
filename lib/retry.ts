// A retrier with full-jitter exponential backoff. It retries only errors that say they are
// transient (QueueError.retryable, or AWS SDK errors marked throttling/transient/5xx); programming
// errors and validation errors surface at once.
import { QueueError } from './errors.ts';

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Extra predicate for errors the caller knows to be transient. */
  isRetryable?: (err: unknown) => boolean;
  sleep?: (ms: number) => Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function isTransientAwsError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; name?: string };
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  return ['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'InternalServerError', 'ServiceUnavailable', 'SlowDown', 'TimeoutError', 'RequestTimeout', 'TransactionConflictException'].includes(e.name ?? '');
}

export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt));
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 20;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const retryable = err instanceof QueueError ? err.retryable : isTransientAwsError(err) || (options.isRetryable?.(err) ?? false);
      if (!retryable || attempt + 1 >= attempts) throw err;
      await wait(backoffDelay(attempt, baseDelayMs, maxDelayMs));
    }
  }
}
