/**
 * Availability in the catalog over real HTTP: a model whose only provider has no credential is hidden from
 * /api/v1/models (listed, flagged, with include_unavailable) and comes back when a provider with a key serves it; an
 * endpoint whose circuit breaker a failing fake upstream opened is unavailable but its model stays listed (the
 * official `openai` SDK's models.list included), and it recovers after the cooldown.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let flaky: FakeProvider;
let outage: FakeProvider;
const COOLDOWN_MS = 1_500;
const PRICES = { prompt: 100, completion: 100 };

interface ListedModel {
  id: string;
  available: boolean;
}

const listed = async (query = ''): Promise<ListedModel[]> => {
  const res = await fetch(`${h.url}/api/v1/models${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: ListedModel[] }).data;
};
const ids = async (query = '') => (await listed(query)).map((m) => m.id);

beforeAll(async () => {
  h = await startGatewayHarness({
    GATEWAY_BREAKER_FAILURES: '2',
    GATEWAY_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
    GATEWAY_MAX_ATTEMPTS: '1',
    PROVIDER_CREDENTIAL_ENV_ALLOW: 'AVAILABILITY_TEST_KEY',
  });
  user = await h.openAccount({ credits: 1_000_000_000 });
  // A provider whose key is an environment variable that is not set: routing cannot use it.
  const registered = await h.gql(
    `mutation { registerProvider(slug: "keyless", name: "Keyless", protocol: OPENAI, baseUrl: "http://127.0.0.1:9", credentialEnv: "AVAILABILITY_TEST_KEY") { ... on Provider { slug } ... on DomainError { code message } } }`,
  );
  expect(registered.body.data.registerProvider).toEqual({ slug: 'keyless' });
  const published = await h.gql(
    `mutation { publishEndpoint(provider: "keyless", model: "keyless/locked", upstreamModel: "m", prices: { prompt: 100, completion: 100 }, contextLength: 8000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`,
  );
  expect(published.body.data.publishEndpoint).toEqual({ id: 'keyless/locked@keyless' });
  flaky = await h.fakeEndpoint({ protocol: 'openai', slug: 'flaky', model: 'test/flaky', prices: PRICES });
  outage = await h.fakeEndpoint({ protocol: 'openai', slug: 'outage', model: 'test/outage', prices: PRICES });
});
afterAll(async () => {
  await h.stop();
});

describe('a model no provider has credentials for', () => {
  it('is hidden from /api/v1/models and its count, and listed as unavailable with include_unavailable=true', async () => {
    expect(await ids()).not.toContain('keyless/locked');
    expect(await ids()).toContain('switchyard/demo');
    const all = await listed('?include_unavailable=true');
    expect(all.find((m) => m.id === 'keyless/locked')).toMatchObject({ available: false });
    expect(all.find((m) => m.id === 'switchyard/demo')).toMatchObject({ available: true });
    const count = async (q: string) => ((await (await fetch(`${h.url}/api/v1/models/count${q}`)).json()) as { data: { count: number } }).data.count;
    expect(await count('?include_unavailable=true')).toBe((await count('')) + all.filter((m) => !m.available).length);
  });

  it('is still found by id and its endpoints say why, in detail only to admins', async () => {
    const one = await fetch(`${h.url}/api/v1/models/keyless%2Flocked`);
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ id: 'keyless/locked', available: false });
    const endpoints = async (key: string | null) => {
      const res = await fetch(`${h.url}/api/v1/models/keyless/locked/endpoints`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      return ((await res.json()) as { data: { endpoints: Record<string, unknown>[] } }).data.endpoints[0]!;
    };
    expect(await endpoints(null)).toMatchObject({ available: false, status: -1, unavailable_reason: 'its credentials are not available' });
    expect(await endpoints(ADMIN_KEY)).toMatchObject({ available: false, unavailable_reason: 'environment variable AVAILABILITY_TEST_KEY is not set' });
    const { body } = await h.gql(`{ model(id: "keyless/locked") { available endpoints { id available unavailableReason } } }`, {}, user.key);
    expect(body.data.model).toEqual({ available: false, endpoints: [{ id: 'keyless/locked@keyless', available: false, unavailableReason: 'its credentials are not available' }] });
    const models = async (extra: string) => (await h.gql(`{ models(first: 200${extra}) { edges { node { id available } } } }`)).body.data.models.edges.map((e: { node: ListedModel }) => e.node);
    expect((await models('')).map((m: ListedModel) => m.id)).not.toContain('keyless/locked');
    expect(await models(', includeUnavailable: true')).toContainEqual({ id: 'keyless/locked', available: false });
  });

  it('is listed once a provider with a key serves it', async () => {
    await h.fakeEndpoint({ protocol: 'openai', slug: 'keyed', model: 'keyless/locked', prices: PRICES });
    expect(await listed()).toContainEqual(expect.objectContaining({ id: 'keyless/locked', available: true }));
    const res = await fetch(`${h.url}/api/v1/models/keyless/locked/endpoints`);
    const { endpoints } = ((await res.json()) as { data: { endpoints: { tag: string; available: boolean }[] } }).data;
    // The one that can serve comes first.
    expect(endpoints.map((e) => [e.tag, e.available])).toEqual([
      ['keyed', true],
      ['keyless', false],
    ]);
  });

  it('refuses an include_unavailable that is not true or false', async () => {
    const res = await fetch(`${h.url}/api/v1/models?include_unavailable=yes`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 400, metadata: { param: 'include_unavailable' } } });
  });
});

describe('an endpoint whose circuit breaker is open', () => {
  it('is unavailable while the breaker is open, and available again after the cooldown and a success', async () => {
    expect(await ids()).toContain('test/flaky');
    flaky.setDefault({ status: 500 });
    for (let i = 0; i < 2; i++) expect((await h.chat(user.key, { model: 'test/flaky', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(502);
    // Listed still, flagged: the outage passes.
    expect(await listed()).toContainEqual(expect.objectContaining({ id: 'test/flaky', available: false }));
    expect(await listed('?include_unavailable=true')).toContainEqual(expect.objectContaining({ id: 'test/flaky', available: false }));
    const res = await fetch(`${h.url}/api/v1/models/test/flaky/endpoints`);
    const [endpoint] = ((await res.json()) as { data: { endpoints: Record<string, unknown>[] } }).data.endpoints;
    expect(endpoint).toMatchObject({ available: false, circuit_breaker: 'open', unavailable_reason: expect.stringContaining('circuit breaker is open') });
    const { body } = await h.gql(`{ model(id: "test/flaky") { available endpoints { available circuitBreaker } } }`);
    expect(body.data.model).toEqual({ available: false, endpoints: [{ available: false, circuitBreaker: 'open' }] });

    // After the cooldown the breaker is half-open: routed (and listed) again; a success closes it.
    flaky.setDefault({});
    await new Promise((resolve) => setTimeout(resolve, COOLDOWN_MS + 100));
    expect(await ids()).toContain('test/flaky');
    expect((await h.chat(user.key, { model: 'test/flaky', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
    const after = await h.gql(`{ model(id: "test/flaky") { available endpoints { available circuitBreaker } } }`);
    expect(after.body.data.model).toEqual({ available: true, endpoints: [{ available: true, circuitBreaker: 'closed' }] });
  });
});

describe('a model whose only endpoint is down for now', () => {
  it('stays in the openai SDK’s models.list, GraphQL models and the count while its breaker is open, flagged unavailable', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const sdkModels = async () => {
      const models: (OpenAI.Model & { available?: boolean })[] = [];
      for await (const model of client.models.list()) models.push(model);
      return models;
    };
    const count = async () => ((await (await fetch(`${h.url}/api/v1/models/count`)).json()) as { data: { count: number } }).data.count;
    expect(await sdkModels()).toContainEqual(expect.objectContaining({ id: 'test/outage', available: true }));
    const before = await count();

    outage.setDefault({ status: 500 });
    for (let i = 0; i < 2; i++) expect((await h.chat(user.key, { model: 'test/outage', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(502);

    expect(await sdkModels()).toContainEqual(expect.objectContaining({ id: 'test/outage', available: false }));
    expect(await count()).toBe(before);
    const { body } = await h.gql(`{ models(first: 200) { edges { node { id available } } } }`);
    expect(body.data.models.edges.map((e: { node: ListedModel }) => e.node)).toContainEqual({ id: 'test/outage', available: false });
    const endpoints = (await (await fetch(`${h.url}/api/v1/models/test/outage/endpoints`)).json()) as { data: { endpoints: Record<string, unknown>[] } };
    expect(endpoints.data.endpoints).toEqual([expect.objectContaining({ status: -1, available: false, circuit_breaker: 'open' })]);
  });
});
