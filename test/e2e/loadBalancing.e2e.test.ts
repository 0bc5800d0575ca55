/**
 * OpenRouter's default load balancing, over real HTTP against fake upstreams: with no sort and no provider order, the
 * endpoint tried first is drawn among the healthy ones with probability weighted by 1/price², the others follow as
 * fallbacks; a sort (`provider.sort`, `:floor`, `:nitro`) or `provider.order` turns it off; an endpoint whose breaker is
 * open is never drawn first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user' as const, content: 'hi' }];

let h: GatewayHarness;
let user: Account;
/** The cheaper endpoint's upstream. */
let cheap: FakeProvider;

/** Which provider answered each of `n` calls, counted. */
const servedBy = async (n: number, body: Record<string, unknown>): Promise<Record<string, number>> => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await h.chat(user.key, { messages: MESSAGES, ...body });
    expect(res.status).toBe(200);
    const { provider } = (await res.json()) as { provider: string };
    counts[provider] = (counts[provider] ?? 0) + 1;
  }
  return counts;
};

beforeAll(async () => {
  // The shipped default (the test harness turns it off); one failure opens a breaker (for the last test), for a minute.
  h = await startGatewayHarness({ ROUTING_LOAD_BALANCING: 'price', GATEWAY_BREAKER_FAILURES: '1', GATEWAY_BREAKER_COOLDOWN_MS: '60000' });
  user = await h.openAccount({ credits: 50_000_000_000 });
  // 200 and 400 nano-dollars a token (prompt + completion): weights 1/200² and 1/400², 4 to 1.
  cheap = await h.fakeEndpoint({ protocol: 'openai', slug: 'lb-cheap', model: 'lb/model', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'lb-dear', model: 'lb/model', prices: { prompt: 200, completion: 200 } });
});
afterAll(async () => {
  await h.stop();
});

describe('default load balancing', () => {
  it('sends most calls to the cheaper endpoint and some to the dearer, about 4 to 1 (1/price²)', async () => {
    const counts = await servedBy(200, { model: 'lb/model' });
    // Expected 160 / 40 (standard deviation ~5.7): the bounds are more than four deviations away.
    expect(counts['lb-dear']).toBeGreaterThanOrEqual(15);
    expect(counts['lb-dear']).toBeLessThanOrEqual(70);
    expect(counts['lb-cheap']! + counts['lb-dear']!).toBe(200);
  });

  it('is off with a sort or a provider order: the cheapest (or the named) endpoint first, every time', async () => {
    expect(await servedBy(30, { model: 'lb/model', provider: { sort: 'price' } })).toEqual({ 'lb-cheap': 30 });
    expect(await servedBy(30, { model: 'lb/model:floor' })).toEqual({ 'lb-cheap': 30 });
    expect(await servedBy(30, { model: 'lb/model', provider: { order: ['lb-dear'] } })).toEqual({ 'lb-dear': 30 });
  });

  it('never answers 402 when the draw puts first an endpoint the budget cannot cover and the other is affordable', async () => {
    // 1,000 output tokens: ~100,500 n$ on lb-cheap, ~201,000 on lb-dear; 40 calls leave well over 100,500.
    const poor = await h.openAccount({ credits: 180_000 });
    const statuses: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const res = await h.chat(poor.key, { model: 'lb/model', max_tokens: 1000, messages: MESSAGES });
      const key = res.status === 200 ? ((await res.json()) as { provider: string }).provider : String(res.status);
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
    expect(statuses).toEqual({ 'lb-cheap': 40 });
  });

  it('never draws an endpoint whose breaker is open: the other serves first, the open one stays a fallback', async () => {
    // The cheaper endpoint fails once (its breaker opens); the call falls back to the dearer one.
    cheap.script({ status: 503 });
    const first = await h.chat(user.key, { model: 'lb/model', messages: MESSAGES, provider: { sort: 'price' } });
    expect(first.status).toBe(200);
    expect(((await first.json()) as { provider: string }).provider).toBe('lb-dear');
    const before = cheap.requests.length;
    expect(await servedBy(30, { model: 'lb/model' })).toEqual({ 'lb-dear': 30 });
    expect(cheap.requests.length).toBe(before);
  });
});
