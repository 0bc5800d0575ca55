/**
 * Retry-After on every 503, as OpenRouter sends it: the upstream's own value when it gave one, the cooldown left
 * while every endpoint's circuit breaker is open, else a second; on chat/completions and on the Responses and
 * Messages skins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 100, completion: 100 };
const COOLDOWN_MS = 60_000;
let h: GatewayHarness;
let user: Account;
let busy: FakeProvider;

/** One call in each API's own shape. */
const call = {
  chat: (model: string) => h.chat(user.key, { model, messages: [{ role: 'user', content: 'hi' }] }),
  responses: (model: string) =>
    fetch(`${h.url}/api/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: JSON.stringify({ model, input: 'hi' }) }),
  messages: (model: string) =>
    fetch(`${h.url}/api/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': user.key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    }),
};

beforeAll(async () => {
  // A lone endpoint is tried twice per call, so a breaker opens on an endpoint's second failed call.
  h = await startGatewayHarness({ GATEWAY_BREAKER_FAILURES: '3', GATEWAY_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS), PROVIDER_CREDENTIAL_ENV_ALLOW: 'RETRY_AFTER_TEST_KEY' });
  user = await h.openAccount({ credits: 1_000_000_000 });
  // One overloaded upstream behind several providers: each endpoint has a breaker of its own.
  busy = await h.fakeEndpoint({ protocol: 'openai', slug: 'busy-chat', model: 'test/busy-chat', prices: PRICES });
  busy.setDefault({ status: 503 });
  for (const name of ['responses', 'messages', 'own', 'down']) await h.fakeEndpoint({ protocol: 'openai', slug: `busy-${name}`, model: `test/busy-${name}`, prices: PRICES, reuse: busy });
  const registered = await h.gql(
    `mutation { registerProvider(slug: "keyless", name: "Keyless", protocol: OPENAI, baseUrl: "http://127.0.0.1:9", credentialEnv: "RETRY_AFTER_TEST_KEY") { ... on Provider { slug } ... on DomainError { code message } } }`,
  );
  expect(registered.body.data.registerProvider).toEqual({ slug: 'keyless' });
  const published = await h.gql(
    `mutation { publishEndpoint(provider: "keyless", model: "keyless/locked", upstreamModel: "m", prices: { prompt: 100, completion: 100 }, contextLength: 8000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`,
  );
  expect(published.body.data.publishEndpoint).toEqual({ id: 'keyless/locked@keyless' });
});
afterAll(async () => {
  await h.stop();
});

describe('Retry-After on 503 answers', () => {
  it('an upstream 503 without Retry-After: a second, on chat, Responses and Messages alike', async () => {
    for (const api of ['chat', 'responses', 'messages'] as const) {
      const res = await call[api](`test/busy-${api}`);
      expect(res.status, api).toBe(503);
      expect(res.headers.get('retry-after'), api).toBe('1');
    }
  });

  it("keeps the upstream's own Retry-After", async () => {
    busy.script({ status: 503, headers: { 'retry-after': '120' } });
    const res = await call.chat('test/busy-own');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('120');
  });

  it("Switchyard's own 503 (no provider of the model has credentials): a second", async () => {
    const res = await call.chat('keyless/locked');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('provider_unavailable');
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it("while every endpoint's breaker is open: the cooldown left, on every API", async () => {
    expect((await call.chat('test/busy-down')).headers.get('retry-after')).toBe('1');
    // The second failed call opens the breaker for the cooldown.
    expect((await call.chat('test/busy-down')).headers.get('retry-after')).toBe(String(COOLDOWN_MS / 1000));
    for (const api of ['responses', 'messages'] as const) {
      const res = await call[api]('test/busy-down');
      expect(res.status, api).toBe(503);
      expect(Number(res.headers.get('retry-after')), api).toBeGreaterThan(COOLDOWN_MS / 1000 - 10);
      expect(Number(res.headers.get('retry-after')), api).toBeLessThanOrEqual(COOLDOWN_MS / 1000);
    }
  });
});

describe("an upstream's Retry-After, passed on", () => {
  it('is whole seconds of at most a day, however large or long the value the upstream sent', async () => {
    const huge = ['9'.repeat(400), '99999999999999999999', '999999999', '86401'];
    for (const value of huge) {
      busy.script({ status: 429, headers: { 'retry-after': value } });
      const res = await call.chat('test/busy-own');
      expect(res.status, value.slice(0, 20)).toBe(429);
      expect(res.headers.get('retry-after'), value.slice(0, 20)).toBe('86400');
    }
    busy.script({ status: 429, headers: { 'retry-after-ms': '9'.repeat(40) } });
    expect((await call.chat('test/busy-own')).headers.get('retry-after')).toBe('86400');
    busy.script({ status: 503, headers: { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' } });
    expect((await call.chat('test/busy-own')).headers.get('retry-after')).toBe('86400');
  });
});
