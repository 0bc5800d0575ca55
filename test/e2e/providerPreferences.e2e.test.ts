/**
 * The account's provider lists (OpenRouter's account-wide provider settings: "`ignore` is merged with the account-wide
 * ignore list. `only` narrows within the account-wide allow list; if nothing passes, the request gets 404"), over real
 * HTTP with fake upstreams and the official SDKs: set with GraphQL `setProviderPreferences`, an ignored provider is
 * never called on any route that plans one (chat, streamed chat, completions, Responses, Messages, embeddings,
 * GraphQL sendPrompt), an allow list keeps requests on its providers, a request's `only` outside it is a 404 that names
 * the account's settings, clearing restores the default route, and only the account itself (or an admin) may set them.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'pp/chat';
const EMBEDDINGS = 'openai/text-embedding-3-small';
/** Served by two providers, each stating its quantization: an endpoint variant each. */
const QUANT = 'pp/quant';
const hi = [{ role: 'user' as const, content: 'hi' }];

let h: GatewayHarness;
let cheap: FakeProvider;
let dear: FakeProvider;
let embCheap: FakeProvider;
let embDear: FakeProvider;
let q8: FakeProvider;
let q16: FakeProvider;
let user: Account;
let other: Account;
let client: OpenAI;

const SET = `mutation ($accountId: ID, $ignore: [String!], $allow: [String!]) {
  setProviderPreferences(accountId: $accountId, ignore: $ignore, allow: $allow) {
    ... on Account { id providerPreferences { ignore allow } } ... on DomainError { code message } } }`;
/** Only the lists given are sent: one left out stays as it is. */
const setPreferences = async (key: string, lists: { ignore?: string[] | null; allow?: string[] | null }, accountId?: string) =>
  (await h.gql(SET, { ...lists, ...(accountId && { accountId }) }, key)).body;
const preferencesOf = async (key: string) => (await h.gql('{ me { providerPreferences { ignore allow } } }', {}, key)).body.data.me.providerPreferences;

/** How many requests each fake upstream received while `run` ran. */
const callsDuring = async (run: () => Promise<unknown>, ...fakes: FakeProvider[]): Promise<number[]> => {
  const before = fakes.map((f) => f.requests.length);
  await run();
  return fakes.map((f, i) => f.requests.length - before[i]!);
};

const servedBy = async (body: Record<string, unknown>): Promise<string> => {
  const res = await h.chat(user.key, { model: MODEL, messages: hi, ...body });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { provider: string }).provider;
};

const refusal = async (body: Record<string, unknown>) => {
  const res = await h.chat(user.key, { model: MODEL, messages: hi, ...body });
  expect(res.status).toBe(404);
  return ((await res.json()) as { error: { message: string; metadata: { error_type: string } } }).error;
};

beforeAll(async () => {
  h = await startGatewayHarness();
  cheap = await h.fakeEndpoint({ protocol: 'openai', slug: 'pp-cheap', model: MODEL, prices: { prompt: 100, completion: 100 } });
  dear = await h.fakeEndpoint({ protocol: 'openai', slug: 'pp-dear', model: MODEL, prices: { prompt: 300, completion: 300 } });
  embCheap = await h.fakeEndpoint({ protocol: 'openai', slug: 'pp-emb-cheap', model: EMBEDDINGS, prices: { prompt: 10, completion: 0 }, maxOutput: 1 });
  q8 = await h.fakeEndpoint({ protocol: 'openai', slug: 'pp-q8', model: QUANT, prices: { prompt: 300, completion: 300 }, quantization: 'fp8' });
  q16 = await h.fakeEndpoint({ protocol: 'openai', slug: 'pp-q16', model: QUANT, prices: { prompt: 100, completion: 100 }, quantization: 'BF16' });
  embDear = await h.fakeEndpoint({ protocol: 'openai', slug: 'pp-emb-dear', model: EMBEDDINGS, prices: { prompt: 30, completion: 0 }, maxOutput: 1 });
  user = await h.openAccount({ name: 'picky', credits: 5_000_000_000 });
  other = await h.openAccount({ name: 'meddler', credits: 1_000_000_000 });
  client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0, timeout: 10_000 });
});
afterAll(async () => {
  await h.stop();
});

describe("the account's provider lists", () => {
  it('start empty, and the cheapest endpoint serves', async () => {
    expect(await preferencesOf(user.key)).toEqual({ ignore: [], allow: [] });
    expect(await servedBy({})).toBe('pp-cheap');
  });

  it('an ignored provider is never called on any route; the next endpoint serves', async () => {
    const set = await setPreferences(user.key, { ignore: ['pp-cheap', 'pp-emb-cheap'] });
    expect(set.data.setProviderPreferences).toEqual({ id: user.accountId, providerPreferences: { ignore: ['pp-cheap', 'pp-emb-cheap'], allow: [] } });
    const calls = await callsDuring(
      async () => {
        const completion = await client.chat.completions.create({ model: MODEL, messages: hi });
        expect((completion as unknown as { provider: string }).provider).toBe('pp-dear');
        const stream = await client.chat.completions.create({ model: MODEL, messages: hi, stream: true });
        for await (const _chunk of stream);
        expect((await client.completions.create({ model: MODEL, prompt: 'hi' })).model).toBe(MODEL);
        expect((await client.responses.create({ model: MODEL, input: 'hi' })).status).toBe('completed');
        const anthropic = new Anthropic({ baseURL: `${h.url}/api`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
        expect((await anthropic.messages.create({ model: MODEL, max_tokens: 64, messages: hi })).type).toBe('message');
        const sent = await h.gql('mutation ($input: PromptInput!) { sendPrompt(input: $input) { ... on SendPromptResult { provider } } }', { input: { model: MODEL, prompt: 'hi' } }, user.key);
        expect(sent.body.data.sendPrompt.provider).toBe('pp-dear');
        expect((await client.embeddings.create({ model: EMBEDDINGS, input: 'hi' })).data).toHaveLength(1);
      },
      cheap,
      dear,
      embCheap,
      embDear,
    );
    expect(calls).toEqual([0, 6, 0, 1]);
  });

  it("merges the account's ignore list with the request's: both excluded is the 404 that names the settings", async () => {
    const error = await refusal({ provider: { ignore: ['pp-dear'] } });
    expect(error.metadata.error_type).toBe('not_found');
    expect(error.message).toBe(
      "Your account's provider settings (ignore: pp-cheap, pp-emb-cheap; setProviderPreferences changes them) exclude every endpoint of pp/chat that your provider restrictions (only, ignore, order, quantizations, max_price) leave",
    );
    // A request's `only` cannot bring an ignored provider back.
    expect((await refusal({ provider: { only: ['pp-cheap'] } })).message).toMatch(/^Your account's provider settings/);
  });

  it('an allow list keeps routing to allowed providers only, whatever the request orders', async () => {
    // The ignore list left out stays; an empty one clears it.
    const set = await setPreferences(user.key, { allow: ['pp-dear'] });
    expect(set.data.setProviderPreferences.providerPreferences).toEqual({ ignore: ['pp-cheap', 'pp-emb-cheap'], allow: ['pp-dear'] });
    expect((await setPreferences(user.key, { ignore: [] })).data.setProviderPreferences.providerPreferences).toEqual({ ignore: [], allow: ['pp-dear'] });
    const calls = await callsDuring(async () => {
      expect(await servedBy({})).toBe('pp-dear');
      expect(await servedBy({ provider: { order: ['pp-cheap'] } })).toBe('pp-dear');
      expect(await servedBy({ provider: { only: ['pp-dear', 'pp-cheap'] } })).toBe('pp-dear');
    }, cheap);
    expect(calls).toEqual([0]);
  });

  it("a request's only outside the allow list gets a 404 that says the account's settings excluded every endpoint", async () => {
    const error = await refusal({ provider: { only: ['pp-cheap'] } });
    expect(error.metadata.error_type).toBe('not_found');
    expect(error.message).toMatch(/^Your account's provider settings \(allow: pp-dear; setProviderPreferences changes them\) exclude every endpoint of pp\/chat/);
    // A model with no allowed provider at all, on the other routes too.
    const demo = await h.chat(user.key, { model: 'switchyard/demo', messages: hi });
    expect(demo.status).toBe(404);
    expect(((await demo.json()) as { error: { message: string } }).error.message).toBe(
      "Your account's provider settings (allow: pp-dear; setProviderPreferences changes them) exclude every endpoint of switchyard/demo",
    );
    await expect(client.embeddings.create({ model: EMBEDDINGS, input: 'hi' })).rejects.toMatchObject({ status: 404, message: /account's provider settings/ });
  });

  it('takes a provider by slug or name in any case, once; refuses an unknown one, a provider variant and more than 50', async () => {
    expect((await setPreferences(user.key, { allow: ['PP-Dear', 'pp-dear', ' pp-cheap '] })).data.setProviderPreferences.providerPreferences.allow).toEqual(['pp-dear', 'pp-cheap']);
    const unknown = (await setPreferences(user.key, { ignore: ['pp-cheap', 'pp-chaep'] })).data.setProviderPreferences;
    expect(unknown.code).toBe('VALIDATION');
    expect(unknown.message).toMatch(/no provider "pp-chaep"/);
    // An endpoint variant the provider does not have, or a malformed one, blocks nothing: refused.
    const variant = (await setPreferences(user.key, { allow: ['pp-dear/turbo'] })).data.setProviderPreferences;
    expect(variant).toMatchObject({ code: 'VALIDATION', message: 'allow: pp-dear has no endpoint variant "turbo" (its endpoints\' tags: pp-dear)' });
    const malformed = (await setPreferences(user.key, { allow: ['pp-dear/'] })).data.setProviderPreferences;
    expect(malformed).toMatchObject({ code: 'VALIDATION', message: /^allow: "pp-dear\/" is neither a provider nor provider\/variant/ });
    const tooMany = await setPreferences(user.key, { ignore: Array.from({ length: 51 }, () => 'pp-cheap') });
    expect(tooMany.errors?.[0]).toMatchObject({ message: 'ignore: must hold at most 50 providers', extensions: { code: 'VALIDATION' } });
    expect(await preferencesOf(user.key)).toEqual({ ignore: [], allow: ['pp-dear', 'pp-cheap'] });
  });

  it('clearing restores the default route', async () => {
    const cleared = await setPreferences(user.key, { ignore: null, allow: [] });
    expect(cleared.data.setProviderPreferences.providerPreferences).toEqual({ ignore: [], allow: [] });
    expect(await servedBy({})).toBe('pp-cheap');
    expect(await servedBy({ provider: { only: ['pp-cheap'] } })).toBe('pp-cheap');
  });

  it("lets no other user set an account's provider lists; an admin may", async () => {
    const refused = await setPreferences(other.key, { ignore: ['pp-cheap'] }, user.accountId);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await preferencesOf(user.key)).toEqual({ ignore: [], allow: [] });
    const byAdmin = await setPreferences(ADMIN_KEY, { ignore: ['pp-cheap'] }, user.accountId);
    expect(byAdmin.data.setProviderPreferences).toEqual({ id: user.accountId, providerPreferences: { ignore: ['pp-cheap'], allow: [] } });
    expect(await servedBy({})).toBe('pp-dear');
    // The other account routes as before.
    const res = await h.chat(other.key, { model: MODEL, messages: hi });
    expect(((await res.json()) as { provider: string }).provider).toBe('pp-cheap');
  });
});

describe('endpoint variants (provider/quantization, as OpenRouter\'s deepinfra/fp8)', () => {
  const served = async (provider: Record<string, unknown> | null, key = user.key) => {
    const res = await h.chat(key, { model: QUANT, messages: hi, ...(provider && { provider }) });
    const body = (await res.json()) as { provider?: string; error?: { message: string; metadata: { param?: string } } };
    return { status: res.status, provider: body.provider, error: body.error };
  };

  it("are each endpoint's tag in the endpoints listing", async () => {
    const listing = (await (await fetch(`${h.url}/api/v1/models/${QUANT}/endpoints`)).json()) as { data: { endpoints: { tag: string; quantization: string }[] } };
    expect(listing.data.endpoints.map((e) => e.tag).sort()).toEqual(['pp-q16/bf16', 'pp-q8/fp8']);
    // Without a quantization, the provider's slug alone.
    const plain = (await (await fetch(`${h.url}/api/v1/models/${MODEL}/endpoints`)).json()) as { data: { endpoints: { tag: string }[] } };
    expect(plain.data.endpoints.map((e) => e.tag).sort()).toEqual(['pp-cheap', 'pp-dear']);
  });

  it("target endpoints in the request's only, ignore and order; a malformed entry is a 400", async () => {
    const calls = await callsDuring(
      async () => {
        expect(await served(null)).toMatchObject({ status: 200, provider: 'pp-q16' });
        expect(await served({ only: ['pp-q8/fp8'] })).toMatchObject({ status: 200, provider: 'pp-q8' });
        expect(await served({ ignore: ['PP-Q16/BF16'] })).toMatchObject({ status: 200, provider: 'pp-q8' });
        expect(await served({ order: ['pp-q8/fp8'] })).toMatchObject({ status: 200, provider: 'pp-q8' });
        // The provider by name with a variant; a variant the provider's endpoint does not have names nothing.
        expect(await served({ only: ['pp-q8/fp8', 'pp-q16/fp8'] })).toMatchObject({ status: 200, provider: 'pp-q8' });
      },
      q8,
      q16,
    );
    expect(calls).toEqual([4, 1]);
    expect(await served({ only: ['pp-q16/fp8'] })).toMatchObject({ status: 404 });
    for (const [field, entry] of [['only', 'pp-q8/'], ['ignore', '/fp8'], ['order', 'pp-q8/fp8/x']] as const) {
      const refused = await served({ [field]: [entry] });
      expect(refused.status).toBe(400);
      expect(refused.error!.metadata.param).toBe(`provider.${field}`);
      expect(refused.error!.message).toBe(
        `provider.${field}: ${JSON.stringify(entry)} is neither a provider nor provider/variant (a variant is an endpoint's quantization, 1 to 40 letters, digits, ".", "_" or "-", as the endpoint's tag in GET /api/v1/models/{author}/{slug}/endpoints shows: deepinfra/fp8)`,
      );
    }
    await expect(client.chat.completions.create({ model: QUANT, messages: hi, provider: { only: ['pp-q8/'] } } as never)).rejects.toMatchObject({ status: 400 });
  });

  it("target endpoints in the account's lists, stored as their tags", async () => {
    const set = await setPreferences(other.key, { ignore: ['PP-Q16/bf16'] });
    expect(set.data.setProviderPreferences.providerPreferences).toEqual({ ignore: ['pp-q16/bf16'], allow: [] });
    const calls = await callsDuring(async () => {
      expect(await served(null, other.key)).toMatchObject({ status: 200, provider: 'pp-q8' });
      // Its other endpoints are not ignored: pp/chat's pp-cheap still serves.
      const res = await h.chat(other.key, { model: MODEL, messages: hi });
      expect(((await res.json()) as { provider: string }).provider).toBe('pp-cheap');
    }, q16);
    expect(calls).toEqual([0]);
    expect((await setPreferences(other.key, { ignore: [], allow: ['pp-q8/fp8'] })).data.setProviderPreferences.providerPreferences).toEqual({ ignore: [], allow: ['pp-q8/fp8'] });
    expect(await served(null, other.key)).toMatchObject({ status: 200, provider: 'pp-q8' });
    expect((await served({ only: ['pp-q16'] }, other.key)).error!.message).toMatch(/^Your account's provider settings \(allow: pp-q8\/fp8;/);
    const wrong = (await setPreferences(other.key, { ignore: ['pp-q16/fp8'] })).data.setProviderPreferences;
    expect(wrong).toMatchObject({ code: 'VALIDATION', message: 'ignore: pp-q16 has no endpoint variant "fp8" (its endpoints\' tags: pp-q16/bf16)' });
    await setPreferences(other.key, { ignore: null, allow: null });
  });
});
