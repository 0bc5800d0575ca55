import { DomainError, type ErrorCode, type ErrorType } from '../errors.js';
import type { ProviderError, ProviderErrorCode } from './types.js';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  402: 'INSUFFICIENT_CREDITS',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
  503: 'NO_ENDPOINT',
};

/**
 * A gateway failure with OpenRouter's typed metadata: an `error_type` finer than its code's (context_length_exceeded,
 * timeout ...), and for upstream failures the provider's name and code. The HTTP status is the OpenRouter one;
 * `retryAfterMs` becomes a Retry-After header.
 */
export class GatewayError extends DomainError {
  constructor(
    status: number,
    override readonly errorType: ErrorType,
    message: string,
    metadata: Record<string, unknown> = {},
    override readonly retryAfterMs?: number,
    /** GraphQL's code when the status alone does not say it (a key limit is a 402 like missing credits). */
    code: ErrorCode = CODE_BY_STATUS[status] ?? 'PROVIDER_ERROR',
    /** DomainError.shouldRetry, where the status alone does not say it (an upstream's failure: fromProviderError). */
    override readonly shouldRetry?: boolean,
  ) {
    super(code, message, status, { error_type: errorType, ...metadata });
  }
}

/**
 * A call cut because the server stopped (its shutdown grace period ended, SHUTDOWN_GRACE_MS): Switchyard's own 503,
 * to retry (on another instance, or once this one is back).
 */
export const shuttingDown = () =>
  new GatewayError(503, 'server', 'Switchyard is shutting down: the call was cut at the end of its grace period; retry it', {}, 1_000, 'UNAVAILABLE');

/**
 * A stream cut at the call's deadline because its client had read nothing of it for `stallMs`
 * (GATEWAY_STREAM_IDLE_TIMEOUT_MS; skins/sseGeneration.ts): the error event it ends with, if it ever reads again.
 */
export const clientStalled = (stallMs: number) =>
  new GatewayError(408, 'timeout', `the client read nothing of the stream for ${stallMs} ms at the call's deadline: the stream was cut there`, {}, undefined, 'BAD_REQUEST');

/** A stream whose slow client's answer did not fit in what Switchyard keeps of answers at once (GATEWAY_ANSWER_BUFFER_BYTES). */
export const slowClientBufferFull = (maxBytes: number) =>
  new GatewayError(
    503,
    'server',
    `the client reads slower than its answer came, and the answers kept in memory for such clients already fill the ${Math.round(maxBytes / (1024 * 1024))} MiB Switchyard keeps for answers: the stream was cut there`,
    {},
    undefined,
    'UNAVAILABLE',
  );

export const invalidRequest = (message: string, metadata: Record<string, unknown> = {}) => new GatewayError(400, 'invalid_request', message, metadata);

/**
 * Upstream failures after which the same request sent again later fails the same way (x-should-retry: false): the
 * provider refused the key it was sent with (Switchyard's, or the account's own) or its billing, does not know the
 * model it was asked for, or refused the request's content; Switchyard could not build the request, or the answer ran
 * past max_tokens. What fixes these is a change of the request or of the provider's set-up, not time: a client's
 * retries (the SDKs' two, within seconds) would only call the provider again for the same refusal. The rest is the
 * status's call (http/rest.ts shouldRetryOf): a 429 or 503 with Retry-After may pass (the provider's rate or load, the
 * answers Switchyard holds at once), a 502 or 504 (a provider's error, a deadline) is left to the client's own rule.
 */
const FAILS_AGAIN: ReadonlySet<ProviderErrorCode> = new Set(['auth', 'payment_required', 'not_found', 'content_filter', 'internal', 'output_too_long']);

const UPSTREAM: Record<ProviderErrorCode, { status: number; type: ErrorType; what: string }> = {
  rate_limited: { status: 429, type: 'rate_limit_exceeded', what: 'is rate limiting requests' },
  overloaded: { status: 503, type: 'provider_overloaded', what: 'is overloaded' },
  server_error: { status: 502, type: 'provider_unavailable', what: 'returned a server error' },
  timeout: { status: 504, type: 'timeout', what: 'timed out' },
  connection: { status: 502, type: 'provider_unavailable', what: 'could not be reached (connection failed)' },
  bad_request: { status: 400, type: 'invalid_request', what: 'rejected the request as invalid' },
  auth: { status: 502, type: 'provider_unavailable', what: "refused Switchyard's credentials for it" },
  payment_required: { status: 502, type: 'provider_unavailable', what: 'refused the request for billing reasons on its side' },
  context_length: { status: 400, type: 'context_length_exceeded', what: 'says the prompt is longer than the context window' },
  content_filter: { status: 403, type: 'content_policy_violation', what: 'refused the request under its content policy' },
  malformed_response: { status: 502, type: 'server', what: 'sent a response that could not be read' },
  not_found: { status: 502, type: 'provider_unavailable', what: 'does not know the upstream model (endpoint misconfigured)' },
  internal: { status: 500, type: 'server', what: 'was not called: Switchyard could not build the request' },
  capacity: { status: 503, type: 'server', what: 'answered, but Switchyard could not hold the answer now' },
  output_too_long: { status: 502, type: 'server', what: 'sent more output than max_tokens allows' },
};

/** On the account's own provider key (BYOK), a refusal of the key is about that key, not Switchyard's. */
const OWN_KEY: Partial<Record<ProviderErrorCode, { status: number; type: ErrorType; what: string }>> = {
  auth: { status: 502, type: 'provider_unavailable', what: 'refused your own provider key (BYOK) for it: check it, or replace it with setByokKey' },
  payment_required: { status: 502, type: 'provider_unavailable', what: 'refused the request for billing reasons on the account of your own provider key (BYOK)' },
};

const PASSED_ON: Readonly<Record<number, { status: number; type: ErrorType; what: string }>> = {
  413: { status: 413, type: 'payload_too_large', what: 'refused the request as too large' },
  422: { status: 422, type: 'unprocessable', what: 'could not process the request as sent' },
};

/** The client-facing error for an upstream failure: typed, with the provider's name and code, never a bare "Provider returned error". */
export const fromProviderError = (
  error: ProviderError,
  context: { providerName: string; providerSlug: string; model: string; attempts: number; cooldownLeftMs?: number | undefined; byok?: boolean | undefined },
): GatewayError => {
  if (error.unsent === true) {
    // The adapter's refusal: no provider saw the request, so there is no provider status or code to show.
    const message = `${context.providerName} cannot take this request for ${context.model}, so it was not sent: ${error.detail ?? error.message}`;
    return new GatewayError(400, 'invalid_request', message, { provider_name: context.providerName, provider_slug: context.providerSlug, retryable: false, model: context.model, attempts: context.attempts });
  }
  // OpenRouter keeps an upstream's 413 and 422 (a request too large, or well-formed but refused): what to fix differs.
  const known =
    error.code === 'bad_request' ? (PASSED_ON[error.status] ?? UPSTREAM.bad_request) : ((context.byok === true ? OWN_KEY[error.code] : undefined) ?? UPSTREAM[error.code]);
  // 5xx messages from upstream are masked (they can leak internals); 4xx ones explain what to fix.
  // Switchyard's own words on what was wrong with an answer are shown whatever the status.
  const detail = error.status < 500 && error.upstreamMessage ? `: ${error.upstreamMessage.slice(0, 500)}` : error.detail ? `: ${error.detail}` : '';
  const message = `${context.providerName} ${known.what} for ${context.model} (HTTP ${error.status}, ${known.type})${detail}` +
    (context.attempts > 1 ? ` after ${context.attempts} attempts` : '');
  return new GatewayError(
    known.status,
    known.type,
    message,
    {
      provider_name: context.providerName,
      provider_slug: context.providerSlug,
      provider_status: error.status,
      ...(error.status < 500 || error.code === 'rate_limited' ? { provider_code: error.upstreamCode ?? String(error.status) } : {}),
      retryable: error.retryable,
      model: context.model,
      attempts: context.attempts,
    },
    error.code === 'rate_limited' ? error.retryAfterMs : error.code === 'overloaded' ? (error.retryAfterMs ?? context.cooldownLeftMs) : undefined,
    undefined,
    // The one connection failure not tried again within the call is the outbound address policy's refusal (gateway/
    // upstream.ts): no later request to that address passes it either.
    FAILS_AGAIN.has(error.code) || (error.code === 'connection' && !error.retryable) ? false : undefined,
  );
};
