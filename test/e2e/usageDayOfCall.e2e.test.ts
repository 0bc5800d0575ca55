import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const USD = 1_000_000_000;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
type Json = any;

/**
 * One rule for the day of a call: the day it started (its reservation, which the key's limit windows count from, and
 * its generation's created_at), also in `usage` per day and `/api/v1/activity`, however late it settles. The app's
 * clock is injected and moved past midnight while the call streams, so nothing depends on the wall clock.
 */
describe('a call that spans midnight (UTC)', () => {
  let h: GatewayHarness;
  let clock = Date.parse('2028-11-30T23:59:58.000Z');
  let user: Account;
  let manager: string;
  let fake: FakeProvider;

  const call = async (path: string, bearer: string): Promise<Json> =>
    ((await (await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } })).json()) as Json).data;

  beforeAll(async () => {
    h = await startGatewayHarness({}, { now: () => new Date(clock) });
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'night', model: 'test/night', prices: { prompt: 1000, completion: 2000 } });
    user = await h.openAccount({ credits: USD });
    manager = (await h.gqlOk('mutation { createApiKey(name: "mgmt", kind: MANAGEMENT) { ... on CreatedApiKey { secret } } }', {}, user.key)).createApiKey.secret;
  });
  afterAll(() => h.stop());

  it('counts it on the day it started in usage per day, activity and the key windows, where its created_at is', async () => {
    // Streams its first tokens on Nov 30, then holds the call open (empty deltas) until the client goes away.
    fake.script({ emptyDeltasAfter: 2 });
    const res = await h.chat(user.key, { model: 'test/night', messages: [{ role: 'user', content: 'hello there' }], stream: true }, {});
    expect(res.status).toBe(200);
    const id = res.headers.get('x-generation-id')!;
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"content":"')) text += new TextDecoder().decode((await reader.read()).value);
    // It ends, and settles, on Dec 1: the client goes away.
    clock = Date.parse('2028-12-01T00:00:05.000Z');
    await reader.cancel();
    await h.settledBalance(user.accountId);

    const generation = await h.generation(user.key, id);
    expect(generation.created_at.slice(0, 10)).toBe('2028-11-30');
    const cost = generation.switchyard.cost_nanodollars;
    expect(cost).toBeGreaterThan(0);

    await expect.poll(async () => (await h.gqlOk('query { usage(groupBy: KEY, perDay: true) { day requests cost } }', {}, user.key)).usage, { timeout: 10_000 }).toEqual([{ day: '2028-11-30', requests: 1, cost }]);
    // December's limit windows never counted it, nor does December's report.
    expect(await call('/api/v1/key', user.key)).toMatchObject({ usage_daily_nanos: 0, usage_monthly_nanos: 0 });
    expect((await h.gqlOk('query { usage(groupBy: KEY, perDay: true, from: "2028-12-01") { day } }', {}, user.key)).usage).toEqual([]);
    expect(await call('/api/v1/activity', manager)).toEqual([expect.objectContaining({ date: '2028-11-30', model: 'test/night', requests: 1, usage_nanos: cost })]);

    // Back on Nov 30, the key's windows hold it, as that day's and that month's report do.
    clock = Date.parse('2028-11-30T23:59:59.000Z');
    expect(await call('/api/v1/key', user.key)).toMatchObject({ usage_daily_nanos: cost, usage_monthly_nanos: cost });
  });
});
