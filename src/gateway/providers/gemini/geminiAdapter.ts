/**
 * Google Gemini API (`models/{model}:generateContent`, `:streamGenerateContent?alt=sse`).
 *
 * Mapping notes:
 * - system/developer messages → `systemInstruction`; assistant → role `model`; tool results → `functionResponse`
 *   parts in a user turn (the function name is looked up from the assistant's earlier tool call).
 * - Schemas go out as JSON Schema (`parametersJsonSchema`, `responseJsonSchema`): the older `parameters` /
 *   `responseSchema` fields take an OpenAPI subset that rejects common JSON Schema such as `additionalProperties`.
 * - Gemini has no tool-call ids; ids are derived from the response id so they are stable and unique per turn.
 * - Thought signatures (required when replaying function calls to thinking models) travel in
 *   `reasoning_details` as `reasoning.encrypted` entries keyed by tool-call id, like OpenRouter does.
 * - Usage: `thoughtsTokenCount` is not part of `candidatesTokenCount` but is billed as output, so it is added to
 *   `completion_tokens`; `promptTokenCount` already includes `cachedContentTokenCount`.
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
  ProviderErrorCode,
  ReasoningDetail,
  ResponseMessage,
  ToolCall,
  ToolCallDelta,
  ToolChoice,
  Usage,
} from '../../types.js';
import type { ProviderAdapter, ResponseMeta, StreamParser, UpstreamRequest, UpstreamTarget } from '../adapter.js';
import {
  asArray,
  asNumber,
  asRecord,
  asString,
  contentText,
  guessImageType,
  isRecord,
  joinUrl,
  makeUsage,
  malformedResponse,
  parseDataUrl,
  parseJson,
  parseRetryAfterMs,
  providerError,
  reasoningDisabled,
  toolArguments,
  type ErrorFacts,
} from '../common.js';

const PROVIDER = 'gemini';
const SIGNATURE_FORMAT = 'google-gemini-v1';

export const geminiSupportedParameters = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'stop',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'tools',
  'tool_choice',
  'response_format',
  'structured_outputs',
  'reasoning',
] as const;

// ---------------------------------------------------------------------------------------------------------------
// Request

type Role = 'user' | 'model';
interface Content {
  role: Role;
  parts: JsonObject[];
}

function contentParts(content: MessageContent): JsonObject[] {
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  const parts: JsonObject[] = [];
  for (const part of content) {
    if (part.type === 'text') {
      if (part.text !== '') parts.push({ text: part.text });
      continue;
    }
    const url = part.image_url.url;
    const inline = parseDataUrl(url);
    parts.push(
      inline
        ? { inlineData: { mimeType: inline.mediaType, data: inline.data } }
        : { fileData: { mimeType: guessImageType(url), fileUri: url } },
    );
  }
  return parts;
}

function geminiSignatures(details: ReasoningDetail[] | undefined): ReasoningDetail[] {
  return (details ?? []).filter((d) => d.type === 'reasoning.encrypted' && d.format?.startsWith('google') === true);
}

function modelParts(message: AssistantMessage): JsonObject[] {
  const signatures = geminiSignatures(message.reasoning_details);
  const signatureFor = (id: string | undefined): string | undefined => {
    const detail = signatures.find((d) => d.id === id);
    return detail?.type === 'reasoning.encrypted' ? detail.data : undefined;
  };
  const parts = message.content == null ? [] : contentParts(message.content);
  const turnSignature = signatureFor(undefined);
  const first = parts[0];
  if (turnSignature !== undefined && first) first.thoughtSignature = turnSignature;
  for (const call of message.tool_calls ?? []) {
    const signature = signatureFor(call.id);
    parts.push({
      functionCall: { name: call.function.name, args: toolArguments(PROVIDER, call) },
      ...(signature !== undefined && { thoughtSignature: signature }),
    });
  }
  return parts;
}

function functionResponse(content: MessageContent): JsonObject {
  const text = contentText(content);
  const parsed = parseJson(text);
  // Gemini wants an object; its docs use `output` for a plain result.
  return isRecord(parsed) ? parsed : { output: parsed ?? text };
}

function toContents(req: ChatRequest): { system: JsonObject[]; contents: Content[] } {
  const system: JsonObject[] = [];
  const contents: Content[] = [];
  const toolNames = new Map<string, string>();
  const push = (role: Role, parts: JsonObject[]): void => {
    if (parts.length === 0) return;
    const last = contents[contents.length - 1];
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  for (const message of req.messages) {
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...contentParts(contentText(message.content)));
        break;
      case 'user':
        push('user', contentParts(message.content));
        break;
      case 'assistant':
        for (const call of message.tool_calls ?? []) toolNames.set(call.id, call.function.name);
        push('model', modelParts(message));
        break;
      case 'tool':
        push('user', [
          {
            functionResponse: {
              name: toolNames.get(message.tool_call_id) ?? message.name ?? message.tool_call_id,
              response: functionResponse(message.content),
            },
          },
        ]);
        break;
    }
  }
  return { system, contents };
}

function toolConfig(choice: ToolChoice | undefined): JsonObject | undefined {
  if (choice === undefined) return undefined;
  if (choice === 'auto') return { functionCallingConfig: { mode: 'AUTO' } };
  if (choice === 'required') return { functionCallingConfig: { mode: 'ANY' } };
  if (choice === 'none') return { functionCallingConfig: { mode: 'NONE' } };
  return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.function.name] } };
}

function generationConfig(req: ChatRequest): JsonObject {
  const config: JsonObject = {};
  if (req.temperature !== undefined) config.temperature = req.temperature;
  if (req.top_p !== undefined) config.topP = req.top_p;
  if (req.top_k !== undefined) config.topK = req.top_k;
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  if (maxTokens !== undefined) config.maxOutputTokens = maxTokens;
  if (req.stop !== undefined) config.stopSequences = typeof req.stop === 'string' ? [req.stop] : req.stop;
  if (req.seed !== undefined) config.seed = req.seed;
  if (req.presence_penalty !== undefined) config.presencePenalty = req.presence_penalty;
  if (req.frequency_penalty !== undefined) config.frequencyPenalty = req.frequency_penalty;
  const format = req.response_format;
  if (format?.type === 'json_object' || format?.type === 'json_schema') config.responseMimeType = 'application/json';
  if (format?.type === 'json_schema' && format.json_schema.schema) config.responseJsonSchema = format.json_schema.schema;
  const reasoning = req.reasoning;
  if (reasoningDisabled(reasoning)) {
    config.thinkingConfig = { thinkingBudget: 0 };
  } else if (reasoning) {
    // Without an explicit budget the model's dynamic thinking applies; effort levels have no Gemini 2.5 equivalent.
    config.thinkingConfig = {
      includeThoughts: reasoning.exclude !== true,
      ...(reasoning.max_tokens !== undefined && { thinkingBudget: reasoning.max_tokens }),
    };
  }
  return config;
}

function buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest {
  const { system, contents } = toContents(req);
  const body: JsonObject = { contents };
  if (system.length > 0) body.systemInstruction = { parts: system };
  const config = generationConfig(req);
  if (Object.keys(config).length > 0) body.generationConfig = config;
  if (req.tools?.length) {
    body.tools = [
      {
        functionDeclarations: req.tools.map((tool) => ({
          name: tool.function.name,
          ...(tool.function.description !== undefined && { description: tool.function.description }),
          ...(tool.function.parameters !== undefined && { parametersJsonSchema: tool.function.parameters }),
        })),
      },
    ];
    const config = toolConfig(req.tool_choice);
    if (config) body.toolConfig = config;
  }
  const model = target.upstreamModel.replace(/^models\//, '');
  const method = req.stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
  return {
    url: joinUrl(target.baseUrl, `/models/${model}:${method}`),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      ...(target.apiKey !== undefined && { 'x-goog-api-key': target.apiKey }),
      ...target.headers,
    },
    body: JSON.stringify(body),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Response

const CONTENT_FILTER_REASONS = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);

export function mapGeminiFinishReason(reason: string | undefined, hasToolCalls: boolean): FinishReason | null {
  if (reason === undefined) return null;
  if (reason === 'STOP') return hasToolCalls ? 'tool_calls' : 'stop';
  if (reason === 'MAX_TOKENS') return 'length';
  if (CONTENT_FILTER_REASONS.has(reason)) return 'content_filter';
  if (reason === 'MALFORMED_FUNCTION_CALL' || reason === 'UNEXPECTED_TOOL_CALL') return 'error';
  return 'stop';
}

function parseUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const promptCount = asNumber(value.promptTokenCount);
  if (promptCount === undefined) return undefined;
  const prompt = promptCount + (asNumber(value.toolUsePromptTokenCount) ?? 0);
  const thoughts = asNumber(value.thoughtsTokenCount);
  const completion = (asNumber(value.candidatesTokenCount) ?? 0) + (thoughts ?? 0);
  const cached = asNumber(value.cachedContentTokenCount);
  return makeUsage({
    prompt,
    completion,
    total: asNumber(value.totalTokenCount) ?? prompt + completion,
    ...(cached !== undefined && { cached }),
    ...(thoughts !== undefined && { reasoning: thoughts }),
  });
}

interface PartsDigest {
  text: string;
  reasoning: string;
  hasText: boolean;
  hasReasoning: boolean;
  toolCalls: ToolCall[];
  signatures: ReasoningDetail[];
}

/** `nextCallIndex` numbers tool calls across a whole stream so their ids stay unique. */
function digestParts(parts: unknown[], callId: (index: number) => string, nextCallIndex: number): PartsDigest {
  const digest: PartsDigest = { text: '', reasoning: '', hasText: false, hasReasoning: false, toolCalls: [], signatures: [] };
  for (const raw of parts) {
    if (!isRecord(raw)) continue;
    const signature = asString(raw.thoughtSignature);
    let signatureOwner: string | undefined;
    if (isRecord(raw.functionCall)) {
      const call = raw.functionCall;
      const id = asString(call.id) ?? callId(nextCallIndex + digest.toolCalls.length);
      signatureOwner = id;
      digest.toolCalls.push({
        id,
        type: 'function',
        function: { name: asString(call.name) ?? '', arguments: JSON.stringify(call.args ?? {}) },
      });
    } else if (typeof raw.text === 'string') {
      if (raw.thought === true) {
        digest.reasoning += raw.text;
        digest.hasReasoning = true;
      } else {
        digest.text += raw.text;
        digest.hasText = true;
      }
    }
    if (signature !== undefined) {
      digest.signatures.push({
        type: 'reasoning.encrypted',
        data: signature,
        format: SIGNATURE_FORMAT,
        ...(signatureOwner !== undefined && { id: signatureOwner }),
      });
    }
  }
  return digest;
}

function callIdFactory(responseId: string | undefined): (index: number) => string {
  return (index) => (responseId ? `call_${responseId}_${index}` : `call_${index}`);
}

function createdFrom(value: unknown): number | undefined {
  const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.floor(at / 1000);
}

function firstBody(json: unknown): unknown {
  // Vertex and some proxies wrap error bodies in a one-element array.
  return Array.isArray(json) ? json[0] : json;
}

function parseResponse(status: number, json: unknown, meta: ResponseMeta = {}): ChatResponse {
  const body = firstBody(json);
  if (!isRecord(body)) throw malformedResponse(PROVIDER, `response body is not a JSON object (HTTP ${status})`);
  if (body.error != null) throw providerError(errorFacts(body, status >= 400 ? status : undefined));
  const responseId = asString(body.responseId);
  const candidate = asArray(body.candidates)[0];
  const blockReason = asString(asRecord(body.promptFeedback).blockReason);
  if (!isRecord(candidate) && blockReason === undefined) throw malformedResponse(PROVIDER, 'response has no candidates');

  const c = asRecord(candidate);
  const digest = digestParts(asArray(asRecord(c.content).parts), callIdFactory(meta.id ?? responseId), 0);
  const nativeReason = asString(c.finishReason) ?? blockReason;
  const finish = blockReason !== undefined && !isRecord(candidate) ? 'content_filter' : mapGeminiFinishReason(nativeReason, digest.toolCalls.length > 0);

  const message: ResponseMessage = {
    role: 'assistant',
    content: !digest.hasText && digest.toolCalls.length > 0 ? null : digest.text,
  };
  if (digest.toolCalls.length > 0) message.tool_calls = digest.toolCalls;
  if (digest.hasReasoning) message.reasoning = digest.reasoning;
  if (digest.signatures.length > 0) message.reasoning_details = digest.signatures;
  const usage = parseUsage(body.usageMetadata);
  return {
    id: meta.id ?? responseId ?? '',
    object: 'chat.completion',
    created: meta.created ?? createdFrom(body.createTime) ?? 0,
    model: meta.model ?? asString(body.modelVersion) ?? '',
    choices: [{ index: 0, message, finish_reason: finish, native_finish_reason: nativeReason ?? null }],
    ...(usage && { usage }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming

function createStreamParser(meta: ResponseMeta = {}): StreamParser {
  let id = meta.id;
  let model = meta.model;
  let created = meta.created;
  let roleSent = false;
  let toolCallCount = 0;
  let usage: Usage | undefined;
  let finishReason: FinishReason | undefined;
  let nativeFinishReason: string | undefined;
  let done = false;

  return {
    push(message) {
      const body = parseJson(message.data);
      if (!isRecord(body)) throw malformedResponse(PROVIDER, `invalid stream chunk: ${message.data.slice(0, 200)}`);
      if (body.error != null) throw providerError(errorFacts(body, undefined));
      id ??= asString(body.responseId);
      model ??= asString(body.modelVersion);
      created ??= createdFrom(body.createTime);
      usage = parseUsage(body.usageMetadata) ?? usage;

      const candidate = asRecord(asArray(body.candidates)[0]);
      const digest = digestParts(asArray(asRecord(candidate.content).parts), callIdFactory(id), toolCallCount);
      const delta: ChunkDelta = {};
      if (!roleSent) {
        delta.role = 'assistant';
        roleSent = true;
      }
      if (digest.hasText) delta.content = digest.text;
      if (digest.hasReasoning) delta.reasoning = digest.reasoning;
      if (digest.signatures.length > 0) delta.reasoning_details = digest.signatures;
      if (digest.toolCalls.length > 0) {
        delta.tool_calls = digest.toolCalls.map(
          (call, i): ToolCallDelta => ({ index: toolCallCount + i, id: call.id, type: 'function', function: call.function }),
        );
        toolCallCount += digest.toolCalls.length;
      }

      const blockReason = asString(asRecord(body.promptFeedback).blockReason);
      const native = asString(candidate.finishReason) ?? blockReason;
      let finish: FinishReason | null = null;
      if (native !== undefined) {
        finish = asString(candidate.finishReason) === undefined ? 'content_filter' : mapGeminiFinishReason(native, toolCallCount > 0);
        finishReason = finish ?? undefined;
        nativeFinishReason = native;
        done = true;
      }
      if (Object.keys(delta).length === 0 && finish === null) return [];
      const chunk: ChatChunk = {
        id: id ?? '',
        object: 'chat.completion.chunk',
        created: created ?? 0,
        model: model ?? '',
        choices: [{ index: 0, delta, finish_reason: finish, ...(native !== undefined && { native_finish_reason: native }) }],
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

const STATUS_CODES: Record<string, { status: number; code: ProviderErrorCode }> = {
  INVALID_ARGUMENT: { status: 400, code: 'bad_request' },
  FAILED_PRECONDITION: { status: 400, code: 'bad_request' },
  UNAUTHENTICATED: { status: 401, code: 'auth' },
  PERMISSION_DENIED: { status: 403, code: 'auth' },
  NOT_FOUND: { status: 404, code: 'not_found' },
  RESOURCE_EXHAUSTED: { status: 429, code: 'rate_limited' },
  INTERNAL: { status: 500, code: 'server_error' },
  UNAVAILABLE: { status: 503, code: 'overloaded' },
  DEADLINE_EXCEEDED: { status: 504, code: 'timeout' },
};

/** `{error:{code, message, status, details:[ErrorInfo, RetryInfo, …]}}` (google.rpc.Status). */
function errorFacts(json: unknown, httpStatus: number | undefined): ErrorFacts {
  const err = asRecord(asRecord(firstBody(json)).error);
  const statusName = asString(err.status);
  const known = statusName === undefined ? undefined : STATUS_CODES[statusName];
  const facts: ErrorFacts = { provider: PROVIDER, status: httpStatus ?? asNumber(err.code) ?? known?.status ?? 500 };
  // Over HTTP the status code decides; in-stream there is only the body.
  if (httpStatus === undefined && known) facts.code = known.code;
  const message = asString(err.message);
  if (message !== undefined) facts.upstreamMessage = message;
  let reason: string | undefined;
  for (const detail of asArray(err.details)) {
    if (!isRecord(detail)) continue;
    reason ??= asString(detail.reason);
    const delay = asString(detail.retryDelay);
    const seconds = delay === undefined ? undefined : /^(\d+(?:\.\d+)?)s$/.exec(delay)?.[1];
    if (seconds !== undefined) facts.retryAfterMs = Math.round(Number(seconds) * 1000);
  }
  const upstreamCode = reason ?? statusName;
  if (upstreamCode !== undefined) facts.upstreamCode = upstreamCode;
  // An invalid key is reported as 400 INVALID_ARGUMENT.
  if (reason === 'API_KEY_INVALID') facts.code = 'auth';
  return facts;
}

export const geminiAdapter: ProviderAdapter = {
  protocol: 'gemini',
  supportedParameters: geminiSupportedParameters,
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError(status, headers, bodyText, nowMs) {
    const body = parseJson(bodyText);
    const facts = errorFacts(body, status);
    if (body === undefined && bodyText.trim() !== '') facts.upstreamMessage = bodyText.trim().slice(0, 500);
    const retryAfterMs = parseRetryAfterMs(headers, nowMs) ?? facts.retryAfterMs;
    return providerError({ ...facts, ...(retryAfterMs !== undefined && { retryAfterMs }) });
  },
};
