import { describe, expect, it } from 'vitest';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import { fromProviderError, GatewayError } from '../../src/gateway/gatewayErrors.js';
import { affordableOutputTokens, billUsage, costOf, worstCaseCost } from '../../src/gateway/pricing.js';
import { buildUpstreamRequest, countsAgainstUptime } from '../../src/gateway/router.js';
import { ProviderError } from '../../src/gateway/types.js';
import { prices } from '../support/catalogFixture.js';

describe('costs', () => {
  const p = prices({ prompt: 1000, completion: 4000, reasoning: 5000, cacheRead: 100, cacheWrite: 1250, request: 7 });

  it('prices cached, cache-write, reasoning and the request fee separately', () => {
    const cost = costOf(
      { prompt_tokens: 100, completion_tokens: 30, total_tokens: 130, prompt_tokens_details: { cached_tokens: 20, cache_write_tokens: 10 }, completion_tokens_details: { reasoning_tokens: 10 } },
      p,
    );
    expect(cost).toEqual({ prompt: 70 * 1000, cacheRead: 20 * 100, cacheWrite: 10 * 1250, completion: 20 * 4000, reasoning: 10 * 5000, request: 7, total: 70_000 + 2_000 + 12_500 + 80_000 + 50_000 + 7 });
  });

  it("the cache discount: reads' saving against the prompt price, less writes' extra cost; 0 without a price of their own", () => {
    const caps = { promptTokens: 1_000, completionTokens: 1_000, cost: Number.MAX_SAFE_INTEGER };
    const usage = (cached: number, written: number) => ({ prompt_tokens: 100, completion_tokens: 30, total_tokens: 130, prompt_tokens_details: { cached_tokens: cached, cache_write_tokens: written } });
    expect(billUsage(usage(20, 0), p, caps).cacheDiscount).toBe(20 * (1000 - 100));
    // Writes above the prompt price make it negative, as OpenRouter's is.
    expect(billUsage(usage(20, 10), p, caps).cacheDiscount).toBe(20 * 900 - 10 * 250);
    expect(billUsage(usage(0, 10), p, caps).cacheDiscount).toBe(-2_500);
    expect(billUsage(usage(20, 10), prices({ prompt: 1000 }), caps).cacheDiscount).toBe(0);
    expect(billUsage({ prompt_tokens: 100, completion_tokens: 30, total_tokens: 130 }, p, caps).cacheDiscount).toBe(0);
  });

  it('the worst case takes the dearest input and output prices', () => {
    expect(worstCaseCost(10, 100, p)).toBe(10 * 1250 + 100 * 5000 + 7);
  });

  it('affordable output tokens after the prompt and the fee', () => {
    expect(affordableOutputTokens(10 * 1250 + 7 + 5000 * 3 + 4999, 10, p)).toBe(3);
    expect(affordableOutputTokens(100, 10, p)).toBe(0);
    expect(affordableOutputTokens(1, 10, prices({ prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }))).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('parseChatBody', () => {
  const refuse = (body: unknown): GatewayError => {
    try {
      parseChatBody(body);
    } catch (error) {
      if (error instanceof GatewayError) return error;
      throw error;
    }
    throw new Error('expected a refusal');
  };

  it('builds the canonical request, the model list and the prompt estimate', () => {
    const parsed = parseChatBody({
      model: 'a/b',
      models: ['c/d', 'a/b'],
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
      ],
      max_tokens: 10,
      temperature: 0.2,
      stream: true,
      provider: { order: ['x'], sort: 'price', max_price: { prompt: 1, request: 0.01 } },
      response_format: { type: 'json_schema', json_schema: { name: 's' } },
      user: 'u-1',
      something_unknown: true,
    });
    expect(parsed.models).toEqual(['a/b', 'c/d']);
    expect(parsed.stream).toBe(true);
    expect(parsed.request).toMatchObject({ model: 'a/b', max_tokens: 10, temperature: 0.2, stream: true, user: 'u-1' });
    expect(parsed.request).not.toHaveProperty('something_unknown');
    // (8 + 16) + (4 + 16) characters → 11 tokens, plus one image.
    expect(parsed.promptTokens).toBe(11 + 765);
    expect(parsed.needs).toEqual({ tools: false, vision: true, json: true, files: false, audio: false });
    expect(parsed.usedParameters).toEqual(expect.arrayContaining(['max_tokens', 'temperature', 'response_format', 'structured_outputs']));
    expect(parsed.provider).toMatchObject({ order: ['x'], allowFallbacks: true, sort: { by: 'price', partition: 'model' }, maxPrice: { prompt: 1000, request: 10_000_000 } });
    expect(parsed.lastUserText).toBe('look ');
  });

  it('turns a legacy prompt into one user message', () => {
    expect(parseChatBody({ model: 'a/b', prompt: 'Once upon' }, 'completion').request.messages).toEqual([{ role: 'user', content: 'Once upon' }]);
  });

  it('refuses bad input with the field it is about', () => {
    expect(refuse({ messages: [] }).message).toBe('model is required (or a models list)');
    expect(refuse({ model: 'a/b', messages: [{ role: 'robot', content: 'x' }] }).metadata).toMatchObject({ param: 'messages[0].role' });
    expect(refuse({ model: 'a/b', messages: [{ role: 'user', content: 3 }] }).message).toMatch(/content must be a string/);
    expect(refuse({ model: 'a/b', messages: [{ role: 'assistant' }] }).message).toMatch(/needs content or tool_calls/);
    expect(refuse({ model: 'a/b', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }).message).toMatch(/max_tokens must be an integer/);
    expect(refuse({ model: 'a/b', messages: [{ role: 'user', content: 'x' }], n: 2 }).message).toMatch(/n must be 1/);
    expect(refuse({ model: 'a/b', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }).message).toMatch(/stream must be a boolean/);
    expect(refuse({ model: 'a/b', messages: [{ role: 'user', content: 'x' }], provider: { sort: { by: 'price', partition: 'all' } } }).message).toMatch(/partition/);
    expect(refuse({ model: 'a/b', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }).message).toMatch(/tools must be/);
    expect(refuse('hello').message).toMatch(/JSON object/);
  });
});

describe('a provider error before anything was sent', () => {
  it('is Switchyard\'s own (internal, 500, no retry), never charged to the provider\'s uptime', () => {
    let caught: unknown;
    try {
      buildUpstreamRequest('Acme', () => JSON.stringify(JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProviderError);
    const error = caught as ProviderError;
    expect(error).toMatchObject({ code: 'internal', status: 500, retryable: false });
    expect(countsAgainstUptime(error, { byok: false })).toBe(false);
    const answer = fromProviderError(error, { providerName: 'Acme', providerSlug: 'acme', model: 'a/b', attempts: 1 });
    expect(answer.status).toBe(500);
    expect(answer.message).toContain('Acme was not called: Switchyard could not build the request');
    expect(buildUpstreamRequest('Acme', () => 42)).toBe(42);
  });
});
