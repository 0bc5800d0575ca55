import { describe, expect, it } from 'vitest';
import { classifyTask } from '../../src/gateway/autoRouter.js';
import { createBreakers } from '../../src/gateway/breaker.js';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import { GatewayError } from '../../src/gateway/gatewayErrors.js';
import { planRoute } from '../../src/gateway/routePlan.js';
import type { EndpointStats, EndpointStatsView } from '../../src/gateway/routeStats.js';
import { catalogOf } from '../support/catalogFixture.js';

const catalog = catalogOf({
  providers: [{ slug: 'cheap' }, { slug: 'dear', dataPolicy: 'zero_retention' }, { slug: 'mid', name: 'Middle Inc', dataPolicy: 'no_collection' }, { slug: 'nokey', problem: 'environment variable NOKEY is not set' }, { slug: 'gratis' }],
  endpoints: [
    { model: 'a/chat', provider: 'dear', prices: { prompt: 500, completion: 500 }, quantization: 'fp16' },
    { model: 'a/chat', provider: 'cheap', prices: { prompt: 100, completion: 100 }, quantization: 'fp8', supportedParameters: ['max_tokens'] },
    { model: 'a/chat', provider: 'mid', prices: { prompt: 300, completion: 300 }, quantization: 'bf16', contextLength: 32_000, maxOutput: 4_000 },
    { model: 'a/chat', provider: 'gratis', prices: { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }, variants: ['free'] },
    { model: 'b/other', provider: 'cheap', prices: { prompt: 50, completion: 50 } },
    { model: 'c/locked', provider: 'nokey' },
  ],
});

const NO_STATS: EndpointStatsView = { get: () => undefined };
const statsOf = (entries: Record<string, Partial<EndpointStats>>): EndpointStatsView => ({
  get: (id) => (entries[id] ? { latencyP50Ms: null, throughputP50: null, uptime30m: null, ...entries[id] } : undefined),
});

const plan = (body: Record<string, unknown>, options: { stats?: EndpointStatsView; breakers?: ReturnType<typeof createBreakers> } = {}) =>
  planRoute({
    catalog,
    breakers: options.breakers ?? createBreakers({ failureThreshold: 3, cooldownMs: 30_000 }),
    stats: options.stats ?? NO_STATS,
    parsed: parseChatBody({ messages: [{ role: 'user', content: 'hello' }], ...body }),
    nowMs: 1_000_000,
  });

const slugs = (body: Record<string, unknown>, options?: Parameters<typeof plan>[1]) => plan(body, options).targets.map((t) => `${t.model}@${t.endpoint.provider.slug}`);

const failure = (body: Record<string, unknown>): GatewayError => {
  try {
    plan(body);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
};

describe('planRoute', () => {
  it('orders a model’s paid endpoints cheapest first and leaves free ones to :free', () => {
    expect(slugs({ model: 'a/chat' })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat:free' })).toEqual(['a/chat:free@gratis']);
    expect(plan({ model: 'a/chat:free' }).targets[0]!.free).toBe(true);
  });

  it('appends the models list as fallbacks after the primary model', () => {
    expect(slugs({ model: 'b/other', models: ['a/chat'] })).toEqual(['b/other@cheap', 'a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
  });

  it('keeps to the data policy a request asks for, counting a provider whose policy is unstated as collecting', () => {
    expect(slugs({ model: 'a/chat', provider: { data_collection: 'deny' } })).toEqual(['a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { zdr: true } })).toEqual(['a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { data_collection: 'deny', zdr: true, order: ['mid'] } })).toEqual(['a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { data_collection: 'allow', zdr: false, enforce_distillable_text: false } })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    // A fallback model none of whose providers qualifies is skipped; the request fails only when nothing is left.
    expect(slugs({ model: 'b/other', models: ['a/chat'], provider: { data_collection: 'deny' } })).toEqual(['a/chat@mid', 'a/chat@dear']);
    const none = failure({ model: 'b/other', provider: { zdr: true } });
    expect(none.status).toBe(404);
    expect(none.message).toBe("No endpoints of b/other meet your data policy (zdr: zero data retention) as an admin stated the providers': cheap (unstated)");
  });

  it('refuses a data policy it cannot check or does not know', () => {
    const distillable = failure({ model: 'a/chat', provider: { enforce_distillable_text: true } });
    expect(distillable.status).toBe(400);
    expect(distillable.message).toContain('provider.enforce_distillable_text is not supported');
    expect(failure({ model: 'a/chat', provider: { data_collection: 'never' } }).message).toBe('provider.data_collection must be "allow" or "deny"');
    expect(failure({ model: 'a/chat', provider: { zdr: 'yes' } }).status).toBe(400);
  });

  it('applies order, only, ignore, quantizations and max_price', () => {
    expect(slugs({ model: 'a/chat', provider: { order: ['dear', 'Middle Inc'] } })).toEqual(['a/chat@dear', 'a/chat@mid', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat', provider: { order: ['dear'], allow_fallbacks: false } })).toEqual(['a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { allow_fallbacks: false } })).toEqual(['a/chat@cheap']);
    expect(slugs({ model: 'a/chat', provider: { only: ['dear', 'mid'] } })).toEqual(['a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { ignore: ['cheap'] } })).toEqual(['a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { quantizations: ['fp16', 'bf16'] } })).toEqual(['a/chat@mid', 'a/chat@dear']);
    // max_price is USD per million tokens: 0.3 → 300 nano-dollars per token.
    expect(slugs({ model: 'a/chat', provider: { max_price: { prompt: 0.3 } } })).toEqual(['a/chat@cheap', 'a/chat@mid']);
  });

  it('require_parameters keeps only endpoints that support every parameter sent', () => {
    expect(slugs({ model: 'a/chat', temperature: 0.5 })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', temperature: 0.5, provider: { require_parameters: true } })).toEqual(['a/chat@mid', 'a/chat@dear']);
  });

  it('skips endpoints too small for the prompt or for max_tokens', () => {
    expect(slugs({ model: 'a/chat', max_tokens: 2_000 })).toEqual(['a/chat@mid']);
    expect(slugs({ model: 'a/chat', messages: [{ role: 'user', content: 'x'.repeat(40_000) }] })).toEqual(['a/chat@mid']);
  });

  it('sorts by throughput (:nitro), latency, or price (:floor) from the stats snapshot', () => {
    const stats = statsOf({ 'a/chat@dear': { throughputP50: 200, latencyP50Ms: 900 }, 'a/chat@mid': { throughputP50: 100, latencyP50Ms: 100 }, 'a/chat@cheap': { throughputP50: 10, latencyP50Ms: 500 } });
    expect(slugs({ model: 'a/chat:nitro' }, { stats })).toEqual(['a/chat@dear', 'a/chat@mid', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat', provider: { sort: 'latency' } }, { stats })).toEqual(['a/chat@mid', 'a/chat@cheap', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat:floor' }, { stats })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
  });

  it('partition "none" sorts endpoints across all requested models', () => {
    expect(slugs({ model: 'a/chat', models: ['b/other'], provider: { sort: { by: 'price', partition: 'none' } } })).toEqual(['b/other@cheap', 'a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
  });

  it('puts endpoints with an open breaker last, but never drops them', () => {
    const breakers = createBreakers({ failureThreshold: 2, cooldownMs: 30_000 });
    breakers.failure('a/chat@cheap', 1_000_000);
    expect(slugs({ model: 'a/chat' }, { breakers })[0]).toBe('a/chat@cheap');
    breakers.failure('a/chat@cheap', 1_000_000);
    expect(slugs({ model: 'a/chat' }, { breakers })).toEqual(['a/chat@mid', 'a/chat@dear', 'a/chat@cheap']);
    expect(slugs({ model: 'b/other' }, { breakers })).toEqual(['b/other@cheap']);
  });

  it('reserves max_tokens, or what the endpoint and the context allow', () => {
    expect(plan({ model: 'a/chat', max_tokens: 50 }).targets.map((t) => t.maxOutput)).toEqual([50, 50, 50]);
    expect(plan({ model: 'a/chat' }).targets.map((t) => t.maxOutput)).toEqual([1_000, 4_000, 1_000]);
  });

  it('refuses with typed errors that say why', () => {
    expect(failure({ model: 'x/unknown' })).toMatchObject({ status: 400, errorType: 'invalid_request', message: 'x/unknown is not a valid model ID' });
    expect(failure({ model: 'a/chat:online' })).toMatchObject({ status: 400, errorType: 'invalid_request' });
    expect(failure({ model: 'b/other:free' })).toMatchObject({ status: 404, errorType: 'not_found', message: 'b/other has no free endpoints' });
    expect(failure({ model: 'a/chat', provider: { only: ['nobody'] } })).toMatchObject({ status: 404, errorType: 'not_found' });
    expect(failure({ model: 'a/chat', max_tokens: 9_000 })).toMatchObject({ status: 400, errorType: 'max_tokens_exceeded' });
    expect(failure({ model: 'a/chat', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] })).toMatchObject({ status: 400, errorType: 'context_length_exceeded' });
    expect(failure({ model: 'c/locked' })).toMatchObject({ status: 503, errorType: 'provider_unavailable', message: expect.stringContaining('its credentials are not configured') });
  });
});

describe('the auto model', () => {
  const auto = catalogOf({
    providers: [{ slug: 'p' }],
    endpoints: [
      { model: 'x/coder', provider: 'p', prices: { prompt: 900, completion: 900 } },
      { model: 'x/cheap', provider: 'p', prices: { prompt: 10, completion: 10 }, supportedParameters: ['max_tokens'] },
      { model: 'x/mid', provider: 'p', prices: { prompt: 100, completion: 100 } },
    ],
    rules: [
      { name: 'code', taskTypes: ['code'], models: ['x/coder', 'x/mid'] },
      { name: 'default', sort: 'price', limit: 2 },
    ],
  });
  const pick = (content: string, extra: Record<string, unknown> = {}) =>
    planRoute({
      catalog: auto,
      breakers: createBreakers({ failureThreshold: 3, cooldownMs: 1 }),
      stats: NO_STATS,
      parsed: parseChatBody({ model: 'switchyard/auto', messages: [{ role: 'user', content }], ...extra }),
      nowMs: 0,
    });

  it('classifies the task and follows the first matching rule', () => {
    const code = pick('Fix this python function: def f(): return 1');
    expect(code.router).toBe('switchyard/auto (code)');
    expect([...new Set(code.targets.map((t) => t.model))]).toEqual(['x/coder', 'x/mid']);
    const chat = pick('How are you?');
    expect(chat.router).toBe('switchyard/auto (default)');
    expect([...new Set(chat.targets.map((t) => t.model))]).toEqual(['x/cheap', 'x/mid']);
  });

  it('keeps only models with the capabilities the request needs', () => {
    const tools = pick('How are you?', { tools: [{ type: 'function', function: { name: 'f' } }] });
    expect([...new Set(tools.targets.map((t) => t.model))]).toEqual(['x/mid', 'x/coder']);
  });

  it('classifies common tasks', () => {
    expect(classifyTask('```ts\nconst x = 1\n```')).toBe('code');
    expect(classifyTask('Solve the equation 2x + 3 = 7')).toBe('math');
    expect(classifyTask('Translate this into German')).toBe('translation');
    expect(classifyTask('Summarize the following article')).toBe('summarization');
    expect(classifyTask('Write a poem about trains')).toBe('creative');
    expect(classifyTask('Hello there')).toBe('chat');
  });
});

describe('breakers', () => {
  it('open after consecutive failures, half-open after the cooldown, close on success', () => {
    const breakers = createBreakers({ failureThreshold: 2, cooldownMs: 1_000 });
    breakers.failure('e', 0);
    expect(breakers.state('e', 0)).toBe('closed');
    breakers.success('e');
    breakers.failure('e', 0);
    expect(breakers.state('e', 0)).toBe('closed');
    breakers.failure('e', 10);
    expect(breakers.state('e', 500)).toBe('open');
    expect(breakers.isOpen('e', 500)).toBe(true);
    expect(breakers.state('e', 1_010)).toBe('half-open');
    expect(breakers.isOpen('e', 1_010)).toBe(false);
    breakers.failure('e', 1_010);
    expect(breakers.state('e', 1_500)).toBe('open');
    breakers.success('e');
    expect(breakers.state('e', 1_500)).toBe('closed');
  });
});
