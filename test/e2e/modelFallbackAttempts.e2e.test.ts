/**
 * `models` fallbacks and GATEWAY_MAX_ATTEMPTS: the cap holds per requested model, so a primary whose endpoints all
 * fail (and are retried) cannot use up the attempts its fallback models need; the total stays bounded by the cap times
 * the models asked for. Over real HTTP against fake upstreams.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'hi' }];

let h: GatewayHarness;
let user: Account;
const failing: FakeProvider[] = [];
let small: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness({ GATEWAY_MAX_ATTEMPTS: '5' });
  user = await h.openAccount({ credits: 10_000_000_000 });
  // mfa/second on two providers, mfa/first on three: five endpoints, every one answering 500.
  for (const [slug, model, prompt] of [
    ['mfa-a', 'mfa/second', 100],
    ['mfa-b', 'mfa/second', 200],
    ['mfa-c', 'mfa/first', 100],
    ['mfa-d', 'mfa/first', 200],
    ['mfa-e', 'mfa/first', 300],
  ] as const) {
    const fake = await h.fakeEndpoint({ protocol: 'openai', slug, model, prices: { prompt, completion: prompt } });
    fake.setDefault({ status: 500 });
    failing.push(fake);
  }
  small = await h.fakeEndpoint({ protocol: 'openai', slug: 'mfa-small', model: 'mfa/small', prices: { prompt: 50, completion: 50 } });
});
afterAll(async () => {
  await h.stop();
});

const calls = (fakes: readonly FakeProvider[]) => fakes.reduce((n, f) => n + f.requests.length, 0);

describe('models fallbacks under GATEWAY_MAX_ATTEMPTS', () => {
  it('reaches a healthy last model after the earlier models used five attempts between them', async () => {
    const before = calls(failing);
    const res = await h.chat(user.key, { models: ['mfa/second', 'mfa/first', 'mfa/small'], messages: MESSAGES, provider: { sort: 'price' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string; provider: string })).toMatchObject({ model: 'mfa/small', provider: 'mfa-small' });
    // Every endpoint of the earlier models was asked before the fallback model served.
    expect(calls(failing) - before).toBeGreaterThanOrEqual(5);
    for (const fake of failing) expect(fake.requests.length).toBeGreaterThanOrEqual(1);
  });

  it('bounds the attempts per model (retries included) and answers with the last model’s error when all fail', async () => {
    small.script({ status: 500 });
    small.script({ status: 500 });
    const before = calls([...failing, small]);
    const res = await h.chat(user.key, { models: ['mfa/second', 'mfa/first', 'mfa/small'], messages: MESSAGES, provider: { sort: 'price' } });
    expect(res.status).toBe(502);
    const { error } = (await res.json()) as { error: { message: string; metadata: { model?: string } } };
    expect(error.message).toContain('mfa/small');
    // mfa/second: 2 endpoints × 2 tries = 4; mfa/first: 3 endpoints × 2 tries capped at 5; mfa/small: 1 × 2 = 2.
    expect(calls([...failing, small]) - before).toBe(11);
  });
});
