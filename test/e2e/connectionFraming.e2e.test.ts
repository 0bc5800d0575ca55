/**
 * One keep-alive connection carrying several requests, over a raw socket: every answer in flight is written whole and
 * in order before the server answers what its parser refused after it (garbage, headers too large, bytes after a
 * `Connection: close` request) or closes the connection; a call is never charged for an answer it was not written.
 * A streamed answer honours the client's `Connection: close` and HTTP/1.0 as a JSON one does.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, within } from '../support/eventually.js';
import { costOf, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { parseResponses, rawExchange, type RawResponse } from '../support/rawHttp.js';

const MODEL = 'test/framing';
const PRICES = { prompt: 150, completion: 600 };
const USAGE = { promptTokens: 10, completionTokens: 5 };
const ONE_CALL = costOf(PRICES, USAGE.promptTokens, USAGE.completionTokens);

let h: GatewayHarness;
let upstream: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  upstream = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-framing', model: MODEL, prices: PRICES });
  // Each answer takes a while, so that what follows a request on its connection arrives while it is being answered.
  upstream.setDefault({ usage: USAGE, latencyMs: 300 });
});
afterAll(async () => {
  await h.stop();
});

/** A chat request as its bytes, with extra header lines (`connection: close`), in HTTP/1.1 unless told. */
const chatRequest = (user: Account, content: string, options: { headers?: string[]; stream?: boolean; version?: string } = {}) => {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content }], ...(options.stream && { stream: true }) });
  const headers = [`host: x`, `authorization: Bearer ${user.key}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, ...(options.headers ?? [])];
  return `POST /api/v1/chat/completions HTTP/${options.version ?? '1.1'}\r\n${headers.map((line) => `${line}\r\n`).join('')}\r\n${body}`;
};

const answerOf = (res: RawResponse) => (JSON.parse(res.body.toString('utf8')) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
const errorOf = (res: RawResponse) => (JSON.parse(res.body.toString('utf8')) as { error: { code: number; message: string } }).error;

/** Sends `bytes` in one write and reads every answer until the server closes the connection. */
const exchange = async (bytes: string) => parseResponses(await rawExchange(h.port, bytes, 15_000));

describe('what the parser refuses after a request waits for that request’s answer', () => {
  it('garbage after a request: the answer is written, then a 400, then the connection closes; one call, charged once', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = upstream.requests.length;
    const answers = await exchange(chatRequest(user, 'first') + 'GARBAGE\r\n\r\n');
    expect(answers.map((res) => res.status)).toEqual([200, 400]);
    expect(answerOf(answers[0]!)).toBe('Echo: first');
    expect(errorOf(answers[1]!)).toMatchObject({ code: 400, message: expect.stringContaining('HPE_INVALID_METHOD') });
    expect(answers[1]!.headers.connection).toBe('close');
    expect(upstream.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('garbage sent while the call is running (a later write): the same, the answer first', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = upstream.requests.length;
    const socket = connect(h.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = once(socket, 'close');
    socket.write(chatRequest(user, 'running'));
    await eventually('the upstream call', () => upstream.requests.length > before);
    socket.write('GARBAGE\r\n\r\n');
    await within('the connection to close', closed);
    const answers = parseResponses(Buffer.concat(chunks));
    expect(answers.map((res) => res.status)).toEqual([200, 400]);
    expect(answerOf(answers[0]!)).toBe('Echo: running');
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('headers too large after a request: the answer, then a 431', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const huge = `GET /health HTTP/1.1\r\nhost: x\r\nx-pad: ${'a'.repeat(70_000)}\r\n\r\n`;
    const answers = await exchange(chatRequest(user, 'second') + huge);
    expect(answers.map((res) => res.status)).toEqual([200, 431]);
    expect(answerOf(answers[0]!)).toBe('Echo: second');
    expect(errorOf(answers[1]!).code).toBe(431);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('a request after one that said `Connection: close` is not read: the first is answered and the connection closed', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = upstream.requests.length;
    const answers = await exchange(chatRequest(user, 'closing', { headers: ['connection: close'] }) + chatRequest(user, 'never read'));
    expect(answers.map((res) => res.status)).toEqual([200]);
    expect(answerOf(answers[0]!)).toBe('Echo: closing');
    expect(answers[0]!.headers.connection).toBe('close');
    expect(upstream.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('pipelined: two requests, the second saying `Connection: close`, then a third: both answered in order, the third not read', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = upstream.requests.length;
    const answers = await exchange(chatRequest(user, 'one') + chatRequest(user, 'two', { headers: ['connection: close'] }) + chatRequest(user, 'three'));
    expect(answers.map((res) => res.status)).toEqual([200, 200]);
    expect(answers.map(answerOf)).toEqual(['Echo: one', 'Echo: two']);
    expect(upstream.requests.length - before).toBe(2);
    expect((await h.settledBalance(user.accountId)).settled).toBe(2 * ONE_CALL);
  });

  it('garbage after a streamed request: the whole stream, then the 400', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const answers = await exchange(chatRequest(user, 'streamed words', { stream: true }) + 'GARBAGE\r\n\r\n');
    expect(answers.map((res) => res.status)).toEqual([200, 400]);
    expect(answers[0]!.body.toString('utf8')).toContain('data: [DONE]');
    const settled = (await h.settledBalance(user.accountId)).settled;
    expect(settled).toBeGreaterThan(0);
  });
});

describe('a streamed answer and the connection', () => {
  it('a client’s `Connection: close` is honoured: the stream says so and the connection closes after it', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const answers = await exchange(chatRequest(user, 'close after', { stream: true, headers: ['connection: close'] }));
    expect(answers.map((res) => res.status)).toEqual([200]);
    expect(answers[0]!.headers.connection).toBe('close');
    expect(answers[0]!.body.toString('utf8')).toContain('data: [DONE]');
  });

  it('an HTTP/1.0 client is told `Connection: close`, and the stream ends with the connection', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const answers = await exchange(chatRequest(user, 'old client', { stream: true, version: '1.0' }));
    expect(answers.map((res) => res.status)).toEqual([200]);
    expect(answers[0]!.headers.connection).toBe('close');
    expect(answers[0]!.headers['transfer-encoding']).toBeUndefined();
    expect(answers[0]!.body.toString('utf8')).toContain('data: [DONE]');
  });

  it('otherwise the connection is kept: a request after the stream on it is answered', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const answers = await exchange(chatRequest(user, 'keep it', { stream: true }) + 'GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    expect(answers.map((res) => res.status)).toEqual([200, 200]);
    expect(answers[0]!.headers.connection).toBe('keep-alive');
    expect(answers[0]!.body.toString('utf8')).toContain('data: [DONE]');
    expect(JSON.parse(answers[1]!.body.toString('utf8'))).toMatchObject({ status: 'ok' });
  });
});
