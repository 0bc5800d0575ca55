/**
 * Anthropic's official SDK (`@anthropic-ai/sdk`) pointed at Switchyard's `/api/v1/messages`: text, system prompts,
 * tool round trips through OpenAI- and Anthropic-protocol upstreams, streaming events, typed errors, exact charges
 * and a client that leaves mid-stream.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { costOf, promptEstimate, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let client: Anthropic;
let openai: FakeProvider;
let anthropic: FakeProvider;
let gemini: FakeProvider;
const PRICES = { prompt: 150, completion: 600 };
const WEATHER_TOOL = { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } };

const sdk = (key: string, options: Partial<ConstructorParameters<typeof Anthropic>[0]> = {}) =>
  new Anthropic({ baseURL: `${h.url}/api`, apiKey: key, maxRetries: 0, timeout: 10_000, ...options });

/** POST a raw body to /api/v1/messages. */
const post = (body: unknown, headers: Record<string, string> = { 'x-api-key': user.key }) =>
  fetch(`${h.url}/api/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

/** Event names and payloads of an SSE body. */
const sseEvents = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      return { event, data: data === undefined ? undefined : (JSON.parse(data) as Record<string, any>) };
    });

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = sdk(user.key);
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-openai', model: 'test/oa-model', prices: PRICES, maxOutput: 4000 });
  openai.setDefault({ usage: { promptTokens: 40, completionTokens: 12 } });
  anthropic = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'fake-anthropic', model: 'test/claude-model', prices: PRICES, maxOutput: 4000 });
  anthropic.setDefault({ usage: { promptTokens: 30, completionTokens: 9 } });
  gemini = await h.fakeEndpoint({ protocol: 'gemini', slug: 'fake-gemini', model: 'test/gemini-model', prices: PRICES });
  gemini.setDefault({ usage: { promptTokens: 20, completionTokens: 7 } });
});
afterAll(async () => {
  await h.stop();
});

describe('messages.create through the Anthropic SDK', () => {
  it('answers with the offline demo model as an Anthropic Message, with the generation id as id and header', async () => {
    const { data: message, response } = await client.messages.create({ model: 'switchyard/demo', max_tokens: 200, messages: [{ role: 'user', content: 'Say hello' }] }).withResponse();
    expect(message).toMatchObject({ type: 'message', role: 'assistant', model: 'switchyard/demo', stop_reason: 'end_turn', stop_sequence: null });
    expect(message.id).toMatch(/^gen-/);
    expect(response.headers.get('x-generation-id')).toBe(message.id);
    expect(message.content).toHaveLength(1);
    expect(message.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('You said: "Say hello"') });
    expect(message.usage.output_tokens).toBeGreaterThan(10);
    expect(message.usage).toMatchObject({ input_tokens: expect.any(Number), cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cost: 0 });
  });

  it('sends the system prompt (string or text blocks) to the upstream as a system message, and charges exactly the reported usage', async () => {
    const before = await h.settledBalance(user.accountId);
    const message = await client.messages.create({
      model: 'test/oa-model',
      max_tokens: 100,
      system: [{ type: 'text', text: 'You are terse.' }, { type: 'text', text: ' Answer in English.' }],
      stop_sequences: ['END'],
      metadata: { user_id: 'end-user-9' },
      messages: [{ role: 'user', content: 'Say hello to the gateway' }],
    });
    expect(message.content).toEqual([{ type: 'text', text: 'Echo: Say hello to the gateway' }]);
    expect(message.usage).toMatchObject({ input_tokens: 40, output_tokens: 12 });
    const expected = costOf(PRICES, 40, 12);
    expect((message.usage as unknown as { cost: number }).cost).toBeCloseTo(expected / 1e9, 12);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(expected);
    expect(after.reserved).toBe(0);
    const sent = openai.requests.at(-1)!.body as Record<string, any>;
    expect(sent.messages[0]).toEqual({ role: 'system', content: [{ type: 'text', text: 'You are terse.' }, { type: 'text', text: ' Answer in English.' }] });
    expect(sent).toMatchObject({ max_tokens: 100, stop: ['END'], user: 'end-user-9' });

    await client.messages.create({ model: 'test/oa-model', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'hi' }] });
    expect((openai.requests.at(-1)!.body as Record<string, any>).messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
  });

  it('passes the sampling parameters the SDK no longer types (temperature, top_p, top_k) on, as the API still takes them', async () => {
    const res = await post({ model: 'test/claude-model', max_tokens: 100, temperature: 0.3, top_p: 0.9, top_k: 5, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(200);
    expect(anthropic.requests.at(-1)!.body).toMatchObject({ max_tokens: 100, temperature: 0.3, top_p: 0.9, top_k: 5 });
    // Out of the ranges the call is held to (OpenRouter's), in the words chat uses, before anything is sent.
    const before = anthropic.requests.length;
    for (const [field, value, message] of [
      ['top_p', 0, 'top_p must be a number greater than 0 and at most 1'],
      ['top_p', -0.5, 'top_p must be a number greater than 0 and at most 1'],
      ['top_k', 0, 'top_k must be an integer between 1 and 1000000'],
      ['top_k', -1, 'top_k must be an integer between 1 and 1000000'],
    ] as const) {
      const refused = await post({ model: 'test/claude-model', max_tokens: 100, [field]: value, messages: [{ role: 'user', content: 'hi' }] });
      expect(refused.status, field).toBe(400);
      expect(await refused.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining(message) } });
    }
    expect(anthropic.requests.length).toBe(before);
  });

  it('accepts the key as Authorization: Bearer (the SDK’s authToken) as well as x-api-key', async () => {
    const bearer = new Anthropic({ baseURL: `${h.url}/api`, authToken: user.key, apiKey: null, maxRetries: 0 });
    const message = await bearer.messages.create({ model: 'switchyard/demo', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(message.type).toBe('message');
  });

  it('reaches a Gemini-protocol upstream too', async () => {
    const message = await client.messages.create({ model: 'test/gemini-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello to Gemini' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'Echo: Say hello to Gemini' }]);
    expect(message.usage).toMatchObject({ input_tokens: 20, output_tokens: 7 });
  });

  it("falls back to the next of OpenRouter's `models` when the first model's upstream fails, as chat does", async () => {
    openai.script({ status: 503 });
    const res = await post({ model: 'test/oa-model', models: ['test/claude-model'], max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }] });
    expect(res.status).toBe(200);
    const message = (await res.json()) as Record<string, any>;
    expect(message).toMatchObject({ model: 'test/claude-model', content: [{ type: 'text', text: 'Echo: Say hello' }], usage: { input_tokens: 30, output_tokens: 9 } });
  });

  it("falls back to OpenRouter's `fallbacks: [{model}]` when the first model's upstream fails", async () => {
    const tried = openai.requests.length;
    openai.script({ status: 500 });
    const res = await post({ model: 'test/oa-model', fallbacks: [{ model: 'test/claude-model' }], max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }] });
    expect(res.status).toBe(200);
    expect(openai.requests.length).toBeGreaterThan(tried);
    const message = (await res.json()) as Record<string, any>;
    expect(message).toMatchObject({ model: 'test/claude-model', content: [{ type: 'text', text: 'Echo: Say hello' }], usage: { input_tokens: 30, output_tokens: 9 } });
  });

  it('refuses `fallbacks` with `models`, with more than 3 entries, or with an entry that is not {model}, as a 400 naming the field', async () => {
    const ask = { model: 'test/oa-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const cases: [Record<string, unknown>, string][] = [
      [{ fallbacks: [{ model: 'test/claude-model' }], models: ['test/claude-model'] }, 'fallbacks cannot be combined with models'],
      [{ fallbacks: ['a/b', 'c/d', 'e/f', 'g/h'].map((model) => ({ model })) }, 'fallbacks must be a list of at most 3 {model} objects'],
      [{ fallbacks: ['test/claude-model'] }, 'fallbacks[0] must be an object {model}'],
      [{ fallbacks: [{ model: 'test/claude-model' }, { name: 'test/claude-model' }] }, 'fallbacks[1].model must be a model id'],
      [{ fallbacks: [{ model: '' }] }, 'fallbacks[0].model must be a model id'],
      [{ fallbacks: { model: 'test/claude-model' } }, 'fallbacks must be a list'],
    ];
    const sent = openai.requests.length;
    for (const [extra, message] of cases) {
      const res = await post({ ...ask, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(await res.json(), JSON.stringify(extra)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining(message) } });
    }
    expect(openai.requests.length).toBe(sent);
  });

  it('shows upstream reasoning as a thinking block before the text, and maps `thinking` to a reasoning budget', async () => {
    openai.script({ reasoning: 'Because it is polite.' });
    const message = await client.messages.create({ model: 'test/oa-model', max_tokens: 200, messages: [{ role: 'user', content: 'Why greet?' }] });
    expect(message.content).toEqual([
      { type: 'thinking', thinking: 'Because it is polite.', signature: '' },
      { type: 'text', text: 'Echo: Why greet?' },
    ]);
    await client.messages.create({ model: 'test/claude-model', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'Why greet?' }] });
    expect(anthropic.requests.at(-1)!.body).toMatchObject({ max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } });
    // That unsigned thinking block, sent back in the next turn to a Claude model, is not replayed (Anthropic refuses
    // a thinking block without a valid signature); a signed one is.
    await client.messages.create({
      model: 'test/claude-model',
      max_tokens: 200,
      messages: [
        { role: 'user', content: 'Why greet?' },
        { role: 'assistant', content: [...message.content, { type: 'thinking', thinking: 'Signed thoughts.', signature: 'sig-1' }] as never },
        { role: 'user', content: 'And then?' },
      ],
    });
    expect((anthropic.requests.at(-1)!.body as { messages: { content: unknown[] }[] }).messages[1]!.content).toEqual([
      { type: 'thinking', thinking: 'Signed thoughts.', signature: 'sig-1' },
      { type: 'text', text: 'Echo: Why greet?' },
    ]);
  });

  it("names the stop sequence that ended the answer when the upstream (Anthropic's protocol) says which, whole and streamed", async () => {
    anthropic.script({ text: 'Counting: one two', stopSequence: 'END' });
    const message = await client.messages.create({ model: 'test/claude-model', max_tokens: 50, stop_sequences: ['STOP', 'END'], messages: [{ role: 'user', content: 'Count' }] });
    expect(message).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(anthropic.requests.at(-1)!.body).toMatchObject({ stop_sequences: ['STOP', 'END'] });

    anthropic.script({ text: 'Counting: one two', stopSequence: 'END' });
    const stream = client.messages.stream({ model: 'test/claude-model', max_tokens: 50, stop_sequences: ['END'], messages: [{ role: 'user', content: 'Count' }] });
    const deltas: unknown[] = [];
    stream.on('streamEvent', (event) => {
      if (event.type === 'message_delta') deltas.push(event.delta);
    });
    const final = await stream.finalMessage();
    expect(deltas).toEqual([{ stop_reason: 'stop_sequence', stop_sequence: 'END' }]);
    expect(final).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });

    // A natural end says null, as before.
    const natural = await client.messages.create({ model: 'test/claude-model', max_tokens: 50, stop_sequences: ['END'], messages: [{ role: 'user', content: 'Count' }] });
    expect(natural).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
  });

  it('keeps stop_sequence out of chat/completions (OpenAI has no such field), whole and streamed, when the upstream named one', async () => {
    anthropic.script({ text: 'Counting: one two', stopSequence: 'END' });
    const whole = (await (await h.chat(user.key, { model: 'test/claude-model', stop: ['END'], messages: [{ role: 'user', content: 'Count' }] })).json()) as { choices: Record<string, unknown>[] };
    expect(whole.choices[0]).toMatchObject({ finish_reason: 'stop', native_finish_reason: 'stop_sequence' });
    expect(whole.choices[0]).not.toHaveProperty('stop_sequence');

    anthropic.script({ text: 'Counting: one two', stopSequence: 'END' });
    const streamed = await readSseResponse(await h.chat(user.key, { model: 'test/claude-model', stream: true, stop: ['END'], messages: [{ role: 'user', content: 'Count' }] }));
    const finishing = streamed.events.filter((e) => e.choices?.[0]?.finish_reason != null);
    expect(finishing).toHaveLength(1);
    expect(finishing[0].choices[0]).toMatchObject({ finish_reason: 'stop', native_finish_reason: 'stop_sequence' });
    for (const event of streamed.events) for (const choice of event.choices ?? []) expect(choice).not.toHaveProperty('stop_sequence');
  });

  it('maps a length finish to max_tokens', async () => {
    const message = await client.messages.create({ model: 'switchyard/demo', max_tokens: 3, messages: [{ role: 'user', content: 'Say hello' }] });
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(3);
  });
});

describe("Anthropic's prompt caching and beta flags", () => {
  const hello = [{ role: 'user' as const, content: 'hello' }];

  it('a top-level cache_control (automatic caching) reaches an Anthropic-protocol upstream, and no other', async () => {
    await client.messages.create({ model: 'test/claude-model', max_tokens: 50, messages: hello, cache_control: { type: 'ephemeral', ttl: '1h' } });
    expect(anthropic.requests.at(-1)!.body).toMatchObject({ cache_control: { type: 'ephemeral', ttl: '1h' } });
    await client.messages.create({ model: 'test/claude-model', max_tokens: 50, messages: hello, cache_control: { type: 'ephemeral' } });
    expect((anthropic.requests.at(-1)!.body as Record<string, unknown>).cache_control).toEqual({ type: 'ephemeral' });
    await client.messages.create({ model: 'test/oa-model', max_tokens: 50, messages: hello, cache_control: { type: 'ephemeral' } });
    expect(openai.requests.at(-1)!.body).not.toHaveProperty('cache_control');
    await client.messages.create({ model: 'test/claude-model', max_tokens: 50, messages: hello });
    expect(anthropic.requests.at(-1)!.body).not.toHaveProperty('cache_control');
  });

  it("the SDK's betas (the anthropic-beta header) reach an Anthropic-protocol upstream as anthropic-beta, and never another upstream", async () => {
    const betas = ['interleaved-thinking-2025-05-14', 'structured-outputs-2025-11-13'];
    await client.beta.messages.create({ model: 'test/claude-model', max_tokens: 50, messages: hello, betas });
    expect(anthropic.requests.at(-1)!.headers['anthropic-beta']).toBe(betas.join(','));
    // OpenRouter's x-anthropic-beta is read here too; the two merge, each flag once.
    const res = await post({ model: 'test/claude-model', max_tokens: 50, messages: hello }, { 'x-api-key': user.key, 'anthropic-beta': betas[0]!, 'x-anthropic-beta': `${betas[1]!},${betas[0]!}` });
    expect(res.status).toBe(200);
    expect(anthropic.requests.at(-1)!.headers['anthropic-beta']).toBe(betas.join(','));
    await client.beta.messages.create({ model: 'test/oa-model', max_tokens: 50, messages: hello, betas });
    expect(openai.requests.at(-1)!.headers).not.toHaveProperty('anthropic-beta');
    await client.messages.create({ model: 'test/claude-model', max_tokens: 50, messages: hello });
    expect(anthropic.requests.at(-1)!.headers).not.toHaveProperty('anthropic-beta');
  });

  it('a malformed cache_control or anthropic-beta is a 400 invalid_request_error naming it, before any upstream is called', async () => {
    const before = anthropic.requests.length;
    for (const cacheControl of [{ type: 'persistent' }, { type: 'ephemeral', ttl: '2h' }, 'ephemeral']) {
      const res = await post({ model: 'test/claude-model', max_tokens: 50, messages: hello, cache_control: cacheControl });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/^cache_control/) } });
    }
    for (const beta of ['not a beta', 'a;b', Array.from({ length: 21 }, (_, i) => `beta-${i}`).join(',')]) {
      const res = await post({ model: 'test/claude-model', max_tokens: 50, messages: hello }, { 'x-api-key': user.key, 'anthropic-beta': beta });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('anthropic-beta must be a comma-separated list') } });
    }
    expect(anthropic.requests.length).toBe(before);
  });
});

describe('a tool call round trip', () => {
  const roundTrip = async (model: string, fake: FakeProvider) => {
    fake.script({ toolCall: { name: 'get_weather', arguments: { city: 'Paris' }, id: 'toolu_01' } });
    const first = await client.messages.create({
      model,
      max_tokens: 200,
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    expect(first.stop_reason).toBe('tool_use');
    const call = first.content.find((b) => b.type === 'tool_use');
    expect(call).toEqual({ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } });
    const firstSent = fake.requests.at(-1)!.body as Record<string, any>;

    const second = await client.messages.create({
      model,
      max_tokens: 200,
      tools: [WEATHER_TOOL],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'Sunny, 24°C' }, { type: 'text', text: 'Summarise it' }] },
      ],
    });
    expect(second.stop_reason).toBe('end_turn');
    expect(second.content).toEqual([{ type: 'text', text: 'Echo: Summarise it' }]);
    return { firstSent, secondSent: fake.requests.at(-1)!.body as Record<string, any> };
  };

  it('through an OpenAI-protocol upstream: tool_use becomes tool_calls and tool_result a tool message', async () => {
    const { firstSent, secondSent } = await roundTrip('test/oa-model', openai);
    expect(firstSent.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: WEATHER_TOOL.input_schema } }]);
    expect(firstSent.tool_choice).toBe('required');
    expect(secondSent.messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_01', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_01', content: 'Sunny, 24°C' },
      { role: 'user', content: [{ type: 'text', text: 'Summarise it' }] },
    ]);
  });

  it('through an Anthropic-protocol upstream: the blocks arrive as Anthropic blocks again', async () => {
    const { firstSent, secondSent } = await roundTrip('test/claude-model', anthropic);
    expect(firstSent.tools).toEqual([{ name: 'get_weather', description: 'Weather in a city', input_schema: WEATHER_TOOL.input_schema }]);
    expect(firstSent.tool_choice).toEqual({ type: 'any' });
    expect(secondSent.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'Sunny, 24°C' }, { type: 'text', text: 'Summarise it' }] },
    ]);
  });

  it('arguments nested deeper than JSON may nest here (5,000 levels) come as the raw text under _raw, a 200 as on chat, charged once', async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const answer = {
      id: 'chatcmpl-deep',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'fake-model',
      choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_deep', type: 'function', function: { name: 'get_weather', arguments: deep } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
    };
    const shallow = { ...answer, choices: [{ ...answer.choices[0]!, message: { ...answer.choices[0]!.message, tool_calls: [{ id: 'call_ok', type: 'function', function: { name: 'get_weather', arguments: '{"city":{"name":"Oslo"}}' } }] } }] };
    openai.script({ body: answer });
    const before = await h.settledBalance(user.accountId);
    const res = await post({ model: 'test/oa-model', max_tokens: 100, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'hi' }] });
    const text = await res.text();
    expect(res.status, text.slice(0, 300)).toBe(200);
    const message = JSON.parse(text) as { stop_reason: string; content: { type: string; id?: string; input?: unknown }[] };
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([{ type: 'tool_use', id: 'call_deep', name: 'get_weather', input: { _raw: deep } }]);
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(costOf(PRICES, 40, 12));
    // Nesting within the bound is still an object.
    openai.script({ body: shallow });
    const ok = await client.messages.create({ model: 'test/oa-model', max_tokens: 100, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'hi' }] });
    expect(ok.content).toEqual([{ type: 'tool_use', id: 'call_ok', name: 'get_weather', input: { city: { name: 'Oslo' } } }]);
  });

  it('passes images, PDFs and text documents on as Anthropic image and document blocks', async () => {
    // A seeded model that takes documents, served here by the fake upstream.
    await h.fakeEndpoint({ protocol: 'anthropic', slug: 'fake-claude', model: 'anthropic/claude-3.5-sonnet', prices: PRICES, reuse: anthropic });
    await client.messages.create({
      model: 'anthropic/claude-3.5-sonnet',
      max_tokens: 50,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQ=' }, title: 'spec.pdf' },
            { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'Plain notes ✓' } },
            { type: 'text', text: 'Describe both' },
          ],
        },
      ],
    });
    const sent = anthropic.requests.at(-1)!.body as Record<string, any>;
    expect(sent.messages[0].content).toEqual([
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQ=' }, title: 'spec.pdf' },
      { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'Plain notes ✓' } },
      { type: 'text', text: 'Describe both' },
    ]);
  });
});

describe('streaming', () => {
  it('client.messages.stream gives text events and a final message with the billed usage, charged exactly', async () => {
    const before = await h.settledBalance(user.accountId);
    const stream = client.messages.stream({ model: 'test/oa-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    const pieces: string[] = [];
    stream.on('text', (text) => pieces.push(text));
    const final = await stream.finalMessage();
    expect(pieces.length).toBeGreaterThan(2);
    expect(pieces.join('')).toBe('Echo: Say hello to the gateway');
    expect(final.content).toEqual([{ type: 'text', text: 'Echo: Say hello to the gateway' }]);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage).toMatchObject({ input_tokens: 40, output_tokens: 12 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 40, 12));
  });

  it("sends Anthropic's events in Anthropic's order", async () => {
    const res = await post({ model: 'test/claude-model', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = sseEvents(await res.text());
    const names = events.map((e) => e.event);
    expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(new Set(names.slice(3, -3))).toEqual(new Set(['content_block_delta']));
    for (const e of events) expect(e.data!.type).toBe(e.event);
    expect(events[0]!.data!.message).toMatchObject({ id: res.headers.get('x-generation-id'), type: 'message', role: 'assistant', content: [], model: 'test/claude-model' });
    expect(events[1]!.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    expect(events[3]!.data).toEqual({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Echo: ' } });
    expect(events.at(-2)!.data).toMatchObject({ delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 30, output_tokens: 9 } });
    // OpenRouter's addition: the billed cost in USD rides in the closing usage (the SDK's finalMessage drops it).
    expect((events.at(-2)!.data as { usage: { cost: number } }).usage.cost).toBeCloseTo(costOf(PRICES, 30, 9) / 1e9, 12);
    // OpenRouter's addition: the billed cost in USD rides in the closing usage (the SDK's finalMessage drops it).
    expect((events.at(-2)!.data as { usage: { cost: number } }).usage.cost).toBeCloseTo(costOf(PRICES, 30, 9) / 1e9, 12);
  });

  it('streams a tool call as a tool_use block with input_json_delta, from either protocol', async () => {
    for (const [model, fake] of [['test/oa-model', openai], ['test/claude-model', anthropic]] as const) {
      fake.script({ toolCall: { name: 'get_weather', arguments: { city: 'Oslo', unit: 'celsius' }, id: 'toolu_9' } });
      const stream = client.messages.stream({ model, max_tokens: 100, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
      const json: string[] = [];
      stream.on('inputJson', (partial) => json.push(partial));
      const final = await stream.finalMessage();
      expect(final.stop_reason).toBe('tool_use');
      expect(final.content).toEqual([{ type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Oslo', unit: 'celsius' } }]);
      expect(json.length).toBeGreaterThan(1);
      expect(json.join('')).toBe('{"city":"Oslo","unit":"celsius"}');
    }
  });

  it('a provider error after the first tokens arrives as an `event: error` the SDK throws', async () => {
    openai.script({ errorAfterChunks: 3 });
    const res = await post({ model: 'test/oa-model', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    const events = sseEvents(await res.text());
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { type: 'error', error: { type: 'api_error', message: expect.stringContaining('fake-openai') } } });
    expect(events.map((e) => e.event)).not.toContain('message_stop');

    openai.script({ errorAfterChunks: 3 });
    const stream = client.messages.stream({ model: 'test/oa-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    const error = await stream.finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('api_error');
  });

  it('a client that aborts mid-stream is charged for the prompt and the tokens it was sent', async () => {
    const leaver = await h.openAccount({ credits: 1_000_000_000 });
    openai.script({ slowTokenMs: 300 });
    const stream = sdk(leaver.key).messages.stream({ model: 'test/oa-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello to the gateway' }] });
    let text = '';
    let pieces = 0;
    await new Promise<void>((resolve) => {
      stream.on('text', (t) => {
        text += t;
        pieces += 1;
        if (pieces === 2) {
          stream.abort();
          resolve();
        }
      });
    });
    await stream.done().catch(() => undefined);
    expect(text).toBe('Echo: Say ');
    expect(await openai.requests.at(-1)!.outcome).toBe('aborted');
    const balance = await h.settledBalance(leaver.accountId);
    expect(balance.settled).toBe(costOf(PRICES, promptEstimate([{ content: 'Say hello to the gateway' }]), Math.ceil(text.length / 4)));
    expect(balance.reserved).toBe(0);
  });
});

describe('an answer its provider ended with an error mid-generation (finish_reason "error")', () => {
  const choiceError = { code: 502, message: 'upstream died mid-generation' };
  const wholePartial = {
    id: 'chatcmpl-p',
    object: 'chat.completion',
    created: 1,
    model: 'fake-model',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Partial ans' }, finish_reason: 'error', error: choiceError }],
    usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
  };
  const chunk = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-p', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices, ...(usage !== undefined && { usage }) })}\n\n`;
  const streamedPartial = {
    headers: { 'content-type': 'text/event-stream' },
    body:
      chunk([{ index: 0, delta: { role: 'assistant', content: 'Partial ans' }, finish_reason: null }]) +
      chunk([{ index: 0, delta: {}, finish_reason: 'error', error: choiceError }]) +
      chunk([], { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 }) +
      'data: [DONE]\n\n',
  };
  const ask = { model: 'test/oa-model', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Say hello to the gateway' }] };

  it('whole: an error in Anthropic’s shape (not a 200 end_turn) the SDK throws, charged on the provider’s usage as on chat', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    openai.script({ body: wholePartial });
    const res = await post(ask, { 'x-api-key': payer.key });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { type: string; error: { type: string; message: string }; request_id: string };
    expect(body).toMatchObject({ type: 'error', error: { type: 'api_error', message: expect.stringContaining('fake-openai') }, request_id: res.headers.get('x-request-id') });
    const id = res.headers.get('x-generation-id')!;
    expect(await h.generation(payer.key, id)).toMatchObject({ finish_reason: 'error', tokens_prompt: 11, tokens_completion: 3 });
    expect((await h.settledBalance(payer.accountId)).settled).toBe(costOf(PRICES, 11, 3));

    expect(res.headers.get('x-should-retry')).toBe('false');

    // With the SDK's own retries (2 by default, of every 5xx): x-should-retry stops them, so one call is charged once.
    const asked = openai.requests.length;
    openai.script({ body: wholePartial });
    const error = await sdk(payer.key, { maxRetries: 2 }).messages.create(ask).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.InternalServerError);
    expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('api_error');
    expect(openai.requests.length - asked).toBe(1);
    expect((await h.settledBalance(payer.accountId)).settled).toBe(2 * costOf(PRICES, 11, 3));
  });

  it('streamed: the partial content, then an `event: error` (no message_delta / message_stop) the SDK throws, charged as on chat', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    openai.script(streamedPartial);
    const res = await post({ ...ask, stream: true }, { 'x-api-key': payer.key });
    expect(res.status).toBe(200);
    const events = sseEvents(await res.text());
    const names = events.map((e) => e.event);
    expect(names).toContain('content_block_delta');
    expect(names).not.toContain('message_delta');
    expect(names).not.toContain('message_stop');
    expect(events.find((e) => e.event === 'content_block_delta')!.data).toMatchObject({ delta: { type: 'text_delta', text: 'Partial ans' } });
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { type: 'error', error: { type: 'api_error', message: expect.stringContaining('fake-openai') } } });
    const id = res.headers.get('x-generation-id')!;
    expect(await h.generation(payer.key, id)).toMatchObject({ finish_reason: 'error', tokens_prompt: 11, tokens_completion: 3 });
    expect((await h.settledBalance(payer.accountId)).settled).toBe(costOf(PRICES, 11, 3));

    openai.script(streamedPartial);
    const stream = sdk(payer.key).messages.stream(ask);
    let text = '';
    stream.on('text', (t) => (text += t));
    const error = await stream.finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('api_error');
    expect(text).toBe('Partial ans');
  });

  it('streamed: the `event: error` is the provider’s own error (its type and message), as chat’s error chunk gives it', async () => {
    // A 429 the provider sent in the stream: rate_limit_error with its message (a 4xx one is shown), not a generic 502.
    openai.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 429, message: 'rate limited mid-answer' } });
    const res = await post({ ...ask, stream: true }, { 'x-api-key': user.key });
    const events = sseEvents(await res.text());
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { type: 'error', error: { type: 'rate_limit_error', message: expect.stringContaining('rate limited mid-answer') } } });
    // The record says the same error (chat's type for it), the answer completed as far as it went.
    expect(await h.generation(user.key, res.headers.get('x-generation-id')!)).toMatchObject({
      finish_reason: 'error',
      switchyard: { status: 'completed', error: { type: 'rate_limit_exceeded', status: 429, message: expect.stringContaining('rate limited mid-answer') } },
    });

    openai.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 429, message: 'rate limited mid-answer' } });
    const error = await sdk(user.key).messages.stream(ask).finalMessage().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('rate_limit_error');
    expect((error as InstanceType<typeof Anthropic.APIError>).message).toContain('rate limited mid-answer');
  });

  it('streamed: an error on a choice that has not finished ends nothing (end_turn, all the text, charged as on chat)', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    openai.script({ inBandError: { afterChunks: 3, shape: 'unfinished', code: 429, message: 'a warning, not an end' }, usage: { promptTokens: 11, completionTokens: 3 } });
    const res = await post({ ...ask, stream: true }, { 'x-api-key': payer.key });
    const events = sseEvents(await res.text());
    const text = events.flatMap((e) => (e.event === 'content_block_delta' ? [(e.data as { delta: { text: string } }).delta.text] : [])).join('');
    expect(text).toBe('Echo: Say hello to the gateway');
    expect(events.find((e) => e.event === 'message_delta')).toMatchObject({ data: { delta: { stop_reason: 'end_turn' } } });
    expect(events.at(-1)!.event).toBe('message_stop');
    expect(await h.generation(payer.key, res.headers.get('x-generation-id')!)).toMatchObject({ finish_reason: 'stop', tokens_prompt: 11, tokens_completion: 3 });
    expect((await h.settledBalance(payer.accountId)).settled).toBe(costOf(PRICES, 11, 3));
  });

  it('streamed: a finish_reason "error" whose error is a string or another non-object ends with `event: error`, as chat ends with its error chunk', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    for (const [sent, message] of [
      ['died mid-answer', 'HTTP 502'],
      [42, 'ended the answer with an error'],
    ] as const) {
      openai.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 429, message: 'unused', sent }, usage: { promptTokens: 11, completionTokens: 3 } });
      const res = await post({ ...ask, stream: true }, { 'x-api-key': payer.key });
      const events = sseEvents(await res.text());
      expect(events.map((e) => e.event)).not.toContain('message_stop');
      expect(events.at(-1)).toMatchObject({ event: 'error', data: { type: 'error', error: { type: 'api_error', message: expect.stringContaining(message) } } });
      expect(await h.generation(payer.key, res.headers.get('x-generation-id')!)).toMatchObject({ finish_reason: 'error', tokens_prompt: 11, tokens_completion: 3 });
    }
    expect((await h.settledBalance(payer.accountId)).settled).toBe(2 * costOf(PRICES, 11, 3));
  });
});

describe('errors in Anthropic’s shape', () => {
  it('a bad key is a 401 AuthenticationError', async () => {
    const error = await sdk('sk-sy-v1-not-a-key').messages.create({ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: expect.any(String) } });
    const none = await post({ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, {});
    expect(none.status).toBe(401);
  });

  it('every answer and error carries `request-id` (the header the SDK reads: `_request_id`, `requestID`), the x-request-id and the error body’s request_id', async () => {
    const { data: message, response } = await client.messages.create({ model: 'test/oa-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }] }).withResponse();
    const id = response.headers.get('x-request-id');
    expect(id).toBeTruthy();
    expect(response.headers.get('request-id')).toBe(id);
    expect((message as { _request_id?: string | null })._request_id).toBe(id);
    expect(response.headers.get('access-control-expose-headers')).toContain('request-id');

    const stream = client.messages.stream({ model: 'test/oa-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }] });
    const { response: streamed } = await stream.withResponse();
    await stream.finalMessage();
    expect(streamed.headers.get('request-id')).toBe(streamed.headers.get('x-request-id'));
    expect(stream.request_id).toBe(streamed.headers.get('x-request-id'));

    // Errors: before the call (a 400 of the body, a 401) and after it (the upstream refused its key: a 502, not retried).
    const calls = [
      () => client.messages.create({ model: 'nobody/nothing', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      () => sdk('sk-sy-v1-not-a-key').messages.create({ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      () => {
        openai.script({ status: 401 });
        return client.messages.create({ model: 'test/oa-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
      },
    ];
    for (const call of calls) {
      const error = (await call().catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
      expect(error).toBeInstanceOf(Anthropic.APIError);
      expect(error.requestID).toBeTruthy();
      expect(error.requestID).toBe(error.headers?.get('x-request-id'));
      expect((error.error as { request_id: string }).request_id).toBe(error.requestID);
    }
    // Only the Messages route speaks Anthropic's header: chat/completions sends x-request-id alone.
    const chat = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.headers.get('x-request-id')).toBeTruthy();
    expect(chat.headers.get('request-id')).toBeNull();
  });

  it('an unknown model is a 400 BadRequestError naming it, as OpenRouter answers', async () => {
    const error = await client.messages.create({ model: 'nobody/nothing', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    const apiError = error as InstanceType<typeof Anthropic.APIError>;
    expect(apiError.type).toBe('invalid_request_error');
    expect(apiError.apiMessage).toContain('nobody/nothing is not a valid model ID');
  });

  it('a malformed or mistyped body is a 400 that names the field', async () => {
    const broken = await post('{"model": ');
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('Malformed JSON') }, request_id: expect.any(String) });

    const cases: [unknown, string][] = [
      [[1, 2], 'The request body must be a JSON object'],
      [{ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] }, 'max_tokens is required'],
      [{ model: 'switchyard/demo', max_tokens: 'ten', messages: [{ role: 'user', content: 'hi' }] }, 'max_tokens is required'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [] }, 'messages must be a non-empty list'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'system', content: 'hi' }] }, 'messages[0].role must be "user" or "assistant"'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png' } }] }] }, 'messages[0].content[0].source.data'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'video' }] }] }, 'messages[0].content[0].type must be one of text, image'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }] }, 'only an assistant message can hold'],
      [{ model: 'switchyard/demo', max_tokens: 10, temperature: 1.5, messages: [{ role: 'user', content: 'hi' }] }, 'temperature must be a number between 0 and 1'],
      [{ model: 'switchyard/demo', max_tokens: 10, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'hi' }] }, 'server tools'],
      [{ model: 'switchyard/demo', max_tokens: 10, tool_choice: { type: 'sometimes' }, messages: [{ role: 'user', content: 'hi' }] }, 'tool_choice must be'],
      [{ model: 'switchyard/demo', max_tokens: 10, stop_sequences: ['a', 'b', 'c', 'd', 'e'], messages: [{ role: 'user', content: 'hi' }] }, 'stop_sequences must be a list of at most 4'],
      [{ model: 'switchyard/demo', max_tokens: 10, system: 42, messages: [{ role: 'user', content: 'hi' }] }, 'system must be a string or a list of text blocks'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: [] }] }, 'messages[0].content must not be empty'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: { role: 'user', content: 'hi' } }, 'messages must be a non-empty list'],
      [{ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: 5 }] }, 'messages[0].content must be a string or a list of content blocks'],
      [{ model: 'switchyard/demo', max_tokens: 10, stream: 'yes', messages: [{ role: 'user', content: 'hi' }] }, 'stream must be a boolean'],
      [null, 'The request body must be a JSON object'],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const json = (await res.json()) as { type: string; error: { type: string; message: string } };
      expect(json.type).toBe('error');
      expect(json.error.type).toBe('invalid_request_error');
      expect(json.error.message, JSON.stringify(body)).toContain(message);
    }

    const error = await client.messages.create({ model: 'switchyard/demo', max_tokens: -1, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
  });

  it('an account without the credits for the worst case gets a 402 billing_error, and nothing is charged', async () => {
    const poor = await h.openAccount({ credits: 1_000 });
    const error = await sdk(poor.key).messages.create({ model: 'test/oa-model', max_tokens: 500, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    const apiError = error as InstanceType<typeof Anthropic.APIError>;
    expect(apiError.status).toBe(402);
    expect(apiError.type).toBe('billing_error');
    expect(apiError.apiMessage).toContain('This request requires more credits, or fewer max_tokens');
    const balance = await h.settledBalance(poor.accountId);
    expect(balance.settled).toBe(0);
    expect(balance.reserved).toBe(0);
  });

  it('a body over the size limit is a 413 request_too_large; deep nesting is a 400, never a 500', async () => {
    const huge = await post({ model: 'switchyard/demo', max_tokens: 10, messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });

    const depth = 100_000;
    const deep = `{"model":"switchyard/demo","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]}`;
    const res = await post(deep);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', message: 'JSON nested more than 64 levels deep' } });

    const nested = `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const deepTool = await post(`{"model":"switchyard/demo","max_tokens":10,"tools":[{"name":"n","input_schema":${nested}}],"messages":[{"role":"user","content":"hi"}]}`);
    expect(deepTool.status).toBe(400);
    expect(await deepTool.json()).toMatchObject({ error: { type: 'invalid_request_error', message: 'JSON nested more than 64 levels deep' } });
    // The same body shape on chat/completions (the parser both share) was a 500.
    const chat = await fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: `{"model":"switchyard/demo","tools":[{"type":"function","function":{"name":"n","parameters":${nested}}}],"messages":[{"role":"user","content":"hi"}]}`,
    });
    expect(chat.status).toBe(400);
  });
});

describe('the generation record', () => {
  it('names the messages API and the model, as for chat', async () => {
    const message = await client.messages.create({ model: 'test/claude-model', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello' }] });
    await h.running.core.gateway.idle();
    const res = await fetch(`${h.url}/api/v1/generation?id=${message.id}`, { headers: { authorization: `Bearer ${user.key}` } });
    const { data } = (await res.json()) as { data: Record<string, unknown> };
    expect(data).toMatchObject({ id: message.id, api_type: 'messages', model: 'test/claude-model', provider_name: 'fake-anthropic', tokens_prompt: 30, tokens_completion: 9, finish_reason: 'stop' });
  });
});
