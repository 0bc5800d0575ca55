/**
 * The gateway's cost computation, in exact integer nano-dollars per token and per request: it prices usage and caps
 * what a provider reports. Every conversion from or to dollars lives in modules/ledger/money.ts.
 */
import { PRICE_FIELDS, type EndpointPrices } from '../modules/catalog/provider.events.js';
import { isTokenCount } from './providers/common.js';
import type { Usage } from './types.js';

export interface CostBreakdown {
  readonly prompt: number;
  readonly completion: number;
  readonly reasoning: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly request: number;
  readonly total: number;
}

/** Token counts of a call (the field names of the generation events' TokenUsage). */
export interface Counts {
  readonly prompt: number;
  readonly completion: number;
  readonly reasoning: number;
  readonly cached: number;
  readonly cacheWrite: number;
}

/** A count a provider sent, as a non-negative integer (NaN, negatives and fractions never reach a price). */
const count = (n: number | undefined): number => (typeof n === 'number' && n > 0 ? Math.floor(Math.min(n, Number.MAX_SAFE_INTEGER)) : 0);

const isCount = isTokenCount;
const isOptionalCount = (n: unknown): boolean => n === undefined || isCount(n);

/**
 * Whether a provider's usage report reads as token counts at all: the two totals counts (non-negative safe integers),
 * the details absent or counts. A report that fails this is treated as missing (the usage is estimated), so a
 * provider cannot make an answer free by reporting -100 tokens. The Anthropic and Gemini adapters check each count
 * of their protocol the same way before they add them up (common.ts readCounts), and report none when one fails.
 */
export const countsAreTokens = (usage: Usage): boolean =>
  isCount(usage.prompt_tokens) &&
  isCount(usage.completion_tokens) &&
  isOptionalCount(usage.prompt_tokens_details?.cached_tokens) &&
  isOptionalCount(usage.prompt_tokens_details?.cache_write_tokens) &&
  isOptionalCount(usage.completion_tokens_details?.reasoning_tokens);

/** As reported, each count made a non-negative integer and nothing else. */
const sentCounts = (usage: Usage): Counts => ({
  prompt: count(usage.prompt_tokens),
  completion: count(usage.completion_tokens),
  reasoning: count(usage.completion_tokens_details?.reasoning_tokens),
  cached: count(usage.prompt_tokens_details?.cached_tokens),
  cacheWrite: count(usage.prompt_tokens_details?.cache_write_tokens),
});

/** Counts that can be priced: cached + cache-write within prompt, reasoning within completion, each within its cap. */
const countsOf = (usage: Usage, caps?: { prompt: number; completion: number }): Counts => {
  const prompt = Math.min(count(usage.prompt_tokens), caps?.prompt ?? Number.MAX_SAFE_INTEGER);
  const completion = Math.min(count(usage.completion_tokens), caps?.completion ?? Number.MAX_SAFE_INTEGER);
  const cached = Math.min(count(usage.prompt_tokens_details?.cached_tokens), prompt);
  return {
    prompt,
    completion,
    reasoning: Math.min(count(usage.completion_tokens_details?.reasoning_tokens), completion),
    cached,
    cacheWrite: Math.min(count(usage.prompt_tokens_details?.cache_write_tokens), prompt - cached),
  };
};

type Components = Record<Exclude<keyof CostBreakdown, 'total'>, bigint>;

/** Exact (BigInt) cost components: a count times a price can pass 2^53 when a provider reports absurd usage. */
const componentsOf = (c: Counts, prices: EndpointPrices): Components => ({
  prompt: BigInt(c.prompt - c.cached - c.cacheWrite) * BigInt(prices.prompt),
  completion: BigInt(c.completion - c.reasoning) * BigInt(prices.completion),
  reasoning: BigInt(c.reasoning) * BigInt(prices.reasoning),
  cacheRead: BigInt(c.cached) * BigInt(prices.cacheRead),
  cacheWrite: BigInt(c.cacheWrite) * BigInt(prices.cacheWrite),
  request: BigInt(prices.request),
});

const sum = (c: Components): bigint => c.prompt + c.completion + c.reasoning + c.cacheRead + c.cacheWrite + c.request;
const MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** A bigint as a number, saturating at 2^53 − 1 (only a figure for the record can be that large). */
const toNumber = (n: bigint): number => Number(n > MAX ? MAX : n);

const breakdownOf = (c: Components): CostBreakdown => ({
  prompt: toNumber(c.prompt),
  completion: toNumber(c.completion),
  reasoning: toNumber(c.reasoning),
  cacheRead: toNumber(c.cacheRead),
  cacheWrite: toNumber(c.cacheWrite),
  request: toNumber(c.request),
  total: toNumber(sum(c)),
});

/**
 * The actual cost of a call. `prompt_tokens` includes cached and cache-write tokens and `completion_tokens`
 * includes reasoning tokens (the OpenAI/OpenRouter convention the adapters normalise to).
 */
export const costOf = (usage: Usage, prices: EndpointPrices): CostBreakdown => breakdownOf(componentsOf(countsOf(usage), prices));

export interface UsageCaps {
  /** The endpoint's context length. */
  readonly promptTokens: number;
  /** `max_tokens` as sent upstream (after any clamp), else the endpoint's max output. */
  readonly completionTokens: number;
  /** Nano-dollars: the reservation the request was admitted on. */
  readonly cost: number;
}

export interface Billing {
  /** The usage billed: every count within its cap. */
  readonly usage: Usage;
  /** Its cost; `total` is at most the cost cap. */
  readonly breakdown: CostBreakdown;
  /** The counts as reported (made non-negative integers). */
  readonly reported: Counts;
  readonly billed: Counts;
  /** The cost of the usage as reported, before any cap (saturating at 2^53 − 1 nano-dollars). */
  readonly reportedCost: number;
  /** Whether the provider reported more than is billed: a count above its cap, or a cost above the reservation. */
  readonly overReported: boolean;
  readonly caps: UsageCaps;
  /** Nano-dollars the billed cache reads and writes cost below the prompt price (cacheDiscountOf). */
  readonly cacheDiscount: number;
}

/** Reduced so the total is the cap: output first (what the request bounded), the request fee last. */
const CUT_ORDER = ['completion', 'reasoning', 'prompt', 'cacheWrite', 'cacheRead', 'request'] as const;

/**
 * What a user pays for a provider's usage report: never more tokens than the request and the endpoint allow, never
 * more money than the reservation the request was admitted on. A provider's word is trusted only within those.
 */
export const billUsage = (reported: Usage, prices: EndpointPrices, caps: UsageCaps): Billing => {
  const sent = sentCounts(reported);
  const billed = countsOf(reported, { prompt: caps.promptTokens, completion: caps.completionTokens });
  const reportedCost = sum(componentsOf(countsOf(reported), prices));
  const components = componentsOf(billed, prices);
  let excess = sum(components) - BigInt(caps.cost);
  for (const part of CUT_ORDER) {
    if (excess <= 0n) break;
    const cut = components[part] < excess ? components[part] : excess;
    components[part] -= cut;
    excess -= cut;
  }
  const usage: Usage = { prompt_tokens: billed.prompt, completion_tokens: billed.completion, total_tokens: billed.prompt + billed.completion };
  // The modality breakdowns are shown, not priced: each as reported, made a count within its total.
  const within = (n: number | undefined, total: number) => Math.min(count(n), total);
  const promptDetails = reported.prompt_tokens_details;
  if (promptDetails) {
    usage.prompt_tokens_details = {
      cached_tokens: billed.cached,
      ...(promptDetails.cache_write_tokens !== undefined && { cache_write_tokens: billed.cacheWrite }),
      ...(promptDetails.audio_tokens !== undefined && { audio_tokens: within(promptDetails.audio_tokens, billed.prompt) }),
      ...(promptDetails.video_tokens !== undefined && { video_tokens: within(promptDetails.video_tokens, billed.prompt) }),
    };
  }
  const completionDetails = reported.completion_tokens_details;
  if (completionDetails) {
    usage.completion_tokens_details = {
      reasoning_tokens: billed.reasoning,
      ...(completionDetails.audio_tokens !== undefined && { audio_tokens: within(completionDetails.audio_tokens, billed.completion) }),
      ...(completionDetails.image_tokens !== undefined && { image_tokens: within(completionDetails.image_tokens, billed.completion) }),
    };
  }
  if (reported.server_tool_use) usage.server_tool_use = { web_search_requests: count(reported.server_tool_use.web_search_requests) };
  const overReported = (Object.keys(sent) as (keyof Counts)[]).some((k) => sent[k] !== billed[k]) || sum(components) !== reportedCost;
  return { usage, breakdown: breakdownOf(components), reported: sent, billed, reportedCost: toNumber(reportedCost), overReported, caps, cacheDiscount: cacheDiscountOf(billed, prices) };
};

/**
 * OpenRouter's `cache_discount`: what the cached prompt tokens saved against the prompt price, less what cache writes
 * cost above it (negative when writes outweigh reads). Zero when nothing was cached or the endpoint prices cache reads
 * and writes as prompt tokens (its default). Saturates at ±(2^53 − 1) nano-dollars.
 */
export const cacheDiscountOf = (c: Counts, prices: EndpointPrices): number => {
  const discount = BigInt(c.cached) * BigInt(prices.prompt - prices.cacheRead) + BigInt(c.cacheWrite) * BigInt(prices.prompt - prices.cacheWrite);
  return discount < -MAX ? -Number.MAX_SAFE_INTEGER : toNumber(discount);
};

/** Costs nothing whatever the usage: served under the free tier's request limits, tagged `free` or not. */
export const isZeroPriced = (prices: EndpointPrices): boolean => PRICE_FIELDS.every((field) => prices[field] === 0);

/**
 * The most a call can cost: every prompt token at the dearest input price, every output token at the dearest output
 * price. Past 2^53 − 1 nano-dollars (absurd prices: a float would be inexact) it is that bound, which no account holds.
 */
export const worstCaseCost = (promptTokens: number, maxOutputTokens: number, prices: EndpointPrices): number =>
  Math.min(Number.MAX_SAFE_INTEGER, promptTokens * Math.max(prices.prompt, prices.cacheWrite) + maxOutputTokens * Math.max(prices.completion, prices.reasoning) + prices.request);

/** How many output tokens `budget` nano-dollars pay for after the prompt and the request fee (0 when none). */
export const affordableOutputTokens = (budget: number, promptTokens: number, prices: EndpointPrices): number => {
  const outputPrice = Math.max(prices.completion, prices.reasoning);
  const left = budget - promptTokens * Math.max(prices.prompt, prices.cacheWrite) - prices.request;
  if (left < 0) return 0;
  return outputPrice === 0 ? Number.MAX_SAFE_INTEGER : Math.floor(left / outputPrice);
};

/** The BYOK fee unless configured (BYOK_FEE_PERCENT): 5%, as OpenRouter's. */
export const DEFAULT_BYOK_FEE_BASIS_POINTS = 500;
const BASIS = 10_000n;

/**
 * The fee on a call served with the account's own provider key: `basisPoints` (500 = 5%) of its list-price cost,
 * rounded up to the next nano-dollar (never a fraction of one undercharged; exact, in BigInt).
 */
export const byokFee = (listCost: number, basisPoints: number): number => Number((BigInt(listCost) * BigInt(basisPoints) + BASIS - 1n) / BASIS);

/**
 * The largest list-price cost whose fee fits `budget` (the inverse of byokFee: fee(L) ≤ B ⟺ L ≤ ⌊B·10000 / bp⌋); with
 * `withList`, whose fee plus the list price itself fits (a key that counts BYOK list prices in its limit).
 */
export const byokListBudget = (budget: number, basisPoints: number, withList = false): number => {
  const per = BigInt(basisPoints) + (withList ? BASIS : 0n);
  if (per === 0n) return Number.MAX_SAFE_INTEGER;
  const most = (BigInt(Math.max(0, budget)) * BASIS) / per;
  return most > MAX ? Number.MAX_SAFE_INTEGER : Number(most);
};
