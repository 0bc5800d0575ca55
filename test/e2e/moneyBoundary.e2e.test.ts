/**
 * Money at the trust boundary (issue 10): a provider's usage report cannot charge a user beyond the reservation
 * they were admitted on (the excess is recorded and shown to admins), zero-priced endpoints are under the free
 * tier's limits, an unknown payment token pays nothing, an account's credits are capped, and money in messages
 * reads like money.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { costOf, promptBound, promptEstimate, readSseResponse, startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

const USD = 1_000_000_000;
const PRICES = { prompt: 1_005, completion: 600 }; // $1.005 / $0.60 per million tokens
const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];
const MAX_TOKENS = 50;

let h: GatewayHarness;
let liar: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  liar = await h.fakeEndpoint({ protocol: 'openai', slug: 'liar', model: 'test/liar', prices: PRICES, contextLength: 8_000, maxOutput: 1_000 });
});
afterAll(async () => {
  await h.stop();
});

const overReports = async (key = ADMIN_KEY) =>
  h.gql(
    `{ usageOverReports(first: 50, provider: "liar") { edges { node {
        generationId accountId provider endpointId model usageSource maxPromptTokens maxCompletionTokens reportedCost billedCost reserved
        reported { promptTokens completionTokens } billed { promptTokens completionTokens } } } } }`,
    {},
    key,
  );

describe('a provider that reports absurd usage', () => {
  it.each([false, true])('charges the user at most the reservation (stream: %s), and an admin sees the over-report', async (stream) => {
    const user = await h.openAccount({ credits: USD });
    liar.script({ usage: { promptTokens: promptEstimate(MESSAGES), completionTokens: 1_000_000_000 } });
    const res = await h.chat(user.key, { model: 'test/liar', messages: MESSAGES, max_tokens: MAX_TOKENS, stream, ...(stream && { stream_options: { include_usage: true } }) });
    expect(res.status).toBe(200);
    const generationId = res.headers.get('x-generation-id')!;
    const usage = stream ? (await readSseResponse(res)).events.find((e) => e.usage)?.usage : ((await res.json()) as { usage: Record<string, number> }).usage;
    // The client is shown the usage it is billed for.
    expect(usage).toMatchObject({ prompt_tokens: promptEstimate(MESSAGES), completion_tokens: MAX_TOKENS });

    const billed = costOf(PRICES, promptEstimate(MESSAGES), MAX_TOKENS);
    const reserved = promptBound(MESSAGES) * PRICES.prompt + MAX_TOKENS * PRICES.completion;
    const balance = await h.settledBalance(user.accountId);
    expect(balance).toMatchObject({ settled: billed, reserved: 0, available: USD - billed });
    expect(balance.settled).toBeLessThanOrEqual(reserved);

    const { body } = await overReports();
    const report = body.data.usageOverReports.edges.map((e: { node: { generationId: string } }) => e.node).find((n: { generationId: string }) => n.generationId === generationId);
    expect(report).toEqual({
      generationId,
      accountId: user.accountId,
      provider: 'liar',
      endpointId: 'test/liar@liar',
      model: 'test/liar',
      usageSource: 'provider',
      maxPromptTokens: 8_000,
      maxCompletionTokens: MAX_TOKENS,
      reportedCost: promptEstimate(MESSAGES) * PRICES.prompt + 1_000_000_000 * PRICES.completion,
      billedCost: billed,
      reserved,
      reported: { promptTokens: promptEstimate(MESSAGES), completionTokens: 1_000_000_000 },
      billed: { promptTokens: promptEstimate(MESSAGES), completionTokens: MAX_TOKENS },
    });
    // The generation's record and the ledger agree on the billed cost.
    const audit = await h.gql(`query($id: ID!) { billingAudit(accountId: $id) { ok differences { field } } }`, { id: user.accountId });
    expect(audit.body.data.billingAudit).toEqual({ ok: true, differences: [] });
  });

  it('caps prompt tokens at the context length and the charge at the reservation when max_tokens was not sent', async () => {
    const user = await h.openAccount({ credits: USD });
    liar.script({ usage: { promptTokens: 10_000_000, completionTokens: 5 } });
    const res = await h.chat(user.key, { model: 'test/liar', messages: MESSAGES });
    expect(res.status).toBe(200);
    // Without max_tokens the reservation assumed the endpoint's whole max output (1,000 tokens).
    const reserved = promptBound(MESSAGES) * PRICES.prompt + 1_000 * PRICES.completion;
    const balance = await h.settledBalance(user.accountId);
    expect(balance.settled).toBeLessThanOrEqual(reserved);
    // 8,000 prompt tokens (the context length) would cost more than the reservation: the reservation is the charge.
    expect(8_000 * PRICES.prompt + 5 * PRICES.completion).toBeGreaterThan(reserved);
    expect(balance.settled).toBe(reserved);
    const { body } = await overReports();
    expect(body.data.usageOverReports.edges.at(-1).node).toMatchObject({ maxPromptTokens: 8_000, maxCompletionTokens: 1_000, reported: { promptTokens: 10_000_000 }, billed: { promptTokens: 8_000 }, billedCost: reserved });
  });

  it('bills an honest count of a prompt that is not English in full: the reservation covers a token per UTF-8 byte (QA s41 parity #1)', async () => {
    // 2,000 Chinese characters: the chars / 4 estimate says 504 tokens, a tokenizer counts one or more per character.
    const chinese = [{ role: 'user', content: '你'.repeat(2_000) }];
    for (const stream of [false, true]) {
      const user = await h.openAccount({ credits: USD });
      liar.script({ usage: { promptTokens: 2_400, completionTokens: 1 } });
      const res = await h.chat(user.key, { model: 'test/liar', messages: chinese, max_tokens: 1, stream, ...(stream && { stream_options: { include_usage: true } }) });
      expect(res.status).toBe(200);
      const generationId = res.headers.get('x-generation-id')!;
      if (stream) await readSseResponse(res);
      else await res.json();
      // Charged what the provider counted (before: cut to the reservation made on the estimate, 504 prompt tokens).
      expect((await h.settledBalance(user.accountId)).settled, `stream: ${stream}`).toBe(costOf(PRICES, 2_400, 1));
      expect(promptEstimate(chinese) * PRICES.prompt + PRICES.completion).toBeLessThan(costOf(PRICES, 2_400, 1));
      // And the honest provider is not taken for one that over-reports.
      const { body } = await overReports();
      expect(body.data.usageOverReports.edges.map((e: { node: { generationId: string } }) => e.node.generationId)).not.toContain(generationId);
    }
    expect(promptBound(chinese)).toBe(6_012);
  });

  it('shows over-reports to admins only', async () => {
    const user = await h.openAccount();
    const { body } = await overReports(user.key);
    expect(body.data?.usageOverReports ?? null).toBeNull();
    expect(body.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('zero-priced endpoints are under the free tier', () => {
  it('an account with no credits hits the free limit on switchyard/demo: 429 with Retry-After (REST), RATE_LIMITED (GraphQL)', async () => {
    const user = await h.openAccount();
    expect((await h.settledBalance(user.accountId)).available).toBe(0);
    for (let i = 0; i < 20; i++) {
      const res = await h.chat(user.key, { model: 'switchyard/demo', messages: MESSAGES, max_tokens: 8 });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const limited = await h.chat(user.key, { model: 'switchyard/demo', messages: MESSAGES, max_tokens: 8 });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const { error } = (await limited.json()) as { error: { metadata: Record<string, unknown> } };
    expect(error.metadata).toMatchObject({ error_type: 'rate_limit_exceeded', limit_source: 'free_tier_minute' });

    const { body } = await h.gql(
      `mutation { sendPrompt(input: { model: "switchyard/demo", prompt: "hi", maxTokens: 8 }) { __typename ... on DomainError { code } } }`,
      {},
      user.key,
    );
    expect(body.data.sendPrompt).toEqual({ __typename: 'DomainError', code: 'RATE_LIMITED' });
  });
});

describe('payments and credits', () => {
  const purchase = (key: string, paymentMethod: string, amount = 10 * USD) =>
    h.gql(
      `mutation($amount: Money!, $pm: String!) { purchaseCredits(amount: $amount, paymentMethod: $pm) { __typename ... on Purchase { amount } ... on DomainError { code message } } }`,
      { amount, pm: paymentMethod },
      key,
    );

  it('an unknown payment token is a declined payment: PAYMENT_FAILED, nothing purchased', async () => {
    const user = await h.openAccount();
    for (const token of ['pm_anything_goes', 'tok_visa', 'x']) {
      const { body } = await purchase(user.key, token);
      expect(body.data.purchaseCredits).toMatchObject({ __typename: 'DomainError', code: 'PAYMENT_FAILED' });
    }
    expect(await h.settledBalance(user.accountId)).toMatchObject({ purchased: 0, available: 0 });
    const ok = await purchase(user.key, 'pm_card_visa');
    expect(ok.body.data.purchaseCredits).toEqual({ __typename: 'Purchase', amount: 10 * USD });
  });

  it('refuses credits beyond the per-account cap with a clear VALIDATION error', async () => {
    const user = await h.openAccount();
    const grant = (amount: number) =>
      h.gql(`mutation($id: ID!, $amount: Money!) { grantCredits(accountId: $id, amount: $amount, reason: "test") { __typename ... on Balance { available } ... on DomainError { code message } } }`, {
        id: user.accountId,
        amount,
      });
    expect((await grant(999_990 * USD)).body.data.grantCredits).toEqual({ __typename: 'Balance', available: 999_990 * USD });
    const refused = (await grant(20 * USD)).body.data.grantCredits;
    expect(refused).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
    expect(refused.message).toContain('above the limit of $1,000,000.00 per account');
    const bought = (await purchase(user.key, 'pm_card_visa', 20 * USD)).body.data.purchaseCredits;
    expect(bought).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
    expect(await h.settledBalance(user.accountId)).toMatchObject({ purchased: 0, granted: 999_990 * USD });
  });

  it('prints money with cents in messages ("$11.00", never "$11.")', async () => {
    const user = await h.openAccount();
    await purchase(user.key, 'pm_card_visa');
    const { body } = await h.gql(`mutation($id: ID!) { refundCredits(accountId: $id, amount: ${11 * USD}, reason: "r") { __typename ... on DomainError { message } } }`, { id: user.accountId });
    expect(body.data.refundCredits.message).toBe('A refund of $11.00 exceeds what was purchased and not yet refunded ($10.00)');
  });

  it('applies a provider.max_price finer than a nano-dollar per token exactly (a bound, not refused), and an exact one', async () => {
    const user = await h.openAccount({ credits: USD });
    // 1.005 USD per million tokens is exactly the endpoint's price: admitted (1.005 × 1000 in floats is 1004.999...).
    liar.script({});
    const exact = await h.chat(user.key, { model: 'test/liar', messages: MESSAGES, max_tokens: 5, provider: { max_price: { prompt: 1.005, completion: 0.6 } } });
    expect(exact.status).toBe(200);
    // 1.0059 per million is 1005.9 nano-dollars per token: 1005 is within it.
    liar.script({});
    const finer = await h.chat(user.key, { model: 'test/liar', messages: MESSAGES, max_tokens: 5, provider: { max_price: { prompt: 1.0059, completion: 0.6 } } });
    expect(finer.status).toBe(200);
    // 1.0049 per million (1004.9 per token) and 0.0001 (0.1) are below 1005: no endpoint, OpenRouter's 404.
    for (const prompt of [1.0049, 0.0001]) {
      const below = await h.chat(user.key, { model: 'test/liar', messages: MESSAGES, max_tokens: 5, provider: { max_price: { prompt } } });
      expect(below.status).toBe(404);
      expect(((await below.json()) as { error: { message: string } }).error.message).toBe('No endpoints of test/liar match your provider restrictions (only, ignore, order, quantizations, max_price)');
    }
    // What is not a price is still refused, naming the field.
    const negative = await h.chat(user.key, { model: 'test/liar', messages: MESSAGES, provider: { max_price: { prompt: -0.0001 } } });
    expect(negative.status).toBe(400);
    expect(((await negative.json()) as { error: { metadata: Record<string, unknown> } }).error.metadata).toMatchObject({ param: 'provider.max_price.prompt' });
  });
});
