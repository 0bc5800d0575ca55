/**
 * A request one endpoint's protocol cannot carry (a system prompt alone for Anthropic and Gemini, an Anthropic thinking
 * budget that does not fit below max_tokens) is not the client's mistake: the model's other endpoints may carry it.
 * The adapter's refusal skips that endpoint (no attempt, no upstream call, nothing charged) and the router tries the
 * next one in the plan; only when no endpoint of the plan can carry it does the client get the 400, naming why.
 *
 * One model, three endpoints, cheapest first (the harness turns load balancing off): Anthropic, Gemini, then OpenAI,
 * each at its own price, so the charge says who served. GATEWAY_MAX_ATTEMPTS is 1: an endpoint skipped must not use up
 * the model's attempts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProtocol, FakeProvider } from '../support/fakeProviders.js';
import { costOf, readSseResponse, startGatewayHarness, type Account, type GatewayHarness, type Prices } from '../support/gatewayHarness.js';

const MIXED = 'test/mixed-protocols';
/** Served by Anthropic and Gemini endpoints only: nothing there takes a system prompt alone. */
const NO_OPENAI = 'test/no-openai';
const PRICES: Record<FakeProtocol, Prices> = {
  anthropic: { prompt: 100, completion: 200 },
  gemini: { prompt: 200, completion: 400 },
  openai: { prompt: 300, completion: 900 },
};
const USAGE = { promptTokens: 50, completionTokens: 10 };
const SYSTEM_ONLY = [{ role: 'system', content: 'You are a test.' }];
const NOTHING_TO_SEND = /messages: there is no user or assistant message with content to send/;

let h: GatewayHarness;
let user: Account;
const fakes = {} as Record<FakeProtocol, FakeProvider>;

beforeAll(async () => {
  h = await startGatewayHarness({ GATEWAY_MAX_ATTEMPTS: '1' });
  user = await h.openAccount({ credits: 10_000_000_000 });
  for (const protocol of ['anthropic', 'gemini', 'openai'] as const) {
    fakes[protocol] = await h.fakeEndpoint({ protocol, slug: `mixed-${protocol}`, model: MIXED, prices: PRICES[protocol] });
    fakes[protocol].setDefault({ usage: USAGE });
    if (protocol !== 'openai') await h.fakeEndpoint({ protocol, slug: `noopenai-${protocol}`, model: NO_OPENAI, prices: PRICES[protocol], reuse: fakes[protocol] });
  }
});
afterAll(async () => {
  await h.stop();
});

const sentCounts = () => ({ anthropic: fakes.anthropic.requests.length, gemini: fakes.gemini.requests.length, openai: fakes.openai.requests.length });

/** Sends `body` (streamed or not): the status, the provider that answered (or the error), the generation id. */
const send = async (body: Record<string, unknown>, stream: boolean) => {
  const res = await h.chat(user.key, { ...body, stream });
  const id = res.headers.get('x-generation-id');
  if (res.status !== 200) return { status: res.status, id, provider: null, error: ((await res.json()) as { error: { message: string; metadata: Record<string, unknown> } }).error };
  if (!stream) return { status: 200, id, provider: ((await res.json()) as { provider: string }).provider, error: null };
  const sse = await readSseResponse(res);
  expect(sse.done).toBe(true);
  return { status: 200, id, provider: sse.events.find((e) => typeof e.provider === 'string')?.provider as string, error: null };
};

describe.each([false, true])('streamed: %s', (stream) => {
  it('a system prompt alone skips the Anthropic and Gemini endpoints and is answered by the OpenAI one, charged its price', async () => {
    const before = await h.settledBalance(user.accountId);
    const sent = sentCounts();
    const got = await send({ model: MIXED, messages: SYSTEM_ONLY }, stream);
    expect(got.status, JSON.stringify(got.error)).toBe(200);
    expect(got.provider).toBe('mixed-openai');
    expect(sentCounts()).toEqual({ anthropic: sent.anthropic, gemini: sent.gemini, openai: sent.openai + 1 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES.openai, USAGE.promptTokens, USAGE.completionTokens));
    expect(after.reserved).toBe(0);
    // The endpoints that could not carry it were not attempts.
    const record = await h.generation(user.key, got.id!);
    expect(record.provider_name).toBe('mixed-openai');
    expect(record.switchyard.attempts).toMatchObject([{ attempt: 1, providerSlug: 'mixed-openai', ok: true }]);
    expect(record.switchyard.attempts).toHaveLength(1);
  });

  it("a thinking budget Anthropic cannot fit below max_tokens goes to the next endpoint (Gemini's), charged its price", async () => {
    const before = await h.settledBalance(user.accountId);
    const sent = sentCounts();
    const got = await send({ model: MIXED, messages: [{ role: 'user', content: 'think' }], max_tokens: 100, reasoning: { max_tokens: 2_000 } }, stream);
    expect(got.status, JSON.stringify(got.error)).toBe(200);
    expect(got.provider).toBe('mixed-gemini');
    expect(sentCounts()).toEqual({ anthropic: sent.anthropic, gemini: sent.gemini + 1, openai: sent.openai });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES.gemini, USAGE.promptTokens, USAGE.completionTokens));
    expect(after.reserved).toBe(0);
  });

  it('provider.order is kept: the refusing endpoints listed first are skipped, the next listed one answers', async () => {
    const sent = sentCounts();
    const got = await send({ model: MIXED, messages: SYSTEM_ONLY, provider: { order: ['mixed-gemini', 'mixed-anthropic', 'mixed-openai'] } }, stream);
    expect(got.status, JSON.stringify(got.error)).toBe(200);
    expect(got.provider).toBe('mixed-openai');
    expect(sentCounts()).toEqual({ anthropic: sent.anthropic, gemini: sent.gemini, openai: sent.openai + 1 });
  });

  it('allow_fallbacks: false leaves only the refusing endpoint: the 400 names why, nothing sent, nothing charged', async () => {
    const before = await h.settledBalance(user.accountId);
    const sent = sentCounts();
    const got = await send({ model: MIXED, messages: SYSTEM_ONLY, provider: { order: ['mixed-anthropic'], allow_fallbacks: false } }, stream);
    expect(got.status).toBe(400);
    expect(got.error!.message).toMatch(NOTHING_TO_SEND);
    // Its words say no provider answered: no provider status or code either.
    expect(got.error!.message).toMatch(/^mixed-anthropic cannot take this request for .+, so it was not sent: messages: /);
    expect(got.error!.metadata).toMatchObject({ error_type: 'invalid_request', provider_name: 'mixed-anthropic', attempts: 0 });
    expect(got.error!.metadata).not.toHaveProperty('provider_status');
    expect(sentCounts()).toEqual(sent);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it('when no endpoint can carry it, the 400 names the first refusal; nothing sent, nothing charged', async () => {
    const before = await h.settledBalance(user.accountId);
    const sent = sentCounts();
    const got = await send({ model: NO_OPENAI, messages: SYSTEM_ONLY }, stream);
    expect(got.status).toBe(400);
    expect(got.error!.message).toMatch(NOTHING_TO_SEND);
    expect(got.error!.metadata).toMatchObject({ error_type: 'invalid_request', provider_name: 'noopenai-anthropic', attempts: 0 });
    expect(sentCounts()).toEqual(sent);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it('an endpoint that could carry it and failed is what the client hears about, not the refusals before it', async () => {
    fakes.openai.script({ status: 503 });
    const before = await h.settledBalance(user.accountId);
    const got = await send({ model: MIXED, messages: SYSTEM_ONLY }, stream);
    expect(got.status).toBe(503);
    expect(got.error!.metadata).toMatchObject({ provider_name: 'mixed-openai', provider_status: 503, attempts: 1 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it('a request no protocol can take is still a 400 before routing', async () => {
    const sent = sentCounts();
    const got = await send({ model: MIXED, messages: [] }, stream);
    expect(got.status).toBe(400);
    expect(sentCounts()).toEqual(sent);
  });
});
