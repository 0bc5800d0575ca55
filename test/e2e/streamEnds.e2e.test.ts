/**
 * Where an upstream stream ends, in each protocol: OpenAI's `[DONE]`, Anthropic's `message_stop` (its answer ends at
 * the `message_delta` stop reason), Gemini's chunk with a finishReason (its usageMetadata comes in that chunk).
 * What an upstream sends after that end is not the answer: never forwarded, never billed, and its connection closed.
 * A stream that ends (cleanly) before that end, without a finish reason, is an answer that could not be read: the
 * backup is tried before the first token, the same endpoint is not asked again, and after tokens the client gets the
 * error chunk of any broken stream, billed as a cut one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProtocol, FakeProvider } from '../support/fakeProviders.js';
import { contentOf, costOf, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 1000, completion: 2000 };
const DEAR = { prompt: 3000, completion: 9000 };
const USAGE = { promptTokens: 10, completionTokens: 5 };
const MESSAGES = [{ role: 'user', content: 'Say hello to the whole gateway today' }];
const FULL_ANSWER = 'Echo: Say hello to the whole gateway today';
const PROTOCOLS = ['openai', 'anthropic', 'gemini'] as const;

let h: GatewayHarness;
let user: Account;
/** Per protocol: a model served by one endpoint, and a model served by that protocol first and a dearer OpenAI backup. */
const alone: Partial<Record<FakeProtocol, FakeProvider>> = {};
const primary: Partial<Record<FakeProtocol, FakeProvider>> = {};
const backup: Partial<Record<FakeProtocol, FakeProvider>> = {};

beforeAll(async () => {
  // A stream left open after its end would only be ended by the idle timeout: short enough that a gateway that waited
  // for it fails the assertions below rather than the test's time limit.
  h = await startGatewayHarness({ GATEWAY_STREAM_IDLE_TIMEOUT_MS: '5000', GATEWAY_MAX_ATTEMPTS: '3' });
  user = await h.openAccount({ credits: 10_000_000_000 });
  for (const protocol of PROTOCOLS) {
    alone[protocol] = await h.fakeEndpoint({ protocol, slug: `${protocol}-ends`, model: `test/${protocol}-ends`, prices: PRICES });
    primary[protocol] = await h.fakeEndpoint({ protocol, slug: `${protocol}-short`, model: `test/${protocol}-short`, prices: PRICES });
    backup[protocol] = await h.fakeEndpoint({ protocol: 'openai', slug: `${protocol}-short-backup`, model: `test/${protocol}-short`, prices: DEAR });
    for (const fake of [alone[protocol]!, primary[protocol]!, backup[protocol]!]) fake.setDefault({ usage: USAGE });
  }
});
afterAll(async () => {
  await h.stop();
});

const finishReasons = (events: any[]): string[] =>
  events.flatMap((e) => (e.choices ?? []).map((c: { finish_reason: string | null }) => c.finish_reason)).filter((r): r is string => r !== null);

describe.each(PROTOCOLS)('%s: what follows the end of the stream', (protocol) => {
  it('is not forwarded nor billed (the usage reported up to the end is), and the upstream connection is closed', async () => {
    const fake = alone[protocol]!;
    const before = await h.settledBalance(user.accountId);
    // After the end: more text, and a usage report of 900 completion tokens; then the response stays open.
    fake.script({ usage: USAGE, afterEnd: { text: ' AFTER THE END', completionTokens: 900 }, keepOpen: true });
    const res = await h.chat(user.key, { model: `test/${protocol}-ends`, messages: MESSAGES, stream: true });
    const id = res.headers.get('x-generation-id')!;
    const { events, done } = await readSseResponse(res);
    expect(contentOf(events)).toBe(FULL_ANSWER);
    expect(finishReasons(events)).toEqual(['stop']);
    expect(done).toBe(true);
    expect(events.at(-1).usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 5 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 10, 5));
    expect(await h.generation(user.key, id)).toMatchObject({ tokens_completion: 5, switchyard: { status: 'completed', usage_source: 'provider' } });
    // The gateway stopped reading at what came after the end: the connection it held open was closed by the gateway.
    expect(await fake.requests.at(-1)!.outcome).toBe('aborted');
  });
});

describe('Anthropic: the answer ends at the stop reason', () => {
  it('text after the message_delta stop reason (before message_stop) is not forwarded; a later usage report still counts', async () => {
    const fake = alone.anthropic!;
    const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const body = [
      event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'fake-model', content: [], usage: { input_tokens: 10, output_tokens: 1 } } }),
      event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'the answer' } }),
      event('content_block_stop', { index: 0 }),
      event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }),
      event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: ' AFTER THE STOP REASON' } }),
      event('message_delta', { delta: {}, usage: { output_tokens: 4 } }),
      event('message_stop', {}),
    ].join('');
    const before = await h.settledBalance(user.accountId);
    fake.script({ status: 200, headers: { 'content-type': 'text/event-stream' }, body });
    const res = await h.chat(user.key, { model: 'test/anthropic-ends', messages: MESSAGES, stream: true });
    const { events, done } = await readSseResponse(res);
    expect(contentOf(events)).toBe('the answer');
    expect(finishReasons(events)).toEqual(['stop']);
    expect(done).toBe(true);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 10, 4));
  });
});

describe('a stream that ends before its end, without a finish reason', () => {
  it.each(['anthropic', 'gemini'] as const)('%s: before the first token, the backup answers, the primary asked once and not billed', async (protocol) => {
    const sent = primary[protocol]!.requests.length;
    const before = await h.settledBalance(user.accountId);
    // Anthropic: message_start, content_block_start, ping, then the end of the body. Gemini: only a usage report.
    primary[protocol]!.script(
      protocol === 'anthropic'
        ? { usage: USAGE, endAfterChunks: 3 }
        : { status: 200, headers: { 'content-type': 'text/event-stream' }, body: `data: ${JSON.stringify({ usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 0, totalTokenCount: 10 } })}\r\n\r\n` },
    );
    const res = await h.chat(user.key, { model: `test/${protocol}-short`, messages: MESSAGES, stream: true });
    const id = res.headers.get('x-generation-id')!;
    const { events, done } = await readSseResponse(res);
    expect(contentOf(events)).toBe(FULL_ANSWER);
    expect(done).toBe(true);
    expect(events.at(-1).provider).toBe(`${protocol}-short-backup`);
    expect(primary[protocol]!.requests.length - sent).toBe(1);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(DEAR, 10, 5));
    const record = await h.generation(user.key, id);
    expect(record.switchyard.attempts).toMatchObject([
      { attempt: 1, providerSlug: `${protocol}-short`, ok: false, errorCode: 'malformed_response' },
      { attempt: 2, providerSlug: `${protocol}-short-backup`, ok: true },
    ]);
  });

  it.each(['anthropic', 'gemini'] as const)('%s: alone, a 502 saying the answer could not be read and why, asked once, nothing charged', async (protocol) => {
    const fake = alone[protocol]!;
    const sent = fake.requests.length;
    const before = await h.settledBalance(user.accountId);
    fake.setDefault(
      protocol === 'anthropic'
        ? { usage: USAGE, endAfterChunks: 3 }
        : { status: 200, headers: { 'content-type': 'text/event-stream' }, body: `data: ${JSON.stringify({ usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 0, totalTokenCount: 10 } })}\r\n\r\n` },
    );
    try {
      const res = await h.chat(user.key, { model: `test/${protocol}-ends`, messages: MESSAGES, stream: true });
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
      expect(body.error.message).toBe(`${protocol}-ends sent a response that could not be read for test/${protocol}-ends (HTTP 502, server): the stream ended before the answer did (no finish reason, no end marker)`);
      expect(body.error.metadata).toMatchObject({ error_type: 'server', provider_name: `${protocol}-ends`, attempts: 1 });
      expect(fake.requests.length - sent).toBe(1);
    } finally {
      fake.setDefault({ usage: USAGE });
    }
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(0);
    expect(after.reserved).toBe(0);
  });

  it('anthropic: after tokens reached the client, the error chunk names it, billed as a stream cut at the same point, asked once', async () => {
    const fake = alone.anthropic!;
    // message_start, content_block_start, ping, then the first two words: ended cleanly, or cut (the connection broken).
    const run = async (how: 'endAfterChunks' | 'cutAfterChunks') => {
      const sent = fake.requests.length;
      const before = await h.settledBalance(user.accountId);
      fake.script({ usage: USAGE, [how]: 5 });
      const res = await h.chat(user.key, { model: 'test/anthropic-ends', messages: MESSAGES, stream: true });
      const { events, done } = await readSseResponse(res);
      expect(contentOf(events)).toBe('Echo: Say ');
      expect(done).toBe(false);
      expect(fake.requests.length - sent).toBe(1);
      const after = await h.settledBalance(user.accountId);
      expect(after.reserved).toBe(0);
      return { last: events.at(-1), charged: after.settled - before.settled };
    };
    const ended = await run('endAfterChunks');
    const cut = await run('cutAfterChunks');
    expect(ended.last.choices[0].finish_reason).toBe('error');
    expect(ended.last.error.message).toBe('anthropic-ends sent a response that could not be read for test/anthropic-ends (HTTP 502, server): the stream ended before the answer did (no finish reason, no end marker)');
    expect(ended.last.error.metadata).toMatchObject({ error_type: 'server', provider_name: 'anthropic-ends' });
    expect(ended.charged).toBeGreaterThan(0);
    expect(ended.charged).toBe(cut.charged);
  });
});
