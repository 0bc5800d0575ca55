/**
 * Every upstream protocol through the gateway: fake OpenAI, Anthropic and Gemini servers (each checking the
 * provider key, which Switchyard stores encrypted), streamed and not, with cached and reasoning tokens priced on
 * their own, and tool calls mapped back to the OpenAI shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerStream } from '../../src/modules/catalog/provider.events.js';
import type { FakeProtocol, FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, contentOf, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 1000, completion: 4000, reasoning: 5000, cacheRead: 100, cacheWrite: 1250 };
const USAGE = { promptTokens: 100, completionTokens: 30, cachedTokens: 20, reasoningTokens: 10 };
const MESSAGES = [
  { role: 'system', content: 'You are a test.' },
  { role: 'user', content: 'Say hello to the gateway' },
];

let h: GatewayHarness;
let user: Account;
const fakes: Partial<Record<FakeProtocol, FakeProvider>> = {};

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 10_000_000_000 });
  for (const protocol of ['openai', 'anthropic', 'gemini'] as const) {
    fakes[protocol] = await h.fakeEndpoint({ protocol, slug: `fake-${protocol}`, model: `test/${protocol}-model`, prices: PRICES });
    fakes[protocol]!.setDefault({ usage: USAGE });
  }
});
afterAll(async () => {
  await h.stop();
});

/** The price of a usage object as the OpenAI shape reports it (prompt includes cached; completion includes reasoning). */
const priceOf = (usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number }; completion_tokens_details: { reasoning_tokens: number } }) => {
  const cached = usage.prompt_tokens_details.cached_tokens;
  const reasoning = usage.completion_tokens_details.reasoning_tokens;
  return (usage.prompt_tokens - cached) * PRICES.prompt + cached * PRICES.cacheRead + (usage.completion_tokens - reasoning) * PRICES.completion + reasoning * PRICES.reasoning;
};

describe.each(['openai', 'anthropic', 'gemini'] as const)('%s upstream', (protocol) => {
  const model = `test/${protocol}-model`;
  // Anthropic reports no separate reasoning count; OpenAI and Gemini do.
  const reasoning = protocol === 'anthropic' ? 0 : USAGE.reasoningTokens;

  it('answers a non-streamed chat and charges cached and reasoning tokens at their own prices', async () => {
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model, messages: MESSAGES });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.choices[0].message.content).toBe('Echo: Say hello to the gateway');
    expect(body.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 30, prompt_tokens_details: { cached_tokens: 20 }, completion_tokens_details: { reasoning_tokens: reasoning } });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(priceOf(body.usage));
    expect(after.settled - before.settled).toBe(80 * 1000 + 20 * 100 + (30 - reasoning) * 4000 + reasoning * 5000);
    // The upstream got the key Switchyard decrypted, and the request in its own protocol.
    const request = fakes[protocol]!.requests.at(-1)!;
    expect(JSON.stringify(request.headers)).toContain(FAKE_API_KEY);
  });

  it('streams and settles the same amount from the streamed usage', async () => {
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model, messages: MESSAGES, stream: true });
    const { events, done } = await readSseResponse(res);
    expect(contentOf(events)).toBe('Echo: Say hello to the gateway');
    expect(done).toBe(true);
    const usage = events.at(-1).usage;
    expect(usage.prompt_tokens_details.cached_tokens).toBe(20);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(priceOf(usage));
    expect(usage.cost).toBeCloseTo(priceOf(usage) / 1e9, 12);
  });

  it('maps a tool call back to the OpenAI shape', async () => {
    fakes[protocol]!.script({ usage: USAGE, toolCall: { name: 'get_weather', arguments: { city: 'Paris' } } });
    const res = await h.chat(user.key, {
      model,
      messages: MESSAGES,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    const body = (await res.json()) as any;
    expect(body.choices[0].finish_reason).toBe('tool_calls');
    expect(body.choices[0].message.tool_calls[0].function).toEqual({ name: 'get_weather', arguments: JSON.stringify({ city: 'Paris' }) });
  });

  it("refuses earlier tool-call arguments nested past 64 levels with a 400 naming them, charging nothing (Anthropic and Gemini take them as JSON objects; OpenAI as the text sent)", async () => {
    const deep = `{"a":${'['.repeat(5_000)}${']'.repeat(5_000)}}`;
    const before = await h.settledBalance(user.accountId);
    const sent = fakes[protocol]!.requests.length;
    const res = await h.chat(user.key, {
      model,
      messages: [...MESSAGES, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: deep } }] }, { role: 'tool', tool_call_id: 'call_1', content: 'done' }],
    });
    const text = await res.text();
    if (protocol === 'openai') {
      expect(res.status, text).toBe(200);
      return;
    }
    expect(res.status, text).toBe(400);
    expect(JSON.parse(text).error.message).toMatch(/tool call call_1 has arguments nested deeper than 64 levels/);
    expect(fakes[protocol]!.requests.length).toBe(sent);
    expect((await h.settledBalance(user.accountId)).settled).toBe(before.settled);
  });
});

describe('provider keys at rest', () => {
  it('the key given to registerProvider is stored encrypted: it appears in no event', async () => {
    const events = await h.running.core.eventStore.readStream(providerStream('fake-anthropic'));
    expect(events[0]!.type).toBe('ProviderRegistered');
    expect(JSON.stringify(events)).not.toContain(FAKE_API_KEY);
    expect((events[0]!.data as { credential: { encrypted: string } }).credential.encrypted).toMatch(/^v1\./);
  });
});
