import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { boundedCache } from '../boundedCache.js';
import { abortError, type AbortLike } from '../cancellation.js';
import { readBody } from '../http/readBody.js';
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
  /** The body as a byte stream; read it with `readText` or the SSE reader. */
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
  readonly policy: OutboundPolicy;
  /** Close the pooled connections (at shutdown). */
  close(): void;
}

export const createUpstreamClient = (policy: OutboundPolicy): UpstreamClient => {
  const pool = { keepAlive: true, maxSockets: 2048, scheduling: 'lifo' } as const;
  const trusted = { 'http:': new http.Agent(pool), 'https:': new https.Agent(pool) };
  const guarded = guardedAgents(policy, pool);
  return {
    policy,
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
        req.on('error', (error) => reject(error instanceof OutboundRefusedError ? refusedError(error.refusal) : error));
        req.end(body);
      }),
    close() {
      for (const agent of [...Object.values(trusted), ...Object.values(guarded)]) agent.destroy();
    },
  };
};

/** An upstream answer is bounded too: 64 MiB is far beyond any chat completion. */
const MAX_UPSTREAM_BODY = 64 * 1024 * 1024;

export const readText = async (body: IncomingMessage): Promise<string> =>
  (await readBody(body, MAX_UPSTREAM_BODY, () => new Error(`The upstream answer is larger than ${MAX_UPSTREAM_BODY} bytes`))).toString('utf8');
