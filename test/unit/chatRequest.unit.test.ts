/**
 * The chat request's refusals: the exact message and `param` of each (clients match on them), and the fields the
 * zod schema checks that the hand-written parser passed through unchecked to the providers.
 */
import { describe, expect, it } from 'vitest';
import { parseChatBody, type ChatHeaders } from '../../src/gateway/chatRequest.js';
import { GatewayError } from '../../src/gateway/gatewayErrors.js';

const hi = [{ role: 'user', content: 'hi' }];
const refusal = (body: unknown, kind: 'chat' | 'completion' = 'chat', headers?: ChatHeaders): { message: string; param: unknown } => {
  try {
    parseChatBody(body, kind, headers);
  } catch (error) {
    if (error instanceof GatewayError && error.status === 400) return { message: error.message, param: error.metadata.param };
    throw error;
  }
  throw new Error('expected a refusal');
};

describe('refusals keep their message and param', () => {
  it.each([
    [[1], 'The request body must be a JSON object', undefined],
    [{ messages: hi }, 'model is required (or a models list)', 'model'],
    [{ model: ' ', messages: hi }, 'model must be a non-empty string', 'model'],
    [{ model: 'a/b', models: ['x', ''] }, 'models must be a list of at most 10 non-empty strings', 'models'],
    [{ model: 'a/b' }, 'messages must be a non-empty list', 'messages'],
    [{ model: 'a/b', messages: [hi[0], 'x'] }, 'messages[1] must be an object', 'messages[1]'],
    [{ model: 'a/b', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role must be one of system, developer, user, assistant, tool (got "wizard")', 'messages[0].role'],
    [{ model: 'a/b', messages: [{ role: 'user', content: 3 }] }, 'messages[0].content must be a string or a list of content parts', 'messages[0].content'],
    [{ model: 'a/b', messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'audio' }] }] }, 'messages[0].content[1] must be {type:"text", text}, {type:"image_url", image_url:{url}}, {type:"file", file:{filename?, file_data}} or {type:"input_audio", input_audio:{data, format}}', 'messages[0].content'],
    [{ model: 'a/b', messages: [{ role: 'tool', content: 'x' }] }, 'messages[0] (tool) needs a tool_call_id', 'messages[0].tool_call_id'],
    [{ model: 'a/b', prompt: '' }, 'prompt must be a non-empty string', 'prompt'],
    [{ model: 'a/b', messages: hi, max_tokens: 1.5 }, 'max_tokens must be an integer between 1 and 10000000', 'max_tokens'],
    [{ model: 'a/b', messages: hi, presence_penalty: -3 }, 'presence_penalty must be a number between -2 and 2', 'presence_penalty'],
    [{ model: 'a/b', messages: hi, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop must be a non-empty string or a list of at most 4 non-empty strings', 'stop'],
    [{ model: 'a/b', messages: hi, stop: '' }, 'stop must be a non-empty string or a list of at most 4 non-empty strings', 'stop'],
    [{ model: 'a/b', messages: hi, stop: [''] }, 'stop must be a non-empty string or a list of at most 4 non-empty strings', 'stop'],
    [{ model: 'a/b', messages: hi, stream_options: 5 }, 'stream_options must be an object such as {"include_usage": true}', 'stream_options'],
    [{ model: 'a/b', messages: hi, stream_options: { include_usage: 'yes' } }, 'stream_options.include_usage must be a boolean', 'stream_options.include_usage'],
    [{ model: 'a/b', messages: hi, logit_bias: [] }, 'logit_bias must be an object', 'logit_bias'],
    [{ model: 'a/b', messages: hi, tools: [{ type: 'function', function: {} }] }, 'tools must be a list of {type:"function", function:{name, parameters}}', 'tools'],
    [{ model: 'a/b', messages: hi, response_format: { type: 'yaml' } }, 'response_format.type must be text, json_object or json_schema', 'response_format'],
    [{ model: 'a/b', messages: hi, user: 'u'.repeat(257) }, 'user must be a string of at most 256 characters', 'user'],
    [{ model: 'a/b', messages: hi, provider: { sort: 'fastest' } }, 'provider.sort must be "price", "throughput" or "latency" (or {by, partition})', 'provider.sort'],
    [{ model: 'a/b', messages: hi, provider: { sort: { by: 'price', partition: 'all' } } }, 'provider.sort.partition must be "model" or "none"', 'provider.sort.partition'],
    [{ model: 'a/b', messages: hi, provider: { quantizations: ['fp8', 'int3'] } }, 'provider.quantizations has unknown values int3 (known: int4, int8, fp4, fp6, fp8, fp16, bf16, fp32, unknown)', 'provider.quantizations'],
    [{ model: 'a/b', messages: hi, provider: { max_price: { request: '-1e-12' } } }, 'provider.max_price.request: "-1e-12" is not a non-negative decimal number (USD)', 'provider.max_price.request'],
    [{ model: 'a/b', messages: hi, session_id: '' }, 'session_id must be a non-empty string of at most 256 characters', 'session_id'],
    [{ model: 'a/b', messages: hi, provider: { data_collection: 'never' } }, 'provider.data_collection must be "allow" or "deny"', 'provider.data_collection'],
    [{ model: 'a/b', messages: hi, plugins: [{ id: 'web' }] }, 'the web plugin (web search) is not supported: Switchyard has no search backend (nor the :online variant)', 'plugins'],
    [
      { model: 'switchyard/auto', messages: hi, plugins: [{ id: 'file-parser' }, { id: 'auto-router', allowed_models: ['a/*'], cost_tier: 'low' }] },
      "the auto-router plugin's cost_tier is not supported: switchyard/auto follows the rules an admin sets (setAutoRouterRules), which have no cost tiers; narrow its choice with allowed_models",
      'plugins',
    ],
    [
      { model: 'switchyard/auto', messages: hi, plugins: [{ id: 'auto-router', allowed_models: 'a/*' }] },
      "the auto-router plugin's allowed_models must be a list of at most 100 model ids or patterns such as \"anthropic/*\" (each at most 200 characters)",
      'plugins',
    ],
    [
      { model: 'switchyard/auto', messages: hi, plugins: [{ id: 'auto-router', excluded_models: Array.from({ length: 101 }, (_, i) => `m/${i}`) }] },
      "the auto-router plugin's excluded_models must be a list of at most 100 model ids or patterns such as \"anthropic/*\" (each at most 200 characters)",
      'plugins',
    ],
    [
      { model: 'switchyard/auto', messages: hi, plugins: [{ id: 'auto-router', allowed_models: ['x'.repeat(201)] }] },
      "the auto-router plugin's allowed_models must be a list of at most 100 model ids or patterns such as \"anthropic/*\" (each at most 200 characters)",
      'plugins',
    ],
    [{ model: 'a/b', messages: hi, plugins: [{ id: 'telepathy' }] }, 'plugins[0].id "telepathy" is not a known plugin (known: file-parser, response-healing, context-compression, auto-router, web)', 'plugins'],
    [{ model: 'a/b', messages: hi, plugins: { id: 'web' } }, 'plugins must be a list of at most 20 objects such as {"id": "file-parser"}', 'plugins'],
    [{ model: 'a/b', messages: hi, plugins: [{ id: 'web', enabled: 'no' }] }, 'plugins[].enabled must be a boolean', 'plugins'],
  ])('%j → %s', (body, message, param) => {
    expect(refusal(body)).toEqual({ message, param });
  });

  it('accepts the plugins it can take, and any plugin turned off', () => {
    for (const plugins of [[{ id: 'file-parser', pdf: { engine: 'native' } }, { id: 'response-healing' }, { id: 'context-compression' }], [{ id: 'web', enabled: false }, { id: 'auto-router', enabled: false }], []]) {
      expect(parseChatBody({ model: 'a/b', messages: hi, plugins }).request.model).toBe('a/b');
    }
  });

  it("reads the auto-router plugin's allowed and excluded models (the last plugin turned on counts)", () => {
    const parse = (plugins: unknown) => parseChatBody({ model: 'switchyard/auto', messages: hi, plugins }).autoRouter;
    expect(parse(undefined)).toBeNull();
    expect(parse([{ id: 'auto-router', allowed_models: ['anthropic/*', 'x/y'], excluded_models: null }])).toEqual({ allowed: ['anthropic/*', 'x/y'], excluded: null });
    expect(parse([{ id: 'auto-router', excluded_models: ['*-preview'], cost_tier: null }])).toEqual({ allowed: null, excluded: ['*-preview'] });
    expect(parse([{ id: 'auto-router', allowed_models: ['a/*'], enabled: false }])).toBeNull();
  });

  it('legacy completions: logprobs is a count of alternatives (chat logprobs with that many top_logprobs); one prompt per request', () => {
    const parsed = parseChatBody({ model: 'a/b', prompt: 'Once upon', logprobs: 2 }, 'completion');
    expect(parsed.request).toMatchObject({ logprobs: true, top_logprobs: 2 });
    expect(parseChatBody({ model: 'a/b', prompt: ['Once upon'], logprobs: 0 }, 'completion').request).toMatchObject({ logprobs: true, top_logprobs: 0, messages: [{ role: 'user', content: 'Once upon' }] });
    expect(refusal({ model: 'a/b', prompt: 'x', logprobs: 6 }, 'completion')).toEqual({ message: 'logprobs must be an integer from 0 to 5', param: 'logprobs' });
    // Several prompts were joined into one ("Say oneSay two"): the model was asked something nobody wrote.
    expect(refusal({ model: 'a/b', prompt: ['Say one', 'Say two'] }, 'completion')).toEqual({ message: 'prompt is one string: a list of several prompts (one completion each) is not supported; send one request per prompt', param: 'prompt' });
    expect(refusal({ model: 'a/b', prompt: [1, 2] }, 'completion').message).toBe('prompt must be a non-empty string (token ids are not accepted)');
    // Chat keeps its boolean.
    expect(refusal({ model: 'a/b', messages: hi, logprobs: 2 })).toEqual({ message: 'logprobs must be a boolean', param: 'logprobs' });
  });

  it('names the x-session-id header when it is malformed', () => {
    expect(refusal({ model: 'a/b', messages: hi }, 'chat', { session: '' })).toEqual({ message: 'x-session-id must be a non-empty string of at most 256 characters', param: 'x-session-id' });
  });
});

describe('every refusal inside a message names the field', () => {
  it.each([
    [{ role: 'user', content: 'x', name: 7 }, 'messages[0].name must be a string', 'messages[0].name'],
    [{ role: 'assistant' }, 'messages[0] (assistant) needs content or tool_calls', 'messages[0]'],
    [{ role: 'user', content: ['x'] }, 'messages[0].content[0] must be an object', 'messages[0].content'],
  ])('%j → %s (param %s)', (message, text, param) => {
    expect(refusal({ model: 'a/b', messages: [message] })).toEqual({ message: text, param });
  });
});

describe('fields the providers read are checked, not passed through', () => {
  it.each([
    ['tool calls that are not a list', { messages: [{ role: 'assistant', content: 'x', tool_calls: 'f()' }] }, 'messages[0].tool_calls must be a list', 'messages[0].tool_calls'],
    [
      'a tool call without string arguments',
      { messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: {} } }] }] },
      'messages[0].tool_calls[0].function.arguments must be a string',
      'messages[0].tool_calls',
    ],
    ['an unknown tool_choice', { messages: hi, tool_choice: 'always' }, 'tool_choice must be "none", "auto", "required" or {type:"function", function:{name}}', 'tool_choice'],
    ['parallel_tool_calls that is not a boolean', { messages: hi, parallel_tool_calls: 'yes' }, 'parallel_tool_calls must be a boolean', 'parallel_tool_calls'],
    ['a json_schema format without its schema object', { messages: hi, response_format: { type: 'json_schema' } }, 'response_format.json_schema must be {name, schema?, strict?}', 'response_format.json_schema'],
    ['an unknown reasoning effort', { messages: hi, reasoning: { effort: 'extreme' } }, 'reasoning.effort must be max, xhigh, high, medium, low, minimal or none', 'reasoning.effort'],
    ['a logit bias that is not a number', { messages: hi, logit_bias: { '50256': 'never' } }, 'logit_bias.50256 must be a number', 'logit_bias.50256'],
    ['an unknown cache_control ttl', { messages: [{ role: 'user', content: [{ type: 'text', text: 'x', cache_control: { type: 'ephemeral', ttl: '1d' } }] }] }, 'messages[0].content[0] must be {type:"text", text}, {type:"image_url", image_url:{url}}, {type:"file", file:{filename?, file_data}} or {type:"input_audio", input_audio:{data, format}}', 'messages[0].content'],
  ])('%s', (_, body, message, param) => {
    expect(refusal({ model: 'a/b', ...body })).toEqual({ message, param });
  });

  it('accepts reasoning details echoed back with nulls, and keeps them for the provider', () => {
    const parsed = parseChatBody({
      model: 'a/b',
      messages: [...hi, { role: 'assistant', content: 'x', reasoning_details: [{ type: 'reasoning.text', text: 't', signature: null, format: 'anthropic-claude-v1', index: 0 }] }, ...hi],
    });
    expect(parsed.request.messages[1]).toEqual({ role: 'assistant', content: 'x', reasoning_details: [{ type: 'reasoning.text', text: 't', format: 'anthropic-claude-v1', index: 0 }] });
  });

  it('passes tools through as sent (OpenAI-style providers get them as-is)', () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' }, x_extra: 1 }, cache_control: { type: 'ephemeral' } }];
    expect(parseChatBody({ model: 'a/b', messages: hi, tools }).request.tools).toEqual(tools);
  });
});
