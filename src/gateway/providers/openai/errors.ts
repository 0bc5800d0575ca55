/**
 * What is OpenAI's own in its errors: the `{error:{message,type,param,code}}` body, OpenRouter's numeric
 * `{error:{code,message,metadata}}`, and statuses for errors that arrive inside a 200 or a stream.
 */
import type { ProviderError } from '../../types.js';
import { asNumber, asRecord, asString, isRecord } from '../common.js';
import { bodyMessage, providerError, type ErrorBody } from '../httpErrors.js';

export const PROVIDER = 'openai';

const TYPE_STATUS: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  rate_limit_exceeded: 429,
  requests: 429,
  tokens: 429,
  insufficient_quota: 429,
  server_error: 500,
  overloaded_error: 503,
};

/** Also reads the looser shapes of compatible servers (`{error:"…"}`, `{message}`, `{detail}`). */
export function readErrorBody(json: unknown): ErrorBody {
  const body: ErrorBody = {};
  const message = bodyMessage(json);
  if (message !== undefined) body.upstreamMessage = message;
  const root = asRecord(json);
  if (typeof root.error === 'string') return body;
  const err = isRecord(root.error) ? root.error : root;
  const code = asString(err.code) ?? asString(asRecord(err.metadata).error_type) ?? asString(err.type);
  if (code !== undefined) body.upstreamCode = code;
  if (code === 'context_length_exceeded') body.code = 'context_length';
  if (code === 'content_filter' || code === 'content_policy_violation') body.code = 'content_filter';
  return body;
}

/** An error inside a 200 or a stream: the body's own status (OpenRouter's numeric code, the type) or `fallbackStatus`. */
export function errorFromBody(json: unknown, fallbackStatus: number): ProviderError {
  const err = asRecord(asRecord(json).error);
  const numeric = asNumber(err.code);
  const typed = TYPE_STATUS[asString(err.code) ?? ''] ?? TYPE_STATUS[asString(err.type) ?? ''];
  const status = numeric !== undefined && numeric >= 400 && numeric < 600 ? numeric : (typed ?? fallbackStatus);
  return providerError({ provider: PROVIDER, status, ...readErrorBody(json) });
}
