/**
 * What is Anthropic's own in its errors: `{type:"error", error:{type, message}}`, the same shape as an HTTP error
 * body and an SSE `error` event. Over HTTP the status code is the contract and the type only names it; in a stream
 * the type is all there is.
 */
import type { ProviderError, ProviderErrorCode } from '../../types.js';
import { asRecord, asString } from '../common.js';
import { providerError, type ErrorBody } from '../httpErrors.js';

export const PROVIDER = 'anthropic';

const ERROR_TYPES: Record<string, { status: number; code: ProviderErrorCode }> = {
  invalid_request_error: { status: 400, code: 'bad_request' },
  authentication_error: { status: 401, code: 'auth' },
  billing_error: { status: 402, code: 'payment_required' },
  permission_error: { status: 403, code: 'auth' },
  not_found_error: { status: 404, code: 'not_found' },
  request_too_large: { status: 413, code: 'bad_request' },
  rate_limit_error: { status: 429, code: 'rate_limited' },
  api_error: { status: 500, code: 'server_error' },
  timeout_error: { status: 504, code: 'timeout' },
  overloaded_error: { status: 529, code: 'overloaded' },
};

/** The type is kept as upstreamCode; the HTTP status decides the code. */
export function readErrorBody(json: unknown): ErrorBody {
  const err = asRecord(asRecord(json).error);
  const type = asString(err.type);
  const message = asString(err.message);
  return { ...(type !== undefined && { upstreamCode: type }), ...(message !== undefined && { upstreamMessage: message }) };
}

/** An `error` event in a stream (or a 200 body): its type gives both status and code. */
export function errorFromEvent(event: unknown): ProviderError {
  const body = readErrorBody(event);
  const known = body.upstreamCode === undefined ? undefined : ERROR_TYPES[body.upstreamCode];
  return providerError({ provider: PROVIDER, status: known?.status ?? 500, ...body, ...(known && { code: known.code }) });
}
