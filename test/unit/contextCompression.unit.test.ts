import { describe, expect, it } from 'vitest';
import { createBreakers } from '../../src/gateway/breaker.js';
import { messageTokens, parseChatBody } from '../../src/gateway/chatRequest.js';
import { middleOut } from '../../src/gateway/contextCompression.js';
import { GatewayError } from '../../src/gateway/gatewayErrors.js';
import { planRoute } from '../../src/gateway/routePlan.js';
import type { ChatMessage } from '../../src/gateway/types.js';
import { catalogOf } from '../support/catalogFixture.js';

const turn = (i: number, chars = 400): ChatMessage => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `${i}:${'x'.repeat(chars)}` });
const conversation = (n: number, chars?: number): ChatMessage[] => [{ role: 'system', content: 'You are terse.' }, ...Array.from({ length: n }, (_, i) => turn(i, chars))];
const tokensOf = (messages: readonly ChatMessage[]) => messages.reduce((n, m) => n + messageTokens(m), 0);
const labels = (messages: readonly ChatMessage[]) => messages.map((m) => (typeof m.content === 'string' ? m.content.split(':')[0] : m.role));

describe('middle-out', () => {
  it('leaves a conversation that fits as it is', () => {
    const messages = conversation(6);
    expect(middleOut(messages, tokensOf(messages))).toEqual(messages);
  });

  it('drops messages from the middle, keeping the system prompt, the start and the latest turns', () => {
    const messages = conversation(20); // ~105 tokens per turn
    const fitted = middleOut(messages, 1_000)!;
    expect(tokensOf(fitted)).toBeLessThanOrEqual(1_000);
    const kept = labels(fitted);
    expect(kept[0]).toBe('You are terse.');
    expect(kept[1]).toBe('0');
    expect(kept.at(-1)).toBe('19');
    // What went is one run from the middle: the rest keep their order.
    const numbers = kept.slice(1).map(Number);
    const gap = numbers.findIndex((n, i) => i > 0 && n !== numbers[i - 1]! + 1);
    expect(numbers.slice(0, gap)).toEqual([...Array(gap).keys()]);
    expect(numbers.slice(gap)).toEqual(Array.from({ length: numbers.length - gap }, (_, i) => 20 - (numbers.length - gap) + i));
  });

  it('keeps tool calls with their results, dropping or keeping them together', () => {
    const call: ChatMessage = { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] };
    const result: ChatMessage = { role: 'tool', tool_call_id: 'c1', content: 'y'.repeat(400) };
    const messages = [...conversation(6), call, result, ...conversation(6).slice(1)];
    for (const budget of [200, 400, 600, 800]) {
      const fitted = middleOut(messages, budget)!;
      expect(fitted.includes(call)).toBe(fitted.includes(result));
      if (fitted.includes(call)) expect(fitted[fitted.indexOf(call) + 1]).toBe(result);
    }
  });

  it('shortens the middle of a message too long on its own, keeping both ends', () => {
    const long = `START ${'a'.repeat(20_000)} END`;
    const fitted = middleOut([{ role: 'user', content: long }], 1_000)!;
    expect(tokensOf(fitted)).toBeLessThanOrEqual(1_000);
    const text = fitted[0]!.content as string;
    expect(text.startsWith('START ')).toBe(true);
    expect(text.endsWith(' END')).toBe(true);
    expect(text).toContain('[…]');
    // Text parts: the longest one is shortened, an image is kept.
    const parts: ChatMessage = { role: 'user', content: [{ type: 'text', text: 'look:' }, { type: 'image_url', image_url: { url: 'https://x.example/a.png' } }, { type: 'text', text: 'b'.repeat(20_000) }] };
    const fittedParts = middleOut([parts], 1_500)!;
    expect(tokensOf(fittedParts)).toBeLessThanOrEqual(1_500);
    expect(fittedParts[0]!.content).toMatchObject([{ type: 'text', text: 'look:' }, { type: 'image_url' }, { type: 'text', text: expect.stringContaining('[…]') }]);
  });

  it('copes with a hostile body of tens of thousands of messages, system messages among them', () => {
    const many: ChatMessage[] = Array.from({ length: 40_000 }, (_, i) => (i % 4 === 0 ? { role: 'system', content: `s${i}` } : { role: 'user', content: `u${i}` }));
    const fitted = middleOut(many, 80_000)!; // the 10,000 system messages take ~60,000
    expect(tokensOf(fitted)).toBeLessThanOrEqual(80_000);
    expect(tokensOf(fitted)).toBeGreaterThan(79_000);
    // Every system message stays, and the user messages of both ends.
    expect(fitted.filter((m) => m.role === 'system')).toHaveLength(10_000);
    expect(fitted.at(-1)).toBe(many.at(-1));
    expect(fitted[1]).toBe(many[1]);
    // Pinned messages alone over the budget, none with text to give: no fit.
    expect(middleOut(many, 10_000)).toBeNull();
  });

  it('never drops the last user message, though an assistant prefill ends the conversation', () => {
    const question: ChatMessage = { role: 'user', content: `q:${'q'.repeat(400)}` };
    const messages = [...conversation(21), question, { role: 'assistant', content: 'p:Sure,' } as ChatMessage];
    const fitted = middleOut(messages, 400)!;
    expect(tokensOf(fitted)).toBeLessThanOrEqual(400);
    expect(labels(fitted).slice(-2)).toEqual(['q', 'p']);
  });

  it('meets a message limit with half from the start and half from the end, and says when nothing can fit', () => {
    const messages = conversation(1_200, 4);
    const fitted = middleOut(messages, Infinity, 1_000)!;
    expect(fitted).toHaveLength(1_000);
    expect(labels(fitted).slice(1, 3)).toEqual(['0', '1']);
    expect(labels(fitted).at(-1)).toBe('1199');
    // A system prompt larger than the budget with nothing else to give: no fit.
    expect(middleOut([{ role: 'system', content: 'tiny' }], 1)).toBeNull();
  });
});

describe('context compression in the route plan', () => {
  const catalog = catalogOf({
    providers: [{ slug: 'small' }, { slug: 'large' }, { slug: 'claude', protocol: 'anthropic' }],
    endpoints: [
      { model: 's/4k', provider: 'small', contextLength: 4_096, maxOutput: 1_000 },
      { model: 'l/32k', provider: 'large', contextLength: 32_000, maxOutput: 1_000 },
      { model: 'c/200k', provider: 'claude', contextLength: 200_000, maxOutput: 1_000 },
      // The cheaper endpoint has the smaller context: a compressed prompt loses more there.
      { model: 'm/mixed', provider: 'small', contextLength: 2_048, maxOutput: 500, prices: { prompt: 1, completion: 1 } },
      { model: 'm/mixed', provider: 'large', contextLength: 6_000, maxOutput: 500, prices: { prompt: 9, completion: 9 } },
    ],
  });
  const plan = (body: Record<string, unknown>) =>
    planRoute({ catalog, output: 'text', breakers: createBreakers({ failureThreshold: 3, cooldownMs: 1_000 }), stats: { get: () => undefined }, parsed: parseChatBody(body), nowMs: 0, random: null });
  const error = (body: Record<string, unknown>) => {
    try {
      plan(body);
    } catch (e) {
      return e as GatewayError;
    }
    throw new Error('expected a refusal');
  };
  const long = conversation(60); // ~6,300 tokens

  it('compresses by default for an endpoint of at most 8,192 tokens, leaving room for the answer', () => {
    const [target] = plan({ model: 's/4k', messages: long }).targets;
    expect(target!.messages).toBeDefined();
    expect(tokensOf(target!.messages!)).toBeLessThanOrEqual(4_096 - 1_000);
    expect(target!.maxOutput).toBeGreaterThanOrEqual(1_000);
    // A prompt that fits is sent whole.
    expect(plan({ model: 's/4k', messages: conversation(4) }).targets[0]!.messages).toBeUndefined();
  });

  it('is refused as asked: the plugin disabled, or transforms: [] (a 400 as before)', () => {
    expect(error({ model: 's/4k', messages: long, plugins: [{ id: 'context-compression', enabled: false }] }).errorType).toBe('context_length_exceeded');
    expect(error({ model: 's/4k', messages: long, transforms: [] }).errorType).toBe('context_length_exceeded');
  });

  it('applies to a larger endpoint only when asked', () => {
    const huge = conversation(500); // ~52,000 tokens
    expect(error({ model: 'l/32k', messages: huge }).errorType).toBe('context_length_exceeded');
    const [target] = plan({ model: 'l/32k', messages: huge, plugins: [{ id: 'context-compression' }] }).targets;
    expect(tokensOf(target!.messages!)).toBeLessThanOrEqual(32_000 - 1_000);
    expect(plan({ model: 'l/32k', messages: huge, transforms: ['middle-out'] }).targets[0]!.messages).toBeDefined();
  });

  it('fits a prompt however far over the context: many turns dropped, a single message cut in its middle', () => {
    const many = conversation(500); // ~52,000 tokens for a 4,096-token endpoint: over 12 times its context
    const [target] = plan({ model: 's/4k', messages: many }).targets;
    expect(tokensOf(target!.messages!)).toBeLessThanOrEqual(4_096 - 1_000);
    expect(target!.messages![0]).toEqual(many[0]);
    expect(target!.messages!.at(-1)).toEqual(many.at(-1));
    const single = [{ role: 'user', content: `START ${'y'.repeat(200_000)} END` }]; // ~50,000 tokens
    const [cut] = plan({ model: 's/4k', messages: single }).targets;
    expect(tokensOf(cut!.messages!)).toBeLessThanOrEqual(4_096 - 1_000);
    expect(cut!.messages![0]!.content).toMatch(/^START y+\n\[…\]\ny+ END$/);
    // What cannot be cut is still refused: tools alone larger than the context.
    const tools = [{ type: 'function', function: { name: 'f', description: 'd'.repeat(20_000), parameters: {} } }];
    expect(error({ model: 's/4k', messages: single, tools }).message).toMatch(/context compression could not fit it/);
  });

  it("orders a model's compressed endpoints by how much they must cut, least first (price orders those that take it whole)", () => {
    const ids = (body: Record<string, unknown>) => plan(body).targets.map((t) => t.endpoint.id);
    expect(ids({ model: 'm/mixed', messages: conversation(4) })).toEqual(['m/mixed@small', 'm/mixed@large']);
    expect(ids({ model: 'm/mixed', messages: conversation(100) })).toEqual(['m/mixed@large', 'm/mixed@small']);
  });

  it('fits a conversation to Anthropic’s 1,000 messages when compression is on', () => {
    const many = conversation(1_100, 4);
    expect(plan({ model: 'c/200k', messages: many }).targets[0]!.messages).toBeUndefined();
    expect(plan({ model: 'c/200k', messages: many, plugins: [{ id: 'context-compression' }] }).targets[0]!.messages).toHaveLength(1_000);
  });

  it('refuses an unknown transform', () => {
    expect(() => parseChatBody({ model: 's/4k', messages: long, transforms: ['zip'] })).toThrow(/transforms may hold only "middle-out"/);
  });
});
