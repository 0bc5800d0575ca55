/**
 * With EVENTSTORE_SYNC=full, a reservation's fsync may wait for the calls made meanwhile once its endpoint's usual
 * time to first token is known (the gateway's reservationSyncWithin), and an answer that comes before its
 * reservation is durable hurries the store. Over real HTTP against a fake upstream; what the gateway asks of the
 * event store is seen through the test seam `eventStoreWrapper` (test/support/reservationSyncProbe.ts); the store's
 * side of it (nothing acknowledged before its fsync, the deadline, the hurry) is in the event store's contract tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import { reservationSyncLog } from '../support/reservationSyncProbe.js';

const BODY = { model: 'sync/slow', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 };
const PROBE = new URL('../support/reservationSyncProbe.ts', import.meta.url).href;

let h: GatewayHarness;
let user: Account;
let fake: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness({ EVENTSTORE_SYNC: 'full' }, { eventStoreWrapper: PROBE });
  user = await h.openAccount({ credits: 50_000_000_000 });
  fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'sync-slow', model: 'sync/slow', prices: { prompt: 100, completion: 100 } });
  // Its answers take 80 ms: once that is known, a reservation's durability may wait 25 ms (three quarters, at most 25).
  fake.setDefault({ latencyMs: 80 });
});
afterAll(async () => {
  await h.stop();
});

const call = async () => {
  const res = await h.chat(user.key, BODY);
  expect(res.status).toBe(200);
  expect(((await res.json()) as { choices: unknown[] }).choices).toHaveLength(1);
};

describe('a reservation whose provider takes a while (EVENTSTORE_SYNC=full)', () => {
  it('lets its fsync wait only once the endpoint’s time to first token is known, and an answer that comes sooner hurries it; every call is charged', async () => {
    const log = reservationSyncLog(h.dataDir);
    // Nothing known yet: the first reservation's fsync waits for nothing.
    await call();
    expect(log.reservations[0]).toBe(0);
    // The stats snapshot learns the endpoint's time to first token (its refresh runs every few seconds).
    await expect.poll(async () => {
      await call();
      return log.reservations.at(-1);
    }, { timeout: 30_000, interval: 100 }).toBe(25);
    // An answer at once, long before the 25 ms: delivery finds the reservation not yet durable and hurries the store.
    await expect.poll(async () => {
      const before = log.hurries;
      fake.script({ latencyMs: 0 });
      await call();
      return log.hurries > before;
    }, { timeout: 15_000 }).toBe(true);
    const balance = await h.settledBalance(user.accountId);
    expect(balance.reserved).toBe(0);
    expect((await h.generation(user.key, (await (await h.chat(user.key, BODY)).json()).id)).id).toBeDefined();
  });
});
