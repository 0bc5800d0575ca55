/**
 * `x-should-retry` on REST errors, which the official SDKs obey over their own rule (they retry every 408, 409, 429
 * and 5xx): `false` when the same request cannot succeed later (the request itself refused, an upstream that refused
 * Switchyard's key, an Idempotency-Key held by a call that has ended with no answer kept, or by another request),
 * `true` when Switchyard knows another try may (a 429 or 503 with Retry-After: an overloaded upstream, the answers
 * Switchyard holds at once being full; a key whose call still runs); none when it does not know (the request deadline:
 * the SDK's own rule retries it). Not the router's `metadata.retryable`, which only says whether it tries again within
 * the call. Through the real `openai` SDK, counting the requests it sends.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { eventually } from '../support/eventually.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'test/should-retry';
const MESSAGES = [{ role: 'user' as const, content: 'hello' }];
let h: GatewayHarness;
let user: Account;
let upstream: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 1_000_000_000 });
  upstream = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-should-retry', model: MODEL, prices: { prompt: 100, completion: 100 } });
});
afterAll(async () => {
  await h.stop();
});

/** The SDK as a client uses it (two retries, its default), with the requests it sent counted. */
const sdk = (url = h.url, key = user.key) => {
  let sent = 0;
  const client = new OpenAI({
    baseURL: `${url}/api/v1`,
    apiKey: key,
    maxRetries: 2,
    timeout: 10_000,
    fetch: (url, init) => {
      sent += 1;
      return fetch(url, init);
    },
  });
  return { client, sent: () => sent };
};

const chat = (headers: Record<string, string> = {}) =>
  fetch(`${h.url}/api/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}`, ...headers },
    body: JSON.stringify({ model: MODEL, messages: MESSAGES }),
  });

/** Holds `key` for `generationId` as a call that claimed it would (a claim with no fingerprint: any request is its retry). */
const holdKey = async (key: string, generationId: string) => {
  const stream = `idem-${createHash('sha256').update(`${user.accountId}\n${user.keyId}\n${key}`).digest('hex').slice(0, 40)}`;
  await h.running.core.eventStore.append(stream, [{ type: 'IdempotencyKeyClaimed', data: { accountId: user.accountId, generationId, at: new Date().toISOString() } }], { expectedRevision: 'no_stream' });
};

describe('x-should-retry', () => {
  it('false when the upstream refused Switchyard’s key: the SDK asks once, not three times', async () => {
    upstream.setDefault({ status: 401 });
    try {
      const res = await chat();
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { metadata: { retryable: boolean } } }).error.metadata.retryable).toBe(false);
      expect(res.headers.get('x-should-retry')).toBe('false');
      expect(res.headers.get('access-control-expose-headers')).toContain('x-should-retry');
      const before = upstream.requests.length;
      const { client, sent } = sdk();
      const error = await client.chat.completions.create({ model: MODEL, messages: MESSAGES }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(sent()).toBe(1);
      expect(upstream.requests.length - before).toBe(1);
    } finally {
      upstream.setDefault({});
    }
  });

  it('false on a model no provider can serve for want of its credentials (a 503 only the operator can mend): the SDK asks once', async () => {
    const { client, sent } = sdk();
    const error = (await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: MESSAGES }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.status).toBe(503);
    expect(error.message).toContain('its credentials are not configured');
    expect(error.headers?.get('x-should-retry')).toBe('false');
    expect(sent()).toBe(1);
  });

  it('true when the upstream was overloaded', async () => {
    upstream.setDefault({ status: 503 });
    try {
      const res = await chat();
      expect(res.status).toBe(503);
      expect(res.headers.get('x-should-retry')).toBe('true');
    } finally {
      upstream.setDefault({});
    }
  });

  it('false on a request refused for what it is (a 400 of its own, an upstream’s refusal of it)', async () => {
    const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: '{' });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-should-retry')).toBe('false');
    upstream.setDefault({ status: 400 });
    try {
      const refused = await chat();
      expect(refused.status).toBe(400);
      expect(refused.headers.get('x-should-retry')).toBe('false');
    } finally {
      upstream.setDefault({});
    }
  });

  it('false on an Idempotency-Key held by a call that has ended with no answer kept: the SDK does not retry the 409', async () => {
    const done = await chat();
    expect(done.status).toBe(200);
    const id = done.headers.get('x-generation-id')!;
    await h.generation(user.key, id);
    await holdKey('ended-key', id);
    const res = await chat({ 'idempotency-key': 'ended-key' });
    expect(res.status).toBe(409);
    expect(res.headers.get('x-should-retry')).toBe('false');
    const { client, sent } = sdk();
    const error = await client.chat.completions.create({ model: MODEL, messages: MESSAGES }, { headers: { 'Idempotency-Key': 'ended-key' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.ConflictError);
    expect(sent()).toBe(1);
  });

  it('true on an Idempotency-Key whose call still runs (its answer may yet be kept)', async () => {
    await holdKey('running-key', 'gen-still-running');
    const res = await chat({ 'idempotency-key': 'running-key' });
    expect(res.status).toBe(409);
    expect(res.headers.get('x-should-retry')).toBe('true');
  });

  it('false on an Idempotency-Key used for another request (422)', async () => {
    const first = await chat({ 'idempotency-key': 'other-request' });
    expect(first.status).toBe(200);
    const other = await fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}`, 'idempotency-key': 'other-request' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'another question' }] }),
    });
    expect(other.status).toBe(422);
    expect(other.headers.get('x-should-retry')).toBe('false');
  });
});

describe('x-should-retry on what passes with time, which the router does not try again within the call', () => {
  const MiB = 1024 * 1024;
  let t: GatewayHarness;
  let owner: Account;
  let slow: FakeProvider;
  let holder: FakeProvider;

  beforeAll(async () => {
    t = await startGatewayHarness({ GATEWAY_REQUEST_TIMEOUT_MS: '5000', GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '30000', GATEWAY_ANSWER_BUFFER_BYTES: String(2 * MiB) });
    owner = await t.openAccount({ credits: 1_000_000_000 });
    slow = await t.fakeEndpoint({ protocol: 'openai', slug: 'fake-deadline', model: 'test/deadline', prices: { prompt: 100, completion: 100 } });
    holder = await t.fakeEndpoint({ protocol: 'openai', slug: 'fake-holder', model: 'test/holder', prices: { prompt: 100, completion: 100 } });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('none at the request deadline (a 504 the router gives up on): the SDK retries it, as its own rule says, and gets the answer', async () => {
    slow.script({ hang: true });
    const res = await t.chat(owner.key, { model: 'test/deadline', messages: MESSAGES });
    expect(res.status).toBe(504);
    const { error } = (await res.json()) as { error: { metadata: { error_type: string; retryable: boolean } } };
    // The deadline's (the first-token timeout would be tried again within the call).
    expect(error.metadata).toMatchObject({ error_type: 'timeout', retryable: false });
    expect(res.headers.get('x-should-retry')).toBeNull();

    slow.script({ hang: true });
    const { client, sent } = sdk(t.url, owner.key);
    const answer = await client.chat.completions.create({ model: 'test/deadline', messages: MESSAGES });
    expect(answer.choices[0]!.message.content).toBeTruthy();
    expect(sent()).toBe(2);
  });

  it('true on the 503 of answers that do not fit in what Switchyard holds at once (GATEWAY_ANSWER_BUFFER_BYTES): it says "now"', async () => {
    // 1 MiB of the 2 held, then silence: held until the request deadline; the next answer's first MiB does not fit.
    holder.script({ endlessBody: true, bodyBytes: MiB });
    const held = t.chat(owner.key, { model: 'test/holder', messages: MESSAGES });
    await eventually('the holder to have sent its MiB', () => holder.requests.at(-1)?.sentBytes === MiB);
    holder.script({ endlessBody: true });
    const res = await t.chat(owner.key, { model: 'test/holder', messages: MESSAGES });
    expect(res.status).toBe(503);
    const { error } = (await res.json()) as { error: { message: string; metadata: { retryable: boolean } } };
    expect(error.message).toContain('could not hold the answer now');
    expect(error.metadata.retryable).toBe(false);
    expect(res.headers.get('x-should-retry')).toBe('true');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await (await held).text();
  });
});
