/**
 * Context compression (OpenRouter's middle-out) over real HTTP: a conversation too long for a small-context endpoint
 * reaches the fake upstream with its middle dropped (the system prompt, the start and the latest turn kept), by
 * default and through the official openai SDK, however far over the context (a single message loses the middle of its
 * text), the router metadata saying what was cut; refused with the plugin disabled; a larger endpoint compresses only when
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
const METADATA = { 'X-OpenRouter-Metadata': 'enabled' };
type Answer = { choices: { message: { content: string | null } }[]; openrouter_metadata: { pipeline: unknown[] } };

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

  it('reserves what the compressed conversation may cost, not the whole one it was cut from', async () => {
    // ~16k tokens whole (1.6 M nano-dollars at 100 a token), under 3.6k compressed: 600,000 pays for the latter only.
    const thrifty = await h.openAccount({ name: 'thrifty', credits: 600_000 });
    const res = await h.chat(thrifty.key, { model: 'cc/small', messages: conversation(150) });
    expect(res.status).toBe(200);
    const after = await h.settledBalance(thrifty.accountId);
    expect(after.reserved).toBe(0);
    expect(after.available).toBeGreaterThan(0);
    // With compression off the same conversation does not fit at all: no reservation decides that.
    expect((await h.chat(thrifty.key, { model: 'cc/small', messages: conversation(150), plugins: [{ id: 'context-compression', enabled: false }] })).status).toBe(400);
  });

  it('refuses with a 400 when the request disables it, as OpenRouter does', async () => {
    const before = small.requests.length;
    const res = await h.chat(user.key, { model: 'cc/small', messages: conversation(60), plugins: [{ id: 'context-compression', enabled: false }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('context_length_exceeded');
    expect(small.requests.length).toBe(before);
  });

  it('fits a prompt four times the context: a ~16,000-token conversation of many turns on a 4,096-token endpoint', async () => {
    const messages = conversation(150); // ~15,800 tokens
    const res = await h.chat(user.key, { model: 'cc/small', messages }, METADATA);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer;
    expect(body.choices[0]!.message.content).toBeTruthy();
    const sent = sentMessages(small);
    expect(sent[0]).toEqual(messages[0]);
    expect(sent.at(-1)).toEqual(messages.at(-1));
    expect(JSON.stringify(sent).length / 4).toBeLessThan(4_096);
    // The pipeline says what was cut: turns from the middle, no message shortened.
    expect(body.openrouter_metadata.pipeline).toEqual([
      { type: 'context-compression', engine: 'middle-out', applied_to: ['cc/small@tiny'], selected: true, messages_dropped: messages.length - sent.length, messages_truncated: 0 },
    ]);
    // Off, the same prompt is a 400, and nothing reaches the provider.
    const before = small.requests.length;
    const off = await h.chat(user.key, { model: 'cc/small', messages, transforms: [] });
    expect(off.status).toBe(400);
    expect(((await off.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('context_length_exceeded');
    expect(small.requests.length).toBe(before);
  });

  it('cuts the middle of a single message far over the context, through the openai SDK', async () => {
    const content = `START ${'y'.repeat(60_000)} END`; // ~15,000 tokens
    const { data, response } = await client.chat.completions.create({ model: 'cc/small', messages: [{ role: 'user', content }] }, { headers: METADATA }).withResponse();
    expect(response.status).toBe(200);
    expect(data.choices[0]!.message.content).toBeTruthy();
    const [sent] = sentMessages(small);
    expect(sent!.content).toMatch(/^START y+\n\[…\]\ny+ END$/);
    expect(sent!.content.length / 4).toBeLessThan(4_096);
    expect((data as unknown as Answer).openrouter_metadata.pipeline).toEqual([expect.objectContaining({ type: 'context-compression', selected: true, messages_dropped: 0, messages_truncated: 1 })]);
    const before = small.requests.length;
    const off = await h.chat(user.key, { model: 'cc/small', messages: [{ role: 'user', content }], plugins: [{ id: 'context-compression', enabled: false }] });
    expect(off.status).toBe(400);
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
