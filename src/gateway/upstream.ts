import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { boundedCache } from '../boundedCache.js';
import { readBody } from '../http/readBody.js';

/**
 * The one upstream HTTP client: node:http with keep-alive agents. Node's `fetch` (undici behind WHATWG streams)
 * cost about a seventh of the gateway's CPU per request in a profile; this path hands the response stream to the
 * SSE reader directly. undici's own `request` API was measured too (2026-11-25): less CPU per call (~85 vs ~200 µs
 * in a micro-benchmark), but under load the request reached the upstream 2.5–4.7 ms after it was made (p50, against
 * 1.0–1.6 ms here), so the gateway's latency and sustained throughput got worse.
 */
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 2048, scheduling: 'lifo' }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 2048, scheduling: 'lifo' }),
};

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

/** POST a body; resolves when the response headers arrive. Aborting the signal destroys the socket. */
export const postUpstream = (url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<UpstreamResponse> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const target = targetOf(url);
    const client = target.protocol === 'https:' ? https : http;
    const req = client.request(
      { ...target, method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: agents[target.protocol], signal },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    req.on('error', reject);
    req.end(body);
  });

/** An upstream answer is bounded too: 64 MiB is far beyond any chat completion. */
const MAX_UPSTREAM_BODY = 64 * 1024 * 1024;

export const readText = async (body: IncomingMessage): Promise<string> =>
  (await readBody(body, MAX_UPSTREAM_BODY, () => new Error(`The upstream answer is larger than ${MAX_UPSTREAM_BODY} bytes`))).toString('utf8');
