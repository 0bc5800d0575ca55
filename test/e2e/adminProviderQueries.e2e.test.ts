/**
 * What the console's provider and admin pages read and change, over real HTTP against the started app: an account's
 * balance on Account, an API key's expiry set and cleared, every account's usage and generations (admins only), and
 * a provider's traffic, errors, latency and earnings per endpoint per day (its own providers only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const USD = 1_000_000_000;
const today = new Date().toISOString().slice(0, 10);

let h: GatewayHarness;
let alice: Account;
let bob: Account;
let pat: Account;
let quinn: Account;
let upstream: FakeProvider;

const gqlOk = async (query: string, variables: Record<string, unknown> = {}, key: string = ADMIN_KEY) => {
  const { body } = await h.gql(query, variables, key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
};
const errorCode = async (query: string, variables: Record<string, unknown>, key: string) => (await h.gql(query, variables, key)).body.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1' });
  alice = await h.openAccount({ name: 'Alice', credits: USD });
  bob = await h.openAccount({ name: 'Bob', credits: USD });
  pat = await h.openAccount({ name: 'Pat', roles: ['provider'] });
  quinn = await h.openAccount({ name: 'Quinn', roles: ['provider'] });
  upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  h.fakes.push(upstream);
  for (const [who, slug] of [
    [pat, 'pat-ai'],
    [quinn, 'quinn-ai'],
  ] as const) {
    const registered = await gqlOk(
      `mutation ($slug: String!, $baseUrl: String!, $apiKey: String!) { registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) { ... on Provider { slug } ... on DomainError { code message } } }`,
      { slug, baseUrl: upstream.baseUrl, apiKey: FAKE_API_KEY },
      who.key,
    );
    expect(registered.registerProvider).toEqual({ slug });
    const published = await gqlOk(
      `mutation ($p: String!, $m: String!) { publishEndpoint(provider: $p, model: $m, upstreamModel: "fake-model", prices: { prompt: 1000, completion: 2000 }, contextLength: 16000, maxOutput: 1000) { __typename ... on DomainError { code message } } }`,
      { p: slug, m: `${slug}/echo` },
      who.key,
    );
    expect(published.publishEndpoint).toEqual({ __typename: 'Endpoint' });
  }
});
afterAll(async () => {
  await h.stop();
});

describe('Account.balance', () => {
  it("shows the account's balance as the ledger holds it, and follows a grant", async () => {
    const ACCOUNT = 'query($id: ID!) { account(id: $id) { balance { available granted } } }';
    expect((await gqlOk(ACCOUNT, { id: bob.accountId }, bob.key)).account.balance).toEqual({ available: USD, granted: USD });
    await gqlOk('mutation($id: ID!) { grantCredits(accountId: $id, amount: 5, reason: "thanks") { __typename } }', { id: bob.accountId });
    expect((await gqlOk(ACCOUNT, { id: bob.accountId })).account.balance).toEqual({ available: USD + 5, granted: USD + 5 });
    expect((await gqlOk('{ me { balance { available } } }', {}, bob.key)).me.balance.available).toBe(USD + 5);
  });

  it("lists every account with its balance for an admin, and refuses another account's balance to a user", async () => {
    const all = await gqlOk('{ accounts(first: 50) { edges { node { id name balance { available } } } } }');
    const byName = new Map((all.accounts.edges as { node: { name: string; balance: { available: number } } }[]).map((e) => [e.node.name, e.node.balance.available]));
    expect(byName.get('Pat')).toBe(0);
    expect(byName.get('Alice')).toBeGreaterThan(0);
    expect(await errorCode('query($id: ID!) { account(id: $id) { balance { available } } }', { id: bob.accountId }, alice.key)).toBe('NOT_FOUND');
  });
});

describe('setApiKeyExpiry', () => {
  const SET = `mutation($id: ID!, $at: DateTime) { setApiKeyExpiry(id: $id, expiresAt: $at) {
    __typename ... on ApiKey { id expiresAt } ... on DomainError { code message } } }`;

  it('sets an expiry in the future, clears it with null, and refuses one in the past', async () => {
    const created = await gqlOk('mutation { createApiKey(name: "temp") { ... on CreatedApiKey { secret key { id expiresAt } } } }', {}, alice.key);
    const { id } = created.createApiKey.key;
    const later = new Date(Date.now() + 3_600_000).toISOString();
    expect((await gqlOk(SET, { id, at: later }, alice.key)).setApiKeyExpiry).toEqual({ __typename: 'ApiKey', id, expiresAt: later });
    expect((await gqlOk('query($id: ID!) { apiKey(id: $id) { expiresAt } }', { id }, alice.key)).apiKey.expiresAt).toBe(later);
    expect((await gqlOk(SET, { id, at: null }, alice.key)).setApiKeyExpiry).toEqual({ __typename: 'ApiKey', id, expiresAt: null });
    const past = await gqlOk(SET, { id, at: new Date(Date.now() - 1000).toISOString() }, alice.key);
    expect(past.setApiKeyExpiry).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
    expect((await gqlOk('query($id: ID!) { apiKey(id: $id) { expiresAt } }', { id }, alice.key)).apiKey.expiresAt).toBeNull();
  });

  it('makes the key stop working when the new expiry passes', async () => {
    const created = await gqlOk('mutation { createApiKey(name: "short") { ... on CreatedApiKey { secret key { id } } } }', {}, alice.key);
    const { secret } = created.createApiKey;
    expect((await h.gql('{ me { name } }', {}, secret)).body.data.me.name).toBe('Alice');
    await gqlOk(SET, { id: created.createApiKey.key.id, at: new Date(Date.now() + 1000).toISOString() }, alice.key);
    // The suite's poll deadline (15 s), not 5 s: the expiry is 1 s away when set, the rest is a loaded host's slack.
    await expect.poll(async () => (await h.gql('{ me { name } }', {}, secret)).body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a revoked key and a malformed date', async () => {
    const created = await gqlOk('mutation { createApiKey(name: "gone") { ... on CreatedApiKey { key { id } } } }', {}, alice.key);
    const { id } = created.createApiKey.key;
    await gqlOk('mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id }, alice.key);
    expect((await gqlOk(SET, { id, at: null }, alice.key)).setApiKeyExpiry).toMatchObject({ code: 'CONFLICT' });
    const bad = await h.gql(SET, { id, at: 'tomorrow' }, alice.key);
    expect(bad.body.errors?.[0]?.message).toContain('DateTime');
  });
});

describe('platform-wide usage and generations', () => {
  beforeAll(async () => {
    for (const who of [alice, bob]) {
      const sent = await gqlOk('mutation { sendPrompt(input: { model: "switchyard/demo-paid", prompt: "hi", maxTokens: 10 }) { __typename } }', {}, who.key);
      expect(sent.sendPrompt.__typename).toBe('SendPromptResult');
    }
    await h.running.core.gateway.idle();
  });

  it("answers every account's usage and generations to an admin", async () => {
    const USAGE = '{ platformUsage(groupBy: MODEL, perDay: true) { day group requests cost } }';
    await expect
      .poll(async () => (await gqlOk(USAGE)).platformUsage.find((r: { group: string }) => r.group === 'switchyard/demo-paid')?.requests, { timeout: 10_000 })
      .toBe(2);
    const own = (await gqlOk('{ usage(groupBy: MODEL) { group requests } }', {}, alice.key)).usage;
    expect(own).toEqual([{ group: 'switchyard/demo-paid', requests: 1 }]);
    const GENERATIONS = '{ platformGenerations(first: 10, newestFirst: true, filter: { model: "switchyard/demo-paid" }) { edges { node { accountId model } } } }';
    await expect
      .poll(async () => (await gqlOk(GENERATIONS)).platformGenerations.edges.map((e: { node: { accountId: string } }) => e.node.accountId), { timeout: 10_000 })
      .toEqual([bob.accountId, alice.accountId]);
  });

  it('refuses them to a user and to a provider: FORBIDDEN', async () => {
    for (const key of [alice.key, pat.key]) {
      expect(await errorCode('{ platformUsage(groupBy: DAY) { group } }', {}, key)).toBe('FORBIDDEN');
      expect(await errorCode('{ platformGenerations(first: 1) { edges { node { id } } } }', {}, key)).toBe('FORBIDDEN');
    }
  });
});

describe("a provider's traffic and earnings per endpoint per day", () => {
  const TRAFFIC = `query($p: String, $from: String, $to: String) { providerTraffic(provider: $p, from: $from, to: $to) {
    endpointId provider model day requests errors errorRate served avgLatencyMs promptTokens completionTokens earnings } }`;
  let charged = 0;

  beforeAll(async () => {
    const before = await h.settledBalance(alice.accountId);
    for (let i = 0; i < 2; i++) {
      const res = await h.chat(alice.key, { model: 'pat-ai/echo', messages: [{ role: 'user', content: 'hello' }], max_tokens: 10 });
      expect(res.status).toBe(200);
    }
    upstream.script({ status: 400 });
    const failed = await h.chat(alice.key, { model: 'pat-ai/echo', messages: [{ role: 'user', content: 'hello' }], max_tokens: 10 });
    expect(failed.status).toBe(400);
    // Quinn's endpoint gets traffic too: it must not show in Pat's figures.
    expect((await h.chat(bob.key, { model: 'quinn-ai/echo', messages: [{ role: 'user', content: 'hello' }], max_tokens: 10 })).status).toBe(200);
    charged = (await h.settledBalance(alice.accountId)).settled - before.settled;
  });

  it('counts attempts, errors and what the served generations were charged, on its own endpoints only', async () => {
    expect(charged).toBeGreaterThan(0);
    await expect.poll(async () => (await gqlOk(TRAFFIC, {}, pat.key)).providerTraffic[0]?.requests, { timeout: 10_000 }).toBe(3);
    const rows = (await gqlOk(TRAFFIC, {}, pat.key)).providerTraffic;
    expect(rows).toEqual([
      {
        endpointId: 'pat-ai/echo@pat-ai',
        provider: 'pat-ai',
        model: 'pat-ai/echo',
        day: today,
        requests: 3,
        errors: 1,
        errorRate: 1 / 3,
        served: 2,
        avgLatencyMs: expect.any(Number),
        promptTokens: expect.any(Number),
        completionTokens: expect.any(Number),
        earnings: charged,
      },
    ]);
    expect(rows[0].promptTokens).toBeGreaterThan(0);
    // Outside the range: nothing.
    expect((await gqlOk(TRAFFIC, { from: '2000-01-01', to: '2000-01-31' }, pat.key)).providerTraffic).toEqual([]);
    // The last day there is as the end: everything (its next day, +010000-01-01, is past the four-digit years).
    expect((await gqlOk(TRAFFIC, { to: '9999-12-31' }, pat.key)).providerTraffic).toEqual(rows);
    expect((await gqlOk(TRAFFIC, { from: '0000-01-01', to: '9999-12-31' }, pat.key)).providerTraffic).toEqual(rows);
  });

  it("answers another account's provider as a missing one (NOT_FOUND) and refuses a plain user (FORBIDDEN)", async () => {
    await expect.poll(async () => (await gqlOk(TRAFFIC, {}, quinn.key)).providerTraffic.map((r: { provider: string }) => r.provider), { timeout: 10_000 }).toEqual(['quinn-ai']);
    const theirs = await h.gql(TRAFFIC, { p: 'pat-ai' }, quinn.key);
    const missing = await h.gql(TRAFFIC, { p: 'nobody-ai' }, quinn.key);
    expect(theirs.body.errors[0].extensions.code).toBe('NOT_FOUND');
    expect(JSON.stringify(theirs.body).replaceAll('pat-ai', '<p>')).toBe(JSON.stringify(missing.body).replaceAll('nobody-ai', '<p>'));
    expect(await errorCode(TRAFFIC, {}, alice.key)).toBe('FORBIDDEN');
    expect(await errorCode(TRAFFIC, { from: 'last week' }, pat.key)).toBe('VALIDATION');
    expect(await errorCode(TRAFFIC, { from: '2026-02-01', to: '2026-01-01' }, pat.key)).toBe('VALIDATION');
    // An admin sees every provider's.
    const all = (await gqlOk(TRAFFIC)).providerTraffic.map((r: { provider: string }) => r.provider);
    expect(all).toEqual(expect.arrayContaining(['pat-ai', 'quinn-ai']));
  });

  it("lists the provider's own providers with every endpoint and its circuit breaker", async () => {
    const mine = (await gqlOk('{ myProviders { slug endpoints { id status circuitBreaker prices { prompt } } } }', {}, pat.key)).myProviders;
    expect(mine).toEqual([{ slug: 'pat-ai', endpoints: [{ id: 'pat-ai/echo@pat-ai', status: 'active', circuitBreaker: 'closed', prices: { prompt: 1000 } }] }]);
    expect(await errorCode('{ myProviders { slug } }', {}, alice.key)).toBe('FORBIDDEN');
    // A disabled endpoint stays listed (it no longer routes, but its provider manages it).
    await gqlOk('mutation { disableEndpoint(provider: "pat-ai", model: "pat-ai/echo") { __typename } }', {}, pat.key);
    const after = (await gqlOk('{ myProviders { endpoints { id status } } }', {}, pat.key)).myProviders;
    expect(after).toEqual([{ endpoints: [{ id: 'pat-ai/echo@pat-ai', status: 'disabled' }] }]);
  });
});
