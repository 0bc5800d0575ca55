/**
 * A stream lives only while its key is accepted, over REST of the started app: chat/completions, completions, the
 * Responses API and the Messages API. A QA run (s41) revoked a key 2 s into a chat stream: all 40 chunks, the usage
 * chunk and `[DONE]` still came, 11.5 s later, while a GraphQL subscription on a revoked key ends at once
 * (endWhenKeyRefused). Now the stream ends as soon as the key is revoked, disabled or expires, with the route's error
 * event (401), the upstream call is aborted, and it is charged what it delivered, as when its client leaves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { costOf, promptEstimate, startGatewayHarness, type Account, type GatewayHarness, type Prices } from '../support/gatewayHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';

const PRICES: Prices = { prompt: 1_000, completion: 2_000 };
const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
const PROMPT = 'Say something long';

let h: GatewayHarness;
let fake: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'slow', model: 'test/slow', prices: PRICES });
});
afterAll(async () => {
  await h.stop();
});

/** A second key of the account (the one the stream runs on), so that its owner's key stays to change it with. */
const newKey = async (owner: Account): Promise<{ id: string; secret: string }> => {
  const data = await h.gqlOk(`mutation { createApiKey(name: "streamer") { ... on CreatedApiKey { secret key { id } } } }`, {}, owner.key);
  return { id: data.createApiKey.key.id, secret: data.createApiKey.secret };
};

type Skin = {
  readonly name: string;
  readonly path: string;
  readonly headers: (key: string) => Record<string, string>;
  readonly body: Record<string, unknown>;
  /** The text a data payload carries (empty for none). */
  readonly textOf: (payload: any) => string;
  /** The payload that ended the stream, checked to be the route's error event for a 401. */
  readonly expectError: (payload: any, event: string | null) => void;
};

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const SKINS: Skin[] = [
  {
    name: 'chat/completions',
    path: '/api/v1/chat/completions',
    headers: bearer,
    body: { model: 'test/slow', stream: true, max_tokens: 100, messages: [{ role: 'user', content: PROMPT }] },
    textOf: (p) => p.choices?.[0]?.delta?.content ?? '',
    expectError: (p) => {
      expect(p.error).toMatchObject({ code: 401, message: expect.stringMatching(/revoked: the stream was cut when its key was refused/), metadata: { error_type: 'authentication' } });
      expect(p.choices[0].finish_reason).toBe('error');
    },
  },
  {
    name: 'completions',
    path: '/api/v1/completions',
    headers: bearer,
    body: { model: 'test/slow', stream: true, max_tokens: 100, prompt: PROMPT },
    textOf: (p) => p.choices?.[0]?.text ?? '',
    expectError: (p) => expect(p.error).toMatchObject({ code: 401, metadata: { error_type: 'authentication' } }),
  },
  {
    name: 'Responses',
    path: '/api/v1/responses',
    headers: bearer,
    body: { model: 'test/slow', stream: true, max_output_tokens: 100, input: PROMPT },
    textOf: (p) => (p.type === 'response.output_text.delta' ? p.delta : ''),
    expectError: (p) => {
      expect(['error', 'response.failed']).toContain(p.type);
      expect(JSON.stringify(p)).toMatch(/the stream was cut when its key was refused/);
    },
  },
  {
    name: 'Messages',
    path: '/api/v1/messages',
    headers: (key) => ({ 'x-api-key': key }),
    body: { model: 'test/slow', stream: true, max_tokens: 100, messages: [{ role: 'user', content: PROMPT }] },
    textOf: (p) => (p.type === 'content_block_delta' ? (p.delta?.text ?? '') : ''),
    expectError: (p, event) => {
      expect(event).toBe('error');
      expect(p).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: expect.stringMatching(/the stream was cut when its key was refused/) } });
    },
  },
];

/** Read SSE events from a response as they come: `{ event, data }` per event, comments left out. */
const eventsOf = async function* (res: Response): AsyncGenerator<{ event: string | null; data: string }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = block.split('\n').find((l) => l.startsWith('event: '))?.slice(7) ?? null;
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data !== '') yield { event, data };
    }
  }
};

const CHANGES: Record<string, (owner: Account, keyId: string) => Promise<void>> = {
  revoked: async (owner, id) => void (await h.gqlOk(`mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id }, owner.key)),
  disabled: async (owner, id) => void (await h.gqlOk(`mutation ($id: ID!) { disableApiKey(id: $id) { __typename } }`, { id }, owner.key)),
};

describe('a stream whose key is refused mid-stream ends at once', () => {
  for (const [skin, change] of [
    [SKINS[0]!, 'revoked'],
    [SKINS[1]!, 'revoked'],
    [SKINS[2]!, 'disabled'],
    [SKINS[3]!, 'disabled'],
  ] as const) {
    it(`${skin.name}, key ${change}: the error event, no end of answer, the upstream call aborted, charged what it delivered`, async () => {
      const owner = await h.openAccount({ credits: 1_000_000_000, name: `owner-${skin.name}` });
      const key = await newKey(owner);
      fake.script({ slowTokenMs: 150, text: LONG });
      const res = await fetch(`${h.url}${skin.path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...skin.headers(key.secret) }, body: JSON.stringify(skin.body) });
      expect(res.status).toBe(200);
      const upstream = fake.requests.at(-1)!;

      let text = '';
      let changed = false;
      let last: { event: string | null; data: string } | null = null;
      for await (const event of eventsOf(res)) {
        last = event;
        if (event.data === '[DONE]') continue;
        text += skin.textOf(JSON.parse(event.data));
        // Two words delivered: refuse the key, and read on to wherever the stream ends.
        if (!changed && text.split(' ').length > 2) {
          changed = true;
          await CHANGES[change]!(owner, key.id);
        }
      }
      expect(changed).toBe(true);
      expect(last!.data).not.toBe('[DONE]');
      skin.expectError(JSON.parse(last!.data), last!.event);
      // Cut, not read to the end: far fewer words than the answer has.
      expect(text.split(' ').length).toBeLessThan(30);
      expect(await upstream.outcome).toBe('aborted');

      // Charged as a client that leaves: the prompt and the tokens delivered (estimated), once.
      const balance = await h.settledBalance(owner.accountId);
      expect(balance.reserved).toBe(0);
      const generations = await h.gqlOk(`{ generations(first: 5) { edges { node { status } } } }`, {}, owner.key);
      expect(generations.generations.edges).toHaveLength(1);
      expect(balance.settled).toBe(costOf(PRICES, promptEstimate([{ content: PROMPT }]), Math.ceil(text.length / 4)));
    });
  }

  it('a key that expires mid-stream ends it too', async () => {
    const owner = await h.openAccount({ credits: 1_000_000_000, name: 'owner-expiry' });
    const key = await newKey(owner);
    fake.script({ slowTokenMs: 150, text: LONG });
    const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(key.secret) }, body: JSON.stringify(SKINS[0]!.body) });
    expect(res.status).toBe(200);
    let expiring = false;
    let last = '';
    for await (const event of eventsOf(res)) {
      last = event.data;
      if (!expiring) {
        expiring = true;
        // A second from now: the watch's timer, not a request, notices it.
        await h.gqlOk(`mutation ($id: ID!, $at: DateTime) { setApiKeyExpiry(id: $id, expiresAt: $at) { __typename } }`, { id: key.id, at: new Date(Date.now() + 1_000).toISOString() }, owner.key);
      }
    }
    expect(last).not.toBe('[DONE]');
    expect(JSON.parse(last).error).toMatchObject({ code: 401, message: expect.stringMatching(/expired: the stream was cut/) });
    await eventually('the upstream call to be aborted', () => fake.requests.at(-1)!.clientAborted);
  });

  it('a stream whose key stays accepted is untouched: the whole answer and [DONE]', async () => {
    const owner = await h.openAccount({ credits: 1_000_000_000, name: 'owner-kept' });
    fake.script({ slowTokenMs: 1, text: 'short answer here' });
    const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(owner.key) }, body: JSON.stringify(SKINS[0]!.body) });
    const all = await res.text();
    expect(all.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });
});
