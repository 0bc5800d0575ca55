/**
 * Context compression (OpenRouter's middle-out) over real HTTP: a conversation too long for a small-context endpoint
 * reaches the fake upstream with its middle dropped (the system prompt, the start and the latest turn kept), by
 * default and through the official openai SDK; refused with the plugin disabled; a larger endpoint compresses only when
 * asked; a fallback that fits whole gets the whole conversation; and the record keeps what the request sent.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let small: FakeProvider;
let large: FakeProvider;
let user: Account;
let client: OpenAI;
const PRICES = { prompt: 100, completion: 100 };

type Message = { role: 'system' | 'user' | 'assistant'; content: string };
const conversation = (turns: number): Message[] => [
  { role: 'system', content: 'You are terse.' },
  ...Array.from({ length: turns }, (_, i): Message => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `turn ${i}: ${'x'.repeat(400)}` })),
];
const sentMessages = (fake: FakeProvider) => (fake.requests.at(-1)!.body as { messages: Message[] }).messages;

beforeAll(async () => {
  h = await startGatewayHarness();
  small = await h.fakeEndpoint({ protocol: 'openai', slug: 'tiny', model: 'cc/small', prices: PRICES, contextLength: 4_096, maxOutput: 500 });
  large = await h.fakeEndpoint({ protocol: 'openai', slug: 'roomy', model: 'cc/large', prices: PRICES, contextLength: 16_000, maxOutput: 500 });
  user = await h.openAccount({ name: 'talker', credits: 1_000_000_000 });
  client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await h.stop();
});

describe('context compression', () => {
  it('drops the middle of a conversation too long for a small-context endpoint, by default', async () => {
    const messages = conversation(60); // ~6,300 tokens for a 4,096-token endpoint
    const completion = await client.chat.completions.create({ model: 'cc/small', messages });
    expect(completion.choices[0]!.message.content).toBeTruthy();
    const sent = sentMessages(small);
    expect(sent.length).toBeLessThan(messages.length);
    expect(sent[0]).toEqual(messages[0]);
    expect(sent[1]).toEqual(messages[1]);
    expect(sent.at(-1)).toEqual(messages.at(-1));
    expect(JSON.stringify(sent).length / 4).toBeLessThan(4_096);
    // The record keeps the prompt the request sent (its estimate), and the charge is the provider's usage.
    await h.running.core.gateway.idle();
    const record = await fetch(`${h.url}/api/v1/generation?id=${completion.id}`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(record.status).toBe(200);
  });

  it('refuses with a 400 when the request disables it, as OpenRouter does', async () => {
    const before = small.requests.length;
    const res = await h.chat(user.key, { model: 'cc/small', messages: conversation(60), plugins: [{ id: 'context-compression', enabled: false }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('context_length_exceeded');
    expect(small.requests.length).toBe(before);
  });

  it('compresses for a larger endpoint only when asked (plugin or legacy transforms)', async () => {
    const messages = conversation(180); // ~19,000 tokens for a 16,000-token endpoint
    expect((await h.chat(user.key, { model: 'cc/large', messages })).status).toBe(400);
    for (const asked of [{ plugins: [{ id: 'context-compression' }] }, { transforms: ['middle-out'] }]) {
      const res = await h.chat(user.key, { model: 'cc/large', messages, ...asked });
      expect(res.status).toBe(200);
      const sent = sentMessages(large);
      expect(sent.length).toBeLessThan(messages.length);
      expect(sent.at(-1)).toEqual(messages.at(-1));
    }
  });

  it('gives a fallback that fits the whole conversation, and the one that does not a compressed one', async () => {
    const messages = conversation(60);
    small.script({ status: 503 });
    const [smallBefore, largeBefore] = [small.requests.length, large.requests.length];
    const res = await h.chat(user.key, { model: 'cc/small', models: ['cc/large'], messages });
    expect(res.status).toBe(200);
    // The model asked for first is tried first (compressed), then the fallback model (whole).
    expect([small.requests.length - smallBefore, large.requests.length - largeBefore]).toEqual([1, 1]);
    expect(sentMessages(small).length).toBeLessThan(messages.length);
    expect(sentMessages(large)).toEqual(messages);
  });
});
