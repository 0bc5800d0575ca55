import { describe, expect, it } from 'vitest';
import { anthropicAdapter } from '../../../src/gateway/providers/anthropic/index.js';
import { mapFinishReason } from '../../../src/gateway/providers/anthropic/finishReason.js';
import { ANTHROPIC_DEFAULT_MAX_TOKENS, JSON_OBJECT_INSTRUCTION } from '../../../src/gateway/providers/anthropic/request.js';
import { ProviderError, type ChatMessage, type ChatRequest } from '../../../src/gateway/types.js';
import { assemble, fixtureJson, fixtureText, replaySse } from '../../support/providerFixtures.js';

const target = { baseUrl: 'https://api.anthropic.com/v1', upstreamModel: 'claude-sonnet-4-5', apiKey: 'sk-ant-test' };
const fixture = (name: string): unknown => fixtureJson('anthropic', name);
const chunks = (name: string): string => fixtureText('anthropic', `${name}.chunks.txt`);

function build(req: Partial<ChatRequest>): Record<string, unknown> {
  const upstream = anthropicAdapter.buildRequest({ model: 'anthropic/claude', messages: [{ role: 'user', content: 'hi' }], ...req }, target);
  return JSON.parse(upstream.body) as Record<string, unknown>;
}

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

describe('anthropic adapter: building the request', () => {
  it('refuses what the API would: no user or assistant content, a data: URL that is not base64, a link that is not http(s)', () => {
    const refusal = (req: Partial<ChatRequest>) => {
      try {
        build(req);
      } catch (error) {
        expect(error).toBeInstanceOf(ProviderError);
        expect(error).toMatchObject({ code: 'bad_request', status: 400, retryable: false });
        return (error as ProviderError).message;
      }
      throw new Error('not refused');
    };
    expect(refusal({ messages: [{ role: 'system', content: 'Be brief.' }] })).toMatch(/^messages: there is no user or assistant message with content/);
    expect(refusal({ messages: [{ role: 'user', content: [{ type: 'text', text: '' }] }] })).toMatch(/^messages: there is no user/);
    // With a name (sent as a text part put first), the part is still named as the client sent it.
    expect(refusal({ messages: [{ role: 'user', name: 'bob', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64' } }] }] })).toBe(
      'messages[0].content[0].image_url.url is a data: URL that is not base64 data (data:<media type>;base64,<data>)',
    );
    expect(refusal({ messages: [{ role: 'user', content: 'hi' }, { role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] })).toBe(
      'messages[1].content[0].image_url.url must be an http(s) URL or a base64 data: URL (not file:)',
    );
  });

  it('posts to /messages with the API key, version header and a default max_tokens', () => {
    const upstream = anthropicAdapter.buildRequest({ model: 'anthropic/claude', messages: [{ role: 'user', content: 'hi' }] }, target);
    expect(upstream.url).toBe('https://api.anthropic.com/v1/messages');
    expect(upstream.headers).toMatchObject({ 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' });
    expect(JSON.parse(upstream.body)).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: ANTHROPIC_DEFAULT_MAX_TOKENS,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    });
  });

  it('lifts system and developer messages into the top-level system, keeping cache_control', () => {
    const body = build({
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }] },
        { role: 'developer', content: 'Answer in French.' },
        { role: 'user', content: 'hi' },
      ],
    });
    expect(body.system).toEqual([
      { type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } },
      { type: 'text', text: 'Answer in French.' },
    ]);
    expect(body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
  });

  it('maps images: data URLs to base64 sources, http URLs to url sources', () => {
    const body = build({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    });
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Compare' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('maps a multi-turn tool conversation, merging consecutive tool results into one user turn', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather and time in Paris?' },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'toolu_2', type: 'function', function: { name: 'get_time', arguments: '' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18°C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: '14:00' },
      { role: 'user', content: 'Thanks' },
    ];
    expect(build({ messages }).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather and time in Paris?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'toolu_2', name: 'get_time', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '18°C' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: '14:00' },
          { type: 'text', text: 'Thanks' },
        ],
      },
    ]);
  });

  it('rejects tool-call arguments that are not a JSON object', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'x' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{oops' } }] },
    ];
    expect(() => build({ messages })).toThrow(ProviderError);
  });

  it('maps tools, tool_choice and parallel_tool_calls', () => {
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    expect(build({ tools, tool_choice: 'required' })).toMatchObject({
      tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'any' },
    });
    expect(build({ tools, tool_choice: { type: 'function', function: { name: 'get_weather' } } }).tool_choice).toEqual({ type: 'tool', name: 'get_weather' });
    expect(build({ tools, parallel_tool_calls: false }).tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
    expect(build({ tools, tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
  });

  it('maps max tokens, stop, sampling (temperature clamped to 0..1) and user', () => {
    expect(build({ max_tokens: 50, max_completion_tokens: 60, stop: 'END', temperature: 1.5, top_p: 0.9, top_k: 40, user: 'u-1', seed: 3 })).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 60,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      stop_sequences: ['END'],
      temperature: 1,
      top_p: 0.9,
      top_k: 40,
      metadata: { user_id: 'u-1' },
    });
  });

  it('maps json_schema to native structured output and json_object to a system instruction', () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
    const structured = build({ response_format: { type: 'json_schema', json_schema: { name: 'r', schema } } });
    expect(structured.output_config).toEqual({ format: { type: 'json_schema', schema } });
    expect(structured).not.toHaveProperty('system');
    expect(build({ response_format: { type: 'json_object' } }).system).toEqual([{ type: 'text', text: JSON_OBJECT_INSTRUCTION }]);
  });

  it('enables thinking from reasoning effort, dropping the sampling overrides thinking rejects', () => {
    expect(build({ max_tokens: 10_000, temperature: 0.3, reasoning: { effort: 'high' } })).toMatchObject({
      max_tokens: 10_000,
      thinking: { type: 'enabled', budget_tokens: 8000 },
    });
    expect(build({ max_tokens: 10_000, temperature: 0.3, reasoning: { effort: 'high' } })).not.toHaveProperty('temperature');
    // The budget has a floor of 1024.
    expect(build({ max_tokens: 1100, reasoning: { effort: 'low' } })).toMatchObject({ max_tokens: 1100, thinking: { budget_tokens: 1024 } });
    expect(build({ reasoning: { max_tokens: 2000 } })).toMatchObject({ max_tokens: ANTHROPIC_DEFAULT_MAX_TOKENS, thinking: { budget_tokens: 2000 } });
    expect(build({ reasoning: { effort: 'none' } })).not.toHaveProperty('thinking');
  });

  it("never raises max_tokens above the request's, nor above what was reserved: a budget that does not fit below it is a 400", () => {
    // Thinking is output within max_tokens (QA s42 adapt #1: max_tokens 1 was sent as 1025 and billed as 1).
    for (const reasoning of [{ max_tokens: 900 }, { effort: 'high' as const }, { enabled: true }]) {
      expect(() => build({ max_tokens: 1, reasoning })).toThrow(expect.objectContaining({ code: 'bad_request', status: 400, message: expect.stringContaining('must be less than max_tokens (1)') }));
    }
    expect(() => build({ max_tokens: 2000, reasoning: { max_tokens: 2000 } })).toThrow(/thinking budget \(2000 tokens, from reasoning.max_tokens; Anthropic's smallest is 1024\) must be less than max_tokens \(2000\)/);
    // Without one, max_tokens is the default's, within the endpoint's room; a budget above the default gets the
    // default's room for the answer after it, within that room.
    const within = (room: number, req: Partial<ChatRequest>) =>
      JSON.parse(anthropicAdapter.buildRequest({ model: 'anthropic/claude', messages: [{ role: 'user', content: 'hi' }], ...req }, { ...target, maxOutputTokens: room }).body) as Record<string, unknown>;
    expect(within(1_000, {})).toMatchObject({ max_tokens: 1_000 });
    expect(within(64_000, { reasoning: { max_tokens: 10_000 } })).toMatchObject({ max_tokens: 10_000 + ANTHROPIC_DEFAULT_MAX_TOKENS, thinking: { budget_tokens: 10_000 } });
    expect(within(12_000, { reasoning: { max_tokens: 10_000 } })).toMatchObject({ max_tokens: 12_000, thinking: { budget_tokens: 10_000 } });
    expect(() => within(1_000, { reasoning: { enabled: true } })).toThrow(/must be less than the 1000 output tokens this endpoint allows/);
  });

  it('replays thinking blocks from reasoning_details and trims a trailing prefill', () => {
    const body = build({
      messages: [
        { role: 'user', content: 'x' },
        {
          role: 'assistant',
          content: null,
          reasoning_details: [
            { type: 'reasoning.text', text: 'hmm', signature: 'sig-1', format: 'anthropic-claude-v1' },
            { type: 'reasoning.encrypted', data: 'redacted', format: 'anthropic-claude-v1' },
            { type: 'reasoning.encrypted', data: 'gemini-sig', format: 'google-gemini-v1' },
          ],
          tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'done' },
        { role: 'assistant', content: 'The answer is ' },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'x' }] },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'hmm', signature: 'sig-1' },
          { type: 'redacted_thinking', data: 'redacted' },
          { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'done' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'The answer is' }] },
    ]);
  });

  it('sets stream on streaming requests', () => {
    const upstream = anthropicAdapter.buildRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }, target);
    expect(JSON.parse(upstream.body)).toMatchObject({ stream: true });
    expect(upstream.headers.accept).toBe('text/event-stream');
  });
});

describe('anthropic adapter: parsing a response', () => {
  it('maps a plain message, counting usage the OpenAI way', () => {
    expect(anthropicAdapter.parseResponse(200, fixture('completion'), { created: 1700000000 })).toEqual({
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF',
      object: 'chat.completion',
      created: 1700000000,
      model: 'claude-sonnet-4-20250514',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi! My name is Claude.' }, finish_reason: 'stop', native_finish_reason: 'end_turn' }],
      usage: { prompt_tokens: 2095, completion_tokens: 503, total_tokens: 2598, prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 } },
    });
  });

  it('maps tool_use blocks to tool calls with JSON arguments', () => {
    const [choice] = anthropicAdapter.parseResponse(200, fixture('tool-call')).choices;
    expect(choice).toMatchObject({ finish_reason: 'tool_calls', native_finish_reason: 'tool_use' });
    expect(choice?.message.content).toBe("I'll check the current weather in San Francisco for you.");
    expect(choice?.message.tool_calls).toEqual([
      { id: 'toolu_01A09q90qw90lq917835lq9', type: 'function', function: { name: 'get_weather', arguments: '{"location":"San Francisco, CA","unit":"celsius"}' } },
    ]);
  });

  it('maps thinking to reasoning and adds cache reads and writes to prompt tokens', () => {
    const response = anthropicAdapter.parseResponse(200, fixture('thinking-cached'));
    expect(response.choices[0]?.message).toEqual({
      role: 'assistant',
      content: '27 * 453 = 12,231',
      reasoning: '27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231.',
      reasoning_details: [
        {
          type: 'reasoning.text',
          text: '27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231.',
          signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds',
          format: 'anthropic-claude-v1',
        },
        { type: 'reasoning.encrypted', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP', format: 'anthropic-claude-v1' },
      ],
    });
    expect(response.usage).toEqual({
      prompt_tokens: 2098,
      completion_tokens: 393,
      total_tokens: 2491,
      prompt_tokens_details: { cached_tokens: 1800, cache_write_tokens: 248 },
    });
  });

  it('maps a refusal to content_filter', () => {
    expect(anthropicAdapter.parseResponse(200, fixture('refusal')).choices[0]).toMatchObject({
      finish_reason: 'content_filter',
      native_finish_reason: 'refusal',
      message: { content: '' },
    });
  });

  it('carries the stop sequence that ended the answer; a natural end carries none', () => {
    expect(anthropicAdapter.parseResponse(200, fixture('stop-sequence')).choices[0]).toMatchObject({ finish_reason: 'stop', native_finish_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(anthropicAdapter.parseResponse(200, fixture('completion')).choices[0]).not.toHaveProperty('stop_sequence');
  });

  it('throws for an error body and for a body that is not a message', () => {
    expect(() => anthropicAdapter.parseResponse(200, fixture('error-overloaded'))).toThrow(ProviderError);
    expect(() => anthropicAdapter.parseResponse(200, { id: 'x' })).toThrow(/no content array/);
  });

  it('round-trips: a parsed tool-call response can be sent back as the next turn', () => {
    const first = anthropicAdapter.parseResponse(200, fixture('tool-call')).choices[0]?.message;
    if (!first) throw new Error('no message');
    const body = build({
      messages: [
        { role: 'user', content: 'Weather?' },
        { ...first, content: first.content },
        { role: 'tool', tool_call_id: 'toolu_01A09q90qw90lq917835lq9', content: '15°C' },
      ],
    });
    expect(body.messages).toMatchObject([
      { role: 'user' },
      { role: 'assistant', content: [{ type: 'text' }, { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', input: { location: 'San Francisco, CA', unit: 'celsius' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01A09q90qw90lq917835lq9' }] },
    ]);
  });
});

describe('anthropic adapter: parsing a stream', () => {
  it('maps text deltas, the stop reason and usage from message_start + message_delta', () => {
    const { chunks: out, outcome, error } = replaySse(anthropicAdapter.createStreamParser({ created: 42 }), chunks('stream'));
    expect(error).toBeUndefined();
    expect(assemble(out)).toMatchObject({ content: 'Hello!', finishReasons: ['stop'] });
    expect(out[0]).toMatchObject({ id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY', created: 42, model: 'claude-opus-4-1-20250805', choices: [{ delta: { role: 'assistant' } }] });
    expect(out[out.length - 1]?.choices[0]).toMatchObject({ finish_reason: 'stop', native_finish_reason: 'end_turn' });
    expect(outcome).toEqual({
      done: true,
      finishReason: 'stop',
      nativeFinishReason: 'end_turn',
      usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40, prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 } },
    });
  });

  it('streams tool_use blocks as tool-call deltas', () => {
    const { chunks: out, outcome } = replaySse(anthropicAdapter.createStreamParser(), chunks('stream-tool-call'), 5);
    const assembled = assemble(out);
    expect(assembled.content).toBe("Okay, let's check the weather:");
    expect(assembled.toolCalls).toEqual([
      { id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', arguments: '{"location": "San Francisco, CA", "unit": "fahrenheit"}' },
    ]);
    expect(JSON.parse(assembled.toolCalls[0]?.arguments ?? '')).toEqual({ location: 'San Francisco, CA', unit: 'fahrenheit' });
    expect(outcome).toMatchObject({ done: true, finishReason: 'tool_calls', nativeFinishReason: 'tool_use', usage: { prompt_tokens: 472, completion_tokens: 89 } });
  });

  it('streams thinking as reasoning, with the signature, and counts cached input', () => {
    const { chunks: out, outcome } = replaySse(anthropicAdapter.createStreamParser(), chunks('stream-thinking'));
    expect(assemble(out)).toMatchObject({
      reasoning: 'Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3',
      content: '27 * 453 = 12,231',
    });
    expect(out.flatMap((c) => c.choices[0]?.delta.reasoning_details ?? [])).toEqual([
      { type: 'reasoning.text', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds', format: 'anthropic-claude-v1' },
    ]);
    expect(outcome.usage).toEqual({
      prompt_tokens: 4040,
      completion_tokens: 260,
      total_tokens: 4300,
      prompt_tokens_details: { cached_tokens: 3000, cache_write_tokens: 1000 },
    });
  });

  it('throws the in-stream overloaded error after the text that preceded it', () => {
    const replay = replaySse(anthropicAdapter.createStreamParser(), chunks('stream-error'));
    expect(assemble(replay.chunks).content).toBe('Once upon');
    expect(replay.error).toBeInstanceOf(ProviderError);
    expect(replay.error).toMatchObject({ code: 'overloaded', status: 529, retryable: true, upstreamCode: 'overloaded_error', upstreamMessage: 'Overloaded' });
    // Input usage from message_start survives, so a partial charge can still be settled.
    expect(replay.outcome).toMatchObject({ done: false, usage: { prompt_tokens: 25, completion_tokens: 1 } });
  });

  it('carries the stop sequence on the finishing chunk (message_delta), and none on a natural end', () => {
    const { chunks: out } = replaySse(anthropicAdapter.createStreamParser(), chunks('stream-stop-sequence'));
    expect(out.at(-1)?.choices[0]).toEqual({ index: 0, delta: {}, finish_reason: 'stop', native_finish_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(out.some((c) => c.choices.some((choice) => 'stop_sequence' in choice))).toBe(true);
    const natural = replaySse(anthropicAdapter.createStreamParser(), chunks('stream')).chunks;
    expect(natural.some((c) => c.choices.some((choice) => 'stop_sequence' in choice))).toBe(false);
  });

  it('reports a stream cut before message_stop as not done', () => {
    const text = chunks('stream');
    expect(replaySse(anthropicAdapter.createStreamParser(), text.slice(0, text.indexOf('event: message_delta'))).outcome).toMatchObject({ done: false });
  });

  it('ends the answer at the stop reason and the stream at message_stop: later text, stop reasons and usage are ignored', () => {
    const text = chunks('stream');
    const event = (data: Record<string, unknown>) => `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`;
    const late = event({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' LATE' } });
    const stopAgain = event({ type: 'message_delta', delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 16 } });
    const at = text.indexOf('event: message_stop');
    const parser = anthropicAdapter.createStreamParser();
    const replay = replaySse(parser, `${text.slice(0, at)}${late}${stopAgain}${text.slice(at)}${late}${event({ type: 'message_delta', delta: {}, usage: { output_tokens: 900 } })}`);
    expect(assemble(replay.chunks)).toMatchObject({ content: 'Hello!', finishReasons: ['stop'] });
    // A usage report before message_stop still counts (it is cumulative); none after it does.
    expect(replay.outcome).toMatchObject({ done: true, finishReason: 'stop', nativeFinishReason: 'end_turn', usage: { completion_tokens: 16 } });
    expect(parser.ended()).toBe(true);
  });
});

describe('anthropic adapter: mapping errors', () => {
  const body = (name: string): string => JSON.stringify(fixture(name));

  it('maps 529 overloaded_error to a retryable overloaded error', () => {
    expect(anthropicAdapter.mapError(529, {}, body('error-overloaded'))).toMatchObject({
      code: 'overloaded',
      status: 529,
      retryable: true,
      upstreamCode: 'overloaded_error',
      upstreamMessage: 'Overloaded',
      provider: 'anthropic',
    });
  });

  it('maps 429 with retry-after to a rate limit', () => {
    expect(anthropicAdapter.mapError(429, { 'retry-after': '30' }, body('error-rate-limit'))).toMatchObject({
      code: 'rate_limited',
      retryable: true,
      retryAfterMs: 30_000,
      upstreamCode: 'rate_limit_error',
    });
  });

  it('maps "prompt is too long" to a retryable context_length error', () => {
    expect(anthropicAdapter.mapError(400, {}, body('error-context-length'))).toMatchObject({ code: 'context_length', status: 400, retryable: true });
    expect(
      anthropicAdapter.mapError(400, {}, JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } })),
    ).toMatchObject({ code: 'bad_request', retryable: false });
  });

  it('maps authentication and permission errors as not retryable', () => {
    const auth = JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
    expect(anthropicAdapter.mapError(401, {}, auth)).toMatchObject({ code: 'auth', retryable: false, upstreamMessage: 'invalid x-api-key' });
    expect(anthropicAdapter.mapError(500, {}, JSON.stringify({ type: 'error', error: { type: 'api_error', message: 'Internal server error' } }))).toMatchObject({ code: 'server_error', retryable: true });
  });
});

describe('anthropic adapter: finish reasons', () => {
  it('maps every documented stop_reason', () => {
    const reasons = ['end_turn', 'stop_sequence', 'pause_turn', 'max_tokens', 'model_context_window_exceeded', 'tool_use', 'refusal'];
    expect(reasons.map(mapFinishReason)).toEqual(['stop', 'stop', 'stop', 'length', 'length', 'tool_calls', 'content_filter']);
    expect(mapFinishReason(undefined)).toBeNull();
  });

  it('shows a stop_reason it does not know as error with the raw value, in a response and in a stream, not as stop', () => {
    const body = { id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'text', text: 'hi' }], stop_reason: 'brand_new_reason', usage: { input_tokens: 1, output_tokens: 1 } };
    expect(anthropicAdapter.parseResponse(200, body).choices[0]).toMatchObject({ finish_reason: 'error', native_finish_reason: 'brand_new_reason' });
    const { chunks: out, outcome } = replaySse(anthropicAdapter.createStreamParser(), chunks('stream').replace('end_turn', 'brand_new_reason'));
    expect(assemble(out).finishReasons).toEqual(['error']);
    expect(outcome).toMatchObject({ done: true, finishReason: 'error', nativeFinishReason: 'brand_new_reason' });
  });
});
