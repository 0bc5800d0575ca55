/**
 * Anthropic Messages API (`POST /v1/messages`, SSE events message_start … message_stop).
 *
 * Mapping notes:
 * - system/developer messages → top-level `system` blocks; tool results → `tool_result` blocks in a user turn;
 *   consecutive same-role turns are merged because the API wants strict user/assistant alternation.
 * - JSON mode: `json_schema` → `output_config.format` (native structured outputs, recent models only);
 *   `json_object` has no native switch, so it becomes a system instruction.
 * - Usage: Anthropic's `input_tokens` excludes cache reads and writes; canonical `prompt_tokens` includes both.
 * - Thinking blocks come back as `reasoning` + `reasoning_details` (with the signature) and are replayed from
 *   `reasoning_details` on later turns, which tool use with thinking requires.
 */
import type {
  AssistantMessage,
  ChatChunk,
  ChatRequest,
  ChatResponse,
  ChunkDelta,
  FinishReason,
  JsonObject,
  MessageContent,
  ProviderError,
  ProviderErrorCode,
  ReasoningDetail,
  ResponseMessage,
  ToolCall,
  ToolChoice,
  Usage,
} from '../../types.js';
import type { ProviderAdapter, ResponseMeta, StreamParser, UpstreamRequest, UpstreamTarget } from '../adapter.js';
import {
  asNumber,
  asRecord,
  asString,
  isRecord,
  joinUrl,
  makeUsage,
  malformedResponse,
  parseDataUrl,
  parseJson,
  parseRetryAfterMs,
  providerError,
  reasoningBudget,
  toolArguments,
  type ErrorFacts,
} from '../common.js';

const PROVIDER = 'anthropic';
export const ANTHROPIC_VERSION = '2023-06-01';
/** The API requires max_tokens; used when the caller sends none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;
const MIN_THINKING_BUDGET = 1024;
const REASONING_FORMAT = 'anthropic-claude-v1';
export const JSON_OBJECT_INSTRUCTION =
  'Respond with a single valid JSON object only: no prose, no Markdown code fences.';

export const anthropicSupportedParameters = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'structured_outputs',
  'reasoning',
] as const;

// ---------------------------------------------------------------------------------------------------------------
// Request

type Role = 'user' | 'assistant';
interface Turn {
  role: Role;
  content: JsonObject[];
}

function textBlocks(content: MessageContent): JsonObject[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  const blocks: JsonObject[] = [];
  for (const part of content) {
    if (part.type !== 'text' || part.text === '') continue;
    blocks.push({ type: 'text', text: part.text, ...(part.cache_control && { cache_control: part.cache_control }) });
  }
  return blocks;
}

function userBlocks(content: MessageContent): JsonObject[] {
  if (typeof content === 'string') return textBlocks(content);
  const blocks: JsonObject[] = [];
  for (const part of content) {
    if (part.type === 'text') {
      blocks.push(...textBlocks([part]));
      continue;
    }
    const inline = parseDataUrl(part.image_url.url);
    blocks.push({
      type: 'image',
      source: inline
        ? { type: 'base64', media_type: inline.mediaType, data: inline.data }
        : { type: 'url', url: part.image_url.url },
    });
  }
  return blocks;
}

function thinkingBlocks(details: ReasoningDetail[] | undefined): JsonObject[] {
  const blocks: JsonObject[] = [];
  for (const detail of details ?? []) {
    // Signatures are provider-specific; replaying another provider's would be rejected.
    if (detail.format !== undefined && !detail.format.startsWith('anthropic')) continue;
    if (detail.type === 'reasoning.text' && detail.signature !== undefined) {
      blocks.push({ type: 'thinking', thinking: detail.text ?? '', signature: detail.signature });
    } else if (detail.type === 'reasoning.encrypted') {
      blocks.push({ type: 'redacted_thinking', data: detail.data });
    }
  }
  return blocks;
}

function assistantBlocks(message: AssistantMessage): JsonObject[] {
  const blocks = thinkingBlocks(message.reasoning_details);
  if (message.content != null) blocks.push(...textBlocks(message.content));
  for (const call of message.tool_calls ?? []) {
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolArguments(PROVIDER, call) });
  }
  return blocks;
}

function toTurns(req: ChatRequest): { system: JsonObject[]; turns: Turn[] } {
  const system: JsonObject[] = [];
  const turns: Turn[] = [];
  const push = (role: Role, blocks: JsonObject[]): void => {
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const message of req.messages) {
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(message.content));
        break;
      case 'user':
        push('user', userBlocks(message.content));
        break;
      case 'assistant':
        push('assistant', assistantBlocks(message));
        break;
      case 'tool':
        push('user', [
          {
            type: 'tool_result',
            tool_use_id: message.tool_call_id,
            content: typeof message.content === 'string' ? message.content : userBlocks(message.content),
          },
        ]);
        break;
    }
  }
  // A trailing assistant turn is a prefill, and the API rejects prefills that end in whitespace.
  const last = turns[turns.length - 1];
  const lastBlock = last?.role === 'assistant' ? last.content[last.content.length - 1] : undefined;
  if (lastBlock?.type === 'text' && typeof lastBlock.text === 'string') lastBlock.text = lastBlock.text.trimEnd();
  return { system, turns };
}

function toolChoice(choice: ToolChoice | undefined, parallel: boolean | undefined): JsonObject | undefined {
  let out: JsonObject | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else if (choice !== undefined) out = { type: 'tool', name: choice.function.name };
  if (parallel === false && out?.type !== 'none') out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return out;
}

function buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest {
  const { system, turns } = toTurns(req);
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS;
  const body: JsonObject = { model: target.upstreamModel, max_tokens: maxTokens, messages: turns };

  const format = req.response_format;
  if (format?.type === 'json_schema' && format.json_schema.schema) {
    body.output_config = { format: { type: 'json_schema', schema: format.json_schema.schema } };
  } else if (format?.type === 'json_object' || format?.type === 'json_schema') {
    system.push({ type: 'text', text: JSON_OBJECT_INSTRUCTION });
  }
  if (system.length > 0) body.system = system;

  const budget = reasoningBudget(req.reasoning, maxTokens);
  if (budget !== undefined) {
    const budgetTokens = Math.max(MIN_THINKING_BUDGET, budget);
    body.thinking = { type: 'enabled', budget_tokens: budgetTokens };
    // The budget must be below max_tokens; keep the caller's max_tokens as room for the visible answer.
    if (budgetTokens >= maxTokens) body.max_tokens = budgetTokens + maxTokens;
  } else {
    // Thinking rejects sampling overrides, so these are only sent without it. Anthropic's range is 0..1.
    if (req.temperature !== undefined) body.temperature = Math.min(1, req.temperature);
    if (req.top_p !== undefined) body.top_p = req.top_p;
    if (req.top_k !== undefined) body.top_k = req.top_k;
  }

  if (req.stop !== undefined) {
    const stops = (typeof req.stop === 'string' ? [req.stop] : req.stop).filter((s) => s !== '');
    if (stops.length > 0) body.stop_sequences = stops;
  }
  if (req.tools?.length) {
    body.tools = req.tools.map((tool) => ({
      name: tool.function.name,
      ...(tool.function.description !== undefined && { description: tool.function.description }),
      input_schema: tool.function.parameters ?? { type: 'object', properties: {} },
    }));
  }
  const choice = toolChoice(req.tool_choice, req.parallel_tool_calls);
  if (choice && req.tools?.length) body.tool_choice = choice;
  if (req.user !== undefined) body.metadata = { user_id: req.user };
  if (req.stream) body.stream = true;

  return {
    url: joinUrl(target.baseUrl, '/messages'),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      'anthropic-version': ANTHROPIC_VERSION,
      ...(target.apiKey !== undefined && { 'x-api-key': target.apiKey }),
      ...target.headers,
    },
    body: JSON.stringify(body),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Response

export function mapAnthropicStopReason(reason: string | undefined): FinishReason | null {
  switch (reason) {
    case undefined:
      return null;
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop';
  }
}

interface InputUsage {
  input: number;
  cacheRead: number;
  cacheWrite: number;
}

function readInputUsage(value: unknown, into: InputUsage): void {
  const u = asRecord(value);
  into.input = asNumber(u.input_tokens) ?? into.input;
  into.cacheRead = asNumber(u.cache_read_input_tokens) ?? into.cacheRead;
  into.cacheWrite = asNumber(u.cache_creation_input_tokens) ?? into.cacheWrite;
}

function toUsage(input: InputUsage, output: number): Usage {
  return makeUsage({
    prompt: input.input + input.cacheRead + input.cacheWrite,
    completion: output,
    cached: input.cacheRead,
    cacheWrite: input.cacheWrite,
  });
}

function parseResponse(status: number, json: unknown, meta: ResponseMeta = {}): ChatResponse {
  if (!isRecord(json)) throw malformedResponse(PROVIDER, `response body is not a JSON object (HTTP ${status})`);
  if (json.type === 'error') throw errorFromEvent(json);
  if (!Array.isArray(json.content)) throw malformedResponse(PROVIDER, 'response has no content array');

  let text = '';
  let reasoning = '';
  const toolCalls: ToolCall[] = [];
  const details: ReasoningDetail[] = [];
  for (const block of json.content) {
    if (!isRecord(block)) continue;
    if (block.type === 'text') text += asString(block.text) ?? '';
    else if (block.type === 'tool_use') {
      toolCalls.push({
        id: asString(block.id) ?? '',
        type: 'function',
        function: { name: asString(block.name) ?? '', arguments: JSON.stringify(block.input ?? {}) },
      });
    } else if (block.type === 'thinking') {
      const thinking = asString(block.thinking) ?? '';
      reasoning += thinking;
      const signature = asString(block.signature);
      details.push({ type: 'reasoning.text', text: thinking, ...(signature && { signature }), format: REASONING_FORMAT });
    } else if (block.type === 'redacted_thinking') {
      details.push({ type: 'reasoning.encrypted', data: asString(block.data) ?? '', format: REASONING_FORMAT });
    }
  }
  const message: ResponseMessage = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (details.length > 0) {
    message.reasoning = reasoning;
    message.reasoning_details = details;
  }
  const stopReason = asString(json.stop_reason);
  const input: InputUsage = { input: 0, cacheRead: 0, cacheWrite: 0 };
  readInputUsage(json.usage, input);
  return {
    id: meta.id ?? asString(json.id) ?? '',
    object: 'chat.completion',
    created: meta.created ?? 0,
    model: meta.model ?? asString(json.model) ?? '',
    choices: [{ index: 0, message, finish_reason: mapAnthropicStopReason(stopReason), native_finish_reason: stopReason ?? null }],
    ...(isRecord(json.usage) && { usage: toUsage(input, asNumber(json.usage.output_tokens) ?? 0) }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming

function createStreamParser(meta: ResponseMeta = {}): StreamParser {
  let id = meta.id ?? '';
  let model = meta.model ?? '';
  const input: InputUsage = { input: 0, cacheRead: 0, cacheWrite: 0 };
  let output = 0;
  let usageSeen = false;
  let finishReason: FinishReason | undefined;
  let nativeFinishReason: string | undefined;
  let done = false;
  // Content-block index → canonical tool_calls index (only tool_use blocks get one).
  const toolIndexOfBlock = new Map<number, number>();

  const chunk = (delta: ChunkDelta, finish: FinishReason | null = null): ChatChunk[] => [
    {
      id,
      object: 'chat.completion.chunk',
      created: meta.created ?? 0,
      model,
      choices: [
        {
          index: 0,
          delta,
          finish_reason: finish,
          ...(finish !== null && { native_finish_reason: nativeFinishReason ?? null }),
        },
      ],
    },
  ];

  return {
    push(message) {
      const event = parseJson(message.data);
      if (!isRecord(event)) throw malformedResponse(PROVIDER, `invalid stream event: ${message.data.slice(0, 200)}`);
      const type = asString(event.type) ?? message.event;
      switch (type) {
        case 'message_start': {
          const m = asRecord(event.message);
          if (meta.id === undefined) id = asString(m.id) ?? id;
          if (meta.model === undefined) model = asString(m.model) ?? model;
          if (isRecord(m.usage)) {
            usageSeen = true;
            readInputUsage(m.usage, input);
            output = asNumber(m.usage.output_tokens) ?? output;
          }
          return chunk({ role: 'assistant', content: '' });
        }
        case 'content_block_start': {
          const index = asNumber(event.index) ?? 0;
          const block = asRecord(event.content_block);
          if (block.type === 'tool_use') {
            const toolIndex = toolIndexOfBlock.size;
            toolIndexOfBlock.set(index, toolIndex);
            return chunk({
              tool_calls: [
                {
                  index: toolIndex,
                  id: asString(block.id) ?? '',
                  type: 'function',
                  function: { name: asString(block.name) ?? '', arguments: '' },
                },
              ],
            });
          }
          if (block.type === 'text' && asString(block.text)) return chunk({ content: asString(block.text) });
          if (block.type === 'thinking' && asString(block.thinking)) return chunk({ reasoning: asString(block.thinking) });
          if (block.type === 'redacted_thinking') {
            return chunk({
              reasoning_details: [{ type: 'reasoning.encrypted', data: asString(block.data) ?? '', format: REASONING_FORMAT }],
            });
          }
          return [];
        }
        case 'content_block_delta': {
          const delta = asRecord(event.delta);
          switch (delta.type) {
            case 'text_delta':
              return chunk({ content: asString(delta.text) ?? '' });
            case 'thinking_delta':
              return chunk({ reasoning: asString(delta.thinking) ?? '' });
            case 'signature_delta':
              return chunk({
                reasoning_details: [{ type: 'reasoning.text', signature: asString(delta.signature) ?? '', format: REASONING_FORMAT }],
              });
            case 'input_json_delta': {
              const toolIndex = toolIndexOfBlock.get(asNumber(event.index) ?? -1);
              const partial = asString(delta.partial_json) ?? '';
              if (toolIndex === undefined || partial === '') return [];
              return chunk({ tool_calls: [{ index: toolIndex, function: { arguments: partial } }] });
            }
            default:
              return [];
          }
        }
        case 'message_delta': {
          if (isRecord(event.usage)) {
            usageSeen = true;
            // message_delta usage is cumulative, and newer API versions repeat the input counts here.
            readInputUsage(event.usage, input);
            output = asNumber(event.usage.output_tokens) ?? output;
          }
          const stopReason = asString(asRecord(event.delta).stop_reason);
          if (stopReason === undefined) return [];
          nativeFinishReason = stopReason;
          finishReason = mapAnthropicStopReason(stopReason) ?? undefined;
          return chunk({}, finishReason ?? null);
        }
        case 'message_stop':
          done = true;
          return [];
        case 'error':
          throw errorFromEvent(event);
        default:
          // ping, content_block_stop, and event types added later.
          return [];
      }
    },
    finish() {
      return {
        done,
        ...(usageSeen && { usage: toUsage(input, output) }),
        ...(finishReason && { finishReason }),
        ...(nativeFinishReason !== undefined && { nativeFinishReason }),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

const ERROR_TYPES: Record<string, { status: number; code: ProviderErrorCode }> = {
  invalid_request_error: { status: 400, code: 'bad_request' },
  authentication_error: { status: 401, code: 'auth' },
  billing_error: { status: 402, code: 'payment_required' },
  permission_error: { status: 403, code: 'auth' },
  not_found_error: { status: 404, code: 'not_found' },
  request_too_large: { status: 413, code: 'bad_request' },
  rate_limit_error: { status: 429, code: 'rate_limited' },
  api_error: { status: 500, code: 'server_error' },
  timeout_error: { status: 504, code: 'timeout' },
  overloaded_error: { status: 529, code: 'overloaded' },
};

/** `{type:"error", error:{type, message}}`, the same shape as an HTTP error body and an SSE `error` event. */
function errorFacts(body: unknown, status: number | undefined): ErrorFacts {
  const err = asRecord(asRecord(body).error);
  const type = asString(err.type);
  const known = type === undefined ? undefined : ERROR_TYPES[type];
  const facts: ErrorFacts = { provider: PROVIDER, status: status ?? known?.status ?? 500 };
  if (known) facts.code = known.code;
  if (type !== undefined) facts.upstreamCode = type;
  const message = asString(err.message);
  if (message !== undefined) facts.upstreamMessage = message;
  return facts;
}

function errorFromEvent(event: unknown): ProviderError {
  return providerError(errorFacts(event, undefined));
}

export const anthropicAdapter: ProviderAdapter = {
  protocol: 'anthropic',
  supportedParameters: anthropicSupportedParameters,
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError(status, headers, bodyText, nowMs) {
    const body = parseJson(bodyText);
    // Over HTTP the status code is the contract; the error type only names it (kept as upstreamCode).
    const { code: _fromType, ...facts } = errorFacts(body, status);
    if (body === undefined && bodyText.trim() !== '') facts.upstreamMessage = bodyText.trim().slice(0, 500);
    const retryAfterMs = parseRetryAfterMs(headers, nowMs);
    return providerError({ ...facts, ...(retryAfterMs !== undefined && { retryAfterMs }) });
  },
};
