/**
 * The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`) as a client of the started app: generateText and
 * streamText through an OpenAI-protocol fake upstream (text, a tool call, usage and the exact charge), the legacy
 * completions endpoint, `embed` / `embedMany` on the offline demo embedding model, and the SDK's typed error.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, embed, embedMany, generateText, jsonSchema, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { costOf, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 150, completion: 600 };

let h: GatewayHarness;
let user: Account;
let fake: FakeProvider;
let switchyard: ReturnType<typeof createOpenAICompatible>;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 1_000_000_000 });
  fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-aisdk', model: 'test/ai-sdk', prices: PRICES });
  fake.setDefault({ usage: { promptTokens: 30, completionTokens: 9 } });
  switchyard = createOpenAICompatible({ name: 'switchyard', baseURL: `${h.url}/api/v1`, apiKey: user.key, includeUsage: true });
});
afterAll(async () => {
  await h.stop();
});

describe('the Vercel AI SDK through @ai-sdk/openai-compatible', () => {
  it('generateText answers with the text and usage, charged exactly', async () => {
    const before = await h.settledBalance(user.accountId);
    const result = await generateText({ model: switchyard('test/ai-sdk'), prompt: 'Hello there', maxRetries: 0 });
    expect(result.text).toBe('Echo: Hello there');
    expect(result.finishReason).toBe('stop');
    expect(result.usage).toMatchObject({ inputTokens: 30, outputTokens: 9 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 30, 9));
    expect(after.reserved).toBe(0);
  });

  it('streamText streams the answer and reports usage at the end', async () => {
    const result = streamText({ model: switchyard('test/ai-sdk'), prompt: 'Stream this please', maxRetries: 0 });
    const pieces: string[] = [];
    for await (const piece of result.textStream) pieces.push(piece);
    expect(pieces.join('')).toBe('Echo: Stream this please');
    expect(pieces.length).toBeGreaterThan(1);
    expect(await result.usage).toMatchObject({ inputTokens: 30, outputTokens: 9 });
    expect(fake.requests.at(-1)!.stream).toBe(true);
  });

  it('a tool call comes back as the SDK tool call, with its parsed input', async () => {
    fake.script({ toolCall: { name: 'weather', arguments: { city: 'Paris' } } });
    const result = await generateText({
      model: switchyard('test/ai-sdk'),
      prompt: 'Weather in Paris?',
      tools: { weather: tool({ description: 'The weather of a city', inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }) }) },
      maxRetries: 0,
    });
    expect(result.finishReason).toBe('tool-calls');
    expect(result.toolCalls).toMatchObject([{ toolName: 'weather', input: { city: 'Paris' } }]);
    expect((fake.requests.at(-1)!.body as { tools: unknown[] }).tools).toMatchObject([{ type: 'function', function: { name: 'weather' } }]);
  });

  it('the completion model calls /api/v1/completions', async () => {
    const result = await generateText({ model: switchyard.completionModel('switchyard/demo'), prompt: 'Complete me', maxRetries: 0 });
    expect(result.text).toContain('Complete me');
  });

  it('embed and embedMany answer deterministic vectors from the offline demo embedding model, with token usage', async () => {
    const model = switchyard.embeddingModel('switchyard/demo-embed');
    const one = await embed({ model, value: 'hello world', maxRetries: 0 });
    expect(one.embedding).toHaveLength(256);
    // ceil(11 / 4) tokens, as the embeddings endpoint counts them.
    expect(one.usage.tokens).toBe(3);
    const many = await embedMany({ model, values: ['hello world', 'second input here'], maxRetries: 0 });
    expect(many.embeddings).toHaveLength(2);
    expect(many.embeddings[0]).toEqual(one.embedding);
    expect(many.usage.tokens).toBe(8);
  });

  it("an unknown model is the SDK's APICallError carrying OpenRouter's status and message", async () => {
    const failure = await generateText({ model: switchyard('nobody/such-model'), prompt: 'x', maxRetries: 0 }).catch((e: unknown) => e);
    expect(APICallError.isInstance(failure)).toBe(true);
    const error = failure as APICallError;
    expect(error.statusCode).toBe(400);
    expect(error.message).toContain('nobody/such-model is not a valid model ID');
    expect(JSON.parse(error.responseBody!)).toMatchObject({ error: { code: 400, metadata: { error_type: 'invalid_request' } } });
  });
});
