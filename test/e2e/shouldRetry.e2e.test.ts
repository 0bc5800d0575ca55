/**
 * `x-should-retry` on REST errors, which the official SDKs obey over their own rule (they retry every 408, 409, 429
 * and 5xx): `false` when the same request cannot succeed (an upstream that refused Switchyard's key, an
 * Idempotency-Key held by a call that has ended with no answer kept, or by another request), `true` when Switchyard
 * knows another try may (an overloaded upstream, a key whose call still runs); none when it does not know. Through the
 * real `openai` SDK, counting the requests it sends.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
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
const sdk = () => {
  let sent = 0;
  const client = new OpenAI({
    baseURL: `${h.url}/api/v1`,
    apiKey: user.key,
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

  it('none on an error Switchyard cannot judge (a 400 of the request itself stays the SDK’s call)', async () => {
    const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: '{' });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-should-retry')).toBeNull();
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
