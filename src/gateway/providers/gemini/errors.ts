/**
 * What is Gemini's own in its errors: `{error:{code, message, status, details:[ErrorInfo, RetryInfo, …]}}`
 * (google.rpc.Status), sometimes wrapped in a one-element array. Over HTTP the status code decides; in a stream
 * the body's `status` name is all there is.
 */
import type { ProviderError, ProviderErrorCode } from '../../types.js';
import { asArray, asNumber, asRecord, asString, isRecord } from '../common.js';
import { clampRetryAfterMs, providerError, type ErrorBody } from '../httpErrors.js';

export const PROVIDER = 'gemini';

const STATUS_CODES: Record<string, { status: number; code: ProviderErrorCode }> = {
  INVALID_ARGUMENT: { status: 400, code: 'bad_request' },
  FAILED_PRECONDITION: { status: 400, code: 'bad_request' },
  UNAUTHENTICATED: { status: 401, code: 'auth' },
  PERMISSION_DENIED: { status: 403, code: 'auth' },
  NOT_FOUND: { status: 404, code: 'not_found' },
  RESOURCE_EXHAUSTED: { status: 429, code: 'rate_limited' },
  INTERNAL: { status: 500, code: 'server_error' },
  UNAVAILABLE: { status: 503, code: 'overloaded' },
  DEADLINE_EXCEEDED: { status: 504, code: 'timeout' },
};

export function firstBody(json: unknown): unknown {
  // Vertex and some proxies wrap error bodies in a one-element array.
  return Array.isArray(json) ? json[0] : json;
}

export function readErrorBody(json: unknown): ErrorBody {
  const err = asRecord(asRecord(firstBody(json)).error);
  const body: ErrorBody = {};
  const message = asString(err.message);
  if (message !== undefined) body.upstreamMessage = message;
  let reason: string | undefined;
  for (const detail of asArray(err.details)) {
    if (!isRecord(detail)) continue;
    reason ??= asString(detail.reason);
    const delay = asString(detail.retryDelay);
    const seconds = delay === undefined ? undefined : /^(\d+(?:\.\d+)?)s$/.exec(delay)?.[1];
    if (seconds !== undefined) body.retryAfterMs = clampRetryAfterMs(Number(seconds) * 1000);
  }
  const upstreamCode = reason ?? asString(err.status);
  if (upstreamCode !== undefined) body.upstreamCode = upstreamCode;
  // An invalid key is reported as 400 INVALID_ARGUMENT.
  if (reason === 'API_KEY_INVALID') body.code = 'auth';
  return body;
}

/** An error in a 200 body or a stream; `httpStatus` when the response carried an error status. */
export function errorFromBody(json: unknown, httpStatus: number | undefined): ProviderError {
  const err = asRecord(asRecord(firstBody(json)).error);
  const statusName = asString(err.status);
  const known = statusName === undefined ? undefined : STATUS_CODES[statusName];
  const body = readErrorBody(json);
  const code = body.code ?? (httpStatus === undefined ? known?.code : undefined);
  return providerError({
    provider: PROVIDER,
    status: httpStatus ?? asNumber(err.code) ?? known?.status ?? 500,
    ...body,
    ...(code !== undefined && { code }),
  });
}
