/**
 * An attacker's pass over stop 36's surfaces, through the started app over HTTP and GraphQL: every caller is hostile
 * (another account, a provider owner who is not admin, one who no longer is, a workflow designer). Three probes found
 * holes, fixed at their source: an owner who had lost the admin role still moved a provider an admin registered (the
 * platform's environment key followed, past the outbound check); embeddings ended at a refused own key instead of
 * going on to the shared one; an alias had no length bound. The others found nothing and stay where no other test
 * asserts the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';
import { parseResponse, rawExchange } from '../support/rawHttp.js';

/** The platform's own provider key, read from the environment by a provider an admin registered (credentialEnv). */
const PLATFORM_ENV = 'ATTACK36_PLATFORM_KEY';
const PLATFORM_KEY = 'sk-platform-secret-a36-0f9e8d7c6b5a';
const PRICES = { prompt: 1_000, completion: 3_001 };
const USAGE = { promptTokens: 7, completionTokens: 3 };
const hi = [{ role: 'user' as const, content: 'hi' }];
const ERROR = '... on DomainError { code message }';

let h: GatewayHarness;
/** The upstream every provider below starts on; accepts any key and records what it received. */
let upstream: FakeProvider;
/** Where an attacker would like keys to go: records everything it receives. */
let recorder: FakeProvider;

const gqlData = async (query: string, variables: Record<string, unknown>, key: string | null) => {
  const { status, body } = await h.gql(query, variables, key);
  expect(status, JSON.stringify(body)).toBeLessThan(500);
  return body as { data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string } }[] };
};

const moveProvider = (provider: string, baseUrl: string, key: string) =>
  gqlData(`mutation ($p: String!, $b: String!) { setProviderBaseUrl(provider: $p, baseUrl: $b) { __typename ... on Provider { slug baseUrl } ${ERROR} } }`, { p: provider, b: baseUrl }, key);

/** The code a mutation was refused with, whether as a typed result (DomainError) or a GraphQL error (scope-auth). */
const refusalCode = (body: Awaited<ReturnType<typeof gqlData>>, field: string): string | undefined => body.data?.[field]?.code ?? body.errors?.[0]?.extensions?.code;

const providerBaseUrl = async (slug: string) =>
  ((await gqlData('{ providers { slug baseUrl } }', {}, ADMIN_KEY)).data!.providers as { slug: string; baseUrl: string }[]).find((p) => p.slug === slug)?.baseUrl;

const registerProvider = async (owner: string, slug: string, credential: { apiKey: string } | { credentialEnv: string }) => {
  const registered = await gqlData(
    `mutation ($slug: String!, $b: String!, $k: String, $env: String) {
      registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $b, apiKey: $k, credentialEnv: $env) { __typename ... on Provider { slug } ${ERROR} } }`,
    { slug, b: upstream.baseUrl, k: 'apiKey' in credential ? credential.apiKey : null, env: 'credentialEnv' in credential ? credential.credentialEnv : null },
    owner,
  );
  expect(registered.data?.registerProvider).toEqual({ __typename: 'Provider', slug });
  const published = await gqlData(
    `mutation ($p: String!, $m: String!) { publishEndpoint(provider: $p, model: $m, upstreamModel: "fake-model", prices: { prompt: 1000, completion: 3001 }, contextLength: 16000, maxOutput: 1000) { __typename ... on Endpoint { id } ${ERROR} } }`,
    { p: slug, m: `${slug}/chat` },
    owner,
  );
  expect(published.data?.publishEndpoint).toEqual({ __typename: 'Endpoint', id: `${slug}/chat@${slug}` });
};

beforeAll(async () => {
  process.env[PLATFORM_ENV] = PLATFORM_KEY;
  h = await startGatewayHarness({ PROVIDER_CREDENTIAL_ENV_ALLOW: PLATFORM_ENV });
  upstream = await startFakeProvider('openai');
  upstream.setDefault({ text: 'ok', usage: USAGE });
  recorder = await startFakeProvider('openai');
  recorder.setDefault({ text: 'recorded', usage: USAGE });
  h.fakes.push(upstream, recorder);
});

afterAll(async () => {
  await h?.stop();
  delete process.env[PLATFORM_ENV];
});

describe('setProviderBaseUrl: who may point a provider elsewhere, and where', () => {
  it("refuses an owner who is no longer an admin to move a provider registered as an admin's (its credential may be the platform's own environment key)", async () => {
    const former = await h.openAccount({ roles: ['user', 'provider', 'admin'] });
    await registerProvider(former.key, 'a36-trusted', { credentialEnv: PLATFORM_ENV });
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const served = await h.chat(user.key, { model: 'a36-trusted/chat', messages: hi });
    expect(served.status, await served.clone().text()).toBe(200);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${PLATFORM_KEY}`);

    const revoked = await gqlData('mutation ($a: ID!) { revokeRole(accountId: $a, role: ADMIN) { __typename ... on Account { roles } } }', { a: former.accountId }, ADMIN_KEY);
    expect(revoked.data?.revokeRole.roles).not.toContain('ADMIN');

    // To a host it controls (public as far as the outbound policy is concerned), and to a private address.
    for (const target of [recorder.baseUrl, 'http://10.0.0.7/v1']) {
      const moved = await moveProvider('a36-trusted', target, former.key);
      expect(refusalCode(moved, 'setProviderBaseUrl'), `${target}: ${JSON.stringify(moved)}`).toBe('FORBIDDEN');
    }
    expect(await providerBaseUrl('a36-trusted')).toBe(upstream.baseUrl);
    const before = recorder.requests.length;
    expect((await h.chat(user.key, { model: 'a36-trusted/chat', messages: hi })).status).toBe(200);
    expect(recorder.requests.length).toBe(before);
    expect(JSON.stringify(recorder.requests)).not.toContain(PLATFORM_KEY);

    // Nor does it keep its other owner powers: publishing an endpoint (a new model in the provider's namespace, served
    // on the platform's key at a price it sets), changing a price, disabling an endpoint, the cancellation setting.
    const refusals = [
      ['publishEndpoint', `mutation { r: publishEndpoint(provider: "a36-trusted", model: "a36-trusted/free-ride", upstreamModel: "fake-model", prices: { prompt: 0, completion: 0 }, contextLength: 16000, maxOutput: 1000) { __typename ${ERROR} } }`],
      ['changePrice', `mutation { r: changePrice(provider: "a36-trusted", model: "a36-trusted/chat", prices: { prompt: 0, completion: 0 }) { __typename ${ERROR} } }`],
      ['disableEndpoint', `mutation { r: disableEndpoint(provider: "a36-trusted", model: "a36-trusted/chat", reason: "mine") { __typename ${ERROR} } }`],
      ['setProviderCancellation', `mutation { r: setProviderCancellation(provider: "a36-trusted", cancellable: false) { __typename ${ERROR} } }`],
    ];
    for (const [name, mutation] of refusals) {
      const answer = await gqlData(mutation!, {}, former.key);
      expect(answer.data?.r ?? answer.errors, name).toEqual({ __typename: 'DomainError', code: 'FORBIDDEN', message: 'Provider a36-trusted was registered by an admin: only an admin changes it' });
    }
    expect((await gqlData('{ model(id: "a36-trusted/free-ride") { id } }', {}, ADMIN_KEY)).data?.model).toBeNull();
    const endpoint = await h.gqlOk('{ model(id: "a36-trusted/chat") { endpoints { status prices { prompt } } } }');
    expect(endpoint.model.endpoints).toEqual([{ status: 'active', prices: { prompt: 1000 } }]);

    // An admin still may.
    expect((await moveProvider('a36-trusted', recorder.baseUrl, ADMIN_KEY)).data?.setProviderBaseUrl).toEqual({ __typename: 'Provider', slug: 'a36-trusted', baseUrl: recorder.baseUrl });
  });

  it("refuses a tenant moving another account's provider (FORBIDDEN) or its own to a private or metadata address (VALIDATION); nothing moves", async () => {
    const tenant = await h.openAccount({ roles: ['user', 'provider'] });
    const other = await h.openAccount({ roles: ['user', 'provider'] });
    await registerProvider(tenant.key, 'a36-tenant', { apiKey: 'sk-tenant-own-key' });
    await registerProvider(other.key, 'a36-other', { apiKey: 'sk-other-own-key' });

    expect(refusalCode(await moveProvider('a36-other', recorder.baseUrl, tenant.key), 'setProviderBaseUrl')).toBe('FORBIDDEN');
    expect(refusalCode(await moveProvider('a36-trusted', recorder.baseUrl, tenant.key), 'setProviderBaseUrl')).toBe('FORBIDDEN');
    for (const target of ['http://169.254.169.254/latest', 'http://10.1.2.3/v1', 'http://[::1]:8080/v1', 'http://0.0.0.0:8080/v1']) {
      const moved = await moveProvider('a36-tenant', target, tenant.key);
      expect(moved.data?.setProviderBaseUrl, target).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
    }
    for (const target of ['file:///etc/passwd', 'javascript:alert(1)', 'http://user:pass@example.com/v1', 'not a url', `http://example.com/${'x'.repeat(3000)}`]) {
      const moved = await moveProvider('a36-tenant', target, tenant.key);
      expect(refusalCode(moved, 'setProviderBaseUrl'), target).toMatch(/^(VALIDATION|BAD_USER_INPUT|GRAPHQL_VALIDATION)$/);
    }
    expect(await providerBaseUrl('a36-tenant')).toBe(upstream.baseUrl);
    expect(await providerBaseUrl('a36-other')).toBe(upstream.baseUrl);
  });
});

describe("an account's own provider key (BYOK)", () => {
  const SET_KEY = `mutation ($p: String!, $k: String!, $f: Boolean) { setByokKey(provider: $p, apiKey: $k, fallbackToShared: $f) { __typename ... on Account { byokKeys { provider hint status } } ${ERROR} } }`;
  let embeddings: FakeProvider;

  beforeAll(async () => {
    embeddings = await h.fakeEndpoint({ protocol: 'openai', slug: 'a36-emb', model: 'openai/text-embedding-3-small', prices: { prompt: 20, completion: 0 }, maxOutput: 1 });
    const allowed = await gqlData('mutation { setProviderByok(provider: "a36-emb", allowed: true) { __typename ... on Provider { byok } } }', {}, ADMIN_KEY);
    expect(allowed.data?.setProviderByok).toEqual({ __typename: 'Provider', byok: true });
  });

  it('is refused unless 8 to 4096 printable characters (no control characters, spaces, non-ASCII), as a typed error that stores nothing', async () => {
    const own = await h.openAccount();
    const odd = ['short12', 'k'.repeat(4097), 'sk-line\r\nX-Injected: yes', 'sk-nul\u0000abcdefgh', 'sk-tab\tabcdefgh', 'sk-ключ-1234567', 'sk-emoji-🔑-12345678', ' sk-leading-space', 'k'.repeat(200_000)];
    for (const apiKey of odd) {
      const answer = (await gqlData(SET_KEY, { p: 'a36-emb', k: apiKey, f: true }, own.key)).data?.setByokKey;
      expect(answer, JSON.stringify(apiKey.slice(0, 40))).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringContaining('apiKey must be 8 to 4096 printable characters') });
      expect(JSON.stringify(answer)).not.toContain(apiKey.slice(0, 20));
    }
    for (const provider of ['__proto__', 'constructor', 'A36-EMB/../openai', 'x'.repeat(65)]) {
      const body = await gqlData(SET_KEY, { p: provider, k: 'sk-a-valid-looking-key', f: true }, own.key);
      expect(refusalCode(body, 'setByokKey'), provider).toMatch(/^(NOT_FOUND|VALIDATION|BAD_USER_INPUT)$/);
    }
    // Wrong types are GraphQL's own errors, never a 500 (gqlData checks the status).
    const typed = await gqlData('mutation { setByokKey(provider: "a36-emb", apiKey: 12345678) { __typename } }', {}, own.key);
    expect(typed.errors?.[0]?.message).toMatch(/String cannot represent a non string value/);
    const variable = await gqlData(SET_KEY, { p: 'a36-emb', k: 'sk-a-valid-looking-key', f: 'no' }, own.key);
    expect(variable.errors?.[0]?.message).toMatch(/Boolean cannot represent a non boolean value/);
    expect((await gqlData('{ me { byokKeys { provider } } }', {}, own.key)).data?.me.byokKeys).toEqual([]);
    // At the bounds it is stored, and sent as it is.
    const longest = `sk-${'k'.repeat(4093)}`;
    expect((await gqlData(SET_KEY, { p: 'A36-Emb', k: longest, f: true }, own.key)).data?.setByokKey.byokKeys).toEqual([{ provider: 'a36-emb', hint: '…kkkk', status: 'ACTIVE' }]);
    await h.grant(own.accountId, 1_000_000_000);
    const res = await fetch(`${h.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${own.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: 'hello', provider: { only: ['a36-emb'] } }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(embeddings.requests.at(-1)!.headers.authorization).toBe(`Bearer ${longest}`);
    // Its usage says so, as chat's does: the fee as cost (5% of the list price, rounded up), the list price beside it.
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; cost: number; is_byok: boolean; cost_details: { upstream_inference_cost: number } } };
    expect(usage.is_byok).toBe(true);
    const list = usage.prompt_tokens * 20;
    expect(Math.round(usage.cost_details.upstream_inference_cost * 1e9)).toBe(list);
    expect(Math.round(usage.cost * 1e9)).toBe(Math.ceil(list / 20));
  });

  it('never lets parallel BYOK calls pass a key limit that counts their list price (include_byok_in_limit), nor leave a reservation', async () => {
    const chat = await startFakeProvider('openai');
    chat.setDefault({ text: 'ok', usage: USAGE, latencyMs: 30 });
    h.fakes.push(chat);
    await h.fakeEndpoint({ protocol: 'openai', slug: 'a36-chat', model: 'a36-chat/chat', prices: PRICES, reuse: chat });
    await gqlData('mutation { setProviderByok(provider: "a36-chat", allowed: true) { __typename } }', {}, ADMIN_KEY);
    const own = await h.openAccount({ credits: 10_000_000_000 });
    expect((await gqlData(SET_KEY, { p: 'a36-chat', k: 'sk-own-chat-key-1234', f: false }, own.key)).data?.setByokKey.byokKeys).toEqual([{ provider: 'a36-chat', hint: '…1234', status: 'ACTIVE' }]);
    // max_tokens 50: the worst case is 14 (the prompt's most tokens: 2 bytes, 4 for the message, 8 for the reply)
    // × 1,000 + 50 × 3,001 = 164,050 list, a fee of 8,203: the key holds 172,253 a call. A limit for 5 at once; each
    // call then counts 16,003 list + 801 fee.
    const limit = 5 * 172_253 + 100;
    const created = await gqlData(
      `mutation ($a: ID, $l: Money) { createApiKey(name: "team", accountId: $a, limit: $l, limitReset: NEVER, includeByokInLimit: true) { ... on CreatedApiKey { secret } ${ERROR} } }`,
      { a: own.accountId, l: limit },
      ADMIN_KEY,
    );
    const secret = created.data?.createApiKey.secret as string;
    const results = await Promise.all(Array.from({ length: 40 }, () => h.chat(secret, { model: 'a36-chat/chat', messages: hi, max_tokens: 50, provider: { only: ['a36-chat'] } })));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 402), JSON.stringify(statuses)).toBe(true);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
    const balance = await h.settledBalance(own.accountId);
    expect(balance.reserved).toBe(0);
    const report = ((await (await fetch(`${h.url}/api/v1/key`, { headers: { authorization: `Bearer ${secret}` } })).json()) as { data: Record<string, number> }).data;
    const served = statuses.filter((s) => s === 200).length;
    expect(report).toMatchObject({ usage_nanos: served * (16_003 + 801), byok_usage_nanos: served * 16_003 });
    expect(report.usage_nanos).toBeLessThanOrEqual(limit);
    expect(balance.settled).toBe(served * 801);
  });

  it("is no longer sent once an admin stops allowing keys for its provider: the shared key serves, or nothing with fallbackToShared false", async () => {
    // Takes any key, and records it.
    const fake = await startFakeProvider('openai');
    fake.setDefault({ text: 'ok', usage: USAGE });
    h.fakes.push(fake);
    await h.fakeEndpoint({ protocol: 'openai', slug: 'a36-withdrawn', model: 'a36-withdrawn/chat', prices: PRICES, reuse: fake });
    const allow = async (allowed: boolean) =>
      expect((await gqlData('mutation ($a: Boolean!) { setProviderByok(provider: "a36-withdrawn", allowed: $a) { __typename ... on Provider { byok } } }', { a: allowed }, ADMIN_KEY)).data?.setProviderByok).toEqual({ __typename: 'Provider', byok: allowed });
    await allow(true);
    const lenient = await h.openAccount({ credits: 1_000_000_000 });
    const strict = await h.openAccount({ credits: 1_000_000_000 });
    await gqlData(SET_KEY, { p: 'a36-withdrawn', k: 'sk-lenient-own-key-1', f: true }, lenient.key);
    await gqlData(SET_KEY, { p: 'a36-withdrawn', k: 'sk-strict-own-key-2', f: false }, strict.key);
    const sentDuring = async (run: () => Promise<void>) => {
      const before = fake.requests.length;
      await run();
      return fake.requests.slice(before).map((r) => r.headers.authorization);
    };
    const call = (who: { key: string }) => h.chat(who.key, { model: 'a36-withdrawn/chat', messages: hi });
    expect(await sentDuring(async () => void (await call(lenient)))).toEqual(['Bearer sk-lenient-own-key-1']);

    await allow(false);
    expect((await gqlData('{ me { byokKeys { status } } }', {}, lenient.key)).data?.me.byokKeys).toEqual([{ status: 'PROVIDER_NOT_ALLOWED' }]);
    const sent = await sentDuring(async () => {
      const served = await call(lenient);
      expect(served.status).toBe(200);
      expect(((await served.json()) as { usage: { is_byok: boolean } }).usage.is_byok).toBe(false);
      expect((await call(strict)).status).toBeGreaterThanOrEqual(400);
    });
    expect(sent).toEqual(['Bearer fake-upstream-key']);

    // Allowed again, the keys kept are sent again.
    await allow(true);
    expect(await sentDuring(async () => void (await call(strict)))).toEqual(['Bearer sk-strict-own-key-2']);
  });

  it("on embeddings, a refused own key falls back to the provider's shared key (as on chat) when fallbackToShared is true", async () => {
    const own = await h.openAccount({ credits: 1_000_000_000 });
    expect((await gqlData(SET_KEY, { p: 'a36-emb', k: 'sk-revoked-upstream-key', f: true }, own.key)).data?.setByokKey.byokKeys).toEqual([
      { provider: 'a36-emb', hint: '…-key', status: 'ACTIVE' },
    ]);
    embeddings.script({ status: 401 });
    const before = embeddings.requests.length;
    const res = await fetch(`${h.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${own.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: 'hello', provider: { only: ['a36-emb'] } }),
    });
    expect(embeddings.requests.slice(before).map((r) => r.headers.authorization)).toEqual(['Bearer sk-revoked-upstream-key', 'Bearer fake-upstream-key']);
    expect(res.status, await res.clone().text()).toBe(200);
    // Served on the shared key: charged the list price in full (20 a token), not the fee.
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; is_byok: boolean; cost_details: { upstream_inference_cost: number | null } } };
    expect(usage).toMatchObject({ is_byok: false, cost_details: { upstream_inference_cost: null } });
    expect((await h.settledBalance(own.accountId)).settled).toBe(usage.prompt_tokens * 20);
  });
});

describe("a manual run's Idempotency-Key and body, sent malformed", () => {
  it('a key sent twice (two headers, joined by Node) or a malformed body is a 400 that starts no run; a wrong GraphQL type is GraphQL\'s error', async () => {
    const designer = await h.openAccount({ roles: ['user', 'designer'] });
    const definition = { name: 'A36 manual', trigger: { type: 'manual' }, steps: [{ key: 'echo', type: 'action.transform', input: { expression: '=trigger.body' } }] };
    const created = await gqlData(`mutation ($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, designer.key);
    const id = created.data?.createWorkflow.id as string;
    expect(id).toMatch(/^wf_/);
    const runs = async () => (await gqlData('query ($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id } } } }', { id }, designer.key)).data?.workflowRuns.edges.length;

    const raw = (headers: string, body: string) =>
      rawExchange(
        h.port,
        `POST /api/v1/workflows/${id}/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${designer.key}\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    // Two keys: neither is taken for the other (Node joins them with ", ", not a key).
    const twice = parseResponse(await raw('Idempotency-Key: order-1\r\nIdempotency-Key: order-2\r\n', '{}'));
    expect(twice.status).toBe(400);
    expect(JSON.parse(twice.body.toString())).toMatchObject({ error: { code: 400, metadata: { header: 'idempotency-key' } } });
    // Bytes beyond ASCII in the key (Node reads them as latin1).
    expect(parseResponse(await raw('Idempotency-Key: caf\xe9-1\r\n', '{}')).status).toBe(400);
    for (const body of ['{"name":', '[1,2', 'null null', '\u0000']) {
      const res = parseResponse(await raw('Idempotency-Key: order-3\r\n', body));
      expect(res.status, body).toBe(400);
    }
    expect(await runs()).toBe(0);
    // The key a malformed call carried was not used up: the well-formed call starts its run.
    expect(parseResponse(await raw('Idempotency-Key: order-3\r\n', '{"n":1}')).status).toBe(202);
    expect(await runs()).toBe(1);

    for (const literal of ['5', 'true', '["a"]', '{a: 1}']) {
      const typed = await gqlData(`mutation ($id: ID!) { runWorkflow(id: $id, input: {}, idempotencyKey: ${literal}) { __typename } }`, { id }, designer.key);
      expect(typed.errors?.[0]?.message, literal).toMatch(/String cannot represent/);
    }
    expect(await runs()).toBe(1);
  });
});

describe("the aliases' namespace", () => {
  it('no provider can publish a model id an alias could shadow (~author/slug): the tilde names aliases only', async () => {
    const tenant = await h.openAccount({ roles: ['user', 'provider'] });
    await registerProvider(tenant.key, 'a36-shadow', { apiKey: 'sk-shadow-own-key' });
    for (const [key, model] of [
      [tenant.key, '~a36-shadow/latest'],
      [ADMIN_KEY, '~openai/gpt-latest'],
    ] as const) {
      const published = await gqlData(
        `mutation ($m: String!) { publishEndpoint(provider: "a36-shadow", model: $m, upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 1000, maxOutput: 100) { __typename ${ERROR} } }`,
        { m: model },
        key,
      );
      expect(published.data?.publishEndpoint, model).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
    }
    // So an alias nobody set stays an unknown id, never some provider's model.
    const user = await h.openAccount({ credits: 1_000_000 });
    const res = await h.chat(user.key, { model: '~a36-shadow/latest', messages: hi });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe('~a36-shadow/latest is not a valid model ID');
  });
});

describe('the admin catalog mutations, given odd input', () => {
  it('answer a typed error for every odd alias, model or provider, never an internal one', async () => {
    const long = 'a'.repeat(100_000);
    const calls: [string, string, Record<string, unknown>][] = [
      ['setModelAlias', 'mutation ($a: String!, $m: String!) { setModelAlias(alias: $a, model: $m) { __typename ' + ERROR + ' } }', { a: '~a36/x', m: long }],
      ['setModelAlias', 'mutation ($a: String!, $m: String!) { setModelAlias(alias: $a, model: $m) { __typename ' + ERROR + ' } }', { a: `~${long}/b`, m: 'switchyard/demo' }],
      ['setModelAlias', 'mutation ($a: String!, $m: String!) { setModelAlias(alias: $a, model: $m) { __typename ' + ERROR + ' } }', { a: '~a36/\u0000', m: 'switchyard/demo' }],
      ['setModelAlias', 'mutation ($a: String!, $m: String!) { setModelAlias(alias: $a, model: $m) { __typename ' + ERROR + ' } }', { a: '~a36/x', m: `switchyard/demo${':nitro'.repeat(5000)}` }],
      ['setModelAlias', 'mutation ($a: String!, $m: String!) { setModelAlias(alias: $a, model: $m) { __typename ' + ERROR + ' } }', { a: '~a36/x', m: `a/${'1-'.repeat(5000)}1` }],
      ['removeModelAlias', 'mutation ($a: String!) { removeModelAlias(alias: $a) { __typename ' + ERROR + ' } }', { a: '~../../x' }],
      ['removeModelAlias', 'mutation ($a: String!) { removeModelAlias(alias: $a) { __typename ' + ERROR + ' } }', { a: long }],
      ['retireModel', 'mutation ($m: String!) { retireModel(model: $m) { __typename ' + ERROR + ' } }', { m: long }],
      ['retireModel', 'mutation ($m: String!) { retireModel(model: $m) { __typename ' + ERROR + ' } }', { m: '\u0000/\u0000' }],
      ['retireModel', 'mutation ($m: String!) { retireModel(model: $m) { __typename ' + ERROR + ' } }', { m: '__proto__' }],
      ['setProviderByok', 'mutation ($p: String!) { setProviderByok(provider: $p, allowed: true) { __typename ' + ERROR + ' } }', { p: long }],
      ['setProviderByok', 'mutation ($p: String!) { setProviderByok(provider: $p, allowed: true) { __typename ' + ERROR + ' } }', { p: 'constructor' }],
      ['setProviderBaseUrl', 'mutation ($p: String!) { setProviderBaseUrl(provider: $p, baseUrl: "https://example.com/v1") { __typename ' + ERROR + ' } }', { p: 'no-such-provider' }],
      ['setProviderBaseUrl', 'mutation ($p: String!) { setProviderBaseUrl(provider: $p, baseUrl: "https://example.com/v1") { __typename ' + ERROR + ' } }', { p: 'switchyard' }],
    ];
    for (const [field, query, variables] of calls) {
      const body = await gqlData(query, variables, ADMIN_KEY);
      const what = `${field} ${JSON.stringify(variables).slice(0, 80)}: ${JSON.stringify(body).slice(0, 300)}`;
      const code = refusalCode(body, field);
      expect(code ?? 'none', what).toMatch(/^(VALIDATION|NOT_FOUND|BAD_USER_INPUT)$/);
    }
  });
});
