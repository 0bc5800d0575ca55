/**
 * Money for the gateway: exact integer nano-dollars (1 USD = 1,000,000,000). $0.15 per million tokens is 150
 * nano-dollars per token. Conversions from and to decimal strings are done on digits, never through floats.
 */
import type { EndpointPrices } from '../modules/catalog/provider.events.js';
import type { Usage } from './types.js';

export const NANOS_PER_USD = 1_000_000_000;

/** Parse a non-negative decimal USD string into nano-dollars × `scaleDown` exactly, or throw. */
const parseDecimal = (text: string, decimalsAllowed: number, what: string): number => {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) throw new Error(`${what}: "${text}" is not a non-negative decimal number`);
  const whole = match[1]!;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > decimalsAllowed) throw new Error(`${what}: "${text}" is finer than one nano-dollar`);
  const value = Number(whole + fraction.padEnd(decimalsAllowed, '0'));
  if (!Number.isSafeInteger(value)) throw new Error(`${what}: "${text}" is too large`);
  return value;
};

/** "0.15" USD per million tokens → 150 nano-dollars per token. */
export const usdPerMillionToNanoPerToken = (text: string, what = 'price'): number => parseDecimal(text, 3, what);

/** "0.001" USD → 1,000,000 nano-dollars. */
export const usdToNano = (text: string, what = 'price'): number => parseDecimal(text, 9, what);

/** 150 → "0.00000015" (USD, no trailing zeros; "0" for zero). OpenRouter's pricing strings. */
export const nanoToUsdString = (nanos: number): string => {
  const negative = nanos < 0;
  const digits = String(Math.abs(nanos)).padStart(10, '0');
  const whole = digits.slice(0, -9).replace(/^0+(?=\d)/, '');
  const fraction = digits.slice(-9).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
};

/** For JSON `cost` fields (OpenRouter sends a number of USD). */
export const nanoToUsdNumber = (nanos: number): number => nanos / NANOS_PER_USD;

export interface CostBreakdown {
  readonly prompt: number;
  readonly completion: number;
  readonly reasoning: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly request: number;
  readonly total: number;
}

/**
 * The actual cost of a call. `prompt_tokens` includes cached and cache-write tokens and `completion_tokens`
 * includes reasoning tokens (the OpenAI/OpenRouter convention the adapters normalise to).
 */
export const costOf = (usage: Usage, prices: EndpointPrices): CostBreakdown => {
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  const cacheWrite = usage.prompt_tokens_details?.cache_write_tokens ?? 0;
  const reasoning = Math.min(usage.completion_tokens_details?.reasoning_tokens ?? 0, usage.completion_tokens);
  const plainPrompt = Math.max(0, usage.prompt_tokens - cached - cacheWrite);
  const breakdown = {
    prompt: plainPrompt * prices.prompt,
    completion: (usage.completion_tokens - reasoning) * prices.completion,
    reasoning: reasoning * prices.reasoning,
    cacheRead: cached * prices.cacheRead,
    cacheWrite: cacheWrite * prices.cacheWrite,
    request: prices.request,
  };
  return { ...breakdown, total: breakdown.prompt + breakdown.completion + breakdown.reasoning + breakdown.cacheRead + breakdown.cacheWrite + breakdown.request };
};

/** The most a call can cost: every prompt token at the dearest input price, every output token at the dearest output price. */
export const worstCaseCost = (promptTokens: number, maxOutputTokens: number, prices: EndpointPrices): number =>
  promptTokens * Math.max(prices.prompt, prices.cacheWrite) + maxOutputTokens * Math.max(prices.completion, prices.reasoning) + prices.request;

/** How many output tokens `budget` nano-dollars pay for after the prompt and the request fee (0 when none). */
export const affordableOutputTokens = (budget: number, promptTokens: number, prices: EndpointPrices): number => {
  const outputPrice = Math.max(prices.completion, prices.reasoning);
  const left = budget - promptTokens * Math.max(prices.prompt, prices.cacheWrite) - prices.request;
  if (left < 0) return 0;
  return outputPrice === 0 ? Number.MAX_SAFE_INTEGER : Math.floor(left / outputPrice);
};
