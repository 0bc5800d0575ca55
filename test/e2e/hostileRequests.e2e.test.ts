/**
 * What a hostile or broken client sends, answered as the API's own errors and recorded as nothing it chose: HTTP
 * that node's parser refuses, bodies cut off mid-way, HEAD, a wrong method on a skin's path, unknown fields in
 * `provider`, and text the demo model must not split inside a character.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generationStream } from '../../src/modules/generations/generation.events.js';
import { createLogger } from '../../src/logger.js';
import { parseResponse, rawExchange } from '../support/rawHttp.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

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
  h = await startGatewayHarness({}, { logger: createLogger('warn', sink) });
  user = await h.openAccount({ credits: 1_000_000_000 });
});
afterAll(async () => {
  await h.stop();
});

const errorOf = (body: Buffer) => JSON.parse(body.toString('utf8')) as { error: { code: number; message: string; metadata: { error_type: string } } };

describe("what node's HTTP parser refuses is answered in the API's JSON error shape", () => {
  const CASES = [
    { name: 'headers over the size limit', request: `GET /api/v1/models HTTP/1.1\r\nhost: x\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431 },
    { name: 'Transfer-Encoding and Content-Length together', request: 'POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', status: 400 },
    { name: 'a malformed chunk size', request: () => `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${user.key}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, status: 400 },
    { name: 'HTTP/1.1 without a Host', request: 'GET /api/v1/models HTTP/1.1\r\nconnection: close\r\n\r\n', status: 400 },
  ];

  it.each(CASES)('$name → $status', async ({ request, status }) => {
    const res = parseResponse(await rawExchange(h.port, typeof request === 'string' ? request : request()));
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(errorOf(res.body).error).toMatchObject({ code: status, metadata: { error_type: 'invalid_request' } });
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
  });
});

describe('a request body cut off', () => {
  it('is the client leaving, not an error of the server: nothing logged, and the next request answers', async () => {
    const before = logged.length;
    for (let i = 0; i < 5; i++) {
      // Declares 1,000 bytes, sends 20, closes: the server is left reading a body that never comes.
      await rawExchange(h.port, `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${user.key}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":"switchyard`, 200).catch(() => undefined);
    }
    const res = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(200);
    expect(logged.slice(before).filter((line) => line.level >= 50)).toEqual([]);
  });
});

describe('methods', () => {
  it('HEAD is answered as GET, without a body', async () => {
    const res = await fetch(`${h.url}/api/v1/models`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.text()).toBe('');
  });

  it("a wrong method on a skin's path is a 405 in that API's shape (Anthropic's on /messages, OpenAI's on /responses)", async () => {
    const messages = await fetch(`${h.url}/api/v1/messages`);
    expect(messages.status).toBe(405);
    expect(messages.headers.get('allow')).toBe('POST');
    expect(await messages.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('Method GET not allowed') } });
    const responses = await fetch(`${h.url}/api/v1/responses`, { method: 'DELETE' });
    expect(responses.status).toBe(405);
    expect(await responses.json()).toMatchObject({ error: { type: 'invalid_request_error', code: expect.any(String), message: expect.stringContaining('Method DELETE not allowed') } });
  });
});

describe('the generation record keeps what the gateway understood of `provider`', () => {
  it('its fields as sent; an unknown one, however large, or a __proto__, is a 400 naming it (at most 64 characters of it)', async () => {
    for (const [json, param] of [
      [`{"allow_fallbacks": true, "junk": {"deep": "${'x'.repeat(50_000)}"}}`, 'provider.junk'],
      ['{"sort": "price", "__proto__": {"polluted": true}}', 'provider.__proto__'],
      [`{"${'k'.repeat(10_000)}": 1}`, `provider.${'k'.repeat(64)}`],
    ] as const) {
      const refused = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }], provider: JSON.parse(json) as unknown });
      expect(refused.status).toBe(400);
      const { error } = (await refused.json()) as { error: { message: string; metadata: { param: string } } };
      expect(error.metadata.param).toBe(param);
      expect(error.message.length).toBeLessThan(400);
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    }
    const provider = { allow_fallbacks: true, sort: 'price' };
    const res = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }], provider });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    await h.running.core.gateway.idle();
    const [requested] = await h.running.core.eventStore.readStream(generationStream(id));
    expect(requested!.type).toBe('GenerationRequested');
    expect((requested!.data as { provider: unknown }).provider).toEqual({ allow_fallbacks: true, sort: 'price' });
  });
});

describe('the demo model', () => {
  const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

  it('never splits a character made of a surrogate pair, in a stream or in a quote cut at 160 characters', async () => {
    const stream = await h.chat(user.key, { model: 'switchyard/demo', stream: true, messages: [{ role: 'user', content: '😀😀😀😀😀😀😀 🎉🎉🎉' }] });
    const deltas = (await stream.text())
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => (JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '');
    expect(deltas.length).toBeGreaterThan(3);
    for (const delta of deltas) expect(delta).not.toMatch(loneSurrogate);
    expect(deltas.join('')).toContain('😀😀😀😀😀😀😀 🎉🎉🎉');

    const cut = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: `${'a'.repeat(156)}😀 and more` }] });
    const content = ((await cut.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    expect(content).not.toMatch(loneSurrogate);
    expect(content).toContain(`"${'a'.repeat(156)}..."`);
  });
});
