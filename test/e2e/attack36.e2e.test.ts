/**
 * An attacker's pass over stop 36's surfaces, through the started app over HTTP and GraphQL: every caller is hostile
 * (another account, a provider owner who is not admin, one who no longer is). What each probe found, and what it
 * proves now, is in its name; a probe that found nothing stays only where no other test asserts the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

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
