/**
 * Upstream failures → ProviderError, shared by every protocol: status → code and retryability, Retry-After, the
 * message inside a body. A protocol passes in only what its error bodies say in its own words (an `ErrorBodyReader`).
 */
import { MAX_RETRY_AFTER_MS } from '../../errors.js';
import { ProviderError, type ProviderErrorCode } from '../types.js';
import type { HeaderSource, ProviderAdapter } from './adapter.js';
import { asRecord, asString, isRecord, parseJson } from './common.js';

export function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof Headers !== 'undefined' && headers instanceof Headers) return headers.get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/**
 * A wait an upstream asked for, as whole milliseconds from 0 to MAX_RETRY_AFTER_MS (a day): it is passed on to the
 * client as its Retry-After, so an upstream's 400 digits, 1e20 or 31 years must not reach it as sent.
 */
export const clampRetryAfterMs = (ms: number): number => Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));

/**
 * `retry-after-ms` (OpenAI), then `Retry-After` as delta-seconds or, given `nowMs`, an HTTP-date; at most
 * MAX_RETRY_AFTER_MS, however many digits were sent.
 */
export function parseRetryAfterMs(headers: HeaderSource, nowMs?: number): number | undefined {
  const ms = headerValue(headers, 'retry-after-ms')?.trim();
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return clampRetryAfterMs(Number(ms));
  const value = headerValue(headers, 'retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return clampRetryAfterMs(Number(value) * 1000);
  if (nowMs === undefined) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : clampRetryAfterMs(at - nowMs);
}

const RETRYABLE: ReadonlySet<ProviderErrorCode> = new Set<ProviderErrorCode>([
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'connection',
  // Another endpoint may have a larger context window.
  'context_length',
  'malformed_response',
]);

export function isRetryable(code: ProviderErrorCode): boolean {
  return RETRYABLE.has(code);
}

export function codeForStatus(status: number): ProviderErrorCode {
  switch (status) {
    case 401:
    case 403:
      return 'auth';
    case 402:
      return 'payment_required';
    case 404:
      return 'not_found';
    case 408:
    case 504:
      return 'timeout';
    case 429:
      return 'rate_limited';
    case 503:
    case 529:
      return 'overloaded';
    default:
      if (status >= 500) return 'server_error';
      if (status >= 400) return 'bad_request';
      return 'server_error';
  }
}

const CONTEXT_LENGTH =
  /context[ _-]?length|context window|maximum context|prompt is too long|too many (input )?tokens|input token count.*exceed|exceeds? the maximum (number of )?tokens|input length and `?max_tokens`? exceed/i;

export function isContextLengthMessage(message: string | undefined): boolean {
  return message !== undefined && CONTEXT_LENGTH.test(message);
}

/** What an error body says, read by the protocol that knows its shape. */
export interface ErrorBody {
  /** A code the body implies whatever the status says (e.g. OpenAI `context_length_exceeded`). */
  code?: ProviderErrorCode;
  upstreamCode?: string;
  upstreamMessage?: string;
  /** A retry delay carried in the body (Gemini `RetryInfo`); a Retry-After header wins over it. */
  retryAfterMs?: number;
}

export type ErrorBodyReader = (json: unknown) => ErrorBody;

export interface ErrorFacts extends ErrorBody {
  provider: string;
  status: number;
  /** Switchyard's own words on what was wrong (ProviderError.detail), shown whatever the status. */
  detail?: string;
}

export function providerError(facts: ErrorFacts): ProviderError {
  let code = facts.code ?? codeForStatus(facts.status);
  if ((code === 'bad_request' || code === 'not_found') && isContextLengthMessage(facts.upstreamMessage)) {
    code = 'context_length';
  }
  return new ProviderError({
    code,
    status: facts.status,
    retryable: isRetryable(code),
    message: `${facts.provider} ${facts.status} ${code}${facts.upstreamMessage || facts.detail ? `: ${facts.upstreamMessage || facts.detail}` : ''}`,
    provider: facts.provider,
    ...(facts.retryAfterMs !== undefined && { retryAfterMs: facts.retryAfterMs }),
    ...(facts.upstreamCode !== undefined && { upstreamCode: facts.upstreamCode }),
    ...(facts.upstreamMessage !== undefined && { upstreamMessage: facts.upstreamMessage }),
    ...(facts.detail !== undefined && { detail: facts.detail }),
  });
}

/** The message in the shapes most servers use: `{error:"…"}`, `{error:{message}}`, `{message}`, `{detail}`. */
export function bodyMessage(json: unknown): string | undefined {
  const root = asRecord(json);
  if (typeof root.error === 'string') return root.error;
  const err = isRecord(root.error) ? root.error : root;
  return asString(err.message) ?? asString(err.detail);
}

const RAW_MESSAGE_LIMIT = 500;

/**
 * An HTTP error response → ProviderError. The status decides the code unless the protocol's reader names one; a
 * body that is not JSON (a proxy's HTML page) is kept, shortened, as the upstream message.
 */
export function mapHttpError(
  provider: string,
  readBody: ErrorBodyReader,
  status: number,
  headers: HeaderSource,
  bodyText: string,
  nowMs?: number,
): ProviderError {
  const json = parseJson(bodyText);
  const body = json === undefined ? {} : readBody(json);
  const raw = bodyText.trim();
  const upstreamMessage =
    body.upstreamMessage ?? (json === undefined ? (raw === '' ? undefined : raw.slice(0, RAW_MESSAGE_LIMIT)) : bodyMessage(json));
  const retryAfterMs = parseRetryAfterMs(headers, nowMs) ?? body.retryAfterMs;
  return providerError({
    ...body,
    provider,
    status,
    ...(upstreamMessage !== undefined && { upstreamMessage }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/** An adapter's `mapError`, built from the protocol's body reader. */
export const httpErrorMapper =
  (provider: string, readBody: ErrorBodyReader): ProviderAdapter['mapError'] =>
  (status, headers, bodyText, nowMs) =>
    mapHttpError(provider, readBody, status, headers, bodyText, nowMs);
