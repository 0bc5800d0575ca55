/**
 * Models have owners (issue 10, item 4), through GraphQL and the gateway of the started app: a provider account
 * cannot take over a seeded model (its endpoint is a proposal that routes nothing until an admin approves it), an
 * endpoint an admin disabled stays disabled whatever its provider does, and a model's owner can open it to others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let mallory: Account;
let alice: Account;
let bob: Account;
/** Mallory's upstream: records every request it receives, so a prompt that reached it shows. */
let malloryUpstream: FakeProvider;

const PUBLISH = `mutation ($provider: String!, $model: String!, $prompt: Money!) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: $prompt, completion: 1 }, contextLength: 16000, maxOutput: 1000) {
    __typename
    ... on Endpoint { id status disabledByAdmin prices { prompt } }
    ... on EndpointProposal { id proposalStatus model proposedBy provider { slug } }
    ... on DomainError { code message } } }`;
const ENDPOINT = '... on Endpoint { id status disabledByAdmin } ... on DomainError { code message }';
const APPROVE = `mutation ($provider: String!, $model: String!) { approveEndpoint(provider: $provider, model: $model) { __typename ${ENDPOINT} } }`;
const REJECT = `mutation ($provider: String!, $model: String!, $reason: String!) { rejectEndpoint(provider: $provider, model: $model, reason: $reason) {
  __typename ... on EndpointProposal { id proposalStatus reason decidedBy } ... on DomainError { code message } } }`;
const DISABLE = `mutation ($provider: String!, $model: String!) { disableEndpoint(provider: $provider, model: $model) { __typename ${ENDPOINT} } }`;
const ENABLE = `mutation ($provider: String!, $model: String!) { enableEndpoint(provider: $provider, model: $model) { __typename ${ENDPOINT} } }`;
const OPEN = `mutation ($model: String!, $open: Boolean!) { setModelOpenToProviders(model: $model, open: $open) {
  __typename ... on Model { id openToProviders ownerAccountId } ... on DomainError { code message } } }`;
const PROPOSALS = `query ($status: ProposalStatus) { endpointProposals(status: $status) { edges { node { id proposalStatus model proposedBy reason } } } }`;

const registerProvider = async (who: Account, slug: string, upstream: FakeProvider) => {
  const { body } = await h.gql(
    `mutation ($slug: String!, $baseUrl: String!, $apiKey: String!) { registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) {
      ... on Provider { slug } ... on DomainError { code message } } }`,
    { slug, baseUrl: upstream.baseUrl, apiKey: FAKE_API_KEY },
    who.key,
  );
  expect(body.data.registerProvider).toEqual({ slug });
};

const publish = async (who: Account | string, provider: string, model: string, prompt = 1) =>
  (await h.gql(PUBLISH, { provider, model, prompt }, typeof who === 'string' ? who : who.key)).body.data.publishEndpoint;

/** A user's chat completion, pinned to one provider when `only` is given. */
const chat = async (model: string, only?: string) =>
  h.chat(user.key, { model, messages: [{ role: 'user', content: 'my private prompt' }], max_tokens: 10, ...(only && { provider: { only: [only] } }) });

const proposals = async (key: string, status: string | null = 'PENDING') => {
  const { body } = await h.gql(PROPOSALS, { status }, key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return (body.data.endpointProposals.edges as { node: Record<string, unknown> }[]).map((e) => e.node);
};

beforeAll(async () => {
  // OUTBOUND_ALLOW lets non-admin providers reach the fake upstreams on loopback once the outbound policy is in.
  h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1' });
  user = await h.openAccount({ credits: 1_000_000_000, name: 'user' });
  mallory = await h.openAccount({ roles: ['provider'], name: 'mallory' });
  alice = await h.openAccount({ roles: ['provider'], name: 'alice' });
  bob = await h.openAccount({ roles: ['provider'], name: 'bob' });
  malloryUpstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  h.fakes.push(malloryUpstream);
  await registerProvider(mallory, 'mallory-ai', malloryUpstream);
  await registerProvider(alice, 'alice-ai', malloryUpstream);
  await registerProvider(bob, 'bob-ai', malloryUpstream);
});
afterAll(async () => {
  await h.stop();
});

describe('a provider cannot take over a seeded model', () => {
  it("files a proposal for switchyard/demo-paid, and no user's prompt reaches its upstream", async () => {
    const answer = await publish(mallory, 'mallory-ai', 'switchyard/demo-paid');
    expect(answer).toEqual({ __typename: 'EndpointProposal', id: 'switchyard/demo-paid@mallory-ai', proposalStatus: 'PENDING', model: 'switchyard/demo-paid', proposedBy: mallory.accountId, provider: { slug: 'mallory-ai' } });
    // Cheaper than the seeded endpoint: it would win the default routing if it were routed.
    expect(h.running.core.gateway.catalog.endpoints('switchyard/demo-paid').map((e) => e.id)).toEqual(['switchyard/demo-paid@switchyard']);
    for (const only of [undefined, 'mallory-ai']) {
      const res = await chat('switchyard/demo-paid', only);
      if (only) expect(res.status).toBe(404);
      else expect(res.status).toBe(200);
    }
    const { body } = await h.gql('{ model(id: "switchyard/demo-paid") { ownerAccountId openToProviders endpoints(includeDisabled: true) { id } } }', {}, mallory.key);
    expect(body.data.model).toEqual({ ownerAccountId: null, openToProviders: false, endpoints: [{ id: 'switchyard/demo-paid@switchyard' }] });
    await h.running.core.gateway.idle();
    expect(malloryUpstream.requests).toHaveLength(0);
  });

  it('lists the proposal for admins and for its provider, not for other providers', async () => {
    expect(await proposals(ADMIN_KEY)).toContainEqual({ id: 'switchyard/demo-paid@mallory-ai', proposalStatus: 'PENDING', model: 'switchyard/demo-paid', proposedBy: mallory.accountId, reason: null });
    expect((await proposals(mallory.key)).map((p) => p.id)).toEqual(['switchyard/demo-paid@mallory-ai']);
    expect(await proposals(bob.key)).toEqual([]);
    const { body } = await h.gql(PROPOSALS, {}, user.key);
    expect(body.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  it('does not let the provider approve its own proposal, open the model, or enable the proposal', async () => {
    const approve = await h.gql(APPROVE, { provider: 'mallory-ai', model: 'switchyard/demo-paid' }, mallory.key);
    expect(approve.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect((await h.gql(OPEN, { model: 'switchyard/demo-paid', open: true }, mallory.key)).body.data.setModelOpenToProviders).toMatchObject({ code: 'FORBIDDEN' });
    expect((await h.gql(ENABLE, { provider: 'mallory-ai', model: 'switchyard/demo-paid' }, mallory.key)).body.data.enableEndpoint).toMatchObject({ code: 'NOT_FOUND' });
    expect((await chat('switchyard/demo-paid', 'mallory-ai')).status).toBe(404);
    expect(malloryUpstream.requests).toHaveLength(0);
  });

  it('an approval is of every price reviewed: a proposal republished with any price changed meanwhile is a CONFLICT', async () => {
    const PUBLISH_AT = `mutation ($prices: PricesInput!) {
      publishEndpoint(provider: "mallory-ai", model: "switchyard/demo-paid", upstreamModel: "fake-model", prices: $prices, contextLength: 16000, maxOutput: 1000) {
        __typename ... on EndpointProposal { proposalStatus } ... on DomainError { code message } } }`;
    const APPROVE_AT = `mutation ($prices: ReviewedPricesInput!) { approveEndpoint(provider: "mallory-ai", model: "switchyard/demo-paid", expectedPrices: $prices) {
      __typename ... on Endpoint { id status prices { prompt completion request reasoning cacheRead cacheWrite } } ... on DomainError { code message details } } }`;
    const republish = async (prices: Record<string, number>) =>
      expect((await h.gql(PUBLISH_AT, { prices }, mallory.key)).body.data.publishEndpoint).toEqual({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });
    // What the admin reviews: the proposal's whole price set, as endpointProposals shows it.
    const { body } = await h.gql('{ endpointProposals(status: PENDING) { edges { node { id prices { prompt completion request reasoning cacheRead cacheWrite } } } } }');
    const reviewed = (body.data.endpointProposals.edges as { node: { id: string; prices: Record<string, number> } }[]).find((e) => e.node.id === 'switchyard/demo-paid@mallory-ai')!.node.prices;
    expect(reviewed).toEqual({ prompt: 1, completion: 1, request: 0, reasoning: 1, cacheRead: 1, cacheWrite: 1 });
    // QA s44 liveops #3: the same prompt and completion prices, plus a $0.90 fee per request and a new reasoning price.
    await republish({ prompt: 1, completion: 1, request: 900_000_000, reasoning: 5_000_000 });
    const stale = (await h.gql(APPROVE_AT, { prices: reviewed })).body.data.approveEndpoint;
    expect(stale).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringContaining('request is now 900000000, reasoning is now 5000000') });
    expect(stale.details.prices).toEqual({ prompt: 1, completion: 1, request: 900_000_000, reasoning: 5_000_000, cacheRead: 1, cacheWrite: 1 });
    // Each price on its own, the cache prices too.
    for (const field of Object.keys(reviewed)) {
      await republish({ ...reviewed, [field]: reviewed[field]! + 7 });
      const answer = (await h.gql(APPROVE_AT, { prices: reviewed })).body.data.approveEndpoint;
      expect(answer, field).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringContaining(`(${field} is now ${reviewed[field]! + 7})`) });
    }
    expect((await chat('switchyard/demo-paid', 'mallory-ai')).status).toBe(404);
    // A part of the price set is not a review: every price is required.
    const partial = await h.gql(APPROVE_AT, { prices: { prompt: 1, completion: 1 } });
    expect(partial.body.errors.map((e: { message: string; extensions: { code: string } }) => [e.extensions.code, e.message.match(/Field "(\w+)" of required type/)?.[1]])).toEqual(
      ['cacheRead', 'cacheWrite', 'reasoning', 'request'].map((field) => ['BAD_USER_INPUT', field]),
    );
    // Back at the reviewed prices for the test below.
    await publish(mallory, 'mallory-ai', 'switchyard/demo-paid', 1);
  });

  it('routes to it once an admin approves it, at the prices reviewed', async () => {
    const APPROVE_REVIEWED = `mutation ($provider: String!, $model: String!, $prices: ReviewedPricesInput) { approveEndpoint(provider: $provider, model: $model, expectedPrices: $prices) {
      __typename ... on Endpoint { id status disabledByAdmin prices { prompt completion request reasoning cacheRead cacheWrite } } ... on DomainError { code message } } }`;
    const reviewed = { prompt: 1, completion: 1, request: 0, reasoning: 1, cacheRead: 1, cacheWrite: 1 };
    const { body } = await h.gql(APPROVE_REVIEWED, { provider: 'mallory-ai', model: 'switchyard/demo-paid', prices: reviewed });
    expect(body.data.approveEndpoint).toEqual({ __typename: 'Endpoint', id: 'switchyard/demo-paid@mallory-ai', status: 'active', disabledByAdmin: false, prices: reviewed });
    const res = await chat('switchyard/demo-paid', 'mallory-ai');
    expect(res.status).toBe(200);
    expect(malloryUpstream.requests).toHaveLength(1);
    expect((await proposals(ADMIN_KEY, 'APPROVED')).map((p) => p.id)).toContain('switchyard/demo-paid@mallory-ai');
  });
});

describe('an endpoint an admin disabled stays disabled', () => {
  it("survives the provider's republish (an amendment an admin approves), price change and enable", async () => {
    const disabled = await h.gql(DISABLE, { provider: 'mallory-ai', model: 'switchyard/demo-paid' });
    expect(disabled.body.data.disableEndpoint).toMatchObject({ status: 'disabled', disabledByAdmin: true });
    const before = malloryUpstream.requests.length;

    // A model mallory may not publish on by itself: the republish waits for an admin, whose approval keeps it disabled.
    expect(await publish(mallory, 'mallory-ai', 'switchyard/demo-paid', 3)).toMatchObject({ __typename: 'EndpointProposal', id: 'switchyard/demo-paid@mallory-ai', proposalStatus: 'PENDING' });
    const approved = await h.gql(`mutation { approveEndpoint(provider: "mallory-ai", model: "switchyard/demo-paid") { __typename ... on Endpoint { status disabledByAdmin prices { prompt } } } }`);
    expect(approved.body.data.approveEndpoint).toEqual({ __typename: 'Endpoint', status: 'disabled', disabledByAdmin: true, prices: { prompt: 3 } });
    const CUT = `mutation ($provider: String!, $model: String!) { changePrice(provider: $provider, model: $model, prices: { prompt: 2, completion: 1 }) { __typename ${ENDPOINT} } }`;
    expect((await h.gql(CUT, { provider: 'mallory-ai', model: 'switchyard/demo-paid' }, mallory.key)).body.data.changePrice).toMatchObject({ status: 'disabled' });
    const enable = await h.gql(ENABLE, { provider: 'mallory-ai', model: 'switchyard/demo-paid' }, mallory.key);
    expect(enable.body.data.enableEndpoint).toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/only an admin/) });

    expect((await chat('switchyard/demo-paid', 'mallory-ai')).status).toBe(404);
    expect((await chat('switchyard/demo-paid')).status).toBe(200);
    await h.running.core.gateway.idle();
    expect(malloryUpstream.requests).toHaveLength(before);
    expect(h.running.core.gateway.catalog.endpoint('switchyard/demo-paid@mallory-ai')!.status).toBe('disabled');

    const { body } = await h.gql(ENABLE, { provider: 'mallory-ai', model: 'switchyard/demo-paid' });
    expect(body.data.enableEndpoint).toEqual({ __typename: 'Endpoint', id: 'switchyard/demo-paid@mallory-ai', status: 'active', disabledByAdmin: false });
    expect((await chat('switchyard/demo-paid', 'mallory-ai')).status).toBe(200);
  });

  it('lets a provider enable an endpoint it disabled itself', async () => {
    expect(await publish(alice, 'alice-ai', 'alice-ai/own-model')).toMatchObject({ __typename: 'Endpoint', status: 'active' });
    expect((await h.gql(DISABLE, { provider: 'alice-ai', model: 'alice-ai/own-model' }, alice.key)).body.data.disableEndpoint).toMatchObject({ status: 'disabled', disabledByAdmin: false });
    expect((await h.gql(ENABLE, { provider: 'alice-ai', model: 'alice-ai/own-model' }, alice.key)).body.data.enableEndpoint).toMatchObject({ status: 'active' });
  });
});

describe("a model's owner decides who else serves it", () => {
  it('makes the creator the owner; another provider gets a proposal until the owner opens the model', async () => {
    expect(await publish(alice, 'alice-ai', 'alice-ai/shared')).toMatchObject({ __typename: 'Endpoint', status: 'active' });
    expect(await publish(bob, 'bob-ai', 'alice-ai/shared')).toMatchObject({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });
    expect((await h.gql(OPEN, { model: 'alice-ai/shared', open: true }, bob.key)).body.data.setModelOpenToProviders).toMatchObject({ code: 'FORBIDDEN' });

    const opened = await h.gql(OPEN, { model: 'alice-ai/shared', open: true }, alice.key);
    expect(opened.body.data.setModelOpenToProviders).toEqual({ __typename: 'Model', id: 'alice-ai/shared', openToProviders: true, ownerAccountId: alice.accountId });
    expect(await publish(bob, 'bob-ai', 'alice-ai/shared')).toMatchObject({ __typename: 'Endpoint', id: 'alice-ai/shared@bob-ai', status: 'active' });
    expect(h.running.core.gateway.catalog.endpoints('alice-ai/shared').map((e) => e.id).sort()).toEqual(['alice-ai/shared@alice-ai', 'alice-ai/shared@bob-ai']);
    // Published directly once the model was open: the proposal is settled, not left pending.
    expect((await proposals(bob.key)).map((p) => p.id)).not.toContain('alice-ai/shared@bob-ai');
  });

  it('records a rejection with its reason, which the provider sees', async () => {
    expect(await publish(bob, 'bob-ai', 'switchyard/demo')).toMatchObject({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });
    const { body } = await h.gql(REJECT, { provider: 'bob-ai', model: 'switchyard/demo', reason: 'the demo is served by Switchyard only' });
    expect(body.data.rejectEndpoint).toEqual({ __typename: 'EndpointProposal', id: 'switchyard/demo@bob-ai', proposalStatus: 'REJECTED', reason: 'the demo is served by Switchyard only', decidedBy: 'acc_root' });
    expect(await proposals(bob.key, 'REJECTED')).toContainEqual(expect.objectContaining({ id: 'switchyard/demo@bob-ai', reason: 'the demo is served by Switchyard only' }));
    expect((await h.gql(APPROVE, { provider: 'bob-ai', model: 'switchyard/demo' })).body.data.approveEndpoint).toMatchObject({ code: 'CONFLICT' });
    expect(h.running.core.gateway.catalog.endpoint('switchyard/demo@bob-ai')).toBeUndefined();
  });

  it('records who decided in the events', async () => {
    const events = await h.running.core.eventStore.readStream('provider-mallory-ai');
    const decided = events.filter((e) => e.type !== 'ProviderRegistered').map((e) => [e.type, (e.data as { decidedBy?: { accountId: string; admin: boolean }; proposedBy?: { accountId: string } }).decidedBy ?? (e.data as { proposedBy?: unknown }).proposedBy]);
    // Proposed, republished at other prices while under review (the tests above: eight times), and back.
    expect(decided.slice(0, 11)).toEqual([
      ...Array.from({ length: 9 }, () => ['EndpointProposed', { accountId: mallory.accountId, admin: false }]),
      ['EndpointApproved', { accountId: 'acc_root', admin: true }],
      ['EndpointPublished', { accountId: 'acc_root', admin: true }],
    ]);
    expect(decided).toContainEqual(['EndpointDisabled', { accountId: 'acc_root', admin: true }]);
    const model = await h.running.core.eventStore.readStream('model-alice-ai/shared');
    expect(model.map((e) => [e.type, (e.data as { ownerAccountId?: string; decidedBy?: unknown }).ownerAccountId ?? (e.data as { decidedBy?: unknown }).decidedBy])).toEqual([
      ['ModelPublished', alice.accountId],
      ['ModelOpenToProvidersSet', { accountId: alice.accountId, admin: false }],
    ]);
  });
});
