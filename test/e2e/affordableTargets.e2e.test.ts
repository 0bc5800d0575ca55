/**
 * A budget that pays for some of a route's endpoints: the call goes to those (in the route's order), whichever came
 * first (provider.order here; the load balancing's draw in loadBalancing.e2e), and is refused with a 402 only when
 * none is affordable, that 402 naming what the best of them affords. Over real HTTP against fake upstreams.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promptBound, startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'hi' }];
const CHEAP = { prompt: 100, completion: 200 };
const DEAR = { prompt: 800, completion: 1600 };
/** Pays for 1,000 output tokens on the cheap endpoint (~201,000 n$), not on the dear one (~1,608,000 n$). */
const CREDITS = 300_000;

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness();
  await h.fakeEndpoint({ protocol: 'openai', slug: 'aff-cheap', model: 'aff/model', prices: CHEAP, maxOutput: 4_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'aff-dear', model: 'aff/model', prices: DEAR, maxOutput: 4_000 });
});
afterAll(async () => {
  await h.stop();
});

describe('a budget that pays for some endpoints of the route', () => {
  it('is served by an affordable endpoint when the one put first is not, with an explicit max_tokens', async () => {
    const user = await h.openAccount({ credits: CREDITS });
    const res = await h.chat(user.key, { model: 'aff/model', max_tokens: 1000, messages: MESSAGES, provider: { order: ['aff-dear'] } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { provider: string }).provider).toBe('aff-cheap');
  });

  it('is a 402 only when no endpoint is affordable, naming what the best one affords whichever is put first', async () => {
    const affordable = Math.floor((CREDITS - promptBound(MESSAGES) * CHEAP.prompt) / CHEAP.completion);
    for (const order of [['aff-dear'], ['aff-cheap']]) {
      const user = await h.openAccount({ credits: CREDITS });
      const res = await h.chat(user.key, { model: 'aff/model', max_tokens: 2000, messages: MESSAGES, provider: { order } });
      expect(res.status).toBe(402);
      const { error } = (await res.json()) as { error: { message: string; metadata: { affordable_tokens: number; requested_tokens: number } } };
      expect(error.metadata).toMatchObject({ requested_tokens: 2000, affordable_tokens: affordable });
      expect(error.message).toContain(`can only afford ${affordable}`);
      expect((await h.settledBalance(user.accountId)).available).toBe(CREDITS);
    }
  });
});
