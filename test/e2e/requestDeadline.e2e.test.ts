/**
 * The deadline for receiving a request (HTTP_REQUEST_TIMEOUT_MS): a client that declares a body and stops sending, or
 * never finishes its headers, is answered 408 in the API's JSON error shape and its connection closed, over a raw
 * socket; a slow body that arrives whole within the deadline is served.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequestTimeoutMs, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { parseResponse, parseResponses, rawExchange } from '../support/rawHttp.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const DEADLINE_MS = 600;
let h: GatewayHarness;
let user: Account;
/** Every line the server logged at warn or above. */
const logged: { level: number; msg: string }[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logged.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  h = await startGatewayHarness({ HTTP_REQUEST_TIMEOUT_MS: String(DEADLINE_MS) }, { logger: createLogger('warn', sink) });
  user = await h.openAccount({ credits: 1_000_000_000 });
});
afterAll(async () => {
  await h.stop();
});

const errorOf = (body: Buffer) => JSON.parse(body.toString('utf8')) as { error: { code: number; message: string; metadata: { error_type: string; request_id: string } } };

describe('a request that does not arrive in time', () => {
  it('a body shorter than its Content-Length is answered 408 in the JSON error shape once the deadline passes, and closed', async () => {
    const started = Date.now();
    const bytes = await rawExchange(
      h.port,
      `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${user.key}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`,
      10_000,
    );
    const elapsed = Date.now() - started;
    const res = parseResponse(bytes);
    expect(res.status).toBe(408);
    expect(res.headers['content-type']).toContain('application/json');
    expect(res.headers.connection).toBe('close');
    expect(errorOf(res.body).error).toMatchObject({ code: 408, message: 'The request did not arrive in time' });
    expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(elapsed).toBeLessThan(DEADLINE_MS * 4);
  });

  it('a request answered before its body came (a 401: no key) gets that one answer: at the deadline its connection is closed, with no 408', async () => {
    const bytes = await rawExchange(h.port, `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":`, 10_000);
    const answers = parseResponses(bytes);
    expect(answers.map((res) => res.status)).toEqual([401]);
    expect(errorOf(answers[0]!.body).error.code).toBe(401);
  });

  it('headers that never end are answered 408 the same way', async () => {
    const res = parseResponse(await rawExchange(h.port, `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${user.key}\r\n`, 10_000));
    expect(res.status).toBe(408);
    expect(errorOf(res.body).error.code).toBe(408);
  });

  it('a slow body that arrives whole before the deadline is served, and the server logs nothing for the timeouts', async () => {
    const body = JSON.stringify({ model: 'switchyard/demo', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] });
    const head = `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${user.key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect(h.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.write(head);
      // Half the body now, the rest well inside the deadline.
      socket.write(body.slice(0, 20));
      setTimeout(() => socket.write(body.slice(20)), DEADLINE_MS / 3);
    });
    const res = parseResponse(bytes);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString('utf8'))).toMatchObject({ object: 'chat.completion', model: 'switchyard/demo' });
    expect(logged.filter((line) => line.level >= 40)).toEqual([]);
  });
});

describe('HTTP_REQUEST_TIMEOUT_MS', () => {
  it('defaults to 60 s, longer when MAX_BODY_BYTES needs it at a slow link, and refuses nonsense', () => {
    expect(httpRequestTimeoutMs(loadConfig({}))).toBe(60_000);
    expect(httpRequestTimeoutMs(loadConfig({ MAX_BODY_BYTES: String(10 * 1_048_576) }))).toBe(524_288);
    expect(httpRequestTimeoutMs(loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '120000' }))).toBe(120_000);
    expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: 'soon' })).toThrow(/HTTP_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '10' })).toThrow(/HTTP_REQUEST_TIMEOUT_MS/);
  });
});
