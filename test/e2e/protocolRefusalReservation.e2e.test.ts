/**
 * The reservation covers only the endpoints that can carry the request. An endpoint whose protocol cannot (a system
 * prompt alone for Anthropic, an Anthropic thinking budget that does not fit below max_tokens) is skipped by the router
 * without being asked (protocolRefusalFallback.e2e): it must not count toward the reservation's worst case either, or
 * a dear refusing endpoint holds credits (or a key's limit) that the call can never spend, and the calls made
 * meanwhile are refused a 402 though the endpoint that answers fits.
 *
 * One model, two endpoints: a cheap OpenAI one and a dear Anthropic one (50 times the price). The account (or the key)
 * can pay the dear endpoint's worst case once, or the cheap one's many times. A first call is held at the OpenAI
 * endpoint (a stream it never answers) while a second is made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { eventually } from '../support/eventually.js';
import { costOf, promptBound, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MIXED = 'test/refusal-reserve';
/** Served by an Anthropic endpoint only: nothing carries a system prompt alone. */
const ANTHROPIC_ONLY = 'test/refusal-reserve-anthropic';
const CHEAP = { prompt: 100, completion: 200 };
const DEAR = { prompt: 5_000, completion: 10_000 };
const USAGE = { promptTokens: 20, completionTokens: 10 };
const MAX_TOKENS = 100;

const SYSTEM_ONLY = [{ role: 'system', content: 'You are a test.' }];
const THINK = [{ role: 'user', content: 'think' }];
/** Two requests the Anthropic endpoint cannot carry, both at max_tokens 100. */
const REFUSED: Record<string, { messages: { role: string; content: string }[]; reasoning?: { max_tokens: number } }> = {
  'a system prompt alone': { messages: SYSTEM_ONLY },
  'a thinking budget above max_tokens': { messages: THINK, reasoning: { max_tokens: 2_000 } },
};
const worstOf = (prices: typeof CHEAP, messages: { content: string }[]) => promptBound(messages) * prices.prompt + MAX_TOKENS * prices.completion;

let h: GatewayHarness;
let openai: FakeProvider;
let anthropic: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness({ GATEWAY_MAX_ATTEMPTS: '1' });
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'rr-openai', model: MIXED, prices: CHEAP });
  anthropic = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'rr-anthropic', model: MIXED, prices: DEAR });
  await h.fakeEndpoint({ protocol: 'anthropic', slug: 'rr-anthropic-only', model: ANTHROPIC_ONLY, prices: DEAR, reuse: anthropic });
  openai.setDefault({ usage: USAGE });
  anthropic.setDefault({ usage: USAGE });
});
afterAll(async () => {
  await h.stop();
});

/** A key of `owner` with a spending limit of `limit` nano-dollars. */
const limitedKey = async (owner: Account, limit: number): Promise<string> => {
  const { body } = await h.gql(`mutation ($limit: Money!) { createApiKey(name: "limited", limit: $limit) { ... on CreatedApiKey { secret } ... on DomainError { message } } }`, { limit: String(limit) }, owner.key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.createApiKey.secret as string;
};

const ledgerEntries = async (key: string): Promise<{ type: string; generationId: string | null }[]> => {
  const data = await h.gqlOk('{ ledgerEntries(first: 100) { edges { node { type generationId } } } }', {}, key);
  return data.ledgerEntries.edges.map((e: { node: { type: string; generationId: string | null } }) => e.node);
};

describe.each(Object.entries(REFUSED))('%s', (_name, shape) => {
  const body = { model: MIXED, max_tokens: MAX_TOKENS, ...shape };
  const cheapWorst = worstOf(CHEAP, shape.messages);
  const dearWorst = worstOf(DEAR, shape.messages);

  it.each(['credits', 'key limit'] as const)(
    "%s: the dear endpoint that cannot carry it holds nothing; a second call meanwhile is answered by the cheap one, charged its price",
    async (limitedBy) => {
      expect(dearWorst).toBeGreaterThan(3 * cheapWorst);
      // Enough for the dear endpoint's worst case once, or the cheap one's three times.
      const budget = dearWorst + 1;
      const owner = await h.openAccount({ credits: limitedBy === 'credits' ? budget : 100 * dearWorst });
      const key = limitedBy === 'credits' ? owner.key : await limitedKey(owner, budget);
      const sentBefore = { openai: openai.requests.length, anthropic: anthropic.requests.length };

      // The first call is held at the OpenAI endpoint (a stream it never answers), its reservation made.
      openai.script({ hang: true });
      const first = new AbortController();
      const held = fetch(`${h.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ ...body, stream: true }),
        signal: first.signal,
      }).then((res) => res.text()).catch(() => undefined);
      try {
        await eventually('the first call to reach the OpenAI endpoint', () => openai.requests.length > sentBefore.openai);
        const heldReserved = (await h.running.core.ledger.balance(owner.accountId)).reserved;

        const second = await h.chat(key, body);
        const answer = (await second.json()) as { provider?: string; error?: unknown };
        expect(second.status, JSON.stringify(answer)).toBe(200);
        expect(answer.provider).toBe('rr-openai');
        expect(anthropic.requests.length).toBe(sentBefore.anthropic);
        // The first call holds the worst case of the endpoint that can carry it, not the dear one's it will never ask.
        expect(heldReserved).toBe(cheapWorst);
      } finally {
        // The first call's client leaves before any token: nothing is charged for it.
        first.abort();
        await held;
      }
      await eventually('the first call to end', async () => (await h.settledBalance(owner.accountId)).reserved === 0);
      const balance = await h.settledBalance(owner.accountId);
      expect(balance.settled).toBe(costOf(CHEAP, USAGE.promptTokens, USAGE.completionTokens));
    },
  );
});

describe('no endpoint can carry it', () => {
  it.each([false, true])('streamed: %s: the 400 names the refusal, and nothing is reserved, sent or charged', async (stream) => {
    const owner = await h.openAccount({ credits: 100 * worstOf(DEAR, SYSTEM_ONLY) });
    const entriesBefore = await ledgerEntries(owner.key);
    const sentBefore = anthropic.requests.length;
    const res = await h.chat(owner.key, { model: ANTHROPIC_ONLY, messages: SYSTEM_ONLY, max_tokens: MAX_TOKENS, stream });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
    expect(error.message).toMatch(/^rr-anthropic-only cannot take this request for test\/refusal-reserve-anthropic, so it was not sent: messages: there is no user or assistant message with content to send/);
    expect(error.metadata).toMatchObject({ error_type: 'invalid_request', provider_name: 'rr-anthropic-only', attempts: 0 });
    expect(anthropic.requests.length).toBe(sentBefore);
    const balance = await h.settledBalance(owner.accountId);
    expect(balance.reserved).toBe(0);
    expect(balance.settled).toBe(0);
    // Not even a reservation made and released.
    expect(await ledgerEntries(owner.key)).toEqual(entriesBefore);
  });
});
