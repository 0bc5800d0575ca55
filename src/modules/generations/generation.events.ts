/**
 * The `generation-{id}` stream: one model call through the gateway, from request to its end. The gateway appends
 * the whole story in one append when the generation ends (see gateway/gateway.ts for the crash trade-off); the
 * generation decider (generation.decider.ts) decides it.
 */
import type { FinishReason, ProviderErrorCode } from '../../gateway/types.js';
import { newId } from '../../ids.js';

/** How the call came in: REST chat, completions, embeddings, responses or messages, GraphQL, or a workflow run's model step. */
export type ApiType = 'chat' | 'completions' | 'embeddings' | 'responses' | 'messages' | 'graphql' | 'workflow';

/** The workflow run a model call belongs to (its `action.model` step): its usage is grouped by workflow. */
export interface WorkflowAttribution {
  readonly workflowId: string;
  readonly runId: string;
}
/**
 * The app that made the call, as its request named itself (OpenRouter's app attribution headers): `HTTP-Referer`
 * (its URL), `X-OpenRouter-Title` or `X-Title`, `X-OpenRouter-Categories`. Absent when it sent none of them.
 */
export interface AppAttribution {
  readonly url: string | null;
  readonly title: string | null;
  readonly categories: readonly string[];
}
export type UsageSource = 'provider' | 'estimated';

export interface PromptMedia {
  readonly images: number;
  readonly files: number;
  readonly audio: number;
}

export interface TokenUsage {
  readonly prompt: number;
  readonly completion: number;
  readonly reasoning: number;
  readonly cached: number;
  readonly cacheWrite: number;
}

export type GenerationRequested = {
  readonly type: 'GenerationRequested';
  readonly data: {
    readonly generationId: string;
    readonly accountId: string;
    readonly keyId: string | null;
    readonly models: readonly string[];
    /** The request's `provider` preferences as sent (JSON), or null. */
    readonly provider: unknown;
    readonly stream: boolean;
    readonly user: string | null;
    readonly apiType: ApiType;
    /** `switchyard/auto` and the rule that picked, when the auto router chose the models. */
    readonly router: string | null;
    /** The workflow run that made the call; absent for any other call (and in events written before attribution). */
    readonly workflow?: WorkflowAttribution;
    /** The app that made the call; absent when it named none (and in events written before app attribution). */
    readonly app?: AppAttribution;
    readonly promptTokensEstimate: number;
    /**
     * The media parts of the prompt's messages as parsed: images (`image_url`), files (`file`), audio (`input_audio`).
     * Absent in events written before they were counted.
     */
    readonly promptMedia?: PromptMedia;
    /** The conversation's id as the client sent it (`session_id` / `x-session-id`); absent when it sent none. */
    readonly sessionId?: string;
    /** Nano-dollars reserved before the first attempt. */
    readonly reserved: number;
    readonly at: string;
  };
};

/** Which attempt of which generation, on which endpoint: shared by the attempt events. */
type AttemptRef = {
  readonly generationId: string;
  readonly attempt: number;
  readonly endpointId: string;
  readonly providerSlug: string;
  readonly model: string;
};

export type AttemptStarted = {
  readonly type: 'AttemptStarted';
  readonly data: AttemptRef & {
    readonly upstreamModel: string;
    readonly at: string;
  };
};

export type AttemptFailed = {
  readonly type: 'AttemptFailed';
  readonly data: AttemptRef & {
    readonly errorCode: ProviderErrorCode;
    readonly status: number;
    readonly retryable: boolean;
    /** Whether the endpoint's health is to blame (counts against its uptime); false for request errors. */
    readonly countsAgainstUptime: boolean;
    readonly afterFirstToken: boolean;
    readonly latencyMs: number;
    readonly message: string;
    readonly at: string;
  };
};

interface Outcome {
  readonly generationId: string;
  readonly accountId: string;
  readonly keyId: string | null;
  readonly endpointId: string | null;
  readonly providerSlug: string | null;
  readonly providerName: string | null;
  readonly model: string | null;
  readonly usage: TokenUsage;
  readonly usageSource: UsageSource;
  /** Nano-dollars charged (settled). */
  readonly cost: number;
  /**
   * Nano-dollars the cached prompt tokens saved against the prompt price, less what cache writes cost above it
   * (OpenRouter's cache_discount; 0 when nothing was cached at a price of its own). Absent in events written before it
   * was recorded.
   */
  readonly cacheDiscount?: number;
  /**
   * Present when the account's own provider key served it (BYOK): what the call costs at the endpoint's list price,
   * paid to the provider on that key; `cost` is then Switchyard's fee on it.
   */
  readonly upstreamCost?: number;
  readonly streamed: boolean;
  /** Milliseconds from the request to the first token (null when none came). */
  readonly latencyMs: number | null;
  readonly generationTimeMs: number;
  readonly at: string;
}

/** An error as the client was told it: OpenRouter's error_type, the HTTP status, the message. */
export interface GenerationError {
  readonly errorType: string;
  readonly status: number;
  readonly message: string;
  /** See GenerationFailed's. */
  readonly retryable?: boolean;
}

export type GenerationCompleted = {
  readonly type: 'GenerationCompleted';
  readonly data: Outcome & {
    readonly upstreamId: string | null;
    readonly finishReason: FinishReason | null;
    readonly nativeFinishReason: string | null;
    /**
     * The error its provider ended the answer with mid-generation (`finishReason` "error": OpenRouter's
     * `choices[0].error`, a stream's error chunk), as the client was told it (GenerationFailed's errorType, status and
     * message). The answer still completed: what was generated was delivered and is billed. Absent otherwise, and in
     * events written before it was recorded.
     */
    readonly error?: GenerationError;
    /**
     * The answer's text, kept for calls that asked for it (workflow model steps): a step attempt run again after a
     * crash answers with it instead of calling (and charging) twice. Absent for other generations.
     */
    readonly completion?: string;
    /** See GenerationFailed's. */
    readonly clientGone?: true;
  };
};

export type GenerationFailed = {
  readonly type: 'GenerationFailed';
  readonly data: Outcome & {
    /** OpenRouter error_type. */
    readonly errorType: string;
    readonly status: number;
    readonly message: string;
    /** True when tokens had reached the client before the failure (the stream ended with an error chunk). */
    readonly afterFirstToken: boolean;
    /**
     * Whether the gateway called the failure worth trying again (its error's `retryable`: a provider's 401 or 404 is
     * not, though a 502 to the client): a workflow step resumed after a crash decides as the live one did. Absent when
     * the gateway said nothing, and in events written before it was recorded (then the status decides).
     */
    readonly retryable?: boolean;
    /**
     * The client went away before the end, and the answer was made all the same: the provider could not cancel (it
     * bills the whole answer), or the call did not stream (such a call runs to its end, billed whole, as OpenRouter
     * bills it): the answer was read on, undelivered, and billed as the provider bills it. Absent otherwise (a client
     * that left a stream from a provider that cancels ends the generation as GenerationCancelled).
     */
    readonly clientGone?: true;
  };
};

export type GenerationCancelled = {
  readonly type: 'GenerationCancelled';
  readonly data: Outcome & { readonly reason: string };
};

/**
 * The provider reported more than the user is billed for: a token count above its cap (prompt at the endpoint's
 * context length, completion at max_tokens as sent or the endpoint's max output) or a cost above the reservation the
 * request was admitted on. Appended after the generation's outcome, whose usage and cost are the billed figures.
 */
export type UsageOverReported = {
  readonly type: 'UsageOverReported';
  readonly data: {
    readonly generationId: string;
    readonly accountId: string;
    readonly keyId: string | null;
    readonly endpointId: string;
    readonly providerSlug: string;
    readonly providerName: string;
    readonly model: string;
    readonly usageSource: UsageSource;
    /** As reported (each count made a non-negative integer, at most 2^53 − 1). */
    readonly reported: TokenUsage;
    readonly billed: TokenUsage;
    readonly caps: { readonly promptTokens: number; readonly completionTokens: number; readonly cost: number };
    /** Nano-dollars the reported usage would cost (saturating at 2^53 − 1), and what was billed. */
    readonly reportedCost: number;
    readonly billedCost: number;
    readonly at: string;
  };
};

export type GenerationEvent = GenerationRequested | AttemptStarted | AttemptFailed | GenerationCompleted | GenerationFailed | GenerationCancelled | UsageOverReported;

export const GENERATION_CATEGORY = 'generation';
export const generationStream = (generationId: string): string => `${GENERATION_CATEGORY}-${generationId}`;

/** `gen-` + a time-ordered id: sorts by creation, safe in a stream name. */
export const newGenerationId = (): string => `gen-${newId('g').slice(2)}`;
