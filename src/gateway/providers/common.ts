/** Small pure helpers shared by the protocol adapters: safe reads of unknown JSON, usage, content. */
import { ProviderError, type JsonObject, type MessageContent, type ReasoningConfig, type ReasoningEffort, type ToolCall, type Usage } from '../types.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../objects.js';

// ---------------------------------------------------------------------------------------------------------------
// Reading unknown JSON without `any`

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asRecord(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function joinUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}${path}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Errors an adapter raises itself (HTTP error responses: httpErrors.ts)

export function malformedResponse(provider: string, message: string, cause?: unknown): ProviderError {
  return new ProviderError({
    code: 'malformed_response',
    status: 502,
    retryable: true,
    message: `${provider}: ${message}`,
    provider,
    cause,
  });
}

/** An answer Switchyard could not read, `reason` in its own words (no upstream text): the client is told it. */
export function unreadableAnswer(provider: string, reason: string, cause?: unknown): ProviderError {
  return new ProviderError({ code: 'malformed_response', status: 502, retryable: true, message: `${provider}: ${reason}`, detail: reason, provider, cause });
}

/** The adapter refusing what the client sent, before anything is sent: a 400 with the adapter's words. */
export function badRequest(provider: string, message: string): ProviderError {
  return new ProviderError({ code: 'bad_request', status: 400, retryable: false, message, detail: message, provider, unsent: true });
}

// ---------------------------------------------------------------------------------------------------------------
// Usage

/** A token count as a usage report may carry it: a non-negative safe integer (the one definition: pricing.ts too). */
export const isTokenCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * The counts of a provider's usage report when it reads as one, else undefined (no report: the gateway estimates the
 * usage, as without one, and never bills a missing, non-numeric or negative count as zero). Every `required` field
 * must be a count; each `optional` one a count or absent (null is absent: Anthropic sends null cache counts). Read
 * before an adapter adds counts together, so no count can cancel a negative one.
 */
export function readCounts<R extends string, O extends string>(
  value: unknown,
  required: readonly R[],
  optional: readonly O[],
): (Record<R, number> & Partial<Record<O, number>>) | undefined {
  if (!isRecord(value)) return undefined;
  const counts: Partial<Record<R | O, number>> = {};
  for (const field of required) {
    const n = value[field];
    if (!isTokenCount(n)) return undefined;
    counts[field] = n;
  }
  for (const field of optional) {
    const n = value[field];
    if (n == null) continue;
    if (!isTokenCount(n)) return undefined;
    counts[field] = n;
  }
  return counts as Record<R, number> & Partial<Record<O, number>>;
}

export interface UsageCounts {
  prompt: number;
  completion: number;
  total?: number;
  cached?: number;
  cacheWrite?: number;
  reasoning?: number;
  /** Parts of `prompt` and `completion` by modality, and the upstream's own web searches: reported, never priced apart. */
  audioIn?: number;
  videoIn?: number;
  audioOut?: number;
  imageOut?: number;
  webSearches?: number;
}

export function makeUsage(counts: UsageCounts): Usage {
  const usage: Usage = {
    prompt_tokens: counts.prompt,
    completion_tokens: counts.completion,
    total_tokens: counts.total ?? counts.prompt + counts.completion,
  };
  if (counts.cached !== undefined || counts.cacheWrite !== undefined || counts.audioIn !== undefined || counts.videoIn !== undefined) {
    usage.prompt_tokens_details = { cached_tokens: counts.cached ?? 0 };
    if (counts.cacheWrite !== undefined) usage.prompt_tokens_details.cache_write_tokens = counts.cacheWrite;
    if (counts.audioIn !== undefined) usage.prompt_tokens_details.audio_tokens = counts.audioIn;
    if (counts.videoIn !== undefined) usage.prompt_tokens_details.video_tokens = counts.videoIn;
  }
  if (counts.reasoning !== undefined || counts.audioOut !== undefined || counts.imageOut !== undefined) {
    usage.completion_tokens_details = { reasoning_tokens: counts.reasoning ?? 0 };
    if (counts.audioOut !== undefined) usage.completion_tokens_details.audio_tokens = counts.audioOut;
    if (counts.imageOut !== undefined) usage.completion_tokens_details.image_tokens = counts.imageOut;
  }
  if (counts.webSearches !== undefined) usage.server_tool_use = { web_search_requests: counts.webSearches };
  return usage;
}

// ---------------------------------------------------------------------------------------------------------------
// Content

export function contentText(content: MessageContent | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  let text = '';
  for (const part of content) if (part.type === 'text') text += part.text;
  return text;
}

/** The links a protocol's media parts may carry (`schemes` without the colon), and how to name them to a client. */
export interface LinkSchemes {
  readonly schemes: readonly string[];
  readonly described: string;
}
export const WEB_LINKS: LinkSchemes = { schemes: ['http', 'https'], described: 'an http(s) URL' };

/**
 * A media part's URL that is not a base64 data URL (`parseDataUrl`), sent on as a link: one of the protocol's
 * `links`, else refused before anything is sent (the upstream would answer a 400, or try a `file:` path), naming
 * the field (`field`, as the client sent it).
 */
export function mediaLink(provider: string, url: string, field: string, links: LinkSchemes = WEB_LINKS): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && links.schemes.includes(scheme)) return url;
  if (scheme === 'data') throw badRequest(provider, `${field} is a data: URL that is not base64 data (data:<media type>;base64,<data>)`);
  throw badRequest(provider, `${field} must be ${links.described} or a base64 data: URL${scheme === undefined ? '' : ` (not ${scheme}:)`}`);
}

/** Parts `namedContent` put before a message's own (a text part for the name): subtracted to name a part as the client sent it. */
export function addedParts(own: MessageContent, sent: MessageContent): number {
  return sent !== own && Array.isArray(sent) && Array.isArray(own) ? sent.length - own.length : 0;
}

/**
 * A conversation with no user or assistant content (a system prompt alone, empty content) would go out as an empty
 * one, which Anthropic and Gemini refuse (a 400 that then counted as the endpoint's failure): refused before.
 */
export function nothingToSend(provider: string): ProviderError {
  return badRequest(provider, 'messages: there is no user or assistant message with content to send (a system prompt alone, or empty content, is none)');
}

export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$/s.exec(url);
  if (!match?.[1] || match[2] === undefined) return undefined;
  return { mediaType: match[1], data: match[2] };
}

const IMAGE_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
};

export function guessImageType(url: string): string {
  const extension = /\.([a-z0-9]+)(?:[?#].*)?$/i.exec(url)?.[1]?.toLowerCase();
  return (extension && IMAGE_TYPES[extension]) || 'image/jpeg';
}

/** Tool-call arguments arrive as a JSON string; Anthropic and Gemini want the object. */
export function toolArguments(provider: string, call: ToolCall): JsonObject {
  const raw = call.function.arguments.trim();
  if (raw === '') return {};
  const parsed = parseJson(raw);
  if (!isRecord(parsed)) {
    throw badRequest(provider, `tool call ${call.id} has arguments that are not a JSON object`);
  }
  // Sent on as a JSON object: nested past what a request body may be, the request could not be serialised.
  if (nestsDeeperThan(parsed, MAX_JSON_DEPTH)) {
    throw badRequest(provider, `tool call ${call.id} has arguments nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return parsed;
}

// OpenRouter's effort → share of max_tokens spent thinking.
const EFFORT_SHARE: Record<string, number> = { max: 0.95, xhigh: 0.95, high: 0.8, medium: 0.5, low: 0.2, minimal: 0.1 };

/** The thinking budget a reasoning config asks for, or undefined when reasoning is off or unspecified. */
export function reasoningBudget(reasoning: ReasoningConfig | undefined, maxTokens: number): number | undefined {
  if (!reasoning || reasoning.enabled === false || reasoning.effort === 'none') return undefined;
  if (reasoning.max_tokens !== undefined) return reasoning.max_tokens;
  const share = EFFORT_SHARE[reasoning.effort ?? 'medium'] ?? 0.5;
  return Math.floor(maxTokens * share);
}

/**
 * The effort a reasoning config asks of an upstream that takes an effort and no budget (OpenAI's `reasoning_effort`),
 * or undefined to leave the upstream's default (no reasoning asked for, or `enabled: false` without an effort):
 * - `effort`, as given;
 * - a budget (`max_tokens`): the effort whose share of the request's max_tokens (OpenRouter's: high 80%, medium 50%,
 *   low 20%) is nearest the budget's share: high from 65%, medium from 35%, else low. Only these three, which every
 *   OpenAI reasoning model takes (not all take minimal or xhigh). Without a request max_tokens there is no share to
 *   measure: medium;
 * - `enabled: true` (also `include_reasoning: true` and `:thinking`): medium, as OpenRouter documents it.
 */
export function reasoningEffortFor(reasoning: ReasoningConfig | undefined, maxTokens: number | undefined): ReasoningEffort | undefined {
  if (!reasoning) return undefined;
  if (reasoning.effort !== undefined) return reasoning.effort;
  if (reasoning.enabled === false) return undefined;
  if (reasoning.max_tokens !== undefined) {
    if (maxTokens === undefined || maxTokens <= 0) return 'medium';
    // Compared as integers: budget / maxTokens ≥ 0.65 ⇔ 20 × budget ≥ 13 × maxTokens.
    if (20 * reasoning.max_tokens >= 13 * maxTokens) return 'high';
    if (20 * reasoning.max_tokens >= 7 * maxTokens) return 'medium';
    return 'low';
  }
  return reasoning.enabled === true ? 'medium' : undefined;
}

export function reasoningDisabled(reasoning: ReasoningConfig | undefined): boolean {
  return reasoning !== undefined && (reasoning.enabled === false || reasoning.effort === 'none');
}

/**
 * A message's `name` for a protocol that has no field for it, as OpenRouter sends it: `{name}: {content}` (on the
 * first text part; a text part of its own when there is none). The same content when there is no name.
 */
export function namedContent(content: MessageContent, name: string | undefined): MessageContent {
  if (name === undefined || name === '') return content;
  if (typeof content === 'string') return `${name}: ${content}`;
  const first = content.findIndex((part) => part.type === 'text');
  if (first === -1) return [{ type: 'text', text: `${name}:` }, ...content];
  return content.map((part, i) => (i === first && part.type === 'text' ? { ...part, text: `${name}: ${part.text}` } : part));
}
