/**
 * The Responses skin (`POST /api/v1/responses`) with the official `openai` SDK's `responses.create` and
 * `responses.stream`: text, instructions, multi-turn input items, a function tool round trip through an OpenAI- and an
 * Anthropic-protocol upstream, structured output, the streaming event sequence, typed errors, exact charges and a
 * client that leaves mid-stream.
 */
import OpenAI from 'openai';
import type { ResponseInputItem, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeSignature, type FakeProvider } from '../support/fakeProviders.js';
import { costOf, promptEstimate, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 150, completion: 600 };
const DEAR = { prompt: 1_000, completion: 100_000 };
const WEATHER = { type: 'function' as const, name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: true };

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let gpt: FakeProvider;
let claude: FakeProvider;
let dear: FakeProvider;
let thinker: FakeProvider;

type Sent = { messages: any[]; tools?: any[]; max_tokens?: number; response_format?: unknown; tool_choice?: unknown; system?: unknown; reasoning_effort?: unknown };
const lastBody = (fake: FakeProvider) => fake.requests.at(-1)!.body as Sent;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  gpt = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-openai', model: 'test/resp-gpt', prices: PRICES });
  gpt.setDefault({ usage: { promptTokens: 40, completionTokens: 12 } });
  claude = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'fake-anthropic', model: 'test/resp-claude', prices: PRICES });
  claude.setDefault({ usage: { promptTokens: 30, completionTokens: 9 } });
  dear = await h.fakeEndpoint({ protocol: 'openai', slug: 'dear', model: 'test/resp-dear', prices: DEAR, maxOutput: 1_000 });
  // Room for Anthropic's smallest thinking budget (1,024 tokens) within max_tokens.
  thinker = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'thinker', model: 'test/resp-thinker', prices: PRICES, maxOutput: 8_192 });
});
afterAll(async () => {
  await h.stop();
});

describe('responses.create', () => {
  it('answers a string input with instructions as a Response object, charged exactly the reported usage', async () => {
    const before = await h.settledBalance(user.accountId);
    const { data: response, response: http } = await client.responses
      .create({ model: 'test/resp-gpt', instructions: 'Be brief', input: 'Say hello to the gateway', max_output_tokens: 64, temperature: 0.5, metadata: { ticket: 'T-1' } })
      .withResponse();
    expect(response.id).toMatch(/^resp_/);
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(response.model).toBe('test/resp-gpt');
    expect(response.output_text).toBe('Echo: Say hello to the gateway');
    expect(response.output).toEqual([
      { type: 'message', id: expect.stringMatching(/^msg_/), role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Echo: Say hello to the gateway', annotations: [], logprobs: [] }] },
    ]);
    expect(response.instructions).toBe('Be brief');
    expect(response.metadata).toEqual({ ticket: 'T-1' });
    expect(response.max_output_tokens).toBe(64);
    expect(response.usage).toMatchObject({ input_tokens: 40, output_tokens: 12, total_tokens: 52, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } });
    expect((response.usage as unknown as { cost: number }).cost).toBeCloseTo(costOf(PRICES, 40, 12) / 1e9, 12);
    // The upstream got a chat request: instructions as the system message, max_output_tokens as max_tokens.
    expect(lastBody(gpt).messages).toEqual([
      { role: 'system', content: 'Be brief' },
      { role: 'user', content: 'Say hello to the gateway' },
    ]);
    expect(lastBody(gpt).max_tokens).toBe(64);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 40, 12));
    expect(after.reserved).toBe(0);
    // The generation is recorded under the id of the X-Generation-Id header, as coming through the Responses API.
    const generationId = http.headers.get('x-generation-id')!;
    expect(response.id).toBe(`resp_${generationId.slice(4)}`);
    const record = (await (await fetch(`${h.url}/api/v1/generation?id=${generationId}`, { headers: { authorization: `Bearer ${user.key}` } })).json()) as { data: Record<string, unknown> };
    expect(record.data).toMatchObject({ id: generationId, api_type: 'responses', model: 'test/resp-gpt', tokens_prompt: 40, tokens_completion: 12 });
    // The response's own id (all its client sees) finds the same record.
    const byResponseId = (await (await fetch(`${h.url}/api/v1/generation?id=${response.id}`, { headers: { authorization: `Bearer ${user.key}` } })).json()) as { data: Record<string, unknown> };
    expect(byResponseId.data).toEqual(record.data);
  });

  it('takes a multi-turn conversation as input items (easy messages, a previous output message, input_text parts)', async () => {
    const input: ResponseInputItem[] = [
      { role: 'developer', content: 'Answer in English' },
      { role: 'user', content: 'My name is Ada' },
      { type: 'message', id: 'msg_prev', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello Ada', annotations: [] }] },
      { role: 'user', content: [{ type: 'input_text', text: 'What is ' }, { type: 'input_text', text: 'my name?' }] },
    ];
    const response = await client.responses.create({ model: 'test/resp-gpt', input });
    expect(response.output_text).toBe('Echo: What is my name?');
    expect(lastBody(gpt).messages).toEqual([
      { role: 'developer', content: 'Answer in English' },
      { role: 'user', content: 'My name is Ada' },
      { role: 'assistant', content: 'Hello Ada' },
      { role: 'user', content: [{ type: 'text', text: 'What is ' }, { type: 'text', text: 'my name?' }] },
    ]);
  });

  for (const [protocol, model, fake] of [
    ['OpenAI', 'test/resp-gpt', () => gpt],
    ['Anthropic', 'test/resp-claude', () => claude],
  ] as const) {
    it(`runs a function tool round trip through an ${protocol}-protocol upstream (function_call, then function_call_output)`, async () => {
      fake().script({ toolCall: { id: 'call_w1', name: 'get_weather', arguments: { city: 'Paris' } } });
      const first = await client.responses.create({ model, input: 'Weather in Paris?', tools: [WEATHER], tool_choice: 'auto' });
      expect(first.status).toBe('completed');
      expect(first.output).toEqual([{ type: 'function_call', id: expect.stringMatching(/^fc_/), call_id: 'call_w1', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' }]);
      expect(first.output_text).toBe('');
      expect(first.tools).toEqual([expect.objectContaining({ type: 'function', name: 'get_weather', strict: true })]);
      const sentTools = lastBody(fake()).tools!;
      if (protocol === 'OpenAI') expect(sentTools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: WEATHER.parameters, strict: true } }]);
      else expect(sentTools).toEqual([expect.objectContaining({ name: 'get_weather', input_schema: WEATHER.parameters })]);

      fake().script({ text: 'It is 20 degrees in Paris.' });
      const call = first.output[0]!;
      const second = await client.responses.create({
        model,
        tools: [WEATHER],
        input: [{ role: 'user', content: 'Weather in Paris?' }, ...(first.output as ResponseInputItem[]), { type: 'function_call_output', call_id: call.type === 'function_call' ? call.call_id : '', output: '{"celsius":20}' }],
      });
      expect(second.output_text).toBe('It is 20 degrees in Paris.');
      const messages = lastBody(fake()).messages;
      if (protocol === 'OpenAI') {
        expect(messages).toEqual([
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_w1', content: '{"celsius":20}' },
        ]);
      } else {
        expect(messages[1]).toMatchObject({ role: 'assistant', content: [{ type: 'tool_use', id: 'call_w1', name: 'get_weather', input: { city: 'Paris' } }] });
        expect(messages[2]).toMatchObject({ role: 'user', content: [expect.objectContaining({ type: 'tool_result', tool_use_id: 'call_w1' })] });
      }
    });
  }

  it('a tool loop with reasoning on an Anthropic upstream carries the signed thinking block in encrypted_content and back (JSON and streamed)', async () => {
    const thought = 'The user wants Paris; call the tool.';
    for (const streamed of [false, true]) {
      thinker.script({ reasoning: thought, toolCall: { id: 'toolu_r1', name: 'get_weather', arguments: { city: 'Paris' } } });
      const ask = { model: 'test/resp-thinker', input: 'Weather in Paris?', tools: [WEATHER], reasoning: { effort: 'high' as const }, max_output_tokens: 4_096 };
      const first = streamed ? await client.responses.stream(ask).finalResponse() : await client.responses.create(ask);
      expect((lastBody(thinker) as Sent & { thinking?: unknown }).thinking).toMatchObject({ type: 'enabled' });
      expect(first.output).toEqual([
        { type: 'reasoning', id: expect.stringMatching(/^rs_/), summary: [], content: [{ type: 'reasoning_text', text: thought }], encrypted_content: expect.any(String), status: 'completed' },
        // (responses.stream() adds the strict tool's parsed_arguments.)
        expect.objectContaining({ type: 'function_call', id: expect.stringMatching(/^fc_/), call_id: 'toolu_r1', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' }),
      ]);

      // Sent back as OpenAI documents (the output items, then the call's output): the fake refuses, as Anthropic does, a
      // tool loop whose assistant turn does not start with its signed thinking block.
      thinker.script({ text: 'It is 20 degrees in Paris.' });
      const history: ResponseInputItem[] = [{ role: 'user', content: 'Weather in Paris?' }, ...(first.output as ResponseInputItem[]), { type: 'function_call_output', call_id: 'toolu_r1', output: '{"celsius":20}' }];
      const second = await client.responses.create({ ...ask, input: history });
      expect(second.output_text).toBe('It is 20 degrees in Paris.');
      expect(lastBody(thinker).messages[1]).toEqual({
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: thought, signature: fakeSignature(thought) },
          { type: 'tool_use', id: 'toolu_r1', name: 'get_weather', input: { city: 'Paris' } },
        ],
      });
    }
  });

  it("a reasoning item's encrypted_content that this API did not write is left out (another API's), and a damaged one is a 400", async () => {
    thinker.script({ text: 'Fine.' });
    const reasoning = (encrypted_content: string): ResponseInputItem => ({ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content });
    const call: ResponseInputItem = { type: 'function_call', call_id: 'toolu_x', name: 'get_weather', arguments: '{"city":"Oslo"}' };
    const input: ResponseInputItem[] = [{ role: 'user', content: 'Weather in Oslo?' }, reasoning('gAAAAABo-openai-encrypted'), call, { type: 'function_call_output', call_id: 'toolu_x', output: '{}' }];
    await client.responses.create({ model: 'test/resp-thinker', input, tools: [WEATHER] });
    expect(lastBody(thinker).messages[1]).toEqual({ role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_x', name: 'get_weather', input: { city: 'Oslo' } }] });
    const calls = thinker.requests.length;
    for (const damaged of ['sy1.', 'sy1.bm90IGpzb24', `sy1.${Buffer.from('[{"type":"reasoning.text","signature":7}]').toString('base64url')}`]) {
      input[1] = reasoning(damaged);
      const error = (await client.responses.create({ model: 'test/resp-thinker', input, tools: [WEATHER] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.param).toBe('input[1].encrypted_content');
      expect(error.message).toContain('input[1].encrypted_content');
    }
    expect(thinker.requests.length).toBe(calls);
  });

  it('asks for structured output with text.format json_schema (response_format upstream) and json_object', async () => {
    gpt.script({ text: '{"city":"Paris"}' });
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const response = await client.responses.create({ model: 'test/resp-gpt', input: 'Which city?', text: { format: { type: 'json_schema', name: 'city', schema, strict: true } } });
    expect(JSON.parse(response.output_text)).toEqual({ city: 'Paris' });
    expect(response.text).toEqual({ format: { type: 'json_schema', name: 'city', schema, strict: true } });
    expect(lastBody(gpt).response_format).toEqual({ type: 'json_schema', json_schema: { name: 'city', schema, strict: true } });
    await client.responses.create({ model: 'test/resp-gpt', input: 'Which city?', text: { format: { type: 'json_object' } }, reasoning: { effort: 'low' } });
    expect(lastBody(gpt).response_format).toEqual({ type: 'json_object' });
  });

  it("falls back to the next of OpenRouter's `models` when the first fails, billing the model that answered", async () => {
    gpt.script({ status: 500 });
    gpt.script({ status: 500 });
    const before = await h.settledBalance(user.accountId);
    const body = { model: 'test/resp-gpt', models: ['test/resp-claude'], input: 'Say hello to the gateway' };
    const response = await client.responses.create(body as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(response.model).toBe('test/resp-claude');
    expect(response.output_text).toBe('Echo: Say hello to the gateway');
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 30, 9));
  });

  it('is incomplete with reason max_output_tokens when the answer was cut by the token limit', async () => {
    gpt.script({
      body: { id: 'chatcmpl-cut', object: 'chat.completion', created: 1, model: 'fake-model', choices: [{ index: 0, message: { role: 'assistant', content: 'Once upon a' }, finish_reason: 'length' }], usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 } },
    });
    const response = await client.responses.create({ model: 'test/resp-gpt', input: 'Tell a story', max_output_tokens: 3 });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(response.output_text).toBe('Once upon a');
    expect(response.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
  });
  it('an answer its provider ended with an error (finish_reason "error") is failed, with the error and incomplete items, billed as on chat', async () => {
    const partial = { id: 'chatcmpl-p', object: 'chat.completion', created: 1, model: 'fake-model', choices: [{ index: 0, message: { role: 'assistant', content: 'Partial ans' }, finish_reason: 'error', error: { code: 502, message: 'upstream died mid-generation' } }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } };
    gpt.script({ body: partial });
    const before = await h.settledBalance(user.accountId);
    const { data: response, response: http } = await client.responses.create({ model: 'test/resp-gpt', input: 'Tell a story' }).withResponse();
    expect(http.status).toBe(200);
    expect(response.status).toBe('failed');
    // The chat answer's choices[0].error, in the Response's {code, message}.
    expect(response.error).toEqual({ code: 'server_error', message: expect.stringContaining('HTTP 502') });
    expect(response.incomplete_details).toBeNull();
    expect(response.output_text).toBe('Partial ans');
    expect(response.output).toEqual([{ type: 'message', id: expect.stringMatching(/^msg_/), role: 'assistant', status: 'incomplete', content: [{ type: 'output_text', text: 'Partial ans', annotations: [], logprobs: [] }] }]);
    expect(response.usage).toMatchObject({ input_tokens: 10, output_tokens: 5 });
    // Recorded with that error (the record names the generation the Response's id names).
    expect(await h.generation(user.key, response.id)).toMatchObject({ finish_reason: 'error', switchyard: { status: 'completed', error: { type: 'provider_unavailable', status: 502 } } });
    // Charged as chat/completions charges the same answer: the provider's usage.
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 10, 5));
    expect(after.reserved).toBe(0);
  });
});

describe('streaming', () => {
  it('responses.stream sends the Responses events in order with consecutive sequence numbers, then the final response', async () => {
    const before = await h.settledBalance(user.accountId);
    const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Say hello to the gateway' });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map((e) => e.type);
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas.length).toBeGreaterThan(2);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...deltas.map(() => 'response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events[0]).toMatchObject({ response: { status: 'in_progress', output: [], id: final.id } });
    expect(events.find((e) => e.type === 'response.output_text.done')).toMatchObject({ text: 'Echo: Say hello to the gateway', output_index: 0, content_index: 0 });
    expect(final.status).toBe('completed');
    expect(final.output_text).toBe('Echo: Say hello to the gateway');
    expect(final.usage).toMatchObject({ input_tokens: 40, output_tokens: 12, total_tokens: 52 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 40, 12));
  });

  it('create({stream: true}) streams a function call as function_call_arguments deltas, through Anthropic too', async () => {
    for (const [model, fake] of [
      ['test/resp-gpt', gpt],
      ['test/resp-claude', claude],
    ] as const) {
      fake.script({ toolCall: { id: 'call_s1', name: 'get_weather', arguments: { city: 'Rome' } } });
      const stream = await client.responses.create({ model, input: 'Weather in Rome?', tools: [WEATHER], stream: true });
      const events: ResponseStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const types = events.map((e) => e.type).filter((t) => t !== 'response.function_call_arguments.delta');
      expect(types).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.function_call_arguments.done', 'response.output_item.done', 'response.completed']);
      const args = events.flatMap((e) => (e.type === 'response.function_call_arguments.delta' ? [e.delta] : [])).join('');
      expect(JSON.parse(args)).toEqual({ city: 'Rome' });
      expect(events.find((e) => e.type === 'response.output_item.added')).toMatchObject({ item: { type: 'function_call', call_id: 'call_s1', name: 'get_weather', arguments: '' } });
      const completed = events.at(-1)!;
      expect(completed.type === 'response.completed' && completed.response.output).toEqual([expect.objectContaining({ type: 'function_call', call_id: 'call_s1', name: 'get_weather', arguments: args })]);
    }
  });

  it('streams reasoning as a reasoning item before the message, and a cut answer as response.incomplete', async () => {
    gpt.script({ reasoning: 'The user greets.' });
    const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Say hello', reasoning: { effort: 'high' } });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    const final = await stream.finalResponse();
    expect(types.slice(2, 5)).toEqual(['response.output_item.added', 'response.content_part.added', 'response.reasoning_text.delta']);
    expect(final.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
    expect(final.output[0]).toMatchObject({ type: 'reasoning', content: [{ type: 'reasoning_text', text: 'The user greets.' }] });
    expect(final.output_text).toBe('Echo: Say hello');
    expect(lastBody(gpt).reasoning_effort).toBe('high');

    const chunk = (delta: unknown, finish: string | null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    gpt.script({ headers: { 'content-type': 'text/event-stream' }, body: `${chunk({ role: 'assistant', content: 'Once upon' }, null)}${chunk({}, 'length')}data: [DONE]\n\n` });
    const cut = client.responses.stream({ model: 'test/resp-gpt', input: 'Tell a story', max_output_tokens: 2 });
    const cutTypes: string[] = [];
    for await (const event of cut) cutTypes.push(event.type);
    const incomplete = await cut.finalResponse();
    expect(cutTypes.at(-1)).toBe('response.incomplete');
    expect(incomplete).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, output_text: 'Once upon' });
    expect(incomplete.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
  });

  it('a client that leaves mid-stream is charged for the prompt and the text it was sent', async () => {
    const poorish = await h.openAccount({ credits: 1_000_000_000 });
    const own = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: poorish.key, maxRetries: 0, timeout: 10_000 });
    dear.script({ slowTokenMs: 300 });
    const stream = await own.responses.create({ model: 'test/resp-dear', input: 'Say hello to the gateway', stream: true, max_output_tokens: 100 });
    let text = '';
    let deltas = 0;
    for await (const event of stream) {
      if (event.type !== 'response.output_text.delta') continue;
      text += event.delta;
      if (++deltas === 2) break;
    }
    expect(text).toBe('Echo: Say ');
    expect(await dear.requests.at(-1)!.outcome).toBe('aborted');
    const balance = await h.settledBalance(poorish.accountId);
    expect(balance.settled).toBe(costOf(DEAR, promptEstimate([{ content: 'Say hello to the gateway' }]), Math.ceil(text.length / 4)));
    expect(balance.reserved).toBe(0);
  });

  it('a provider error after the first tokens ends the stream with response.failed alone (as OpenAI does), which responses.stream() resolves with the partial answer', async () => {
    gpt.script({ errorAfterChunks: 3 });
    const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Say hello to the gateway' });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    expect(events.map((e) => e.type)).not.toContain('error');
    const failed = events.at(-1);
    expect(failed).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'server_error', message: expect.stringContaining('fake-openai') } } });
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(text).toBe('Echo: Say ');
    expect(failed!.type === 'response.failed' && failed.response.output).toEqual([expect.objectContaining({ type: 'message', content: [expect.objectContaining({ text })] })]);
    expect(final).toMatchObject({ status: 'failed', error: { code: 'server_error' }, output_text: 'Echo: Say ' });
  });
  it("a stream its provider ended with an error in the stream ends with response.failed carrying the provider's error", async () => {
    gpt.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 429, message: 'rate limited mid-answer' } });
    const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Say hello to the gateway' });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    expect(events.at(-1)!.type).toBe('response.failed');
    expect(final.status).toBe('failed');
    expect(final.error).toEqual({ code: 'rate_limit_exceeded', message: expect.stringContaining('rate limited mid-answer') });
    expect(final.output_text).toBe('Echo: Say ');
  });
  it('an error on a choice that has not finished ends nothing: response.completed with all the text, charged as on chat', async () => {
    const before = await h.settledBalance(user.accountId);
    gpt.script({ inBandError: { afterChunks: 3, shape: 'unfinished', code: 429, message: 'a warning, not an end' }, usage: { promptTokens: 11, completionTokens: 3 } });
    const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Say hello to the gateway' });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    expect(events.at(-1)!.type).toBe('response.completed');
    expect(final).toMatchObject({ status: 'completed', error: null, output_text: 'Echo: Say hello to the gateway' });
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(costOf(PRICES, 11, 3));
  });
  it('a finish_reason "error" whose error is a string or another non-object ends with response.failed, as chat ends with its error chunk', async () => {
    for (const [sent, message] of [
      ['died mid-answer', 'HTTP 502'],
      [42, 'ended the answer with an error'],
    ] as const) {
      const before = await h.settledBalance(user.accountId);
      gpt.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 429, message: 'unused', sent }, usage: { promptTokens: 11, completionTokens: 3 } });
      const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Say hello to the gateway' });
      const events: ResponseStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const final = await stream.finalResponse();
      expect(events.at(-1)!.type).toBe('response.failed');
      expect(final).toMatchObject({ status: 'failed', error: { code: 'server_error', message: expect.stringContaining(message) }, output_text: 'Echo: Say ' });
      expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(costOf(PRICES, 11, 3));
    }
  });
  it('a stream its provider ended with finish_reason "error" ends with response.failed and the error, its items incomplete', async () => {
    const chunk = (delta: unknown, finish: string | null, extra: Record<string, unknown> = {}) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finish, ...extra }] })}\n\n`;
    const usage = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\n`;
    gpt.script({ headers: { 'content-type': 'text/event-stream' }, body: `${chunk({ role: 'assistant', content: 'Partial ' }, null)}${chunk({ content: 'ans' }, null)}${chunk({}, 'error', { error: { code: 502, message: 'upstream died mid-generation' } })}${usage}data: [DONE]\n\n` });
    const before = await h.settledBalance(user.accountId);
    const stream = client.responses.stream({ model: 'test/resp-gpt', input: 'Tell a story' });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    // response.failed alone (an `error` event would make responses.stream() reject and lose the partial answer).
    expect(events.map((e) => e.type).slice(-2)).toEqual(['response.output_item.done', 'response.failed']);
    expect(events.find((e) => e.type === 'response.output_item.done')).toMatchObject({ item: { type: 'message', status: 'incomplete' } });
    // What the SDK's finalResponse() gives is not a finished answer: failed, with the error.
    expect(final.status).toBe('failed');
    expect(final.error).toEqual({ code: 'server_error', message: expect.stringContaining('fake-openai') });
    expect(final.output_text).toBe('Partial ans');
    expect(final.output).toEqual([expect.objectContaining({ type: 'message', status: 'incomplete' })]);
    expect(final.usage).toMatchObject({ input_tokens: 10, output_tokens: 5 });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 10, 5));
    expect(after.reserved).toBe(0);
  });
});

describe('errors in OpenAI shape', () => {
  const refused = async (body: Record<string, unknown>, key = user.key) => {
    const res = await fetch(`${h.url}/api/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
    return { status: res.status, error: ((await res.json()) as { error: { code: string; message: string; type: string; param: string | null; metadata: Record<string, unknown> } }).error };
  };

  it('a bad key is a 401 the SDK reads as AuthenticationError', async () => {
    const bad = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: 'sk-sy-v1-not-a-key', maxRetries: 0 });
    const error = await bad.responses.create({ model: 'test/resp-gpt', input: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).type).toBe('authentication_error');
  });

  it('an unknown model is a 400 with code invalid_prompt and the typed metadata', async () => {
    const error = (await client.responses.create({ model: 'nobody/nothing', input: 'hi' }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.code).toBe('invalid_prompt');
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toContain('nobody/nothing is not a valid model ID');
    expect((error.error as { metadata: { error_type: string } }).metadata.error_type).toBe('invalid_request');
  });

  it('malformed input is a 400 naming the field', async () => {
    expect(await refused({ model: 'test/resp-gpt', input: 42 })).toMatchObject({ status: 400, error: { code: 'invalid_prompt', param: 'input', message: expect.stringContaining('input must be') } });
    expect(await refused({ model: 'test/resp-gpt', input: [] })).toMatchObject({ status: 400, error: { param: 'input' } });
    expect(await refused({ model: 'test/resp-gpt', input: [{ type: 'computer_call_output', call_id: 'x' }] })).toMatchObject({ status: 400, error: { param: 'input[0].type' } });
    expect(await refused({ model: 'test/resp-gpt', input: [{ role: 'user', content: [{ type: 'input_audio' }] }] })).toMatchObject({ status: 400, error: { param: 'input[0].content[0].type' } });
    expect(await refused({ model: 'test/resp-gpt', input: [{ type: 'function_call_output', output: 'x' }] })).toMatchObject({ status: 400, error: { param: 'input[0].call_id' } });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', max_output_tokens: 0 })).toMatchObject({ status: 400, error: { param: 'max_output_tokens' } });
    // Over what the model's endpoints can return: named as this API names it, not as the chat core does.
    expect(await refused({ model: 'test/resp-dear', input: 'hi', max_output_tokens: 5_000 })).toMatchObject({
      status: 400,
      error: { param: 'max_output_tokens', message: 'max_output_tokens 5000 is more than any endpoint of test/resp-dear can return' },
    });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', temperature: 9 })).toMatchObject({ status: 400, error: { param: 'temperature' } });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', text: { format: { type: 'yaml' } } })).toMatchObject({ status: 400, error: { param: 'text.format.type' } });
    expect(await refused({ input: 'hi' })).toMatchObject({ status: 400, error: { param: 'model' } });
    const notJson = await fetch(`${h.url}/api/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: '{"model": ' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: 'invalid_prompt', type: 'invalid_request_error' });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [] } })).toMatchObject({ status: 400, error: { param: 'tool_choice' } });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', metadata: { n: 1 } })).toMatchObject({ status: 400, error: { param: 'metadata' } });
  });

  it("an error the chat core raises on the translated body names this API's field: input, not messages", async () => {
    // An image for a text-only model: the router finds no endpoint that takes the input (a 404 about the conversation).
    const error = await client.responses
      .create({ model: 'test/resp-gpt', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'auto' }] }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).param).toBe('input');
    const raw = await refused({ model: 'test/resp-gpt', instructions: 'Look', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] }] });
    expect(raw).toMatchObject({ status: 404, error: { param: 'input', metadata: { param: 'input' } } });
  });

  it('an unsupported tool type is a 400 naming the tool', async () => {
    const error = (await client.responses.create({ model: 'test/resp-gpt', input: 'hi', tools: [WEATHER, { type: 'web_search' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.param).toBe('tools[1].type');
    expect(error.message).toContain('only function tools');
  });

  it('what needs stored responses is a 400 that says the API is stateless', async () => {
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', previous_response_id: 'resp_1' })).toMatchObject({ status: 400, error: { param: 'previous_response_id', message: expect.stringContaining('stateless') } });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', store: true })).toMatchObject({ status: 400, error: { param: 'store' } });
  });

  it('store and background that are not booleans are a 400 naming the type; store: false is answered', async () => {
    const calls = gpt.requests.length;
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', store: 'yes' })).toMatchObject({ status: 400, error: { code: 'invalid_prompt', param: 'store', message: 'store must be a boolean (got a string)' } });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', store: 1 })).toMatchObject({ status: 400, error: { param: 'store', message: 'store must be a boolean (got a number)' } });
    expect(await refused({ model: 'test/resp-gpt', input: 'hi', background: 'no' })).toMatchObject({ status: 400, error: { param: 'background', message: 'background must be a boolean (got a string)' } });
    expect(gpt.requests.length).toBe(calls);
    const answered = await client.responses.create({ model: 'test/resp-gpt', input: 'hi', store: false });
    expect(answered).toMatchObject({ status: 'completed', store: false });
    expect(await refused({ model: 'test/resp-gpt', input: [{ type: 'item_reference', id: 'msg_1' }] })).toMatchObject({ status: 400, error: { param: 'input[0]' } });
  });

  it('insufficient credits is a 402 with the affordable token count, reserving nothing', async () => {
    const poor = await h.openAccount({ credits: 10_000_000 });
    const { status, error } = await refused({ model: 'test/resp-dear', input: 'Say hello to the gateway', max_output_tokens: 500 }, poor.key);
    expect(status).toBe(402);
    expect(error).toMatchObject({ code: 'payment_required', type: 'insufficient_credits', metadata: { error_type: 'payment_required', limit_source: 'credits', requested_tokens: 500 } });
    expect(error.message).toContain('You requested up to 500 tokens');
    // In the Responses API's words: its output limit is max_output_tokens.
    expect(error.message).toContain('or fewer max_output_tokens.');
    expect(error.message).not.toContain('max_tokens');
    expect(await h.settledBalance(poor.accountId)).toMatchObject({ settled: 0, reserved: 0 });
  });
});
