/**
 * Model namespaces (issue 10, item 4, closing name squatting), through GraphQL and the gateway of the started app: a
 * provider creates new models only in its own namespace (`acme/…` on provider `acme`). A well-known name it does not
 * hold (`openai/gpt-9`) becomes a proposal that creates nothing and routes nothing until an admin approves it, and the
 * model an admin creates is the root account's, not the proposer's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let acme: Account;
let bob: Account;
/** Acme's upstream: records every request, so a user's prompt that reached it shows. */
let acmeUpstream: FakeProvider;

const PUBLISH = `mutation ($provider: String!, $model: String!, $name: String) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 16000, maxOutput: 1000, modelName: $name) {
    __typename
    ... on Endpoint { id status }
    ... on EndpointProposal { id proposalStatus createsModel }
    ... on DomainError { code message } } }`;
const APPROVE = `mutation ($provider: String!, $model: String!) { approveEndpoint(provider: $provider, model: $model) {
  __typename ... on Endpoint { id status } ... on DomainError { code message } } }`;
const OPEN = `mutation ($model: String!) { setModelOpenToProviders(model: $model, open: true) {
  __typename ... on Model { id openToProviders ownerAccountId } ... on DomainError { code message } } }`;
const MODEL = `query ($id: ID!) { model(id: $id) { id name ownerAccountId openToProviders endpoints { id } } }`;

const registerProvider = async (key: string, slug: string, upstream: FakeProvider) => {
  const { body } = await h.gql(
    `mutation ($slug: String!, $baseUrl: String!, $apiKey: String!) { registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) {
      ... on Provider { slug } ... on DomainError { code message } } }`,
    { slug, baseUrl: upstream.baseUrl, apiKey: FAKE_API_KEY },
    key,
  );
  expect(body.data.registerProvider).toEqual({ slug });
};

const publish = async (key: string, provider: string, model: string, name?: string) => {
  const { body } = await h.gql(PUBLISH, { provider, model, name: name ?? null }, key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.publishEndpoint;
};

const model = async (id: string, key = ADMIN_KEY) => (await h.gql(MODEL, { id }, key)).body.data.model;

const chat = (model: string, only?: string) =>
  h.chat(user.key, { model, messages: [{ role: 'user', content: 'my private prompt' }], max_tokens: 10, ...(only && { provider: { only: [only] } }) });

beforeAll(async () => {
  h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1' });
  user = await h.openAccount({ credits: 1_000_000_000, name: 'user' });
  acme = await h.openAccount({ roles: ['provider'], name: 'acme' });
  bob = await h.openAccount({ roles: ['provider'], name: 'bob' });
  acmeUpstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  h.fakes.push(acmeUpstream);
  await registerProvider(acme.key, 'acme', acmeUpstream);
  await registerProvider(bob.key, 'bob-ai', acmeUpstream);
  await registerProvider(ADMIN_KEY, 'admins-upstream', acmeUpstream);
});
afterAll(async () => {
  await h.stop();
});

describe('a provider cannot squat a model name outside its namespace', () => {
  it('answers a proposal for openai/gpt-9 on provider acme: no model is created, nothing routes, acme owns nothing', async () => {
    expect(await publish(acme.key, 'acme', 'openai/gpt-9', 'GPT-9')).toEqual({ __typename: 'EndpointProposal', id: 'openai/gpt-9@acme', proposalStatus: 'PENDING', createsModel: true });
    expect(await model('openai/gpt-9')).toBeNull();
    expect(await h.running.core.eventStore.readStream('model-openai/gpt-9')).toEqual([]);
    expect(h.running.core.gateway.catalog.endpoints('openai/gpt-9')).toEqual([]);
    for (const only of [undefined, 'acme']) {
      const res = await chat('openai/gpt-9', only);
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toBe('openai/gpt-9 is not a valid model ID');
    }
    // Opening it (to let itself in) is not possible either: there is no model to open.
    expect((await h.gql(OPEN, { model: 'openai/gpt-9' }, acme.key)).body.data.setModelOpenToProviders).toMatchObject({ code: 'NOT_FOUND' });
    await h.running.core.gateway.idle();
    expect(acmeUpstream.requests).toHaveLength(0);
  });

  it('creates acme/foo on provider acme, owned by acme, and routes to it', async () => {
    expect(await publish(acme.key, 'acme', 'acme/foo')).toEqual({ __typename: 'Endpoint', id: 'acme/foo@acme', status: 'active' });
    expect(await model('acme/foo', acme.key)).toMatchObject({ ownerAccountId: acme.accountId, openToProviders: false, endpoints: [{ id: 'acme/foo@acme' }] });
    expect((await chat('acme/foo')).status).toBe(200);
  });

  it("does not let a provider create a model in another provider's namespace (acme/… on bob-ai)", async () => {
    expect(await publish(bob.key, 'bob-ai', 'acme/bar')).toEqual({ __typename: 'EndpointProposal', id: 'acme/bar@bob-ai', proposalStatus: 'PENDING', createsModel: true });
    expect(await model('acme/bar')).toBeNull();
  });
});

describe('admins create any model', () => {
  it('lets the provider publish on openai/gpt-9 once an admin created it and opened it', async () => {
    expect(await publish(ADMIN_KEY, 'admins-upstream', 'openai/gpt-9', 'GPT-9')).toEqual({ __typename: 'Endpoint', id: 'openai/gpt-9@admins-upstream', status: 'active' });
    const opened = await h.gql(OPEN, { model: 'openai/gpt-9' });
    expect(opened.body.data.setModelOpenToProviders).toEqual({ __typename: 'Model', id: 'openai/gpt-9', openToProviders: true, ownerAccountId: 'acc_root' });

    expect(await publish(acme.key, 'acme', 'openai/gpt-9')).toEqual({ __typename: 'Endpoint', id: 'openai/gpt-9@acme', status: 'active' });
    const before = acmeUpstream.requests.length;
    expect((await chat('openai/gpt-9', 'acme')).status).toBe(200);
    expect(acmeUpstream.requests).toHaveLength(before + 1);
    // Serving it does not make acme its owner: the owner is hidden from acme, and acme cannot close it.
    expect(await model('openai/gpt-9', acme.key)).toMatchObject({ ownerAccountId: null, openToProviders: true });
  });

  it('an approval refused because the proposal changed since it was reviewed creates no model', async () => {
    expect(await publish(acme.key, 'acme', 'anthropic/claude-stale', 'Claude Stale')).toMatchObject({ __typename: 'EndpointProposal', createsModel: true });
    const reviewed = { prompt: 2, completion: 1, request: 0, reasoning: 1, cacheRead: 2, cacheWrite: 2 };
    const { body } = await h.gql(
      `mutation ($prices: ReviewedPricesInput) { approveEndpoint(provider: "acme", model: "anthropic/claude-stale", expectedPrices: $prices) { __typename ... on DomainError { code message } } }`,
      { prices: reviewed },
    );
    expect(body.data.approveEndpoint).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringContaining('prompt is now 1') });
    expect(await model('anthropic/claude-stale')).toBeNull();
    expect(await h.running.core.eventStore.readStream('model-anthropic/claude-stale')).toEqual([]);
  });

  it("creates a proposed model on approval, owned by the root account and closed, not by the proposer", async () => {
    expect(await publish(acme.key, 'acme', 'anthropic/claude-next', 'Claude Next')).toMatchObject({ __typename: 'EndpointProposal', createsModel: true });
    const approved = await h.gql(APPROVE, { provider: 'acme', model: 'anthropic/claude-next' });
    expect(approved.body.data.approveEndpoint).toEqual({ __typename: 'Endpoint', id: 'anthropic/claude-next@acme', status: 'active' });
    expect(await model('anthropic/claude-next')).toEqual({
      id: 'anthropic/claude-next',
      name: 'Claude Next',
      ownerAccountId: 'acc_root',
      openToProviders: false,
      endpoints: [{ id: 'anthropic/claude-next@acme' }],
    });
    expect((await chat('anthropic/claude-next')).status).toBe(200);
    const [created] = await h.running.core.eventStore.readStream('model-anthropic/claude-next');
    expect(created).toMatchObject({ type: 'ModelPublished', data: { ownerAccountId: 'acc_root', decidedBy: { accountId: 'acc_root', admin: true } } });

    // The approved proposer does not own it: another of its names, or another provider, still needs an admin.
    expect(await publish(bob.key, 'bob-ai', 'anthropic/claude-next')).toMatchObject({ __typename: 'EndpointProposal', proposalStatus: 'PENDING', createsModel: false });
    expect((await h.gql(OPEN, { model: 'anthropic/claude-next' }, acme.key)).body.data.setModelOpenToProviders).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe("a provider cannot take a maker's namespace through its provider's slug", () => {
  it('refuses the slug google while google/… models of the catalog belong to another account', async () => {
    expect(h.running.core.gateway.catalog.model('google/gemini-2.0-flash')).toBeDefined();
    const { body } = await h.gql(
      `mutation { registerProvider(slug: "google", name: "Google", protocol: OPENAI, baseUrl: "${acmeUpstream.baseUrl}", apiKey: "k") { __typename ... on DomainError { code message } } }`,
      {},
      bob.key,
    );
    expect(body.data.registerProvider).toEqual({
      __typename: 'DomainError',
      code: 'FORBIDDEN',
      message: 'Slug google is the namespace of models in the catalog (google/…) that belong to another account: choose another slug, or ask an admin to register this provider',
    });
    expect(h.running.core.gateway.catalog.provider('google')).toBeUndefined();
  });
});
