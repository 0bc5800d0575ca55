/**
 * Fuzzing the HTTP boundary over a raw socket: generated request lines, paths, percent-encodings, query strings and
 * headers. Every request gets a well-formed HTTP answer (the app's own, or node's 400 for what its parser refuses),
 * never a 5xx and never silence, and the server still answers /health afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';
import { parseResponse, rawExchange } from '../support/rawHttp.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ MAX_BODY_BYTES: '65536' });
});
afterAll(async () => {
  await h.stop();
});

/** A string of single bytes (latin1): any byte but CR and LF, which would frame a different request than intended. */
const bytes = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0, max: 255 }).filter((c) => c !== 10 && c !== 13).map((c) => String.fromCharCode(c)), maxLength });
/** Printable ASCII, which node's parser lets through to the app. */
const printable = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
/** Unicode text sent as its UTF-8 bytes (node takes these in header values, not in the request target). */
const utf8 = (maxLength: number) => fc.string({ unit: 'grapheme', maxLength }).map((s) => Buffer.from(s, 'utf8').toString('latin1'));
/** Unicode text (lone surrogates included) percent-encoded as UTF-8, as a client puts it in a path. */
const encoded = (maxLength: number) => fc.string({ unit: 'binary', maxLength }).map((s) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
const hex = fc.constantFrom(...'0123456789abcdefABCDEFzg%');
/** A percent sign followed by zero to two characters: valid escapes, truncated ones (`%e`, `%`) and invalid ones (`%zz`). */
const percent = fc.array(hex, { maxLength: 2 }).map((chars) => `%${chars.join('')}`);
const word = fc.constantFrom('api', 'v1', 'model', 'models', 'graphql', 'health', 'credits', 'key', 'auth', 'generation', 'chat', 'completions', 'endpoints', 'providers', 'count', 'switchyard', 'demo', '..', '.', '');
const segment = fc.oneof(
  { weight: 3, arbitrary: word },
  { weight: 2, arbitrary: percent },
  { weight: 3, arbitrary: fc.array(fc.oneof({ weight: 3, arbitrary: word }, { weight: 3, arbitrary: percent }, { weight: 2, arbitrary: printable(4) }, { weight: 2, arbitrary: encoded(3) }, { weight: 1, arbitrary: bytes(4) }), { maxLength: 4 }).map((parts) => parts.join('')) },
);
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom('limit', 'offset', 'sort', 'id', 'use_rss', 'supported_parameters', 'output_modalities', 'query', 'variables'), segment), fc.oneof(segment, fc.integer().map(String), fc.constantFrom('true', '%7B%20__typename%20%7D', '{__typename}', '-1', '1e309', 'NaN'))), { maxLength: 4 });
const queryString = fc.option(query).map((q) => (q ? `?${q.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));
const path = fc.tuple(fc.array(segment, { minLength: 1, maxLength: 6 }), queryString).map(([segments, q]) => `/${segments.join('/')}${q}`);
/** The app's own routes with fuzzed parameters and queries. */
const route = fc.tuple(segment, segment, queryString).chain(([a, b, q]) =>
  fc.constantFrom(
    `/api/v1/model/${a}/${b}${q}`,
    `/api/v1/models/${a}/${b}/endpoints${q}`,
    `/api/v1/models${q}`,
    `/api/v1/models/count${q}`,
    `/api/v1/generation?id=${a}`,
    `/graphql${q}`,
    `/graphql?query=${a}&variables=${b}`,
    `/health${q}`,
    `/api/v1/credits${q}`,
    `/api/v1/key`,
    `/api/v1/chat/completions${q}`,
    `/api/v1/providers${q}`,
  ),
);
const target = fc.oneof(
  { weight: 4, arbitrary: path },
  { weight: 4, arbitrary: route },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('http', 'https', 'ftp', 'HTTP', 'x'), fc.oneof(fc.domain(), fc.constantFrom('[::1', '[::1]', 'a', '')), fc.oneof(fc.integer({ min: -1, max: 200_000 }).map(String), fc.constant('')), path).map(([scheme, host, port, p]) => `${scheme}://${host}${port ? `:${port}` : ''}${p}`) },
  { weight: 1, arbitrary: fc.constantFrom('//[::1', '*', '/', '//', '///health', '/%', '/graphql?query=%7B', 'http://a:99999/health', '/api/v1/model/%zz/x') },
  { weight: 1, arbitrary: bytes(40) },
);
const method = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT') }, { weight: 1, arbitrary: bytes(8) });
const TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const headerName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('authorization', 'x-request-id', 'accept', 'accept-encoding', 'content-type', 'host', 'x-session-id', 'if-none-match', 'cookie', 'expect', 'x-forwarded-proto', 'origin', 'upgrade') },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...TOKEN), minLength: 1, maxLength: 12 }) },
  { weight: 1, arbitrary: bytes(12) },
);
const headerValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(`Bearer ${ADMIN_KEY}`, 'Bearer', 'Bearer sk-sy-v1-xxx', 'Basic dXNlcjpwYXNz', 'text/html', 'application/json', 'gzip, br;q=0.5', '*', '100-continue', 'websocket', '[::1', 'a:99999') },
  { weight: 4, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 40 }) },
  { weight: 1, arbitrary: utf8(20) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: bytes(30) },
);
const request = fc.record({
  method,
  target,
  version: fc.oneof({ weight: 8, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/9', 'http/1.1', '') }),
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 }),
  body: fc.option(fc.oneof(utf8(200), fc.constantFrom('{"query":"{ __typename }"}', '{"model":"switchyard/demo","messages":[]}', '{', '[]'))),
});

type Request = typeof request extends fc.Arbitrary<infer T> ? T : never;

/**
 * The bytes on the wire: the fuzzed parts (a Host header unless one is generated: node refuses HTTP/1.1 without),
 * then a body framed by its Content-Length, then `Connection: close`.
 */
const wire = (r: Request): string =>
  `${r.method} ${r.target} ${r.version}\r\n${r.headers.some(([name]) => name === 'host') ? '' : 'host: 127.0.0.1\r\n'}${r.headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}` +
  `${r.body === null ? '' : `content-length: ${Buffer.byteLength(r.body, 'latin1')}\r\n`}connection: close\r\n\r\n${r.body ?? ''}`;

/** The quoted crash inputs and their neighbours, always run first. */
const CRASHES: Request[] = [
  { method: 'GET', target: '/api/v1/model/%zz/x', version: 'HTTP/1.1', headers: [], body: null },
  { method: 'GET', target: '//[::1', version: 'HTTP/1.1', headers: [], body: null },
  { method: 'GET', target: 'http://a:99999/health', version: 'HTTP/1.1', headers: [], body: null },
  { method: 'GET', target: '/api/v1/models/%E0%A4%A/endpoints', version: 'HTTP/1.1', headers: [], body: null },
  { method: 'POST', target: 'http://[::1/graphql', version: 'HTTP/1.1', headers: [['content-type', 'application/json']], body: '{"query":"{ __typename }"}' },
  { method: 'GET', target: '/health', version: 'HTTP/1.1', headers: [['x-request-id', 'caf\xe9\x01'], ['host', '[::1']], body: null },
  { method: 'POST', target: '/graphql', version: 'HTTP/1.1', headers: [['host', '[::1'], ['content-type', 'application/json']], body: '{"query":"{ __typename }"}' },
];

describe('fuzzed requests over a raw socket', () => {
  it('every request gets a well-formed HTTP answer, never a 5xx, and /health answers afterwards', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const answer = await rawExchange(h.port, wire(r));
        const res = parseResponse(answer, r.method);
        expect(res.status, wire(r)).toBeLessThan(500);
        if (res.headers['content-type']?.startsWith('application/json') && res.headers['transfer-encoding'] === undefined && r.method !== 'HEAD') {
          expect(() => JSON.parse(res.body.toString('utf8')), wire(r)).not.toThrow();
        }
      }),
      { numRuns: 250, examples: CRASHES.map((r) => [r]), endOnFailure: true },
    );
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
  });
});
