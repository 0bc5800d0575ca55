/** Small pure helpers shared by the protocol adapters: safe reads of unknown JSON, errors, usage, content. */
import {
  ProviderError,
  type JsonObject,
  type MessageContent,
  type ProviderErrorCode,
  type ReasoningConfig,
  type ToolCall,
  type Usage,
} from '../types.js';
import type { HeaderSource } from './adapter.js';

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
// Errors

export function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof Headers !== 'undefined' && headers instanceof Headers) return headers.get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/** `retry-after-ms` (OpenAI), then `Retry-After` as delta-seconds or, given `nowMs`, an HTTP-date. */
export function parseRetryAfterMs(headers: HeaderSource, nowMs?: number): number | undefined {
  const ms = headerValue(headers, 'retry-after-ms')?.trim();
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Math.round(Number(ms));
  const value = headerValue(headers, 'retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  if (nowMs === undefined) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

const RETRYABLE: ReadonlySet<ProviderErrorCode> = new Set<ProviderErrorCode>([
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'connection',
  // Another endpoint may have a larger context window.
  'context_length',
  'malformed_response',
]);

export function isRetryable(code: ProviderErrorCode): boolean {
  return RETRYABLE.has(code);
}

export function codeForStatus(status: number): ProviderErrorCode {
  switch (status) {
    case 401:
    case 403:
      return 'auth';
    case 402:
      return 'payment_required';
    case 404:
      return 'not_found';
    case 408:
    case 504:
      return 'timeout';
    case 429:
      return 'rate_limited';
    case 503:
    case 529:
      return 'overloaded';
    default:
      if (status >= 500) return 'server_error';
      if (status >= 400) return 'bad_request';
      return 'server_error';
  }
}

const CONTEXT_LENGTH =
  /context[ _-]?length|context window|maximum context|prompt is too long|too many (input )?tokens|input token count.*exceed|exceeds? the maximum (number of )?tokens|input length and `?max_tokens`? exceed/i;

export function isContextLengthMessage(message: string | undefined): boolean {
  return message !== undefined && CONTEXT_LENGTH.test(message);
}

export interface ErrorFacts {
  provider: string;
  status: number;
  /** A code the protocol's error body already implies (e.g. Anthropic `overloaded_error`). */
  code?: ProviderErrorCode;
  upstreamCode?: string;
  upstreamMessage?: string;
  retryAfterMs?: number;
}

export function providerError(facts: ErrorFacts): ProviderError {
  let code = facts.code ?? codeForStatus(facts.status);
  if ((code === 'bad_request' || code === 'not_found') && isContextLengthMessage(facts.upstreamMessage)) {
    code = 'context_length';
  }
  return new ProviderError({
    code,
    status: facts.status,
    retryable: isRetryable(code),
    message: `${facts.provider} ${facts.status} ${code}${facts.upstreamMessage ? `: ${facts.upstreamMessage}` : ''}`,
    provider: facts.provider,
    ...(facts.retryAfterMs !== undefined && { retryAfterMs: facts.retryAfterMs }),
    ...(facts.upstreamCode !== undefined && { upstreamCode: facts.upstreamCode }),
    ...(facts.upstreamMessage !== undefined && { upstreamMessage: facts.upstreamMessage }),
  });
}

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

export function badRequest(provider: string, message: string): ProviderError {
  return new ProviderError({ code: 'bad_request', status: 400, retryable: false, message, provider });
}

// ---------------------------------------------------------------------------------------------------------------
// Usage

export interface UsageCounts {
  prompt: number;
  completion: number;
  total?: number;
  cached?: number;
  cacheWrite?: number;
  reasoning?: number;
}

export function makeUsage(counts: UsageCounts): Usage {
  const usage: Usage = {
    prompt_tokens: counts.prompt,
    completion_tokens: counts.completion,
    total_tokens: counts.total ?? counts.prompt + counts.completion,
  };
  if (counts.cached !== undefined || counts.cacheWrite !== undefined) {
    usage.prompt_tokens_details = { cached_tokens: counts.cached ?? 0 };
    if (counts.cacheWrite !== undefined) usage.prompt_tokens_details.cache_write_tokens = counts.cacheWrite;
  }
  if (counts.reasoning !== undefined) usage.completion_tokens_details = { reasoning_tokens: counts.reasoning };
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

export function reasoningDisabled(reasoning: ReasoningConfig | undefined): boolean {
  return reasoning !== undefined && (reasoning.enabled === false || reasoning.effort === 'none');
}
