/**
 * What Anthropic- and Gemini-protocol answers are charged (QA s42 adapt #1-#3): a usage report whose counts are
 * missing, null, not numbers or negative is no report (billed on estimates, `usage_source: estimated`, never free),
 * whichever other count would cancel it; an Anthropic stream whose `message_delta` carries no usage is not billed the
 * `message_start` placeholder; and a thinking budget never raises the max_tokens sent upstream above what was
 * reserved: a budget that does not fit below max_tokens is a 400, as Anthropic answers it, that charges nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { costOf, promptEstimate, readSseResponse, startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

const CENT = 10_000_000;
// Every component its own price, so a count billed at the wrong one shows.
const PRICES = { prompt: 1_000, completion: 2_000, cacheRead: 100, cacheWrite: 1_250, reasoning: 4_000 };
const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];
const TEXT = 'A perfectly ordinary answer of some length';
/** What a call whose report is no report costs: the prompt and the answer's text estimated. */
const ESTIMATED = costOf(PRICES, promptEstimate(MESSAGES), Math.ceil(TEXT.length / 4));

let h: GatewayHarness;
let claude: FakeProvider;
let gemini: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  claude = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'claude-up', model: 'test/claude', prices: PRICES, maxOutput: 4_000 });
  gemini = await h.fakeEndpoint({ protocol: 'gemini', slug: 'gemini-up', model: 'test/gemini', prices: PRICES, maxOutput: 4_000 });
});
afterAll(async () => {
  await h.stop();
});

/** One call on a fresh account: its status, what it settled, and its record's usage source. */
const charged = async (body: Record<string, unknown>) => {
  const user = await h.openAccount({ credits: 100 * CENT });
  const res = await h.chat(user.key, { messages: MESSAGES, ...body });
  const generationId = res.headers.get('x-generation-id');
  if (body.stream === true) await readSseResponse(res);
  else await res.text();
  const balance = await h.settledBalance(user.accountId);
  expect(balance.reserved).toBe(0);
  const record = res.status === 200 && generationId !== null ? ((await h.generation(user.key, generationId)) as { switchyard: { usage_source: string } }) : null;
  return { status: res.status, settled: balance.settled, source: record?.switchyard.usage_source };
};

describe('Anthropic and Gemini usage reports without usable counts are estimated, never free (QA s42 adapt #2)', () => {
  const cases: [string, () => FakeProvider, string, unknown][] = [
    ['Anthropic usage {}', () => claude, 'test/claude', {}],
    ['Anthropic null counts', () => claude, 'test/claude', { input_tokens: null, output_tokens: null }],
    ['Anthropic counts as strings', () => claude, 'test/claude', { input_tokens: '10', output_tokens: '5' }],
    ['Anthropic output_tokens missing', () => claude, 'test/claude', { input_tokens: 10 }],
    ['Anthropic a fractional count', () => claude, 'test/claude', { input_tokens: 10.5, output_tokens: 5 }],
    ['Gemini candidatesTokenCount as a string', () => gemini, 'test/gemini', { promptTokenCount: 10, candidatesTokenCount: '500', totalTokenCount: 510 }],
    ['Gemini thoughtsTokenCount as a string', () => gemini, 'test/gemini', { promptTokenCount: 10, candidatesTokenCount: 5, thoughtsTokenCount: '900' }],
  ];
  for (const [name, fake, model, usage] of cases) {
    for (const stream of [false, true]) {
      it(`${name} (${stream ? 'streamed' : 'whole'})`, async () => {
        fake().script({ text: TEXT, wireUsage: usage });
        const { status, settled, source } = await charged({ model, stream });
        expect(status).toBe(200);
        expect(settled).toBe(ESTIMATED);
        expect(source).toBe('estimated');
      });
    }
  }

  it('an Anthropic stream whose message_delta has no usage is estimated for its output, not billed the message_start placeholder of 1', async () => {
    claude.script({ text: TEXT, wireUsage: null });
    const { status, settled, source } = await charged({ model: 'test/claude', stream: true });
    expect(status).toBe(200);
    expect(settled).toBe(ESTIMATED);
    expect(source).toBe('estimated');
  });

  it("Anthropic's null cache counts are absent, not a broken report: the counts are billed as reported", async () => {
    for (const stream of [false, true]) {
      claude.script({ text: TEXT, wireUsage: { input_tokens: 10, cache_read_input_tokens: null, cache_creation_input_tokens: null, output_tokens: 5 } });
      const { settled, source } = await charged({ model: 'test/claude', stream });
      expect(settled).toBe(10 * PRICES.prompt + 5 * PRICES.completion);
      expect(source).toBe('provider');
    }
  });

  it('Gemini without candidatesTokenCount (nothing generated, as a blocked answer reports it) bills the prompt as reported', async () => {
    gemini.script({ text: TEXT, wireUsage: { promptTokenCount: 10, totalTokenCount: 10 } });
    const { settled, source } = await charged({ model: 'test/gemini' });
    expect(settled).toBe(10 * PRICES.prompt);
    expect(source).toBe('provider');
  });
});

describe('a negative count is no report, whichever other count would cancel it (QA s42 adapt #3)', () => {
  const cases: [string, () => FakeProvider, string, unknown][] = [
    ['Anthropic input -100000 + cache writes 100000', () => claude, 'test/claude', { input_tokens: -100_000, cache_creation_input_tokens: 100_000, output_tokens: 5 }],
    ['Anthropic input -1000 + cache reads 1010', () => claude, 'test/claude', { input_tokens: -1_000, cache_read_input_tokens: 1_010, output_tokens: 5 }],
    ['Gemini prompt -1000 + tool-use prompt 1000', () => gemini, 'test/gemini', { promptTokenCount: -1_000, toolUsePromptTokenCount: 1_000, candidatesTokenCount: 5 }],
    ['Gemini candidates -100 + thoughts 100', () => gemini, 'test/gemini', { promptTokenCount: 10, candidatesTokenCount: -100, thoughtsTokenCount: 100 }],
    ['Gemini a negative cached count', () => gemini, 'test/gemini', { promptTokenCount: 10, candidatesTokenCount: 5, cachedContentTokenCount: -10 }],
  ];
  for (const [name, fake, model, usage] of cases) {
    for (const stream of [false, true]) {
      it(`${name} (${stream ? 'streamed' : 'whole'})`, async () => {
        fake().script({ text: TEXT, wireUsage: usage });
        const { status, settled, source } = await charged({ model, stream });
        expect(status).toBe(200);
        expect(settled).toBe(ESTIMATED);
        expect(source).toBe('estimated');
      });
    }
  }
});

describe('a thinking budget never raises the max_tokens sent upstream past what was reserved (QA s42 adapt #1)', () => {
  const sentUpstream = () => claude.requests.at(-1)!.body as { max_tokens: number; thinking?: { budget_tokens: number } };

  for (const [name, reasoning] of [
    ['reasoning.max_tokens 900', { max_tokens: 900 }],
    ['reasoning.effort high (the 1024-token floor)', { effort: 'high' }],
  ] as const) {
    it(`chat with max_tokens 1 and ${name} is a 400 before any upstream call, charging nothing`, async () => {
      const before = claude.requests.length;
      const user = await h.openAccount({ credits: 100 * CENT });
      const res = await h.chat(user.key, { model: 'test/claude', messages: MESSAGES, max_tokens: 1, reasoning });
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { message: string } };
      expect(error.message).toContain('must be less than max_tokens (1)');
      expect(claude.requests.length).toBe(before);
      expect(await h.settledBalance(user.accountId)).toMatchObject({ settled: 0, reserved: 0, available: 100 * CENT });
    });
  }

  it('/api/v1/messages with thinking.budget_tokens at or above max_tokens is a 400 in Anthropic’s shape, as Anthropic answers it', async () => {
    const before = claude.requests.length;
    const user = await h.openAccount({ credits: 100 * CENT });
    for (const budget of [2_000, 1_024]) {
      const res = await fetch(`${h.url}/api/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': user.key },
        body: JSON.stringify({ model: 'test/claude', max_tokens: 1_024, thinking: { type: 'enabled', budget_tokens: budget }, messages: MESSAGES }),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens must be greater than thinking.budget_tokens') } });
    }
    expect(claude.requests.length).toBe(before);
    expect(await h.settledBalance(user.accountId)).toMatchObject({ settled: 0, reserved: 0 });
  });

  it("a budget below max_tokens is sent with the client's max_tokens, and the output it reports is billed in full", async () => {
    claude.script({ text: TEXT, wireUsage: { input_tokens: 10, output_tokens: 1_900 } });
    const { status, settled, source } = await charged({ model: 'test/claude', max_tokens: 2_000, reasoning: { max_tokens: 1_500 } });
    expect(status).toBe(200);
    expect(sentUpstream()).toMatchObject({ max_tokens: 2_000, thinking: { budget_tokens: 1_500 } });
    expect(settled).toBe(10 * PRICES.prompt + 1_900 * PRICES.completion);
    expect(source).toBe('provider');
  });

  it("without max_tokens, the budget's room is what the endpoint allows (what was reserved), never more", async () => {
    claude.script({ text: TEXT, wireUsage: { input_tokens: 10, output_tokens: 3_500 } });
    const { status, settled } = await charged({ model: 'test/claude', reasoning: { max_tokens: 3_000 } });
    expect(status).toBe(200);
    // The endpoint's max output is 4,000: 3,000 of thinking and the rest for the answer, not 3,000 + 4,096.
    expect(sentUpstream()).toMatchObject({ max_tokens: 4_000, thinking: { budget_tokens: 3_000 } });
    expect(settled).toBe(10 * PRICES.prompt + 3_500 * PRICES.completion);
    // And a budget the endpoint has no room for is refused, not sent with a larger max_tokens.
    const user = await h.openAccount({ credits: 100 * CENT });
    const res = await h.chat(user.key, { model: 'test/claude', messages: MESSAGES, reasoning: { max_tokens: 4_000 } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('must be less than the 4000 output tokens');
  });
});
