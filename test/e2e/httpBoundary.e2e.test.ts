/**
 * The HTTP boundary: malformed request targets, odd headers and oversized bodies are answered (never a crash), the
 * size limit holds on every transport, the GraphiQL page is compressed and cached, and DATA_DIR is private.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';
import { parseResponse, rawExchange, type RawResponse } from '../support/rawHttp.js';

const LIMIT = 65_536;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ MAX_BODY_BYTES: String(LIMIT) });
});
afterAll(async () => {
  await h.stop();
});

const health = async () => (await fetch(`${h.url}/health`)).status;

/** One raw request (closing the connection after the answer), parsed. */
const raw = async (requestLine: string, headers: readonly string[] = [], body = '') =>
  parseResponse(
    await rawExchange(h.port, `${requestLine}\r\nhost: 127.0.0.1\r\n${headers.map((line) => `${line}\r\n`).join('')}connection: close\r\n\r\n${body}`),
    requestLine.split(' ')[0],
  );

const openRouterError = (body: Buffer) => JSON.parse(body.toString('utf8')) as { error: { code: number; message: string; metadata: { error_type: string; request_id?: string } } };

describe('malformed request targets are answered in OpenRouter error shape, and the server lives on', () => {
  const CASES: { name: string; line: string; status: number; errorType: string }[] = [
    { name: 'malformed percent-encoding in a route parameter', line: 'GET /api/v1/model/%zz/x HTTP/1.1', status: 400, errorType: 'invalid_request' },
    { name: 'a truncated percent-encoding in a route parameter', line: 'GET /api/v1/models/a%/b%e0%a4/endpoints HTTP/1.1', status: 400, errorType: 'invalid_request' },
    { name: 'a target that is not a URL (`//[::1`)', line: 'GET //[::1 HTTP/1.1', status: 404, errorType: 'not_found' },
    { name: 'an absolute target with an invalid port', line: 'GET http://a:99999/health HTTP/1.1', status: 400, errorType: 'invalid_request' },
    { name: 'an asterisk target', line: 'OPTIONS * HTTP/1.1', status: 400, errorType: 'invalid_request' },
    { name: 'malformed percent-encoding in the query', line: 'GET /api/v1/models?limit=%zz&offset=% HTTP/1.1', status: 400, errorType: 'invalid_request' },
    { name: 'a NUL escape in the query', line: 'GET /api/v1/models?sort=%00 HTTP/1.1', status: 400, errorType: 'invalid_request' },
    { name: 'malformed percent-encoding on the GraphQL path', line: 'GET /graphql/%zz HTTP/1.1', status: 404, errorType: 'not_found' },
  ];

  it('malformed paths, percent-encodings, request targets and queries (the quoted crash inputs included)', async () => {
    for (const { name, line, status, errorType } of CASES) {
      const res = await raw(line);
      expect(res.status, name).toBe(status);
      expect(openRouterError(res.body).error, name).toMatchObject({ code: status, metadata: { error_type: errorType } });
      expect(await health(), `/health after ${name}`).toBe(200);
    }
    // Yoga builds its request URL from the Host header: one that names no host is refused before it gets there.
    for (const host of ['[::1', 'a:99999', 'a b']) {
      const body = '{"query":"{ __typename }"}';
      const res = parseResponse(await rawExchange(h.port, `POST /graphql HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`));
      expect(res.status, host).toBe(400);
      expect(openRouterError(res.body).error.metadata.error_type).toBe('invalid_request');
    }
  });

  it('a CONNECT request is refused with a 405, not a dropped socket', async () => {
    const res = parseResponse(await rawExchange(h.port, 'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\nx-request-id: connect-1\r\n\r\n'));
    expect(res.status).toBe(405);
    expect(openRouterError(res.body).error).toMatchObject({ code: 405, metadata: { error_type: 'invalid_request', request_id: 'connect-1' } });
    expect(await health()).toBe(200);
  });
});

describe('headers', () => {
  it('x-request-id is echoed only when it is a short safe token; a huge, repeated or odd one is replaced; odd Authorization headers are a 401', async () => {
    expect((await raw('GET /health HTTP/1.1', ['x-request-id: trace-42.a:b'])).headers['x-request-id']).toBe('trace-42.a:b');
    const replaced = [
      ['x-request-id: ' + 'a'.repeat(8_000)],
      ['x-request-id: one', 'x-request-id: two'],
      ['x-request-id: caf\xe9\xff'],
      ['x-request-id: <script>'],
      ['x-request-id:'],
    ];
    for (const headers of replaced) {
      const res = await raw('GET /api/v1/nothing HTTP/1.1', headers);
      expect(res.status).toBe(404);
      expect(res.headers['x-request-id'], headers.join(' | ')).toMatch(/^[0-9a-f-]{36}$/);
      expect(openRouterError(res.body).error.metadata.request_id).toBe(res.headers['x-request-id']);
    }
    const odd = [
      ['authorization: Bearer'],
      ['authorization: Basic dXNlcjpwYXNz'],
      ['authorization: Bearer ' + 'x'.repeat(8_000)],
      ['authorization: Bearer \t sk-sy-v1-\xe9\xff'],
      ['authorization: Bearer a', `authorization: Bearer ${ADMIN_KEY}`],
    ];
    for (const headers of odd) {
      const rest = await raw('GET /api/v1/credits HTTP/1.1', headers);
      expect(rest.status, headers.join(' | ')).toBe(401);
      expect(openRouterError(rest.body).error.code).toBe(401);
      const body = '{"query":"{ me { id } }"}';
      const graphql = await raw('POST /graphql HTTP/1.1', [...headers, 'content-type: application/json', `content-length: ${body.length}`], body);
      expect(graphql.status, headers.join(' | ')).toBe(401);
    }
    expect(await health()).toBe(200);
  });
});

/**
 * Send a chunked body (no Content-Length) of `total` bytes over a raw socket. The first `before` bytes go out, then
 * sending pauses until the answer has come: a server that waited for the whole body would never answer. Then the
 * rest follows, so the server has to cope with (drain) the whole `total` too.
 */
const chunkedUpload = async (path: string, prefix: string, before: number, total: number): Promise<RawResponse> => {
  const socket = connect(h.port, '127.0.0.1');
  socket.on('error', () => undefined); // a server closing early is judged by what it answered
  await once(socket, 'connect');
  const closed = once(socket, 'close');
  let received = Buffer.alloc(0);
  const answered = new Promise<RawResponse>((resolve) =>
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      try {
        resolve(parseResponse(received));
      } catch {
        // not complete yet
      }
    }),
  );
  const write = (data: Buffer | string) => new Promise<void>((resolve) => (socket.write(data) ? resolve() : socket.once('drain', () => resolve())));
  const chunk = (data: Buffer | string) => write(Buffer.concat([Buffer.from(`${Buffer.byteLength(data).toString(16)}\r\n`), Buffer.from(data), Buffer.from('\r\n')]));
  await write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${ADMIN_KEY}\r\ntransfer-encoding: chunked\r\n\r\n`);
  await chunk(prefix);
  const pad = Buffer.alloc(64 * 1024, 'x');
  let sent = prefix.length;
  for (; sent < before; sent += pad.length) await chunk(pad);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer after ${sent} bytes of a chunked body`)), 10_000).unref());
  const response = await Promise.race([answered, timeout]);
  for (; sent < total && !socket.destroyed; sent += pad.length) await chunk(pad);
  if (!socket.destroyed) await write('0\r\n\r\n');
  socket.end();
  await closed;
  return response;
};

describe('size limits hold for every transport', () => {
  const TWENTY_MB = 20 * 1024 * 1024;

  it('a chunked 20 MB body is answered 413 after the first MAX_BODY_BYTES, without reading the rest first, on /graphql and on REST', async () => {
    const graphql = await chunkedUpload('/graphql', '{"query":"{ __typename }","variables":{"pad":"', 4 * LIMIT, TWENTY_MB);
    expect(graphql.status).toBe(413);
    expect(openRouterError(graphql.body)).toMatchObject({ error: { code: 413, metadata: { error_type: 'payload_too_large', limit: LIMIT } } });
    expect(await health()).toBe(200);
    const rest = await chunkedUpload('/api/v1/chat/completions', '{"model":"switchyard/demo","messages":[{"role":"user","content":"', 4 * LIMIT, TWENTY_MB);
    expect(rest.status).toBe(413);
    expect(openRouterError(rest.body).error.metadata.error_type).toBe('payload_too_large');
    expect(await health()).toBe(200);
  });

  it('a WebSocket message over the limit closes the socket with 1009 before it is parsed; the server answers on', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${h.port}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(LIMIT) } }));
    expect(await closed).toBe(1009);
    expect(await health()).toBe(200);
    // A message within the limit on a new socket is read as usual.
    const next = new WebSocket(`ws://127.0.0.1:${h.port}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve, reject) => next.once('open', resolve).once('error', reject));
    const ack = new Promise<string>((resolve) => next.once('message', (data: Buffer) => resolve(data.toString())));
    next.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${ADMIN_KEY}` } }));
    expect(JSON.parse(await ack)).toMatchObject({ type: 'connection_ack' });
    next.close();
  });
});

describe('the GraphiQL page', () => {
  const page = (headers: Record<string, string>) =>
    new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: h.port, path: '/graphql', headers: { accept: 'text/html', ...headers } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      })
        .on('error', reject)
        .end();
    });

  it('is served compressed per Accept-Encoding, with an ETag and Cache-Control, and 304 when unchanged', async () => {
    const plain = await page({});
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    const html = plain.body.toString('utf8');
    expect(html).toContain('GraphiQL');

    const br = await page({ 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.body.length).toBeLessThan(plain.body.length / 3);
    expect(brotliDecompressSync(br.body).toString('utf8')).toBe(html);

    const gzip = await page({ 'accept-encoding': 'gzip;q=1, br;q=0.5' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzip.body).toString('utf8')).toBe(html);

    for (const res of [plain, br, gzip]) {
      expect(res.headers.etag).toBe(plain.headers.etag);
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers.vary).toMatch(/Accept-Encoding/);
    }
    const unchanged = await page({ 'accept-encoding': 'br', 'if-none-match': plain.headers.etag! });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body.length).toBe(0);
    expect((await page({ 'if-none-match': 'W/"something-else"' })).status).toBe(200);
  });
});

describe('DATA_DIR is private', () => {
  /** Every folder and file under `dir` with its permission bits. */
  const modes = (dir: string): Record<string, string> => {
    const out: Record<string, string> = { '.': (statSync(dir).mode & 0o777).toString(8) };
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      out[path.slice(dir.length + 1)] = (statSync(path).mode & 0o777).toString(8);
    }
    return out;
  };
  const expectPrivate = (dir: string) => {
    const found = modes(dir);
    for (const [path, mode] of Object.entries(found)) {
      const isDir = path === '.' || statSync(join(dir, path)).isDirectory();
      expect(`${path} ${mode}`).toBe(`${path} ${isDir ? '700' : '600'}`);
    }
    return Object.keys(found);
  };

  it('a fresh data folder is created 0700 and every file in it (databases, their WAL and SHM, the lock) 0600', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'switchyard-perm-'));
    const dir = join(parent, 'data');
    const app = await startHarness({}, dir);
    try {
      const { body } = await app.gql(`mutation { openAccount(name: "Perm") { ... on OpenAccountPayload { initialKey { secret } } } }`);
      expect((await fetch(`${app.url}/api/v1/credits`, { headers: { authorization: `Bearer ${body.data.openAccount.initialKey.secret}` } })).status).toBe(200);
      const files = expectPrivate(dir);
      expect(files).toEqual(expect.arrayContaining(['events.db', 'events.db-wal', 'events.db-shm', 'readmodels.db', 'readmodels.db-wal', 'readmodels.db-shm', 'readmodels.db.lock']));
    } finally {
      await app.stop();
    }
    expectPrivate(dir);
    rmSync(parent, { recursive: true, force: true });
  });

  it('a data folder and databases made with a wider mode are narrowed at start', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'switchyard-perm-'));
    const dir = join(parent, 'data');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'events.db'), '', { mode: 0o644 });
    chmodSync(join(dir, 'events.db'), 0o644);
    const app = await startHarness({}, dir);
    try {
      expectPrivate(dir);
    } finally {
      await app.stop();
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
