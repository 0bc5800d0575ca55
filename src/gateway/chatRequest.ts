/**
 * Turn an OpenRouter chat/completions body (already JSON-parsed once) into the canonical ChatRequest plus the
 * routing inputs. The body is validated by the zod schemas in `chatRequest.schema.ts`; the first issue becomes a
 * 400 naming the field (`metadata.param`). No hand-written fast path: zod costs 1–30 µs more per parse than the
 * hand-written parser did (bench/README.md ## Chat request parse), under 5% of a request's 500–1,400 µs of CPU.
 */
import { PARAMETER_FIELDS } from './parameterNames.js';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { invalidRequest } from './gatewayErrors.js';
import { type AutoRouterPlugin, ChatBody, CompletionBody, fallbackMessage, type CommonBody, MAX_SESSION_ID, MODEL_REQUIRED, pathText, Prompt, Provider } from './chatRequest.schema.js';
import type { PromptMedia } from '../modules/generations/generation.events.js';
import type { ChatMessage, ChatRequest, MessageContent } from './types.js';

export { QUANTIZATIONS } from './chatRequest.schema.js';
export type SortBy = 'price' | 'throughput' | 'latency';

/** Cutoffs per percentile of an endpoint's last 5 minutes (only those the request names). */
export type Cutoffs = Readonly<Partial<Record<'p50' | 'p75' | 'p90' | 'p99', number>>>;

/** OpenRouter's `provider` object, checked and in Switchyard's units. */
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
  /** `data_collection: "deny"`: only providers an admin stated do not collect data (no_collection or zero_retention). */
  readonly denyDataCollection?: true;
  /** `zdr: true`: only providers an admin stated keep nothing (zero_retention). */
  readonly zdr?: true;
  /**
   * `preferred_min_throughput` (tokens per second) and `preferred_max_latency` (converted from seconds to ms):
   * endpoints whose last 5 minutes miss a cutoff go after those that do not, across the requested models.
   */
  readonly minThroughput?: Cutoffs;
  readonly maxLatencyMs?: Cutoffs;
}

export interface ParsedChat {
  readonly request: ChatRequest;
  /** Requested models in priority order (`model`, then `models`), variants included. */
  readonly models: readonly string[];
  readonly provider: ProviderPreferences | null;
  readonly stream: boolean;
  /** Estimated prompt tokens (ceil(chars / 4) plus per-message and per-image overheads). */
  readonly promptTokens: number;
  /**
   * The most prompt tokens an upstream can count: one per UTF-8 byte of the text (every tokenizer in use encodes a byte
   * in at most one token), plus the same per-message and media overheads, and a few for the reply's priming. The
   * reservation covers this, so an honest bill is never capped below what the upstream reports: the estimate
   * (chars / 4) was a quarter of a Chinese prompt's count, and the charge was cut to the reservation.
   */
  readonly maxPromptTokens: number;
  /** OpenRouter `supported_parameters` names the request uses (for `require_parameters`). */
  readonly usedParameters: readonly string[];
  readonly needs: { readonly tools: boolean; readonly vision: boolean; readonly json: boolean; readonly files: boolean; readonly audio: boolean };
  /** The media parts of the messages: images (`image_url`), files (`file`) and audio (`input_audio`). */
  readonly media: PromptMedia;
  /** Text of the last user message (for the auto router's task classification). */
  readonly lastUserText: string;
  /** The auto-router plugin's limits on what switchyard/auto may pick (null: none sent). */
  readonly autoRouter: AutoRouterPlugin | null;
  /** The response-healing plugin: a whole answer to a request for JSON that does not parse is repaired (responseHealing.ts). */
  readonly responseHealing: boolean;
  /**
   * Context compression (the `context-compression` plugin, or legacy `transforms: ["middle-out"]`): true or false as
   * asked, null when the request does not say (then on for endpoints of at most 8,192 tokens: contextCompression.ts).
   */
  readonly contextCompression: boolean | null;
  /** `debug.echo_upstream_body` on a streamed request: its first chunks carry the body sent to each provider tried. */
  readonly echoUpstreamBody: boolean;
  /**
   * The conversation, for sticky routing: `session_id` (or the `x-session-id` header), else `prompt_cache_key`,
   * else a hash of the first system message and the first other message, as OpenRouter identifies it. A function:
   * the hash is computed only when sticky routing needs it.
   */
  readonly session: () => string;
  /** The conversation's id as the client sent it (`session_id`, else `x-session-id`), or null: what the generation records, to group a conversation's calls by. */
  readonly sessionId: string | null;
}

/** Where the field clients see differs from the issue's path (as the hand-written parser named them). */
const PARAM_OF: Readonly<Record<string, string>> = { 'response_format.type': 'response_format', 'provider.sort.by': 'provider.sort' };

/** A list is named as a whole (`tools`, `provider.order`), a message with its field (`messages[2].role`). */
const paramOf = (path: readonly PropertyKey[]): string => {
  const cut = path.findIndex((key, i) => typeof key === 'number' && !(i === 1 && path[0] === 'messages'));
  const text = pathText(cut === -1 ? path : path.slice(0, cut));
  return PARAM_OF[text] ?? text;
};

/** The first issue, as OpenRouter's 400 (the body itself has no param; an unknown field of a strict object is its own). */
const refuse = (error: z.ZodError, under: readonly PropertyKey[] = []): never => {
  const issue = error.issues[0];
  const path = [...under, ...(issue?.path ?? []), ...(issue?.code === 'unrecognized_keys' ? [String(issue.keys[0]).slice(0, 64)] : [])];
  throw invalidRequest(issue?.message ?? 'The request body is invalid', path.length > 0 ? { param: paramOf(path) } : {});
};
const PARSE_OPTIONS = { error: fallbackMessage };

const sessionOf = (
  body: { readonly session_id?: string | null; readonly prompt_cache_key?: string | null },
  header: string | undefined,
  messages: readonly ChatMessage[],
): (() => string) => {
  const sessionId = body.session_id ?? header;
  if (sessionId !== undefined) {
    if (sessionId === '' || sessionId.length > MAX_SESSION_ID) {
      throw invalidRequest(`x-session-id must be a non-empty string of at most ${MAX_SESSION_ID} characters`, { param: 'x-session-id' });
    }
    return () => `id:${sessionId}`;
  }
  const cacheKey = body.prompt_cache_key;
  if (cacheKey != null) return () => `key:${cacheKey}`;
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

const MESSAGE_OVERHEAD_TOKENS = 4;
const IMAGE_TOKENS = 765;
/** A document or a clip is estimated, not measured (its base64 length says little); the provider's usage is billed. */
const FILE_TOKENS = 1_500;
const AUDIO_TOKENS = 1_000;

const PROVIDER_FIELDS: ReadonlySet<string> = new Set(Object.keys(Provider.shape));

/**
 * The request's `provider` object as sent, for the generation's record: its known fields only (they passed the
 * checks above, which refuse unknown ones; kept as a guard, so a caller can never make the record carry whatever it
 * likes).
 */
export const providerAsSent = (raw: unknown): Record<string, unknown> | null => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const known: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) if (PROVIDER_FIELDS.has(key)) known[key] = value;
  return known;
};

export const providerOf = (provider: CommonBody['provider']): ProviderPreferences | null => {
  if (provider == null) return null;
  const maxPrice = provider.max_price;
  return {
    ...(provider.order && { order: provider.order }),
    ...(provider.only && { only: provider.only }),
    ...(provider.ignore && { ignore: provider.ignore }),
    allowFallbacks: provider.allow_fallbacks ?? true,
    requireParameters: provider.require_parameters ?? false,
    ...(provider.sort && { sort: provider.sort }),
    ...(provider.quantizations && { quantizations: provider.quantizations }),
    ...(provider.data_collection === 'deny' && { denyDataCollection: true }),
    ...(provider.zdr === true && { zdr: true }),
    ...(provider.preferred_min_throughput && { minThroughput: provider.preferred_min_throughput }),
    ...(provider.preferred_max_latency && { maxLatencyMs: Object.fromEntries(Object.entries(provider.preferred_max_latency).map(([p, seconds]) => [p, seconds * 1000])) }),
    ...(maxPrice && {
      maxPrice: {
        ...(maxPrice.prompt != null && { prompt: maxPrice.prompt }),
        ...(maxPrice.completion != null && { completion: maxPrice.completion }),
        ...(maxPrice.request != null && { request: maxPrice.request }),
      },
    }),
  };
};

/** `bytes`: the UTF-8 bytes of the same text, with the per-message overheads in tokens (maxPromptTokens). */
type Counts = { chars: number; bytes: number; images: number; files: number; audio: number };

/** Text the prompt carries, counted for both the estimate and the bound. */
const countText = (text: string, counts: Counts): void => {
  counts.chars += text.length;
  counts.bytes += Buffer.byteLength(text);
};

/** A message's own tokens (role, separators): in the estimate as characters, in the bound as tokens. */
const countMessage = (counts: Counts): void => {
  counts.chars += MESSAGE_OVERHEAD_TOKENS * 4;
  counts.bytes += MESSAGE_OVERHEAD_TOKENS;
};

/** Tokens a chat template adds around the messages for the reply (OpenAI's priming is 3). */
const REPLY_PRIMING_TOKENS = 8;

const asPrompt = (prompt: string, counts: Counts): ChatMessage[] => {
  countMessage(counts);
  countText(prompt, counts);
  return [{ role: 'user', content: prompt }];
};

const put = <K extends keyof ChatRequest>(request: ChatRequest, key: K, value: ChatRequest[K] | null): void => {
  if (value != null) request[key] = value;
};

/**
 * The answer's token limit: `max_completion_tokens` (OpenAI's name) or `max_tokens` (its deprecated alias, still
 * OpenRouter's). Both sent and different is a 400: neither silently wins.
 */
const maxTokensOf = (body: CommonBody): number | null | undefined => {
  const { max_tokens: alias, max_completion_tokens: limit } = body;
  if (alias != null && limit != null && alias !== limit) {
    throw invalidRequest(
      `max_tokens (${alias}) and max_completion_tokens (${limit}) differ: max_tokens is the deprecated alias of max_completion_tokens; send one of them, or the same value in both`,
      { param: 'max_tokens' },
    );
  }
  return limit ?? alias;
};

/** Request headers that are part of the request (REST): as sent, checked by parseChatBody. */
export interface ChatHeaders {
  /** `x-session-id` (sticky routing). */
  readonly session?: string;
  /**
   * Anthropic beta flags, comma-separated, by the header that carried them (`x-anthropic-beta`; on the Messages API
   * also Anthropic's own `anthropic-beta`): passed to Anthropic upstreams as `anthropic-beta`.
   */
  readonly anthropicBeta?: readonly { readonly header: string; readonly value: string }[];
}

const MAX_BETAS = 20;
const BETA = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const betasShape = (header: string) =>
  `${header} must be a comma-separated list of at most ${MAX_BETAS} beta names such as "interleaved-thinking-2025-05-14" (letters, digits, ".", "_", "-"; each at most 100 characters)`;

/** The headers' flags, each once; a value that is not such a list is the caller's 400 naming its header (it goes into an upstream header). */
const anthropicBetasOf = (sent: ChatHeaders['anthropicBeta']): string[] | undefined => {
  if (sent === undefined) return undefined;
  const betas = new Set<string>();
  for (const { header, value } of sent) {
    for (const beta of value.split(',').map((b) => b.trim())) {
      if (beta === '') continue;
      betas.add(beta);
      if (betas.size > MAX_BETAS || !BETA.test(beta)) throw invalidRequest(betasShape(header), { param: header });
    }
  }
  return betas.size > 0 ? [...betas] : undefined;
};

/**
 * Parse a chat completions body (`kind: 'chat'`) or a legacy completions body (`kind: 'completion'`, a `prompt`
 * string that becomes one user message), with the request headers that belong to it (REST).
 */
export const parseChatBody = (raw: unknown, kind: 'chat' | 'completion' = 'chat', headers: ChatHeaders = {}): ParsedChat => {
  const counts: Counts = { chars: 0, bytes: 0, images: 0, files: 0, audio: 0 };
  let body: CommonBody;
  let messages: ChatMessage[];
  if (kind === 'completion') {
    const parsed = CompletionBody.safeParse(raw, PARSE_OPTIONS);
    if (!parsed.success) return refuse(parsed.error);
    body = parsed.data;
    messages = asPrompt(parsed.data.prompt, counts);
  } else {
    const parsed = ChatBody.safeParse(raw, PARSE_OPTIONS);
    if (!parsed.success) return refuse(parsed.error);
    body = parsed.data;
    if (parsed.data.messages !== undefined) {
      messages = parsed.data.messages;
      for (const m of messages) {
        countMessage(counts);
        if (m.content != null) countContent(m.content, counts);
        if (m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls.length > 0) countText(JSON.stringify(m.tool_calls), counts);
      }
    } else {
      // The schema asked for messages or a prompt.
      const prompt = Prompt.safeParse(parsed.data.prompt, PARSE_OPTIONS);
      if (!prompt.success) return refuse(prompt.error, ['prompt']);
      messages = asPrompt(prompt.data, counts);
    }
  }

  const models: string[] = body.model ? [body.model] : [];
  for (const m of body.models ?? []) if (!models.includes(m)) models.push(m);
  const [model] = models;
  if (model === undefined) throw invalidRequest(MODEL_REQUIRED, { param: 'model' });

  const request: ChatRequest = { model, messages };
  put(request, 'max_tokens', maxTokensOf(body));
  put(request, 'temperature', body.temperature);
  put(request, 'top_p', body.top_p);
  put(request, 'top_k', body.top_k);
  put(request, 'min_p', body.min_p);
  put(request, 'top_a', body.top_a);
  put(request, 'repetition_penalty', body.repetition_penalty);
  put(request, 'frequency_penalty', body.frequency_penalty);
  put(request, 'presence_penalty', body.presence_penalty);
  put(request, 'seed', body.seed);
  put(request, 'top_logprobs', body.top_logprobs);
  put(request, 'logprobs', body.logprobs);
  put(request, 'stop', body.stop);
  put(request, 'logit_bias', body.logit_bias);
  put(request, 'prediction', body.prediction);
  put(request, 'tools', body.tools);
  put(request, 'tool_choice', body.tool_choice);
  put(request, 'parallel_tool_calls', body.parallel_tool_calls);
  put(request, 'response_format', body.response_format);
  // `reasoning_effort` is an alias: `reasoning.effort`, when both are sent, wins.
  let reasoning = body.reasoning_effort != null ? { effort: body.reasoning_effort, ...body.reasoning } : body.reasoning;
  // The legacy `include_reasoning: false` is `reasoning.exclude` (which, when sent, wins); `true` turns reasoning on,
  // as `reasoning.enabled: true` (which, when `enabled` is sent, wins).
  if (body.include_reasoning === false && reasoning?.exclude === undefined) reasoning = { ...reasoning, exclude: true };
  if (body.include_reasoning === true && reasoning?.enabled === undefined) reasoning = { ...reasoning, enabled: true };
  put(request, 'reasoning', reasoning);
  put(request, 'user', body.user);
  put(request, 'prompt_cache_key', body.prompt_cache_key);
  put(request, 'cache_control', body.cache_control);
  put(request, 'anthropic_beta', anthropicBetasOf(headers.anthropicBeta));
  const stream = body.stream === true;
  if (stream) request.stream = true;
  if (request.tools !== undefined) {
    // Tool schemas are passed on unchecked: one nested past what JSON.stringify can walk is the caller's 400, not a 500.
    try {
      countText(JSON.stringify(request.tools), counts);
    } catch {
      throw invalidRequest('tools are nested too deeply', { param: 'tools' });
    }
  }

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
    provider: providerOf(body.provider),
    stream,
    promptTokens: Math.ceil(counts.chars / 4) + mediaTokens(counts),
    maxPromptTokens: counts.bytes + REPLY_PRIMING_TOKENS + mediaTokens(counts),
    usedParameters,
    needs: {
      tools: request.tools !== undefined && request.tools.length > 0,
      vision: counts.images > 0,
      json: request.response_format !== undefined && request.response_format.type !== 'text',
      files: counts.files > 0,
      audio: counts.audio > 0,
    },
    media: { images: counts.images, files: counts.files, audio: counts.audio },
    lastUserText,
    autoRouter: body.plugins?.autoRouter ?? null,
    responseHealing: body.plugins?.responseHealing ?? false,
    contextCompression: body.plugins?.contextCompression ?? (body.transforms ? body.transforms.length > 0 : null),
    echoUpstreamBody: stream && body.debug?.echo_upstream_body === true,
    session: sessionOf(body, headers.session, messages),
    sessionId: body.session_id ?? headers.session ?? null,
  };
};

const messageCounts = (m: ChatMessage): Counts => {
  const counts: Counts = { chars: 0, bytes: 0, images: 0, files: 0, audio: 0 };
  countMessage(counts);
  if (m.content != null) countContent(m.content, counts);
  if (m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls.length > 0) countText(JSON.stringify(m.tool_calls), counts);
  return counts;
};

/** One message's share of `promptTokens`, estimated the same way (context compression weighs messages with it). */
export const messageTokens = (m: ChatMessage): number => {
  const counts = messageCounts(m);
  return Math.ceil(counts.chars / 4) + mediaTokens(counts);
};

/** One message's share of `maxPromptTokens` (what a compressed conversation's reservation counts). */
export const messageMaxTokens = (m: ChatMessage): number => {
  const counts = messageCounts(m);
  return counts.bytes + mediaTokens(counts);
};

const mediaTokens = (counts: Counts): number => counts.images * IMAGE_TOKENS + counts.files * FILE_TOKENS + counts.audio * AUDIO_TOKENS;

const countContent = (content: MessageContent, counts: Counts): void => {
  if (typeof content === 'string') {
    countText(content, counts);
    return;
  }
  for (const part of content) {
    switch (part.type) {
      case 'text':
        countText(part.text, counts);
        break;
      case 'image_url':
        counts.images += 1;
        break;
      case 'file':
        counts.files += 1;
        break;
      case 'input_audio':
        counts.audio += 1;
        break;
      default: {
        const _never: never = part;
      }
    }
  }
};
