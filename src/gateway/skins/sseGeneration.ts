/**
 * One streamed generation over SSE, for chat/completions and the skins (Anthropic Messages, OpenAI Responses): the headers wait for the
 * first event, so a failure before it is still a plain HTTP error (and a fallback stays invisible); keep-alive text
 * commits the 200 if the first token is slow; a client that leaves aborts the upstream call, and the gateway charges
 * what was delivered (as chat/completions does). A client that does not read is not written for: once the response's
 * buffer is past its high-water mark the upstream is not read until it drains (router.ts RunOptions.onChunk), so a
 * stream holds about one buffer of its answer whatever its client does.
 *
 * At the call's deadline, a client that held its upstream back is judged by its last progress: one whose buffer drained
 * within `stallMs` (GATEWAY_STREAM_IDLE_TIMEOUT_MS: the silence a provider is allowed mid-stream before it is taken
 * for dead; a client reading at a few KB/s drains a 16 KiB buffer every few seconds) is reading, slowly: the upstream
 * is read to its end and settled as completed, and what the client has not taken yet is kept in memory until it has
 * (counted against GATEWAY_ANSWER_BUFFER_BYTES with the whole answers being read; one that does not fit
 * is cut there, with an error event). A client that took nothing for `stallMs` is taken for gone (the call cancelled,
 * charged for what it was sent), and its stream ends with an error event after what it was sent. Either way a client
 * that then takes nothing for `stallMs` more has its connection closed.
 *
 * The response is written bytes (Buffers), never strings: all of this waits on its 'drain', and Node 24 (24.22; not
 * Node 20) can lose that event for text. Its chunked response counts what a write buffers in bytes against the socket's
 * high-water mark and returns false, while the socket counts a string's characters: for multi-byte text (any language
 * but English, an emoji) the socket never needs to drain, so never says it did, and the response's 'drain' never
 * comes. The stream then waited for a client that was reading, and cut it as gone (test/e2e/streamBounds.e2e.test.ts).
 */
import { checkIdempotencyKey } from '../../idempotencyKey.js';
import { recordAnswer } from '../../http/idempotentAnswer.js';
import { requestFingerprint, type RequestIdempotency } from '../../modules/generations/requestIdempotency.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { abortError, Cancellation, type AbortLike } from '../../cancellation.js';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import type { AuthDirectory } from '../../modules/auth/authDirectory.js';
import type { AppAttribution } from '../../modules/generations/generation.events.js';
import type { ChatHeaders } from '../chatRequest.js';
import { clientStalled, GatewayError, invalidRequest, shuttingDown, slowClientBufferFull } from '../gatewayErrors.js';
import type { UnauthenticatedError } from '../../errors.js';
import type { Gateway, GenerationOutcome, PreparedGeneration } from '../gateway.js';
import type { ChatChunk } from '../types.js';

/** What every generation route (chat/completions and the skins) is built from. */
export interface GatewayRouteDeps {
  readonly gateway: Gateway;
  /**
   * `account`: the account's default model, for a chat request that names none; `watch`: a stream ends when its key
   * is refused (streamGeneration).
   */
  readonly directory: Pick<AuthDirectory, 'authenticate' | 'account' | 'watch'>;
  readonly logger: Logger;
  readonly config: Pick<Config, 'MAX_BODY_BYTES' | 'GATEWAY_KEEPALIVE_MS' | 'GATEWAY_STREAM_IDLE_TIMEOUT_MS'>;
  /**
   * Aborted when the server's shutdown grace period ends (src/app.ts stop): the calls still running then are cut, a
   * stream with an error event, a JSON call with a 503 (`shuttingDown`), and charged as when their client leaves.
   */
  readonly shutdown?: AbortLike;
}

/** OpenRouter's keep-alive, word for word (OR-aware UIs match it to show "thinking…"): an SSE comment while the first token is slow. */
export const KEEPALIVE_COMMENT = ': OPENROUTER PROCESSING\n\n';

const headerOf = (req: IncomingMessage, name: string): string | undefined => {
  const header = req.headers[name];
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  return value ? value : undefined;
};
const CATEGORY = /^[a-z0-9][a-z0-9-]{0,39}$/;

/**
 * OpenRouter's app attribution headers: `HTTP-Referer` (the app's URL), `X-OpenRouter-Title` (or `X-Title`) and
 * `X-OpenRouter-Categories` (at most 2, comma-separated), recorded on the generation. Undefined when none is sent; a
 * value that cannot be one is the caller's 400.
 */
export const appAttributionOf = (req: IncomingMessage): AppAttribution | undefined => {
  const url = headerOf(req, 'http-referer');
  const title = headerOf(req, 'x-openrouter-title') ?? headerOf(req, 'x-title');
  const categories = headerOf(req, 'x-openrouter-categories');
  if (url === undefined && title === undefined && categories === undefined) return undefined;
  if (url !== undefined) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // refused below
    }
    if (url.length > 512 || !parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
      throw invalidRequest('HTTP-Referer must be the app’s http(s) URL, at most 512 characters', { param: 'HTTP-Referer' });
    }
  }
  if (title !== undefined && title.length > 128) throw invalidRequest('X-OpenRouter-Title (X-Title) must be at most 128 characters', { param: 'X-OpenRouter-Title' });
  const list = categories === undefined ? [] : categories.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
  if (list.length > 2 || list.some((c) => !CATEGORY.test(c))) {
    throw invalidRequest('X-OpenRouter-Categories must be at most 2 comma-separated categories such as "cli-agent,programming-app" (lowercase letters, digits, -)', { param: 'X-OpenRouter-Categories' });
  }
  return { url: url ?? null, title: title ?? null, categories: [...new Set(list)] };
};

const CHAT_BETA_HEADERS: readonly string[] = ['x-anthropic-beta'];

/**
 * The headers that are part of a chat request: `x-session-id` (the first if sent twice) and the Anthropic beta flags of
 * `betaHeaders` (`x-anthropic-beta`; the Messages API adds Anthropic's own `anthropic-beta`).
 */
export const chatHeadersOf = (req: IncomingMessage, betaHeaders: readonly string[] = CHAT_BETA_HEADERS): ChatHeaders => {
  // On every chat: plain loops and assignments, no spreads (src/objects.ts says why).
  const headers: { session?: string; anthropicBeta?: { readonly header: string; readonly value: string }[] } = {};
  const session = req.headers['x-session-id'];
  if (session !== undefined) headers.session = Array.isArray(session) ? session[0]! : session;
  for (const header of betaHeaders) {
    const value = req.headers[header];
    if (value !== undefined) (headers.anthropicBeta ??= []).push({ header, value: Array.isArray(value) ? value.join(',') : value });
  }
  return headers;
};

/**
 * The request's `Idempotency-Key`, checked (a 400 naming the header when it is not 1 to 255 visible ASCII
 * characters, ! to ~, no spaces; Node joins a header sent twice with ", ", which is not one), with the request's fingerprint (its route
 * and its body as parsed) and a recorder of its answer on `res`; undefined when it sent none (nothing else runs).
 */
export const idempotencyOf = (req: IncomingMessage, res: ServerResponse, route: string, body: unknown): RequestIdempotency | undefined => {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  return { key: checkIdempotencyKey(Array.isArray(key) ? key.join(', ') : key, { header: 'idempotency-key' }), fingerprint: requestFingerprint(route, body), answer: recordAnswer(res) };
};

export interface SseWriter {
  /** Write events; the 200 and its headers go out with the first. Nothing is written once the client is gone. */
  write(text: string): void;
  /** Write these last events (if any) and end the response: after what is still kept for a slow client, if any. */
  end(text?: string): void;
  /** Send the 200 and its headers now if they are not out yet (an answer with no event before its end). */
  open(): void;
  /** Whether the response is gone (the client closed it). */
  readonly gone: boolean;
}

/**
 * A whole (not streamed) call, as a route runs it: cut at the shutdown deadline (GatewayRouteDeps.shutdown), which is
 * the only thing that cancels one. A client that leaves does not: the call runs to its end and is charged whole
 * (OpenRouter bills calls that do not stream in full), its answer kept for an Idempotency-Key retry; it is recorded as
 * undelivered (clientGone) when `res` was closed before its answer was ready.
 */
export const wholeCall = (deps: Pick<GatewayRouteDeps, 'gateway' | 'shutdown'>) => {
  const { shutdown } = deps;
  return (prepared: PreparedGeneration, res: ServerResponse): Promise<GenerationOutcome> => {
    const clientGone = () => clientLeft(res);
    return deps.gateway.execute(prepared, shutdown ? { signal: shutdown, clientGone } : { clientGone });
  };
};

/**
 * Whether `res` can no longer reach its client: judged by the connection, not only the response (a response pipelined
 * behind another is destroyed only once its socket's close event has run: see queuedOn in src/app.ts).
 */
export const clientLeft = (res: ServerResponse): boolean => res.destroyed || res.req.socket.destroyed;

/** Why a call produced no answer, for its error response: a cancelled call was cut by the shutdown. */
export const failureOf = (outcome: GenerationOutcome): unknown => (outcome.kind === 'cancelled' ? shuttingDown() : outcome.error);

/** The reason a stream is aborted with at the shutdown deadline (src/app.ts stop). */
const SHUTDOWN_ABORT = abortError('the server is shutting down');
/** The reason a stream is aborted with when its key is refused. */
const KEY_REFUSED_ABORT = abortError('the API key was refused');
/** What is written at once of what is kept for a slow client: at most 48 KiB, about a socket buffer. */
const KEPT_SLICE_CHARS = 16 * 1024;
const NOTHING = Buffer.alloc(0);
/** The reason a stream is aborted with when what its slow client has not taken does not fit in the answers' budget. */
const BUFFER_FULL_ABORT = abortError('the answers kept for slow clients fill their budget');

/** The stream's key was revoked, disabled or expired (or its account lost the role) while it ran: a 401, as on the next call. */
const keyRefused = (error: UnauthenticatedError) =>
  new GatewayError(401, 'authentication', `${error.message}: the stream was cut when its key was refused`, {}, undefined, error.code);

export const streamGeneration = async (options: {
  res: ServerResponse;
  gateway: Pick<Gateway, 'execute' | 'upstream'>;
  prepared: PreparedGeneration;
  generationId: string;
  keepAliveMs: number;
  /** How long a client may take nothing before it is taken for gone (GATEWAY_STREAM_IDLE_TIMEOUT_MS; see above). */
  stallMs: number;
  /** Written when nothing else was for `keepAliveMs` (Anthropic: a ping event; chat: an SSE comment). */
  keepAliveText: string;
  /** Written right after the headers (the Responses skin: response.created). */
  onOpen?: (sse: SseWriter) => void;
  /** The server's shutdown deadline (GatewayRouteDeps.shutdown). */
  shutdown?: AbortLike | undefined;
  /**
   * Where the stream's key is watched (GatewayRouteDeps.directory): once it is refused (revoked, disabled, expired,
   * its account's role revoked), the stream is cut as at the shutdown deadline, with the route's error event (401).
   */
  keys?: Pick<AuthDirectory, 'watch'> | undefined;
  onChunk: (chunk: ChatChunk, sse: SseWriter) => void;
}): Promise<{ outcome: GenerationOutcome; sse: SseWriter }> => {
  const { res, keepAliveMs } = options;
  // A Cancellation, not an AbortController: one per stream on the hot path (see src/cancellation.ts).
  const client = new Cancellation();
  res.on('close', () => {
    if (!res.writableFinished) client.abort(abortError('the client closed the stream'));
  });
  // Cut at the shutdown deadline as if the client had left (so charged for what it delivered), but the client is still
  // there: it is told why, with the route's error event.
  const { shutdown } = options;
  const onShutdown = () => client.abort(SHUTDOWN_ABORT);
  if (shutdown?.aborted) onShutdown();
  else shutdown?.addEventListener('abort', onShutdown);
  // As GraphQL subscriptions end (endWhenKeyRefused): one watch per stream, nothing per chunk.
  let refused: GatewayError | null = null;
  const unwatch = options.keys?.watch(options.prepared.input.principal, (error) => {
    refused = keyRefused(error);
    client.abort(KEY_REFUSED_ABORT);
  });
  let wroteAt = Date.now();
  /** Resolves once the client has taken what it was sent, or is gone; one while the response's buffer is full. */
  let drained: Promise<void> | null = null;
  /** When the wait for `drained` began: the client's last progress while it is full. */
  let waitingSince = 0;
  const whenDrained = (): Promise<void> | undefined => {
    if (!res.writableNeedDrain) return undefined;
    return (drained ??= new Promise<void>((resolve) => {
      waitingSince = Date.now();
      const done = () => {
        res.off('drain', done).off('close', done);
        drained = null;
        waitingSince = 0;
        resolve();
      };
      res.on('drain', done).on('close', done);
    }));
  };
  // Past the deadline (stillReading), or cut for not reading: what the client has not taken yet is kept here, in
  // slices written one buffer at a time as it drains (so that each 'drain' is the client's progress: a write of
  // megabytes would complete only once all of it was taken), counted against the answers' budget. A client that takes
  // nothing for stallMs is gone. Per such stream only: nothing of it on the hot path.
  const budget = options.gateway.upstream.answerBudget;
  let readOn = false;
  let kept: Buffer[] | null = null;
  let head = 0;
  let keptBytes = 0;
  let ending = false;
  let progressAt = 0;
  let watch: NodeJS.Timeout | null = null;
  const pump = () => {
    while (kept !== null && head < kept.length && !res.destroyed) {
      const slice = kept[head]!;
      kept[head++] = NOTHING;
      keptBytes -= slice.length;
      budget.held -= slice.length;
      if (!res.write(slice)) return;
    }
    if (kept !== null && head === kept.length) {
      kept.length = head = 0;
      if (ending && !res.writableEnded) res.end();
    }
  };
  const keep = (text: string) => {
    for (let at = 0; at < text.length; ) {
      let end = Math.min(text.length, at + KEPT_SLICE_CHARS);
      // Not between the halves of a surrogate pair.
      if (end < text.length && (text.charCodeAt(end - 1) & 0xfc00) === 0xd800) end -= 1;
      const slice = Buffer.from(text.slice(at, end));
      kept!.push(slice);
      keptBytes += slice.length;
      budget.held += slice.length;
      at = end;
    }
    if (!res.writableNeedDrain) pump();
  };
  const release = () => {
    if (watch) clearInterval(watch);
    watch = null;
    budget.held -= keptBytes;
    keptBytes = 0;
    if (kept !== null) kept.length = head = 0;
  };
  const keepForClient = () => {
    if (kept !== null || res.destroyed) return;
    kept = [];
    progressAt = Date.now();
    res.on('drain', () => {
      progressAt = Date.now();
      pump();
    });
    watch = setInterval(() => {
      // Nothing taken for stallMs: gone (its close cancels the call if it still runs).
      if ((keptBytes > 0 || res.writableLength > 0) && Date.now() - progressAt >= options.stallMs) res.destroy();
    }, Math.max(10, Math.ceil(options.stallMs / 4)));
    watch.unref();
    res.once('finish', release).once('close', release);
  };
  const stillReading = (): boolean => {
    if (res.destroyed || (waitingSince !== 0 && Date.now() - waitingSince >= options.stallMs)) return false;
    readOn = true;
    keepForClient();
    return true;
  };
  const sse: SseWriter = {
    write(text) {
      if (res.destroyed) return;
      sse.open();
      if (kept === null) res.write(Buffer.from(text));
      else keep(text);
      wroteAt = Date.now();
    },
    end(text) {
      if (kept === null) {
        res.end(text);
        return;
      }
      if (text !== undefined) sse.write(text);
      ending = true;
      if (!res.writableNeedDrain) pump();
    },
    open() {
      if (res.headersSent || res.destroyed) return;
      // No Connection header of ours: node says keep-alive, or close when the client asked (`Connection: close`,
      // HTTP/1.0) or the server is draining, and closes the connection after the stream then.
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', 'x-generation-id': options.generationId });
      options.onOpen?.(sse);
    },
    get gone() {
      return res.destroyed;
    },
  };
  const keepAlive = setInterval(() => {
    // Not into a full buffer: a client that is not reading is not kept alive.
    if (Date.now() - wroteAt >= keepAliveMs && !res.writableNeedDrain && kept === null) sse.write(options.keepAliveText);
  }, keepAliveMs);
  keepAlive.unref();
  try {
    const outcome = await options.gateway.execute(options.prepared, {
      signal: client,
      onChunk: (chunk) => {
        options.onChunk(chunk, sse);
        if (!readOn) return whenDrained();
        if (budget.held > budget.max && !client.aborted) client.abort(BUFFER_FULL_ABORT);
        return undefined;
      },
      stillReading,
    });
    // Whatever the gateway made of the abort (a cancellation; from a provider that cannot cancel, an answer read on
    // without its client), the client saw the stream cut: a failure, which the route ends with its error event.
    if (client.reason === SHUTDOWN_ABORT && outcome.kind !== 'failed') return { outcome: { ...outcome, kind: 'failed', error: shuttingDown() }, sse };
    if (client.reason === KEY_REFUSED_ABORT && refused !== null) return { outcome: { ...outcome, kind: 'failed', error: refused }, sse };
    if (client.reason === BUFFER_FULL_ABORT) return { outcome: { ...outcome, kind: 'failed', error: slowClientBufferFull(budget.max) }, sse };
    // Cancelled with the client still connected: it had taken nothing for stallMs at the call's deadline, and is taken
    // for gone. Its stream still ends with the route's error event, should it read again; if not, it is closed.
    if (outcome.kind === 'cancelled' && !client.aborted) {
      keepForClient();
      return { outcome: { ...outcome, kind: 'failed', error: clientStalled(options.stallMs) }, sse };
    }
    return { outcome, sse };
  } finally {
    clearInterval(keepAlive);
    shutdown?.removeEventListener('abort', onShutdown);
    unwatch?.();
  }
};
