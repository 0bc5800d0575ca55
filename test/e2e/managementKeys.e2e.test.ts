import { createClient } from 'graphql-ws';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyStream } from '../../src/modules/apiKeys/apiKey.events.js';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';

/**
 * OpenRouter's management keys over real HTTP: `/api/v1/keys` (list, create, get, update, delete) and
 * `/api/v1/activity`, reachable only with a management key, which in turn can call no model.
 */
const USD = 1_000_000_000;
const DAY_MS = 86_400_000;
const CREATE_KEY = `mutation($name: String!, $kind: ApiKeyKind, $limit: Money) {
  createApiKey(name: $name, kind: $kind, limit: $limit) { ... on CreatedApiKey { secret key { id kind } } ... on DomainError { code message } }
}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
type Json = any;

describe('management keys and activity', () => {
  let h: Harness;
  /** The app's clock runs this far ahead of the wall clock: moved a day on to make today a completed day. */
  let shift = 0;
  let owner: { accountId: string; key: string };
  let manager: string;
  let managerId: string;
  let stranger: { accountId: string; key: string; manager: string };

  const call = async (method: string, path: string, key: string | null, body?: unknown): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const openAccount = async (name: string) => {
    const opened = (await h.gql('mutation($n: String!) { openAccount(name: $n) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }', { n: name })).body.data.openAccount;
    const account = { accountId: opened.account.id as string, key: opened.initialKey.secret as string };
    await h.gql('mutation($id: ID!, $a: Money!) { grantCredits(accountId: $id, amount: $a, reason: "test") { __typename } }', { id: account.accountId, a: 5 * USD });
    return account;
  };
  const createManager = async (key: string) => {
    const created = (await h.gql(CREATE_KEY, { name: 'provisioning', kind: 'MANAGEMENT' }, key)).body.data.createApiKey;
    expect(created.key.kind).toBe('MANAGEMENT');
    return { secret: created.secret as string, id: created.key.id as string };
  };
  const chat = (key: string, model = 'switchyard/demo-paid') => call('POST', '/api/v1/chat/completions', key, { model, messages: [{ role: 'user', content: 'hello there' }], max_tokens: 16 });
  const openRouterError = (status: number, errorType: string) => ({ error: { code: status, message: expect.any(String), metadata: expect.objectContaining({ error_type: errorType }) } });
  /** A generation's record, once the read model has it completed. */
  const record = async (id: string): Promise<Json> => {
    let found: Json;
    await expect.poll(async () => (found = (await call('GET', `/api/v1/generation?id=${id}`, owner.key)).body.data)?.switchyard?.status, { timeout: 10_000 }).toBe('completed');
    return found;
  };
  /** Usage is settled just after the answer: wait until the key's usage shows the generation. */
  const settledKey = async (hash: string, minUsage: number) => {
    let key: Json;
    await expect.poll(async () => (key = (await call('GET', `/api/v1/keys/${hash}`, manager)).body.data).usage_nanos, { timeout: 10_000 }).toBeGreaterThanOrEqual(minUsage);
    return key;
  };

  beforeAll(async () => {
    h = await startHarness({ DEMO_TOKEN_DELAY_MS: '0' }, undefined, { now: () => new Date(Date.now() + shift) });
    owner = await openAccount('Ada');
    ({ secret: manager, id: managerId } = await createManager(owner.key));
    const other = await openAccount('Bob');
    stranger = { ...other, manager: (await createManager(other.key)).secret };
  });
  afterAll(() => h.stop());

  it('refuses a management key on chat, embeddings, GraphQL and through the openai SDK with a 403 that says why', async () => {
    const refused = await chat(manager);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual(openRouterError(403, 'permission_denied'));
    expect(refused.body.error.message).toMatch(/management key/);
    const embed = await call('POST', '/api/v1/embeddings', manager, { model: 'switchyard/demo-embed', input: 'hi' });
    expect(embed.status).toBe(403);
    const gql = await h.gql('{ me { id } }', {}, manager);
    expect(gql.body.errors[0].extensions.code).toBe('FORBIDDEN');
    const sdk = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: manager, maxRetries: 0 });
    await expect(sdk.chat.completions.create({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it('refuses a management key on a GraphQL WebSocket at connect time, with the reason', async () => {
    const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${manager}` } });
    const closed = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: '{ me { id } }' }, { next: () => resolve('delivered'), error: resolve, complete: () => resolve('completed') });
    });
    expect(closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/^Forbidden: This is a management key/) });
    await client.dispose();
  });

  it('answers /keys and /activity only to a management key: an inference or admin key is a 403, no key a 401', async () => {
    for (const path of ['/api/v1/keys', '/api/v1/activity']) {
      expect(await call('GET', path, owner.key)).toEqual({ status: 403, body: openRouterError(403, 'permission_denied') });
      expect((await call('GET', path, ADMIN_KEY)).status).toBe(403);
      expect(await call('GET', path, null)).toEqual({ status: 401, body: openRouterError(401, 'authentication') });
    }
    expect((await call('POST', '/api/v1/keys', owner.key, { name: 'x' })).status).toBe(403);
  });

  it("answers /credits to a management key as OpenRouter does, with the same balance an inference key of the account reads", async () => {
    const byManager = await call('GET', '/api/v1/credits', manager);
    expect(byManager.status).toBe(200);
    const byOwner = await call('GET', '/api/v1/credits', owner.key);
    expect(byManager.body).toEqual(byOwner.body);
    expect(byManager.body.data).toMatchObject({ total_credits: 5, total_credits_nanos: 5 * USD });
    // Each key reads its own account's balance.
    const strangers = await call('GET', '/api/v1/credits', stranger.manager);
    expect(strangers.status).toBe(200);
    expect(strangers.body.data.total_credits_nanos).toBe(5 * USD);
    expect(strangers.body.data).toEqual((await call('GET', '/api/v1/credits', stranger.key)).body.data);
    // Still a key: none, a malformed one or a deleted management key is a 401.
    expect(await call('GET', '/api/v1/credits', null)).toEqual({ status: 401, body: openRouterError(401, 'authentication') });
    expect((await call('GET', '/api/v1/credits', 'sk-sy-v1-not-a-key')).status).toBe(401);
    const doomed = await createManager(owner.key);
    expect((await call('GET', '/api/v1/credits', doomed.secret)).status).toBe(200);
    const revoked = await h.gql('mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: doomed.id }, owner.key);
    expect(revoked.body.data.revokeApiKey.__typename).toBe('ApiKey');
    expect((await call('GET', '/api/v1/credits', doomed.secret)).status).toBe(401);
    // The other account endpoints stay closed to it.
    expect((await call('GET', '/api/v1/key', manager)).status).toBe(403);
  });

  it('refuses a limit on a management key (it cannot spend)', async () => {
    const created = (await h.gql(CREATE_KEY, { name: 'm', kind: 'MANAGEMENT', limit: USD }, owner.key)).body.data.createApiKey;
    expect(created).toEqual({ code: 'VALIDATION', message: expect.stringMatching(/management key/) });
  });

  it('refuses a limit put on a management key later, so a restricted key never manages keys over REST either', async () => {
    const made = await createManager(owner.key);
    const limited = await h.gql('mutation($id: ID!) { setApiKeyLimit(id: $id, limit: 1000, limitReset: NEVER) { __typename ... on DomainError { code message } } }', { id: made.id }, owner.key);
    expect(limited.body.data.setApiKeyLimit).toEqual({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringMatching(/management key/) });
    // Still a full key: it manages the account's inference keys.
    const created = await call('POST', '/api/v1/keys', made.secret, { name: 'after a refused limit' });
    expect(created.status).toBe(201);
    expect((await call('PATCH', `/api/v1/keys/${created.body.data.hash}`, made.secret, { limit: null })).status).toBe(200);
    // One limited before the refusal (as an older server recorded it) is restricted: it changes no key.
    const { position } = await h.running.core.eventStore.append(apiKeyStream(made.id), [{ type: 'ApiKeyLimitChanged', data: { keyId: made.id, limit: 1000, limitReset: 'never', at: new Date().toISOString() } }]);
    expect(await h.running.core.directory.waitFor(position)).toBe(true);
    const restricted = { error: { code: 403, message: expect.stringContaining('This key has a spending limit or was issued to an app'), metadata: expect.objectContaining({ restricted_key: true }) } };
    expect(await call('POST', '/api/v1/keys', made.secret, { name: 'escape' })).toEqual({ status: 403, body: restricted });
    expect(await call('PATCH', `/api/v1/keys/${created.body.data.hash}`, made.secret, { limit: null })).toEqual({ status: 403, body: restricted });
    expect(await call('DELETE', `/api/v1/keys/${created.body.data.hash}`, made.secret)).toEqual({ status: 403, body: restricted });
    // It still reads them.
    expect((await call('GET', `/api/v1/keys/${created.body.data.hash}`, made.secret)).status).toBe(200);
    for (const id of [created.body.data.hash, made.id]) await h.gql('mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id }, owner.key);
  });

  it('creates a key that chats, whose usage and limit_remaining move by the exact charge; updates, disables and deletes it', async () => {
    const created = await call('POST', '/api/v1/keys', manager, { name: 'customer 1', limit: 0.5, limit_reset: 'daily', include_byok_in_limit: true });
    expect(created.status).toBe(201);
    const { data, key: secret } = created.body;
    expect(data).toMatchObject({
      name: 'customer 1',
      disabled: false,
      limit: 0.5,
      limit_nanos: USD / 2,
      limit_remaining: 0.5,
      limit_reset: 'daily',
      include_byok_in_limit: true,
      usage: 0,
      usage_nanos: 0,
      byok_usage: 0,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(data.hash).toMatch(/^key_/);
    expect(data.label).toMatch(/^sk-sy-v1-.+…/);
    expect(secret).toMatch(/^sk-sy-v1-/);
    expect(data.label.endsWith(secret.slice(-4))).toBe(true);

    const listed = await call('GET', '/api/v1/keys', manager);
    expect(listed.status).toBe(200);
    // The owner's initial key and the new one; management keys are not listed.
    expect(listed.body.data.map((k: Json) => k.name)).toEqual(['customer 1', expect.any(String)]);
    expect(listed.body.data.some((k: Json) => k.hash === managerId)).toBe(false);
    expect((await call('GET', '/api/v1/keys?offset=1', manager)).body.data).toHaveLength(1);
    expect((await call('GET', `/api/v1/keys/${data.hash}`, manager)).body.data).toEqual(data);

    // The created key chats through the openai SDK; its usage is what the ledger charged, to the nano-dollar.
    const creditsBefore = (await call('GET', '/api/v1/credits', owner.key)).body.data.total_usage_nanos as number;
    const sdk = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: secret, maxRetries: 0 });
    const answer = await sdk.chat.completions.create({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'hello' }], max_tokens: 16 });
    expect(answer.choices[0]!.message.content).toBeTruthy();
    const used = await settledKey(data.hash, 1);
    const charge = ((await call('GET', '/api/v1/credits', owner.key)).body.data.total_usage_nanos as number) - creditsBefore;
    const generation = await record(answer.id);
    expect(charge).toBe(generation.switchyard.cost_nanodollars);
    expect(used).toMatchObject({ usage_nanos: charge, usage_daily_nanos: charge, limit_remaining_nanos: USD / 2 - charge, usage: charge / USD, limit_remaining: (USD / 2 - charge) / USD });

    const patched = await call('PATCH', `/api/v1/keys/${data.hash}`, manager, { name: 'customer one', limit: 1.25, limit_reset: null });
    expect(patched.status).toBe(200);
    expect(patched.body.data).toMatchObject({ name: 'customer one', limit_nanos: 1_250_000_000, limit_reset: null, limit_remaining_nanos: 1_250_000_000 - charge, usage_nanos: charge });

    const disabled = await call('PATCH', `/api/v1/keys/${data.hash}`, manager, { disabled: true });
    expect(disabled.body.data.disabled).toBe(true);
    expect(await chat(secret)).toEqual({ status: 401, body: openRouterError(401, 'authentication') });
    expect((await call('GET', '/api/v1/keys', manager)).body.data.map((k: Json) => k.hash)).not.toContain(data.hash);
    expect((await call('GET', '/api/v1/keys?include_disabled=true', manager)).body.data.map((k: Json) => k.hash)).toContain(data.hash);
    expect((await call('PATCH', `/api/v1/keys/${data.hash}`, manager, { disabled: false })).body.data.disabled).toBe(false);
    expect((await chat(secret)).status).toBe(200);

    expect(await call('DELETE', `/api/v1/keys/${data.hash}`, manager)).toEqual({ status: 200, body: { deleted: true } });
    expect(await call('GET', `/api/v1/keys/${data.hash}`, manager)).toEqual({ status: 404, body: openRouterError(404, 'not_found') });
    expect((await call('DELETE', `/api/v1/keys/${data.hash}`, manager)).status).toBe(404);
    expect((await chat(secret)).status).toBe(401);
    expect((await call('GET', '/api/v1/keys?include_disabled=true', manager)).body.data.map((k: Json) => k.hash)).not.toContain(data.hash);
  });

  it("keeps a management key to its own account's inference keys: any other key is a 404", async () => {
    const mine = (await call('POST', '/api/v1/keys', manager, { name: 'mine' })).body.data.hash as string;
    for (const [method, body] of [['GET'], ['PATCH', { disabled: true }], ['DELETE']] as const) {
      expect(await call(method, `/api/v1/keys/${mine}`, stranger.manager, body)).toEqual({ status: 404, body: openRouterError(404, 'not_found') });
      // A management key (its own included) is not a key the API manages.
      expect((await call(method, `/api/v1/keys/${managerId}`, manager, body)).status).toBe(404);
    }
    expect((await call('GET', `/api/v1/activity?api_key_hash=${mine}`, stranger.manager)).status).toBe(404);
    expect((await call('GET', '/api/v1/keys', stranger.manager)).body.data.map((k: Json) => k.hash)).not.toContain(mine);
    // Untouched by the stranger's attempts.
    expect((await call('GET', `/api/v1/keys/${mine}`, manager)).body.data.disabled).toBe(false);
    expect((await chat(owner.key)).status).toBe(200);
  });

  it.each([
    ['an unknown hash', 'GET', '/api/v1/keys/key_nope', undefined, 404, /key_nope/],
    ['a negative limit', 'POST', '/api/v1/keys', { name: 'n', limit: -1 }, 400, /limit/],
    ['a zero limit', 'POST', '/api/v1/keys', { name: 'n', limit: 0 }, 400, /positive/],
    ['a limit finer than a nano-dollar', 'POST', '/api/v1/keys', { name: 'n', limit: 1e-10 }, 400, /nano-dollar/],
    ['a limit as a string', 'POST', '/api/v1/keys', { name: 'n', limit: '5' }, 400, /limit/],
    ['an unknown field', 'POST', '/api/v1/keys', { name: 'n', budget: 5 }, 400, /Unknown field\(s\): budget/],
    ['no name', 'POST', '/api/v1/keys', { limit: 1 }, 400, /name/],
    ['a bad limit_reset', 'POST', '/api/v1/keys', { name: 'n', limit_reset: 'hourly' }, 400, /limit_reset/],
    ['an expiry in the past', 'POST', '/api/v1/keys', { name: 'n', expires_at: '2000-01-01T00:00:00Z' }, 400, /future/],
    ['malformed JSON', 'POST', '/api/v1/keys', '{"name":', 400, /Malformed JSON/],
    ['a body that is not an object', 'POST', '/api/v1/keys', '[1]', 400, /JSON object/],
    ['a negative offset', 'GET', '/api/v1/keys?offset=-1', undefined, 400, /offset/],
    ['an unknown query parameter', 'GET', '/api/v1/keys?limit=5', undefined, 400, /Unknown query parameter "limit"/],
    ['a date that is not a date', 'GET', '/api/v1/activity?date=2024-02-30', undefined, 400, /completed UTC days/],
    ['a date far in the past', 'GET', '/api/v1/activity?date=2001-01-01', undefined, 400, /completed UTC days/],
    ['an unknown api_key_hash', 'GET', '/api/v1/activity?api_key_hash=key_nope', undefined, 404, /key_nope/],
    ['a workspace that is not the account', 'GET', '/api/v1/activity?workspace_id=3fa85f64-5717-4562-b3fc-2c963f66afa6', undefined, 404, /Workspace 3fa85f64-5717-4562-b3fc-2c963f66afa6 not found/],
    ['a group_by other than workspace', 'GET', '/api/v1/activity?group_by=model', undefined, 400, /group_by must be "workspace"/],
  ])('answers %s with OpenRouter\'s error shape', async (_what, method, path, body, status, message) => {
    const answer = await call(method, path, manager, body);
    expect(answer).toEqual({ status, body: openRouterError(status, status === 404 ? 'not_found' : 'invalid_request') });
    expect(answer.body.error.message).toMatch(message);
  });

  it('names expires_at, with param, for an expiry in the past: POST as PATCH does (QA s41 #7)', async () => {
    const expected = { status: 400, body: { error: { code: 400, message: 'expires_at must be in the future', metadata: expect.objectContaining({ error_type: 'invalid_request', param: 'expires_at' }) } } };
    expect(await call('POST', '/api/v1/keys', manager, { name: 'past', expires_at: '2000-01-01T00:00:00Z' })).toEqual(expected);
    const hash = (await call('POST', '/api/v1/keys', manager, { name: 'future' })).body.data.hash as string;
    expect(await call('PATCH', `/api/v1/keys/${hash}`, manager, { expires_at: '2000-01-01T00:00:00Z' })).toEqual(expected);
    expect((await call('GET', '/api/v1/keys', manager)).body.data.map((k: Json) => k.name)).not.toContain('past');
  });

  it('refuses unknown fields and bad values in a PATCH without changing the key', async () => {
    const hash = (await call('POST', '/api/v1/keys', manager, { name: 'patched' })).body.data.hash as string;
    expect((await call('PATCH', `/api/v1/keys/${hash}`, manager, { name: 'new', label: 'x' })).status).toBe(400);
    expect((await call('PATCH', `/api/v1/keys/${hash}`, manager, { name: 'new', limit: -2 })).status).toBe(400);
    expect((await call('PATCH', `/api/v1/keys/${hash}`, manager, { disabled: 'yes' })).status).toBe(400);
    expect((await call('GET', `/api/v1/keys/${hash}`, manager)).body.data).toMatchObject({ name: 'patched', limit: null, disabled: false });
  });

  it('reports per model and day exactly what the generations of completed days used, filtered by date and key', async () => {
    const third = (await call('POST', '/api/v1/keys', manager, { name: 'third' })).body;
    const ids: string[] = [];
    for (const [key, model] of [
      [owner.key, 'switchyard/demo-paid'],
      [owner.key, 'switchyard/demo'],
      [third.key as string, 'switchyard/demo-paid'],
    ] as const) {
      const answer = await chat(key, model);
      expect(answer.status).toBe(200);
      ids.push(answer.body.id);
    }
    // Every generation of this account (the earlier tests' too) as its record says.
    const today = new Date(Date.now() + shift).toISOString().slice(0, 10);
    let listed: string[] = [];
    await expect
      .poll(async () => (listed = (await h.gql('{ generations(first: 100) { edges { node { id } } } }', {}, owner.key)).body.data.generations.edges.map((e: Json) => e.node.id as string)), { timeout: 10_000 })
      .toEqual(expect.arrayContaining(ids));
    const settled: Json[] = await Promise.all(listed.map(record));

    // Today is not a completed day yet: not listed, and not a valid date.
    expect((await call('GET', '/api/v1/activity', manager)).body).toEqual({ data: [] });
    expect((await call('GET', `/api/v1/activity?date=${today}`, manager)).status).toBe(400);

    shift = DAY_MS;
    const expected = (gens: Json[]) => {
      const rows = new Map<string, Json>();
      for (const g of gens) {
        const id = `${g.model}@${g.switchyard.provider_slug}`;
        const row = rows.get(id) ?? { date: today, model: g.model, model_permaslug: g.model, endpoint_id: id, provider_name: g.provider_name, usage_nanos: 0, byok_usage_inference: 0, byok_usage_inference_nanos: 0, requests: 0, prompt_tokens: 0, completion_tokens: 0, reasoning_tokens: 0 };
        row.usage_nanos += g.switchyard.cost_nanodollars;
        row.requests += 1;
        row.prompt_tokens += g.tokens_prompt;
        row.completion_tokens += g.tokens_completion;
        row.reasoning_tokens += g.native_tokens_reasoning;
        rows.set(id, row);
      }
      return [...rows.values()].sort((a, b) => a.model.localeCompare(b.model)).map((row) => ({ ...row, usage: row.usage_nanos / USD }));
    };
    await expect.poll(async () => (await call('GET', '/api/v1/activity', manager)).body.data, { timeout: 10_000 }).toEqual(expected(settled));
    expect(expected(settled).map((r) => r.model)).toEqual(['switchyard/demo', 'switchyard/demo-paid']);
    expect((await call('GET', `/api/v1/activity?date=${today}`, manager)).body.data).toEqual(expected(settled));
    const yesterday = new Date(Date.parse(today) - DAY_MS).toISOString().slice(0, 10);
    expect((await call('GET', `/api/v1/activity?date=${yesterday}`, manager)).body).toEqual({ data: [] });
    const thirdOnly = expected(settled.filter((g) => g.id === ids[2]));
    expect(thirdOnly).toHaveLength(1);
    expect((await call('GET', `/api/v1/activity?api_key_hash=${third.data.hash}`, manager)).body.data).toEqual(thirdOnly);
    // The account is its one workspace: workspace_id (its id, or "default") narrows nothing, and group_by=workspace
    // names it on every item; another account's id is a workspace this key cannot see.
    for (const workspace of ['default', owner.accountId]) expect((await call('GET', `/api/v1/activity?workspace_id=${workspace}`, manager)).body.data).toEqual(expected(settled));
    expect((await call('GET', '/api/v1/activity?group_by=workspace', manager)).body.data).toEqual(expected(settled).map((row) => ({ ...row, workspace_id: owner.accountId })));
    expect((await call('GET', `/api/v1/activity?group_by=workspace&workspace_id=default&api_key_hash=${third.data.hash}`, manager)).body.data).toEqual(thirdOnly.map((row) => ({ ...row, workspace_id: owner.accountId })));
    expect((await call('GET', `/api/v1/activity?workspace_id=${owner.accountId}`, stranger.manager)).status).toBe(404);
    // The other account sees none of it.
    expect((await call('GET', '/api/v1/activity', stranger.manager)).body).toEqual({ data: [] });
  });
});
