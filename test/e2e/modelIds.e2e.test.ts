/**
 * Model ids as OpenRouter clients write them, through the official `openai` SDK and real HTTP: chains of variant
 * suffixes (`x:free:nitro`), the deprecated `:thinking` and `:extended`, `:exacto`, and the refused ones; the auto
 * router's `openrouter/auto-beta`; and a version spelt with dashes for dots (`claude-3-5-sonnet`) or the reverse.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const FREE = { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 };
const MESSAGES = [{ role: 'user' as const, content: 'Say hello to the gateway' }];

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let thinker: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'paid', model: 'test/chain', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'gratis', model: 'test/chain', prices: FREE, variants: ['free'] });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'sonnet', model: 'test/claude-3.5-sonnet', prices: { prompt: 100, completion: 100 } });
  // Exact ids win: both spellings exist.
  await h.fakeEndpoint({ protocol: 'openai', slug: 'dashed', model: 'test/pair-2-0', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'dotted', model: 'test/pair-2.0', prices: { prompt: 100, completion: 100 } });
  // Ambiguous: test/tri-1-2-3 could be either.
  await h.fakeEndpoint({ protocol: 'openai', slug: 'tri-a', model: 'test/tri-1.2-3', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'tri-b', model: 'test/tri-1-2.3', prices: { prompt: 100, completion: 100 } });
  thinker = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'thinker', model: 'test/think', prices: { prompt: 100, completion: 100 }, maxOutput: 4_000 });
});
afterAll(async () => {
  await h.stop();
});

const record = (id: string) => h.generation(user.key, id);

const refusal = async (model: string) => {
  const res = await h.chat(user.key, { model, messages: MESSAGES });
  expect(res.status).toBe(400);
  return ((await res.json()) as { error: { message: string; metadata: Record<string, unknown> } }).error;
};

describe('variant suffix chains', () => {
  it('combine a catalog variant with sort variants: x:free:nitro is the free variant, named as one', async () => {
    for (const model of ['test/chain:free:nitro', 'test/chain:nitro:free', 'test/chain:floor:free:extended']) {
      const completion = await client.chat.completions.create({ model, messages: MESSAGES });
      expect(completion.model).toBe('test/chain:free');
      expect((completion as unknown as { provider: string }).provider).toBe('gratis');
      expect(await record(completion.id)).toMatchObject({ model: 'test/chain:free', provider_name: 'gratis', total_cost: 0, switchyard: { requested_models: [model] } });
    }
    const paid = await client.chat.completions.create({ model: 'test/chain:nitro:floor:exacto', messages: MESSAGES });
    expect(paid.model).toBe('test/chain');
    expect(await record(paid.id)).toMatchObject({ model: 'test/chain', provider_name: 'paid', switchyard: { requested_models: ['test/chain:nitro:floor:exacto'] } });
  });

  it('name one listing on the single-model routes: routing variants dropped, the catalog variant kept', async () => {
    const one = async (path: string) => ((await (await fetch(`${h.url}/api/v1/${path}`)).json()) as { data: { id: string } }).data.id;
    expect(await one('model/test/chain:nitro:free')).toBe('test/chain:free');
    expect(await one('model/test/chain:floor:nitro')).toBe('test/chain');
    expect(await one('models/test/chain:free:exacto/endpoints')).toBe('test/chain:free');
    expect((await fetch(`${h.url}/api/v1/model/test/chain:free:free`)).status).toBe(404);
  });

  it('refuse two catalog variants, naming the model, and the variants Switchyard cannot serve, saying why', async () => {
    const twice = await client.chat.completions.create({ model: 'test/chain:free:nitro:free', messages: MESSAGES }).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(OpenAI.BadRequestError);
    expect((twice as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('test/chain:free:nitro:free names more than one catalog variant (at most one: :free)');
    expect(await refusal('test/chain:free:free')).toMatchObject({ metadata: { param: 'model', model: 'test/chain:free:free' } });
    expect((await refusal('test/chain:nitro:online')).message).toBe(
      'The :online variant of test/chain is not supported (Switchyard has no web search (nor the web plugin that replaced :online); supported: :free, :nitro, :floor, :exacto, :thinking, :extended)',
    );
    expect((await refusal('test/chain:batch')).message).toContain('The :batch variant of test/chain is not supported (Switchyard has no Batch API;');
    expect((await refusal('test/chain:turbo')).message).toBe('The :turbo variant of test/chain is not supported (supported: :free, :nitro, :floor, :exacto, :thinking, :extended)');
    expect((await refusal('test/chain::free')).message).toBe('test/chain::free is not a valid model ID');
  });

  it(':thinking turns reasoning on unless the request sets it; :extended changes nothing', async () => {
    const sent = async (body: Record<string, unknown>) => {
      const res = await h.chat(user.key, { messages: MESSAGES, max_tokens: 3_000, ...body });
      const answer = (await res.json()) as { model: string };
      expect(res.status, JSON.stringify(answer)).toBe(200);
      expect(answer.model).toBe('test/think');
      return thinker.requests.at(-1)!.body as { thinking?: unknown };
    };
    // On at the default effort (medium): half of max_tokens.
    expect(await sent({ model: 'test/think:thinking' })).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 1_500 } });
    expect(await sent({ model: 'test/think:extended:thinking', reasoning: { max_tokens: 1_200 } })).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 1_200 } });
    expect((await sent({ model: 'test/think:thinking', reasoning: { enabled: false } })).thinking).toBeUndefined();
    expect((await sent({ model: 'test/think:extended' })).thinking).toBeUndefined();
  });
});

describe('aliases', () => {
  it('openrouter/free answers from a model with an endpoint that costs nothing, and never from a paid endpoint', async () => {
    const before = await h.settledBalance(user.accountId);
    const completion = await client.chat.completions.create({ model: 'openrouter/free', messages: MESSAGES });
    // The demo model (zero-priced) and test/chain's :free endpoint are the free ones here; by id, the demo first.
    expect(completion.model).toBe('switchyard/demo');
    expect(await record(completion.id)).toMatchObject({ router: 'openrouter/free', total_cost: 0 });
    // Without the demo, test/chain's free endpoint; when it fails, its paid endpoint is not tried.
    const ignoring = { provider: { ignore: ['switchyard'] } };
    const free = await client.chat.completions.create({ model: 'openrouter/free', messages: MESSAGES, ...ignoring } as never);
    expect((free as { model: string }).model).toBe('test/chain:free');
    // The first two fakes of beforeAll: test/chain's paid endpoint, then its free one.
    const [paid, gratis] = [h.fakes[0]!, h.fakes[1]!];
    const paidCalls = paid.requests.length;
    gratis.setDefault({ status: 503 });
    try {
      const failed = await h.chat(user.key, { model: 'openrouter/free', messages: MESSAGES, ...ignoring });
      expect(failed.status).toBe(503);
    } finally {
      gratis.setDefault({});
    }
    expect(paid.requests.length).toBe(paidCalls);
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);
    // It is a router id the catalog's checks know (a default model may name it).
    const set = await h.gql('mutation { setDefaultModel(model: "openrouter/free") { ... on Account { defaultModel } ... on DomainError { code message } } }', {}, user.key);
    expect(set.body.data.setDefaultModel).toEqual({ defaultModel: 'openrouter/free' });
    await h.gql('mutation { setDefaultModel(model: null) { __typename } }', {}, user.key);
  });

  it('openrouter/auto-beta is the auto router', async () => {
    const completion = await client.chat.completions.create({
      model: 'openrouter/auto-beta',
      messages: MESSAGES,
      // @ts-expect-error OpenRouter's plugins are not in the SDK's types
      plugins: [{ id: 'auto-router', allowed_models: ['test/claude-*'] }],
    });
    expect(completion.model).toBe('test/claude-3.5-sonnet');
    expect(await record(completion.id)).toMatchObject({ model: 'test/claude-3.5-sonnet', router: expect.stringMatching(/^openrouter\/auto-beta/) });
    // Its variant suffixes hold for what it picks: :free never reaches a paid endpoint (this model has none free).
    const before = await h.settledBalance(user.accountId);
    const free = await h.chat(user.key, { model: 'openrouter/auto-beta:free', messages: MESSAGES, plugins: [{ id: 'auto-router', allowed_models: ['test/claude-*'] }] });
    expect(free.status).toBe(404);
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);
  });

  it('a version spelt with dashes for dots (or the reverse) routes to the catalog model, variants and all', async () => {
    const completion = await client.chat.completions.create({ model: 'test/claude-3-5-sonnet', messages: MESSAGES });
    expect(completion.model).toBe('test/claude-3.5-sonnet');
    expect(await record(completion.id)).toMatchObject({ model: 'test/claude-3.5-sonnet', provider_name: 'sonnet', switchyard: { requested_models: ['test/claude-3-5-sonnet'] } });
    expect((await client.chat.completions.create({ model: 'test/claude-3-5-sonnet:nitro', messages: MESSAGES })).model).toBe('test/claude-3.5-sonnet');
    // Exact ids win; two spellings that both exist resolve to neither.
    expect(((await client.chat.completions.create({ model: 'test/pair-2-0', messages: MESSAGES })) as unknown as { provider: string }).provider).toBe('dashed');
    expect(((await client.chat.completions.create({ model: 'test/pair-2.0', messages: MESSAGES })) as unknown as { provider: string }).provider).toBe('dotted');
    expect((await refusal('test/tri-1-2-3')).message).toBe('test/tri-1-2-3 is not a valid model ID');
  });

  it('the single-model routes resolve it the same way', async () => {
    const one = await fetch(`${h.url}/api/v1/model/test/claude-3-5-sonnet`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { data: { id: string } }).data.id).toBe('test/claude-3.5-sonnet');
    const endpoints = (await (await fetch(`${h.url}/api/v1/models/test/claude-3-5-sonnet/endpoints`)).json()) as { data: { id: string; endpoints: { tag: string }[] } };
    expect(endpoints.data).toMatchObject({ id: 'test/claude-3.5-sonnet', endpoints: [{ tag: 'sonnet' }] });
    expect((await client.models.retrieve('test/claude-3-5-sonnet')).id).toBe('test/claude-3.5-sonnet');
    expect((await fetch(`${h.url}/api/v1/model/test/tri-1-2-3`)).status).toBe(404);
  });
});

describe('one reading of a model id on every face', () => {
  /** An id, and the catalog model a chat, the single-model REST route and GraphQL `model(id:)` each find for it (null: none). */
  const IDS: [string, string | null][] = [
    ['test/claude-3-5-sonnet', 'test/claude-3.5-sonnet'],
    ['test/claude-3-5-sonnet:nitro', 'test/claude-3.5-sonnet'],
    ['test/chain:free', 'test/chain'],
    ['test/chain:free:nitro', 'test/chain'],
    ['test/chain:nitro:floor:exacto', 'test/chain'],
    ['test/think:thinking', 'test/think'],
    ['test/think:extended', 'test/think'],
    ['test/pair-2-0', 'test/pair-2-0'],
    ['test/tri-1-2-3', null],
    ['test/chain:free:free', null],
    ['test/chain:online', null],
    ['test/chain::free', null],
    ['nobody/nothing', null],
  ];

  it('GraphQL model(id:), GET /api/v1/model/{author}/{slug} and a chat resolve the same ids to the same model', async () => {
    for (const [id, expected] of IDS) {
      const graphql = (await h.gql('query ($id: ID!) { model(id: $id) { id } }', { id })).body.data.model as { id: string } | null;
      expect(graphql?.id ?? null, `GraphQL ${id}`).toBe(expected);
      const rest = await fetch(`${h.url}/api/v1/model/${id}`);
      expect(rest.status, `REST ${id}`).toBe(expected === null ? 404 : 200);
      if (expected !== null) expect(((await rest.json()) as { data: { id: string } }).data.id.replace(/:free$/, ''), `REST ${id}`).toBe(expected);
      const chat = await h.chat(user.key, { model: id, messages: MESSAGES });
      expect(chat.status, `chat ${id}`).toBe(expected === null ? 400 : 200);
      if (expected !== null) expect(((await chat.json()) as { model: string }).model.replace(/:free$/, ''), `chat ${id}`).toBe(expected);
    }
  });
});
