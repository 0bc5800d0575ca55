import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseMediaType } from 'content-type';
import { boundedCache } from '../boundedCache.js';
import { asStorageError, DomainError, MAX_RETRY_AFTER_MS } from '../errors.js';
import { IdempotentReplay } from './idempotentAnswer.js';
import type { Logger } from '../logger.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../objects.js';
import { readBody } from './readBody.js';
import { requireRole, type Principal } from '../modules/auth/principal.js';

/**
 * OpenRouter's error body, `{ error: { code, message, metadata } }`: the HTTP status as `code`, the error's metadata
 * (limit_source, provider_name, provider_code ...) plus its lowercase `error_type` and the request id.
 */
export const errorBody = (error: DomainError, requestId: string) => ({
  error: { code: error.status, message: error.message, metadata: { ...error.metadata, error_type: error.errorType, request_id: requestId } },
});

const DEFAULT_503_RETRY_AFTER_MS = 1_000;

/**
 * The one REST error writer: every route's failure, the app's own 400/404/405/413 and the gateway's errors (and a
 * retried Idempotency-Key's stored answer, which the gateway throws instead of calling again). A domain error is
 * shown (with Retry-After when it has a retry time, and on every 503); anything else is logged and masked as a 500.
 * Once the headers are out there is no answer left to give: the connection is cut.
 */
export const sendError = (
  res: ServerResponse,
  error: unknown,
  requestId: string,
  logger: Pick<Logger, 'error'>,
  /** The body's shape: OpenRouter's, unless a skin speaks another API's (the Responses skin: OpenAI's; the Messages skin: Anthropic's). */
  render: (error: DomainError, requestId: string) => unknown = errorBody,
): void => {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof IdempotentReplay) return error.send(res);
  let known: DomainError;
  const storage = asStorageError(error);
  if (storage instanceof DomainError) known = storage;
  else {
    logger.error({ err: error, requestId }, 'unexpected error in an HTTP request');
    known = new DomainError('INTERNAL', 'Internal error');
  }
  // OpenRouter's 503s always say when to retry: one that knows no better time (Switchyard's own, an upstream's
  // without one) asks for a second.
  const retryAfterMs = known.retryAfterMs ?? (known.status === 503 ? DEFAULT_503_RETRY_AFTER_MS : undefined);
  const headers: Record<string, string> = retryAfterMs === undefined ? {} : { 'retry-after': retryAfterSeconds(retryAfterMs) };
  // Switchyard's own limits (the free tier's) say which limit and when it resets, as OpenRouter's 429s do: the
  // reset as epoch milliseconds. An upstream's 429 has no `limit` of ours and gets only Retry-After.
  // RFC 9110: a 415 for a content coding says which codings would be accepted (none but identity: readRequestBody).
  if (known.status === 415 && known.metadata.content_encoding !== undefined) headers['accept-encoding'] = 'identity';
  const shouldRetry = shouldRetryOf(known, retryAfterMs);
  if (shouldRetry !== undefined) headers['x-should-retry'] = String(shouldRetry);
  const limit = known.metadata.limit;
  if (known.status === 429 && typeof limit === 'number' && known.retryAfterMs !== undefined) {
    headers['x-ratelimit-limit'] = String(limit);
    headers['x-ratelimit-remaining'] = '0';
    headers['x-ratelimit-reset'] = String(Date.now() + known.retryAfterMs);
  }
  sendJson(res, known.status, render(known, requestId), headers);
};

/** The statuses of a request refused for what it is (malformed, invalid, too large, in another encoding, unprocessable). */
const REFUSED_AS_SENT = new Set([400, 413, 415, 422]);

/**
 * Whether the same request, sent again later, can succeed (`x-should-retry`, which the official SDKs obey over their
 * own rule of retrying every 408, 409, 429 and 5xx), when Switchyard knows: `false` when it cannot (the request itself
 * is refused, or the error says so: DomainError.shouldRetry, e.g. a provider that refused Switchyard's key, an
 * Idempotency-Key whose call has ended), `true` when a retry may pass (a 429 or 503 with Retry-After: a rate, a load,
 * a capacity of the moment, a shutdown; an Idempotency-Key whose call still runs), otherwise nothing (the client's own
 * rule: a 502 or a 504 deadline, say). Not `metadata.retryable`: that says whether the router tries again within the call.
 */
const shouldRetryOf = (error: DomainError, retryAfterMs: number | undefined): boolean | undefined => {
  if (error.shouldRetry !== undefined) return error.shouldRetry;
  if (REFUSED_AS_SENT.has(error.status)) return false;
  if ((error.status === 429 || error.status === 503) && retryAfterMs !== undefined) return true;
  return undefined;
};

/** Retry-After as delta-seconds: a whole number from 1 to a day, whatever the wait's source computed. */
const retryAfterSeconds = (ms: number): string => String(Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS / 1000, Math.max(1, Math.ceil(ms / 1000))) : MAX_RETRY_AFTER_MS / 1000);

export const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
};

export const bearerOf = (req: IncomingMessage): string | null => {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(.+)$/i.exec(header);
  return match ? match[1]!.trim() : header.trim();
};

/**
 * The request target as a URL (only its path and query are used), or null when it is none: node's parser passes
 * on targets such as `//[::1` or `http://a:99999/`, which `new URL` refuses. Origin-form (`/path`) is read against a
 * fixed base, so a target starting with `//` stays a path and never names a host.
 */
export const parseRequestTarget = (target: string | undefined): URL | null => {
  if (!target) return null;
  try {
    if (target.startsWith('/')) return new URL(`http://localhost${target}`);
    const url = new URL(target);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
};

/** Whether a Host header names a host (and port) at all: `[::1` or `a:99999` do not, and would not make a URL. */
/** Cached: a server sees few Host values, and this runs on every request. */
export const isValidHost = boundedCache(256, (host: string): boolean => !/[\s/?#@\\]/.test(host) && URL.canParse(`http://${host}`));

/** What a client may name its request with: echoed in a response header, so short and of safe characters only. */
const REQUEST_ID = /^[\w.:@\/+=-]{1,128}$/;

/** The client's `x-request-id` when it is a safe short token, else a fresh one. */
export const requestIdOf = (header: string | string[] | undefined): string => (typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID());

export interface RestRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly requestId: string;
  readonly params: Record<string, string>;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path with `:name` segments, e.g. `/api/v1/models/:author/:slug/endpoints`. */
  readonly path: string;
  readonly handler: (request: RestRequest) => Promise<void> | void;
  /** The error body's shape on this path when it is not OpenRouter's (a skin's: Anthropic's on `/messages`). */
  readonly renderError?: (error: DomainError, requestId: string) => unknown;
}

interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

const decodeSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new DomainError('BAD_REQUEST', `Malformed percent-encoding in the path segment ${JSON.stringify(segment.slice(0, 100))}`, 400);
  }
};

/**
 * A small exact router: few routes, matched in order; unknown paths are 404 and wrong methods 405 with Allow (and
 * the path's error shape). HEAD is answered as GET (node sends no body for it).
 */
export const createRouter = (routes: readonly Route[]) => {
  const compiled: CompiledRoute[] = routes.map((route) => {
    const names: string[] = [];
    const source = route.path.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    return { ...route, pattern: new RegExp(`^${source}/?$`), names };
  });
  return {
    match(
      method: string,
      pathname: string,
    ): { route: CompiledRoute; params: Record<string, string> } | { allowed: string[]; renderError?: Route['renderError'] } | null {
      const wanted = method === 'HEAD' ? 'GET' : method;
      const allowed: string[] = [];
      let renderError: Route['renderError'];
      for (const route of compiled) {
        const m = route.pattern.exec(pathname);
        if (!m) continue;
        if (route.method !== wanted) {
          // Several patterns can match one path (`/models/count` is also `/models/:id`): each method once.
          if (!allowed.includes(route.method)) allowed.push(route.method);
          renderError ??= route.renderError;
          continue;
        }
        const params: Record<string, string> = {};
        route.names.forEach((name, i) => (params[name] = decodeSegment(m[i + 1]!)));
        return { route, params };
      }
      if (allowed.includes('GET')) allowed.push('HEAD');
      return allowed.length ? { allowed, ...(renderError && { renderError }) } : null;
    },
  };
};

/** A body the client stopped sending (it closed the connection, or broke the chunking): its fault, not an error of ours to log. */
const bodyCut = () => new DomainError('BAD_REQUEST', 'The request body was cut off: the connection closed before its end', 400);

/**
 * A body sent with a content coding (`Content-Encoding: gzip`, `br`, ...): a 415 naming it, or null when there is none
 * (`identity` is none). Bodies are not decompressed: a compressed body's size says nothing of what it inflates to, so
 * MAX_BODY_BYTES could not bound it as it bounds every other body.
 */
const unsupportedEncoding = (header: string | undefined): DomainError | null => {
  if (header === undefined) return null;
  const codings = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return null;
  const named = JSON.stringify(header.trim().slice(0, 100));
  return new DomainError('BAD_REQUEST', `Content-Encoding ${named} is not supported: send the JSON body uncompressed (no Content-Encoding, or identity)`, 415, {
    content_encoding: header.trim().slice(0, 100),
  });
};

/** Names of UTF-8 (and of ASCII, a subset of it: its bytes decode the same). */
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/** The Content-Types clients send nearly always (the SDKs' and curl's): UTF-8 JSON, known without a parse. */
const PLAIN_JSON = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8', 'application/json; charset=UTF-8']);

/**
 * A body declared in a charset other than UTF-8 (`Content-Type: application/json; charset=utf-16`): a 415 naming it,
 * or null. Bodies are read as UTF-8 only (JSON's, RFC 8259 8.1); read as UTF-8, another charset's text would be
 * refused or, worse, altered.
 */
const unsupportedCharset = (header: string | undefined): DomainError | null => {
  // Parsed as a media type (RFC 9110 8.3.1: names case-insensitive, a value a token or a quoted string, which may hold
  // ";" or "charset="), never split by hand; the common exact values need no parse.
  if (header === undefined || PLAIN_JSON.has(header)) return null;
  const charset = parseMediaType(header).parameters.charset?.toLowerCase();
  if (charset === undefined || UTF8_CHARSETS.has(charset)) return null;
  const named = charset.slice(0, 40);
  return new DomainError('BAD_REQUEST', `Content-Type charset ${JSON.stringify(named)} is not supported: send the body in UTF-8 (charset=utf-8, or no charset)`, 415, { charset: named });
};

/**
 * The request body, refusing more than `maxBytes` (413) whether it was declared (Content-Length) or sent chunked:
 * reading stops at the limit and the rest is discarded unread; a body with a content coding, or declared in a charset
 * other than UTF-8, is a 415 before it is read. A body cut off is a 400.
 */
export const readRequestBody = (req: IncomingMessage, maxBytes: number): Promise<Buffer> => {
  const tooLarge = () => new DomainError('PAYLOAD_TOO_LARGE', `Request body is larger than ${maxBytes} bytes`, 413, { limit: maxBytes });
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return Promise.reject(tooLarge());
  const encoded = unsupportedEncoding(req.headers['content-encoding']);
  if (encoded !== null) return Promise.reject(encoded);
  const charset = unsupportedCharset(req.headers['content-type']);
  if (charset !== null) return Promise.reject(charset);
  return readBody(req, maxBytes, tooLarge, bodyCut);
};

/**
 * Decodes UTF-8 strictly (an invalid sequence throws instead of becoming U+FFFD, so a body is never altered unseen),
 * past a leading byte-order mark (RFC 8259 lets a parser ignore one). As fast as Buffer#toString: native.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Where the first byte sequence that is not UTF-8 (RFC 3629: no overlong forms, no surrogates, none past U+10FFFF) starts. */
export const invalidUtf8Offset = (bytes: Uint8Array): number => {
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    // The sequence's length, and the range its second byte must fall in (which excludes overlongs, surrogates and > U+10FFFF).
    const [length, low, high] =
      lead >= 0xc2 && lead <= 0xdf ? [2, 0x80, 0xbf]
      : lead === 0xe0 ? [3, 0xa0, 0xbf]
      : lead === 0xed ? [3, 0x80, 0x9f]
      : lead >= 0xe1 && lead <= 0xef ? [3, 0x80, 0xbf]
      : lead === 0xf0 ? [4, 0x90, 0xbf]
      : lead >= 0xf1 && lead <= 0xf3 ? [4, 0x80, 0xbf]
      : lead === 0xf4 ? [4, 0x80, 0x8f]
      : [0, 0, 0];
    if (length === 0 || i + length > bytes.length) return i;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return i;
    for (let k = 2; k < length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += length;
  }
  return -1;
};

/** A body that is not UTF-8: a 400 saying where (found only now, off the path of every valid body). */
export const notUtf8 = (raw: Uint8Array): DomainError => {
  const offset = invalidUtf8Offset(raw);
  return new DomainError('BAD_REQUEST', `The request body is not valid UTF-8 (a byte sequence at offset ${offset}): send JSON text encoded as UTF-8`, 400, { offset });
};

/** A request body as JSON: 400 when not UTF-8, malformed or nested deeper than MAX_JSON_DEPTH, and when empty unless `emptyIsNull` (then null). */
export const parseJsonBody = (raw: Buffer, options: { emptyIsNull?: boolean } = {}): unknown => {
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    throw notUtf8(raw);
  }
  if (text.trim() === '') {
    if (options.emptyIsNull) return null;
    throw new DomainError('BAD_REQUEST', 'Request body is empty; send a JSON object', 400);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DomainError('BAD_REQUEST', `Malformed JSON: ${(error as Error).message}`, 400);
  }
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) throw new DomainError('BAD_REQUEST', `JSON nested more than ${MAX_JSON_DEPTH} levels deep`, 400, { max_depth: MAX_JSON_DEPTH });
  return value;
};

/** Read a JSON body, refusing more than `maxBytes` (413) and malformed JSON (400). */
export const readJsonBody = async (req: IncomingMessage, maxBytes: number): Promise<unknown> => parseJsonBody(await readRequestBody(req, maxBytes));

/** The caller of a REST request, or a 401. */
export const requirePrincipal = (directory: { authenticate(secret: string | null): Principal }, req: IncomingMessage): Principal => directory.authenticate(bearerOf(req));

/**
 * The caller of a REST request that acts as an end user (calls a model, saves a preset): a 401 without a live key, a
 * 403 when its account does not hold the role `user` (checked before the body is read).
 */
export const requireUser = (directory: { authenticate(secret: string | null): Principal }, req: IncomingMessage): Principal => requireRole(requirePrincipal(directory, req), 'user');
