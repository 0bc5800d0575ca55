/**
 * The official `openai` SDK pointed at Switchyard: chat, streaming (with the final usage chunk and its cost),
 * models, typed errors, the X-Generation-Id header and the generation record.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costOf, promptEstimate, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
const PRICES = { prompt: 150, completion: 600 };

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-openai', model: 'test/sdk-model', prices: PRICES });
  fake.setDefault({ usage: { promptTokens: 40, completionTokens: 12 } });
});
afterAll(async () => {
  await h.stop();
});

describe('chat completions through the openai SDK', () => {
  it('answers with the demo model offline and reports usage, cost and the provider', async () => {
    const { data: completion, response } = await client.chat.completions
      .create({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'Say hello' }] })
      .withResponse();
    expect(completion.id).toMatch(/^gen-/);
    expect(response.headers.get('x-generation-id')).toBe(completion.id);
    expect(completion.model).toBe('switchyard/demo');
    expect(completion.choices[0]!.message.content).toContain('You said: "Say hello"');
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.usage!.completion_tokens).toBeGreaterThan(10);
    expect(completion.usage).toMatchObject({ cost: 0 });
    expect((completion as unknown as { provider: string }).provider).toBe('Switchyard Demo');
  });

  it('charges exactly the provider-reported usage at the endpoint price', async () => {
    const before = await h.settledBalance(user.accountId);
    const completion = await client.chat.completions.create({ model: 'test/sdk-model', messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    expect(completion.choices[0]!.message.content).toBe('Echo: Say hello to the gateway');
    const expected = costOf(PRICES, 40, 12);
    expect((completion.usage as unknown as { cost: number }).cost).toBeCloseTo(expected / 1e9, 12);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(expected);
    expect(after.reserved).toBe(0);
  });

  it('streams chunks, then one final usage chunk with the cost, then [DONE]', async () => {
    const before = await h.settledBalance(user.accountId);
    const stream = await client.chat.completions.create({ model: 'test/sdk-model', stream: true, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    let text = '';
    let usage: (OpenAI.CompletionUsage & { cost?: number }) | undefined;
    let finish: string | null = null;
    let ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usage = chunk.usage;
      }
    }
    expect(text).toBe('Echo: Say hello to the gateway');
    expect(finish).toBe('stop');
    expect(ids.size).toBe(1);
    expect(usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 });
    expect(usage!.cost).toBeCloseTo(costOf(PRICES, 40, 12) / 1e9, 12);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 40, 12));
  });

  it('names the provider on every chunk, as OpenRouter does (chat and legacy completions streams)', async () => {
    const stream = await client.chat.completions.create({ model: 'test/sdk-model', stream: true, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    const providers: unknown[] = [];
    for await (const chunk of stream) providers.push((chunk as unknown as { provider?: string }).provider);
    expect(providers.length).toBeGreaterThan(3);
    expect(new Set(providers)).toEqual(new Set(['fake-openai']));
    const legacy = await client.completions.create({ model: 'test/sdk-model', stream: true, prompt: 'Complete me' });
    const legacyProviders: unknown[] = [];
    for await (const chunk of legacy) legacyProviders.push((chunk as unknown as { provider?: string }).provider);
    expect(legacyProviders.length).toBeGreaterThan(2);
    expect(new Set(legacyProviders)).toEqual(new Set(['fake-openai']));
  });

  it('streams the demo model word by word', async () => {
    const stream = await client.chat.completions.create({ model: 'switchyard/demo', stream: true, messages: [{ role: 'user', content: 'Stream please' }] });
    const pieces: string[] = [];
    for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) pieces.push(chunk.choices[0].delta.content);
    expect(pieces.length).toBeGreaterThan(20);
    expect(pieces.join('')).toContain('Stream please');
  });

  it('legacy completions take a prompt and answer with text', async () => {
    const completion = await client.completions.create({ model: 'switchyard/demo', prompt: 'Complete me' });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]!.text).toContain('Complete me');
  });
});

describe('parameters the demo model says it supports', () => {
  it('stop: the answer ends before the first stop sequence, and only what was generated is charged', async () => {
    const ask = (stop?: string[]) => client.chat.completions.create({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'hi' }], ...(stop && { stop }) });
    const whole = await ask();
    const stopped = await ask(['answer', 'zzz']);
    const text = stopped.choices[0]!.message.content!;
    // The same answer, cut where "answer" first begins (the space before it is not a token of its own).
    const full = whole.choices[0]!.message.content!;
    expect(full.startsWith(text)).toBe(true);
    expect(full.slice(text.length).trimStart().startsWith('answer')).toBe(true);
    expect(text).not.toContain('answer');
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    expect(stopped.usage!.completion_tokens).toBeLessThan(whole.usage!.completion_tokens);
    const record = await fetch(`${h.url}/api/v1/generation?id=${stopped.id}`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(((await record.json()) as { data: { tokens_completion: number } }).data.tokens_completion).toBe(stopped.usage!.completion_tokens);
  });

  it('legacy completions take logprobs as a count, as the SDK types it', async () => {
    const completion = await client.completions.create({ model: 'switchyard/demo', prompt: 'Once upon', max_tokens: 5, logprobs: 2 });
    expect(completion.choices[0]!.text.length).toBeGreaterThan(0);
  });
});

describe('models through the openai SDK', () => {
  it('lists the seeded catalog with OpenRouter fields (the keyless providers\' models only when asked)', async () => {
    const servable = [];
    for await (const model of client.models.list()) servable.push((model as unknown as Record<string, any>).id);
    expect(servable).toContain('switchyard/demo');
    expect(servable).not.toContain('openai/gpt-4o-mini');
    const models = [];
    for await (const model of client.models.list({ query: { include_unavailable: 'true' } })) models.push(model as unknown as Record<string, any>);
    const ids = models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['switchyard/demo', 'openai/gpt-4o-mini', 'anthropic/claude-3.5-sonnet', 'google/gemini-2.0-flash', 'meta-llama/llama-3.1-8b-instruct:free', 'test/sdk-model']));
    const mini = models.find((m) => m.id === 'openai/gpt-4o-mini')!;
    expect(mini.pricing).toMatchObject({ prompt: '0.00000015', completion: '0.0000006', input_cache_read: '0.000000075' });
    expect(mini.context_length).toBe(128000);
    expect(mini.top_provider).toEqual({ context_length: 128000, max_completion_tokens: 16384, is_moderated: false });
    expect(mini.supported_parameters).toContain('tools');
  });
});

describe('errors through the openai SDK', () => {
  it('an unknown model is a 400 with a typed error, not a bare provider error', async () => {
    const error = await client.chat.completions.create({ model: 'nobody/nothing', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(apiError.status).toBe(400);
    expect(apiError.message).toContain('nobody/nothing is not a valid model ID');
    expect((apiError.error as { metadata: { error_type: string } }).metadata.error_type).toBe('invalid_request');
  });

  it('a bad key is a 401', async () => {
    const bad = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: 'sk-sy-v1-not-a-key', maxRetries: 0 });
    await expect(bad.chat.completions.create({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('a seeded model without its provider key is a 503 that names the missing variable', async () => {
    const error = (await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(503);
    expect(error.message).toContain('its credentials are not configured');
    expect(error.message).not.toContain('OPENAI_API_KEY');
    expect((error.error as { metadata: { error_type: string } }).metadata.error_type).toBe('provider_unavailable');
  });

  it('a mid-stream provider error surfaces as an SDK error after the first tokens', async () => {
    h.fakes[0]!.script({ errorAfterChunks: 3 });
    const stream = await client.chat.completions.create({ model: 'test/sdk-model', stream: true, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(text).toBe('Echo: Say ');
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(String((error as Error).message)).toMatch(/fake-openai/);
  });
});

describe('generation records', () => {
  it('GET /api/v1/generation returns OpenRouter fields for the caller, 404 for others', async () => {
    const completion = await client.chat.completions.create({ model: 'test/sdk-model', messages: [{ role: 'user', content: 'Say hello to the gateway' }], user: 'end-user-7' });
    await h.running.core.gateway.idle();
    const res = await fetch(`${h.url}/api/v1/generation?id=${completion.id}`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: Record<string, any> };
    expect(data).toMatchObject({
      id: completion.id,
      model: 'test/sdk-model',
      provider_name: 'fake-openai',
      streamed: false,
      cancelled: false,
      finish_reason: 'stop',
      native_finish_reason: 'stop',
      tokens_prompt: 40,
      tokens_completion: 12,
      external_user: 'end-user-7',
      api_type: 'chat',
      upstream_id: expect.stringMatching(/^chatcmpl-fake/),
    });
    expect(data.total_cost).toBeCloseTo(costOf(PRICES, 40, 12) / 1e9, 12);
    expect(data.switchyard.cost_nanodollars).toBe(costOf(PRICES, 40, 12));
    expect(typeof data.latency).toBe('number');
    const other = await h.openAccount();
    const hidden = await fetch(`${h.url}/api/v1/generation?id=${completion.id}`, { headers: { authorization: `Bearer ${other.key}` } });
    expect(hidden.status).toBe(404);
  });

  it('the prompt estimate the gateway reserves with matches the documented formula', () => {
    expect(promptEstimate([{ content: 'Say hello to the gateway' }])).toBe(10);
  });
});
