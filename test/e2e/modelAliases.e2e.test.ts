/**
 * Model catalog administration through GraphQL on the started app: an admin's aliases (`~author/slug` → a catalog
 * model), read by every face that reads a model id (chat through the official `openai` SDK, the REST model routes,
 * GraphQL `model(id:)`, saved ids), and retiring a model (`retireModel`), whose effects are checked where a user meets
 * them: chat, saved ids, the REST and GraphQL model routes.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../../src/modules/catalog/catalog.js';
import { createCredentialVault, parseEnvAllowList } from '../../src/modules/catalog/credentials.js';
import { createLogger } from '../../src/logger.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const FREE = { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 };
const MESSAGES = [{ role: 'user' as const, content: 'Say hello to the gateway' }];
const ERROR = '... on DomainError { code message }';
const ALIAS = '... on ModelAlias { alias model target { id retired } }';

let h: GatewayHarness;
let user: Account;
let client: OpenAI;

const setAlias = async (alias: string, model: string, key?: string) =>
  (await h.gql(`mutation ($alias: String!, $model: String!) { setModelAlias(alias: $alias, model: $model) { __typename ${ALIAS} ${ERROR} } }`, { alias, model }, key)).body;
const removeAlias = async (alias: string, key?: string) => (await h.gql(`mutation ($alias: String!) { removeModelAlias(alias: $alias) { __typename ${ALIAS} ${ERROR} } }`, { alias }, key)).body;
const retire = async (model: string, key?: string) =>
  (await h.gql(`mutation ($model: String!) { retireModel(model: $model) { __typename ... on Model { id retired } ${ERROR} } }`, { model }, key)).body;
const aliases = async () => (await h.gql('{ modelAliases { alias model } }', {}, null)).body.data.modelAliases;
const refusal = async (model: string) => {
  const res = await h.chat(user.key, { model, messages: MESSAGES });
  expect(res.status, model).toBe(400);
  return ((await res.json()) as { error: { message: string; metadata: Record<string, unknown> } }).error;
};
const record = (id: string) => h.generation(user.key, id);
const provider = (completion: unknown) => (completion as { provider: string }).provider;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'al-old', model: 'test/gpt-4.0', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'al-new', model: 'test/gpt-5.0', prices: { prompt: 200, completion: 200 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'al-free', model: 'test/gpt-5.0', prices: FREE, variants: ['free'] });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'al-gone', model: 'test/gone-1.0', prices: { prompt: 100, completion: 100 } });
});
afterAll(async () => {
  await h.stop();
});

describe('an alias', () => {
  it('is set by an admin, listed publicly, and answers chats as the model it names, variants after it', async () => {
    // Another spelling of the version is that model: stored as the catalog's id.
    expect((await setAlias('~test/gpt-latest', 'test/gpt-4-0')).data.setModelAlias).toEqual({
      __typename: 'ModelAlias',
      alias: '~test/gpt-latest',
      model: 'test/gpt-4.0',
      target: { id: 'test/gpt-4.0', retired: false },
    });
    expect(await aliases()).toContainEqual({ alias: '~test/gpt-latest', model: 'test/gpt-4.0' });

    const completion = await client.chat.completions.create({ model: '~test/gpt-latest', messages: MESSAGES });
    expect(completion.model).toBe('test/gpt-4.0');
    expect(provider(completion)).toBe('al-old');
    expect(await record(completion.id)).toMatchObject({ model: 'test/gpt-4.0', provider_name: 'al-old', switchyard: { requested_models: ['~test/gpt-latest'] } });
    // Streamed, too.
    const stream = await client.chat.completions.create({ model: '~test/gpt-latest:nitro', messages: MESSAGES, stream: true });
    const models = new Set<string>();
    for await (const chunk of stream) models.add(chunk.model);
    expect([...models]).toEqual(['test/gpt-4.0']);
  });

  it('follows the admin when pointed at another model, :free included', async () => {
    expect((await setAlias('~test/gpt-latest', 'test/gpt-5.0')).data.setModelAlias).toMatchObject({ model: 'test/gpt-5.0' });
    const paid = await client.chat.completions.create({ model: '~test/gpt-latest', messages: MESSAGES });
    expect(paid.model).toBe('test/gpt-5.0');
    expect(provider(paid)).toBe('al-new');
    const free = await client.chat.completions.create({ model: '~test/gpt-latest:free:floor', messages: MESSAGES });
    expect(free.model).toBe('test/gpt-5.0:free');
    expect(await record(free.id)).toMatchObject({ model: 'test/gpt-5.0:free', provider_name: 'al-free', total_cost: 0, switchyard: { requested_models: ['~test/gpt-latest:free:floor'] } });
    // A fallback list may name it.
    const listed = await h.chat(user.key, { models: ['~test/gpt-latest', 'test/gpt-4.0'], messages: MESSAGES });
    expect(((await listed.json()) as { model: string }).model).toBe('test/gpt-5.0');
  });

  it("is read in the auto router's rules, as a request's id is (and another spelling of a version too)", async () => {
    const rules = async (models: string[]) =>
      (await h.gql(`mutation ($rules: JSON!) { setAutoRouterRules(rules: $rules) { __typename } }`, { rules: [{ name: 'aliased', models, limit: 2 }] })).body.data.setAutoRouterRules;
    expect(await rules(['~test/gpt-latest', 'test/gpt-5-0', 'test/gpt-4-0'])).toEqual({ __typename: 'AutoRouterRules' });
    const picked = await client.chat.completions.create({ model: 'openrouter/auto', messages: MESSAGES });
    expect(picked.model).toBe('test/gpt-5.0');
    // The alias and the other spelling name one model: it is tried once, the next rule model is the fallback.
    expect(await record(picked.id)).toMatchObject({ model: 'test/gpt-5.0', router: 'openrouter/auto (aliased)' });
    const res = await h.chat(user.key, { model: 'openrouter/auto', messages: MESSAGES, provider: { ignore: ['al-new'] } });
    expect(((await res.json()) as { model: string }).model).toBe('test/gpt-4.0');
    expect(await rules([])).toEqual({ __typename: 'AutoRouterRules' });
  });

  it('is read by the REST model routes, GraphQL model(id:) and the checks of a saved id', async () => {
    const one = await fetch(`${h.url}/api/v1/model/~test/gpt-latest:nitro`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { data: { id: string } }).data.id).toBe('test/gpt-5.0');
    const endpoints = await fetch(`${h.url}/api/v1/models/~test/gpt-latest:free/endpoints`);
    expect(((await endpoints.json()) as { data: { id: string } }).data.id).toBe('test/gpt-5.0:free');
    expect((await h.gql('{ model(id: "~test/gpt-latest:free") { id } }', {}, null)).body.data.model).toEqual({ id: 'test/gpt-5.0' });
    const saved = await h.gql(`mutation { setDefaultModel(model: "~test/gpt-latest:nitro") { ... on Account { defaultModel } ${ERROR} } }`, {}, user.key);
    expect(saved.body.data.setDefaultModel).toEqual({ defaultModel: '~test/gpt-latest:nitro' });
    const byDefault = await h.chat(user.key, { messages: MESSAGES });
    expect(((await byDefault.json()) as { model: string }).model).toBe('test/gpt-5.0');
    await h.gql('mutation { setDefaultModel(model: null) { __typename } }', {}, user.key);
    // An alias nobody set is an unknown id everywhere.
    expect((await refusal('~test/nobody-latest')).message).toBe('~test/nobody-latest is not a valid model ID');
    expect((await fetch(`${h.url}/api/v1/model/~test/nobody-latest`)).status).toBe(404);
    expect((await h.gql('{ model(id: "~test/nobody-latest") { id } }', {}, null)).body.data.model).toBeNull();
  });

  it('refuses a bad alias or target with VALIDATION, and non-admins with FORBIDDEN, changing nothing', async () => {
    const before = await aliases();
    const refused: [string, string, string | RegExp][] = [
      ['test/gpt-latest', 'test/gpt-5.0', /An alias looks like ~author\/slug/],
      ['~Test/Upper', 'test/gpt-5.0', /An alias looks like ~author\/slug/],
      ['~test/x:nitro', 'test/gpt-5.0', /An alias looks like ~author\/slug/],
      ['~test/other', '~test/gpt-latest', '~test/gpt-latest is an alias: an alias names a catalog model, never another alias'],
      ['~test/other', 'nobody/such-model', 'nobody/such-model is not a valid model ID'],
      ['~test/other', 'test/gpt-5.0:nitro', 'An alias names a model without variants (test/gpt-5.0:nitro): put them after the alias, as in ~test/other:nitro'],
      ['~test/other', 'test/gpt-5.0:free', /without variants/],
      ['~test/other', 'test/gpt-5.0:online', /The :online variant of test\/gpt-5.0 is not supported/],
      ['~test/other', 'openrouter/auto', 'openrouter/auto is a router, not a catalog model: an alias names a model of the catalog'],
      ['~test/other', 'switchyard/demo-embed', 'switchyard/demo-embed does not produce text (its output is embeddings)'],
    ];
    for (const [alias, model, message] of refused) {
      const answer = (await setAlias(alias, model)).data.setModelAlias;
      expect(answer, `${alias} → ${model}`).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
      expect(answer.message, `${alias} → ${model}`).toMatch(message);
    }
    for (const body of [await setAlias('~test/mine', 'test/gpt-5.0', user.key), await removeAlias('~test/gpt-latest', user.key), await retire('test/gpt-5.0', user.key)]) {
      expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    expect(await aliases()).toEqual(before);
  });

  it('is removed by an admin: ids naming it are unknown from then on; removing it again is NOT_FOUND', async () => {
    expect((await setAlias('~test/short-lived', 'test/gpt-4.0')).data.setModelAlias).toMatchObject({ model: 'test/gpt-4.0' });
    expect((await removeAlias('~test/short-lived')).data.removeModelAlias).toMatchObject({ __typename: 'ModelAlias', alias: '~test/short-lived', model: 'test/gpt-4.0' });
    expect(await aliases()).not.toContainEqual(expect.objectContaining({ alias: '~test/short-lived' }));
    expect((await refusal('~test/short-lived')).message).toBe('~test/short-lived is not a valid model ID');
    expect((await removeAlias('~test/short-lived')).data.removeModelAlias).toMatchObject({ __typename: 'DomainError', code: 'NOT_FOUND' });
  });

  it('is rebuilt from the event log (a fresh catalog replays the alias streams)', async () => {
    const replayed = createCatalog({
      eventStore: h.running.core.eventStore,
      vault: createCredentialVault({ masterKey: undefined, envAllow: parseEnvAllowList([]) }),
      logger: createLogger('silent'),
    });
    await replayed.start();
    try {
      expect(await replayed.waitFor(await h.running.core.eventStore.headPosition())).toBe(true);
      expect(replayed.aliases()).toEqual(await aliases());
      expect(replayed.alias('~test/gpt-latest')).toBe('test/gpt-5.0');
      expect(replayed.alias('~test/short-lived')).toBeUndefined();
    } finally {
      await replayed.stop();
    }
  });
});

describe('retireModel', () => {
  it('retires a model: chats naming it or an alias of it are refused naming both, saved ids too, the model routes stop showing it', async () => {
    expect((await setAlias('~test/gone-latest', 'test/gone-1.0')).data.setModelAlias).toMatchObject({ model: 'test/gone-1.0' });
    expect((await client.chat.completions.create({ model: '~test/gone-latest', messages: MESSAGES })).model).toBe('test/gone-1.0');
    const listed = async () => ((await (await fetch(`${h.url}/api/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(await listed()).toContain('test/gone-1.0');

    expect((await retire('test/gone-1.0')).data.retireModel).toEqual({ __typename: 'Model', id: 'test/gone-1.0', retired: true });

    const direct = await client.chat.completions.create({ model: 'test/gone-1.0', messages: MESSAGES }).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(OpenAI.BadRequestError);
    expect((direct as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('test/gone-1.0 is retired');
    expect(await refusal('~test/gone-latest:nitro')).toMatchObject({
      message: '~test/gone-latest:nitro is retired (the alias ~test/gone-latest names test/gone-1.0)',
      metadata: { param: 'model', model: '~test/gone-latest:nitro' },
    });
    for (const model of ['test/gone-1.0', '~test/gone-latest']) {
      const saved = await h.gql(`mutation ($model: String) { setDefaultModel(model: $model) { __typename ${ERROR} } }`, { model }, user.key);
      expect(saved.body.data.setDefaultModel, model).toMatchObject({ code: 'VALIDATION', message: model === 'test/gone-1.0' ? 'test/gone-1.0 is retired' : '~test/gone-latest is retired (the alias ~test/gone-latest names test/gone-1.0)' });
    }
    expect((await fetch(`${h.url}/api/v1/model/test/gone-1.0`)).status).toBe(404);
    expect((await fetch(`${h.url}/api/v1/models/~test/gone-latest/endpoints`)).status).toBe(404);
    expect(await listed()).not.toContain('test/gone-1.0');
    expect((await h.gql('{ model(id: "~test/gone-latest") { id retired } }', {}, null)).body.data.model).toEqual({ id: 'test/gone-1.0', retired: true });
    // No new alias may name it.
    expect((await setAlias('~test/gone-again', 'test/gone-1.0')).data.setModelAlias).toMatchObject({ code: 'VALIDATION', message: 'test/gone-1.0 is retired' });
  });

  it('answers NOT_FOUND for a model the catalog does not hold and CONFLICT for one already retired', async () => {
    expect((await retire('nobody/such-model')).data.retireModel).toMatchObject({ __typename: 'DomainError', code: 'NOT_FOUND' });
    expect((await retire('~test/gpt-latest')).data.retireModel).toMatchObject({ __typename: 'DomainError', code: 'NOT_FOUND' });
    expect((await retire('test/gone-1.0')).data.retireModel).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: 'Model test/gone-1.0 is already retired' });
    // The alias's model was not touched.
    expect((await client.chat.completions.create({ model: '~test/gpt-latest', messages: MESSAGES })).model).toBe('test/gpt-5.0');
  });
});
