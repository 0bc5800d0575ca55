/**
 * An endpoint tagged FREE serves the `:free` variant and costs nothing: `changePrice` refuses a price for it with the
 * same VALIDATION error publishing gives, so the catalog never lists a `:free` endpoint that routing cannot call (or
 * a paid one missing from its model's listing). Over GraphQL and REST.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness();
  await h.fakeEndpoint({ protocol: 'openai', slug: 'fep-free', model: 'fep/model', prices: { prompt: 0, completion: 0 }, variants: ['free'] });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'fep-paid', model: 'fep/model', prices: { prompt: 100, completion: 200 } });
});
afterAll(async () => {
  await h.stop();
});

const CHANGE_PRICE = `mutation ($prices: PricesInput!) { changePrice(provider: "fep-free", model: "fep/model", prices: $prices) { __typename ... on Endpoint { id } ... on DomainError { code message } } }`;

describe('changePrice on an endpoint tagged free', () => {
  it('refuses a price with the error publishing gives, and the endpoint stays free', async () => {
    const refused = (await h.gql(CHANGE_PRICE, { prices: { prompt: 1, completion: 1 } })).body.data.changePrice;
    expect(refused).toMatchObject({ code: 'VALIDATION', message: 'an endpoint tagged free must have every price at 0' });
    const publish = await h.gql(
      `mutation { publishEndpoint(provider: "fep-free", model: "fep/model", upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 16000, maxOutput: 1000, variants: [FREE]) { ... on DomainError { code message } } }`,
    );
    expect(publish.body.data.publishEndpoint).toEqual(refused && { code: refused.code, message: refused.message });
    // Zero prices are still accepted.
    expect((await h.gql(CHANGE_PRICE, { prices: { prompt: 0, completion: 0 } })).body.data.changePrice.__typename).not.toBe('DomainError');
    const res = await fetch(`${h.url}/api/v1/models/fep/model:free/endpoints`);
    const { data } = (await res.json()) as { data: { endpoints: { provider_name: string; pricing: { prompt: string } }[] } };
    expect(data.endpoints.map((e) => [e.provider_name, e.pricing.prompt])).toEqual([['fep-free', '0']]);
  });
});
