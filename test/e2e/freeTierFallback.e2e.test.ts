/**
 * The free tier's request limits bar a call's free targets, not the call: once they are reached, `models:
 * ["x:free", "x"]` is served (and charged) by the paid model, while the free variant alone is a 429. Over real HTTP
 * against fake upstreams, with a free plan of 2 requests a minute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { costOf, startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'hi' }];
const PAID = { prompt: 100, completion: 200 };
const USAGE = { promptTokens: 10, completionTokens: 5 };
const PLANS = { free: { freeRequestsPerMinute: 2, freeRequestsPerDay: 50, freeRequestsPerDayAfterPurchase: 1000, purchaseThreshold: 10_000_000_000 } };

let h: GatewayHarness;
let free: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness({ PLANS: JSON.stringify(PLANS) });
  free = await h.fakeEndpoint({ protocol: 'openai', slug: 'ftf-free', model: 'ftf/model', prices: { prompt: 0, completion: 0 }, variants: ['free'] });
  const paid = await h.fakeEndpoint({ protocol: 'openai', slug: 'ftf-paid', model: 'ftf/model', prices: PAID });
  free.setDefault({ usage: USAGE });
  paid.setDefault({ usage: USAGE });
});
afterAll(async () => {
  await h.stop();
});

describe('free tier limits with a paid fallback', () => {
  it('serves models ["x:free", "x"] with the paid model once the free limit is reached, charged as a paid call', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    for (let i = 0; i < 2; i++) {
      const res = await h.chat(user.key, { models: ['ftf/model:free', 'ftf/model'], messages: MESSAGES });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { model: string }).model).toBe('ftf/model:free');
    }
    const before = (await h.settledBalance(user.accountId)).available;
    const res = await h.chat(user.key, { models: ['ftf/model:free', 'ftf/model'], messages: MESSAGES });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string; provider: string })).toMatchObject({ model: 'ftf/model', provider: 'ftf-paid' });
    expect(before - (await h.settledBalance(user.accountId)).available).toBe(costOf(PAID, USAGE.promptTokens, USAGE.completionTokens));
    // The free variant alone is still refused: the limit holds for free targets.
    const alone = await h.chat(user.key, { model: 'ftf/model:free', messages: MESSAGES });
    expect(alone.status).toBe(429);
    expect(((await alone.json()) as { error: { message: string } }).error.message).toContain('free-models-per-min');
  });

  it('counts a free call its upstream failed (it was a request made): the limit is reached as soon', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    free.script({ status: 500 });
    free.script({ status: 500 });
    const failed = await h.chat(user.key, { model: 'ftf/model:free', messages: MESSAGES });
    expect(failed.status).toBe(502);
    expect((await h.chat(user.key, { model: 'ftf/model:free', messages: MESSAGES })).status).toBe(200);
    expect((await h.chat(user.key, { model: 'ftf/model:free', messages: MESSAGES })).status).toBe(429);
  });
});
