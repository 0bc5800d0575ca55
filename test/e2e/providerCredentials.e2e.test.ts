/**
 * Provider credentials across the trust boundary (issue 10, item 2): a provider cannot make Switchyard send a server
 * secret to its own upstream, an admin may name only variables the operator allowed, events written before the
 * fix read nothing, a provider's own key is stored encrypted under a master key the embedded mode generates, and
 * nobody but a provider's owner and the admins sees how its key is held or why it fails.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startSwitchyard } from '../../src/main.js';
import { providerStream } from '../../src/modules/catalog/provider.events.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const REGISTER = `mutation ($slug: String!, $baseUrl: String!, $env: String, $apiKey: String) {
  registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, credentialEnv: $env, apiKey: $apiKey) { ... on Provider { slug } ... on DomainError { code message } } }`;
const PUBLISH = `mutation ($provider: String!, $model: String!) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`;
const PROVIDERS = `{ providers { slug credentialKind credentialEnv ownerAccountId available unavailableReason } }`;

const OPERATOR_OPENAI_KEY = 'sk-operator-openai-key-0123456789';
const TEAM_KEY = 'team-upstream-key-from-the-environment';
/** What the vault reads: the server's own environment. ADMIN_API_KEY is there as it would be in a deployment. */
const SERVER_ENV = { ADMIN_API_KEY: ADMIN_KEY, OPENAI_API_KEY: OPERATOR_OPENAI_KEY, TEAM_UPSTREAM_KEY: TEAM_KEY };

const headersSeenBy = (fake: FakeProvider) => JSON.stringify(fake.requests.map((r) => r.headers));

let h: GatewayHarness;
let fake: FakeProvider;
let mallory: Account;
let user: Account;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  for (const [name, value] of Object.entries(SERVER_ENV)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
  h = await startGatewayHarness({ PROVIDER_CREDENTIAL_ENV_ALLOW: 'OPENAI_API_KEY,TEAM_*' });
  fake = await startFakeProvider('openai');
  mallory = await h.openAccount({ roles: ['provider'], name: 'mallory' });
  user = await h.openAccount({ credits: 1_000_000_000 });
});

afterAll(async () => {
  await fake.close();
  await h.stop();
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const chat = (model: string) => h.chat(user.key, { model, messages: [{ role: 'user', content: 'hello' }] });

describe('credentialEnv: exfiltration attempts', () => {
  it('a provider account cannot name an environment variable, not even an allowed one', async () => {
    for (const [slug, env] of [
      ['exfil-admin', 'ADMIN_API_KEY'],
      ['exfil-openai', 'OPENAI_API_KEY'],
    ] as const) {
      const { body } = await h.gql(REGISTER, { slug, baseUrl: fake.baseUrl, env }, mallory.key);
      expect(body.data.registerProvider).toEqual({ code: 'FORBIDDEN', message: 'Only an admin may name an environment variable as a provider credential: pass apiKey instead' });
      expect(h.running.core.gateway.catalog.provider(slug)).toBeUndefined();
    }
  });

  it('an admin may name only a variable the operator allowed, never the server secrets', async () => {
    for (const env of ['ADMIN_API_KEY', 'SWITCHYARD_MASTER_KEY', 'HOME', 'OPENAI_API_KEY_EXTRA']) {
      const { body } = await h.gql(REGISTER, { slug: 'admin-named', baseUrl: fake.baseUrl, env });
      expect(body.data.registerProvider).toEqual({ code: 'FORBIDDEN', message: `Environment variable ${env} is not one a provider key may be read from (PROVIDER_CREDENTIAL_ENV_ALLOW)` });
    }
    const { body } = await h.gql(REGISTER, { slug: 'team-upstream', baseUrl: fake.baseUrl, env: 'TEAM_UPSTREAM_KEY' });
    expect(body.data.registerProvider).toEqual({ slug: 'team-upstream' });
    expect((await h.gql(PUBLISH, { provider: 'team-upstream', model: 'team/model' })).body.data.publishEndpoint).toEqual({ id: 'team/model@team-upstream' });
    const res = await chat('team/model');
    expect(res.status).toBe(200);
    expect(fake.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TEAM_KEY}`);
  });

  it('a provider registered before the fix with credentialEnv sends nothing: not the admin key, not an allowed variable', async () => {
    const before = fake.requests.length;
    for (const [slug, env] of [
      ['legacy-admin', 'ADMIN_API_KEY'],
      ['legacy-openai', 'OPENAI_API_KEY'],
    ] as const) {
      // The event as the old registerProvider wrote it for a provider account: no `trusted` field.
      const data = { slug, name: slug, protocol: 'openai', baseUrl: fake.baseUrl, credential: { env }, headers: {}, ownerAccountId: mallory.accountId, at: new Date().toISOString() };
      const appended = await h.running.core.eventStore.append(providerStream(slug), [{ type: 'ProviderRegistered', data }], { expectedRevision: 'no_stream' });
      await h.running.core.gateway.catalog.waitFor(appended.position);
      const published = await h.gql(PUBLISH, { provider: slug, model: `${slug}/legacy` }, mallory.key);
      expect(published.body.data.publishEndpoint).toEqual({ id: `${slug}/legacy@${slug}` });
      const res = await chat(`${slug}/legacy`);
      expect(res.status).toBe(503);
      const message = ((await res.json()) as { error: { message: string } }).error.message;
      expect(message).toContain('its credentials are not configured');
      expect(message).not.toContain(env);
      // The reason is for the operator: an admin reads it on the provider.
      const seen = await h.gql(`query { providers { slug unavailableReason } }`);
      expect(seen.body.data.providers.find((p: { slug: string }) => p.slug === slug).unavailableReason).toContain('not registered by an admin');
    }
    expect(fake.requests.length).toBe(before);
    expect(headersSeenBy(fake)).not.toContain(ADMIN_KEY);
    expect(headersSeenBy(fake)).not.toContain(OPERATOR_OPENAI_KEY);
  });
});

describe('who sees how a provider key is held', () => {
  let ownersOwn: string;

  beforeAll(async () => {
    const { body } = await h.gql(REGISTER, { slug: 'mallory-own', baseUrl: fake.baseUrl, apiKey: 'sk-mallory-own-key' }, mallory.key);
    expect(body.data.registerProvider).toEqual({ slug: 'mallory-own' });
    ownersOwn = 'mallory-own';
  });

  it('a user or an anonymous caller sees no credentialEnv, owner or failure reason in providers', async () => {
    for (const key of [user.key, null]) {
      const { body } = await h.gql(PROVIDERS, {}, key);
      const anthropic = body.data.providers.find((p: { slug: string }) => p.slug === 'anthropic');
      expect(anthropic).toEqual({ slug: 'anthropic', credentialKind: 'env', credentialEnv: null, ownerAccountId: null, available: false, unavailableReason: null });
      const text = JSON.stringify(body);
      expect(text).not.toMatch(/_API_KEY|_KEY\b|acc_|not set|not allowed/);
    }
  });

  it("an owner sees its own provider's internals and nobody else's; an admin sees all", async () => {
    const { body } = await h.gql(PROVIDERS, {}, mallory.key);
    const bySlug = new Map(body.data.providers.map((p: { slug: string }) => [p.slug, p]));
    expect(bySlug.get(ownersOwn)).toMatchObject({ ownerAccountId: mallory.accountId, credentialKind: 'encrypted', available: true });
    expect(bySlug.get('legacy-admin')).toMatchObject({ ownerAccountId: mallory.accountId, credentialEnv: 'ADMIN_API_KEY', unavailableReason: expect.stringContaining('not registered by an admin') });
    expect(bySlug.get('anthropic')).toMatchObject({ credentialEnv: null, ownerAccountId: null, unavailableReason: null });
    const admin = await h.gql(PROVIDERS, {});
    expect(admin.body.data.providers.find((p: { slug: string }) => p.slug === 'anthropic')).toEqual({
      slug: 'anthropic',
      credentialKind: 'env',
      credentialEnv: 'ANTHROPIC_API_KEY',
      ownerAccountId: 'acc_root',
      available: false,
      unavailableReason: 'environment variable ANTHROPIC_API_KEY is not allowed by PROVIDER_CREDENTIAL_ENV_ALLOW',
    });
  });

  it('REST shows the same: no variable names or owners to the public', async () => {
    const providers = await (await fetch(`${h.url}/api/v1/providers`)).text();
    expect(providers).not.toMatch(/_API_KEY|acc_/);
    const endpoints = await fetch(`${h.url}/api/v1/models/anthropic/claude-3.5-haiku/endpoints`, { headers: { authorization: `Bearer ${user.key}` } });
    const json = (await endpoints.json()) as { data: { endpoints: { available: boolean; unavailable_reason: string }[] } };
    expect(json.data.endpoints[0]).toMatchObject({ available: false, unavailable_reason: 'its credentials are not available' });
    const asAdmin = (await (await fetch(`${h.url}/api/v1/models/anthropic/claude-3.5-haiku/endpoints`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as typeof json;
    expect(asAdmin.data.endpoints[0]!.unavailable_reason).toMatch(/ANTHROPIC_API_KEY/);
  });
});

describe('a provider key given as apiKey, with no SWITCHYARD_MASTER_KEY set (embedded mode)', () => {
  const PROVIDER_SECRET = 'sk-provider-own-secret-4f9c2a7e';

  it('is stored encrypted under a master key generated once in DATA_DIR (0600) and reused after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-masterkey-'));
    const upstream = await startFakeProvider('openai', { apiKey: PROVIDER_SECRET });
    const start = async () => {
      const printed: string[] = [];
      const config = loadConfig({ PORT: '0', DATA_DIR: dir, LOG_LEVEL: 'silent', ADMIN_API_KEY: ADMIN_KEY, EVENTSTORE_SYNC: 'normal', OUTBOUND_ALLOW: '127.0.0.1', DEMO_TOKEN_DELAY_MS: '0' });
      const running = await startSwitchyard(config, { log: (line) => printed.push(line) });
      const url = `http://127.0.0.1:${running.port}`;
      const gql = async (query: string, variables: Record<string, unknown>, key: string) => {
        const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
        return ((await res.json()) as { data: Record<string, unknown> }).data;
      };
      const chatAs = (key: string) =>
        fetch(`${url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ model: 'own/model', messages: [{ role: 'user', content: 'hi' }] }) });
      return { running, printed, gql, chatAs };
    };
    try {
      const first = await start();
      const keyFile = join(dir, 'master.key');
      expect(first.printed.join('\n')).toContain(`SWITCHYARD_MASTER_KEY is not set: generated a master key for provider keys in ${keyFile}`);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const masterKey = readFileSync(keyFile, 'utf8');
      expect(masterKey.trim().length).toBeGreaterThanOrEqual(32);

      // USER as well: the provider key also calls the model (PROVIDER alone publishes, USER calls).
      const opened = (await first.gql(`mutation { openAccount(name: "own", roles: [USER, PROVIDER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, {}, ADMIN_KEY)) as {
        openAccount: { account: { id: string }; initialKey: { secret: string } };
      };
      const providerKey = opened.openAccount.initialKey.secret;
      await first.running.core.ledger.grant({ accountId: opened.openAccount.account.id, amount: 1_000_000_000, reason: 'test', actor: 'test', correlationId: 'test' });
      expect(await first.gql(REGISTER, { slug: 'own', baseUrl: upstream.baseUrl, apiKey: PROVIDER_SECRET }, providerKey)).toEqual({ registerProvider: { slug: 'own' } });
      expect(await first.gql(PUBLISH, { provider: 'own', model: 'own/model' }, providerKey)).toEqual({ publishEndpoint: { id: 'own/model@own' } });
      expect((await first.chatAs(providerKey)).status).toBe(200);
      expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${PROVIDER_SECRET}`);

      // Neither the events nor any file of DATA_DIR holds the key in plain text.
      const events = JSON.stringify(await first.running.core.eventStore.readAll());
      expect(events).toContain('"encrypted":"v1.');
      expect(events).not.toContain(PROVIDER_SECRET);
      await first.running.stop();
      for (const file of readdirSync(dir)) expect(readFileSync(join(dir, file)).includes(PROVIDER_SECRET), file).toBe(false);

      // Restored from a backup with a wider mode: narrowed back to 0600 at the next start.
      chmodSync(keyFile, 0o644);
      const second = await start();
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      try {
        expect(second.printed.join('\n')).not.toContain('generated a master key');
        expect(readFileSync(keyFile, 'utf8')).toBe(masterKey);
        expect((await second.chatAs(providerKey)).status).toBe(200);
        expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${PROVIDER_SECRET}`);
      } finally {
        await second.running.stop();
      }
    } finally {
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
