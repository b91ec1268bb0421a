// Typed errors of the client. Every failure the server reports keeps its code, HTTP status and
// message; whether a retry may succeed is decided here, in one place.

/** Server codes a later identical request may succeed on, whatever the status says. */
const RETRYABLE_CODES = new Set(['STORAGE_UNAVAILABLE', 'OBJECT_GONE', 'CONCURRENT_MODIFICATION', 'THROTTLED']);
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

export class QueueError extends Error {
  constructor(
    message: string,
    /** The server's UPPER_SNAKE code, or NETWORK_ERROR / TIMEOUT for failures before any answer. */
    readonly code: string,
    /** The HTTP status, 0 when no response arrived. */
    readonly status: number,
    /** True only when the same request may succeed later. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** 400: the request is malformed or names an invalid value. */
export class InvalidRequestError extends QueueError {}
/** 401/403: no or a wrong credential. */
export class AuthError extends QueueError {}
/** 404: unknown topic, partition, group, member or route. */
export class NotFoundError extends QueueError {}
/** 409: exists already, fenced, or a concurrent change. */
export class ConflictError extends QueueError {}
/** 409 PRODUCER_FENCED: a newer epoch of the producer id wrote; this producer can write no more. */
export class ProducerFencedError extends ConflictError {}
/** 409 OUT_OF_ORDER_SEQUENCE_NUMBER: an earlier batch of the producer was lost; nothing of this one was written. */
export class OutOfOrderSequenceError extends ConflictError {}
/** 413: a request or record too large. */
export class TooLargeError extends QueueError {}
/** 416: an offset outside [log start, high watermark]. */
export class OffsetOutOfRangeError extends QueueError {}
/** 5xx: the server failed; retryable when transient. */
export class ServerError extends QueueError {}
/** No response: the connection failed or the request timed out. The request may or may not have been applied. */
export class NetworkError extends QueueError {}

const BY_CODE: Record<string, typeof QueueError> = { PRODUCER_FENCED: ProducerFencedError, OUT_OF_ORDER_SEQUENCE_NUMBER: OutOfOrderSequenceError };
const BY_STATUS: Record<number, typeof QueueError> = { 400: InvalidRequestError, 401: AuthError, 403: AuthError, 404: NotFoundError, 409: ConflictError, 413: TooLargeError, 416: OffsetOutOfRangeError };

/** The error for a server response `{"error":{"code","message"}}` (or anything else with that status). */
export function errorFromResponse(status: number, code: string, message: string): QueueError {
  const Class = BY_CODE[code] ?? BY_STATUS[status] ?? (status >= 500 ? ServerError : QueueError);
  return new Class(message, code, status, RETRYABLE_STATUSES.has(status) || RETRYABLE_CODES.has(code));
}
