/** OpenAI chat completion bodies, with compatible servers' quirks (`reasoning_content`, DeepSeek cache counters). */
import type { ChatResponse, ReasoningDetail, ResponseMessage, ToolCall, Usage } from '../../types.js';
import type { ResponseMeta } from '../adapter.js';
import { asArray, asNumber, asRecord, asString, isRecord, makeUsage, malformedResponse } from '../common.js';
import { errorFromBody, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';

export function parseUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const prompt = asNumber(value.prompt_tokens);
  const completion = asNumber(value.completion_tokens);
  if (prompt === undefined || completion === undefined) return undefined;
  const promptDetails = asRecord(value.prompt_tokens_details);
  const completionDetails = asRecord(value.completion_tokens_details);
  const cached = asNumber(promptDetails.cached_tokens) ?? asNumber(value.prompt_cache_hit_tokens);
  const cacheWrite = asNumber(promptDetails.cache_write_tokens);
  const reasoning = asNumber(completionDetails.reasoning_tokens);
  // OpenAI's audio counts; video, image and server_tool_use come from OpenRouter-shaped upstreams.
  const audioIn = asNumber(promptDetails.audio_tokens);
  const videoIn = asNumber(promptDetails.video_tokens);
  const audioOut = asNumber(completionDetails.audio_tokens);
  const imageOut = asNumber(completionDetails.image_tokens);
  const webSearches = asNumber(asRecord(value.server_tool_use).web_search_requests);
  return makeUsage({
    prompt,
    completion,
    total: asNumber(value.total_tokens),
    ...(cached !== undefined && { cached }),
    ...(cacheWrite !== undefined && { cacheWrite }),
    ...(reasoning !== undefined && { reasoning }),
    ...(audioIn !== undefined && { audioIn }),
    ...(videoIn !== undefined && { videoIn }),
    ...(audioOut !== undefined && { audioOut }),
    ...(imageOut !== undefined && { imageOut }),
    ...(webSearches !== undefined && { webSearches }),
  });
}

export function parseReasoningDetails(value: unknown): ReasoningDetail[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const details: ReasoningDetail[] = [];
  for (const item of value) {
    if (!isRecord(item)) continue;
    const common = {
      ...(asString(item.format) !== undefined && { format: asString(item.format) }),
      ...(asString(item.id) !== undefined && { id: asString(item.id) }),
      ...(asNumber(item.index) !== undefined && { index: asNumber(item.index) }),
    };
    const text = asString(item.text);
    const signature = asString(item.signature);
    const data = asString(item.data);
    const summary = asString(item.summary);
    if (item.type === 'reasoning.text') {
      details.push({ type: 'reasoning.text', ...common, ...(text !== undefined && { text }), ...(signature !== undefined && { signature }) });
    } else if (item.type === 'reasoning.encrypted' && data !== undefined) {
      details.push({ type: 'reasoning.encrypted', data, ...common });
    } else if (item.type === 'reasoning.summary' && summary !== undefined) {
      details.push({ type: 'reasoning.summary', summary, ...common });
    }
  }
  return details.length > 0 ? details : undefined;
}

function parseToolCalls(value: unknown): ToolCall[] | undefined {
  const calls: ToolCall[] = [];
  for (const item of asArray(value)) {
    if (!isRecord(item)) continue;
    const fn = asRecord(item.function);
    const name = asString(fn.name);
    if (name === undefined) continue;
    calls.push({ id: asString(item.id) ?? '', type: 'function', function: { name, arguments: asString(fn.arguments) ?? '' } });
  }
  return calls.length > 0 ? calls : undefined;
}

function messageText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return null;
  let text = '';
  for (const part of value) if (isRecord(part) && typeof part.text === 'string') text += part.text;
  return text;
}

export function parseResponse(status: number, json: unknown, meta: ResponseMeta = {}): ChatResponse {
  if (!isRecord(json)) throw malformedResponse(PROVIDER, `response body is not a JSON object (HTTP ${status})`);
  if (json.error != null) throw errorFromBody(json, status >= 400 ? status : 502);
  if (!Array.isArray(json.choices)) throw malformedResponse(PROVIDER, 'response has no choices array');
  // No answer at all: as Gemini's response with no candidate, the provider's failure (another endpoint is tried).
  if (!json.choices.some(isRecord)) throw malformedResponse(PROVIDER, 'response has no choice');
  const response: ChatResponse = {
    id: meta.id ?? asString(json.id) ?? '',
    object: 'chat.completion',
    created: meta.created ?? asNumber(json.created) ?? 0,
    model: meta.model ?? asString(json.model) ?? '',
    choices: json.choices.filter(isRecord).map((choice, i) => {
      const m = asRecord(choice.message);
      const message: ResponseMessage = { role: 'assistant', content: messageText(m.content) };
      const toolCalls = parseToolCalls(m.tool_calls);
      if (toolCalls) message.tool_calls = toolCalls;
      const reasoning = asString(m.reasoning) ?? asString(m.reasoning_content);
      if (reasoning !== undefined) message.reasoning = reasoning;
      const details = parseReasoningDetails(m.reasoning_details);
      if (details) message.reasoning_details = details;
      if (typeof m.refusal === 'string') message.refusal = m.refusal;
      const native = asString(choice.native_finish_reason) ?? asString(choice.finish_reason);
      // OpenRouter's provider error mid-generation: finish_reason "error", the error on the choice, partial content.
      const error = isRecord(choice.error) ? errorFromBody({ error: choice.error }, 502) : undefined;
      return {
        index: asNumber(choice.index) ?? i,
        message,
        finish_reason: mapFinishReason(asString(choice.finish_reason)),
        native_finish_reason: native ?? null,
        ...(isRecord(choice.logprobs) && { logprobs: choice.logprobs }),
        ...(error !== undefined && { error }),
      };
    }),
  };
  const usage = parseUsage(json.usage);
  if (usage) response.usage = usage;
  if (typeof json.system_fingerprint === 'string') response.system_fingerprint = json.system_fingerprint;
  return response;
}
