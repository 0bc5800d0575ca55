/**
 * The models list's usage sorts over real HTTP and GraphQL: most-popular (requests over the last week, every account
 * together) and top-weekly (tokens), from the usage the ledger records for each settled call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness();
  const many = await h.fakeEndpoint({ protocol: 'openai', slug: 'many', model: 'pop/many', prices: { prompt: 10, completion: 10 } });
  const big = await h.fakeEndpoint({ protocol: 'openai', slug: 'big', model: 'pop/big', prices: { prompt: 10, completion: 10 } });
  many.setDefault({ usage: { promptTokens: 5, completionTokens: 5 } });
  big.setDefault({ usage: { promptTokens: 100, completionTokens: 900 } });
  // Two accounts: the ranking counts every account's calls.
  const ada = await h.openAccount({ name: 'ada', credits: 1_000_000_000 });
  const bob = await h.openAccount({ name: 'bob', credits: 1_000_000_000 });
  const call = async (key: string, model: string) => expect((await h.chat(key, { model, messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
  for (const key of [ada.key, bob.key]) for (let i = 0; i < 3; i++) await call(key, 'pop/many');
  await call(bob.key, 'pop/big');
  await h.running.core.gateway.idle();
  expect(await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition(), 60_000)).toBe(true);
});
afterAll(async () => {
  await h.stop();
});

const restIds = async (sort: string) => {
  const res = await fetch(`${h.url}/api/v1/models?sort=${sort}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id);
};

describe('usage sorts', () => {
  it('most-popular ranks by requests, top-weekly by tokens, models nobody called after', async () => {
    const popular = await restIds('most-popular');
    expect(popular.slice(0, 2)).toEqual(['pop/many', 'pop/big']);
    const weekly = await restIds('top-weekly');
    expect(weekly.slice(0, 2)).toEqual(['pop/big', 'pop/many']);
    // Every model is still listed, the unused ones in id order.
    expect([...weekly].sort()).toEqual([...popular].sort());
    const rest = weekly.slice(2);
    expect(rest).toEqual([...rest].sort());
  });

  it('GraphQL models sorts the same way (one query serves both)', async () => {
    const { body } = await h.gql('{ popular: models(first: 2, sort: MOST_POPULAR) { edges { node { id } } } weekly: models(first: 2, sort: TOP_WEEKLY) { edges { node { id } } } }');
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect(body.data.popular.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(['pop/many', 'pop/big']);
    expect(body.data.weekly.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(['pop/big', 'pop/many']);
  });

  it('an unknown sort is a 400 naming the known ones', async () => {
    const res = await fetch(`${h.url}/api/v1/models?sort=trending`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('most-popular, top-weekly');
  });
});
