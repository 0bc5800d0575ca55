/**
 * The Anthropic skin, pure: an Anthropic Messages request becomes an OpenRouter chat body, which the route gives to
 * the one chat parser (`parseChatBody`: the same validation, prompt estimate, routing needs and session as
 * chat/completions) once any preset is applied;
 * the gateway's canonical answer becomes Anthropic's Message, and its chunks Anthropic's stream events.
 * The I/O (auth, the gateway, SSE) is in anthropicMessages.rest.ts.
 */
import type { z } from 'zod';
import type { DomainError } from '../../errors.js';
import { chatCostDetails, costsOf } from '../rest.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../objects.js';
import { pathText } from '../chatRequest.schema.js';
import type { GenerationOutcome } from '../gateway.js';
import { GatewayError, invalidRequest } from '../gatewayErrors.js';
import { REASONING_FORMAT } from '../providers/anthropic/response.js';
import type { ChatChunk, ChatMessage, ChatResponse, ContentPart, FinishReason, JsonObject, ReasoningDetail, ToolCall } from '../types.js';
import { MessagesBody, PARSE_OPTIONS, type AnthropicBlock, type AnthropicMessage } from './anthropicMessages.schema.js';

// -----------------------------------------------------------------------------------------------------------------
// Request

const refuse = (error: z.ZodError): never => {
  const issue = error.issues[0];
  const path = issue?.path ?? [];
  throw invalidRequest(issue?.message ?? 'The request body is invalid', path.length > 0 ? { param: pathText(path) } : {});
};

/** A tool's arguments as the JSON text chat carries; input nested past what the stringifier can walk is a 400. */
const argumentsOf = (input: Record<string, unknown>, where: string): string => {
  try {
    return JSON.stringify(input);
  } catch {
    throw invalidRequest(`${where}.input is nested too deeply`, { param: `${where}.input` });
  }
};

const textPart = (block: { text: string; cache_control?: { type: 'ephemeral'; ttl?: '5m' | '1h' } | null | undefined }): ContentPart => ({
  type: 'text',
  text: block.text,
  ...(block.cache_control != null && { cache_control: block.cache_control }),
});

const imagePart = (source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string }): ContentPart => ({
  type: 'image_url',
  image_url: { url: source.type === 'base64' ? `data:${source.media_type};base64,${source.data}` : source.url },
});

/** A user turn: its tool results first (chat wants them right after the assistant's calls), then the rest. */
const userMessages = (content: AnthropicMessage['content'], where: string): ChatMessage[] => {
  if (typeof content === 'string') return [{ role: 'user', content }];
  const tools: ChatMessage[] = [];
  const parts: ContentPart[] = [];
  content.forEach((block, i) => {
    switch (block.type) {
      case 'text':
        parts.push(textPart(block));
        break;
      case 'image':
        parts.push(imagePart(block.source));
        break;
      case 'document': {
        const { source } = block;
        const data =
          source.type === 'url' ? source.url : source.type === 'text' ? `data:text/plain;base64,${Buffer.from(source.data, 'utf8').toString('base64')}` : `data:${source.media_type};base64,${source.data}`;
        parts.push({ type: 'file', file: { file_data: data, ...(block.title != null && { filename: block.title }) } });
        break;
      }
      case 'tool_result': {
        const result = block.content ?? '';
        // Chat has no error flag on a tool result: say it in the content, so the model still learns the call failed.
        const flagged = block.is_error === true ? (typeof result === 'string' ? `Error: ${result}` : [{ type: 'text' as const, text: 'Error:' }, ...result]) : result;
        tools.push({
          role: 'tool',
          tool_call_id: block.tool_use_id,
          content: typeof flagged === 'string' ? flagged : flagged.map((b) => (b.type === 'text' ? textPart(b) : imagePart(b.source))),
        });
        break;
      }
      case 'tool_use':
      case 'thinking':
      case 'redacted_thinking':
        throw invalidRequest(`${where}[${i}] is a ${block.type} block, which only an assistant message can hold`, { param: `${where}[${i}]` });
      default: {
        const _never: never = block;
      }
    }
  });
  return parts.length > 0 ? [...tools, { role: 'user', content: parts }] : tools;
};

const assistantMessage = (content: AnthropicMessage['content'], where: string): ChatMessage => {
  if (typeof content === 'string') return { role: 'assistant', content };
  let text = '';
  const calls: ToolCall[] = [];
  const details: ReasoningDetail[] = [];
  content.forEach((block: AnthropicBlock, i) => {
    switch (block.type) {
      case 'text':
        text += block.text;
        break;
      case 'tool_use':
        calls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: argumentsOf(block.input, `${where}[${i}]`) } });
        break;
      case 'thinking':
        // An empty signature (a thinking block this skin made from another protocol's reasoning) signs nothing:
        // replayed to Anthropic it would be refused, so the block goes back as unsigned reasoning, which is not replayed.
        details.push({ type: 'reasoning.text', text: block.thinking, ...(block.signature !== '' && { signature: block.signature }), format: REASONING_FORMAT });
        break;
      case 'redacted_thinking':
        details.push({ type: 'reasoning.encrypted', data: block.data, format: REASONING_FORMAT });
        break;
      case 'image':
      case 'document':
      case 'tool_result':
        throw invalidRequest(`${where}[${i}] is a ${block.type} block, which only a user message can hold`, { param: `${where}[${i}]` });
      default: {
        const _never: never = block;
      }
    }
  });
  return {
    role: 'assistant',
    content: text === '' && calls.length > 0 ? null : text,
    ...(calls.length > 0 && { tool_calls: calls }),
    ...(details.length > 0 && { reasoning_details: details }),
  };
};

/**
 * An Anthropic Messages body as the OpenRouter chat body it means (a preset is applied to that, then the one chat
 * parser checks the result). Every field is checked here first, so a mistake is named as the client wrote it
 * (`stop_sequences`, not `stop`).
 */
export const messagesChatBody = (raw: unknown): JsonObject => {
  const parsed = MessagesBody.safeParse(raw, PARSE_OPTIONS);
  if (!parsed.success) return refuse(parsed.error);
  const body = parsed.data;
  if (body.fallbacks !== undefined && body.models !== undefined) {
    throw invalidRequest('fallbacks cannot be combined with models: list the fallback models in one of them', { param: 'fallbacks' });
  }
  const models = body.fallbacks?.map((fallback) => fallback.model) ?? body.models;
  // Thinking is output within max_tokens: Anthropic refuses a budget that leaves no room for it, and so does this skin.
  if (body.thinking?.type === 'enabled' && body.thinking.budget_tokens >= body.max_tokens) {
    throw invalidRequest(`max_tokens must be greater than thinking.budget_tokens (${body.thinking.budget_tokens}); max_tokens is ${body.max_tokens}`, { param: 'thinking.budget_tokens' });
  }

  const messages: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = typeof body.system === 'string' ? body.system : body.system.map(textPart);
    if (system.length > 0) messages.push({ role: 'system', content: system });
  }
  body.messages.forEach((message, i) => {
    const where = `messages[${i}].content`;
    if (message.role === 'assistant') return void messages.push(assistantMessage(message.content, where));
    const turn = userMessages(message.content, where);
    if (turn.length === 0) throw invalidRequest(`${where} must not be empty`, { param: where });
    messages.push(...turn);
  });

  const choice = body.tool_choice;
  const chat: JsonObject = {
    model: body.model,
    ...(models !== undefined && { models }),
    messages,
    max_tokens: body.max_tokens,
    ...(body.temperature !== undefined && { temperature: body.temperature }),
    ...(body.top_p !== undefined && { top_p: body.top_p }),
    ...(body.top_k !== undefined && { top_k: body.top_k }),
    ...(body.stop_sequences !== undefined && body.stop_sequences.length > 0 && { stop: body.stop_sequences }),
    ...(body.tools !== undefined && {
      tools: body.tools.map((tool) => ({ type: 'function', function: { name: tool.name, ...(tool.description !== undefined && { description: tool.description }), parameters: tool.input_schema } })),
    }),
    ...(choice !== undefined && {
      tool_choice: choice.type === 'auto' ? 'auto' : choice.type === 'any' ? 'required' : choice.type === 'none' ? 'none' : { type: 'function', function: { name: choice.name } },
    }),
    ...(choice !== undefined && choice.type !== 'none' && choice.disable_parallel_tool_use === true && { parallel_tool_calls: false }),
    ...(body.thinking !== undefined && { reasoning: body.thinking.type === 'enabled' ? { max_tokens: body.thinking.budget_tokens } : { enabled: false } }),
    ...(body.metadata?.user_id != null && { user: body.metadata.user_id }),
    ...(body.stream === true && { stream: true }),
    ...(body.provider !== undefined && { provider: body.provider }),
    ...(body.plugins !== undefined && { plugins: body.plugins }),
    ...(body.session_id !== undefined && { session_id: body.session_id }),
    ...(body.cache_control !== undefined && { cache_control: body.cache_control }),
    ...(body.preset !== undefined && { preset: body.preset }),
  };
  return chat;
};

// -----------------------------------------------------------------------------------------------------------------
// Response

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

/**
 * `native` tells a stop sequence from a natural end when the upstream said so (Anthropic's own `stop_sequence`). An
 * answer that ended with an error has no stop reason: it is answered with `answerError` (Anthropic's API has no stop
 * reason for an error, only its error answer or event).
 */
export const stopReasonOf = (finish: FinishReason | null, native: string | null | undefined): StopReason => {
  switch (finish) {
    case null:
    case 'stop':
      return native === 'stop_sequence' ? 'stop_sequence' : 'end_turn';
    case 'error':
      throw new Error('an answer that ended with an error has no stop reason: answer it with answerError');
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default: {
      const _never: never = finish;
      return _never;
    }
  }
};

/**
 * Anthropic's usage: `input_tokens` without the cache reads and writes (canonical prompt_tokens includes them), plus
 * OpenRouter's `cost` in USD, `is_byok` and `cost_details` named as on chat.
 */
export const anthropicUsage = (outcome: GenerationOutcome) => {
  const { usage } = outcome;
  const cacheRead = usage.prompt_tokens_details?.cached_tokens ?? 0;
  const cacheWrite = usage.prompt_tokens_details?.cache_write_tokens ?? 0;
  const costs = costsOf(outcome);
  return {
    input_tokens: Math.max(0, usage.prompt_tokens - cacheRead - cacheWrite),
    output_tokens: usage.completion_tokens,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
    cost: costs.cost,
    is_byok: costs.byok,
    cost_details: chatCostDetails(costs),
  };
};

/**
 * Tool arguments as Anthropic's `input` object; text that is not a JSON object, or one nested deeper than
 * MAX_JSON_DEPTH (the upstream's text is not bounded, and the answer's JSON.stringify would overflow the stack on it
 * after the call was charged), is kept under `_raw` rather than lost, as chat and Responses pass it on as text.
 */
const inputOf = (args: string): JsonObject => {
  if (args.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(args);
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && !nestsDeeperThan(value, MAX_JSON_DEPTH)) return value as JsonObject;
  } catch {
    // fall through
  }
  return { _raw: args };
};

const thinkingBlocks = (reasoning: string | null | undefined, details: readonly ReasoningDetail[] | undefined): JsonObject[] => {
  const blocks: JsonObject[] = [];
  for (const detail of details ?? []) {
    if (detail.type === 'reasoning.text') blocks.push({ type: 'thinking', thinking: detail.text ?? '', signature: detail.signature ?? '' });
    else if (detail.type === 'reasoning.encrypted') blocks.push({ type: 'redacted_thinking', data: detail.data });
  }
  // An upstream that sends reasoning text without details (OpenAI-compatible ones) still shows it.
  if (blocks.length === 0 && reasoning) blocks.push({ type: 'thinking', thinking: reasoning, signature: '' });
  return blocks;
};

/**
 * Anthropic's `stop_sequence`: the sequence that ended the answer when the upstream said which (only Anthropic's
 * protocol does; an OpenAI-compatible "stop" does not tell a stop sequence from a natural end), else null.
 */
const stopSequenceOf = (reason: StopReason, sequence: string | null | undefined): string | null => (reason === 'stop_sequence' ? (sequence ?? null) : null);

/**
 * Why the provider ended the answer with an error mid-generation (finish_reason "error"), or null when it did not:
 * its error when it sent one (a whole answer's `choices[0].error`, redacted as the router makes it), else a 502 naming
 * the provider and the finish reason it gave. Anthropic's API has no stop reason for that: a whole answer is its error
 * (charged all the same, as chat's `choices[0].error` answer is), a stream ends with its `event: error`.
 */
export const answerError = (outcome: GenerationOutcome, native = outcome.response?.choices[0]?.native_finish_reason): DomainError | null => {
  if (outcome.finishReason !== 'error') return null;
  const provider = outcome.providerName ?? 'The provider';
  const said = native != null && native !== 'error' ? ` (finish reason ${JSON.stringify(native)})` : '';
  const error = outcome.error ?? new GatewayError(502, 'provider_unavailable', `${provider} ended the answer with an error mid-generation${said}`, { provider_name: outcome.providerName });
  // The answer was charged: an SDK that retries every 5xx (and 429) on its own would pay for it again each time, for
  // nothing it sees (x-should-retry: false; the client may still send it again, as a new call).
  return new GatewayError(error.status, error.errorType, error.message, error.metadata, undefined, error.code, false);
};

/** The gateway's answer as Anthropic's Message object (one that did not end with an error: answerError). */
export const messageJson = (response: ChatResponse, outcome: GenerationOutcome) => {
  const choice = response.choices[0];
  const message = choice?.message;
  const content: JsonObject[] = thinkingBlocks(message?.reasoning, message?.reasoning_details);
  if (message?.content) content.push({ type: 'text', text: message.content });
  for (const call of message?.tool_calls ?? []) content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: inputOf(call.function.arguments) });
  const stopReason = stopReasonOf(choice?.finish_reason ?? null, choice?.native_finish_reason);
  return {
    id: outcome.generationId,
    type: 'message',
    role: 'assistant',
    model: outcome.model,
    content,
    stop_reason: stopReason,
    stop_sequence: stopSequenceOf(stopReason, choice?.stop_sequence),
    usage: anthropicUsage(outcome),
  };
};

// -----------------------------------------------------------------------------------------------------------------
// Errors

/** Anthropic's error type for a status (its documented table), OpenRouter's `error_type` breaking ties. */
export const anthropicErrorType = (error: DomainError): string => {
  if (error.errorType === 'provider_overloaded') return 'overloaded_error';
  if (error.errorType === 'timeout') return 'timeout_error';
  switch (error.status) {
    case 400:
    case 405:
    case 409:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 408:
    case 504:
      return 'timeout_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return error.status >= 500 ? 'api_error' : 'invalid_request_error';
  }
};

/** `{type:"error", error:{type, message}, request_id}`: Anthropic's error body (an HTTP answer and a stream's `error` event). */
export const anthropicErrorBody = (error: DomainError, requestId: string) => ({
  type: 'error',
  error: { type: anthropicErrorType(error), message: error.message },
  request_id: requestId,
});

// -----------------------------------------------------------------------------------------------------------------
// Streaming

export interface AnthropicEvent {
  readonly event: string;
  readonly data: JsonObject;
}

/**
 * Chat chunks in, Anthropic stream events out. Blocks are sequential as Anthropic's are (a block is stopped before
 * the next starts): thinking, text and each tool call get their own; `ping` follows the first block's start.
 */
export const createMessageStream = (meta: { id: string; model: string; inputTokensEstimate: number }) => {
  let started = false;
  let pinged = false;
  let blockIndex = -1;
  let open: { kind: 'text' | 'thinking' | 'tool'; tool?: number } | null = null;
  const toolBlocks = new Map<number, number>();
  let finish: FinishReason | null = null;
  let native: string | null = null;
  let stopSequence: string | null = null;
  let model = meta.model;

  const start = (out: AnthropicEvent[]) => {
    if (started) return;
    started = true;
    out.push({
      event: 'message_start',
      data: {
        type: 'message_start',
        message: {
          id: meta.id,
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          // The estimate the reservation used; message_delta carries the billed counts.
          usage: { input_tokens: meta.inputTokensEstimate, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
        },
      },
    });
  };
  const close = (out: AnthropicEvent[]) => {
    if (open === null) return;
    out.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index: blockIndex } });
    open = null;
  };
  const begin = (out: AnthropicEvent[], kind: 'text' | 'thinking' | 'tool', block: JsonObject, tool?: number) => {
    close(out);
    blockIndex += 1;
    open = { kind, ...(tool !== undefined && { tool }) };
    out.push({ event: 'content_block_start', data: { type: 'content_block_start', index: blockIndex, content_block: block } });
    if (!pinged) {
      pinged = true;
      out.push({ event: 'ping', data: { type: 'ping' } });
    }
  };
  const delta = (out: AnthropicEvent[], index: number, payload: JsonObject) => out.push({ event: 'content_block_delta', data: { type: 'content_block_delta', index, delta: payload } });

  return {
    /** Events for one chunk (message_start comes with the first). */
    push(chunk: ChatChunk): AnthropicEvent[] {
      const out: AnthropicEvent[] = [];
      if (!started && chunk.model) model = chunk.model;
      start(out);
      for (const choice of chunk.choices) {
        const d = choice.delta;
        if (d.reasoning) {
          if (open?.kind !== 'thinking') begin(out, 'thinking', { type: 'thinking', thinking: '', signature: '' });
          delta(out, blockIndex, { type: 'thinking_delta', thinking: d.reasoning });
        }
        for (const detail of d.reasoning_details ?? []) {
          if (detail.type === 'reasoning.text' && detail.signature) {
            if (open?.kind !== 'thinking') begin(out, 'thinking', { type: 'thinking', thinking: '', signature: '' });
            delta(out, blockIndex, { type: 'signature_delta', signature: detail.signature });
          } else if (detail.type === 'reasoning.encrypted') {
            begin(out, 'thinking', { type: 'redacted_thinking', data: detail.data });
            close(out);
          }
        }
        if (d.content) {
          if (open?.kind !== 'text') begin(out, 'text', { type: 'text', text: '' });
          delta(out, blockIndex, { type: 'text_delta', text: d.content });
        }
        for (const call of d.tool_calls ?? []) {
          let index = toolBlocks.get(call.index);
          if (index === undefined) {
            begin(out, 'tool', { type: 'tool_use', id: call.id ?? `toolu_${meta.id}_${call.index}`, name: call.function?.name ?? '', input: {} }, call.index);
            index = blockIndex;
            toolBlocks.set(call.index, index);
          }
          // Arguments of a call whose block was already stopped (an upstream interleaving calls) still go to its index.
          if (call.function?.arguments) delta(out, index, { type: 'input_json_delta', partial_json: call.function.arguments });
        }
        if (choice.finish_reason !== null) {
          finish = choice.finish_reason;
          native = choice.native_finish_reason ?? null;
          stopSequence = choice.stop_sequence ?? null;
        }
      }
      return out;
    },
    /** The upstream's own finish reason, as it named it (a stream's whole answer has none: answerError). */
    nativeFinishReason: (): string | null => native,
    /** The closing events: the open block's stop, message_delta with the stop reason and the billed usage, message_stop. */
    end(outcome: GenerationOutcome): AnthropicEvent[] {
      const out: AnthropicEvent[] = [];
      start(out);
      close(out);
      const stopReason = stopReasonOf(finish ?? outcome.finishReason, native);
      out.push({
        event: 'message_delta',
        data: { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: stopSequenceOf(stopReason, stopSequence) }, usage: anthropicUsage(outcome) },
      });
      out.push({ event: 'message_stop', data: { type: 'message_stop' } });
      return out;
    },
  };
};

export const sseEvent = (e: AnthropicEvent): string => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
