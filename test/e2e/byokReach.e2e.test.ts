/**
 * What an account's own provider keys (BYOK) reach, over real HTTP against fake upstreams: a model whose provider has
 * no shared credential but whose key the account brought is listed as available to that account (REST
 * `/api/v1/models`, its count, one model and its endpoints; GraphQL `models`, `Model.available`, `Endpoint.available`),
 * and only to it, and only while its key is active; `openrouter/auto` and `openrouter/free` pick it for that account.
 * The Responses API (the official `openai` SDK) and the Messages API (`@anthropic-ai/sdk`) report a BYOK call's fee as
 * `cost`, with `is_byok` and the list price in `cost_details.upstream_inference_cost`, whole and streamed.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationsDuring, FEE, LIST, PRICES, USAGE } from '../support/byokFixture.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const UNSET_ENV = 'BYOK_REACH_UNSET_KEY';
const OWN_KEY = 'sk-reach-own-provider-key-4b1d';

let h: GatewayHarness;
/** The upstream of the providers without a shared key: accepts any key and records what it received. */
let acme: FakeProvider;
/** Has its own key for `reach-acme` and `reach-mover`. */
let own: Account;
/** Has no key of its own. */
let plain: Account;

/** A provider registered by the admin whose shared key is an environment variable that is not set, BYOK allowed. */
const keylessProvider = async (slug: string, models: { model: string; prices: { prompt: number; completion: number } }[]) => {
  const registered = await h.gqlOk(
    `mutation ($slug: String!, $baseUrl: String!, $env: String!) { registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, credentialEnv: $env) { ... on Provider { slug } ... on DomainError { code message } } }`,
    { slug, baseUrl: acme.baseUrl, env: UNSET_ENV },
  );
  expect(registered.registerProvider).toEqual({ slug });
  for (const { model, prices } of models) {
    const published = await h.gqlOk(
      `mutation ($slug: String!, $model: String!, $prices: PricesInput!) { publishEndpoint(provider: $slug, model: $model, upstreamModel: "fake-model", prices: $prices, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`,
      { slug, model, prices },
    );
    expect(published.publishEndpoint).toEqual({ id: `${model}@${slug}` });
  }
  expect((await h.gqlOk(`mutation ($p: String!) { setProviderByok(provider: $p, allowed: true) { ... on Provider { byok } ... on DomainError { code message } } }`, { p: slug })).setProviderByok).toEqual({ byok: true });
};

const setKey = async (who: Account, provider: string) => {
  const data = await h.gqlOk(
    `mutation ($provider: String!, $apiKey: String!) { setByokKey(provider: $provider, apiKey: $apiKey) { ... on Account { byokKeys { provider status } } ... on DomainError { code message } } }`,
    { provider, apiKey: OWN_KEY },
    who.key,
  );
  expect(data.setByokKey.byokKeys).toContainEqual({ provider, status: 'ACTIVE' });
};

const get = async (path: string, key: string | null) => {
  const res = await fetch(`${h.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  expect(res.status, path).toBe(200);
  return (await res.json()) as any;
};
const listed = async (key: string | null, query = ''): Promise<{ id: string; available: boolean }[]> => (await get(`/api/v1/models${query}`, key)).data;
const listedIds = async (key: string | null, query = '') => (await listed(key, query)).map((m) => m.id);
const count = async (key: string | null) => (await get('/api/v1/models/count', key)).data.count as number;
const graphqlModel = async (key: string, id: string) =>
  (await h.gqlOk('query ($id: ID!) { model(id: $id) { available endpoints { available unavailableReason } } }', { id }, key)).model;
const graphqlListed = async (key: string) =>
  (await h.gqlOk('{ models(first: 50) { edges { node { id available } } } }', {}, key)).models.edges.map((e: { node: { id: string; available: boolean } }) => e.node);

beforeAll(async () => {
  h = await startGatewayHarness({ PROVIDER_CREDENTIAL_ENV_ALLOW: UNSET_ENV });
  acme = await startFakeProvider('openai');
  acme.setDefault({ text: 'ok', usage: USAGE });
  h.fakes.push(acme);
  await keylessProvider('reach-acme', [
    { model: 'reach/own', prices: PRICES },
    { model: 'reach/gratis', prices: { prompt: 0, completion: 0 } },
  ]);
  await keylessProvider('reach-mover', [{ model: 'reach/moved', prices: PRICES }]);
  // A provider with a shared key: what an account without a key of its own is charged in full.
  const shared = await h.fakeEndpoint({ protocol: 'openai', slug: 'reach-shared', model: 'reach/shared', prices: PRICES });
  shared.setDefault({ text: 'ok', usage: USAGE });
  own = await h.openAccount({ credits: 1_000_000_000 });
  plain = await h.openAccount({ credits: 1_000_000_000 });
  await setKey(own, 'reach-acme');
  await setKey(own, 'reach-mover');
});

afterAll(async () => {
  await h?.stop();
});

describe('the models listing, for an account with its own key for a provider that has no shared one', () => {
  it('lists the models that key reaches as available to that account (REST list, count, model, endpoints), and to no one else', async () => {
    expect(await listedIds(null)).not.toContain('reach/own');
    expect(await listedIds(plain.key)).not.toContain('reach/own');
    const mine = await listed(own.key);
    expect(mine.find((m) => m.id === 'reach/own')).toMatchObject({ available: true });
    expect(mine.find((m) => m.id === 'reach/gratis')).toMatchObject({ available: true });
    expect((await listed(plain.key, '?include_unavailable=true')).find((m) => m.id === 'reach/own')).toMatchObject({ available: false });
    // reach/own, reach/gratis and (until its provider moves, below) reach/moved.
    expect(await count(own.key)).toBe((await count(plain.key)) + 3);
    expect(await count(null)).toBe(await count(plain.key));
    // A management key calls no model: the public listing reads it as anonymous rather than refusing it.
    const management = (await h.gqlOk(`mutation ($a: ID) { createApiKey(name: "m", kind: MANAGEMENT, accountId: $a) { ... on CreatedApiKey { secret } } }`, { a: own.accountId })).createApiKey.secret as string;
    expect(await listedIds(management)).toEqual(await listedIds(null));

    expect(await get('/api/v1/models/reach%2Fown', own.key)).toMatchObject({ id: 'reach/own', available: true });
    expect(await get('/api/v1/models/reach%2Fown', plain.key)).toMatchObject({ id: 'reach/own', available: false });
    const endpoints = async (key: string | null) => (await get('/api/v1/models/reach/own/endpoints', key)).data.endpoints[0];
    expect(await endpoints(own.key)).toMatchObject({ available: true, status: 0, unavailable_reason: null });
    expect(await endpoints(null)).toMatchObject({ available: false, status: -1, unavailable_reason: 'its credentials are not available' });
  });

  it('says the same on GraphQL: models, Model.available and Endpoint.available follow the caller', async () => {
    expect((await graphqlListed(own.key)).find((m: { id: string }) => m.id === 'reach/own')).toEqual({ id: 'reach/own', available: true });
    expect((await graphqlListed(plain.key)).map((m: { id: string }) => m.id)).not.toContain('reach/own');
    expect(await graphqlModel(own.key, 'reach/own')).toEqual({ available: true, endpoints: [{ available: true, unavailableReason: null }] });
    expect(await graphqlModel(plain.key, 'reach/own')).toEqual({ available: false, endpoints: [{ available: false, unavailableReason: 'its credentials are not available' }] });
  });

  it('stops listing them once the key is no longer active (its provider points elsewhere)', async () => {
    expect(await listedIds(own.key)).toContain('reach/moved');
    const moved = await h.gqlOk(`mutation { setProviderBaseUrl(provider: "reach-mover", baseUrl: "http://127.0.0.2:9") { ... on Provider { slug } ... on DomainError { code message } } }`);
    expect(moved.setProviderBaseUrl).toEqual({ slug: 'reach-mover' });
    expect((await h.gqlOk('{ me { byokKeys { provider status } } }', {}, own.key)).me.byokKeys).toContainEqual({ provider: 'reach-mover', status: 'NEEDS_CONFIRMATION' });
    expect(await listedIds(own.key)).not.toContain('reach/moved');
    expect((await listed(own.key, '?include_unavailable=true')).find((m) => m.id === 'reach/moved')).toMatchObject({ available: false });
    expect((await graphqlModel(own.key, 'reach/moved')).available).toBe(false);
  });
});

describe('the routers, for an account with its own key for a provider that has no shared one', () => {
  it('openrouter/auto picks a model only that key reaches, and sends it that key; another account finds none', async () => {
    const body = { model: 'openrouter/auto', messages: [{ role: 'user', content: 'hi' }], plugins: [{ id: 'auto-router', allowed_models: ['reach/own'] }] };
    const sent = await authorizationsDuring(acme, async () => {
      const res = await h.chat(own.key, body);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ model: 'reach/own', usage: { is_byok: true, cost: FEE / 1e9 } });
    });
    expect(sent).toEqual([`Bearer ${OWN_KEY}`]);
    const refused = await h.chat(plain.key, body);
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({ error: { message: expect.stringMatching(/^The auto router found no model/) } });
  });

  it('openrouter/free picks a free model only that key reaches; another account finds none', async () => {
    const body = { model: 'openrouter/free', messages: [{ role: 'user', content: 'hi' }], provider: { only: ['reach-acme'] } };
    const sent = await authorizationsDuring(acme, async () => {
      const res = await h.chat(own.key, body);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ model: 'reach/gratis', usage: { is_byok: true, cost: 0 } });
    });
    expect(sent).toEqual([`Bearer ${OWN_KEY}`]);
    const refused = await h.chat(plain.key, body);
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({ error: { message: expect.stringMatching(/^openrouter\/free found no model/) } });
  });
});

describe('is_byok and the upstream cost on the Responses and Messages APIs', () => {
  it('Responses (the openai SDK): usage carries the fee as cost, is_byok and cost_details, whole and streamed', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: own.key, maxRetries: 0 });
    const byok = { cost: FEE / 1e9, is_byok: true, cost_details: { upstream_inference_cost: LIST / 1e9, upstream_inference_input_cost: 7_000 / 1e9, upstream_inference_output_cost: 9_003 / 1e9 } };
    const whole = await client.responses.create({ model: 'reach/own', input: 'hi' });
    expect(whole.usage).toMatchObject(byok);
    const stream = client.responses.stream({ model: 'reach/own', input: 'hi' });
    expect((await stream.finalResponse()).usage).toMatchObject(byok);

    const shared = await new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: plain.key, maxRetries: 0 }).responses.create({ model: 'reach/shared', input: 'hi' });
    expect(shared.usage).toMatchObject({ cost: LIST / 1e9, is_byok: false, cost_details: { upstream_inference_cost: null } });
    expect((await h.settledBalance(own.accountId)).settled).toBeGreaterThanOrEqual(2 * FEE);
  });

  it('Messages (@anthropic-ai/sdk): usage carries the fee as cost, is_byok and cost_details, whole and streamed', async () => {
    const client = new Anthropic({ baseURL: `${h.url}/api`, apiKey: own.key, maxRetries: 0 });
    const byok = { cost: FEE / 1e9, is_byok: true, cost_details: { upstream_inference_cost: LIST / 1e9, upstream_inference_prompt_cost: 7_000 / 1e9, upstream_inference_completions_cost: 9_003 / 1e9 } };
    const whole = await client.messages.create({ model: 'reach/own', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(whole.usage).toMatchObject(byok);
    const events = await client.messages.create({ model: 'reach/own', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], stream: true });
    let delta: unknown;
    for await (const event of events) if (event.type === 'message_delta') delta = event.usage;
    expect(delta).toMatchObject(byok);

    const shared = await new Anthropic({ baseURL: `${h.url}/api`, apiKey: plain.key, maxRetries: 0 }).messages.create({ model: 'reach/shared', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(shared.usage).toMatchObject({ cost: LIST / 1e9, is_byok: false, cost_details: { upstream_inference_cost: null } });
  });
});

describe("a workflow's search.models step, for a workflow whose account has its own key", () => {
  /** Run a one-step workflow that searches the catalog for `reach/`, as `who`; the ids the step found. */
  const searchedBy = async (who: Account): Promise<string[]> => {
    const definition = { name: 'Reach search', trigger: { type: 'manual' }, steps: [{ key: 'pick', type: 'search.models', input: { search: 'reach/' } }] };
    const id = (await h.gqlOk(`mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message } } }`, { d: definition }, who.key)).createWorkflow.id as string;
    const runId = (await h.gqlOk(`mutation ($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id } ... on DomainError { code message } } }`, { id }, who.key)).runWorkflow.id as string;
    const until = Date.now() + 30_000;
    for (;;) {
      const run = (await h.gqlOk(`query ($id: ID!) { workflowRun(id: $id) { status error { code message } steps { key output } } }`, { id: runId }, who.key)).workflowRun;
      if (run.status === 'SUCCEEDED') return (run.steps[0].output.items as { id: string }[]).map((m) => m.id);
      if (run.status !== 'RUNNING' && run.status !== 'QUEUED') throw new Error(`run ${runId} ended ${JSON.stringify(run)}`);
      if (Date.now() > until) throw new Error(`run ${runId} did not end`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it('finds the models that key reaches, as the listing shows them to that account; a designer without a key finds only the shared ones', async () => {
    const keyed = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
    const keyless = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
    await setKey(keyed, 'reach-acme');
    const found = await searchedBy(keyed);
    expect(found).toEqual(expect.arrayContaining(['reach/own', 'reach/shared']));
    const foundWithout = await searchedBy(keyless);
    expect(foundWithout).toContain('reach/shared');
    expect(foundWithout).not.toContain('reach/own');
  });
});
