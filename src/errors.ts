/**
 * The domain error hierarchy: a stable machine code and an HTTP status. Deciders and services throw these; the
 * edges map them to typed GraphQL errors and to OpenRouter-shaped REST errors. Anything else is masked.
 */
export const ERROR_CODES = [
  'BAD_REQUEST',
  /** An argument or variable value that does not fit its GraphQL type (a bad scalar, an unknown enum value, a missing value). */
  'BAD_USER_INPUT',
  /** The query is not valid for this schema (syntax, unknown names, over a limit), or a value breaks a rule. */
  'VALIDATION',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'WRONG_EXPECTED_VERSION',
  'PAYLOAD_TOO_LARGE',
  'INSUFFICIENT_CREDITS',
  'KEY_LIMIT_REACHED',
  'RATE_LIMITED',
  'PAYMENT_FAILED',
  'PROVIDER_ERROR',
  'NO_ENDPOINT',
  'UNAVAILABLE',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);
export const isErrorCode = (value: unknown): value is ErrorCode => typeof value === 'string' && CODES.has(value);

/**
 * OpenRouter's `error.metadata.error_type` values that Switchyard produces: the one vocabulary of every REST error
 * (GraphQL errors carry the ErrorCode instead).
 */
export const ERROR_TYPES = [
  'context_length_exceeded',
  'max_tokens_exceeded',
  'authentication',
  'permission_denied',
  'payment_required',
  'rate_limit_exceeded',
  'provider_overloaded',
  'provider_unavailable',
  'invalid_request',
  'not_found',
  'precondition_failed',
  'payload_too_large',
  'unprocessable',
  'content_policy_violation',
  'server',
  'timeout',
  'unmapped',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

/**
 * Each code's HTTP status and OpenRouter error type: the one mapping from domain errors to REST answers. A thrower
 * may give another status (a 405 is a BAD_REQUEST); a GatewayError names its own type.
 */
export const HTTP_ERRORS: { readonly [C in ErrorCode]: { readonly status: number; readonly type: ErrorType } } = {
  BAD_REQUEST: { status: 400, type: 'invalid_request' },
  BAD_USER_INPUT: { status: 400, type: 'invalid_request' },
  VALIDATION: { status: 400, type: 'invalid_request' },
  UNAUTHENTICATED: { status: 401, type: 'authentication' },
  FORBIDDEN: { status: 403, type: 'permission_denied' },
  NOT_FOUND: { status: 404, type: 'not_found' },
  CONFLICT: { status: 409, type: 'invalid_request' },
  // An optimistic-concurrency miss: the write's precondition (the stream's revision) no longer holds.
  WRONG_EXPECTED_VERSION: { status: 409, type: 'precondition_failed' },
  PAYLOAD_TOO_LARGE: { status: 413, type: 'payload_too_large' },
  INSUFFICIENT_CREDITS: { status: 402, type: 'payment_required' },
  KEY_LIMIT_REACHED: { status: 402, type: 'payment_required' },
  RATE_LIMITED: { status: 429, type: 'rate_limit_exceeded' },
  PAYMENT_FAILED: { status: 402, type: 'payment_required' },
  PROVIDER_ERROR: { status: 502, type: 'provider_unavailable' },
  NO_ENDPOINT: { status: 503, type: 'provider_unavailable' },
  // Switchyard's own storage, not a provider: "provider_unavailable" would send a client to look upstream.
  UNAVAILABLE: { status: 503, type: 'server' },
  INTERNAL: { status: 500, type: 'server' },
};

/**
 * The longest wait a Retry-After header asks for: a day (a daily quota's reset). An upstream's own value is held to
 * it when read (providers/httpErrors.ts) and every answer's header when written (http/rest.ts).
 */
export const MAX_RETRY_AFTER_MS = 86_400_000;

export class DomainError extends Error {
  /** OpenRouter's `error_type` for this error on REST. */
  readonly errorType: ErrorType;
  /** When set, the REST answer carries a Retry-After header. */
  declare readonly retryAfterMs?: number;
  /**
   * Whether the same request, sent again later, can succeed, where the error itself knows (REST: `x-should-retry`;
   * the rule for the rest is http/rest.ts shouldRetryOf). Not `metadata.retryable`, which for an upstream's failure
   * only says whether the router tries again within the call.
   */
  declare readonly shouldRetry?: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number = HTTP_ERRORS[code].status,
    readonly metadata: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.errorType = HTTP_ERRORS[code].type;
  }
}

export class ValidationError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('VALIDATION', message, 400, metadata);
  }
}
export class UnauthenticatedError extends DomainError {
  constructor(message = 'Missing or invalid API key') {
    super('UNAUTHENTICATED', message, 401);
  }
}
export class ForbiddenError extends DomainError {
  constructor(message = 'Not allowed', metadata: Record<string, unknown> = {}) {
    super('FORBIDDEN', message, 403, metadata);
  }
}
export class NotFoundError extends DomainError {
  constructor(what: string, id: string) {
    super('NOT_FOUND', `${what} ${id} not found`, 404, { what, id });
  }
}
export class ConflictError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('CONFLICT', message, 409, metadata);
  }
}
/**
 * 409: an Idempotency-Key held by a call with no answer to replay. While that call runs a retry may get its answer (or
 * the key back, should it fail before a charge): `shouldRetry`; once it has ended, every retry gets this 409.
 */
export class IdempotencyKeyHeldError extends ConflictError {
  constructor(message: string, override readonly shouldRetry: boolean, metadata: Record<string, unknown> = {}) {
    super(message, { ...metadata, retryable: shouldRetry });
  }
}
/**
 * 422 on REST (Stripe's answer): an Idempotency-Key already used for another request. A CONFLICT on GraphQL, as a
 * run's key sent with another input is.
 */
export class IdempotencyKeyReusedError extends DomainError {
  override readonly errorType: ErrorType = 'unprocessable';
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('CONFLICT', message, 422, metadata);
  }
}
/**
 * 409 CONFLICT: a command that met another's write to the same aggregate on every try (another process's, as several
 * gateway processes on one EventStoreDB do): nothing was changed, and sending it again may pass (REST: Retry-After 1 s,
 * `x-should-retry: true`). Names no stream or revision: those are the store's, not the caller's.
 */
export class ConcurrentChangeError extends ConflictError {
  override readonly shouldRetry = true;
  override readonly retryAfterMs = 1_000;
  constructor(readonly tries: number) {
    super('Another request changed this at the same time, again on every try: nothing was changed; send it again', { reason: 'concurrent_change', retryable: true });
  }
}
export class WrongExpectedVersionError extends DomainError {
  constructor(
    readonly stream: string,
    readonly expected: string | number,
    readonly actual: number | 'no_stream',
  ) {
    super('WRONG_EXPECTED_VERSION', `Append to ${stream} expected revision ${expected} but the stream is at ${actual}`, 409, {
      stream,
      expected,
      actual,
    });
  }
}
export class UnavailableError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('UNAVAILABLE', message, 503, metadata);
  }
}

/**
 * A store could not write because its disk is full (SQLite's SQLITE_FULL, the system's ENOSPC or EDQUOT): nothing
 * was written. 507 Insufficient Storage on REST, UNAVAILABLE in GraphQL (`reason: disk_full`): the server's
 * condition, not the request's, and it passes once an operator frees space.
 */
export class StorageFullError extends DomainError {
  constructor(message = "The server's disk is full: nothing was written. Try again later (its operator must free space)") {
    super('UNAVAILABLE', message, 507, { reason: 'disk_full' });
  }
}

/** Error codes of a write refused for want of space, as SQLite and the system name them. */
const DISK_FULL_CODES: ReadonlySet<string> = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT']);

/**
 * What keeps a store from opening or writing its files, when it is the machine's storage and not the data: the one
 * classification of SQLite's result codes (extended ones included: SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED), the
 * system's errno and MongoDB's OutOfDiskSpace. Null for anything else (a conflict, a constraint, a bug).
 */
export type StorageFailure = 'disk_full' | 'read_only' | 'permission_denied' | 'cannot_open' | 'io_error';
export const storageFailureOf = (error: unknown): StorageFailure | null => {
  if (error instanceof StorageFullError) return 'disk_full';
  if (typeof error !== 'object' || error === null) return null;
  const { code, codeName } = error as { code?: unknown; codeName?: unknown };
  if ((typeof code === 'string' && DISK_FULL_CODES.has(code)) || codeName === 'OutOfDiskSpace' || code === 14031) return 'disk_full';
  if (typeof code !== 'string') return null;
  if (code === 'EROFS' || code.startsWith('SQLITE_READONLY')) return 'read_only';
  if (code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_PERM') return 'permission_denied';
  if (code.startsWith('SQLITE_CANTOPEN')) return 'cannot_open';
  if (code === 'EIO' || code.startsWith('SQLITE_IOERR')) return 'io_error';
  return null;
};

/** A StorageFailure as an operator reads it, completing "… because …". */
export const describeStorageFailure = (failure: StorageFailure): string =>
  ({
    disk_full: "the server's disk is full",
    read_only: 'the file system or file is read-only',
    permission_denied: 'permission denied',
    cannot_open: 'the file cannot be opened',
    io_error: 'the disk reported an I/O error',
  })[failure];

/**
 * A data file (or DATA_DIR) a store could not open or create at start, named with what is wrong (a StorageFailure) and
 * what to do. Not a DomainError: it stops the start (src/main.ts: exit 78, as a configuration the machine does not
 * allow; a full disk exit 1, as it passes). Kept here so that it crosses from the storage thread as itself.
 */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    readonly failure: StorageFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DataFileError';
  }
}

/**
 * A store's failure as the domain error it is, when it is one the edges can name (a full disk, as storageFailureOf
 * classifies it), else itself: the stores' drivers throw plain errors with a `code`, which would otherwise be masked as
 * INTERNAL.
 */
export const asStorageError = (error: unknown): unknown =>
  !(error instanceof DomainError) && error instanceof Error && storageFailureOf(error) === 'disk_full' ? new StorageFullError() : error;

/**
 * An event the store holds but cannot decode (its stored JSON is damaged). Not transient: reading it again fails
 * again, so the log must be restored. A 503 naming the event (position, stream, revision, type) wherever it surfaces:
 * the command that loads its stream, /health, the CLIs, and a start whose read models or views must read past it. Kept
 * here with the domain errors so that it crosses from the storage thread as itself.
 */
export class UnreadableEventError extends UnavailableError {
  constructor(
    readonly event: { readonly position: number; readonly stream: string; readonly revision: number; readonly type: string },
    reason: string,
  ) {
    super(`The event log holds an event that cannot be read: position ${event.position}, stream ${event.stream}, revision ${event.revision} (${event.type}): ${reason}`, { reason: 'unreadable_event' });
  }

  /** The same event is read again by the retry: only an operator's repair of the log helps. */
  override readonly shouldRetry = false;
}

/**
 * 503 with Retry-After: the event store failed in a way that passes (no leader for a moment, a timeout, the server
 * unreachable). Retrying the same request is safe: appends carry their event ids, so a write that did commit is not
 * written twice.
 */
export class StoreRetryableError extends UnavailableError {
  constructor(message: string, override readonly retryAfterMs: number, metadata: Record<string, unknown> = {}) {
    super(message, { retryable: true, retry_after_ms: retryAfterMs, ...metadata });
  }
}
/** 413: one append is larger than the event store accepts (EventStoreDB's maximum append size); retrying cannot help. */
export class AppendTooLargeError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('PAYLOAD_TOO_LARGE', message, 413, { retryable: false, ...metadata });
  }
}

/** 402: the account cannot afford the worst case of this request. */
export class InsufficientCreditsError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('INSUFFICIENT_CREDITS', message, 402, { limit_source: 'credits', ...metadata });
  }
}
/** 402: the key's spending limit for its current window would be exceeded. */
export class KeyLimitReachedError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('KEY_LIMIT_REACHED', message, 402, { limit_source: 'key_limit', ...metadata });
  }
}
/** 429: a request-rate limit (the free tier's) was reached; `retry_after_ms` says when to retry. */
export class RateLimitedError extends DomainError {
  constructor(message: string, override readonly retryAfterMs: number, metadata: Record<string, unknown> = {}) {
    super('RATE_LIMITED', message, 429, { retry_after_ms: retryAfterMs, ...metadata });
  }
}
export class PaymentFailedError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('PAYMENT_FAILED', message, 402, { limit_source: 'payment', ...metadata });
  }
}
