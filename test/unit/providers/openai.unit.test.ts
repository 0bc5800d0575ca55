import { describe, expect, it } from 'vitest';
import { openaiAdapter } from '../../../src/gateway/providers/openai/index.js';
import { mapFinishReason } from '../../../src/gateway/providers/openai/finishReason.js';
import { ProviderError, type ChatRequest } from '../../../src/gateway/types.js';
import { assemble, fixtureJson, fixtureText, replaySse } from '../../support/providerFixtures.js';

const target = { baseUrl: 'https://api.openai.com/v1/', upstreamModel: 'gpt-4o-mini', apiKey: 'sk-test' };
const fixture = (name: string): unknown => fixtureJson('openai', name);
const chunks = (name: string): string => fixtureText('openai', `${name}.chunks.txt`);

function build(req: Partial<ChatRequest>): Record<string, unknown> {
  const upstream = openaiAdapter.buildRequest({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...req }, target);
  return JSON.parse(upstream.body) as Record<string, unknown>;
}

function thrown(fn: () => unknown): ProviderError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}

describe('openai adapter: building the request', () => {
  it('posts to /chat/completions with the upstream model, bearer auth and extra headers', () => {
    const upstream = openaiAdapter.buildRequest(
      { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      { ...target, headers: { 'x-extra': '1' } },
    );
    expect(upstream.url).toBe('https://api.openai.com/v1/chat/completions');
    expect(upstream.method).toBe('POST');
    expect(upstream.headers).toMatchObject({ authorization: 'Bearer sk-test', 'content-type': 'application/json', 'x-extra': '1' });
    expect(JSON.parse(upstream.body)).toEqual({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  });

  it('passes sampling, tools, json mode and stop through, and maps reasoning effort', () => {
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
    const body = build({
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 100,
      stop: ['END'],
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: 0.1,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' }, strict: true } },
      user: 'u-1',
      reasoning: { effort: 'high' },
    });
    expect(body).toMatchObject({
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 100,
      stop: ['END'],
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: 0.1,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' }, strict: true } },
      user: 'u-1',
      reasoning_effort: 'high',
    });
    expect(body).not.toHaveProperty('reasoning');
  });

  it('sends reasoning on and a reasoning budget as an effort: enabled → medium, a budget by its share of max_tokens', () => {
    const effort = (req: Partial<ChatRequest>) => build(req).reasoning_effort;
    expect(effort({ reasoning: { enabled: true } })).toBe('medium');
    expect(effort({ max_tokens: 2000, reasoning: { max_tokens: 1600 } })).toBe('high');
    expect(effort({ max_completion_tokens: 2000, reasoning: { max_tokens: 1000 } })).toBe('medium');
    expect(effort({ max_tokens: 2000, reasoning: { max_tokens: 400 } })).toBe('low');
    expect(effort({ max_tokens: 2000, reasoning: { max_tokens: 0 } })).toBe('low');
    expect(effort({ reasoning: { max_tokens: 400 } })).toBe('medium');
    expect(effort({ max_tokens: 2000, reasoning: { effort: 'minimal', max_tokens: 1600 } })).toBe('minimal');
    expect(effort({ reasoning: { enabled: false } })).toBeUndefined();
    expect(effort({ reasoning: { exclude: true } })).toBeUndefined();
    expect(effort({ reasoning: {} })).toBeUndefined();
  });

  it('always asks for the usage chunk when streaming', () => {
    expect(build({ stream: true })).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(build({ stream: true, stream_options: { include_usage: false } })).toMatchObject({ stream_options: { include_usage: true } });
    expect(build({})).not.toHaveProperty('stream_options');
  });

  it('keeps images and tool turns but drops gateway-only fields', () => {
    const body = build({
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief', cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://x/cat.png' } }] },
        {
          role: 'assistant',
          content: null,
          reasoning: 'thinking…',
          reasoning_details: [{ type: 'reasoning.text', text: 'thinking…' }],
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'look', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'a cat' },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'system', content: [{ type: 'text', text: 'Be brief' }] },
      { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://x/cat.png' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'look', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'a cat' },
    ]);
  });
});

describe('openai adapter: parsing a response', () => {
  it('maps a plain completion with usage and finish reasons', () => {
    const response = openaiAdapter.parseResponse(200, fixture('completion'));
    expect(response).toMatchObject({
      id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
      object: 'chat.completion',
      created: 1741569952,
      model: 'gpt-4.1-2025-04-14',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'Hello! How can I assist you today?' }, finish_reason: 'stop', native_finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 19, completion_tokens: 10, total_tokens: 29, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    });
  });

  it('maps tool calls', () => {
    const [choice] = openaiAdapter.parseResponse(200, fixture('tool-call')).choices;
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    expect(choice?.message.tool_calls).toEqual([
      { id: 'call_abc123', type: 'function', function: { name: 'get_current_weather', arguments: '{\n"location": "Boston, MA"\n}' } },
    ]);
  });

  it('keeps cached and reasoning token counts', () => {
    expect(openaiAdapter.parseResponse(200, fixture('reasoning-cached')).usage).toEqual({
      prompt_tokens: 2048,
      completion_tokens: 340,
      total_tokens: 2388,
      // The fixture's audio counts (OpenAI reports them, 0 here) are kept as sent.
      prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 320, audio_tokens: 0 },
    });
  });

  it('lets the caller pin id, created and model', () => {
    const response = openaiAdapter.parseResponse(200, fixture('completion'), { id: 'gen-1', created: 5, model: 'openai/gpt-4.1' });
    expect(response).toMatchObject({ id: 'gen-1', created: 5, model: 'openai/gpt-4.1' });
  });

  it('throws for an error inside a 200 and for a body that is not a completion', () => {
    expect(thrown(() => openaiAdapter.parseResponse(200, fixture('error-rate-limit')))).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(thrown(() => openaiAdapter.parseResponse(200, 'nope'))).toMatchObject({ code: 'malformed_response', retryable: true });
    expect(thrown(() => openaiAdapter.parseResponse(200, { id: 'x' }))).toMatchObject({ code: 'malformed_response' });
  });
});

describe('openai adapter: parsing a stream', () => {
  it('turns a stream with usage into content chunks, a finish reason and final usage', () => {
    const { chunks: out, outcome, error } = replaySse(openaiAdapter.createStreamParser(), chunks('stream'));
    expect(error).toBeUndefined();
    expect(assemble(out)).toMatchObject({ content: 'Hello wörld 👋', finishReasons: ['stop'] });
    expect(out[0]).toMatchObject({ id: 'chatcmpl-stream-1', object: 'chat.completion.chunk', created: 1741570100, choices: [{ delta: { role: 'assistant', content: '' } }] });
    expect(outcome).toEqual({
      done: true,
      finishReason: 'stop',
      nativeFinishReason: 'stop',
      usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 } },
    });
  });

  it('gives the same result however the bytes are split', () => {
    const reference = replaySse(openaiAdapter.createStreamParser(), chunks('stream-tool-call'));
    for (const size of [1, 3, 17, 1000]) {
      expect(replaySse(openaiAdapter.createStreamParser(), chunks('stream-tool-call'), size)).toEqual(reference);
    }
  });

  it('assembles parallel tool-call argument deltas by index', () => {
    const { chunks: out, outcome } = replaySse(openaiAdapter.createStreamParser(), chunks('stream-tool-call'));
    expect(assemble(out).toolCalls).toEqual([
      { id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_weather', arguments: '{"location":"Paris"}' },
      { id: 'call_b2', name: 'get_time', arguments: '{"tz":"CET"}' },
    ]);
    expect(outcome).toMatchObject({ done: true, finishReason: 'tool_calls', usage: { prompt_tokens_details: { cached_tokens: 64 } } });
  });

  it('maps reasoning_content deltas to reasoning', () => {
    const { chunks: out, outcome } = replaySse(openaiAdapter.createStreamParser(), chunks('stream-reasoning'));
    expect(assemble(out)).toMatchObject({ reasoning: 'Add the units first.', content: '4' });
    expect(outcome.usage?.completion_tokens_details).toEqual({ reasoning_tokens: 38 });
  });

  it('throws a ProviderError for an in-stream error chunk after delivering what came before', () => {
    const replay = replaySse(openaiAdapter.createStreamParser({ id: 'gen-x' }), chunks('stream-error'));
    expect(assemble(replay.chunks).content).toBe('Once upon');
    expect(replay.chunks.every((c) => c.id === 'gen-x')).toBe(true);
    expect(replay.comments).toEqual(['OPENROUTER PROCESSING']);
    expect(replay.error).toBeInstanceOf(ProviderError);
    expect(replay.error).toMatchObject({ status: 502, code: 'server_error', upstreamCode: 'provider_unavailable', upstreamMessage: 'Provider disconnected' });
    expect(replay.outcome.done).toBe(false);
  });

  it("keeps the error a provider ended the answer with on a choice (finish_reason \"error\"), with the usage after it", () => {
    const replay = replaySse(openaiAdapter.createStreamParser(), chunks('stream-choice-error'));
    expect(replay.error).toBeUndefined();
    expect(assemble(replay.chunks).content).toBe('Partial ans');
    const last = replay.chunks.at(-1)!.choices[0]!;
    expect(last).toMatchObject({ finish_reason: 'error', error: { status: 429, code: 'rate_limited', upstreamMessage: 'Rate limited mid-generation' } });
    expect(replay.outcome).toMatchObject({ done: true, finishReason: 'error', usage: { prompt_tokens: 11, completion_tokens: 3 }, error: { status: 429, code: 'rate_limited' } });
    // An answer without one has none.
    expect(replaySse(openaiAdapter.createStreamParser(), chunks('stream')).outcome.error).toBeUndefined();
  });

  it('an error on a choice that has not finished ends nothing; it is the answer\'s error only if that choice then finishes with "error"', () => {
    const sse = (...choices: unknown[]) => choices.map((c) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [c] })}\n\n`).join('') + 'data: [DONE]\n\n';
    const warned = { index: 0, delta: { content: 'x' }, finish_reason: null, error: { code: 429, message: 'slow down' } };
    const stopped = replaySse(openaiAdapter.createStreamParser(), sse(warned, { index: 0, delta: {}, finish_reason: 'stop' }));
    expect(assemble(stopped.chunks).content).toBe('x');
    expect(stopped.chunks.flatMap((c) => c.choices.map((choice) => [choice.finish_reason, choice.error]))).toEqual([[null, undefined], ['stop', undefined]]);
    expect(stopped.outcome).toMatchObject({ done: true, finishReason: 'stop' });
    expect(stopped.outcome.error).toBeUndefined();
    const failed = replaySse(openaiAdapter.createStreamParser(), sse(warned, { index: 0, delta: {}, finish_reason: 'error' }));
    expect(failed.chunks.at(-1)!.choices[0]).toMatchObject({ finish_reason: 'error', error: { status: 429, upstreamMessage: 'slow down' } });
    expect(failed.outcome).toMatchObject({ finishReason: 'error', error: { status: 429, upstreamMessage: 'slow down' } });
  });

  it('reports a cut stream as not done and without usage', () => {
    const text = chunks('stream');
    const { outcome, chunks: out } = replaySse(openaiAdapter.createStreamParser(), text.slice(0, text.indexOf('"finish_reason":"stop"')));
    expect(assemble(out).content).toBe('Hello wörld 👋');
    expect(outcome).toEqual({ done: false });
  });

  it('throws malformed_response for a chunk that is not JSON', () => {
    const replay = replaySse(openaiAdapter.createStreamParser(), 'data: {"choices": [\n\n');
    expect(replay.error).toMatchObject({ code: 'malformed_response', retryable: true });
  });
});

describe('openai adapter: mapping errors', () => {
  const body = (name: string): string => JSON.stringify(fixture(name));

  it('maps 429 to a retryable rate limit with Retry-After in ms', () => {
    const error = openaiAdapter.mapError(429, { 'Retry-After': '2' }, body('error-rate-limit'));
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryable: true, retryAfterMs: 2000, upstreamCode: 'rate_limit_exceeded', provider: 'openai' });
    expect(error.upstreamMessage).toMatch(/^Rate limit reached/);
    expect(openaiAdapter.mapError(429, new Headers({ 'retry-after-ms': '120' }), body('error-rate-limit')).retryAfterMs).toBe(120);
  });

  it('reads an HTTP-date Retry-After against the given clock', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    const error = openaiAdapter.mapError(503, { 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }, '', now);
    expect(error).toMatchObject({ code: 'overloaded', retryable: true, retryAfterMs: 5000 });
    expect(openaiAdapter.mapError(503, { 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }, '').retryAfterMs).toBeUndefined();
  });

  it('marks a context-length 400 retryable so another endpoint can take it', () => {
    expect(openaiAdapter.mapError(400, {}, body('error-context-length'))).toMatchObject({ code: 'context_length', status: 400, retryable: true, upstreamCode: 'context_length_exceeded' });
    expect(openaiAdapter.mapError(400, {}, JSON.stringify({ error: { message: 'Unsupported parameter: top_k', type: 'invalid_request_error' } }))).toMatchObject({ code: 'bad_request', retryable: false });
  });

  it.each([
    [401, 'auth', false],
    [402, 'payment_required', false],
    [403, 'auth', false],
    [404, 'not_found', false],
    [408, 'timeout', true],
    [500, 'server_error', true],
    [502, 'server_error', true],
    [503, 'overloaded', true],
    [504, 'timeout', true],
    [422, 'bad_request', false],
  ] as const)('maps HTTP %i to %s (retryable: %s)', (status, code, retryable) => {
    expect(openaiAdapter.mapError(status, {}, body('error-auth'))).toMatchObject({ status, code, retryable });
  });

  it('keeps a non-JSON error body as the upstream message', () => {
    expect(openaiAdapter.mapError(502, {}, '<html>Bad gateway</html>')).toMatchObject({ code: 'server_error', upstreamMessage: '<html>Bad gateway</html>' });
  });
});

describe('openai adapter: finish reasons', () => {
  it("maps OpenAI's reasons and compatible servers' own names", () => {
    expect(['stop', 'length', 'tool_calls', 'content_filter', 'error', 'function_call', 'eos', 'model_length'].map(mapFinishReason)).toEqual([
      'stop',
      'length',
      'tool_calls',
      'content_filter',
      'error',
      'tool_calls',
      'stop',
      'length',
    ]);
    expect(mapFinishReason(undefined)).toBeNull();
    expect(mapFinishReason('')).toBeNull();
  });

  it("reads another protocol's reasons that a compatible server passes on as they are: a whole answer is not an error", () => {
    const reasons = ['end_turn', 'stop_sequence', 'max_tokens', 'tool_use', 'refusal', 'STOP', 'MAX_TOKENS', 'SAFETY', 'RECITATION'];
    expect(reasons.map(mapFinishReason)).toEqual(['stop', 'stop', 'length', 'tool_calls', 'content_filter', 'stop', 'length', 'content_filter', 'content_filter']);
    const body = { id: 'c1', choices: [{ index: 0, message: { role: 'assistant', content: 'cut at the limit' }, finish_reason: 'max_tokens' }] };
    expect(openaiAdapter.parseResponse(200, body).choices[0]).toMatchObject({ finish_reason: 'length', native_finish_reason: 'max_tokens' });
  });

  it('shows a reason it does not know as error with the raw value, in a response and in a stream, not as stop', () => {
    const body = { id: 'c1', choices: [{ index: 0, message: { role: 'assistant', content: 'partial' }, finish_reason: 'abort' }] };
    expect(openaiAdapter.parseResponse(200, body).choices[0]).toMatchObject({ finish_reason: 'error', native_finish_reason: 'abort' });
    const { chunks: out, outcome } = replaySse(openaiAdapter.createStreamParser(), chunks('stream').replace('"finish_reason":"stop"', '"finish_reason":"abort"'));
    expect(assemble(out).finishReasons).toEqual(['error']);
    expect(outcome).toMatchObject({ done: true, finishReason: 'error', nativeFinishReason: 'abort' });
  });
});
