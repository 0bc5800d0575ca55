/**
 * What one provider account can put in the public catalog, through GraphQL and the REST listing of the started app: a
 * model description is bounded (4,000 characters, as a model's name is 200), a proposal's model too, and a non-admin
 * account has at most ENDPOINT_MAX_PER_ACCOUNT active endpoints and pending proposals on its providers. A QA run
 * (s41) published 60 models with 1 MB descriptions each: anonymous `/api/v1/models` grew to 60 MB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let acme: Account;
let upstream: FakeProvider;

const PUBLISH = `mutation ($provider: String!, $model: String!, $description: String) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 16000, maxOutput: 1000, modelDescription: $description) {
    __typename
    ... on Endpoint { id status }
    ... on EndpointProposal { id proposalStatus }
    ... on DomainError { code message details } } }`;

const publish = async (key: string, provider: string, model: string, description: string | null = null) => (await h.gqlOk(PUBLISH, { provider, model, description }, key)).publishEndpoint;
const endpointChange = async (key: string, mutation: 'disableEndpoint' | 'enableEndpoint', provider: string, model: string) =>
  (await h.gql(`mutation { ${mutation}(provider: "${provider}", model: "${model}") { __typename ... on Endpoint { status } ... on DomainError { code message details } } }`, {}, key)).body.data[mutation];

const registerProvider = async (key: string, slug: string) =>
  h.gqlOk(
    `mutation ($slug: String!, $baseUrl: String!, $apiKey: String!) { registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) { ... on Provider { slug } } }`,
    { slug, baseUrl: upstream.baseUrl, apiKey: FAKE_API_KEY },
    key,
  );

beforeAll(async () => {
  // The shipped seed loads as usual (an admin's providers and models are not counted).
  h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1', ENDPOINT_MAX_PER_ACCOUNT: '3' });
  acme = await h.openAccount({ roles: ['provider'], name: 'acme' });
  upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  h.fakes.push(upstream);
  await registerProvider(acme.key, 'acme');
  await registerProvider(acme.key, 'acme-two');
});
afterAll(async () => {
  await h.stop();
});

describe('a model description is bounded like the catalog’s other text', () => {
  it('4,001 characters is a VALIDATION error naming the field, and nothing is created; 4,000 is published', async () => {
    expect(await publish(acme.key, 'acme', 'acme/long', 'D'.repeat(4_001))).toEqual({
      __typename: 'DomainError',
      code: 'VALIDATION',
      message: 'description must be at most 4000 characters (it has 4001)',
      details: { field: 'description' },
    });
    expect(await h.running.core.eventStore.readStream('model-acme/long')).toEqual([]);
    expect(h.running.core.gateway.catalog.endpoint('acme/long@acme')).toBeUndefined();

    expect(await publish(acme.key, 'acme', 'acme/long', 'D'.repeat(4_000))).toEqual({ __typename: 'Endpoint', id: 'acme/long@acme', status: 'active' });
    const listed = (await (await fetch(`${h.url}/api/v1/models`)).json()) as { data: { id: string; description: string }[] };
    expect(listed.data.find((m) => m.id === 'acme/long')?.description).toHaveLength(4_000);
  });

  it('a proposal carrying a new model outside the namespace is bounded the same way: nothing is filed', async () => {
    expect(await publish(acme.key, 'acme', 'someone/else', 'D'.repeat(1_000_000))).toMatchObject({ code: 'VALIDATION', details: { field: 'description' } });
    const proposals = await h.gqlOk('{ endpointProposals(first: 100) { edges { node { id } } } }');
    expect(proposals.endpointProposals.edges).toEqual([]);
  });
});

describe('a non-admin account has at most ENDPOINT_MAX_PER_ACCOUNT active endpoints and pending proposals', () => {
  it('the one past the cap is a CONFLICT, on any of its providers; republishing, disabling and an admin are not held back', async () => {
    // acme/long (above) is one; one more endpoint on another of its providers and a proposal make three.
    expect(await publish(acme.key, 'acme-two', 'acme-two/a')).toMatchObject({ __typename: 'Endpoint' });
    expect(await publish(acme.key, 'acme', 'openai/gpt-9')).toMatchObject({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });

    const refused = await publish(acme.key, 'acme', 'acme/b');
    expect(refused).toEqual({
      __typename: 'DomainError',
      code: 'CONFLICT',
      message: 'The account has the maximum of 3 active endpoints and pending proposals on its providers; disable one first, or ask an admin to raise ENDPOINT_MAX_PER_ACCOUNT',
      details: { reason: 'too_many_endpoints', limit: 3 },
    });
    // Refused before the model was created.
    expect(await h.running.core.eventStore.readStream('model-acme/b')).toEqual([]);
    expect(await publish(acme.key, 'acme-two', 'acme-two/b')).toMatchObject({ code: 'CONFLICT' });

    // Republishing what it has adds nothing: an endpoint, and a pending proposal.
    expect(await publish(acme.key, 'acme-two', 'acme-two/a', 'now described')).toMatchObject({ __typename: 'Endpoint', id: 'acme-two/a@acme-two' });
    expect(await publish(acme.key, 'acme', 'openai/gpt-9', 'described')).toMatchObject({ __typename: 'EndpointProposal' });

    // Disabling one makes room; enabling it again past the cap is refused.
    expect(await endpointChange(acme.key, 'disableEndpoint', 'acme-two', 'acme-two/a')).toEqual({ __typename: 'Endpoint', status: 'disabled' });
    expect(await publish(acme.key, 'acme', 'acme/b')).toMatchObject({ __typename: 'Endpoint', id: 'acme/b@acme' });
    expect(await endpointChange(acme.key, 'enableEndpoint', 'acme-two', 'acme-two/a')).toMatchObject({ code: 'CONFLICT', details: { reason: 'too_many_endpoints' } });

    // An admin rejecting the proposal makes room too.
    await h.gqlOk(`mutation { rejectEndpoint(provider: "acme", model: "openai/gpt-9", reason: "no") { __typename } }`);
    expect(await endpointChange(acme.key, 'enableEndpoint', 'acme-two', 'acme-two/a')).toEqual({ __typename: 'Endpoint', status: 'active' });

    // An admin is not counted, on its own provider or on the account's.
    await registerProvider(ADMIN_KEY, 'admins-own');
    for (const model of ['admins-own/a', 'admins-own/b', 'admins-own/c', 'admins-own/d']) expect(await publish(ADMIN_KEY, 'admins-own', model)).toMatchObject({ __typename: 'Endpoint' });
    expect(await publish(ADMIN_KEY, 'acme', 'acme/by-admin')).toMatchObject({ __typename: 'Endpoint' });
  });

  it('the cap is a positive whole number, 200 unless set', () => {
    expect(loadConfig({}).ENDPOINT_MAX_PER_ACCOUNT).toBe(200);
    expect(() => loadConfig({ ENDPOINT_MAX_PER_ACCOUNT: '0' })).toThrow(/ENDPOINT_MAX_PER_ACCOUNT must be at least 1/);
    expect(() => loadConfig({ ENDPOINT_MAX_PER_ACCOUNT: 'lots' })).toThrow(/ENDPOINT_MAX_PER_ACCOUNT must be a whole number/);
  });
});
