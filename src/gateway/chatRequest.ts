/**
 * Turn an OpenRouter chat/completions body (already JSON-parsed once) into the canonical ChatRequest plus the
 * routing inputs. Hand-written checks rather than a schema library: this runs on every request, and the messages
 * say exactly which field is wrong.
 */
import { createHash } from 'node:crypto';
import { usdPerMillionToNanoPerToken, usdToNano } from '../modules/ledger/money.js';
import { invalidRequest } from './gatewayErrors.js';
import type { ChatMessage, ChatRequest, ContentPart, FunctionTool, ResponseFormat } from './types.js';

export const QUANTIZATIONS = ['int4', 'int8', 'fp4', 'fp6', 'fp8', 'fp16', 'bf16', 'fp32', 'unknown'] as const;
export type SortBy = 'price' | 'throughput' | 'latency';

/** OpenRouter's `provider` object (the fields Switchyard acts on; the rest are accepted and ignored). */
export interface ProviderPreferences {
  readonly order?: readonly string[];
  readonly only?: readonly string[];
  readonly ignore?: readonly string[];
  readonly allowFallbacks: boolean;
  readonly requireParameters: boolean;
  readonly sort?: { readonly by: SortBy; readonly partition: 'model' | 'none' };
  /** Nano-dollars per token (prompt, completion) and per request; converted from USD per million tokens. */
  readonly maxPrice?: { readonly prompt?: number; readonly completion?: number; readonly request?: number };
  readonly quantizations?: readonly string[];
}

export interface ParsedChat {
  readonly request: ChatRequest;
  /** Requested models in priority order (`model`, then `models`), variants included. */
  readonly models: readonly string[];
  readonly provider: ProviderPreferences | null;
  readonly stream: boolean;
  /** Estimated prompt tokens (ceil(chars / 4) plus per-message and per-image overheads). */
  readonly promptTokens: number;
  /** OpenRouter `supported_parameters` names the request uses (for `require_parameters`). */
  readonly usedParameters: readonly string[];
  readonly needs: { readonly tools: boolean; readonly vision: boolean; readonly json: boolean };
  /** Text of the last user message (for the auto router's task classification). */
  readonly lastUserText: string;
  /**
   * The conversation, for sticky routing: `session_id` (or the `x-session-id` header), else `prompt_cache_key`,
   * else a hash of the first system message and the first other message, as OpenRouter identifies it. A function:
   * the hash is computed only when sticky routing needs it.
   */
  readonly session: () => string;
}

const MAX_SESSION_ID = 256;

const sessionOf = (body: Record<string, unknown>, header: string | undefined, messages: readonly ChatMessage[]): (() => string) => {
  for (const [value, param] of [
    [body.session_id, 'session_id'],
    [header, 'x-session-id'],
  ] as const) {
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value === '' || value.length > MAX_SESSION_ID) {
      throw invalidRequest(`${param} must be a non-empty string of at most ${MAX_SESSION_ID} characters`, { param });
    }
    return () => `id:${value}`;
  }
  const cacheKey = body.prompt_cache_key;
  if (cacheKey !== undefined && cacheKey !== null) {
    if (typeof cacheKey !== 'string' || cacheKey === '') throw invalidRequest('prompt_cache_key must be a non-empty string', { param: 'prompt_cache_key' });
    return () => `key:${cacheKey}`;
  }
  let hash: string | undefined;
  return () => {
    if (hash === undefined) {
      const system = messages.find((m) => m.role === 'system' || m.role === 'developer');
      const first = messages.find((m) => m.role !== 'system' && m.role !== 'developer');
      hash = `hash:${createHash('sha256').update(JSON.stringify([system?.content ?? null, first?.content ?? null])).digest('base64url')}`;
    }
    return hash;
  };
};

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
const MESSAGE_OVERHEAD_TOKENS = 4;
const IMAGE_TOKENS = 765;
const MAX_MODELS = 10;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const num = (body: Record<string, unknown>, key: string, min: number, max: number, integer = false): number | undefined => {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw invalidRequest(`${key} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`, { param: key });
  }
  return v;
};

const strings = (value: unknown, what: string, max = 100): string[] => {
  if (!Array.isArray(value) || value.length > max || value.some((s) => typeof s !== 'string' || s === '')) {
    throw invalidRequest(`${what} must be a list of at most ${max} non-empty strings`, { param: what });
  }
  return value as string[];
};

const parseContent = (value: unknown, where: string, counts: { chars: number; images: number }): string | ContentPart[] => {
  if (typeof value === 'string') {
    counts.chars += value.length;
    return value;
  }
  if (!Array.isArray(value)) throw invalidRequest(`${where}.content must be a string or a list of content parts`, { param: `${where}.content` });
  return value.map((part, j) => {
    if (!isRecord(part)) throw invalidRequest(`${where}.content[${j}] must be an object`);
    if (part.type === 'text' && typeof part.text === 'string') {
      counts.chars += part.text.length;
      return part as unknown as ContentPart;
    }
    if (part.type === 'image_url' && isRecord(part.image_url) && typeof part.image_url.url === 'string') {
      counts.images += 1;
      return part as unknown as ContentPart;
    }
    throw invalidRequest(`${where}.content[${j}] must be {type:"text", text} or {type:"image_url", image_url:{url}}`, { param: `${where}.content` });
  });
};

const parseMessages = (value: unknown, counts: { chars: number; images: number }): ChatMessage[] => {
  if (!Array.isArray(value) || value.length === 0) throw invalidRequest('messages must be a non-empty list', { param: 'messages' });
  return value.map((raw, i) => {
    const where = `messages[${i}]`;
    if (!isRecord(raw)) throw invalidRequest(`${where} must be an object`, { param: where });
    const role = raw.role;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw invalidRequest(`${where}.role must be one of system, developer, user, assistant, tool (got ${JSON.stringify(role)})`, { param: `${where}.role` });
    }
    if (raw.name !== undefined && typeof raw.name !== 'string') throw invalidRequest(`${where}.name must be a string`);
    counts.chars += MESSAGE_OVERHEAD_TOKENS * 4;
    if (role === 'assistant') {
      const hasTools = Array.isArray(raw.tool_calls) && raw.tool_calls.length > 0;
      if ((raw.content === undefined || raw.content === null) && !hasTools) throw invalidRequest(`${where} (assistant) needs content or tool_calls`);
      if (raw.content !== undefined && raw.content !== null) parseContent(raw.content, where, counts);
      if (hasTools) counts.chars += JSON.stringify(raw.tool_calls).length;
      return raw as unknown as ChatMessage;
    }
    if (role === 'tool' && typeof raw.tool_call_id !== 'string') throw invalidRequest(`${where} (tool) needs a tool_call_id`, { param: `${where}.tool_call_id` });
    parseContent(raw.content, where, counts);
    return raw as unknown as ChatMessage;
  });
};

const parseProvider = (value: unknown): ProviderPreferences | null => {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) throw invalidRequest('provider must be an object', { param: 'provider' });
  const out: { -readonly [K in keyof ProviderPreferences]: ProviderPreferences[K] } = {
    allowFallbacks: true,
    requireParameters: false,
  };
  if (value.order !== undefined) out.order = strings(value.order, 'provider.order');
  if (value.only !== undefined) out.only = strings(value.only, 'provider.only');
  if (value.ignore !== undefined) out.ignore = strings(value.ignore, 'provider.ignore');
  for (const [key, field] of [['allow_fallbacks', 'allowFallbacks'], ['require_parameters', 'requireParameters']] as const) {
    const v = value[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw invalidRequest(`provider.${key} must be a boolean`, { param: `provider.${key}` });
    out[field] = v;
  }
  if (value.sort !== undefined && value.sort !== null) {
    const sort = value.sort;
    const by = isRecord(sort) ? sort.by : sort;
    const partition = isRecord(sort) ? (sort.partition ?? 'model') : 'model';
    if (by !== 'price' && by !== 'throughput' && by !== 'latency') throw invalidRequest('provider.sort must be "price", "throughput" or "latency" (or {by, partition})', { param: 'provider.sort' });
    if (partition !== 'model' && partition !== 'none') throw invalidRequest('provider.sort.partition must be "model" or "none"', { param: 'provider.sort.partition' });
    out.sort = { by, partition };
  }
  if (value.quantizations !== undefined) {
    const list = strings(value.quantizations, 'provider.quantizations');
    const unknown = list.filter((q) => !(QUANTIZATIONS as readonly string[]).includes(q));
    if (unknown.length) throw invalidRequest(`provider.quantizations has unknown values ${unknown.join(', ')} (known: ${QUANTIZATIONS.join(', ')})`, { param: 'provider.quantizations' });
    out.quantizations = list;
  }
  if (value.max_price !== undefined && value.max_price !== null) {
    const mp = value.max_price;
    if (!isRecord(mp)) throw invalidRequest('provider.max_price must be an object such as {"prompt": 1, "completion": 2} (USD per million tokens)', { param: 'provider.max_price' });
    const maxPrice: { prompt?: number; completion?: number; request?: number } = {};
    for (const key of ['prompt', 'completion', 'request'] as const) {
      const raw = mp[key];
      if (raw === undefined || raw === null) continue;
      const param = `provider.max_price.${key}`;
      // Exact, from the number's decimal text (String(0.29) is "0.29"; 0.29 × 1000 in floating point is 289.99...).
      if (!(typeof raw === 'string' || (typeof raw === 'number' && Number.isFinite(raw)))) {
        throw invalidRequest(`${param} must be a non-negative number (USD${key === 'request' ? '' : ' per million tokens'})`, { param });
      }
      try {
        maxPrice[key] = key === 'request' ? usdToNano(String(raw), param) : usdPerMillionToNanoPerToken(String(raw), param);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        throw invalidRequest(`${error.message} (${key === 'request' ? 'USD, in steps of 0.000000001' : 'USD per million tokens, in steps of 0.001'})`, { param });
      }
    }
    out.maxPrice = maxPrice;
  }
  return out;
};

const PARAMETER_FIELDS = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'stop',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'repetition_penalty',
  'min_p',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'response_format',
  'reasoning',
] as const;

/**
 * Parse a chat completions body (`kind: 'chat'`) or a legacy completions body (`kind: 'completion'`, a `prompt`
 * string that becomes one user message).
 */
/** `sessionHeader`: the request's `x-session-id` header, if any (REST). */
export const parseChatBody = (body: unknown, kind: 'chat' | 'completion' = 'chat', sessionHeader?: string): ParsedChat => {
  if (!isRecord(body)) throw invalidRequest('The request body must be a JSON object');
  const models: string[] = [];
  if (body.model !== undefined && body.model !== null) {
    if (typeof body.model !== 'string' || body.model.trim() === '') throw invalidRequest('model must be a non-empty string', { param: 'model' });
    models.push(body.model.trim());
  }
  if (body.models !== undefined && body.models !== null) {
    for (const m of strings(body.models, 'models', MAX_MODELS)) if (!models.includes(m)) models.push(m);
  }
  if (models.length === 0) throw invalidRequest('model is required (or a models list)', { param: 'model' });

  const counts = { chars: 0, images: 0 };
  let messages: ChatMessage[];
  if (kind === 'completion' || (body.messages === undefined && body.prompt !== undefined)) {
    const prompt = Array.isArray(body.prompt) && body.prompt.every((p) => typeof p === 'string') ? body.prompt.join('') : body.prompt;
    if (typeof prompt !== 'string' || prompt === '') throw invalidRequest('prompt must be a non-empty string', { param: 'prompt' });
    counts.chars += prompt.length + MESSAGE_OVERHEAD_TOKENS * 4;
    messages = [{ role: 'user', content: prompt }];
  } else {
    messages = parseMessages(body.messages, counts);
  }

  const request: ChatRequest = { model: models[0]!, messages };
  const maxTokens = num(body, 'max_tokens', 1, 10_000_000, true) ?? num(body, 'max_completion_tokens', 1, 10_000_000, true);
  if (maxTokens !== undefined) request.max_tokens = maxTokens;
  const temperature = num(body, 'temperature', 0, 2);
  if (temperature !== undefined) request.temperature = temperature;
  const topP = num(body, 'top_p', 0, 1);
  if (topP !== undefined) request.top_p = topP;
  const topK = num(body, 'top_k', 0, 1_000_000, true);
  if (topK !== undefined) request.top_k = topK;
  const minP = num(body, 'min_p', 0, 1);
  if (minP !== undefined) request.min_p = minP;
  const repetition = num(body, 'repetition_penalty', 0, 2);
  if (repetition !== undefined) request.repetition_penalty = repetition;
  const frequency = num(body, 'frequency_penalty', -2, 2);
  if (frequency !== undefined) request.frequency_penalty = frequency;
  const presence = num(body, 'presence_penalty', -2, 2);
  if (presence !== undefined) request.presence_penalty = presence;
  const seed = num(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  if (seed !== undefined) request.seed = seed;
  const topLogprobs = num(body, 'top_logprobs', 0, 20, true);
  if (topLogprobs !== undefined) request.top_logprobs = topLogprobs;
  if (body.logprobs !== undefined && body.logprobs !== null) {
    if (typeof body.logprobs !== 'boolean') throw invalidRequest('logprobs must be a boolean', { param: 'logprobs' });
    request.logprobs = body.logprobs;
  }
  if (body.stop !== undefined && body.stop !== null) {
    if (typeof body.stop === 'string') request.stop = body.stop;
    else request.stop = strings(body.stop, 'stop', 4);
  }
  if (body.logit_bias !== undefined && body.logit_bias !== null) {
    if (!isRecord(body.logit_bias)) throw invalidRequest('logit_bias must be an object', { param: 'logit_bias' });
    request.logit_bias = body.logit_bias as Record<string, number>;
  }
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools) || body.tools.some((t) => !isRecord(t) || t.type !== 'function' || !isRecord(t.function) || typeof t.function.name !== 'string')) {
      throw invalidRequest('tools must be a list of {type:"function", function:{name, parameters}}', { param: 'tools' });
    }
    request.tools = body.tools as FunctionTool[];
    counts.chars += JSON.stringify(body.tools).length;
  }
  if (body.tool_choice !== undefined && body.tool_choice !== null) request.tool_choice = body.tool_choice as ChatRequest['tool_choice'];
  if (body.parallel_tool_calls !== undefined && typeof body.parallel_tool_calls === 'boolean') request.parallel_tool_calls = body.parallel_tool_calls;
  if (body.response_format !== undefined && body.response_format !== null) {
    const rf = body.response_format;
    if (!isRecord(rf) || !['text', 'json_object', 'json_schema'].includes(rf.type as string)) {
      throw invalidRequest('response_format.type must be text, json_object or json_schema', { param: 'response_format' });
    }
    request.response_format = rf as unknown as ResponseFormat;
  }
  if (body.reasoning !== undefined && body.reasoning !== null) {
    if (!isRecord(body.reasoning)) throw invalidRequest('reasoning must be an object', { param: 'reasoning' });
    request.reasoning = body.reasoning as ChatRequest['reasoning'];
  }
  if (body.user !== undefined && body.user !== null) {
    if (typeof body.user !== 'string' || body.user.length > 256) throw invalidRequest('user must be a string of at most 256 characters', { param: 'user' });
    request.user = body.user;
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw invalidRequest('n must be 1 (several choices per request are not supported)', { param: 'n' });
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalidRequest('stream must be a boolean', { param: 'stream' });
  const stream = body.stream === true;
  if (stream) request.stream = true;

  const usedParameters: string[] = [];
  for (const field of PARAMETER_FIELDS) if (request[field] !== undefined) usedParameters.push(field);
  if (request.response_format?.type === 'json_schema') usedParameters.push('structured_outputs');

  let lastUserText = '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    lastUserText = typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join(' ');
    break;
  }

  return {
    request,
    models,
    provider: parseProvider(body.provider),
    stream,
    promptTokens: Math.ceil(counts.chars / 4) + counts.images * IMAGE_TOKENS,
    usedParameters,
    needs: { tools: request.tools !== undefined && request.tools.length > 0, vision: counts.images > 0, json: request.response_format !== undefined && request.response_format.type !== 'text' },
    lastUserText,
    session: sessionOf(body, sessionHeader, messages),
  };
};
