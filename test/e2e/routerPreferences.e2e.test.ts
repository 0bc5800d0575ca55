/**
 * The routers (`openrouter/auto`, `openrouter/free`) pick their models within the account's provider lists and the
 * request's `provider` preferences, over real HTTP with fake upstreams and the official `openai` SDK: a router never
 * picks a model none of whose endpoints is allowed when an allowed one is there, and `response.model` names the pick.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness, type Prices } from '../support/gatewayHarness.js';

const FREE = { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 };
const MESSAGES = [{ role: 'user' as const, content: 'How are you today?' }];
/** Keeps the auto router to this file's models (the seed's demo models are cheaper still). */
const OURS = { plugins: [{ id: 'auto-router', allowed_models: ['rp/*'] }] };

let h: GatewayHarness;
let cheap: FakeProvider;
let dear: FakeProvider;
let gratis: FakeProvider;
let open: FakeProvider;
let picky: Account;
let client: OpenAI;

/** Another model on a provider the harness registered. */
const publish = async (provider: string, model: string, prices: Prices, variants: string[] = []) => {
  const { body } = await h.gql(
    `mutation ($provider: String!, $model: String!, $prices: PricesInput!, $variants: [VariantTag!]) {
      publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: $prices, contextLength: 16000, maxOutput: 1000, variants: $variants) { ... on Endpoint { id } ... on DomainError { message } } }`,
    { provider, model, prices, variants: variants.map((v) => v.toUpperCase()) },
    ADMIN_KEY,
  );
  expect(body.data.publishEndpoint).toEqual({ id: `${model}@${provider}` });
};

/** How many requests each fake upstream received while `run` ran. */
const callsDuring = async (run: () => Promise<unknown>, ...fakes: FakeProvider[]): Promise<number[]> => {
  const before = fakes.map((f) => f.requests.length);
  await run();
  return fakes.map((f, i) => f.requests.length - before[i]!);
};

beforeAll(async () => {
  h = await startGatewayHarness();
  cheap = await h.fakeEndpoint({ protocol: 'openai', slug: 'rp-cheap', model: 'rp/cheap', prices: { prompt: 10, completion: 10 } });
  dear = await h.fakeEndpoint({ protocol: 'openai', slug: 'rp-dear', model: 'rp/dear', prices: { prompt: 500, completion: 500 } });
  // Three free models on one provider: all the free router's picks (at most three, by id) unless it is left out.
  gratis = await h.fakeEndpoint({ protocol: 'openai', slug: 'rp-gratis', model: 'rp/free-1', prices: FREE, variants: ['free'] });
  await publish('rp-gratis', 'rp/free-2', FREE, ['free']);
  await publish('rp-gratis', 'rp/free-3', FREE, ['free']);
  open = await h.fakeEndpoint({ protocol: 'openai', slug: 'rp-open', model: 'rp/free-4', prices: FREE, variants: ['free'] });
  // The auto router picks one model: the cheapest.
  const { body } = await h.gql(`mutation ($rules: JSON!) { setAutoRouterRules(rules: $rules) { ... on AutoRouterRules { rules } ... on DomainError { message } } }`, {
    rules: [{ name: 'cheapest', sort: 'price', limit: 1 }],
  });
  expect(body.data.setAutoRouterRules.rules).toHaveLength(1);
  picky = await h.openAccount({ name: 'picky', credits: 5_000_000_000 });
  client = new OpenAI({ apiKey: picky.key, baseURL: `${h.url}/api/v1`, maxRetries: 0, timeout: 10_000 });
});
afterAll(async () => {
  await h.stop();
});

describe('the auto router', () => {
  it("picks the cheapest model; with that model's provider on the account's ignore list, an allowed model answers", async () => {
    const usual = await client.chat.completions.create({ model: 'openrouter/auto', messages: MESSAGES, ...OURS } as never);
    expect((usual as OpenAI.ChatCompletion).model).toBe('rp/cheap');

    const set = await h.gql(`mutation { setProviderPreferences(ignore: ["rp-cheap"]) { ... on Account { providerPreferences { ignore } } ... on DomainError { message } } }`, {}, picky.key);
    expect(set.body.data.setProviderPreferences).toEqual({ providerPreferences: { ignore: ['rp-cheap'] } });
    const calls = await callsDuring(async () => {
      const completion = (await client.chat.completions.create({ model: 'openrouter/auto', messages: MESSAGES, ...OURS } as never)) as OpenAI.ChatCompletion;
      expect(completion.model).toBe('rp/dear');
      expect(completion.choices[0]!.message.content).toBe('Echo: How are you today?');
      expect(await h.generation(picky.key, completion.id)).toMatchObject({ model: 'rp/dear', provider_name: 'rp-dear', router: 'openrouter/auto (cheapest)' });
      // Streamed, and through openrouter/auto-beta, the same pick.
      const stream = await client.chat.completions.create({ model: 'openrouter/auto-beta', messages: MESSAGES, stream: true, ...OURS } as never);
      const models = new Set<string>();
      for await (const chunk of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) models.add(chunk.model);
      expect([...models]).toEqual(['rp/dear']);
    }, cheap, dear);
    expect(calls).toEqual([0, 2]);
    await h.gql('mutation { setProviderPreferences(ignore: null) { __typename } }', {}, picky.key);
  });

  it("keeps to the request's provider preferences: only, ignore, order without fallbacks", async () => {
    for (const provider of [{ only: ['rp-dear'] }, { ignore: ['rp-cheap'] }, { order: ['rp-dear'], allow_fallbacks: false }]) {
      const res = await h.chat(picky.key, { model: 'openrouter/auto', messages: MESSAGES, provider, ...OURS });
      const answer = (await res.json()) as { model: string };
      expect(res.status, JSON.stringify(answer)).toBe(200);
      expect(answer.model).toBe('rp/dear');
    }
  });

  it('answers 404 when the preferences leave no model, saying so', async () => {
    const res = await h.chat(picky.key, { model: 'openrouter/auto', messages: MESSAGES, provider: { ignore: ['rp-cheap', 'rp-dear'] }, ...OURS });
    expect(res.status).toBe(404);
    const { error } = (await res.json()) as { error: { message: string; metadata: { error_type: string } } };
    expect(error.metadata.error_type).toBe('not_found');
    expect(error.message).toMatch(/^The auto router found no model it can serve for this request within the auto-router plugin's allowed_models and excluded_models and your provider preferences/);
  });
});

describe('the free router', () => {
  it('picks among the free models an allowed endpoint serves', async () => {
    const calls = await callsDuring(async () => {
      const res = await h.chat(picky.key, { model: 'openrouter/free', messages: MESSAGES, provider: { ignore: ['rp-gratis'] } });
      const answer = (await res.json()) as { model: string };
      expect(res.status, JSON.stringify(answer)).toBe(200);
      expect(answer.model).toBe('rp/free-4:free');
    }, gratis, open);
    expect(calls).toEqual([0, 1]);
  });
});
