/**
 * Anthropic Messages response body. Usage: Anthropic's `input_tokens` excludes cache reads and writes; canonical
 * `prompt_tokens` includes both. Thinking blocks come back as `reasoning` + `reasoning_details` (with the signature).
 */
import type { ChatResponse, ReasoningDetail, ResponseMessage, ToolCall, Usage } from '../../types.js';
import type { ResponseMeta } from '../adapter.js';
import { asNumber, asRecord, asString, isRecord, makeUsage, malformedResponse, readCounts } from '../common.js';
import { errorFromEvent, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';

export const REASONING_FORMAT = 'anthropic-claude-v1';

const COUNT_FIELDS = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const;
type CountField = (typeof COUNT_FIELDS)[number];
export type AnthropicCounts = Partial<Record<CountField, number>>;

/**
 * The counts of one usage object, each a count or absent (`message_start` and `message_delta` carry some of them);
 * undefined when one is not a count: the report is then no report (common.ts readCounts).
 */
export const readUsageCounts = (usage: unknown): AnthropicCounts | undefined => readCounts(usage, [], COUNT_FIELDS);

/** `server_tool_use.web_search_requests` (cumulative, like the counts), when reported: shown, never priced. */
export const webSearchesOf = (usage: unknown): number | undefined => asNumber(asRecord(asRecord(usage).server_tool_use).web_search_requests);

/** Canonical usage from counts already read as counts (so none can cancel a negative one when they are added up). */
export function toUsage(counts: AnthropicCounts & { input_tokens: number; output_tokens: number }, webSearches: number | undefined): Usage {
  const cacheRead = counts.cache_read_input_tokens ?? 0;
  const cacheWrite = counts.cache_creation_input_tokens ?? 0;
  return makeUsage({
    prompt: counts.input_tokens + cacheRead + cacheWrite,
    completion: counts.output_tokens,
    cached: cacheRead,
    cacheWrite,
    ...(webSearches !== undefined && { webSearches }),
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
  // A whole answer's usage has both totals; without them (or with a count that is none) it is no report.
  const counts = readCounts(json.usage, ['input_tokens', 'output_tokens'], ['cache_read_input_tokens', 'cache_creation_input_tokens']);
  return {
    id: meta.id ?? asString(json.id) ?? '',
    object: 'chat.completion',
    created: meta.created ?? 0,
    model: meta.model ?? asString(json.model) ?? '',
    choices: [{ index: 0, message, finish_reason: mapFinishReason(stopReason), native_finish_reason: stopReason ?? null, ...(stopSequence !== undefined && { stop_sequence: stopSequence }) }],
    ...(counts && { usage: toUsage(counts, webSearchesOf(json.usage)) }),
  };
}
