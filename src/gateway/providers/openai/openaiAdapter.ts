/**
 * OpenAI chat completions (and every OpenAI-compatible server: Groq, Together, vLLM, Ollama, OpenRouter …). The
 * canonical shape is this protocol, so the mapping is mostly a filter: known fields out, upstream quirks in
 * (`reasoning_content`, DeepSeek cache counters, OpenRouter's numeric error codes).
 */
import type {
  ChatChunk,
  ChatMessage,
  ChatRequest,
  ChatResponse,
  ChunkChoice,
  ChunkDelta,
  ContentPart,
  FinishReason,
  JsonObject,
  ProviderError,
  ReasoningDetail,
  ResponseMessage,
  ToolCall,
  ToolCallDelta,
  Usage,
} from '../../types.js';
import type { ProviderAdapter, ResponseMeta, StreamParser, UpstreamRequest, UpstreamTarget } from '../adapter.js';
import {
  asArray,
  asNumber,
  asRecord,
  asString,
  isRecord,
  joinUrl,
  makeUsage,
  malformedResponse,
  parseJson,
  parseRetryAfterMs,
  providerError,
  type ErrorFacts,
} from '../common.js';

const PROVIDER = 'openai';

export const openaiSupportedParameters = [
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'structured_outputs',
  'reasoning',
  // Not OpenAI's, but passed through for compatible servers (vLLM, Together, …) that accept them.
  'top_k',
  'min_p',
  'repetition_penalty',
] as const;

const PASSTHROUGH = [
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'repetition_penalty',
  'presence_penalty',
  'frequency_penalty',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'seed',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'n',
  'response_format',
  'user',
] as const satisfies readonly (keyof ChatRequest)[];

function buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest {
  const body: JsonObject = { model: target.upstreamModel, messages: req.messages.map(toUpstreamMessage) };
  for (const key of PASSTHROUGH) if (req[key] !== undefined) body[key] = req[key];
  const effort = req.reasoning?.effort;
  if (effort !== undefined) body.reasoning_effort = effort === 'max' ? 'xhigh' : effort;
  if (req.stream) {
    body.stream = true;
    // Always ask for the usage chunk: billing needs it even when the caller did not ask.
    body.stream_options = { ...req.stream_options, include_usage: true };
  }
  return {
    url: joinUrl(target.baseUrl, '/chat/completions'),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      ...(target.apiKey !== undefined && { authorization: `Bearer ${target.apiKey}` }),
      ...target.headers,
    },
    body: JSON.stringify(body),
  };
}

/** Drops gateway-only fields (reasoning echoes, cache_control) that strict OpenAI validation rejects. */
function toUpstreamMessage(message: ChatMessage): JsonObject {
  switch (message.role) {
    case 'assistant': {
      const out: JsonObject = { role: 'assistant', content: message.content == null ? null : stripParts(message.content) };
      if (message.name !== undefined) out.name = message.name;
      if (message.tool_calls?.length) out.tool_calls = message.tool_calls;
      if (message.refusal != null) out.refusal = message.refusal;
      return out;
    }
    case 'tool':
      return { role: 'tool', tool_call_id: message.tool_call_id, content: stripParts(message.content) };
    default: {
      const out: JsonObject = { role: message.role, content: stripParts(message.content) };
      if (message.name !== undefined) out.name = message.name;
      return out;
    }
  }
}

function stripParts(content: string | ContentPart[]): string | JsonObject[] {
  if (typeof content === 'string') return content;
  return content.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : { ...part }));
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

export function mapOpenAIFinishReason(reason: string | undefined): FinishReason | null {
  switch (reason) {
    case undefined:
      return null;
    case 'stop':
    case 'length':
    case 'tool_calls':
    case 'content_filter':
    case 'error':
      return reason;
    case 'function_call':
      return 'tool_calls';
    default:
      return 'stop';
  }
}

function parseUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const prompt = asNumber(value.prompt_tokens);
  const completion = asNumber(value.completion_tokens);
  if (prompt === undefined || completion === undefined) return undefined;
  const promptDetails = asRecord(value.prompt_tokens_details);
  const completionDetails = asRecord(value.completion_tokens_details);
  const cached = asNumber(promptDetails.cached_tokens) ?? asNumber(value.prompt_cache_hit_tokens);
  const cacheWrite = asNumber(promptDetails.cache_write_tokens);
  const reasoning = asNumber(completionDetails.reasoning_tokens);
  return makeUsage({
    prompt,
    completion,
    total: asNumber(value.total_tokens),
    ...(cached !== undefined && { cached }),
    ...(cacheWrite !== undefined && { cacheWrite }),
    ...(reasoning !== undefined && { reasoning }),
  });
}

function parseReasoningDetails(value: unknown): ReasoningDetail[] | undefined {
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

function parseResponse(status: number, json: unknown, meta: ResponseMeta = {}): ChatResponse {
  if (!isRecord(json)) throw malformedResponse(PROVIDER, `response body is not a JSON object (HTTP ${status})`);
  if (json.error != null) throw errorFromBody(json, status >= 400 ? status : 502);
  if (!Array.isArray(json.choices)) throw malformedResponse(PROVIDER, 'response has no choices array');
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
      return {
        index: asNumber(choice.index) ?? i,
        message,
        finish_reason: mapOpenAIFinishReason(asString(choice.finish_reason)),
        native_finish_reason: native ?? null,
      };
    }),
  };
  const usage = parseUsage(json.usage);
  if (usage) response.usage = usage;
  if (typeof json.system_fingerprint === 'string') response.system_fingerprint = json.system_fingerprint;
  return response;
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming

function parseDelta(value: unknown): ChunkDelta {
  const d = asRecord(value);
  const delta: ChunkDelta = {};
  if (d.role === 'assistant') delta.role = 'assistant';
  if (typeof d.content === 'string') delta.content = d.content;
  const reasoning = asString(d.reasoning) ?? asString(d.reasoning_content);
  if (reasoning !== undefined) delta.reasoning = reasoning;
  const details = parseReasoningDetails(d.reasoning_details);
  if (details) delta.reasoning_details = details;
  if (typeof d.refusal === 'string') delta.refusal = d.refusal;
  const toolCalls: ToolCallDelta[] = [];
  asArray(d.tool_calls).forEach((item, i) => {
    if (!isRecord(item)) return;
    const fn = asRecord(item.function);
    const call: ToolCallDelta = { index: asNumber(item.index) ?? i };
    const id = asString(item.id);
    if (id !== undefined) call.id = id;
    if (item.type === 'function') call.type = 'function';
    const name = asString(fn.name);
    const args = asString(fn.arguments);
    if (name !== undefined || args !== undefined) {
      call.function = { ...(name !== undefined && { name }), ...(args !== undefined && { arguments: args }) };
    }
    toolCalls.push(call);
  });
  if (toolCalls.length > 0) delta.tool_calls = toolCalls;
  return delta;
}

function createStreamParser(meta: ResponseMeta = {}): StreamParser {
  let usage: Usage | undefined;
  let finishReason: FinishReason | undefined;
  let nativeFinishReason: string | undefined;
  let done = false;
  return {
    push(message) {
      if (message.data === '[DONE]') {
        done = true;
        return [];
      }
      const json = parseJson(message.data);
      if (!isRecord(json)) throw malformedResponse(PROVIDER, `invalid stream chunk: ${message.data.slice(0, 200)}`);
      if (json.error != null) throw errorFromBody(json, 500);
      const chunkUsage = parseUsage(json.usage);
      if (chunkUsage) usage = chunkUsage;
      const choices: ChunkChoice[] = [];
      for (const [i, raw] of asArray(json.choices).entries()) {
        if (!isRecord(raw)) continue;
        const finish = mapOpenAIFinishReason(asString(raw.finish_reason));
        const native = asString(raw.native_finish_reason) ?? asString(raw.finish_reason);
        if (finish) {
          finishReason = finish;
          nativeFinishReason = native;
        }
        choices.push({
          index: asNumber(raw.index) ?? i,
          delta: parseDelta(raw.delta),
          finish_reason: finish,
          ...(native !== undefined && { native_finish_reason: native }),
        });
      }
      if (choices.length === 0) return [];
      const chunk: ChatChunk = {
        id: meta.id ?? asString(json.id) ?? '',
        object: 'chat.completion.chunk',
        created: meta.created ?? asNumber(json.created) ?? 0,
        model: meta.model ?? asString(json.model) ?? '',
        choices,
      };
      return [chunk];
    },
    finish() {
      return {
        done,
        ...(usage && { usage }),
        ...(finishReason && { finishReason }),
        ...(nativeFinishReason !== undefined && { nativeFinishReason }),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

const TYPE_STATUS: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  rate_limit_exceeded: 429,
  requests: 429,
  tokens: 429,
  insufficient_quota: 429,
  server_error: 500,
  overloaded_error: 503,
};

/**
 * Reads OpenAI `{error:{message,type,param,code}}`, OpenRouter `{error:{code:number,message,metadata}}` and the looser
 * shapes of compatible servers (`{error:"…"}`, `{message}`, `{detail}`). `fallbackStatus` applies when the body
 * itself carries no usable status (in-stream errors, errors inside a 200).
 */
function errorFacts(body: unknown, status: number): ErrorFacts {
  const root = asRecord(body);
  const err = root.error;
  const facts: ErrorFacts = { provider: PROVIDER, status };
  if (typeof err === 'string') {
    facts.upstreamMessage = err;
    return facts;
  }
  const e = isRecord(err) ? err : root;
  const message = asString(e.message) ?? asString(e.detail);
  if (message !== undefined) facts.upstreamMessage = message;
  const metadata = asRecord(e.metadata);
  const code = asString(e.code) ?? asString(metadata.error_type) ?? asString(e.type);
  if (code !== undefined) facts.upstreamCode = code;
  if (code === 'context_length_exceeded') facts.code = 'context_length';
  if (code === 'content_filter' || code === 'content_policy_violation') facts.code = 'content_filter';
  return facts;
}

function errorFromBody(body: unknown, fallbackStatus: number): ProviderError {
  const err = asRecord(asRecord(body).error);
  const numeric = asNumber(err.code);
  const typed = TYPE_STATUS[asString(err.code) ?? ''] ?? TYPE_STATUS[asString(err.type) ?? ''];
  const status = numeric !== undefined && numeric >= 400 && numeric < 600 ? numeric : (typed ?? fallbackStatus);
  return providerError(errorFacts(body, status));
}

export const openaiAdapter: ProviderAdapter = {
  protocol: 'openai',
  supportedParameters: openaiSupportedParameters,
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError(status, headers, bodyText, nowMs) {
    const body = parseJson(bodyText);
    const facts: ErrorFacts = body === undefined ? { provider: PROVIDER, status } : errorFacts(body, status);
    if (body === undefined && bodyText.trim() !== '') facts.upstreamMessage = bodyText.trim().slice(0, 500);
    const retryAfterMs = parseRetryAfterMs(headers, nowMs);
    return providerError({ ...facts, ...(retryAfterMs !== undefined && { retryAfterMs }) });
  },
};
