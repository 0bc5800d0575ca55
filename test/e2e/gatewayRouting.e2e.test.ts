/**
 * Routing over real HTTP: provider preferences and variants, sorting by the provider stats the generations feed,
 * the circuit breaker, Retry-After on a lone endpoint, keep-alive comments, the endpoints API's stats, and the data
 * policy an admin states for a provider.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];
const USAGE = { promptTokens: 10, completionTokens: 10 };

let h: GatewayHarness;
let user: Account;
let fast: FakeProvider;
let slow: FakeProvider;
let flaky: FakeProvider;
let solo: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness({ GATEWAY_BREAKER_FAILURES: '2', GATEWAY_BREAKER_COOLDOWN_MS: '60000', GATEWAY_KEEPALIVE_MS: '100' });
  user = await h.openAccount({ credits: 10_000_000_000 });
  fast = await h.fakeEndpoint({ protocol: 'openai', slug: 'fast', model: 'test/speed', prices: { prompt: 500, completion: 500 } });
  slow = await h.fakeEndpoint({ protocol: 'openai', slug: 'slow', model: 'test/speed', prices: { prompt: 100, completion: 100 } });
  fast.setDefault({ usage: USAGE });
  slow.setDefault({ usage: USAGE, latencyMs: 150, slowTokenMs: 40 });
  flaky = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'flaky', model: 'test/breaker', prices: { prompt: 100, completion: 100 } });
  // The breaker's healthy alternative; its answers are checked through the generation records.
  await h.fakeEndpoint({ protocol: 'gemini', slug: 'steady', model: 'test/breaker', prices: { prompt: 200, completion: 200 } });
  flaky.setDefault({ status: 500 });
  solo = await h.fakeEndpoint({ protocol: 'openai', slug: 'solo', model: 'test/solo', prices: { prompt: 100, completion: 100 } });
});
afterAll(async () => {
  await h.stop();
});

const servedBy = async (body: Record<string, unknown>): Promise<string> => {
  const res = await h.chat(user.key, { messages: MESSAGES, ...body });
  expect(res.status).toBe(200);
  if (body.stream) {
    const { events } = await readSseResponse(res);
    return events.at(-1).provider;
  }
  return ((await res.json()) as { provider: string }).provider;
};

describe('provider preferences', () => {
  it('with load balancing off (ROUTING_LOAD_BALANCING=off, as this harness runs), the cheapest endpoint first', async () => {
    expect(await servedBy({ model: 'test/speed' })).toBe('slow');
  });
  it('order puts the named providers first', async () => {
    expect(await servedBy({ model: 'test/speed', provider: { order: ['fast'] } })).toBe('fast');
  });
  it('ignore and only narrow the candidates', async () => {
    expect(await servedBy({ model: 'test/speed', provider: { ignore: ['slow'] } })).toBe('fast');
    expect(await servedBy({ model: 'test/speed', provider: { only: ['fast'] } })).toBe('fast');
  });
  it('max_price (USD per million tokens) drops dearer endpoints', async () => {
    expect(await servedBy({ model: 'test/speed', provider: { order: ['fast'], max_price: { prompt: 0.2 } } })).toBe('slow');
  });
});

describe('sorting by the stats the generations feed', () => {
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      await servedBy({ model: 'test/speed', stream: true, provider: { only: ['fast'] } });
      await servedBy({ model: 'test/speed', stream: true, provider: { only: ['slow'] } });
    }
    await h.running.core.gateway.idle();
    // idle() waits at most 5 s for the read models; under the whole suite on two vCPUs they took longer, and these
    // tests then sorted on stats without the calls above. Wait for them to hold every event so far.
    expect(await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition(), 60_000)).toBe(true);
    await h.running.core.gateway.stats.refresh();
  });

  it(':nitro sorts by throughput, :floor by price', async () => {
    expect(await servedBy({ model: 'test/speed:nitro' })).toBe('fast');
    expect(await servedBy({ model: 'test/speed:floor' })).toBe('slow');
  });

  it('in a chain of variants the last sort variant wins; :exacto is the default order (no tool-calling signal here)', async () => {
    expect(await servedBy({ model: 'test/speed:floor:nitro' })).toBe('fast');
    expect(await servedBy({ model: 'test/speed:nitro:floor' })).toBe('slow');
    expect(await servedBy({ model: 'test/speed:nitro:extended' })).toBe('fast');
    expect(await servedBy({ model: 'test/speed:nitro:exacto' })).toBe('slow');
    // The default order is the request's own sort, when it has one.
    expect(await servedBy({ model: 'test/speed:floor:exacto', provider: { sort: 'throughput' } })).toBe('fast');
  });

  it('provider.sort latency picks the quicker first token', async () => {
    expect(await servedBy({ model: 'test/speed', provider: { sort: 'latency' } })).toBe('fast');
    expect(await servedBy({ model: 'test/speed', provider: { sort: { by: 'throughput', partition: 'none' } } })).toBe('fast');
  });

  it('performance thresholds put the endpoint whose last 5 minutes miss them after the one that meets them', async () => {
    // slow is the cheaper one (chosen by default), 150 ms to its first token and a token every 40 ms.
    expect(await servedBy({ model: 'test/speed' })).toBe('slow');
    expect(await servedBy({ model: 'test/speed', provider: { preferred_max_latency: 0.1 } })).toBe('fast');
    expect(await servedBy({ model: 'test/speed', provider: { preferred_max_latency: { p90: 0.1 } } })).toBe('fast');
    expect(await servedBy({ model: 'test/speed', provider: { preferred_min_throughput: 100 } })).toBe('fast');
    // Deprioritised, not dropped: with only slow allowed, slow still answers.
    expect(await servedBy({ model: 'test/speed', provider: { only: ['slow'], preferred_max_latency: 0.1 } })).toBe('slow');
    // Thresholds both meet leave the price order alone.
    expect(await servedBy({ model: 'test/speed', provider: { preferred_max_latency: 60, preferred_min_throughput: { p50: 1 } } })).toBe('slow');
  });

  it('refuses a performance threshold that is not a number or percentile cutoffs, charging nothing', async () => {
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model: 'test/speed', messages: MESSAGES, provider: { preferred_max_latency: { median: 1 } } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; metadata: { param: string } } };
    expect(body.error.message).toContain('provider.preferred_max_latency must be a non-negative number (seconds to the first token, the p50)');
    // The unknown percentile is named, as an unknown field of provider is.
    expect(body.error.metadata.param).toBe('provider.preferred_max_latency.median');
    expect(await h.settledBalance(user.accountId)).toEqual(before);
  });

  it('the endpoints API shows uptime, latency to first token and throughput percentiles', async () => {
    const res = await fetch(`${h.url}/api/v1/models/test/speed/endpoints`);
    const { data } = (await res.json()) as { data: { id: string; endpoints: any[] } };
    expect(data.id).toBe('test/speed');
    const bySlug = Object.fromEntries(data.endpoints.map((e) => [e.tag, e]));
    expect(bySlug.fast).toMatchObject({ provider_name: 'fast', uptime_last_30m: 100, uptime_last_5m: 100, error_rate_last_30m: 0, pricing: { prompt: '0.0000005' } });
    expect(bySlug.slow.latency_last_30m.p50).toBeGreaterThanOrEqual(150);
    expect(bySlug.fast.latency_last_30m.p50).toBeLessThan(bySlug.slow.latency_last_30m.p50);
    expect(bySlug.fast.throughput_last_30m.p50).toBeGreaterThan(bySlug.slow.throughput_last_30m.p50);
    expect(Object.keys(bySlug.fast.latency_last_30m)).toEqual(['p50', 'p75', 'p90', 'p99']);
  });

  it('GraphQL models sorts by latency and by throughput exactly as REST /api/v1/models does (one query serves both)', async () => {
    for (const [graphql, rest] of [
      ['LATENCY_LOW_TO_HIGH', 'latency-low-to-high'],
      ['THROUGHPUT_HIGH_TO_LOW', 'throughput-high-to-low'],
    ] as const) {
      const listed = (await (await fetch(`${h.url}/api/v1/models?sort=${rest}&output_modalities=all`)).json()) as { data: { id: string }[] };
      // REST lists a model's free endpoints apart (`…:free`); GraphQL lists each model once.
      const restIds = [...new Set(listed.data.map((m) => m.id.replace(/:free$/, '')))];
      const { body } = await h.gql(`{ models(first: 100, sort: ${graphql}) { edges { node { id } } } }`);
      expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
      const graphqlIds = body.data.models.edges.map((e: { node: { id: string } }) => e.node.id);
      expect(graphqlIds[0]).toBe('test/speed');
      expect(graphqlIds).toEqual(restIds);
    }
  });

  it('Endpoint.stats of every endpoint in a GraphQL response is one read of the stats read model', async () => {
    const collection = h.running.core.readStore.collection('providerStats');
    const find = vi.spyOn(collection, 'find');
    try {
      const { body } = await h.gql(`{ models(first: 20) { edges { node { id endpoints { id stats { requests30m uptime30m } } } } } }`);
      expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
      const endpoints = body.data.models.edges.flatMap((e: { node: { endpoints: { id: string; stats: { requests30m: number } }[] } }) => e.node.endpoints);
      expect(endpoints.length).toBeGreaterThan(3);
      expect(endpoints.find((e: { id: string }) => e.id === 'test/speed@fast').stats.requests30m).toBeGreaterThan(0);
      // The routing snapshot's timer reads the whole collection (`{}`) now and then: count only the reads by id.
      const byIds = find.mock.calls.filter(([filter]) => JSON.stringify(filter).includes('$in'));
      expect(byIds).toHaveLength(1);
    } finally {
      find.mockRestore();
    }
  });
});

describe('circuit breaker', () => {
  it('after repeated failures the endpoint goes behind the healthy one, and the endpoints API shows it', async () => {
    expect(await servedBy({ model: 'test/breaker' })).toBe('steady');
    expect(await servedBy({ model: 'test/breaker' })).toBe('steady');
    const flakyCalls = flaky.requests.length;
    expect(await servedBy({ model: 'test/breaker' })).toBe('steady');
    expect(flaky.requests.length).toBe(flakyCalls);
    await h.running.core.gateway.idle();
    const { data } = (await (await fetch(`${h.url}/api/v1/models/test/breaker/endpoints`)).json()) as { data: { endpoints: any[] } };
    const flakyEndpoint = data.endpoints.find((e) => e.tag === 'flaky');
    expect(flakyEndpoint).toMatchObject({ circuit_breaker: 'open', uptime_last_5m: 0, error_rate_last_30m: 1 });
  });
});

describe('retries on a lone endpoint', () => {
  it('honours Retry-After before retrying', async () => {
    solo.script({ status: 429, headers: { 'retry-after': '1' } });
    const calls = solo.requests.length;
    const started = Date.now();
    expect(await servedBy({ model: 'test/solo' })).toBe('solo');
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(solo.requests.length).toBe(calls + 2);
  });

  it('does not wait out a Retry-After longer than the limit: the 429 and its Retry-After reach the client', async () => {
    solo.script({ status: 429, headers: { 'retry-after': '120' } });
    const res = await h.chat(user.key, { model: 'test/solo', messages: MESSAGES });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('120');
    const { error } = (await res.json()) as { error: { metadata: Record<string, unknown> } };
    expect(error.metadata).toMatchObject({ error_type: 'rate_limit_exceeded', provider_name: 'solo', provider_status: 429 });
  });
});

describe('keep-alive', () => {
  it('sends SSE comments while the first token is slow to come, then the answer', async () => {
    solo.script({ latencyMs: 400 });
    const res = await h.chat(user.key, { model: 'test/solo', messages: MESSAGES, stream: true });
    const { comments, done, text } = await readSseResponse(res);
    expect(comments).toContain('OPENROUTER PROCESSING');
    expect(text.indexOf(': OPENROUTER PROCESSING')).toBeLessThan(text.indexOf('data: '));
    expect(done).toBe(true);
  });
});

describe('GET /api/v1/models filters, sorts and pages', () => {
  it('supported_parameters, sort and paging (total_count and links on every answer)', async () => {
    const all = (await (await fetch(`${h.url}/api/v1/models?sort=pricing-low-to-high`)).json()) as { data: { id: string; pricing: { prompt: string; completion: string } }[]; total_count: number };
    // By the cheapest endpoint that can serve (prompt + completion): test/breaker's open `flaky` is not it.
    const prices = all.data.map((m) => Number(m.pricing.prompt) + Number(m.pricing.completion));
    expect(prices).toEqual([...prices].sort((a, b) => a - b));
    expect(all.data.find((m) => m.id === 'test/breaker')?.pricing.prompt).toBe('0.0000002');
    expect(all).toMatchObject({ total_count: all.data.length, links: { next: null } });
    const tools = (await (await fetch(`${h.url}/api/v1/models?supported_parameters=tools`)).json()) as { data: { id: string; supported_parameters: string[] }[] };
    expect(tools.data.length).toBeGreaterThan(0);
    expect(tools.data.every((m) => m.supported_parameters.includes('tools'))).toBe(true);
    expect(tools.data.map((m) => m.id)).not.toContain('switchyard/demo');
    // OpenRouter's older name for reasoning finds the same models as `reasoning` (QA s41 parity #4: it found none).
    const ids = async (parameter: string) => ((await (await fetch(`${h.url}/api/v1/models?supported_parameters=${parameter}`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    const reasoning = await ids('reasoning');
    expect(reasoning.length).toBeGreaterThan(0);
    expect(await ids('include_reasoning')).toEqual(reasoning);
    type Page = { data: { id: string }[]; total_count: number; links: { next: string | null } };
    const page = (await (await fetch(`${h.url}/api/v1/models?sort=pricing-low-to-high&limit=2&offset=1`)).json()) as Page;
    expect(page.data.map((m) => m.id)).toEqual(all.data.slice(1, 3).map((m) => m.id));
    expect(page.total_count).toBe(all.data.length);
    // The next page keeps the query's sort (and filters).
    expect(page.links.next).toBe('/api/v1/models?sort=pricing-low-to-high&limit=2&offset=3');
    const second = (await (await fetch(`${h.url}${page.links.next}`)).json()) as Page;
    expect(second.data.map((m) => m.id)).toEqual(all.data.slice(3, 5).map((m) => m.id));
  });

  it("each model has OpenRouter's pricing.overrides (none) and a reasoning object from its endpoints' protocols", async () => {
    const { data } = (await (await fetch(`${h.url}/api/v1/models`)).json()) as { data: { id: string; pricing: { overrides: unknown[] }; reasoning: unknown }[] };
    const byId = new Map(data.map((m) => [m.id, m]));
    expect(data.every((m) => Array.isArray(m.pricing.overrides) && m.pricing.overrides.length === 0)).toBe(true);
    // OpenAI-protocol endpoints send every effort (as reasoning_effort) and no reasoning budget.
    expect(byId.get('test/speed')!.reasoning).toEqual({
      supported_efforts: ['max', 'xhigh', 'high', 'medium', 'low', 'minimal', 'none'],
      default_effort: null,
      default_enabled: false,
      supports_max_tokens: false,
      mandatory: false,
    });
    // Anthropic and Gemini both take a budget; of the efforts only none holds on both (Gemini has no effort levels).
    expect(byId.get('test/breaker')!.reasoning).toMatchObject({ supported_efforts: ['none'], supports_max_tokens: true });
    // The demo model takes no reasoning parameter.
    expect(byId.get('switchyard/demo')!.reasoning).toBeNull();
    const one = (await (await fetch(`${h.url}/api/v1/model/test/speed`)).json()) as { data: { reasoning: unknown; pricing: { overrides: unknown[] } } };
    expect(one.data).toMatchObject({ reasoning: byId.get('test/speed')!.reasoning, pricing: { overrides: [] } });
  });

  it('GET /api/v1/models/count counts what the same filters list', async () => {
    const count = async (query: string) => (await (await fetch(`${h.url}/api/v1/models/count${query}`)).json()) as { data: { count: number } };
    const list = async (query: string) => ((await (await fetch(`${h.url}/api/v1/models${query}`)).json()) as { data: unknown[] }).data.length;
    expect((await count('')).data.count).toBe(await list(''));
    const tools = (await count('?supported_parameters=tools')).data.count;
    expect(tools).toBe(await list('?supported_parameters=tools'));
    expect(tools).toBeLessThan((await count('')).data.count);
    expect((await count('?output_modalities=all')).data.count).toBe(await list('?output_modalities=all'));
  });

  it('use_rss=true serves the same (filtered) list as an RSS 2.0 feed, newest first', async () => {
    const json = (await (await fetch(`${h.url}/api/v1/models?supported_parameters=tools`)).json()) as { data: { id: string; name: string; created: number }[] };
    const res = await fetch(`${h.url}/api/v1/models?supported_parameters=tools&use_rss=true`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/rss+xml; charset=utf-8');
    const xml = await res.text();
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<rss version="2.0">/);
    const guids = [...xml.matchAll(/<guid isPermaLink="false">([^<]+)<\/guid>/g)].map((m) => m[1]!);
    expect([...guids].sort()).toEqual(json.data.map((m) => m.id).sort());
    const byId = new Map(json.data.map((m) => [m.id, m]));
    const created = guids.map((id) => byId.get(id)!.created);
    expect(created).toEqual([...created].sort((a, b) => b - a));
    const host = new URL(h.url).host;
    expect(xml).toContain(`<link>http://${host}/api/v1/model/${guids[0]}</link>`);
    expect(xml).not.toContain('switchyard/demo');
    const titles = [...xml.matchAll(/<title>([^<]+)<\/title>/g)].map((m) => m[1]);
    expect(titles.slice(1)).toEqual(guids.map((id) => byId.get(id)!.name.replaceAll('&', '&amp;')));
  });
});

describe('sticky routing (session_id, x-session-id, prompt_cache_key, else the first messages)', () => {
  let warmB: FakeProvider;
  /** A call that read part of its prompt from the provider's cache: what pins a conversation. */
  const CACHED = { promptTokens: 10, completionTokens: 10, cachedTokens: 5 };
  beforeAll(async () => {
    // Both cache reads cost less than prompt tokens, so conversations stick; warm-a is the cheaper.
    const warmA = await h.fakeEndpoint({ protocol: 'openai', slug: 'warm-a', model: 'test/sticky', prices: { prompt: 100, completion: 100, cacheRead: 10 } });
    warmB = await h.fakeEndpoint({ protocol: 'openai', slug: 'warm-b', model: 'test/sticky', prices: { prompt: 200, completion: 200, cacheRead: 20 } });
    warmA.setDefault({ usage: CACHED });
    warmB.setDefault({ usage: CACHED });
  });
  const sticky = (body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    h.chat(user.key, { model: 'test/sticky', messages: MESSAGES, ...body }, headers).then(async (res) => {
      expect(res.status).toBe(200);
      return ((await res.json()) as { provider: string }).provider;
    });

  it('a conversation served by one provider keeps going there, even when another is cheaper', async () => {
    expect(await sticky({ session_id: 'conv-1', provider: { ignore: ['warm-a'] } })).toBe('warm-b');
    expect(await sticky({ session_id: 'conv-1' })).toBe('warm-b');
    expect(await sticky({ session_id: 'conv-2' })).toBe('warm-a'); // another conversation: the cheapest
    expect(await sticky({}, { 'x-session-id': 'conv-1' })).toBe('warm-b'); // the header names the same session
    expect(await sticky({ prompt_cache_key: 'conv-1' })).toBe('warm-a'); // a cache key is another namespace
    // A provider order wins over stickiness.
    expect(await sticky({ session_id: 'conv-1', provider: { order: ['warm-a'] } })).toBe('warm-a');
    expect(await sticky({ session_id: 'conv-1' })).toBe('warm-b');
  });

  it('pins only after a call that used the cache: one that read and wrote nothing leaves the conversation unpinned', async () => {
    warmB.script({ usage: { promptTokens: 10, completionTokens: 10, cachedTokens: 0 } });
    expect(await sticky({ session_id: 'conv-uncached', provider: { ignore: ['warm-a'] } })).toBe('warm-b');
    expect(await sticky({ session_id: 'conv-uncached' })).toBe('warm-a');
  });

  it('an order the request asks for (provider.sort, :floor) wins over a pin, and does not move it', async () => {
    expect(await sticky({ session_id: 'conv-sorted', provider: { ignore: ['warm-a'] } })).toBe('warm-b');
    expect(await sticky({ session_id: 'conv-sorted', provider: { sort: 'price' } })).toBe('warm-a');
    expect(await sticky({ session_id: 'conv-sorted', model: 'test/sticky:floor' })).toBe('warm-a');
    expect(await sticky({ session_id: 'conv-sorted' })).toBe('warm-b');
  });

  it('without a session id, the first system and first user message identify the conversation', async () => {
    const opening = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Plan a trip' },
    ];
    expect(await sticky({ messages: opening, provider: { ignore: ['warm-a'] } })).toBe('warm-b');
    const later = [...opening, { role: 'assistant', content: 'Where to?' }, { role: 'user', content: 'Lisbon' }];
    expect(await sticky({ messages: later })).toBe('warm-b');
    expect(await sticky({ messages: [{ role: 'system', content: 'You are verbose.' }, ...later.slice(1)] })).toBe('warm-a');
  });

  it('does not stick where cache reads are not cheaper, and refuses a malformed session id', async () => {
    expect(await servedBy({ model: 'test/speed', session_id: 'conv-3', provider: { ignore: ['slow'] } })).toBe('fast');
    expect(await servedBy({ model: 'test/speed', session_id: 'conv-3' })).toBe('slow');
    for (const [body, param] of [
      [{ session_id: 'x'.repeat(257) }, 'session_id'],
      [{ session_id: 42 }, 'session_id'],
      [{ prompt_cache_key: ['a'] }, 'prompt_cache_key'],
    ] as const) {
      const res = await h.chat(user.key, { model: 'test/sticky', messages: MESSAGES, ...body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { metadata: { param: string } } }).error.metadata.param).toBe(param);
    }
    const res = await h.chat(user.key, { model: 'test/sticky', messages: MESSAGES }, { 'x-session-id': 'y'.repeat(257) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { metadata: { param: string } } }).error.metadata.param).toBe('x-session-id');
  });
});

describe('data policy', () => {
  const SET_POLICY = `mutation ($provider: String!, $policy: DataPolicy) {
    setProviderDataPolicy(provider: $provider, dataPolicy: $policy) { ... on Provider { slug dataPolicy } ... on DomainError { code message } } }`;
  const setPolicy = async (provider: string, policy: string | null, key?: string) => (await h.gql(SET_POLICY, { provider, policy }, key)).body;
  const policies = async () =>
    Object.fromEntries(((await h.gql('{ providers { slug dataPolicy } }', {})).body.data.providers as { slug: string; dataPolicy: string | null }[]).map((p) => [p.slug, p.dataPolicy]));

  beforeAll(async () => {
    await h.fakeEndpoint({ protocol: 'openai', slug: 'keeper', model: 'test/private', prices: { prompt: 100, completion: 100 } });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'forgetter', model: 'test/private', prices: { prompt: 300, completion: 300 } });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'discreet', model: 'test/private', prices: { prompt: 200, completion: 200 } });
    for (const fake of h.fakes.slice(-3)) fake.setDefault({ usage: USAGE });
    expect(await setPolicy('forgetter', 'ZERO_RETENTION')).toEqual({ data: { setProviderDataPolicy: { slug: 'forgetter', dataPolicy: 'ZERO_RETENTION' } } });
    expect(await setPolicy('discreet', 'NO_COLLECTION')).toEqual({ data: { setProviderDataPolicy: { slug: 'discreet', dataPolicy: 'NO_COLLECTION' } } });
  });

  it('is stated by an admin only, and shown on the provider', async () => {
    const owner = await h.openAccount({ roles: ['provider'] });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'boaster', model: 'boaster/own', prices: { prompt: 100, completion: 100 }, owner: owner.key });
    const refused = await setPolicy('boaster', 'ZERO_RETENTION', owner.key);
    expect(JSON.stringify(refused)).toMatch(/FORBIDDEN|Not authorized/);
    // Without a key, and as a plain user: refused too, and nothing changes.
    const anonymous = await fetch(`${h.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: SET_POLICY, variables: { provider: 'keeper', policy: 'ZERO_RETENTION' } }) });
    expect(JSON.stringify(await anonymous.json())).toMatch(/UNAUTHENTICATED/);
    expect(JSON.stringify(await setPolicy('keeper', 'ZERO_RETENTION', user.key))).toMatch(/FORBIDDEN|Not authorized/);
    // The seed states the built-in demo provider's (it answers in process and keeps nothing), and no other.
    expect(await policies()).toMatchObject({ keeper: null, forgetter: 'ZERO_RETENTION', discreet: 'NO_COLLECTION', boaster: null, switchyard: 'ZERO_RETENTION', openai: null });
    expect(await servedBy({ model: 'switchyard/demo', provider: { zdr: true } })).toBe('Switchyard Demo');
    expect((await setPolicy('no-such-provider', 'COLLECTS')).data.setProviderDataPolicy).toMatchObject({ code: 'NOT_FOUND' });
    const listed = (await (await fetch(`${h.url}/api/v1/providers`)).json()) as { data: { slug: string; data_policy: string | null }[] };
    expect(Object.fromEntries(listed.data.map((p) => [p.slug, p.data_policy]))).toMatchObject({ keeper: null, forgetter: 'zero_retention', discreet: 'no_collection', boaster: null });
    const endpoints = (await (await fetch(`${h.url}/api/v1/models/test/private/endpoints`)).json()) as { data: { endpoints: { tag: string; data_policy: string | null }[] } };
    expect(Object.fromEntries(endpoints.data.endpoints.map((e) => [e.tag, e.data_policy]))).toEqual({ keeper: null, forgetter: 'zero_retention', discreet: 'no_collection' });
    const zdr = (await (await fetch(`${h.url}/api/v1/endpoints/zdr`)).json()) as { data: { name: string; tag: string; model_id: string; data_policy: string }[] };
    expect(zdr.data.map((e) => [e.model_id, e.tag, e.data_policy])).toEqual([
      ['switchyard/demo', 'switchyard', 'zero_retention'],
      ['switchyard/demo-embed', 'switchyard', 'zero_retention'],
      ['switchyard/demo-paid', 'switchyard', 'zero_retention'],
      ['test/private', 'forgetter', 'zero_retention'],
    ]);
    expect(zdr.data.at(-1)!.name).toBe('forgetter | test/private');
  });

  it('routes a request that asks for one only to providers that meet it, non-streamed and streamed', async () => {
    expect(await servedBy({ model: 'test/private' })).toBe('keeper');
    expect(await servedBy({ model: 'test/private', provider: { data_collection: 'deny' } })).toBe('discreet');
    expect(await servedBy({ model: 'test/private', provider: { zdr: true } })).toBe('forgetter');
    expect(await servedBy({ model: 'test/private', stream: true, provider: { zdr: true, order: ['keeper'] } })).toBe('forgetter');
  });

  it('answers 404 and charges nothing when no provider meets it', async () => {
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model: 'test/solo', messages: MESSAGES, provider: { data_collection: 'deny' } });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { message: string; metadata: { error_type: string } } };
    expect(body.error.message).toBe(`No endpoints of test/solo meet your data policy (data_collection "deny": providers that neither store nor train on your data) as an admin stated the providers': solo (unstated)`);
    expect(body.error.metadata.error_type).toBe('not_found');
    const distillable = await h.chat(user.key, { model: 'test/private', messages: MESSAGES, provider: { enforce_distillable_text: true } });
    expect(distillable.status).toBe(400);
    expect((await h.settledBalance(user.accountId)).available).toBe(before.available);
  });

  it('stops routing there once an admin withdraws the policy', async () => {
    expect(await setPolicy('forgetter', null)).toEqual({ data: { setProviderDataPolicy: { slug: 'forgetter', dataPolicy: null } } });
    const zdr = (await (await fetch(`${h.url}/api/v1/endpoints/zdr`)).json()) as { data: { tag: string }[] };
    expect(zdr.data.map((e) => e.tag)).not.toContain('forgetter');
    const res = await h.chat(user.key, { model: 'test/private', messages: MESSAGES, provider: { zdr: true } });
    expect(res.status).toBe(404);
    expect(await servedBy({ model: 'test/private', provider: { data_collection: 'deny' } })).toBe('discreet');
  });
});
