/**
 * Anthropic Messages response body. Usage: Anthropic's `input_tokens` excludes cache reads and writes; canonical
 * `prompt_tokens` includes both. Thinking blocks come back as `reasoning` + `reasoning_details` (with the signature).
 */
import type { ChatResponse, ReasoningDetail, ResponseMessage, ToolCall, Usage } from '../../types.js';
import type { ResponseMeta } from '../adapter.js';
import { asNumber, asRecord, asString, isRecord, makeUsage, malformedResponse } from '../common.js';
import { errorFromEvent, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';

export const REASONING_FORMAT = 'anthropic-claude-v1';

export interface InputUsage {
  input: number;
  cacheRead: number;
  cacheWrite: number;
  /** `server_tool_use.web_search_requests` (cumulative, like the counts), when reported. */
  webSearches?: number;
}

export function readInputUsage(value: unknown, into: InputUsage): void {
  const u = asRecord(value);
  into.input = asNumber(u.input_tokens) ?? into.input;
  into.cacheRead = asNumber(u.cache_read_input_tokens) ?? into.cacheRead;
  into.cacheWrite = asNumber(u.cache_creation_input_tokens) ?? into.cacheWrite;
  const webSearches = asNumber(asRecord(u.server_tool_use).web_search_requests);
  if (webSearches !== undefined) into.webSearches = webSearches;
}

export function toUsage(input: InputUsage, output: number): Usage {
  return makeUsage({
    prompt: input.input + input.cacheRead + input.cacheWrite,
    completion: output,
    cached: input.cacheRead,
    cacheWrite: input.cacheWrite,
    ...(input.webSearches !== undefined && { webSearches: input.webSearches }),
  });
}

export function parseResponse(status: number, json: unknown, meta: ResponseMeta = {}): ChatResponse {
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
  const stopSequence = stopReason === 'stop_sequence' ? asString(json.stop_sequence) : undefined;
  const input: InputUsage = { input: 0, cacheRead: 0, cacheWrite: 0 };
  readInputUsage(json.usage, input);
  return {
    id: meta.id ?? asString(json.id) ?? '',
    object: 'chat.completion',
    created: meta.created ?? 0,
    model: meta.model ?? asString(json.model) ?? '',
    choices: [{ index: 0, message, finish_reason: mapFinishReason(stopReason), native_finish_reason: stopReason ?? null, ...(stopSequence !== undefined && { stop_sequence: stopSequence }) }],
    ...(isRecord(json.usage) && { usage: toUsage(input, asNumber(json.usage.output_tokens) ?? 0) }),
  };
}
