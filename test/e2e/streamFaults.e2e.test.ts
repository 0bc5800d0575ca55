/**
 * Provider faults of the reliability catalogue (shared/reference/reliability.md §6, T-STREAM-*), driven through the
 * started app against scripted fake upstreams: a stream cut at any byte after its first token, keep-alive comments
 * that must not keep a stalled stream (or a silent first token) alive, and what is retried and what is not.
 * The request deadline is long here: a stream that only ends because of it would time the test out instead. So are
 * the harness's first-token and idle timeouts (a pause of a loaded host must not turn a fault into a timeout and a
 * retry); the keep-alive tests, about those timeouts, run on a harness of their own with short ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { contentOf, costOf, promptEstimate, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'Say hello to the whole gateway today' }];
const FULL_ANSWER = 'Echo: Say hello to the whole gateway today';
const CHEAP = { prompt: 100, completion: 200 };
const DEAR = { prompt: 300, completion: 900 };
const USAGE = { promptTokens: 50, completionTokens: 10 };

let h: GatewayHarness;
let user: Account;

beforeAll(async () => {
  h = await startGatewayHarness({
    GATEWAY_REQUEST_TIMEOUT_MS: '120000',
    GATEWAY_MAX_ATTEMPTS: '3',
    GATEWAY_BREAKER_FAILURES: '3',
    GATEWAY_BREAKER_COOLDOWN_MS: '600000',
  });
  user = await h.openAccount({ credits: 10_000_000_000 });
});
afterAll(async () => {
  await h.stop();
});

/** What the record of a generation says of its usage's source and status (`GET /api/v1/generation`). */
const recordOf = async (id: string) => (await h.generation(user.key, id)) as { switchyard: { usage_source: string; status: string } };

describe('T-STREAM-1: a stream cut at a random byte after the first token', () => {
  let fake: FakeProvider;
  beforeAll(async () => {
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'cut-bytes', model: 'test/cut-bytes', prices: CHEAP });
  });

  /** The upstream's event stream for this request, as the gateway will be sent it (the fake is deterministic). */
  const upstreamStream = async () => {
    const res = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer fake-upstream-key' },
      body: JSON.stringify({ model: 'fake-model', messages: MESSAGES, stream: true, stream_options: { include_usage: true } }),
    });
    return res.text();
  };

  it('ends with a terminal error event (top-level error, finish_reason "error"), charges the estimate of what was sent (usage_source estimated), and resolves the reservation', async () => {
    const raw = await upstreamStream();
    const events = raw.split('\n\n').map((e) => e.length + 2);
    const starts = events.map((_, i) => events.slice(0, i).reduce((a, b) => a + b, 0));
    // Event 0 is the role chunk, 1 the first token; the finish reason's event comes after the last token's.
    const finish = raw.split('\n\n').findIndex((e) => e.includes('"finish_reason":"stop"'));
    expect(finish).toBeGreaterThan(3);
    // Cut points anywhere from just after the first token's event to just before the finish reason's, inside events
    // and on their boundaries (a margin of a few bytes: the fake's ids grow a digit now and then).
    const first = starts[2]! + 4;
    const last = starts[finish]! - 4;
    const cuts = [first, last, starts[3]!, ...Array.from({ length: 5 }, () => first + Math.floor(Math.random() * (last - first)))];
    for (const cutAtByte of cuts) {
      const before = await h.settledBalance(user.accountId);
      fake.script({ usage: USAGE, cutAtByte });
      const res = await h.chat(user.key, { model: 'test/cut-bytes', messages: MESSAGES, stream: true });
      expect(res.status, `cut at ${cutAtByte}`).toBe(200);
      const { events: received, done } = await readSseResponse(res);
      const text = contentOf(received);
      expect(text.length, `cut at ${cutAtByte}`).toBeGreaterThan(0);
      expect(FULL_ANSWER.startsWith(text) && text !== FULL_ANSWER, `cut at ${cutAtByte}: ${text}`).toBe(true);
      expect(done).toBe(false);
      const terminal = received.at(-1);
      expect(terminal.choices[0].finish_reason).toBe('error');
      expect(terminal.error).toMatchObject({ message: expect.stringContaining('cut-bytes'), metadata: { provider_name: 'cut-bytes' } });
      const after = await h.settledBalance(user.accountId);
      expect(after.settled - before.settled, `cut at ${cutAtByte}`).toBe(costOf(CHEAP, promptEstimate(MESSAGES), Math.ceil(text.length / 4)));
      expect(after.reserved).toBe(0);
      expect((await recordOf(res.headers.get('x-generation-id')!)).switchyard.usage_source).toBe('estimated');
    }
    // Never tried again after a token reached the client: one upstream call per request (and the probes).
    expect(fake.requests).toHaveLength(1 + cuts.length);
  });
});

describe('T-STREAM-2: SSE keep-alive comments are not progress', () => {
  // Timeouts short enough to wait for: 1 s to the first token, 300 ms between chunks.
  let h: GatewayHarness;
  let user: Account;
  beforeAll(async () => {
    h = await startGatewayHarness({ GATEWAY_REQUEST_TIMEOUT_MS: '120000', GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '1000', GATEWAY_STREAM_IDLE_TIMEOUT_MS: '300' });
    user = await h.openAccount({ credits: 10_000_000_000 });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('after the first token, comments alone do not reset the idle timer: the stream ends with a timeout error event, charged for what came', async () => {
    const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'chatty', model: 'test/chatty', prices: CHEAP });
    const before = await h.settledBalance(user.accountId);
    // Role chunk and two tokens, then only ": OPENROUTER PROCESSING" every 50 ms, for as long as the gateway listens.
    fake.script({ commentsAfter: 3 });
    const res = await h.chat(user.key, { model: 'test/chatty', messages: MESSAGES, stream: true });
    const { events, done } = await readSseResponse(res);
    const text = contentOf(events);
    expect(text).toBe('Echo: Say ');
    expect(done).toBe(false);
    expect(events.at(-1)).toMatchObject({ choices: [{ finish_reason: 'error' }], error: { metadata: { error_type: 'timeout', provider_name: 'chatty' } } });
    expect(await fake.requests.at(-1)!.outcome).toBe('aborted');
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(CHEAP, promptEstimate(MESSAGES), Math.ceil(text.length / 4)));
    expect(after.reserved).toBe(0);
  });

  it('before the first byte of an answer, comments do not hold off the first-token timeout: the fallback serves, charged at its price only', async () => {
    const silent = await h.fakeEndpoint({ protocol: 'openai', slug: 'silent-chatty', model: 'test/hang-fallback', prices: CHEAP });
    const backup = await h.fakeEndpoint({ protocol: 'openai', slug: 'hang-backup', model: 'test/hang-fallback', prices: DEAR });
    silent.setDefault({ commentsAfter: 0 });
    backup.setDefault({ usage: USAGE });
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model: 'test/hang-fallback', messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    const { events } = await readSseResponse(res);
    expect(contentOf(events)).toBe(FULL_ANSWER);
    expect(await silent.requests.at(-1)!.outcome).toBe('aborted');
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(DEAR, USAGE.promptTokens, USAGE.completionTokens));
    expect(after.reserved).toBe(0);
  });
});

describe('T-STREAM-3: what is retried, and how often', () => {
  it.each([400, 401, 402, 422])('an upstream %i is not asked again (streamed or not), and nothing is charged', async (status) => {
    const fake = await h.fakeEndpoint({ protocol: 'openai', slug: `refuses-${status}`, model: `test/refuses-${status}`, prices: CHEAP });
    for (const stream of [false, true]) {
      const before = await h.settledBalance(user.accountId);
      const calls = fake.requests.length;
      fake.script({ status, body: { error: { message: `scripted ${status}` } } });
      const res = await h.chat(user.key, { model: `test/refuses-${status}`, messages: MESSAGES, stream });
      expect(res.status, `${status}, stream: ${stream}`).toBeGreaterThanOrEqual(400);
      const { error } = (await res.json()) as { error: { metadata: Record<string, unknown> } };
      expect(error.metadata).toMatchObject({ provider_name: `refuses-${status}`, attempts: 1 });
      expect(fake.requests.length - calls, `${status}, stream: ${stream}`).toBe(1);
      const after = await h.settledBalance(user.accountId);
      expect(after.settled).toBe(before.settled);
      expect(after.reserved).toBe(0);
    }
  });

  it('a stream broken after its first token is not asked again, even of the only endpoint', async () => {
    const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'lone-cut', model: 'test/lone-cut', prices: CHEAP });
    fake.script({ cutAfterChunks: 3 });
    const res = await h.chat(user.key, { model: 'test/lone-cut', messages: MESSAGES, stream: true });
    const { events } = await readSseResponse(res);
    expect(events.at(-1).choices[0].finish_reason).toBe('error');
    await h.settledBalance(user.accountId);
    expect(fake.requests).toHaveLength(1);
  });

  it('a 429 storm with Retry-After: at most GATEWAY_MAX_ATTEMPTS calls, an endpoint asked again only after its Retry-After, then the 429 reaches the client; the breakers open', async () => {
    const a = await h.fakeEndpoint({ protocol: 'openai', slug: 'storm-a', model: 'test/storm', prices: CHEAP });
    const b = await h.fakeEndpoint({ protocol: 'openai', slug: 'storm-b', model: 'test/storm', prices: DEAR });
    for (const fake of [a, b]) fake.setDefault({ status: 429, headers: { 'retry-after': '1' } });
    const res = await h.chat(user.key, { model: 'test/storm', messages: MESSAGES });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    const calls = [...a.requests.map((r) => ({ at: r.receivedAt, to: 'a' })), ...b.requests.map((r) => ({ at: r.receivedAt, to: 'b' }))].sort((x, y) => x.at - y.at);
    // Three attempts (GATEWAY_MAX_ATTEMPTS=3) though each endpoint could be tried twice: a, b, then a again once its
    // Retry-After had passed.
    expect(calls.map((c) => c.to)).toEqual(['a', 'b', 'a']);
    expect(calls[2]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1_000);
    expect((await h.settledBalance(user.accountId)).reserved).toBe(0);
    // Two more such requests: each endpoint has failed three times (GATEWAY_BREAKER_FAILURES) and its breaker is open.
    for (let i = 0; i < 2; i++) expect((await h.chat(user.key, { model: 'test/storm', messages: MESSAGES })).status).toBe(429);
    await h.running.core.gateway.idle();
    const { data } = (await (await fetch(`${h.url}/api/v1/models/test/storm/endpoints`)).json()) as { data: { endpoints: { tag: string; circuit_breaker: string }[] } };
    expect(data.endpoints.map((e) => [e.tag, e.circuit_breaker]).sort()).toEqual([
      ['storm-a', 'open'],
      ['storm-b', 'open'],
    ]);
  });
});
