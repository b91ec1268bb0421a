// One error hierarchy for the domain. Every error carries a stable UPPER_SNAKE code and the HTTP-ish
// status the adapters map it to, plus the underlying cause when there is one. Programming errors
// (TypeError, RangeError, ...) are never QueueErrors, so the retrier never retries them.

export abstract class QueueError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** True only for transient faults where the same call may succeed later. */
  readonly retryable: boolean = false;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidRequestError extends QueueError {
  readonly status = 400;
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The caller presented no credentials the configured auth accepts. */
export class UnauthorizedError extends QueueError {
  readonly status = 401;
  readonly code = 'UNAUTHORIZED';
}

export class NotFoundError extends QueueError {
  readonly status = 404;
  constructor(readonly code: 'UNKNOWN_TOPIC' | 'UNKNOWN_PARTITION' | 'UNKNOWN_GROUP' | 'UNKNOWN_MEMBER_ID' | 'UNKNOWN_PRODUCER_ID' | 'NOT_FOUND', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A partition log's head is gone: its topic was deleted (callers translate this to the topic's name). */
export class PartitionLogMissingError extends QueueError {
  readonly status = 404;
  readonly code = 'UNKNOWN_TOPIC';
}

export class ConflictError extends QueueError {
  readonly status = 409;
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class PayloadTooLargeError extends QueueError {
  readonly status = 413;
  readonly code = 'PAYLOAD_TOO_LARGE';
}

/** One record is larger than a bound no exception is made for (what a request or a response can carry). */
export class RecordTooLargeError extends QueueError {
  readonly status = 413;
  constructor(readonly code: 'RECORD_TOO_LARGE' | 'RECORD_TOO_LARGE_FOR_RESPONSE', message: string) {
    super(message);
  }
}

export class OffsetOutOfRangeError extends QueueError {
  readonly status = 416;
  readonly code = 'OFFSET_OUT_OF_RANGE';
  constructor(readonly offset: number, readonly logStartOffset: number, readonly highWatermark: number) {
    super(`offset ${offset} is out of range: valid offsets are ${logStartOffset} (log start) to ${highWatermark} (high watermark)`);
  }
}

/** Stored bytes failed their checksum or structure check: never returned to a client as data. */
export class CorruptDataError extends QueueError {
  readonly status = 500;
  readonly code = 'CORRUPT_DATA';
}

/** A storage call failed in a way that may succeed when tried again (throttling, 5xx, timeouts). */
export class StorageUnavailableError extends QueueError {
  readonly status = 503;
  readonly code = 'STORAGE_UNAVAILABLE';
  override readonly retryable = true;
}

/** The stored state contradicts an invariant: a bug or a foreign writer, never retried. */
export class InvariantViolationError extends QueueError {
  readonly status = 500;
  readonly code = 'INVARIANT_VIOLATION';
}

/** A partition leader's conditional write found a newer leader epoch: it was fenced and changed nothing. */
export class LeaderFencedError extends QueueError {
  readonly status = 409;
  readonly code = 'LEADER_FENCED';
}

/**
 * An object the index pointed at was deleted before it was read: compacted into a segment (and the
 * intake object dropped), or expired. Readers re-read the partition state and follow the offsets.
 */
export class ObjectGoneError extends QueueError {
  readonly status = 503;
  readonly code = 'OBJECT_GONE';
}
