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

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number,
    readonly metadata: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
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
  constructor(message = 'Not allowed') {
    super('FORBIDDEN', message, 403);
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
  constructor(message: string, readonly retryAfterMs: number, metadata: Record<string, unknown> = {}) {
    super('RATE_LIMITED', message, 429, { retry_after_ms: retryAfterMs, ...metadata });
  }
}
export class PaymentFailedError extends DomainError {
  constructor(message: string, metadata: Record<string, unknown> = {}) {
    super('PAYMENT_FAILED', message, 402, { limit_source: 'payment', ...metadata });
  }
}
