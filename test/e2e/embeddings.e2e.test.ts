/**
 * `POST /api/v1/embeddings` with the real `openai` SDK's `embeddings.create`: the offline demo model, OpenAI- and
 * Gemini-protocol fake upstreams, `dimensions`, base64, exact per-input-token charges and the generation record.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeVector, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let openai: FakeProvider;
let gemini: FakeProvider;
const PRICES = { prompt: 20, completion: 0 };

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 1_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'emb-openai', model: 'openai/text-embedding-3-small', prices: PRICES, maxOutput: 1 });
  gemini = await h.fakeEndpoint({ protocol: 'gemini', slug: 'emb-gemini', model: 'google/gemini-embedding-001', prices: { prompt: 150, completion: 0 }, maxOutput: 1 });
});
afterAll(async () => {
  await h.stop();
});

/** What the SDK decodes from base64: float32s. */
const f32 = (v: number[]) => v.map(Math.fround);
const body = (fake: FakeProvider) => fake.requests.at(-1)!.body as Record<string, unknown>;

describe('embeddings', () => {
  it('the offline demo model answers deterministic unit vectors and charges 20 nano-dollars per input token', async () => {
    const before = await h.settledBalance(user.accountId);
    const first = await client.embeddings.create({ model: 'switchyard/demo-embed', input: ['hello world', 'second input here'] });
    expect(first.data.map((d) => d.index)).toEqual([0, 1]);
    expect(first.data[0]!.embedding).toHaveLength(256);
    const norm = Math.sqrt(first.data[0]!.embedding.reduce((s, v) => s + v * v, 0));
    // The SDK asks for base64 (float32), so the unit length holds to float32 precision.
    expect(norm).toBeCloseTo(1, 6);
    const again = await client.embeddings.create({ model: 'switchyard/demo-embed', input: 'hello world', dimensions: 8 });
    expect(again.data[0]!.embedding).toHaveLength(8);
    // ceil(11/4) + ceil(17/4) = 3 + 5 tokens, then 3.
    expect(first.usage).toMatchObject({ prompt_tokens: 8, total_tokens: 8 });
    expect((first.usage as unknown as { cost: number }).cost).toBeCloseTo(160 / 1e9, 15);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe((8 + 3) * 20);
    expect(after.reserved).toBe(0);
  });

  it('goes to an OpenAI-protocol upstream, in index order, charged at its reported tokens', async () => {
    openai.script({ usage: { promptTokens: 2 } });
    const before = await h.settledBalance(user.accountId);
    const res = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: ['a', 'bb', 'ccc'], dimensions: 3 }).withResponse();
    expect(body(openai)).toMatchObject({ model: 'fake-model', input: ['a', 'bb', 'ccc'], dimensions: 3, encoding_format: 'float' });
    expect(res.data.data.map((d) => d.embedding)).toEqual([f32(fakeVector(0, 'a', 3)), f32(fakeVector(1, 'bb', 3)), f32(fakeVector(2, 'ccc', 3))]);
    expect(res.data.model).toBe('openai/text-embedding-3-small');
    const after = await h.settledBalance(user.accountId);
    // The provider's count (2), not the estimate (3), within the reservation.
    expect(after.settled - before.settled).toBe(2 * 20);

    // The generation record, by the id in X-Generation-Id.
    const id = res.response.headers.get('x-generation-id')!;
    const record = await fetch(`${h.url}/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(record.status).toBe(200);
    expect(((await record.json()) as { data: Record<string, unknown> }).data).toMatchObject({ id, model: 'openai/text-embedding-3-small', api_type: 'embeddings', tokens_prompt: 2, tokens_completion: 0 });
  });

  it('charges every token an upstream counts above the estimate (the reservation covers one token per UTF-8 byte)', async () => {
    // 'ab cd' is ceil(5/4) = 2 tokens by the estimate; a byte-level tokenizer may count 5, plus begin/end markers.
    openai.script({ usage: { promptTokens: 7 } });
    const before = await h.settledBalance(user.accountId);
    const res = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: 'ab cd' });
    expect(res.usage.prompt_tokens).toBe(7);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(7 * 20);
    expect(after.reserved).toBe(0);
  });

  it('a negative count from the upstream is no count: billed on the estimate, never free, and the record says estimated', async () => {
    for (const promptTokens of [-100, -0.5]) {
      openai.script({ usage: { promptTokens } });
      const before = await h.settledBalance(user.accountId);
      // ceil(11/4) + ceil(1/4) = 3 + 1 estimated tokens.
      const res = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: ['hello world', 'x'] }).withResponse();
      expect(res.data.usage, String(promptTokens)).toMatchObject({ prompt_tokens: 4, total_tokens: 4 });
      const after = await h.settledBalance(user.accountId);
      expect(after.settled - before.settled, String(promptTokens)).toBe(4 * 20);
      const id = res.response.headers.get('x-generation-id')!;
      expect(await h.generation(user.key, id), String(promptTokens)).toMatchObject({ tokens_prompt: 4, switchyard: { usage_source: 'estimated' } });
    }
  });

  it('refuses input it cannot cover with a 402 that speaks of input, not max_tokens, charging nothing', async () => {
    const poor = await h.openAccount({ credits: 100 });
    const poorClient = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: poor.key, maxRetries: 0, timeout: 10_000 });
    // 'x'.repeat(10) may count 12 tokens at 20 nano-dollars: 240 > 100.
    const error = await poorClient.embeddings.create({ model: 'openai/text-embedding-3-small', input: 'x'.repeat(10) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/input may count up to 12 tokens.*send less input/);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).not.toMatch(/max_tokens/);
    const balance = await h.settledBalance(poor.accountId);
    expect(balance.reserved).toBe(0);
  });

  it('goes to Gemini as batchEmbedContents, charged per estimated input token', async () => {
    const before = await h.settledBalance(user.accountId);
    const result = await client.embeddings.create({ model: 'google/gemini-embedding-001', input: ['one text', 'two'], dimensions: 5 });
    expect(gemini.requests.at(-1)!.path).toBe('/v1beta/models/fake-model:batchEmbedContents');
    expect(body(gemini)).toEqual({
      requests: [
        { model: 'models/fake-model', content: { parts: [{ text: 'one text' }] }, outputDimensionality: 5 },
        { model: 'models/fake-model', content: { parts: [{ text: 'two' }] }, outputDimensionality: 5 },
      ],
    });
    expect(result.data.map((d) => d.embedding)).toEqual([f32(fakeVector(0, 'one text', 5)), f32(fakeVector(1, 'two', 5))]);
    // Gemini reports no tokens: ceil(8/4) + ceil(3/4) = 3 at 150.
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(3 * 150);
  });

  it('encodes base64 as little-endian float32s (what the SDK asks for by default and decodes)', async () => {
    const raw = await fetch(`${h.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: 'abcd', encoding_format: 'base64', dimensions: 3 }),
    });
    const json = (await raw.json()) as { data: { embedding: string }[] };
    const buffer = Buffer.from(json.data[0]!.embedding, 'base64');
    expect([...new Float32Array(buffer.buffer, buffer.byteOffset, 3)].map((v) => Math.round(v * 10) / 10)).toEqual(fakeVector(0, 'abcd', 3));
  });

  it('refuses bad input and non-embedding models with a 400 naming the field, charging nothing', async () => {
    const before = await h.settledBalance(user.accountId);
    const post = (b: unknown) => fetch(`${h.url}/api/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: JSON.stringify(b) });
    for (const [b, param] of [
      [{ model: 'switchyard/demo-embed', input: [] }, 'input'],
      [{ model: 'switchyard/demo-embed', input: ['ok', ''] }, 'input'],
      [{ model: 'switchyard/demo-embed', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
      [{ model: 'switchyard/demo-embed', input: 'x', dimensions: 0 }, 'dimensions'],
      [{ model: 'switchyard/demo', input: 'x' }, 'model'],
      // The model a chat would read the id as: a variant or another spelling of its version names the same model.
      [{ model: 'switchyard/demo:nitro', input: 'x' }, 'model'],
      [{ model: 'anthropic/claude-3-5-sonnet', input: 'x' }, 'model'],
    ] as const) {
      const res = await post(b);
      expect(res.status, JSON.stringify(b)).toBe(400);
      const body = (await res.json()) as { error: { message: string } };
      expect(body).toMatchObject({ error: { code: 400, metadata: { param } } });
      if (param === 'model') expect(body.error.message).toBe(`${b.model} is not an embeddings model (its output is text)`);
    }
    await expect(client.embeddings.create({ model: 'nobody/nothing', input: 'x' })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);
  });

  it('refuses a chat completion on an embeddings model with a 400 naming the model, charging nothing', async () => {
    const before = await h.settledBalance(user.accountId);
    const res = await fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'switchyard/demo-embed', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; metadata: { param: string } } };
    expect(body.error.metadata.param).toBe('model');
    expect(body.error.message).toContain('/api/v1/embeddings');
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);
  });

  it('an upstream failure is its error, released, charging nothing', async () => {
    openai.script({ status: 500 });
    const before = await h.settledBalance(user.accountId);
    await expect(client.embeddings.create({ model: 'openai/text-embedding-3-small', input: 'x' })).rejects.toBeInstanceOf(OpenAI.APIError);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it("an upstream's error that quotes the key it was sent is passed on without it, and recorded without it", async () => {
    openai.script({ status: 400, body: { error: { message: `Incorrect API key provided: Bearer ${FAKE_API_KEY}`, type: 'invalid_request_error', code: 'invalid_api_key' } } });
    const res = await fetch(`${h.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: 'x' }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect(text).toContain(`Incorrect API key provided: Bearer …${FAKE_API_KEY.slice(-4)}`);
    const record = await h.generation(user.key, res.headers.get('x-generation-id')!);
    expect(JSON.stringify(record)).toContain('Incorrect API key provided');
    expect(JSON.stringify([text, record, await h.running.core.eventStore.readAll()])).not.toContain(FAKE_API_KEY);
  });

  it('routes by the provider object as chat does: only, and the data policy an admin stated', async () => {
    const before = await h.settledBalance(user.accountId);
    const post = (b: unknown) => fetch(`${h.url}/api/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: JSON.stringify(b) });
    const refused = await post({ model: 'openai/text-embedding-3-small', input: 'x', provider: { zdr: true } });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('meet your data policy (zdr: zero data retention)');
    expect((await post({ model: 'openai/text-embedding-3-small', input: 'x', provider: { only: ['emb-gemini'] } })).status).toBe(404);
    const bad = await post({ model: 'openai/text-embedding-3-small', input: 'x', provider: { data_collection: 'sometimes' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { message: 'provider.data_collection must be "allow" or "deny"', metadata: { param: 'provider' } } });
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);

    const set = await h.gql(`mutation { setProviderDataPolicy(provider: "emb-openai", dataPolicy: ZERO_RETENTION) { ... on Provider { dataPolicy } } }`, {});
    expect(set.body).toEqual({ data: { setProviderDataPolicy: { dataPolicy: 'ZERO_RETENTION' } } });
    openai.script({ usage: { promptTokens: 1 } });
    const served = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: 'x', dimensions: 3, provider: { zdr: true } } as OpenAI.EmbeddingCreateParams);
    expect(served.data).toHaveLength(1);
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(20);
  });

  it('embeddings models are listed under output_modalities=embeddings', async () => {
    const res = await fetch(`${h.url}/api/v1/models?output_modalities=embeddings`);
    const ids = ((await res.json()) as { data: { id: string; architecture: { output_modalities: string[] } }[] }).data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['switchyard/demo-embed', 'openai/text-embedding-3-small', 'google/gemini-embedding-001']));
    const text = ((await (await fetch(`${h.url}/api/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(text).not.toContain('switchyard/demo-embed');
  });
});
