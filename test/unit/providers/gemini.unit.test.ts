import { describe, expect, it } from 'vitest';
import { geminiAdapter } from '../../../src/gateway/providers/gemini/index.js';
import { mapFinishReason } from '../../../src/gateway/providers/gemini/finishReason.js';
import { ProviderError, type ChatMessage, type ChatRequest } from '../../../src/gateway/types.js';
import { assemble, fixtureJson, fixtureText, replaySse } from '../../support/providerFixtures.js';

const target = { baseUrl: 'https://generativelanguage.googleapis.com/v1beta', upstreamModel: 'models/gemini-2.5-flash', apiKey: 'AIza-test' };
const fixture = (name: string): unknown => fixtureJson('gemini', name);
const chunks = (name: string): string => fixtureText('gemini', `${name}.chunks.txt`);

function build(req: Partial<ChatRequest>): Record<string, unknown> {
  const upstream = geminiAdapter.buildRequest({ model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], ...req }, target);
  return JSON.parse(upstream.body) as Record<string, unknown>;
}

describe('gemini adapter: building the request', () => {
  it('refuses what the API would: no user or assistant content, a fileUri that is not http(s) or gs://', () => {
    const refusal = (req: Partial<ChatRequest>) => {
      try {
        build(req);
      } catch (error) {
        expect(error).toMatchObject({ code: 'bad_request', status: 400, retryable: false });
        return (error as ProviderError).message;
      }
      throw new Error('not refused');
    };
    expect(refusal({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '' }] })).toMatch(/^messages: there is no user or assistant message with content/);
    expect(refusal({ messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] })).toBe(
      'messages[0].content[1].image_url.url must be an http(s) or gs:// URL or a base64 data: URL (not file:)',
    );
    const linked = build({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'gs://bucket/cat.png' } }] }] });
    expect(linked.contents).toEqual([{ role: 'user', parts: [{ fileData: { mimeType: 'image/png', fileUri: 'gs://bucket/cat.png' } }] }]);
  });

  it('targets generateContent, or streamGenerateContent with alt=sse, with the key in a header', () => {
    const plain = geminiAdapter.buildRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, target);
    expect(plain.url).toBe('https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent');
    expect(plain.headers).toMatchObject({ 'x-goog-api-key': 'AIza-test', 'content-type': 'application/json' });
    expect(JSON.parse(plain.body)).toEqual({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
    const streaming = geminiAdapter.buildRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }, target);
    expect(streaming.url).toBe('https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(JSON.parse(streaming.body)).not.toHaveProperty('stream');
  });

  it('maps system prompts to systemInstruction and the assistant to the model role', () => {
    const body = build({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Weather?' },
      ],
    });
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }, { text: 'Use metric units.' }] });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'hi' }] },
      { role: 'model', parts: [{ text: 'Hello!' }] },
      { role: 'user', parts: [{ text: 'Weather?' }] },
    ]);
  });

  it('maps images: data URLs to inlineData, http URLs to fileData', () => {
    const body = build({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare' },
            { type: 'image_url', image_url: { url: 'data:image/webp;base64,UklGRg==' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png?size=large' } },
          ],
        },
      ],
    });
    expect(body.contents).toEqual([
      {
        role: 'user',
        parts: [
          { text: 'Compare' },
          { inlineData: { mimeType: 'image/webp', data: 'UklGRg==' } },
          { fileData: { mimeType: 'image/png', fileUri: 'https://example.com/cat.png?size=large' } },
        ],
      },
    ]);
  });

  it('maps tools to function declarations with JSON Schema, and tool_choice to toolConfig', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather', parameters } }];
    expect(build({ tools })).toMatchObject({ tools: [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather', parametersJsonSchema: parameters }] }] });
    expect(build({ tools }).toolConfig).toBeUndefined();
    expect(build({ tools, tool_choice: 'auto' }).toolConfig).toEqual({ functionCallingConfig: { mode: 'AUTO' } });
    expect(build({ tools, tool_choice: 'required' }).toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY' } });
    expect(build({ tools, tool_choice: 'none' }).toolConfig).toEqual({ functionCallingConfig: { mode: 'NONE' } });
    expect(build({ tools, tool_choice: { type: 'function', function: { name: 'get_weather' } } }).toolConfig).toEqual({
      functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
    });
  });

  it('maps tool calls and their results, finding each function name and replaying thought signatures', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather and time?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
        ],
        reasoning_details: [{ type: 'reasoning.encrypted', data: 'sig-a', id: 'call_a', format: 'google-gemini-v1' }],
      },
      { role: 'tool', tool_call_id: 'call_a', content: '{"temp":18}' },
      { role: 'tool', tool_call_id: 'call_b', content: '14:00' },
    ];
    expect(build({ messages }).contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather and time?' }] },
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'sig-a' },
          { functionCall: { name: 'get_time', args: {} } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { temp: 18 } } },
          { functionResponse: { name: 'get_time', response: { output: '14:00' } } },
        ],
      },
    ]);
  });

  it('maps sampling, max tokens, stop, seed and penalties to generationConfig', () => {
    expect(build({ temperature: 0.4, top_p: 0.8, top_k: 20, max_tokens: 256, stop: 'END', seed: 9, presence_penalty: 0.5, frequency_penalty: 0.2 }).generationConfig).toEqual({
      temperature: 0.4,
      topP: 0.8,
      topK: 20,
      maxOutputTokens: 256,
      stopSequences: ['END'],
      seed: 9,
      presencePenalty: 0.5,
      frequencyPenalty: 0.2,
    });
  });

  it('maps JSON mode to responseMimeType and structured output to responseJsonSchema', () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } } };
    expect(build({ response_format: { type: 'json_object' } }).generationConfig).toEqual({ responseMimeType: 'application/json' });
    expect(build({ response_format: { type: 'json_schema', json_schema: { name: 'r', schema } } }).generationConfig).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
  });

  it('maps reasoning to thinkingConfig', () => {
    expect(build({ reasoning: { max_tokens: 2048 } }).generationConfig).toEqual({ thinkingConfig: { includeThoughts: true, thinkingBudget: 2048 } });
    expect(build({ reasoning: { effort: 'high', exclude: true } }).generationConfig).toEqual({ thinkingConfig: { includeThoughts: false } });
    expect(build({ reasoning: { effort: 'none' } }).generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 0 } });
  });
});

describe('gemini adapter: parsing a response', () => {
  it('maps a plain answer with usage', () => {
    expect(geminiAdapter.parseResponse(200, fixture('completion'))).toEqual({
      id: 'tTCwacuEBMvnitYP06qsgQY',
      object: 'chat.completion',
      created: 0,
      model: 'gemini-2.0-flash',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Paris is the capital of France.' }, finish_reason: 'stop', native_finish_reason: 'STOP' }],
      usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
    });
  });

  it('maps function calls to tool calls with stable ids, finish tool_calls and their thought signatures', () => {
    const [choice] = geminiAdapter.parseResponse(200, fixture('tool-call')).choices;
    expect(choice).toMatchObject({ finish_reason: 'tool_calls', native_finish_reason: 'STOP' });
    expect(choice?.message).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_resp-tools-1_0', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Boston, MA","unit":"celsius"}' } },
        { id: 'call_resp-tools-1_1', type: 'function', function: { name: 'get_time', arguments: '{"tz":"America/New_York"}' } },
      ],
      reasoning_details: [{ type: 'reasoning.encrypted', data: 'CiQB0e2Kb5Xq1fZp0sig', format: 'google-gemini-v1', id: 'call_resp-tools-1_0' }],
    });
  });

  it('maps thought parts to reasoning and counts thoughts as completion, cached content as cached', () => {
    const response = geminiAdapter.parseResponse(200, fixture('thinking-cached'));
    expect(response.created).toBe(Date.parse('2025-08-18T13:55:15.000Z') / 1000);
    expect(response.choices[0]?.message).toEqual({
      role: 'assistant',
      content: '27 * 453 = 12,231',
      reasoning: '**Computing**\nMultiply 27 by 453 using distribution.',
    });
    expect(response.usage).toEqual({
      prompt_tokens: 4200,
      completion_tokens: 199,
      total_tokens: 4399,
      prompt_tokens_details: { cached_tokens: 4096 },
      completion_tokens_details: { reasoning_tokens: 190 },
    });
  });

  it('maps safety stops and blocked prompts to content_filter', () => {
    expect(geminiAdapter.parseResponse(200, fixture('safety')).choices[0]).toMatchObject({ finish_reason: 'content_filter', native_finish_reason: 'SAFETY', message: { content: '' } });
    expect(geminiAdapter.parseResponse(200, fixture('prompt-blocked'))).toMatchObject({
      choices: [{ finish_reason: 'content_filter', native_finish_reason: 'PROHIBITED_CONTENT', message: { content: '' } }],
      usage: { prompt_tokens: 9, completion_tokens: 0 },
    });
  });

  it('throws for an error body and for a response without candidates', () => {
    expect(() => geminiAdapter.parseResponse(200, fixture('error-overloaded'))).toThrow(ProviderError);
    expect(() => geminiAdapter.parseResponse(200, { usageMetadata: {} })).toThrow(/no candidates/);
  });

  it('round-trips: parsed function calls go back with their signatures and names', () => {
    const message = geminiAdapter.parseResponse(200, fixture('tool-call')).choices[0]?.message;
    if (!message) throw new Error('no message');
    const body = build({
      messages: [
        { role: 'user', content: 'Weather?' },
        { ...message },
        { role: 'tool', tool_call_id: 'call_resp-tools-1_0', content: '{"temp":12}' },
        { role: 'tool', tool_call_id: 'call_resp-tools-1_1', content: '09:00' },
      ],
    });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather?' }] },
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'get_weather', args: { location: 'Boston, MA', unit: 'celsius' } }, thoughtSignature: 'CiQB0e2Kb5Xq1fZp0sig' },
          { functionCall: { name: 'get_time', args: { tz: 'America/New_York' } } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { temp: 12 } } },
          { functionResponse: { name: 'get_time', response: { output: '09:00' } } },
        ],
      },
    ]);
  });
});

describe('gemini adapter: parsing a stream', () => {
  it('maps CRLF-framed chunks to content, the finish reason and the last usage', () => {
    const { chunks: out, outcome, error } = replaySse(geminiAdapter.createStreamParser(), chunks('stream'), 3);
    expect(error).toBeUndefined();
    expect(assemble(out)).toMatchObject({ content: 'Bonjour le monde, ça va ?', finishReasons: ['stop'] });
    expect(out[0]).toMatchObject({ id: 'resp-stream-1', model: 'gemini-2.5-flash', created: 1755525315, choices: [{ delta: { role: 'assistant', content: 'Bonjour' } }] });
    expect(out).toHaveLength(3);
    expect(outcome).toEqual({
      done: true,
      finishReason: 'stop',
      nativeFinishReason: 'STOP',
      usage: { prompt_tokens: 8, completion_tokens: 9, total_tokens: 17 },
    });
  });

  it('streams thoughts as reasoning and function calls as indexed tool calls', () => {
    const { chunks: out, outcome } = replaySse(geminiAdapter.createStreamParser({ id: 'gen-9' }), chunks('stream-tool-call'));
    const assembled = assemble(out);
    expect(assembled.reasoning).toBe('Thinking about which tool to use.');
    expect(assembled.toolCalls).toEqual([
      { id: 'call_gen-9_0', name: 'get_weather', arguments: '{"location":"Paris"}' },
      { id: 'call_gen-9_1', name: 'get_time', arguments: '{"tz":"CET"}' },
    ]);
    expect(out.flatMap((c) => c.choices[0]?.delta.reasoning_details ?? [])).toEqual([
      { type: 'reasoning.encrypted', data: 'sig-weather', format: 'google-gemini-v1', id: 'call_gen-9_0' },
    ]);
    expect(outcome).toEqual({
      done: true,
      finishReason: 'tool_calls',
      nativeFinishReason: 'STOP',
      usage: {
        prompt_tokens: 150,
        completion_tokens: 125,
        total_tokens: 275,
        prompt_tokens_details: { cached_tokens: 128 },
        completion_tokens_details: { reasoning_tokens: 95 },
      },
    });
  });

  it('throws an in-stream error after the text that preceded it', () => {
    const replay = replaySse(geminiAdapter.createStreamParser(), chunks('stream-error'));
    expect(assemble(replay.chunks).content).toBe('Once upon');
    expect(replay.error).toBeInstanceOf(ProviderError);
    expect(replay.error).toMatchObject({ code: 'overloaded', status: 503, retryable: true, upstreamCode: 'UNAVAILABLE' });
    expect(replay.outcome).toMatchObject({ done: false, usage: { prompt_tokens: 5 } });
  });

  it('reports a stream cut before the finish reason as not done', () => {
    const text = chunks('stream');
    expect(replaySse(geminiAdapter.createStreamParser(), text.slice(0, text.indexOf('"finishReason"'))).outcome).toEqual({ done: false });
  });

  it('ends at the chunk with the finishReason, its usage the final one: a later chunk, its text and usage, is ignored', () => {
    const late = `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text: ' LATE' }], role: 'model' }, index: 0 }], usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 900, totalTokenCount: 908 } })}\r\n\r\n`;
    const parser = geminiAdapter.createStreamParser();
    const replay = replaySse(parser, `${chunks('stream')}${late}`);
    expect(assemble(replay.chunks)).toMatchObject({ content: 'Bonjour le monde, ça va ?', finishReasons: ['stop'] });
    expect(replay.outcome.usage).toEqual({ prompt_tokens: 8, completion_tokens: 9, total_tokens: 17 });
    expect(parser.ended()).toBe(true);
  });
});

describe('gemini adapter: mapping errors', () => {
  const body = (name: string): string => JSON.stringify(fixture(name));

  it('maps RESOURCE_EXHAUSTED with RetryInfo to a rate limit; a Retry-After header takes precedence', () => {
    expect(geminiAdapter.mapError(429, {}, body('error-rate-limit'))).toMatchObject({
      code: 'rate_limited',
      status: 429,
      retryable: true,
      retryAfterMs: 37_000,
      upstreamCode: 'RESOURCE_EXHAUSTED',
      provider: 'gemini',
    });
    expect(geminiAdapter.mapError(429, { 'retry-after': '3' }, body('error-rate-limit')).retryAfterMs).toBe(3000);
  });

  it('maps an over-long input to a retryable context_length error', () => {
    expect(geminiAdapter.mapError(400, {}, body('error-context-length'))).toMatchObject({ code: 'context_length', retryable: true, upstreamCode: 'INVALID_ARGUMENT' });
  });

  it('maps API_KEY_INVALID (sent as 400) to auth', () => {
    expect(geminiAdapter.mapError(400, {}, body('error-api-key-invalid'))).toMatchObject({ code: 'auth', status: 400, retryable: false, upstreamCode: 'API_KEY_INVALID' });
  });

  it('maps UNAVAILABLE to overloaded and reads array-wrapped bodies', () => {
    expect(geminiAdapter.mapError(503, {}, body('error-overloaded'))).toMatchObject({ code: 'overloaded', retryable: true });
    expect(geminiAdapter.mapError(500, {}, `[${JSON.stringify({ error: { code: 500, message: 'Internal error', status: 'INTERNAL' } })}]`)).toMatchObject({
      code: 'server_error',
      upstreamMessage: 'Internal error',
    });
  });
});

describe('gemini adapter: finish reasons', () => {
  it('maps STOP by whether the turn called tools, MAX_TOKENS, and the safety family', () => {
    expect(mapFinishReason('STOP', false)).toBe('stop');
    expect(mapFinishReason('STOP', true)).toBe('tool_calls');
    expect(mapFinishReason('MAX_TOKENS', false)).toBe('length');
    expect(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY'].map((r) => mapFinishReason(r, false))).toEqual(Array(6).fill('content_filter'));
    expect(['MALFORMED_FUNCTION_CALL', 'OTHER', 'FINISH_REASON_UNSPECIFIED'].map((r) => mapFinishReason(r, false))).toEqual(['error', 'error', 'error']);
    expect(mapFinishReason(undefined, false)).toBeNull();
  });

  it('shows a finishReason it does not know as error with the raw value, in a response and in a stream, not as stop', () => {
    const body = { responseId: 'r1', candidates: [{ content: { role: 'model', parts: [{ text: 'hi' }] }, finishReason: 'TOO_MANY_TOOL_CALLS' }] };
    expect(geminiAdapter.parseResponse(200, body).choices[0]).toMatchObject({ finish_reason: 'error', native_finish_reason: 'TOO_MANY_TOOL_CALLS' });
    const { chunks: out, outcome } = replaySse(geminiAdapter.createStreamParser(), chunks('stream').replace('"STOP"', '"BRAND_NEW_REASON"'));
    expect(assemble(out).finishReasons).toEqual(['error']);
    expect(outcome).toMatchObject({ done: true, finishReason: 'error', nativeFinishReason: 'BRAND_NEW_REASON' });
  });
});
