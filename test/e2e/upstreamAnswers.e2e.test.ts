/**
 * What a provider's upstream answers cannot do to the gateway: an answer that never ends is not read after its
 * attempt is over (the connection is closed at the limit, when the attempt ends or times out); an error body is read
 * for its message only (its first 64 KiB); whole answers being read share one budget for the process; and an answer
 * that could not be read (too large, a stream without events, JSON too deep to convert, an interim status and then
 * nothing, bytes that are not HTTP) is said to be one, and not asked for again from the same endpoint.
 * The timeouts are long here: an answer must end because of what is proved, not because a timer fired.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import { eventually } from '../support/eventually.js';

const MESSAGES = [{ role: 'user', content: 'Say hello' }];
const PRICES = { prompt: 100, completion: 200 };
const MiB = 1024 * 1024;

type ErrorBody = { error: { code: number; message: string; metadata: Record<string, unknown> } };

/** The fake's request `index` saw its connection closed by the gateway (before its answer ended). */
const closedByGateway = (fake: FakeProvider, index: number) =>
  eventually(`the gateway to close the connection of request ${index} to ${fake.url}`, () => fake.requests[index]?.clientAborted);

describe('answers that never end, are too large or cannot be read', () => {
  let h: GatewayHarness;
  let user: Account;
  let fake: FakeProvider;
  let anthropic: FakeProvider;
  let embeddings: FakeProvider;

  beforeAll(async () => {
    h = await startGatewayHarness({
      GATEWAY_REQUEST_TIMEOUT_MS: '120000',
      GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '60000',
      GATEWAY_STREAM_IDLE_TIMEOUT_MS: '60000',
    });
    user = await h.openAccount({ credits: 10_000_000_000 });
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'hostile', model: 'test/hostile', prices: PRICES });
    anthropic = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'hostile-anthropic', model: 'test/hostile-anthropic', prices: PRICES });
    embeddings = await h.fakeEndpoint({ protocol: 'openai', slug: 'hostile-embed', model: 'openai/text-embedding-3-small', prices: { prompt: 20, completion: 0 }, maxOutput: 1 });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('a whole answer that never ends: a 502 naming the limit, its connection closed at 64 MiB, asked once, nothing charged', async () => {
    const before = await h.settledBalance(user.accountId);
    const first = fake.requests.length;
    fake.script({ endlessBody: true });
    const res = await h.chat(user.key, { model: 'test/hostile', messages: MESSAGES });
    await closedByGateway(fake, first);
    expect(res.status).toBe(502);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.message).toBe('hostile sent a response that could not be read for test/hostile (HTTP 502, server): the answer is larger than 64 MiB');
    expect(body.error.metadata).toMatchObject({ error_type: 'server', provider_name: 'hostile', attempts: 1 });
    expect(fake.requests.length - first).toBe(1);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it('an error status whose body never ends (streamed request): the status is the answer, read for its first 64 KiB, each connection closed', async () => {
    const first = fake.requests.length;
    fake.script({ status: 500, endlessBody: true });
    fake.script({ status: 500, endlessBody: true });
    const res = await h.chat(user.key, { model: 'test/hostile', messages: MESSAGES, stream: true });
    await closedByGateway(fake, first);
    await closedByGateway(fake, first + 1);
    expect(res.status).toBe(502);
    const body = (await res.json()) as ErrorBody;
    // A 500 is worth another try (backoff), as any server error is.
    expect(body.error.message).toBe('hostile returned a server error for test/hostile (HTTP 500, provider_unavailable) after 2 attempts');
    // Bytes in flight (socket buffers) aside, nothing near the 64 MiB of a whole answer was asked for.
    for (const request of fake.requests.slice(first)) expect(request.sentBytes).toBeLessThan(16 * MiB);
  });

  it('an embeddings answer that never ends: a 502 naming the limit, its connection closed', async () => {
    const first = embeddings.requests.length;
    embeddings.script({ endlessBody: true });
    const res = await fetch(`${h.url}/api/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: 'hello' }),
    });
    await closedByGateway(embeddings, first);
    expect(res.status).toBe(502);
    expect(((await res.json()) as ErrorBody).error.message).toBe(
      'hostile-embed sent a response that could not be read for openai/text-embedding-3-small (HTTP 502, server): the answer is larger than 64 MiB',
    );
  });

  it.each([
    // A 200 text/event-stream whose events have no `data:` line.
    ['a stream with no events', { status: 200, body: '{"choices":[]}\n\n[DONE]\n\n', headers: { 'content-type': 'text/event-stream' } }, true, 'the stream had no events (no data: lines)'],
    ['an interim status (1xx) and then nothing', { rawAnswer: 'HTTP/1.1 103 Early Hints\r\n\r\n' }, false, 'the answer was an interim status (HTTP 103) and then nothing'],
    ['bytes that are not HTTP', { rawAnswer: 'SURPRISE\r\n\r\n' }, false, 'the answer is not valid HTTP (HPE_INVALID_CONSTANT)'],
  ])('%s: a 502 saying so, not asked again from the same endpoint', async (_, script, stream, reason) => {
    const first = fake.requests.length;
    // Once: a second attempt at this endpoint would get the fake's normal answer (a 200).
    fake.script(script);
    const res = await h.chat(user.key, { model: 'test/hostile', messages: MESSAGES, stream });
    expect(res.status).toBe(502);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.message).toBe(`hostile sent a response that could not be read for test/hostile (HTTP 502, server): ${reason}`);
    expect(body.error.metadata).toMatchObject({ attempts: 1 });
    expect(fake.requests.length - first).toBe(1);
  });

  it('an Anthropic tool_use input nested 5,000 levels: a 502 saying it could not be converted, asked once', async () => {
    const first = anthropic.requests.length;
    const input = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    const answer = `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"tu_1","name":"f","input":${input}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":5}}`;
    anthropic.script({ status: 200, body: answer });
    const res = await h.chat(user.key, { model: 'test/hostile-anthropic', messages: MESSAGES });
    expect(res.status).toBe(502);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.message).toMatch(/^hostile-anthropic sent a response that could not be read for test\/hostile-anthropic \(HTTP 502, server\): the answer could not be converted \(RangeError: /);
    expect(anthropic.requests.length - first).toBe(1);
  });
});

describe('whole answers being read share one budget (GATEWAY_ANSWER_BUFFER_BYTES)', () => {
  let h: GatewayHarness;
  let user: Account;
  let holder: FakeProvider;
  let other: FakeProvider;

  beforeAll(async () => {
    h = await startGatewayHarness({ GATEWAY_ANSWER_BUFFER_BYTES: String(4 * MiB), GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '3000' });
    user = await h.openAccount({ credits: 10_000_000_000 });
    holder = await h.fakeEndpoint({ protocol: 'openai', slug: 'holder', model: 'test/holder', prices: PRICES });
    other = await h.fakeEndpoint({ protocol: 'openai', slug: 'other', model: 'test/other', prices: PRICES });
  });
  afterAll(async () => {
    await h.stop();
  });

  it("an answer that does not fit is not read (a 503 of Switchyard's, not the provider's failure); what the others hold comes back when they end", async () => {
    // 3 MiB held, then silence: the answer ends only when its time is up.
    holder.script({ endlessBody: true, bodyBytes: 3 * MiB });
    const held = h.chat(user.key, { model: 'test/holder', messages: MESSAGES });
    await eventually('the holder to have sent its 3 MiB', () => holder.requests[0]?.sentBytes === 3 * MiB);

    other.script({ endlessBody: true });
    const res = await h.chat(user.key, { model: 'test/other', messages: MESSAGES });
    expect(res.status).toBe(503);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.message).toMatch(/^other answered, but Switchyard could not hold the answer now for test\/other \(HTTP 503, server\): the answers being read at once already fill the 4 MiB Switchyard keeps for them$/);
    await closedByGateway(other, 0);
    expect(other.requests).toHaveLength(1);

    // The holder's attempt times out: its connection is closed and what it held given back (its retry is answered).
    expect((await held).status).toBe(200);
    await closedByGateway(holder, 0);
    expect(holder.requests).toHaveLength(2);
    const again = await h.chat(user.key, { model: 'test/other', messages: MESSAGES });
    expect(again.status).toBe(200);
  });
});
