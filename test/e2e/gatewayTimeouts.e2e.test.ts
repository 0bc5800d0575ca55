/** The request deadline and the idle timeout between streamed chunks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { contentOf, costOf, promptEstimate, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];
const PRICES = { prompt: 100, completion: 100 };

let h: GatewayHarness;
let user: Account;
let fake: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness({ GATEWAY_REQUEST_TIMEOUT_MS: '1000', GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '5000', GATEWAY_STREAM_IDLE_TIMEOUT_MS: '200' });
  user = await h.openAccount({ credits: 1_000_000_000 });
  fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'sleepy', model: 'test/sleepy', prices: PRICES });
});
afterAll(async () => {
  await h.stop();
});

describe('timeouts', () => {
  it('the request deadline ends a call that never answers: 504 timeout, upstream aborted, nothing charged', async () => {
    fake.script({ hang: true });
    const res = await h.chat(user.key, { model: 'test/sleepy', messages: MESSAGES });
    expect(res.status).toBe(504);
    const { error } = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
    expect(error.metadata).toMatchObject({ error_type: 'timeout', provider_name: 'sleepy' });
    expect(error.message).toContain('sleepy timed out');
    // One attempt: the deadline covers every attempt, so there is no time left for a retry.
    expect(await fake.requests.at(-1)!.outcome).toBe('aborted');
    expect(await h.settledBalance(user.accountId)).toMatchObject({ settled: 0, reserved: 0 });
  });

  it('a stream that stalls after its first tokens ends with a timeout error chunk and is charged for what came', async () => {
    fake.script({ slowTokenMs: 600 });
    const res = await h.chat(user.key, { model: 'test/sleepy', messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    const { events, done } = await readSseResponse(res);
    const text = contentOf(events);
    expect(text).toBe('Echo: ');
    expect(done).toBe(false);
    expect(events.at(-1).error.metadata.error_type).toBe('timeout');
    const balance = await h.settledBalance(user.accountId);
    expect(balance.settled).toBe(costOf(PRICES, promptEstimate(MESSAGES), Math.ceil(text.length / 4)));
    expect(balance.reserved).toBe(0);
  });

  it('empty deltas sent as a heartbeat do not keep a stalled stream alive: the idle timeout ends it, not the deadline', async () => {
    fake.script({ emptyDeltasAfter: 3 });
    const res = await h.chat(user.key, { model: 'test/sleepy', messages: MESSAGES, stream: true });
    const { events, done } = await readSseResponse(res);
    expect(contentOf(events)).toBe('Echo: Say ');
    expect(done).toBe(false);
    expect(events.at(-1).error.metadata.error_type).toBe('timeout');
    expect((await h.settledBalance(user.accountId)).reserved).toBe(0);
    // Ended by the 200 ms idle timeout, not by the 1 s request deadline the heartbeats used to run it into.
    const record = await h.generation(user.key, res.headers.get('x-generation-id')!);
    expect(record.generation_time).toBeLessThan(1_000);
  });
});
