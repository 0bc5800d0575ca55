/**
 * A provider's base URL is its owner's and the admins' business, over GraphQL of the started app. A QA run (s41)
 * registered `http://127.0.0.1:4751/v1?api-key=topsecret` (a user name or password was refused, a key in the query
 * string was not) and read it back anonymously from `{ providers { slug baseUrl } }`, with the internal addresses of
 * every provider an admin registered. A query string is now refused like userinfo, and `Provider.baseUrl` is null for
 * anyone but the owner and admins, as `credentialEnv` and `ownerAccountId` are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let p: Account;
let other: Account;

const REGISTER = `mutation ($slug: String!, $baseUrl: String!) {
  registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: "k") { __typename ... on Provider { slug baseUrl } ... on DomainError { code message details } } }`;
const register = async (key: string, slug: string, baseUrl: string) => (await h.gql(REGISTER, { slug, baseUrl }, key)).body.data.registerProvider;
const MOVE = `mutation ($slug: String!, $baseUrl: String!) {
  setProviderBaseUrl(provider: $slug, baseUrl: $baseUrl) { __typename ... on Provider { baseUrl } ... on DomainError { code message details } } }`;
const baseUrlsAs = async (key: string | undefined) => {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ query: '{ providers { slug baseUrl } }' }),
  });
  const body = (await res.json()) as { errors?: unknown; data: { providers: unknown } };
  expect(body.errors).toBeUndefined();
  return Object.fromEntries((body.data.providers as { slug: string; baseUrl: string | null }[]).map((p) => [p.slug, p.baseUrl]));
};

beforeAll(async () => {
  h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1,10.0.0.0/8' });
  p = await h.openAccount({ roles: ['provider'], name: 'p' });
  other = await h.openAccount({ roles: ['user', 'provider'], name: 'other' });
});
afterAll(async () => {
  await h.stop();
});

describe('a key in the base URL’s query string is refused, as one in its user name is', () => {
  it('registerProvider and setProviderBaseUrl answer VALIDATION naming baseUrl, and nothing is registered or moved', async () => {
    const refusal = {
      __typename: 'DomainError',
      code: 'VALIDATION',
      message: 'baseUrl must not have a query string (?...): give the key as apiKey, other values as headers',
      details: { field: 'baseUrl' },
    };
    for (const baseUrl of ['http://127.0.0.1:4751/v1?api-key=topsecret', 'http://127.0.0.1:4751/v1?key=k', 'http://127.0.0.1:4751/v1?']) {
      expect(await register(p.key, 'qsec', baseUrl), baseUrl).toEqual(refusal);
      expect(await register(ADMIN_KEY, 'qsec-admin', baseUrl), baseUrl).toEqual(refusal);
    }
    expect(await register(p.key, 'qsec', 'http://127.0.0.1:4751/v1#k')).toMatchObject({ code: 'VALIDATION', message: 'baseUrl must not have a fragment (#...)' });
    expect(h.running.core.gateway.catalog.provider('qsec')).toBeUndefined();

    expect(await register(p.key, 'qsec', 'http://127.0.0.1:4751/v1')).toEqual({ __typename: 'Provider', slug: 'qsec', baseUrl: 'http://127.0.0.1:4751/v1' });
    expect((await h.gql(MOVE, { slug: 'qsec', baseUrl: 'http://127.0.0.1:4752/v1?api-key=topsecret' }, p.key)).body.data.setProviderBaseUrl).toEqual(refusal);
    expect(h.running.core.gateway.catalog.provider('qsec')?.baseUrl).toBe('http://127.0.0.1:4751/v1');
  });
});

describe('Provider.baseUrl is shown to its owner and admins only', () => {
  it('anonymous callers and other accounts read null; the owner its own; an admin every one', async () => {
    expect(await register(ADMIN_KEY, 'in-cluster', 'http://10.1.2.3:8000/v1')).toMatchObject({ __typename: 'Provider', baseUrl: 'http://10.1.2.3:8000/v1' });

    const anonymous = await baseUrlsAs(undefined);
    expect(anonymous['qsec']).toBeNull();
    expect(anonymous['in-cluster']).toBeNull();
    expect(anonymous['openai']).toBeNull();
    expect(Object.values(anonymous).every((url) => url === null)).toBe(true);

    const others = await baseUrlsAs(other.key);
    expect(others['qsec']).toBeNull();
    expect(others['in-cluster']).toBeNull();

    const owners = await baseUrlsAs(p.key);
    expect(owners['qsec']).toBe('http://127.0.0.1:4751/v1');
    expect(owners['in-cluster']).toBeNull();

    const admins = await baseUrlsAs(ADMIN_KEY);
    expect(admins['qsec']).toBe('http://127.0.0.1:4751/v1');
    expect(admins['in-cluster']).toBe('http://10.1.2.3:8000/v1');
    expect(admins['openai']).toBe('https://api.openai.com/v1');
  });
});
