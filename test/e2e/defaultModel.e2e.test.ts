/**
 * The account's default model (OpenRouter: "If `model` is omitted, the user's default model is used"), over real
 * HTTP and the official openai SDK: set with GraphQL `setDefaultModel`, it answers chat and legacy completions that
 * name no model; cleared, such a request is a 400 that says how to set one; a model the catalog does not know is
 * refused; only the account itself (or an admin) may set it.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let chat: FakeProvider;
let user: Account;
let other: Account;
let client: OpenAI;

const SET = `mutation ($accountId: ID, $model: String) {
  setDefaultModel(accountId: $accountId, model: $model) { ... on Account { id defaultModel } ... on DomainError { code message } } }`;
const setDefault = async (key: string, model: string | null, accountId?: string) => (await h.gql(SET, { model, ...(accountId && { accountId }) }, key)).body;

/** A request the openai SDK's types would not let through: no model. */
const noModel = <T>(body: T) => body as T & { model: string };

beforeAll(async () => {
  h = await startGatewayHarness();
  chat = await h.fakeEndpoint({ protocol: 'openai', slug: 'dm-paid', model: 'dm/chat', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'dm-free', model: 'dm/chat', prices: { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }, variants: ['free'] });
  user = await h.openAccount({ name: 'defaulter', credits: 1_000_000_000 });
  other = await h.openAccount({ name: 'meddler', credits: 1_000_000_000 });
  client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await h.stop();
});

describe('the account default model', () => {
  it('answers a chat request without model once set, and shows on the Account', async () => {
    const set = await setDefault(user.key, 'dm/chat');
    expect(set.data.setDefaultModel).toEqual({ id: user.accountId, defaultModel: 'dm/chat' });
    const before = chat.requests.length;
    const completion = await client.chat.completions.create(noModel({ messages: [{ role: 'user' as const, content: 'hi' }] }));
    expect(completion.model).toBe('dm/chat');
    expect(completion.choices[0]!.message.content).toBeTruthy();
    expect(chat.requests.length).toBe(before + 1);
    // A request that names a model is answered by that one, default or not.
    expect((await client.chat.completions.create({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] })).model).toBe('switchyard/demo');
    const me = await h.gql('{ me { defaultModel } }', {}, user.key);
    expect(me.body.data.me).toEqual({ defaultModel: 'dm/chat' });
    // An empty models list names no model either.
    const emptyList = await h.chat(user.key, { models: [], messages: [{ role: 'user', content: 'hi' }] });
    expect(emptyList.status).toBe(200);
    expect(((await emptyList.json()) as { model: string }).model).toBe('dm/chat');
  });

  it('answers a legacy completions request without model, streamed too', async () => {
    const completion = await client.completions.create(noModel({ prompt: 'Say hi' }));
    expect(completion.model).toBe('dm/chat');
    const stream = await client.chat.completions.create(noModel({ messages: [{ role: 'user' as const, content: 'hi' }], stream: true as const }));
    const models = new Set<string>();
    for await (const chunk of stream) models.add(chunk.model);
    expect([...models]).toEqual(['dm/chat']);
  });

  it("answers GraphQL sendPrompt without model too, as REST does", async () => {
    const SEND = `mutation ($input: PromptInput!) { sendPrompt(input: $input) { ... on SendPromptResult { model } ... on DomainError { code message } } }`;
    const sent = await h.gql(SEND, { input: { prompt: 'Say hi' } }, user.key);
    expect(sent.body.data.sendPrompt).toEqual({ model: 'dm/chat' });
  });

  it('takes a variant the catalog parses (:free)', async () => {
    expect((await setDefault(user.key, 'dm/chat:free')).data.setDefaultModel.defaultModel).toBe('dm/chat:free');
    const completion = await client.chat.completions.create(noModel({ messages: [{ role: 'user' as const, content: 'hi' }] }));
    expect(completion.model).toBe('dm/chat:free');
  });

  it('cleared, a request without model is a 400 that says how to set one', async () => {
    expect((await setDefault(user.key, null)).data.setDefaultModel).toEqual({ id: user.accountId, defaultModel: null });
    for (const path of ['chat/completions', 'completions']) {
      const res = await fetch(`${h.url}/api/v1/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], prompt: 'hi' }),
      });
      expect(res.status, path).toBe(400);
      const { error } = (await res.json()) as { error: { message: string; metadata: { param: string } } };
      expect(error.message).toMatch(/model is required .*setDefaultModel/);
      expect(error.metadata.param).toBe('model');
    }
    const unset = await h.gql(`mutation ($input: PromptInput!) { sendPrompt(input: $input) { ... on DomainError { code message } } }`, { input: { prompt: 'hi' } }, user.key);
    expect(JSON.stringify(unset.body)).toMatch(/model is required .*setDefaultModel/);
  });

  it('refuses a default that could never answer a chat: an embeddings model, a :free variant without free endpoints', async () => {
    const embed = (await setDefault(user.key, 'switchyard/demo-embed')).data.setDefaultModel;
    expect(embed).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('does not produce text') });
    const free = (await setDefault(user.key, 'switchyard/demo-paid:free')).data.setDefaultModel;
    expect(free).toMatchObject({ code: 'VALIDATION', message: 'switchyard/demo-paid has no free endpoints' });
  });

  it('refuses a model the catalog does not know, or a variant it does not support (VALIDATION)', async () => {
    for (const model of ['acme/unknown', 'dm/chat:online', '  ']) {
      const body = await setDefault(user.key, model);
      expect(body.data.setDefaultModel.code, model).toBe('VALIDATION');
    }
    expect((await h.gql('{ me { defaultModel } }', {}, user.key)).body.data.me.defaultModel).toBeNull();
  });

  it("lets no other user set an account's default model; an admin may", async () => {
    const refused = await setDefault(other.key, 'dm/chat', user.accountId);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await h.gql('{ me { defaultModel } }', {}, user.key)).body.data.me.defaultModel).toBeNull();
    const byAdmin = await setDefault(ADMIN_KEY, 'dm/chat', user.accountId);
    expect(byAdmin.data.setDefaultModel).toEqual({ id: user.accountId, defaultModel: 'dm/chat' });
    expect((await client.chat.completions.create(noModel({ messages: [{ role: 'user' as const, content: 'hi' }] }))).model).toBe('dm/chat');
    // The other user's own requests are untouched by it.
    expect((await h.chat(other.key, { messages: [{ role: 'user', content: 'hi' }] })).status).toBe(400);
  });
});
