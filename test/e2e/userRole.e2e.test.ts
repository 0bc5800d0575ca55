/**
 * The role `user` is what lets an account act as an end user: call models (every REST route, GraphQL sendPrompt,
 * startGeneration, embed and the generation subscription), change its keys, buy credits, save presets and set its
 * model-call settings (content logging, default model, provider lists, BYOK keys). Without it each of these is a 403
 * (REST, in the route's error shape) or FORBIDDEN (GraphQL) naming the role, and nothing is charged or written; the
 * account still reads its own records, an admin still reads and repairs it, and a provider-only or designer-only
 * account keeps its own role's capabilities. Roles are read with the key on every call, so a change counts for keys
 * already issued and ends the account's open subscriptions.
 */
import { createClient, type Client } from 'graphql-ws';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_KEY } from '../support/appHarness.js';
import { eventually, within } from '../support/eventually.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
const PRICES = { prompt: 1_000, completion: 3_000 };
const MODEL = 'roles/paid';
const CREDITS = 10_000_000_000;
const MISSING_USER = /does not have the role user/;

beforeAll(async () => {
  h = await startGatewayHarness();
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'roles-fake', model: MODEL, prices: PRICES });
  fake.setDefault({ usage: { promptTokens: 10, completionTokens: 5 } });
});
afterAll(async () => {
  await h.stop();
});

const sdk = (key: string) => new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
const MESSAGES = [{ role: 'user' as const, content: 'Say hello' }];

const setRole = async (verb: 'grantRole' | 'revokeRole', accountId: string, role: string) => {
  const data = await h.gqlOk(`mutation ($id: ID!, $role: Role!) { ${verb}(accountId: $id, role: $role) { ... on Account { roles } ... on DomainError { code message } } }`, { id: accountId, role });
  return data[verb].roles as string[];
};

/** What a REST call refused for a missing role answers, in OpenRouter's shape. */
const expectForbiddenRest = async (res: Response, what: string) => {
  expect(res.status, what).toBe(403);
  const body = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
  expect(body.error, what).toMatchObject({ code: 403, message: expect.stringMatching(MISSING_USER), metadata: { missing_role: 'user', error_type: 'permission_denied' } });
};

/** The openai SDK's error for a call refused for a missing role. */
const expectSdkForbidden = async (call: Promise<unknown>, what: string) => {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, what).toBeInstanceOf(OpenAI.PermissionDeniedError);
  const refused = error as InstanceType<typeof OpenAI.PermissionDeniedError>;
  expect(refused.status, what).toBe(403);
  expect(refused.message, what).toMatch(MISSING_USER);
};

/** A GraphQL operation refused for a missing role: FORBIDDEN naming it, and no data. */
const expectForbiddenGql = async (query: string, variables: Record<string, unknown>, key: string, role = 'user') => {
  const { body } = await h.gql(query, variables, key);
  expect(body.errors?.[0]?.extensions, query).toMatchObject({ code: 'FORBIDDEN', missing_role: role });
  expect(body.errors[0].message, query).toMatch(new RegExp(`does not have the role ${role}`));
  return body;
};

const SEND_PROMPT = `mutation { sendPrompt(input: { model: "${MODEL}", prompt: "hello" }) { ... on SendPromptResult { generationId cost } ... on DomainError { code } } }`;
const START_GENERATION = `mutation { startGeneration(input: { model: "${MODEL}", prompt: "hello" }) { ... on StartedGeneration { generationId } ... on DomainError { code } } }`;

describe('an account whose role user is revoked', () => {
  let account: Account;
  let managementKey: string;

  beforeAll(async () => {
    account = await h.openAccount({ credits: CREDITS });
    const created = await h.gqlOk('mutation { createApiKey(name: "mgmt", kind: MANAGEMENT) { ... on CreatedApiKey { secret } } }', {}, account.key);
    managementKey = created.createApiKey.secret;
    // While it has the role: the key calls models.
    const answer = await sdk(account.key).chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(answer.choices[0]!.message.content).toBe('Echo: Say hello');
    expect(await setRole('revokeRole', account.accountId, 'USER')).toEqual([]);
  });

  it('calls no model on any REST route (403 naming the role) and is charged nothing', async () => {
    const before = await h.settledBalance(account.accountId);
    const client = sdk(account.key);
    await expectSdkForbidden(client.chat.completions.create({ model: MODEL, messages: MESSAGES }), 'chat');
    await expectSdkForbidden(client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true }), 'chat, streamed');
    await expectSdkForbidden(client.completions.create({ model: MODEL, prompt: 'Say hello' }), 'completions');
    await expectSdkForbidden(client.embeddings.create({ model: 'switchyard/demo-embed', input: 'hello' }), 'embeddings');
    await expectSdkForbidden(client.responses.create({ model: MODEL, input: 'Say hello' }), 'responses');

    const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${account.key}` }) =>
      fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    await expectForbiddenRest(await h.chat(account.key, { model: MODEL, messages: MESSAGES }), 'chat over fetch');
    // The Messages route answers in Anthropic's shape, as its every error.
    const messages = await post('/api/v1/messages', { model: MODEL, max_tokens: 50, messages: MESSAGES }, { 'x-api-key': account.key, 'anthropic-version': '2023-06-01' });
    expect(messages.status).toBe(403);
    expect(await messages.json()).toMatchObject({ type: 'error', error: { type: 'permission_error', message: expect.stringMatching(MISSING_USER) } });
    await expectForbiddenRest(await post('/api/v1/presets/mine/chat/completions', { model: MODEL, messages: MESSAGES }), 'a preset from a sample');

    const after = await h.settledBalance(account.accountId);
    expect(after).toEqual(before);
  });

  it('changes none of its keys: the management key is refused every change, and reads still', async () => {
    const manage = (method: string, path: string, body?: unknown) =>
      fetch(`${h.url}/api/v1/keys${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${managementKey}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const listed = await manage('GET', '');
    expect(listed.status).toBe(200);
    const [own] = ((await listed.json()) as { data: { hash: string }[] }).data;
    await expectForbiddenRest(await manage('POST', '', { name: 'another' }), 'POST /keys');
    await expectForbiddenRest(await manage('PATCH', `/${own!.hash}`, { name: 'renamed' }), 'PATCH /keys/:hash');
    await expectForbiddenRest(await manage('DELETE', `/${own!.hash}`), 'DELETE /keys/:hash');
    expect((await manage('GET', `/${own!.hash}`)).status).toBe(200);
  });

  it('is FORBIDDEN, naming the role, every end-user mutation and the generation subscription over GraphQL', async () => {
    const head = await h.running.core.eventStore.headPosition();
    for (const query of [
      SEND_PROMPT,
      START_GENERATION,
      'mutation { embed(input: { model: "switchyard/demo-embed", input: ["hello"] }) { __typename } }',
      'mutation { createApiKey(name: "more") { __typename } }',
      'mutation { createApiKey(name: "more", kind: MANAGEMENT) { __typename } }',
      'mutation { authorizeApp(callbackUrl: "https://app.example/cb", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") { __typename } }',
      'mutation { purchaseCredits(amount: 1000000000, paymentMethod: "pm_card_visa") { __typename } }',
      'mutation { createPreset(slug: "mine", name: "Mine", config: { model: "switchyard/demo" }) { __typename } }',
      'mutation { setContentLogging(enabled: true) { __typename } }',
      'mutation { setDefaultModel(model: "switchyard/demo") { __typename } }',
      'mutation { setProviderPreferences(ignore: ["switchyard"]) { __typename } }',
      'mutation { setByokKey(provider: "openai", apiKey: "sk-mine") { __typename } }',
    ]) {
      await expectForbiddenGql(query, {}, account.key);
    }
    for (const verb of ['renameApiKey(id: $id, name: "x")', 'setApiKeyLimit(id: $id, limit: 1, limitReset: DAILY)', 'setApiKeyExpiry(id: $id, expiresAt: null)', 'disableApiKey(id: $id)', 'revokeApiKey(id: $id)']) {
      await expectForbiddenGql(`mutation ($id: ID!) { ${verb} { __typename } }`, { id: account.keyId }, account.key);
    }
    expect(await h.running.core.eventStore.headPosition()).toBe(head);

    const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${account.key}` } });
    try {
      const errors = await firstErrors(client, 'subscription { generation(id: "gen-any") { type } }');
      expect(errors).toMatchObject([{ message: expect.stringMatching(MISSING_USER), extensions: { code: 'FORBIDDEN', missing_role: 'user' } }]);
    } finally {
      await client.dispose();
    }
  });

  it('still reads its own account, balance and records', async () => {
    const data = await h.gqlOk('{ me { id roles } balance { available } generations { edges { node { id } } } }', {}, account.key);
    expect(data.me).toEqual({ id: account.accountId, roles: [] });
    expect(data.balance.available).toBeGreaterThan(0);
    expect(data.generations.edges).toHaveLength(1);
    const credits = await fetch(`${h.url}/api/v1/credits`, { headers: { authorization: `Bearer ${account.key}` } });
    expect(credits.status).toBe(200);
  });

  it('an admin reads and repairs it; the role granted again, the same key calls models again', async () => {
    const admin = await h.gqlOk(
      'query ($id: ID!) { account(id: $id) { roles } apiKeys(accountId: $id) { edges { node { id } } } }',
      { id: account.accountId },
      ADMIN_KEY,
    );
    expect(admin.account.roles).toEqual([]);
    const repaired = await h.gqlOk('mutation ($id: ID!) { setContentLogging(accountId: $id, enabled: false) { ... on Account { id } } createApiKey(accountId: $id, name: "by the admin") { ... on CreatedApiKey { secret } } }', { id: account.accountId }, ADMIN_KEY);
    expect(repaired.createApiKey.secret).toMatch(/^sk-sy-v1-/);
    await expectSdkForbidden(sdk(repaired.createApiKey.secret).chat.completions.create({ model: MODEL, messages: MESSAGES }), "the admin's new key of the account");

    expect(await setRole('grantRole', account.accountId, 'USER')).toEqual(['USER']);
    const answer = await sdk(account.key).chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(answer.choices[0]!.message.content).toBe('Echo: Say hello');
    const sent = await h.gqlOk(SEND_PROMPT, {}, account.key);
    expect(sent.sendPrompt.cost).toBeGreaterThan(0);
  });
});

describe('the role revoked while a key is in use', () => {
  it('REST: the next call with the same key is refused, the calls before it were served', async () => {
    const account = await h.openAccount({ credits: CREDITS });
    const client = sdk(account.key);
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: MODEL, messages: MESSAGES });
    await setRole('revokeRole', account.accountId, 'USER');
    const before = await h.settledBalance(account.accountId);
    await expectSdkForbidden(client.chat.completions.create({ model: MODEL, messages: MESSAGES }), 'the first call after the revocation');
    expect(await h.settledBalance(account.accountId)).toEqual(before);
    expect(before.settled).toBe(3 * (10 * PRICES.prompt + 5 * PRICES.completion));
  });

  it('graphql-ws: an open generation subscription ends (UNAUTHENTICATED), and started again it is FORBIDDEN', async () => {
    const account = await h.openAccount({ credits: CREDITS });
    const slow = await h.fakeEndpoint({ protocol: 'openai', slug: 'roles-slow', model: 'roles/slow', prices: PRICES });
    slow.setDefault({ slowTokenMs: 150, text: Array.from({ length: 40 }, (_, i) => `word${i}`).join(' '), usage: { promptTokens: 10, completionTokens: 40 } });
    const started = await h.gqlOk(`mutation { startGeneration(input: { model: "roles/slow", prompt: "go" }) { ... on StartedGeneration { generationId } ... on DomainError { code message } } }`, {}, account.key);
    const id = started.startGeneration.generationId as string;
    expect(id).toMatch(/^gen-/);

    const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${account.key}` } });
    try {
      let firstToken!: () => void;
      const gotToken = new Promise<void>((resolve) => (firstToken = resolve));
      const tokens: string[] = [];
      let error: unknown = null;
      const ended = new Promise<void>((resolve) => {
        client.subscribe(
          { query: 'subscription ($id: ID!) { generation(id: $id) { type content } }', variables: { id } },
          {
            next: (result) => {
              if (result.errors) error = result.errors;
              const event = (result.data as { generation?: { type: string; content: string | null } } | null)?.generation;
              if (event?.type === 'TOKEN') {
                tokens.push(event.content ?? '');
                firstToken();
              }
            },
            error: (e) => {
              error = e;
              resolve();
            },
            complete: resolve,
          },
        );
      });
      await within('the first token', gotToken);
      await setRole('revokeRole', account.accountId, 'USER');
      await within('the subscription to end after the role was revoked', ended);
      expect(error).toMatchObject([{ message: expect.stringMatching(/lost the role user/), extensions: { code: 'UNAUTHENTICATED' } }]);
      expect(tokens.length).toBeLessThan(40);

      const again = await firstErrors(client, `subscription { generation(id: "${id}") { type } }`);
      expect(again).toMatchObject([{ extensions: { code: 'FORBIDDEN', missing_role: 'user' } }]);
      // A read of the account's own is authorized anew with the roles it has now.
      const balance = await h.gqlOk('{ balance { available } }', {}, account.key);
      expect(balance.balance.available).toBeGreaterThan(0);
    } finally {
      await client.dispose();
    }
    // The generation authorized before the change runs to its end and is charged for it.
    const settled = await h.settledBalance(account.accountId);
    expect(settled.settled).toBe(10 * PRICES.prompt + 40 * PRICES.completion);
    expect(settled.reserved).toBe(0);
  });
});

describe('accounts of one other role keep exactly that role', () => {
  it('a provider-only account manages its provider, and calls no model nor creates keys', async () => {
    const provider = await h.openAccount({ roles: ['provider'], credits: CREDITS });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'roles-own', model: 'roles-own/model', prices: PRICES, owner: provider.key });
    const repriced = await h.gqlOk(
      'mutation { changePrice(provider: "roles-own", model: "roles-own/model", prices: { prompt: 2000, completion: 3000 }) { ... on Endpoint { prices { prompt } } ... on DomainError { code message } } }',
      {},
      provider.key,
    );
    expect(repriced.changePrice).toEqual({ prices: { prompt: 2000 } });
    expect((await h.gqlOk('{ myProviders { slug } }', {}, provider.key)).myProviders).toEqual([{ slug: 'roles-own' }]);
    await expectSdkForbidden(sdk(provider.key).chat.completions.create({ model: 'roles-own/model', messages: MESSAGES }), 'its own model');
    await expectForbiddenGql(SEND_PROMPT, {}, provider.key);
    await expectForbiddenGql('mutation { createApiKey(name: "more") { __typename } }', {}, provider.key);
    await expectForbiddenGql('mutation { createWorkflow(definition: { name: "x", trigger: { type: "manual" }, steps: [] }) { __typename } }', {}, provider.key, 'designer');
  });

  it("a workflow's model step spends only while its account holds the role user (checked at each call, as REST's are)", async () => {
    const designer = await h.openAccount({ roles: ['user', 'designer'], credits: CREDITS });
    const definition = { name: 'Asks a model', trigger: { type: 'manual' }, steps: [{ key: 'answer', type: 'action.model', input: { model: MODEL, prompt: 'hello', maxTokens: 20 } }] };
    const created = await h.gqlOk('mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message } } }', { d: definition }, designer.key);
    const runToEnd = async () => {
      const started = await h.gqlOk('mutation ($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id } ... on DomainError { code message } } }', { id: created.createWorkflow.id }, designer.key);
      return eventually('the run to end', async () => {
        const { workflowRun } = await h.gqlOk('query ($id: ID!) { workflowRun(id: $id) { status cost error { code message } } }', { id: started.runWorkflow.id }, designer.key);
        return workflowRun.status !== 'RUNNING' && workflowRun.status !== 'QUEUED' && workflowRun;
      });
    };
    const served = await runToEnd();
    expect(served).toMatchObject({ status: 'SUCCEEDED', error: null });
    expect(Number(served.cost)).toBeGreaterThan(0);
    const before = await h.settledBalance(designer.accountId);
    await setRole('revokeRole', designer.accountId, 'USER');
    const refused = await runToEnd();
    expect(refused).toMatchObject({ status: 'FAILED', error: { code: 'FORBIDDEN', message: MISSING_USER } });
    expect(Number(refused.cost)).toBe(0);
    expect((await h.settledBalance(designer.accountId)).settled).toBe(before.settled);
  });

  it('a designer-only account builds workflows, and calls no model itself', async () => {
    const designer = await h.openAccount({ roles: ['designer'], credits: CREDITS });
    const definition = { name: 'Only a designer', trigger: { type: 'webhook', respond: 'async' }, steps: [{ key: 'reply', type: 'action.respond', input: { status: 202 } }] };
    const created = await h.gqlOk('mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id version } ... on DomainError { code message } } }', { d: definition }, designer.key);
    expect(created.createWorkflow).toMatchObject({ id: expect.stringMatching(/^wf_/), version: 1 });
    await expectSdkForbidden(sdk(designer.key).chat.completions.create({ model: MODEL, messages: MESSAGES }), 'chat');
    await expectForbiddenGql(START_GENERATION, {}, designer.key);
    await expectForbiddenGql('mutation { registerProvider(slug: "nope", name: "nope", protocol: OPENAI, baseUrl: "https://api.example.com/v1") { __typename } }', {}, designer.key, 'provider');
  });
});

/** The errors a GraphQL-over-WebSocket operation ends with (its first result's errors, or the `error` message's). */
const firstErrors = (client: Client, query: string) =>
  new Promise<unknown>((resolve) => {
    client.subscribe(
      { query },
      {
        next: (result) => resolve(result.errors ?? result.data),
        error: (error) => resolve(error),
        complete: () => resolve(null),
      },
    );
  });
