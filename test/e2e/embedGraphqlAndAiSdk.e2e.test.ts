/**
 * Embeddings beyond the `openai` SDK: GraphQL's `embed` mutation (the same gateway call as REST's
 * /api/v1/embeddings, typed errors) and the Vercel AI SDK's `embed` / `embedMany` through
 * `@ai-sdk/openai-compatible`, with the exact charges read from the ledger.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { embed, embedMany } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeVector, type FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let openai: FakeProvider;
/** The seed's price of switchyard/demo-embed, nano-dollars per input token. */
const DEMO_PRICE = 20;
const UPSTREAM_PRICE = 35;

const EMBED = `mutation ($input: EmbedInput!) { embed(input: $input) {
  __typename
  ... on EmbedResult { generationId model provider vectors usage { promptTokens completionTokens } cost }
  ... on DomainError { code message details }
} }`;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 1_000_000_000 });
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'emb-sdk', model: 'openai/text-embedding-3-small', prices: { prompt: UPSTREAM_PRICE, completion: 0 }, maxOutput: 1 });
});
afterAll(async () => {
  await h.stop();
});

const restEmbed = async (body: unknown) => {
  const res = await fetch(`${h.url}/api/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: JSON.stringify(body) });
  return (await res.json()) as { data: { embedding: number[] }[] };
};

describe('GraphQL embed', () => {
  it('embeds a list with the demo model: vectors in order, input tokens billed exactly, the generation recorded', async () => {
    const before = await h.settledBalance(user.accountId);
    const { body } = await h.gql(EMBED, { input: { model: 'switchyard/demo-embed', input: ['hello world', 'second input here'] } }, user.key);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    const result = body.data.embed;
    expect(result).toMatchObject({ __typename: 'EmbedResult', model: 'switchyard/demo-embed', usage: { promptTokens: 8, completionTokens: 0 }, cost: 8 * DEMO_PRICE });
    expect(result.vectors).toHaveLength(2);
    expect(result.vectors[0]).toHaveLength(256);
    // The same core as REST: the same vectors for the same text.
    expect(result.vectors[1]).toEqual((await restEmbed({ model: 'switchyard/demo-embed', input: 'second input here' })).data[0]!.embedding);
    const after = await h.settledBalance(user.accountId);
    // ceil(11/4) + ceil(17/4) = 8 tokens here, and ceil(17/4) = 5 by REST.
    expect(after.settled - before.settled).toBe((8 + 5) * DEMO_PRICE);
    const record = await h.gql(`query ($id: ID!) { generation(id: $id) { apiType model cost usage { promptTokens } } }`, { id: result.generationId }, user.key);
    expect(record.body.data.generation).toEqual({ apiType: 'embeddings', model: 'switchyard/demo-embed', cost: 8 * DEMO_PRICE, usage: { promptTokens: 8 } });
  });

  it('takes a lone string as a list of one, with dimensions, through an OpenAI-protocol upstream', async () => {
    // The provider's count (1), under the estimate (ceil(8/4) = 2) that the reservation caps the bill at.
    openai.script({ usage: { promptTokens: 1 } });
    const before = await h.settledBalance(user.accountId);
    const { body } = await h.gql(EMBED, { input: { model: 'openai/text-embedding-3-small', input: 'just one', dimensions: 3 } }, user.key);
    expect(body.data.embed).toMatchObject({ __typename: 'EmbedResult', provider: 'emb-sdk', vectors: [fakeVector(0, 'just one', 3)], usage: { promptTokens: 1 }, cost: UPSTREAM_PRICE });
    expect(openai.requests.at(-1)!.body).toMatchObject({ input: ['just one'], dimensions: 3 });
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(UPSTREAM_PRICE);
  });

  it('answers bad input, chat models, unknown models, no credits and no key with typed errors, charging nothing', async () => {
    const before = await h.settledBalance(user.accountId);
    const typed = async (input: Record<string, unknown>, key: string | null = user.key) => (await h.gql(EMBED, { input }, key)).body;
    expect((await typed({ model: 'switchyard/demo-embed', input: [] })).data.embed).toMatchObject({ __typename: 'DomainError', code: 'BAD_REQUEST', details: { param: 'input' } });
    expect((await typed({ model: 'switchyard/demo-embed', input: ['ok', ''] })).data.embed).toMatchObject({ code: 'BAD_REQUEST', details: { param: 'input' } });
    expect((await typed({ model: 'switchyard/demo-embed', input: 'x', dimensions: 0 })).data.embed).toMatchObject({ code: 'BAD_REQUEST', details: { param: 'dimensions' } });
    expect((await typed({ model: 'switchyard/demo', input: 'x' })).data.embed).toMatchObject({ code: 'BAD_REQUEST', details: { param: 'model' } });
    expect((await typed({ model: 'nobody/nothing', input: 'x' })).data.embed).toMatchObject({ __typename: 'DomainError', code: 'BAD_REQUEST' });
    const broke = await h.openAccount({ name: 'broke' });
    // The free tier admits the zero-priced models only; a priced one is a 402.
    expect((await typed({ model: 'openai/text-embedding-3-small', input: 'x' }, broke.key)).data.embed).toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    const anonymous = await typed({ model: 'switchyard/demo-embed', input: 'x' }, null);
    expect(anonymous.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    // A string where GraphQL wants an Int is refused before anything runs.
    expect((await typed({ model: 'switchyard/demo-embed', input: 'x', dimensions: 'eight' })).errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);
  });
});

describe('the Vercel AI SDK', () => {
  const provider = () => createOpenAICompatible({ baseURL: `${h.url}/api/v1`, apiKey: user.key, name: 'switchyard' });

  it('embed and embedMany with the demo model: the vectors, the usage the SDK reads, and the exact charge', async () => {
    const before = await h.settledBalance(user.accountId);
    const one = await embed({ model: provider().embeddingModel('switchyard/demo-embed'), value: 'hello world', maxRetries: 0 });
    expect(one.embedding).toHaveLength(256);
    expect(one.usage.tokens).toBe(3);
    const many = await embedMany({
      model: provider().embeddingModel('switchyard/demo-embed'),
      values: ['hello world', 'another', 'a third text'],
      providerOptions: { switchyard: { dimensions: 16 } },
      maxRetries: 0,
    });
    expect(many.embeddings.map((e) => e.length)).toEqual([16, 16, 16]);
    expect(many.usage.tokens).toBe(3 + 2 + 3);
    // Deterministic: the same text and size, the same vector.
    const single = await embed({ model: provider().embeddingModel('switchyard/demo-embed'), value: 'another', providerOptions: { switchyard: { dimensions: 16 } }, maxRetries: 0 });
    expect(single.embedding).toEqual(many.embeddings[1]);
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe((3 + 8 + 2) * DEMO_PRICE);
  });

  it('embedMany through an OpenAI-protocol upstream is charged at the tokens it reported', async () => {
    // Estimated ceil(5/4) + ceil(4/4) = 3; the provider counts 2.
    openai.script({ usage: { promptTokens: 2 } });
    const before = await h.settledBalance(user.accountId);
    const many = await embedMany({ model: provider().embeddingModel('openai/text-embedding-3-small'), values: ['alpha', 'beta'], providerOptions: { switchyard: { dimensions: 4 } }, maxRetries: 0 });
    expect(many.embeddings).toEqual([fakeVector(0, 'alpha', 4), fakeVector(1, 'beta', 4)]);
    expect(many.usage.tokens).toBe(2);
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(2 * UPSTREAM_PRICE);
  });

  it('an upstream failure reaches the SDK as an API error and charges nothing', async () => {
    openai.script({ status: 400, body: { error: { message: 'bad input upstream' } } });
    const before = await h.settledBalance(user.accountId);
    await expect(embed({ model: provider().embeddingModel('openai/text-embedding-3-small'), value: 'x', maxRetries: 0 })).rejects.toThrow(/emb-sdk/);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });
});
