import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { boundedCache } from '../boundedCache.js';
import { abortError, type AbortLike } from '../cancellation.js';
import { extend } from '../objects.js';
import { OutboundRefusedError, guardedAgents, type OutboundPolicy, type OutboundRefusal } from '../modules/outbound/outboundPolicy.js';
import { ProviderError } from './types.js';

/**
 * The one upstream HTTP client: node:http with keep-alive agents. Node's `fetch` (undici behind WHATWG streams)
 * cost about a seventh of the gateway's CPU per request in a profile; this path hands the response stream to the
 * SSE reader directly. undici's own `request` API was measured too (2026-11-25): less CPU per call (~85 vs ~200 µs
 * in a micro-benchmark), but under load the request reached the upstream 2.5–4.7 ms after it was made (p50, against
 * 1.0–1.6 ms here), so the gateway's latency and sustained throughput got worse.
 *
 * Providers an admin registered connect anywhere; every other provider's connections are guarded by the outbound
 * address policy: its own agents resolve names through the policy's `lookup` (checked on every new connection, so a
 * name that later resolves to a private address is refused), and an IP-literal host, for which node skips `lookup`,
 * is checked before the request. Guarded and trusted connections never share a keep-alive pool.
 * Redirects are not followed (node:http never does): a 3xx is the provider's answer. If this client ever follows
 * one, each hop must go through the same guarded agents and the literal check.
 */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as a byte stream; read it with `readAnswer`, `readErrorText` or the SSE reader. */
  readonly body: IncomingMessage;
}

interface Target {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: string;
  readonly path: string;
}

/** Parsed upstream URLs (one per provider base URL and model, so few): parsing on every call showed in profiles. */
const targetOf = boundedCache(1000, (url: string): Target => {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`Unsupported upstream protocol ${parsed.protocol}`);
  // Brackets of an IPv6 literal are URL syntax, not part of the host name.
  return { protocol: parsed.protocol, hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: parsed.port, path: `${parsed.pathname}${parsed.search}` };
});

/** A refused connection is the provider's misconfiguration, not a passing failure: no retry on it. */
const refusedError = (refusal: OutboundRefusal) =>
  new ProviderError({ code: 'connection', status: 502, retryable: false, message: `the connection was refused by the outbound address policy: ${refusal.message}` });

export interface UpstreamClient {
  /**
   * POST a body; resolves when the response headers arrive. Aborting the signal destroys the socket. `guarded`
   * connections (providers not registered by an admin) go through the outbound address policy.
   */
  post(url: string, headers: Record<string, string>, body: string, signal: AbortLike, options: { readonly guarded: boolean }): Promise<UpstreamResponse>;
  /**
   * A whole answer's body, as text: at most `MAX_ANSWER_BYTES` (else `UnreadableAnswerError`), within the process's
   * budget (else `AnswerBudgetError`); either way the connection is then destroyed.
   */
  readAnswer(body: IncomingMessage): Promise<string>;
  /**
   * What whole answers being read hold at once, against GATEWAY_ANSWER_BUFFER_BYTES; streamed answers kept in memory
   * for a slow client past the call's deadline count against it too (skins/sseGeneration.ts).
   */
  readonly answerBudget: AnswerBudget;
  readonly policy: OutboundPolicy;
  /** Close the pooled connections (at shutdown). */
  close(): void;
}

export const createUpstreamClient = (policy: OutboundPolicy, options: { readonly answerBufferBytes?: number } = {}): UpstreamClient => {
  const budget: AnswerBudget = { held: 0, max: options.answerBufferBytes ?? DEFAULT_ANSWER_BUFFER_BYTES };
  const maxAnswer = Math.min(MAX_ANSWER_BYTES, budget.max);
  const pool = { keepAlive: true, maxSockets: 2048, scheduling: 'lifo' } as const;
  const trusted = { 'http:': new http.Agent(pool), 'https:': new https.Agent(pool) };
  const guarded = guardedAgents(policy, pool);
  return {
    policy,
    answerBudget: budget,
    readAnswer: async (body) => (await readUpstream(body, maxAnswer, budget, false)).toString('utf8'),
    post: (url, headers, body, signal, options) =>
      new Promise((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const target = targetOf(url);
        if (options.guarded && isIP(target.hostname) !== 0) {
          const refusal = policy.checkAddress(target.hostname);
          if (refusal) return reject(refusedError(refusal));
        }
        const client = target.protocol === 'https:' ? https : http;
        const req = client.request(
          {
            protocol: target.protocol,
            hostname: target.hostname,
            port: target.port,
            path: target.path,
            method: 'POST',
            headers: extend(headers, { 'content-length': String(Buffer.byteLength(body)) }),
            agent: (options.guarded ? guarded : trusted)[target.protocol],
          },
          (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
        );
        // Aborting destroys the socket, before or during the answer; once the exchange is over the listener goes.
        const onAbort = () => req.destroy(abortError(signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        req.once('close', () => signal.removeEventListener('abort', onAbort));
        // An interim status (1xx) then a closed connection: an answer that never came, not a connection that failed.
        let interim = 0;
        req.on('information', (info: { statusCode: number }) => (interim = info.statusCode));
        req.on('error', (error) =>
          reject(
            error instanceof OutboundRefusedError
              ? refusedError(error.refusal)
              : interim !== 0 && unreadableReason(error) === undefined
                ? new UnreadableAnswerError(`the answer was an interim status (HTTP ${interim}) and then nothing`, { cause: error })
                : error,
          ),
        );
        req.end(body);
      }),
    close() {
      for (const agent of [...Object.values(trusted), ...Object.values(guarded)]) agent.destroy();
    },
  };
};

/**
 * What Switchyard holds of upstream answers. A whole answer (2xx, not streamed) may be up to `MAX_ANSWER_BYTES`, far
 * beyond any chat completion (a long answer with 20 top logprobs a token is a few tens of MiB), and every answer being
 * read counts against one budget for the process (`GATEWAY_ANSWER_BUFFER_BYTES`), so what they hold does not grow with
 * the number of calls in flight: past it the answer that does not fit is not read (`AnswerBudgetError`). An error
 * body (a non-2xx status, or JSON where a stream was asked for) is only read for its message: its first 64 KiB.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
export const DEFAULT_ANSWER_BUFFER_BYTES = 256 * 1024 * 1024;

/**
 * An upstream answer Switchyard could not read (over its limit, not HTTP, an interim status and then nothing, a
 * stream without events, a shape the adapter could not convert): the provider's bad answer, not a failed connection,
 * so it is not asked for again from the same endpoint. The message is Switchyard's words, never the upstream's.
 */
export class UnreadableAnswerError extends Error {
  override readonly name = 'UnreadableAnswerError';
}

/** An answer that did not fit in what the process holds of answers at once: Switchyard's limit, not the provider's failure. */
export class AnswerBudgetError extends Error {
  override readonly name = 'AnswerBudgetError';
}

/** Why an upstream answer could not be read, in Switchyard's words, when `error` says it could not (else undefined). */
export const unreadableReason = (error: unknown): string | undefined => {
  if (error instanceof UnreadableAnswerError) return error.message;
  // node's HTTP parser refused the bytes (HPE_INVALID_CONSTANT, HPE_INVALID_CHUNK_SIZE, ...): not an HTTP answer.
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('HPE_') ? `the answer is not valid HTTP (${code})` : undefined;
};

const mebibytes = (bytes: number) => (bytes >= 1024 * 1024 ? `${+(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`);

/** Bytes held of answers, by everyone that takes from it (`held`), and the most it may be (`max`). */
export interface AnswerBudget {
  held: number;
  readonly max: number;
}

/**
 * Reads an upstream body to its end, holding at most `max` bytes. Past them (or past the budget) the connection is
 * destroyed: unlike a client's request (src/http/readBody.ts drains one so its connection can answer), nothing more is
 * wanted from it, and an answer that never ends would otherwise be read for ever. `prefix`: an error body, whose first
 * `max` bytes are enough (also when it breaks off); else the whole answer or a rejection.
 */
const readUpstream = (body: IncomingMessage, max: number, budget: AnswerBudget | null, prefix: boolean): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Error | null, destroy: boolean) => {
      body.removeListener('data', onData).removeListener('end', onEnd).removeListener('error', onError).removeListener('close', onClose);
      if (budget) budget.held -= size;
      if (destroy) body.destroy();
      if (error) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > max) {
        if (!prefix) return settle(new UnreadableAnswerError(`the answer is larger than ${mebibytes(max)}`), true);
        chunks.push(chunk.subarray(0, max - size));
        size = max;
        return settle(null, true);
      }
      if (budget) {
        if (budget.held + chunk.length > budget.max) {
          return settle(new AnswerBudgetError(`the answers being read at once already fill the ${mebibytes(budget.max)} Switchyard keeps for them`), true);
        }
        budget.held += chunk.length;
      }
      size += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => settle(null, false);
    const onError = (error: Error) => (prefix ? settle(null, true) : settle(error, true));
    const onClose = () => (prefix ? settle(null, false) : settle(new Error('The answer closed before its end'), false));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
  });

/** An error body's first 64 KiB, as text (it is read for its message only); the rest is not read. */
export const readErrorText = async (body: IncomingMessage): Promise<string> => (await readUpstream(body, MAX_ERROR_BODY_BYTES, null, true)).toString('utf8');
