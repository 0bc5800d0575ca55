import { describe, expect, it } from 'vitest';
import { classifyTask, matchesModelPattern } from '../../src/gateway/autoRouter.js';
import { createBreakers } from '../../src/gateway/breaker.js';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import { GatewayError } from '../../src/gateway/gatewayErrors.js';
import { planRoute } from '../../src/gateway/routePlan.js';
import type { AccountProviderPreferences } from '../../src/modules/accounts/account.events.js';
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
  get: (id) => (entries[id] ? { latencyP50Ms: null, throughputP50: null, uptime30m: null, latency5m: null, throughput5m: null, ...entries[id] } : undefined),
});

/** `random` is the default load balancing's draw: 0 (unless given) always draws the first of the price order. */
const plan = (body: Record<string, unknown>, options: { stats?: EndpointStatsView; breakers?: ReturnType<typeof createBreakers>; account?: AccountProviderPreferences; random?: () => number } = {}) =>
  planRoute({
    catalog,
    output: 'text',
    breakers: options.breakers ?? createBreakers({ failureThreshold: 3, cooldownMs: 30_000 }),
    stats: options.stats ?? NO_STATS,
    parsed: parseChatBody({ messages: [{ role: 'user', content: 'hello' }], ...body }),
    account: options.account ?? null,
    nowMs: 1_000_000,
    random: options.random ?? (() => 0),
  });

const slugs = (body: Record<string, unknown>, options?: Parameters<typeof plan>[1]) => plan(body, options).targets.map((t) => `${t.model}@${t.endpoint.provider.slug}`);

const failure = (body: Record<string, unknown>, options?: Parameters<typeof plan>[1]): GatewayError => {
  try {
    plan(body, options);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
};

describe('planRoute', () => {
  it('says when the request orders the first model’s endpoints itself (a sticky pin then does not override it)', () => {
    expect(plan({ model: 'a/chat' }).ordered).toBe(false);
    expect(plan({ model: 'a/chat', provider: { ignore: ['dear'] } }).ordered).toBe(false);
    expect(plan({ model: 'a/chat:exacto' }).ordered).toBe(false);
    for (const body of [
      { model: 'a/chat', provider: { order: ['dear'] } },
      { model: 'a/chat', provider: { sort: 'price' } },
      { model: 'a/chat', provider: { sort: { by: 'latency', partition: 'none' } } },
      { model: 'a/chat', provider: { preferred_max_latency: 1 } },
      { model: 'a/chat', provider: { preferred_min_throughput: { p90: 20 } } },
      { model: 'a/chat:floor' },
      { model: 'a/chat:nitro' },
    ]) {
      expect(plan(body).ordered, JSON.stringify(body)).toBe(true);
    }
  });

  it('orders a model’s paid endpoints cheapest first and leaves free ones to :free', () => {
    expect(slugs({ model: 'a/chat' })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat:free' })).toEqual(['a/chat:free@gratis']);
    expect(plan({ model: 'a/chat:free' }).targets[0]!.free).toBe(true);
  });

  it('draws the first endpoint weighted by 1/price² when nothing sorts or orders, the rest as fallbacks in price order', () => {
    // a/chat's paid endpoints cost 200, 600 and 1,000 a token: weights 1/200², 1/600², 1/1000² (225 : 25 : 9 of 259).
    const first = (r: number, body: Record<string, unknown> = {}) => slugs({ model: 'a/chat', ...body }, { random: () => r });
    expect(first(0)).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(first(224.9 / 259)).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(first(225.1 / 259)).toEqual(['a/chat@mid', 'a/chat@cheap', 'a/chat@dear']);
    expect(first(249.9 / 259)).toEqual(['a/chat@mid', 'a/chat@cheap', 'a/chat@dear']);
    expect(first(250.1 / 259)).toEqual(['a/chat@dear', 'a/chat@cheap', 'a/chat@mid']);
    expect(first(0.999_999)).toEqual(['a/chat@dear', 'a/chat@cheap', 'a/chat@mid']);
    // A sort or an order turns it off, whatever the draw.
    expect(first(0.999_999, { provider: { sort: 'price' } })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(first(0.999_999, { model: 'a/chat:floor' })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(first(0.999_999, { provider: { order: ['mid'] } })[0]).toBe('a/chat@mid');
    // An endpoint whose breaker is open is not drawn: the draw is among the others (225 : 9), the open one goes last.
    const breakers = createBreakers({ failureThreshold: 1, cooldownMs: 30_000 });
    breakers.failure('a/chat@mid', 1_000_000);
    expect(slugs({ model: 'a/chat' }, { breakers, random: () => 0.999_999 })).toEqual(['a/chat@dear', 'a/chat@cheap', 'a/chat@mid']);
    expect(slugs({ model: 'a/chat' }, { breakers, random: () => 0.5 })).toEqual(['a/chat@cheap', 'a/chat@dear', 'a/chat@mid']);
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

  it("routes within the account's provider lists: ignore merged with the request's, only narrowed within allow", () => {
    const ignoring = { account: { ignore: ['cheap'], allow: [] } };
    const allowing = { account: { ignore: [], allow: ['mid', 'dear'] } };
    expect(slugs({ model: 'a/chat' }, ignoring)).toEqual(['a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { ignore: ['mid'] } }, ignoring)).toEqual(['a/chat@dear']);
    expect(slugs({ model: 'a/chat' }, allowing)).toEqual(['a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { only: ['dear', 'cheap'] } }, allowing)).toEqual(['a/chat@dear']);
    expect(slugs({ model: 'a/chat', provider: { order: ['cheap', 'dear'] } }, allowing)).toEqual(['a/chat@dear', 'a/chat@mid']);
    // A model none of whose providers is allowed is skipped as a fallback would be.
    expect(slugs({ model: 'b/other', models: ['a/chat'] }, allowing)).toEqual(['a/chat@mid', 'a/chat@dear']);
  });

  it("names the account's provider lists when they leave nothing, and only then", () => {
    const allowing = { account: { ignore: ['dear'], allow: ['mid', 'dear'] } };
    const outside = failure({ model: 'a/chat', provider: { only: ['cheap'] } }, allowing);
    expect(outside.status).toBe(404);
    expect(outside.message).toBe(
      "Your account's provider settings (ignore: dear; allow: mid, dear; setProviderPreferences changes them) exclude every endpoint of a/chat that your provider restrictions (only, ignore, order, quantizations, max_price) leave",
    );
    expect(failure({ model: 'b/other' }, allowing).message).toBe("Your account's provider settings (ignore: dear; allow: mid, dear; setProviderPreferences changes them) exclude every endpoint of b/other");
    // The request's own restrictions left nothing: they are where to look.
    expect(failure({ model: 'a/chat', provider: { only: ['nobody'] } }, allowing).message).toBe('No endpoints of a/chat match your provider restrictions (only, ignore, order, quantizations, max_price)');
  });

  it('require_parameters keeps only endpoints that support every parameter sent', () => {
    expect(slugs({ model: 'a/chat', temperature: 0.5 })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat', temperature: 0.5, provider: { require_parameters: true } })).toEqual(['a/chat@mid', 'a/chat@dear']);
  });

  it('skips endpoints too small for the prompt or for max_tokens', () => {
    expect(slugs({ model: 'a/chat', max_tokens: 2_000 })).toEqual(['a/chat@mid']);
    const long = [{ role: 'user', content: 'x'.repeat(40_000) }];
    expect(slugs({ model: 'a/chat', messages: long, plugins: [{ id: 'context-compression', enabled: false }] })).toEqual(['a/chat@mid']);
    // By default an endpoint of at most 8,192 tokens takes it compressed, after those that take it whole.
    expect(slugs({ model: 'a/chat', messages: long })).toEqual(['a/chat@mid', 'a/chat@cheap', 'a/chat@dear']);
    expect(plan({ model: 'a/chat', messages: long }).targets.map((t) => t.messages !== undefined)).toEqual([false, true, true]);
  });

  it('sorts by throughput (:nitro), latency, or price (:floor) from the stats snapshot', () => {
    const stats = statsOf({ 'a/chat@dear': { throughputP50: 200, latencyP50Ms: 900 }, 'a/chat@mid': { throughputP50: 100, latencyP50Ms: 100 }, 'a/chat@cheap': { throughputP50: 10, latencyP50Ms: 500 } });
    expect(slugs({ model: 'a/chat:nitro' }, { stats })).toEqual(['a/chat@dear', 'a/chat@mid', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat', provider: { sort: 'latency' } }, { stats })).toEqual(['a/chat@mid', 'a/chat@cheap', 'a/chat@dear']);
    expect(slugs({ model: 'a/chat:floor' }, { stats })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
  });

  it('reads a chain of variant suffixes: one catalog variant, the last sort variant, :thinking per model', () => {
    const stats = statsOf({ 'a/chat@dear': { throughputP50: 200 }, 'a/chat@mid': { throughputP50: 100 }, 'a/chat@cheap': { throughputP50: 10 } });
    expect(slugs({ model: 'a/chat:free:nitro' }, { stats })).toEqual(['a/chat:free@gratis']);
    expect(slugs({ model: 'a/chat:floor:nitro' }, { stats })).toEqual(['a/chat@dear', 'a/chat@mid', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat:nitro:exacto' }, { stats })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    expect(plan({ model: 'a/chat:free:nitro' }).targets.map((t) => t.requested)).toEqual(['a/chat:free:nitro']);
    // :thinking sets reasoning on the targets of its own model only, and never over the request's.
    const thinking = plan({ model: 'b/other:thinking', models: ['a/chat:extended'] }).targets;
    expect(thinking.map((t) => t.reasoning)).toEqual([{ enabled: true }, undefined, undefined, undefined]);
    expect(plan({ model: 'b/other:thinking', reasoning: { effort: 'low' } }).targets[0]!.reasoning).toBeUndefined();
    expect(failure({ model: 'a/chat:free:free' })).toMatchObject({ status: 400, message: 'a/chat:free:free names more than one catalog variant (at most one: :free)', metadata: { model: 'a/chat:free:free' } });
  });

  it('performance thresholds put endpoints whose last 5 minutes miss them last, across models, and drop none', () => {
    const at = (p50: number, p90: number) => ({ p50, p75: p50, p90, p99: p90 });
    const stats = statsOf({
      'a/chat@cheap': { latency5m: at(3_000, 9_000), throughput5m: at(20, 10) },
      'a/chat@mid': { latency5m: at(400, 800), throughput5m: at(80, 40) },
      // dear has no samples in the last 5 minutes: nothing shows it misses a threshold.
      'b/other@cheap': { latency5m: at(500, 600), throughput5m: at(100, 90) },
    });
    expect(slugs({ model: 'a/chat' }, { stats })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
    // preferred_max_latency is in seconds; a number is the p50's cutoff.
    expect(slugs({ model: 'a/chat', provider: { preferred_max_latency: 2 } }, { stats })).toEqual(['a/chat@mid', 'a/chat@dear', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat', provider: { preferred_max_latency: { p90: 0.5 } } }, { stats })).toEqual(['a/chat@dear', 'a/chat@cheap', 'a/chat@mid']);
    expect(slugs({ model: 'a/chat', provider: { preferred_min_throughput: 50 } }, { stats })).toEqual(['a/chat@mid', 'a/chat@dear', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat', provider: { preferred_min_throughput: { p50: 50, p90: 50 } } }, { stats })).toEqual(['a/chat@dear', 'a/chat@cheap', 'a/chat@mid']);
    // Both at once: an endpoint that misses either goes last.
    expect(slugs({ model: 'a/chat', provider: { preferred_min_throughput: 15, preferred_max_latency: { p90: 1 } } }, { stats })).toEqual(['a/chat@mid', 'a/chat@dear', 'a/chat@cheap']);
    // A fallback model that meets them goes before the primary's endpoints that miss them.
    expect(slugs({ model: 'a/chat', models: ['b/other'], provider: { only: ['cheap'], preferred_max_latency: 2 } }, { stats })).toEqual(['b/other@cheap', 'a/chat@cheap']);
    expect(slugs({ model: 'a/chat', models: ['b/other'], provider: { preferred_max_latency: 2 } }, { stats })).toEqual(['a/chat@mid', 'a/chat@dear', 'b/other@cheap', 'a/chat@cheap']);
    // Thresholds no endpoint meets change nothing; allow_fallbacks: false keeps the first endpoint that meets them.
    expect(slugs({ model: 'a/chat', provider: { only: ['cheap', 'mid'], preferred_min_throughput: 1_000 } }, { stats })).toEqual(['a/chat@cheap', 'a/chat@mid']);
    expect(slugs({ model: 'a/chat', provider: { allow_fallbacks: false, preferred_max_latency: 2 } }, { stats })).toEqual(['a/chat@mid']);
    // An explicit order is a preference too: the thresholds come after it only for the endpoints that miss them.
    expect(slugs({ model: 'a/chat', provider: { order: ['cheap', 'dear'], preferred_max_latency: 2 } }, { stats })).toEqual(['a/chat@dear', 'a/chat@mid', 'a/chat@cheap']);
  });

  it('refuses performance thresholds that are not non-negative numbers or percentile cutoffs', () => {
    for (const [value, param] of [
      ['fast', 'preferred_max_latency'],
      [-1, 'preferred_max_latency'],
      [{ p42: 1 }, 'preferred_min_throughput'],
      [{ p50: -5 }, 'preferred_min_throughput'],
      [{ p90: '10' }, 'preferred_min_throughput'],
      [[1], 'preferred_max_latency'],
    ] as const) {
      const error = failure({ model: 'a/chat', provider: { [param]: value } });
      expect(error.status, JSON.stringify(value)).toBe(400);
      expect(error.message).toContain(`provider.${param} must be a non-negative number`);
      // The param names the field, and the percentile when one cutoff is wrong.
      expect(String(error.metadata?.param)).toMatch(new RegExp(`^provider\\.${param}(\\.p\\d\\d)?$`));
    }
    expect(slugs({ model: 'a/chat', provider: { preferred_max_latency: null, preferred_min_throughput: { p50: null } } })).toEqual(['a/chat@cheap', 'a/chat@mid', 'a/chat@dear']);
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
    // Too long for every endpoint, and compression (on by default for the 8,192-token ones) turned off.
    expect(failure({ model: 'a/chat', messages: [{ role: 'user', content: 'x'.repeat(200_000) }], plugins: [{ id: 'context-compression', enabled: false }] })).toMatchObject({
      status: 400,
      errorType: 'context_length_exceeded',
    });
    expect(failure({ model: 'c/locked' })).toMatchObject({ status: 503, errorType: 'provider_unavailable', message: expect.stringContaining('its credentials are not configured') });
  });
});

describe('the auto model', () => {
  const auto = catalogOf({
    providers: [{ slug: 'p' }, { slug: 'q', dataPolicy: 'zero_retention' }],
    endpoints: [
      { model: 'x/coder', provider: 'p', prices: { prompt: 900, completion: 900 } },
      // The dearest: never among the default rule's two picks, unless p is out of the way.
      { model: 'x/far', provider: 'q', prices: { prompt: 1_000, completion: 1_000 } },
      { model: 'x/gift', provider: 'q', prices: { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }, variants: ['free'] },
      { model: 'x/cheap', provider: 'p', prices: { prompt: 10, completion: 10 }, supportedParameters: ['max_tokens'] },
      { model: 'x/mid', provider: 'p', prices: { prompt: 100, completion: 100 } },
      // The cheapest of all, but it writes no text: never the auto router's pick for a chat.
      { model: 'x/embed', provider: 'p', prices: { prompt: 1, completion: 0 } },
    ],
    models: [{ modelId: 'x/embed', outputModalities: ['embeddings'] }],
    rules: [
      { name: 'code', taskTypes: ['code'], models: ['x/coder', 'x/mid'] },
      { name: 'default', sort: 'price', limit: 2 },
    ],
  });
  const pick = (content: string, extra: Record<string, unknown> = {}, account: AccountProviderPreferences | null = null) =>
    planRoute({
      catalog: auto,
      output: 'text',
      breakers: createBreakers({ failureThreshold: 3, cooldownMs: 1 }),
      stats: NO_STATS,
      parsed: parseChatBody({ model: 'switchyard/auto', messages: [{ role: 'user', content }], ...extra }),
      account,
      nowMs: 0,
    });
  const modelsOf = (route: ReturnType<typeof pick>) => [...new Set(route.targets.map((t) => t.model))];

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

  it("narrows every rule's choice to the auto-router plugin's allowed models, without its excluded ones", () => {
    const models = (content: string, plugin: Record<string, unknown>) => [...new Set(pick(content, { plugins: [{ id: 'auto-router', ...plugin }] }).targets.map((t) => t.model))];
    expect(models('How are you?', { allowed_models: ['x/mid', 'x/coder'] })).toEqual(['x/mid', 'x/coder']);
    expect(models('How are you?', { excluded_models: ['*cheap*'] })).toEqual(['x/mid', 'x/coder']);
    expect(models('How are you?', { allowed_models: ['x/embed', 'x/mid'] })).toEqual(['x/mid']);
    expect(models('How are you?', { allowed_models: ['X/*'], excluded_models: ['x/mid'] })).toEqual(['x/cheap', 'x/coder']);
    // The code rule's models are narrowed too; a rule left with none gives way to the next.
    expect(models('Fix this python function: def f(): return 1', { excluded_models: ['x/coder'] })).toEqual(['x/mid']);
    expect(models('Fix this python function: def f(): return 1', { allowed_models: ['x/cheap'] })).toEqual(['x/cheap']);
    let refusal: unknown;
    try {
      pick('How are you?', { plugins: [{ id: 'auto-router', allowed_models: ['y/*'] }] });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect((refusal as GatewayError).status).toBe(404);
    expect((refusal as GatewayError).message).toBe("The auto router found no model it can serve for this request within the auto-router plugin's allowed_models and excluded_models (task: chat)");
  });

  it("picks only models an endpoint of which the account's lists and the request's provider preferences admit", () => {
    expect(modelsOf(pick('How are you?'))).toEqual(['x/cheap', 'x/mid']);
    // Every cheaper model is p's alone: ignored by the account, or left out by the request, x/far is the pick.
    expect(modelsOf(pick('How are you?', {}, { ignore: ['p'], allow: [] }))).toEqual(['x/far']);
    expect(modelsOf(pick('How are you?', {}, { ignore: [], allow: ['q'] }))).toEqual(['x/far']);
    expect(modelsOf(pick('How are you?', { provider: { ignore: ['p'] } }))).toEqual(['x/far']);
    expect(modelsOf(pick('How are you?', { provider: { only: ['q'] } }))).toEqual(['x/far']);
    expect(modelsOf(pick('How are you?', { provider: { order: ['q'], allow_fallbacks: false } }))).toEqual(['x/far']);
    expect(modelsOf(pick('How are you?', { provider: { zdr: true } }))).toEqual(['x/far']);
    expect(modelsOf(pick('How are you?', { provider: { max_price: { prompt: 0.05 } } }))).toEqual(['x/cheap']);
    // A code rule's named models too: x/coder and x/mid are p's, so the next rule (the default) picks.
    expect(pick('Fix this python function: def f(): return 1', {}, { ignore: ['p'], allow: [] }).router).toBe('switchyard/auto (default)');
    // The router id's variant: :free picks among models with a free endpoint.
    expect(modelsOf(planRoute({ catalog: auto, output: 'text', breakers: createBreakers({ failureThreshold: 3, cooldownMs: 1 }), stats: NO_STATS, parsed: parseChatBody({ model: 'switchyard/auto:free', messages: [{ role: 'user', content: 'hi' }] }), nowMs: 0 }))).toEqual([
      'x/gift:free',
    ]);
    let refusal: unknown;
    try {
      pick('How are you?', { provider: { ignore: ['q'] } }, { ignore: ['p'], allow: [] });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toMatchObject({
      status: 404,
      message: "The auto router found no model it can serve for this request within your provider preferences (the request's provider object and your account's provider settings) (task: chat)",
    });
  });

  it('matches model patterns: * for any run of characters, case ignored, in at most pattern × id length steps', () => {
    expect(matchesModelPattern('anthropic/*', 'anthropic/claude-3.5-sonnet')).toBe(true);
    expect(matchesModelPattern('anthropic/*', 'openai/gpt-4o')).toBe(false);
    expect(matchesModelPattern('*', 'a/b')).toBe(true);
    expect(matchesModelPattern('*/gpt-4o*', 'OpenAI/GPT-4o-mini')).toBe(true);
    expect(matchesModelPattern('a*b*c', 'axxbyyc')).toBe(true);
    expect(matchesModelPattern('a*b*c', 'axxbyy')).toBe(false);
    expect(matchesModelPattern('openai/gpt-4o', 'openai/gpt-4o-mini')).toBe(false);
    expect(matchesModelPattern('', '')).toBe(true);
    // A hostile pattern (a regular expression built from it would backtrack for ages) is just a miss.
    expect(matchesModelPattern(`${'*a'.repeat(99)}b`, 'a'.repeat(200))).toBe(false);
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
    expect(breakers.cooldownLeftMs('e', 0)).toBe(0);
    breakers.failure('e', 10);
    expect(breakers.state('e', 500)).toBe('open');
    expect(breakers.isOpen('e', 500)).toBe(true);
    expect(breakers.cooldownLeftMs('e', 500)).toBe(510);
    expect(breakers.state('e', 1_010)).toBe('half-open');
    expect(breakers.isOpen('e', 1_010)).toBe(false);
    expect(breakers.cooldownLeftMs('e', 1_010)).toBe(0);
    breakers.failure('e', 1_010);
    expect(breakers.state('e', 1_500)).toBe('open');
    breakers.success('e');
    expect(breakers.state('e', 1_500)).toBe('closed');
  });
});
