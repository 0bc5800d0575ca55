/**
 * Model makers' namespaces are reserved (src/modules/catalog/vendorNamespaces.ts), through GraphQL and the gateway of
 * the started app. A QA run (s41) registered provider `mistralai` as a non-admin, published `mistralai/mistral-large`
 * and was sent a user's prompt for it at once, with no admin involved: the slug check only looked at models already in
 * the catalog. A non-admin's slug or name that passes for a maker's (after NFKC, case folding and leaving out
 * everything but letters and digits) is refused; an admin registers and publishes under it as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let q: Account;
let user: Account;
let upstream: FakeProvider;

const REGISTER = `mutation ($slug: String!, $name: String!, $baseUrl: String!, $apiKey: String!) {
  registerProvider(slug: $slug, name: $name, protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) { __typename ... on Provider { slug } ... on DomainError { code message details } } }`;
const register = async (key: string, slug: string, name = slug) => {
  const { body } = await h.gql(REGISTER, { slug, name, baseUrl: upstream.baseUrl, apiKey: FAKE_API_KEY }, key);
  return body.data?.registerProvider ?? body.errors?.[0];
};
const PUBLISH = `mutation ($provider: String!, $model: String!) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 8000, maxOutput: 1000) {
    __typename ... on Endpoint { id } ... on EndpointProposal { id proposalStatus createsModel } ... on DomainError { code message } } }`;
const publish = async (key: string, provider: string, model: string) => (await h.gqlOk(PUBLISH, { provider, model }, key)).publishEndpoint;

beforeAll(async () => {
  h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1' });
  q = await h.openAccount({ roles: ['user', 'provider'], name: 'q' });
  user = await h.openAccount({ credits: 1_000_000_000, name: 'user' });
  upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  h.fakes.push(upstream);
});
afterAll(async () => {
  await h.stop();
});

describe('a non-admin cannot register a provider under a model maker’s namespace', () => {
  it('mistralai, x-ai, qwen, cohere: FORBIDDEN naming the namespace, and nothing is registered or routed', async () => {
    for (const slug of ['mistralai', 'x-ai', 'qwen', 'cohere', 'nvidia', '01-ai']) {
      expect(await register(q.key, slug, `${slug} hosting`), slug).toEqual({
        __typename: 'DomainError',
        code: 'FORBIDDEN',
        message: `Slug ${slug} is reserved for ${slug}, a model maker's namespace (${slug}/…): choose a slug of your own brand, or ask an admin to register this provider`,
        details: { field: 'slug', reserved: slug },
      });
      expect(h.running.core.gateway.catalog.provider(slug), slug).toBeUndefined();
    }
    const res = await h.chat(user.key, { model: 'mistralai/mistral-large', max_tokens: 5, messages: [{ role: 'user', content: 'my secret prompt' }] });
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it('spellings that read as the maker are the same slug: mistral-ai, xai, metallama', async () => {
    for (const [slug, reserved] of [['mistral-ai', 'mistralai'], ['xai', 'x-ai'], ['metallama', 'meta-llama'], ['mistral', 'mistral']]) {
      expect(await register(q.key, slug!, `Hosting ${slug}`), slug).toMatchObject({ code: 'FORBIDDEN', details: { field: 'slug', reserved } });
    }
  });

  it('a display name that reads as the maker is refused too, fullwidth and spaced forms included', async () => {
    for (const name of ['Mistral AI', 'MISTRALAI', 'Ｍｉｓｔｒａｌ ＡＩ', 'x.ai', 'Qwen']) {
      expect(await register(q.key, 'q-hosting', name), name).toMatchObject({ code: 'FORBIDDEN', details: { field: 'name' } });
    }
    // Its own brand, naming the models it hosts, is fine.
    expect(await register(q.key, 'q-hosting', 'Q hosting for Mistral models')).toEqual({ __typename: 'Provider', slug: 'q-hosting' });
  });

  it('an admin registers mistralai and publishes its models at once, as before', async () => {
    expect(await register(ADMIN_KEY, 'mistralai', 'Mistral AI')).toEqual({ __typename: 'Provider', slug: 'mistralai' });
    expect(await publish(ADMIN_KEY, 'mistralai', 'mistralai/mistral-large')).toEqual({ __typename: 'Endpoint', id: 'mistralai/mistral-large@mistralai' });
    // Q publishing the maker's model on its own provider is a proposal, as for any model it does not own.
    expect(await publish(q.key, 'q-hosting', 'mistralai/mistral-small')).toEqual({ __typename: 'EndpointProposal', id: 'mistralai/mistral-small@q-hosting', proposalStatus: 'PENDING', createsModel: true });
  });
});
