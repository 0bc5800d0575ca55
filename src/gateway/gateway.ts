/**
 * One generation through the gateway: plan the route, reserve the worst case in the ledger, run the attempts,
 * settle what was used (or release), and have the generations module record the generation (it decides the events).
 *
 * Hot-path cost per request: the plan (in memory, no awaits), one ledger reserve (batched with concurrent ones on
 * the account), the upstream call. The upstream call starts as soon as the ledger admits the reservation, while it
 * is appended; the router delivers nothing before the append is durable (the ledger's append resolves then: with
 * EVENTSTORE_SYNC=full once the WAL fsync covering it is done, on the event store's writer thread, so a power loss cannot take
 * back a reservation a client has seen an answer for). The settle and the generation append happen after the answer
 * has gone out, in the background (tracked, so `idle()` and shutdown wait for them, and each is acknowledged to it
 * only once durable too): 3 appends per request in total (reserve, settle, generation), none of which adds to the
 * client's wait unless the reservation's commit and fsync take longer than the provider.
 *
 * A reservation admitted against this process's state can still be refused when its append meets another
 * process's (production stores shared by several app processes): the router then aborts the call before anything
 * reached the client, and the client gets the 402 it would have got up front.
 *
 * Crash trade-off: the generation's events are appended in one append at its end. A process that dies mid-call
 * leaves no generation events, only the ledger reservation (keyed by generation id), which the ledger expires at
 * the next start (embedded) or after its TTL (the request timeout plus a margin); the user is then not charged for
 * that call. Appending GenerationRequested up front would record such calls but cost one more fsync per request on
 * the critical path.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Cancellation, type AbortLike } from '../cancellation.js';
import type { ContentStore } from '../contentStore/contentStore.js';
import type { AuthDirectory } from '../modules/auth/authDirectory.js';
import type { Principal } from '../modules/auth/principal.js';
import { extend } from '../objects.js';
import type { Catalog } from '../modules/catalog/catalog.js';
import type { CredentialVault } from '../modules/catalog/credentials.js';
import type { GenerationRecorder } from '../modules/generations/generation.api.js';
import type { ApiType, AppAttribution, PromptMedia, UsageSource, WorkflowAttribution } from '../modules/generations/generation.events.js';
import type { Ledger } from '../modules/ledger/ledger.js';
import type { PresetLookup } from '../modules/presets/presetResolution.js';
import type { FollowStatus } from '../eventStore/followStatus.js';
import { describeStorageFailure, IdempotencyKeyHeldError, IdempotencyKeyReusedError, InsufficientCreditsError, KeyLimitReachedError, RateLimitedError, storageFailureOf } from '../errors.js';
import { IdempotentReplay } from '../http/idempotentAnswer.js';
import type { IdempotencyClaims, IdempotentReplays, KeyHolder, RequestIdempotency } from '../modules/generations/requestIdempotency.js';
import { formatUsd } from '../modules/ledger/money.js';
import type { Logger } from '../logger.js';
import { createBreakers, type Breakers } from './breaker.js';
import { providerAsSent, type ParsedChat } from './chatRequest.js';
import { buildEmbeddingRequest, DEMO_EMBEDDING_DIMENSIONS, demoEmbedding, parseEmbeddingResponse, type EmbeddingRequest, type ParsedEmbedding } from './embeddings.js';
import { GatewayError, fromProviderError, invalidRequest, shuttingDown } from './gatewayErrors.js';
import { MODEL_REQUIRED } from './chatRequest.schema.js';
import type { AttemptFacts } from '../modules/generations/generation.api.js';
import { ADAPTERS } from './providers/registry.js';
import { readErrorText } from './upstream.js';
import { healJson } from './responseHealing.js';
import {
  affordableOutputTokens,
  billUsage,
  byokFee,
  byokListBudget,
  countsAreTokens,
  DEFAULT_BYOK_FEE_BASIS_POINTS,
  isZeroPriced,
  worstCaseCost,
  type Billing,
  type CostBreakdown,
} from './pricing.js';
import { estimateTokens } from './providers/demo/demoProvider.js';
import { contentText } from './providers/common.js';
import { planRoute, type ByokRoute, type RoutePlan, type RouteTarget } from './routePlan.js';
import { credentialsOf, redactProviderError } from './redactCredentials.js';
import { byokContext } from '../modules/accounts/account.events.js';
import { byokStatus } from '../modules/accounts/byok.js';
import { buildUpstreamRequest, carriageOf, countsAgainstUptime, createRouter, ownKeyRefused, upstreamFailure, type AttemptRecord, type Carriage, type RouterConfig, type RunResult } from './router.js';
import type { StatsSnapshot } from './routeStats.js';
import { createStickySessions, type StickySessions } from './stickySessions.js';
import { ProviderError, type ChatChunk, type ChatRequest, type ChatResponse, type FinishReason, type Usage } from './types.js';
import type { UpstreamClient } from './upstream.js';

export interface GatewayConfig extends RouterConfig {
  readonly requestTimeoutMs: number;
  /** The fee on a call served with the account's own provider key, in basis points of its list price (BYOK_FEE_PERCENT); unset, 500 (5%). */
  readonly byokFeeBasisPoints?: number;
  readonly breakerFailures: number;
  readonly breakerCooldownMs: number;
  /** OpenRouter's default load balancing (routePlan.ts); false: the cheapest endpoint first. Unset: on. */
  readonly loadBalancing?: boolean;
}

export interface GenerateInput {
  readonly generationId: string;
  readonly principal: Principal;
  readonly parsed: ParsedChat;
  /** The request's `provider` object as sent, for the record. */
  readonly rawProvider: unknown;
  readonly apiType: ApiType;
  readonly correlationId: string;
  /** Refuse (402) before reserving when the worst case exceeds this (a workflow run's budget left), in nano-dollars. */
  readonly maxReserved?: number;
  /** The workflow run making the call: its generation and its usage row name the workflow. */
  readonly workflow?: WorkflowAttribution;
  /** The app that named itself in the request's headers (appAttributionOf). */
  readonly app?: AppAttribution;
  /** Keep the answer's text in the generation's record (workflow model steps: a resumed step reads it back). */
  readonly keepCompletion?: boolean;
  /** The request's Idempotency-Key (checked) and fingerprint: one generation per Idempotency-Key and API key (requestIdempotency.ts). */
  readonly idempotency?: RequestIdempotency;
}

export interface PreparedGeneration {
  readonly input: GenerateInput;
  readonly plan: RoutePlan;
  readonly request: ChatRequest;
  /** Which targets can carry `request` (decided for the reservation), and what was built deciding it, for the router. */
  readonly carriage: Carriage;
  readonly reserved: number;
  /** The reservation, admitted; resolves once it is durable (delivery waits for that), rejects if refused after all. */
  readonly durable: Promise<void>;
  readonly startedAt: number;
  readonly created: number;
}

export interface ExecuteOptions {
  /**
   * Client went away (streaming; a whole call's is only the shutdown deadline): the upstream call is aborted and what
   * was generated is charged; from a provider that cannot cancel, the answer is read to its end and charged whole.
   */
  readonly signal?: AbortLike;
  /** A promise back: the client is not reading, and the upstream is not read until it resolves (RunOptions.onChunk). */
  readonly onChunk?: (chunk: ChatChunk) => void | Promise<void>;
  /** At the deadline of a stream its client held back: whether that client still reads (RunOptions.stillReading). */
  readonly stillReading?: () => boolean;
  /**
   * A whole (not streamed) call's: whether its client has gone, asked once when its answer is ready. The call is not
   * cut for it (it was run to its end and is charged whole); its record says it was not delivered (clientGone).
   */
  readonly clientGone?: () => boolean;
}

export interface GenerationOutcome {
  readonly generationId: string;
  readonly kind: 'completed' | 'failed' | 'cancelled';
  readonly model: string | null;
  readonly providerName: string | null;
  readonly providerSlug: string | null;
  readonly response: ChatResponse | null;
  /** Usage as billed, with OpenRouter's `cost` fields added by the edges. */
  readonly usage: Usage;
  readonly usageSource: UsageSource;
  /** Nano-dollars owed for this generation (served with the account's own provider key: the fee). */
  readonly cost: number;
  /** Served with the account's own provider key (BYOK): what it costs at the endpoint's list price; null otherwise. */
  readonly upstreamCost: number | null;
  /** At the endpoint's list price. */
  readonly costBreakdown: CostBreakdown | null;
  /** Whether tokens reached the client (streaming) or an answer was produced. */
  readonly committed: boolean;
  readonly finishReason: FinishReason | null;
  /** Why it failed; on a completed whole answer, the provider's error that ended it mid-generation (else null). */
  readonly error: GatewayError | null;
  /** Every attempt, in order (the router metadata; the record has its own copy). */
  readonly attempts: readonly AttemptRecord[];
  /** The response-healing plugin repaired the answer's JSON. */
  readonly healed: boolean;
}

export interface EmbedInput {
  readonly generationId: string;
  readonly principal: Principal;
  readonly parsed: ParsedEmbedding;
  readonly correlationId: string;
  readonly app?: AppAttribution;
  /** The request's Idempotency-Key (checked) and fingerprint, as GenerateInput's. */
  readonly idempotency?: RequestIdempotency;
  /** Called once the call will be recorded as a generation (its reservation made): the route names it then. */
  readonly onReserved?: () => void;
  /** Whether the client has gone, asked once when the answer is ready (ExecuteOptions.clientGone). */
  readonly clientGone?: () => boolean;
  /** Aborted at the end of the shutdown's grace period: the call is cut (released, recorded failed, a 503), as a chat's. */
  readonly shutdown?: AbortLike;
}

export interface EmbedOutcome {
  readonly generationId: string;
  readonly model: string;
  readonly providerName: string;
  readonly vectors: readonly (readonly number[])[];
  /** As billed: input tokens only. */
  readonly usage: Usage;
  /** Nano-dollars charged (served with the account's own provider key: the fee). */
  readonly cost: number;
  /** Served with the account's own provider key (BYOK): what it costs at the endpoint's list price; null otherwise. */
  readonly upstreamCost: number | null;
}

const MIN_CLAMPED_OUTPUT = 16;
/** What an Idempotency-Key claim names: the caller's account and API key, the generation, the key (a chat's or an embedding's input). */
type Claimant = Pick<GenerateInput, 'principal' | 'generationId' | 'idempotency'>;
const NO_DEFAULT_MODEL = `${MODEL_REQUIRED}; or set a default model for your account with the GraphQL mutation setDefaultModel(model: "vendor/model")`;

/** Without a presets view (unit tests) every preset is unknown, and there is nothing to follow. */
const NO_PRESETS: PresetLookup & { status(): FollowStatus } = {
  preset: () => undefined,
  status: () => ({ position: 0, state: 'live', failures: 0, lastError: null }),
};
const ZERO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
const NO_MEDIA: PromptMedia = { images: 0, files: 0, audio: 0 };

/** The response-healing plugin on a whole answer: its JSON repaired when it does not parse (responseHealing.ts). */
const healed = (result: RunResult): RunResult => {
  const choice = result.response?.choices[0];
  const content = choice?.message.content;
  if (!result.response || !choice || typeof content !== 'string') return result;
  const fixed = healJson(content);
  if (fixed === null) return result;
  return { ...result, response: { ...result.response, choices: [{ ...choice, message: { ...choice.message, content: fixed } }, ...result.response.choices.slice(1)] } };
};

/** Input & output logging: which accounts have it on (the auth directory, in memory) and where their content goes. */
export interface ContentLog {
  enabled(accountId: string): boolean;
  readonly store: Pick<ContentStore, 'put'>;
}

/** Accounts whose last call's writes are tracked for read-your-writes at most (see readYourWrites). */
const MAX_WRITES_TRACKED = 10_000;

export const createGateway = (deps: {
  catalog: Catalog;
  /** Encrypts provider keys registered through the API (kept here so the API layers reach it with the catalog). */
  vault: CredentialVault;
  /** Upstream HTTP, with the outbound address policy for providers not registered by an admin. */
  upstream: UpstreamClient;
  ledger: Ledger;
  /** Records each generation (the generations module decides its events). */
  generations: GenerationRecorder;
  stats: StatsSnapshot;
  /** The accounts' presets, in memory (a request naming one is refused as unknown without it). */
  presets?: PresetLookup & { status(): FollowStatus };
  logger: Logger;
  config: GatewayConfig;
  /** Resolves once the read models have applied a position (so `idle()` can promise readable generation records). */
  waitForReadModels?: (position: number) => Promise<boolean>;
  /** Stores what a generation was sent and answered, for the accounts that turned logging on. */
  contentLog?: ContentLog;
  /**
   * The accounts' provider lists and own provider keys, and the keys' settings (the auth directory, in memory: no
   * store read per request); without it, none.
   */
  directory?: Pick<AuthDirectory, 'account' | 'key'>;
  /** Idempotency-Key claims (requestIdempotency.ts); without them, a call that sends a key is an internal error. */
  claims?: IdempotencyClaims;
  /** The event store's `hurry`: an answer is ready and its reservation not yet durable (see reservationSyncWithin). */
  hurry?: () => void;
  /** The answers kept for Idempotency-Key retries (none without a master key: a retry is then a 409). */
  replays?: IdempotentReplays;
  now?: () => number;
  random?: () => number;
}) => {
  const { catalog, ledger, logger, config } = deps;
  const now = deps.now ?? Date.now;
  const breakers: Breakers = createBreakers({ failureThreshold: config.breakerFailures, cooldownMs: config.breakerCooldownMs });
  const random = deps.random ?? Math.random;
  /** The load balancing's draw: none (`null`) when it is off. */
  const balanceDraw = config.loadBalancing === false ? null : random;
  const router = createRouter({ breakers, config, upstream: deps.upstream, now, random });
  const sticky: StickySessions = createStickySessions({ now });
  const pending = new Set<Promise<void>>();
  let lastPosition = 0;
  /** Generations answered whose record is not appended yet, by id: the position it was appended at, or null. */
  const recording = new Map<string, Promise<number | null>>();
  /**
   * Per account, its last call's settlement and record (done once both are appended), until a query of the account's
   * usage or generations has waited for the read models to hold them (readYourWrites). The least recent go first past
   * MAX_WRITES_TRACKED: by then their writes are long applied.
   */
  const accountWrites = new Map<string, Promise<unknown>>();
  const noteWrites = (accountId: string, done: Promise<unknown>) => {
    accountWrites.delete(accountId);
    accountWrites.set(accountId, done);
    if (accountWrites.size > MAX_WRITES_TRACKED) accountWrites.delete(accountWrites.keys().next().value!);
  };

  /** The prompt a target is sent: the request's, or the compressed conversation's (not the whole one it was cut from). */
  const promptOf = (target: RouteTarget, estimate: number) => target.promptTokens ?? estimate;
  /**
   * The most tokens that prompt can count (maxPromptTokens), what a reservation covers: the request's or the compressed
   * one's, and never more than the endpoint's context length (a bill counts no more: billUsage's cap).
   */
  const maxPromptOf = (target: RouteTarget, bound: number) => Math.min(target.maxPromptTokens ?? bound, target.endpoint.contextLength);

  const feeBasisPoints = config.byokFeeBasisPoints ?? DEFAULT_BYOK_FEE_BASIS_POINTS;
  /** What a call at this list-price cost charges the credits: the cost, or on the account's own provider key the fee. */
  const chargeOf = (target: RouteTarget, listCost: number) => (target.byok ? byokFee(listCost, feeBasisPoints) : listCost);
  /** What it counts against a key's limit: the charge, and the list price too when the key includes BYOK in its limit. */
  const keyChargeOf = (target: RouteTarget, listCost: number, byokInLimit: boolean) => chargeOf(target, listCost) + (target.byok && byokInLimit ? listCost : 0);
  /** The largest list-price cost of a target that `budget` pays for, in credits or (`byokInLimit`) against such a key's limit. */
  const listBudgetOf = (target: RouteTarget, budget: number, byokInLimit = false) => (target.byok ? byokListBudget(budget, feeBasisPoints, byokInLimit) : budget);
  /** Whether the caller's key counts BYOK calls' list price against its limit (include_byok_in_limit). */
  const byokInLimitOf = (principal: Principal) => (principal.keyId !== null && deps.directory?.key(principal.keyId)?.includeByokInLimit) === true;

  /**
   * The reservation covering every target (`outputTokens` given: that output for all, as embeddings have none): the
   * worst case of each at its list price (`promptTokens`: the most the prompt can count, maxPromptTokens), charged as it would be (a fee on the account's own key). A key that counts
   * BYOK list prices in its limit holds those too (`keyAmount`), so concurrent calls cannot pass its limit either.
   *
   * With a chat's `carriage`, only the targets that can carry the request count: one whose protocol cannot (the router
   * skips it unasked) would hold credits, or a key's limit, the call can never spend, and price the caller out of the
   * endpoint that answers. `targets` are those left (empty: none can carry it). Only what can change the amount is
   * decided: the first target (the router builds it first anyway), then, dearest first, those whose protocol may refuse
   * and that cost more than every target known to carry it. Targets whose protocols refuse nothing decide nothing.
   */
  const reservationFor = (targets: readonly RouteTarget[], promptTokens: number, byokInLimit: boolean, outputTokens?: number, carriage?: Carriage) => {
    let amount = 0;
    let keyAmount = 0;
    /** Some target counted carries the request. */
    let carried = false;
    const worstOf = (t: RouteTarget) => worstCaseCost(maxPromptOf(t, promptTokens), outputTokens ?? t.maxOutput, t.endpoint.prices);
    const count = (t: RouteTarget, worst: number) => {
      amount = Math.max(amount, chargeOf(t, worst));
      keyAmount = Math.max(keyAmount, keyChargeOf(t, worst, byokInLimit));
      carried = true;
    };
    let undecided: RouteTarget[] | undefined;
    let refused = false;
    for (const t of targets) {
      const known = carriage === undefined ? true : carriage.known(t);
      if (known === true) count(t, worstOf(t));
      else if (known === undefined) (undecided ??= []).push(t);
      else refused = true;
    }
    if (undecided !== undefined) {
      const first = targets[0]!;
      if (undecided[0] === first && carriage!.carries(first)) count(first, worstOf(first));
      const rest = undecided.filter((t) => t !== first).map((t) => ({ t, worst: worstOf(t) }));
      rest.sort((a, b) => chargeOf(b.t, b.worst) - chargeOf(a.t, a.worst));
      for (const { t, worst } of rest) {
        if (carried && chargeOf(t, worst) <= amount && keyChargeOf(t, worst, byokInLimit) <= keyAmount) continue;
        if (carriage!.carries(t)) count(t, worst);
      }
      refused ||= targets.some((t) => carriage!.known(t) instanceof ProviderError);
    }
    const carrying = refused ? targets.filter((t) => !(carriage!.known(t) instanceof ProviderError)) : targets;
    // A call whose first endpoint is zero-priced (the demo model too, not only those tagged free) counts against the
    // free tier: an account without credits must not drive unbounded traffic and storage through it. Not one whose
    // zero-priced endpoint is only a fallback: another provider's free endpoint on an open model would otherwise put
    // every paid call to it under the free tier's limits.
    return {
      amount,
      keyAmount: byokInLimit && carrying.some((t) => t.byok) ? keyAmount : undefined,
      freeModel: carrying.length > 0 && isZeroPriced(carrying[0]!.endpoint.prices),
      targets: carrying,
    };
  };

  /**
   * No target can carry the request (each one's protocol refused it, Carriage): the router's answer when it could try
   * none, the first refusal (a 400, attempts 0), given before anything is reserved.
   */
  const cannotCarry = (targets: readonly RouteTarget[], carriage: Carriage): GatewayError => {
    const target = targets.find((t) => carriage.known(t) instanceof ProviderError)!;
    return fromProviderError(carriage.known(target) as ProviderError, {
      providerName: target.endpoint.provider.name,
      providerSlug: target.endpoint.provider.slug,
      model: target.model,
      attempts: 0,
      cooldownLeftMs: cooldownLeft(targets),
      byok: target.byok,
    });
  };

  /**
   * OpenRouter's 402: how many output tokens were asked for and how many the budget pays for, naming the output limit
   * as the caller's API calls it (the Responses API's `max_output_tokens`).
   */
  const paymentRequired = (error: InsufficientCreditsError | KeyLimitReachedError, target: RouteTarget, promptTokens: number, budget: number, apiType: ApiType, byokInLimit: boolean) => {
    const source = error instanceof KeyLimitReachedError ? 'key_limit' : 'credits';
    // Nothing left: no max_tokens would do (a free model is refused too), so the 402 says what is spent, not what to lower.
    if (budget <= 0) return spentRefusal(error, source, target);
    const listBudget = listBudgetOf(target, Math.max(0, budget), source === 'key_limit' && byokInLimit);
    const affordable = Math.min(target.maxOutput, affordableOutputTokens(listBudget, maxPromptOf(target, promptTokens), target.endpoint.prices));
    const field = apiType === 'responses' ? 'max_output_tokens' : 'max_tokens';
    return new GatewayError(
      402,
      'payment_required',
      `This request requires more credits, or fewer ${field}. You requested up to ${target.maxOutput} tokens, but can only afford ${affordable}. ` +
        (source === 'key_limit' ? "Raise this key's limit or wait for it to reset." : `Add credits (purchaseCredits) or lower ${field}.`),
      { ...error.metadata, limit_source: source, requested_tokens: target.maxOutput, affordable_tokens: affordable, model: target.model },
      undefined,
      error.code,
    );
  };

  /**
   * The 402 for a key whose limit is used up or an account without credits left (at or below zero): whatever the
   * request would cost, free models included. `affordable_tokens` 0, as it is.
   */
  const spentRefusal = (error: InsufficientCreditsError | KeyLimitReachedError, source: 'key_limit' | 'credits', target: RouteTarget) => {
    const m = error.metadata as { available?: number; limit?: number; used?: number; limit_reset?: string };
    const message =
      source === 'key_limit'
        ? `This key's spending limit is used up: it has spent ${formatUsd(m.used ?? 0)} of its ${m.limit_reset && m.limit_reset !== 'never' ? `${m.limit_reset} ` : ''}limit of ${formatUsd(m.limit ?? 0)}, so it is refused every request, free models included, ` +
          (m.limit_reset && m.limit_reset !== 'never' ? "until the limit resets or is raised. Raise this key's limit or wait for it to reset." : "until the limit is raised. Raise this key's limit.")
        : `The account has no credits left (its balance is ${formatUsd(m.available ?? 0)})${(m.available ?? 0) < 0 ? ', which refuses free models too' : ''}. Add credits (purchaseCredits).`;
    return new GatewayError(402, 'payment_required', message, { ...error.metadata, limit_source: source, requested_tokens: target.maxOutput, affordable_tokens: 0, model: target.model }, undefined, error.code);
  };

  /** A ledger refusal as the client sees it: OpenRouter's 402 for credits and key limits, anything else as it is. */
  const refusedBy = (error: unknown, target: RouteTarget, promptTokens: number, apiType: ApiType, byokInLimit: boolean): unknown =>
    error instanceof InsufficientCreditsError || error instanceof KeyLimitReachedError ? paymentRequired(error, target, promptTokens, budgetOf(error), apiType, byokInLimit) : error;

  /** The ledger refused an admitted reservation once it met another process's append: nothing was delivered. */
  const refusal = (error: unknown, prepared: PreparedGeneration): GatewayError => {
    const refused = refusedBy(error, prepared.plan.targets[0]!, prepared.input.parsed.maxPromptTokens, prepared.input.apiType, byokInLimitOf(prepared.input.principal));
    if (refused instanceof GatewayError) return refused;
    if (refused instanceof RateLimitedError) return new GatewayError(429, 'rate_limit_exceeded', refused.message, refused.metadata, refused.retryAfterMs);
    // The event store's storage (a full disk...): said in the answer, and logged by the store once per change of state
    // (main.ts trackWrites), not as a stack per refused call.
    const storage = storageFailureOf(error);
    if (storage !== null) {
      return new GatewayError(503, 'server', `The credits ledger could not record the reservation: ${describeStorageFailure(storage)}; nothing was charged`, { reason: storage });
    }
    logger.error({ err: error, generationId: prepared.input.generationId }, 'a reservation failed after it was admitted');
    return new GatewayError(503, 'server', 'The credits ledger could not record the reservation; nothing was charged', {});
  };

  /**
   * How long a 503 the upstream sent no Retry-After for asks the client to wait: when every endpoint of the plan has
   * its breaker open, until the first of them half-opens (a retry sooner meets the same breakers); otherwise
   * undefined, and the REST edge's default applies.
   */
  const cooldownLeft = (targets: readonly RouteTarget[]): number | undefined => {
    const at = now();
    let least = Infinity;
    for (const { endpoint } of targets) {
      const left = breakers.cooldownLeftMs(endpoint.id, at);
      if (left === 0) return undefined;
      least = Math.min(least, left);
    }
    return least === Infinity ? undefined : least;
  };

  const budgetOf = (error: InsufficientCreditsError | KeyLimitReachedError): number => {
    const m = error.metadata as { available?: number; limit?: number; used?: number };
    if (error instanceof KeyLimitReachedError) return (m.limit ?? 0) - (m.used ?? 0);
    return m.available ?? 0;
  };

  /** The provider lists of the caller's account (setProviderPreferences): every route it plans is within them. */
  const accountPreferences = (principal: Principal) => deps.directory?.account(principal.accountId)?.providerPreferences ?? null;

  /**
   * The caller's own provider keys that may be sent now (the provider still allows them and its endpoints still
   * point at the origin the key was set for), opened; and the providers whose shared key must not serve the caller.
   * Null for an account without any (one map lookup).
   */
  const byokRoute = (principal: Principal): ByokRoute | null => {
    const stored = deps.directory?.account(principal.accountId)?.byokKeys;
    if (!stored || stored.size === 0) return null;
    const keys = new Map<string, { readonly apiKey: string; readonly origin: string }>();
    const noShared = new Set<string>();
    for (const key of stored.values()) {
      if (!key.fallbackToShared) noShared.add(key.provider);
      if (byokStatus(catalog.provider(key.provider), key).status !== 'active') continue;
      const opened = deps.vault.decrypt(byokContext(principal.accountId, key.provider), key.encrypted);
      if (opened.secret === null) {
        logger.warn({ accountId: principal.accountId, provider: key.provider, problem: opened.problem }, 'an account’s own provider key (BYOK) could not be opened: not used');
        continue;
      }
      keys.set(key.provider, { apiKey: opened.secret, origin: key.origin });
    }
    return { keys, noShared };
  };

  /**
   * A call under its Idempotency-Key (none: the call as it is): the key claimed for this generation and request first
   * (its answer then kept for retries, when the edge records it), a key held for another request refused with a 422,
   * one held for this request answered with the stored answer or a 409 naming the holder, and the key given back when
   * the call fails before charging anything.
   */
  const underClaim = async <T>(input: Claimant, call: () => Promise<T>): Promise<T> => {
    const idem = input.idempotency;
    if (idem === undefined) return call();
    if (!deps.claims) throw new Error('Idempotency-Key claims are not wired into this gateway');
    const { accountId, keyId } = input.principal;
    // Before the claim: a deletion of the account's content from here on voids the answer kept for the retries.
    const claimedAt = now();
    const holder = await deps.claims.claim({ accountId, keyId }, idem.key, input.generationId, idem.fingerprint);
    if (holder !== null) throw await heldKeyAnswer(deps.claims, accountId, idem, holder);
    const { replays } = deps;
    if (replays) {
      idem.answer?.keep((answer) =>
        replays.save(accountId, idem.key, input.generationId, answer, claimedAt).catch((err: unknown) => logger.error({ err, generationId: input.generationId }, 'could not store an Idempotency-Key’s answer: a retry gets a 409')),
      );
    }
    try {
      return await call();
    } catch (error) {
      await giveBack(input);
      throw error;
    }
  };
  /** What a call finds when its key is held: another request's (422), its stored answer (a replay), or a 409. */
  const heldKeyAnswer = async (claims: IdempotencyClaims, accountId: string, idem: RequestIdempotency, holder: KeyHolder): Promise<Error> => {
    const metadata = { header: 'idempotency-key', generation_id: holder.generationId };
    if (holder.sameRequest === false) {
      return new IdempotencyKeyReusedError(`This Idempotency-Key was used for another request (generation ${holder.generationId}): send a new key for a new request`, { ...metadata, retryable: false });
    }
    const stored = holder.sameRequest === true && idem.answer && deps.replays ? await deps.replays.find(accountId, idem.key, holder.generationId) : null;
    if (stored) return new IdempotentReplay(stored);
    const ended = await claims.ended(holder.generationId);
    return new IdempotencyKeyHeldError(
      `This Idempotency-Key was used for generation ${holder.generationId} (still running, or its answer is not kept: answered over 24 hours ago, or not stored): it is charged once; read its record with GET /api/v1/generation?id=${holder.generationId}`,
      !ended,
      metadata,
    );
  };
  /** Gives a call's Idempotency-Key back (it charged nothing); a failure to is logged: the key then stays used. */
  const giveBack = async (input: Claimant) => {
    const idem = input.idempotency;
    if (idem === undefined || !deps.claims) return;
    idem.answer?.drop();
    const { accountId, keyId } = input.principal;
    await deps.claims.release({ accountId, keyId }, idem.key, input.generationId).catch((err: unknown) => logger.error({ err, generationId: input.generationId }, 'an Idempotency-Key could not be given back'));
  };

  const prepare = (input: GenerateInput): Promise<PreparedGeneration> => underClaim(input, () => prepareCall(input));

  /**
   * How long the reservation's durability may wait (AppendOptions.syncWithinMs) so that the calls made meanwhile share
   * its commit and fsync: three quarters of the first endpoint's median time to first token over the last 5 minutes,
   * up to 25 ms; none when that median is under 8 ms or unknown (an answer expected within a few milliseconds would
   * wait for the disk). An answer that comes sooner hurries the store (the router's `hurry`). Measured at 400 req/s on
   * a 20 ms upstream: 0.34 commits per request against 0.61 with half, ~65 µs less CPU per request, p99 no higher.
   */
  const reservationSyncWithin = (target: RouteTarget): number => {
    const ttft = deps.stats.get(target.endpoint.id)?.latency5m?.p50;
    return ttft === undefined || ttft < 8 ? 0 : Math.min(25, Math.floor((ttft * 3) / 4));
  };

  const prepareCall = async (input: GenerateInput): Promise<PreparedGeneration> => {
    const startedAt = now();
    const { parsed, principal } = input;
    // A chat needs a model that writes text: an embeddings model is reached through /api/v1/embeddings.
    let plan = planRoute({ catalog, output: 'text', breakers, stats: deps.stats, parsed, account: accountPreferences(principal), byok: byokRoute(principal), nowMs: startedAt, random: balanceDraw });
    // The account's own keys go first, before a sticky session's endpoint as before provider.order; an order the
    // request asks for (provider.order or sort, :floor, :nitro, thresholds) wins over a pin.
    if (!plan.ordered && !plan.targets.some((t) => t.byok)) {
      const stuck = sticky.apply(plan.targets, principal.accountId, parsed, (id) => breakers.isOpen(id, startedAt));
      if (stuck !== plan.targets) plan = { ...plan, targets: stuck };
    }
    let request = parsed.request;
    let carriage = carriageOf(request, parsed.stream);
    const byokInLimit = byokInLimitOf(principal);
    let amount = 0;
    let keyAmount: number | undefined;
    let freeModel = false;
    /** The reservation for `targets`, and the plan narrowed to those of them that can carry the request (none: false). */
    const cover = (targets: readonly RouteTarget[]): boolean => {
      const covered = reservationFor(targets, parsed.maxPromptTokens, byokInLimit, undefined, carriage);
      if (covered.targets.length === 0) return false;
      ({ amount, keyAmount, freeModel } = covered);
      if (covered.targets !== plan.targets) plan = { ...plan, targets: covered.targets };
      return true;
    };
    if (!cover(plan.targets)) throw cannotCarry(plan.targets, carriage);
    if (input.maxReserved !== undefined && amount > input.maxReserved) {
      throw new GatewayError(
        402,
        'payment_required',
        `This call may cost up to ${amount} nano-dollars, more than the ${Math.max(0, input.maxReserved)} its budget has left: lower max_tokens or raise the budget`,
        { limit_source: 'budget', reservation: amount, budget_left: input.maxReserved, model: plan.targets[0]!.model },
      );
    }
    /**
     * Resolves once the ledger admits the reservation, with the promise of it being durable (wrapped: a promise
     * resolved with a promise would wait for it): the upstream call starts while the reservation is appended, and
     * the router delivers nothing before it is durable. Rejects if the ledger refuses it before admitting it.
     */
    const reserve = async (): Promise<{ durable: Promise<void> }> => {
      let onAdmitted!: () => void;
      const admitted = new Promise<void>((resolve) => (onAdmitted = resolve));
      const syncWithinMs = reservationSyncWithin(plan.targets[0]!);
      const durable = ledger.reserve({ accountId: principal.accountId, keyId: principal.keyId, generationId: input.generationId, amount, ...(keyAmount !== undefined && { keyAmount }), freeModel, onAdmitted, syncWithinMs });
      // A refusal after admission reaches the router through `durable` (its `ready`); never unhandled here.
      durable.catch(() => undefined);
      await Promise.race([admitted, durable]);
      return { durable };
    };
    /**
     * The free tier's limits bar a call's free targets, not the call: when they refuse it (its first target is
     * zero-priced), its paid targets serve instead (`models: ["x:free", "x"]`), reserved and charged as any paid call.
     */
    const reserveOrPaid = async (): Promise<{ durable: Promise<void> }> => {
      try {
        return await reserve();
      } catch (error) {
        if (!(error instanceof RateLimitedError && freeModel)) throw error;
        const paid = plan.targets.filter((t) => !isZeroPriced(t.endpoint.prices));
        if (paid.length === 0 || !cover(paid)) throw error;
        return reserve();
      }
    };
    let durable: Promise<void>;
    try {
      ({ durable } = await reserveOrPaid());
    } catch (error) {
      if (!(error instanceof InsufficientCreditsError || error instanceof KeyLimitReachedError)) throw error;
      // What follows picks among the targets: those that can carry the request, every one decided now (refused already).
      cover(plan.targets.filter((t) => carriage.carries(t)));
      const budget = budgetOf(error);
      // A key limit counts what the key holds: with include_byok_in_limit, a BYOK call's list price as well as its fee.
      const byKey = error instanceof KeyLimitReachedError && byokInLimit;
      const worstOf = (t: RouteTarget) => {
        const worst = worstCaseCost(maxPromptOf(t, parsed.maxPromptTokens), t.maxOutput, t.endpoint.prices);
        return error instanceof KeyLimitReachedError ? keyChargeOf(t, worst, byokInLimit) : chargeOf(t, worst);
      };
      const affordsOf = (t: RouteTarget) => Math.min(t.maxOutput, affordableOutputTokens(listBudgetOf(t, budget, byKey), maxPromptOf(t, parsed.maxPromptTokens), t.endpoint.prices));
      // The 402 speaks of the target that pays for the most output: the same answer whatever order the plan drew.
      const best = plan.targets.reduce((a, b) => (affordsOf(b) > affordsOf(a) ? b : a));
      // The targets the budget cannot pay for are dropped, the first one too (the load balancing's draw, a sticky
      // pin or provider.order may put a dear endpoint first): the reservation covers every target, and one dear
      // endpoint must not price the caller out of those they can afford. The others keep their order.
      const affordable = plan.targets.filter((t) => worstOf(t) <= budget);
      if (affordable.length > 0 && affordable.length < plan.targets.length) {
        cover(affordable);
        try {
          ({ durable } = await reserve());
          return { input, plan, request, carriage, reserved: amount, durable, startedAt, created: Math.floor(startedAt / 1000) };
        } catch (again) {
          if (!(again instanceof InsufficientCreditsError || again instanceof KeyLimitReachedError)) throw again;
        }
      }
      // Without an explicit max_tokens the worst case assumed the model's whole output; clamp to what the budget
      // pays for (if that is still a useful answer) instead of refusing: the surprise-402 fix.
      // Targets that cannot pay for even that much are dropped (the others keep their order), not the whole call.
      const clamped = parsed.request.max_tokens === undefined && budget > 0 ? plan.targets.filter((t) => affordsOf(t) >= MIN_CLAMPED_OUTPUT) : [];
      if (clamped.length === 0) throw paymentRequired(error, best, parsed.maxPromptTokens, budget, input.apiType, byokInLimit);
      const clamp = Math.min(...clamped.map(affordsOf));
      request = { ...request, max_tokens: clamp };
      // Another request (a lower max_tokens), decided anew: an Anthropic thinking budget may no longer fit below it.
      carriage = carriageOf(request, parsed.stream);
      if (!cover(clamped.map((t) => ({ ...t, maxOutput: clamp })))) throw paymentRequired(error, best, parsed.maxPromptTokens, budget, input.apiType, byokInLimit);
      try {
        ({ durable } = await reserve());
      } catch (again) {
        throw refusedBy(again, best, parsed.maxPromptTokens, input.apiType, byokInLimit);
      }
    }
    return { input, plan, request, carriage, reserved: amount, durable, startedAt, created: Math.floor(startedAt / 1000) };
  };

  /**
   * What the generation used and costs, from provider usage when it came, else estimated from what was seen; billed
   * within the caps (the request's max_tokens as sent or the endpoint's max output, its context length, and the
   * reservation), whatever the provider reported.
   */
  const account = (prepared: PreparedGeneration, result: RunResult): { source: UsageSource; billing: Billing | null } => {
    const target = result.target;
    if (!target || !result.committed) return { source: 'estimated', billing: null };
    // A report with a negative or non-numeric count is no report: estimated instead, never billed as zero.
    const reported = result.usage !== null && countsAreTokens(result.usage) ? result.usage : null;
    const complete = result.kind === 'completed' && reported !== null;
    let usage: Usage;
    if (complete) usage = reported;
    else {
      const prompt = reported?.prompt_tokens ?? promptOf(target, prepared.input.parsed.promptTokens);
      const completion = Math.max(reported?.completion_tokens ?? 0, estimateTokens(result.completionChars));
      usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
      if (reported?.prompt_tokens_details) usage.prompt_tokens_details = reported.prompt_tokens_details;
    }
    // At the endpoint's list price, capped so that what it charges (on the account's own key: the fee) stays within
    // the reservation.
    const billing = billUsage(usage, target.endpoint.prices, {
      promptTokens: target.endpoint.contextLength,
      completionTokens: prepared.request.max_tokens ?? target.endpoint.maxOutput,
      cost: listBudgetOf(target, prepared.reserved),
    });
    return { source: complete ? 'provider' : 'estimated', billing };
  };

  const track = (work: Promise<void>) => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };
  /**
   * Settle and record once the answer has been written. The caller writes it in the microtasks that follow `run`'s
   * return; `setImmediate` runs after them, so deciding the settlement and the record (~10% of the request thread's
   * time) is not on the client's wait. Tracked at once, so `idle()` never sees a gap.
   */
  const afterAnswer = <T>(work: () => Promise<T>): Promise<T> => {
    const done = new Promise<T>((resolve, reject) => setImmediate(() => work().then(resolve, reject)));
    track(done.then(() => undefined));
    return done;
  };

  const finalize = async (prepared: PreparedGeneration, result: RunResult, outcome: GenerationOutcome, billing: Billing | null, completion: string | null) => {
    const { input } = prepared;
    const { accountId } = input.principal;
    const atMs = now();
    // The app a usage row is counted under: its title, else its URL (an app that sent only categories names none).
    const app = input.app?.title ?? input.app?.url ?? null;
    // A workflow's step waits for its call's charge before it is recorded (recordOf): not held for a next reservation.
    const urgency = input.workflow === undefined ? 'soon' : 'now';
    // Settle (or release), then record: the record is appended once the settlement is, so the log never holds a
    // record of a charge that is not in it (a crash between them leaves a charge without its record, which the
    // generation's readers and a workflow's step know as ANSWER_LOST). Both go `soon`: the record rides with the
    // account's next commit, as the settlement rides with its next reservation.
    const charge = (async () => {
      // Refused after admission (the run may have ended before that was known): no reservation was recorded, so
      // there is nothing to settle or release.
      if (!(await prepared.durable.then(() => true, () => false))) return;
      if (outcome.committed) {
        await ledger.settle({
          accountId,
          generationId: input.generationId,
          actual: outcome.cost,
          usage: {
            model: outcome.model ?? '',
            provider: outcome.providerSlug ?? '',
            promptTokens: outcome.usage.prompt_tokens,
            completionTokens: outcome.usage.completion_tokens,
            reasoningTokens: outcome.usage.completion_tokens_details?.reasoning_tokens ?? 0,
            cachedTokens: outcome.usage.prompt_tokens_details?.cached_tokens ?? 0,
            ...(input.workflow !== undefined && { workflowId: input.workflow.workflowId }),
            ...(app !== null && { app }),
          },
          ...(outcome.upstreamCost !== null && { byok: { upstreamCost: outcome.upstreamCost } }),
          urgency,
        });
      } else {
        await ledger.release({ accountId, generationId: input.generationId, reason: outcome.kind === 'cancelled' ? 'client cancelled before the first token' : (outcome.error?.message ?? outcome.kind), urgency });
      }
    })().catch((error: unknown) => {
      logger.error({ err: error, generationId: input.generationId }, 'could not settle or release a generation; the sweeper will expire its reservation');
    });

    // The generations module decides the record's events from what happened; one append, as before.
    const { plan } = prepared;
    const target = result.target;
    await charge;
    // The settlement rides with the account's next reservation (see the ledger's soon hold), and is durable with it:
    // deciding and serialising the record here, in the microtasks that fsync's report starts, would run before that
    // next call's answer is written (~0.13 ms of its wait at concurrency 1). The next turn, it runs after it.
    await nextTurn();
    return deps.generations
      .record({
        generationId: input.generationId,
        principal: input.principal,
        correlationId: input.correlationId,
        apiType: input.apiType,
        models: input.parsed.models,
        provider: providerAsSent(input.rawProvider),
        stream: input.parsed.stream,
        user: input.parsed.request.user ?? null,
        router: plan.router,
        workflow: input.workflow ?? null,
        app: input.app ?? null,
        promptTokensEstimate: input.parsed.promptTokens,
        promptMedia: input.parsed.media,
        sessionId: input.parsed.sessionId,
        reserved: prepared.reserved,
        startedAt: prepared.startedAt,
        attempts: result.attempts.map((a) => extend(a, { countsAgainstUptime: a.error !== null && countsAgainstUptime(a.error, a.target) })),
        end: {
          kind: outcome.kind,
          target,
          usage: outcome.usage,
          usageSource: outcome.usageSource,
          cost: outcome.cost,
          cacheDiscount: billing?.cacheDiscount ?? 0,
          ...(outcome.upstreamCost !== null && { upstreamCost: outcome.upstreamCost }),
          firstTokenAt: result.firstTokenAt,
          endedAt: result.endedAt,
          upstreamId: result.upstreamId,
          finishReason: result.finishReason,
          nativeFinishReason: result.nativeFinishReason,
          error: outcome.error,
          committed: result.committed,
          clientGone: result.clientGone,
          completion,
        },
        overReport: billing?.overReported
          ? { reported: billing.reported, billed: billing.billed, caps: billing.caps, reportedCost: billing.reportedCost, billedCost: billing.breakdown.total }
          : null,
        at: atMs,
      })
      .then((position) => {
        if (position !== null) lastPosition = Math.max(lastPosition, position);
        return position;
      });
  };

  /**
   * A model call (chat or embeddings), tracked from its start: `idle()`, which shutdown waits for, also waits for calls
   * still running (one whose client just left is no request in flight for the HTTP drain), so each is charged and
   * recorded once before the stores close.
   */
  const trackedCall = async <T>(call: () => Promise<T>): Promise<T> => {
    let running!: () => void;
    track(new Promise<void>((resolve) => (running = resolve)));
    try {
      return await call();
    } finally {
      running();
    }
  };

  const execute = (prepared: PreparedGeneration, options: ExecuteOptions = {}): Promise<GenerationOutcome> =>
    trackedCall(async () => {
      const outcome = await run(prepared, options);
      // Refused or failed before a charge: the key may be sent again.
      if (outcome.kind === 'failed' && outcome.cost === 0) await giveBack(prepared.input);
      return outcome;
    });

  const run = async (prepared: PreparedGeneration, options: ExecuteOptions): Promise<GenerationOutcome> => {
    const { input, plan } = prepared;
    // Only the committing attempt's chunks reach onChunk, so what they carry is the answer: at most the router's
    // maxOutputChars, which bounds what is kept here.
    let streamed = '';
    let reasoning = '';
    const { onChunk } = options;
    const logContent = deps.contentLog?.enabled(input.principal.accountId) === true;
    const keep = (input.keepCompletion === true || logContent) && input.parsed.stream;
    // debug.echo_upstream_body: the bodies sent to the providers tried, delivered as chunks before the first token.
    const echoed: { target: RouteTarget; body: unknown }[] | null = input.parsed.echoUpstreamBody && onChunk ? [] : null;
    let deliver = onChunk;
    if (echoed && onChunk) {
      deliver = (chunk) => {
        for (const { target, body } of echoed.splice(0)) {
          onChunk({ id: input.generationId, object: 'chat.completion.chunk', created: prepared.created, model: target.model, choices: [], provider: target.endpoint.provider.name, debug: { echo_upstream_body: body } });
        }
        return onChunk(chunk);
      };
    }
    const ran = await router.run(plan.targets, prepared.request, {
      stream: input.parsed.stream,
      carriage: prepared.carriage,
      meta: { id: input.generationId, created: prepared.created },
      deadline: prepared.startedAt + config.requestTimeoutMs,
      ready: prepared.durable,
      ...(deps.hurry && { hurry: deps.hurry }),
      ...(options.signal && { signal: options.signal }),
      ...(options.stillReading && { stillReading: options.stillReading }),
      ...(echoed && { onUpstreamBody: (target: RouteTarget, body: unknown) => void echoed.push({ target, body }) }),
      ...(keep
        ? {
            onChunk: (chunk: ChatChunk) => {
              const delta = chunk.choices[0]?.delta;
              streamed += delta?.content ?? '';
              reasoning += delta?.reasoning ?? '';
              return deliver?.(chunk);
            },
          }
        : deliver && { onChunk: deliver }),
    });
    const healedOrRan = input.parsed.responseHealing && input.parsed.needs.json ? healed(ran) : ran;
    // A whole call whose client left while it ran: completed and charged all the same, but undelivered.
    const result = !healedOrRan.clientGone && options.clientGone?.() === true ? extend(healedOrRan, { clientGone: true }) : healedOrRan;
    const message = result.response?.choices[0]?.message;
    // A stream its client left (read on from a provider that cannot cancel) was not all seen: its text is not kept.
    const completion = input.keepCompletion !== true || result.kind !== 'completed' ? null : keep ? (result.clientGone ? null : streamed) : (message?.content ?? '');
    const { source, billing } = account(prepared, result);
    const target = result.target;
    // An answer its provider ended with an error mid-generation (`result.error`) is no success to pin to, as it is none
    // for the endpoint's breaker (router.ts `answered`): a pin already there stays, as after any failed attempt.
    if (result.kind === 'completed' && result.error === null && target && billing && !plan.ordered) sticky.record(target, input.principal.accountId, input.parsed, billing.usage);
    let error: GatewayError | null = null;
    if (result.refused !== undefined) error = refusal(result.refused, prepared);
    // A whole answer its provider ended with an error mid-generation is still the answer (partial content, billed on
    // the provider's usage), carrying the error as OpenRouter's `choices[0].error`.
    else if (result.kind === 'failed' || result.error !== null) {
      error = result.error
        ? fromProviderError(result.error, {
            providerName: target?.endpoint.provider.name ?? 'the provider',
            providerSlug: target?.endpoint.provider.slug ?? '',
            model: target?.model ?? input.parsed.models[0]!,
            attempts: result.attempts.length,
            cooldownLeftMs: cooldownLeft(plan.targets),
            byok: target?.byok,
          })
        : new GatewayError(503, 'provider_unavailable', 'No provider could serve the request', {}, cooldownLeft(plan.targets));
    }
    const outcome: GenerationOutcome = {
      generationId: input.generationId,
      kind: result.kind,
      model: target?.model ?? null,
      providerName: target?.endpoint.provider.name ?? null,
      providerSlug: target?.endpoint.provider.slug ?? null,
      response: result.response,
      usage: billing?.usage ?? ZERO_USAGE,
      usageSource: source,
      cost: billing && target ? chargeOf(target, billing.breakdown.total) : 0,
      upstreamCost: billing && target?.byok ? billing.breakdown.total : null,
      costBreakdown: billing?.breakdown ?? null,
      committed: result.committed,
      finishReason: result.kind === 'failed' ? 'error' : result.finishReason,
      error,
      attempts: result.attempts,
      healed: healedOrRan !== ran,
    };
    const { generationId } = prepared.input;
    if (logContent) {
      // What reached the client: the streamed text (a cut stream's part of it), or the whole answer's message.
      const output = !result.committed
        ? { completion: null, reasoning: null }
        : input.parsed.stream
          ? { completion: streamed, reasoning: reasoning || null }
          : { completion: contentText(message?.content ?? null), reasoning: message?.reasoning || null };
      const content = { generationId: input.generationId, accountId: input.principal.accountId, createdAt: new Date(prepared.startedAt).toISOString(), input: { messages: prepared.request.messages }, output };
      // Never rejects: a content store that fails costs the content, logged, not the process or the record. Logging
      // turned off meanwhile drops it: here (this process's directory), and in the store, which refuses the content
      // of a call started before the account turned logging off or deleted its content (any process's).
      void afterAnswer(() =>
        deps.contentLog!.enabled(input.principal.accountId)
          ? deps.contentLog!.store.put(content).catch((error: unknown) => {
              logger.error({ err: error, generationId: input.generationId }, 'could not store a generation’s content (input & output logging)');
            })
          : Promise.resolve(),
      );
    }
    const recorded = afterAnswer(() => finalize(prepared, result, outcome, billing, completion));
    recording.set(generationId, recorded);
    noteWrites(input.principal.accountId, recorded);
    void recorded.finally(() => recording.delete(generationId)).catch(() => undefined);
    return outcome;
  };

  /**
   * One embeddings call: route (an embeddings model's endpoints, by the chat rules), reserve the input's worst case,
   * try the targets in order (a retryable failure moves on), settle per input token and record the generation.
   */
  const embed = (input: EmbedInput): Promise<EmbedOutcome> => trackedCall(() => underClaim(input, () => embedCall(input)));

  const embedCall = async (input: EmbedInput): Promise<EmbedOutcome> => {
    const { generationId, principal, parsed } = input;
    const startedAt = now();
    const chatLike: ParsedChat = {
      request: { model: parsed.request.model, messages: [] },
      models: [parsed.request.model],
      provider: parsed.provider,
      stream: false,
      promptTokens: parsed.promptTokens,
      maxPromptTokens: parsed.maxPromptTokens,
      usedParameters: [],
      needs: { tools: false, vision: false, json: false, files: false, audio: false },
      media: NO_MEDIA,
      lastUserText: '',
      autoRouter: null,
      responseHealing: false,
      contextCompression: false,
      echoUpstreamBody: false,
      session: () => generationId,
      sessionId: null,
    };
    const plan = planRoute({ catalog, output: 'embeddings', breakers, stats: deps.stats, parsed: chatLike, account: accountPreferences(principal), byok: byokRoute(principal), nowMs: startedAt, random: balanceDraw });
    const targets = plan.targets.filter((t) => t.endpoint.provider.protocol !== 'anthropic');
    if (targets.length === 0) throw new GatewayError(404, 'not_found', `No endpoint of ${parsed.request.model} serves embeddings`, { model: parsed.request.model });
    // Input tokens only, at most one per UTF-8 byte: the reservation covers any count an upstream can report.
    const { amount, keyAmount, freeModel } = reservationFor(targets, parsed.maxPromptTokens, byokInLimitOf(principal), 0);
    try {
      await ledger.reserve({ accountId: principal.accountId, keyId: principal.keyId, generationId, amount, ...(keyAmount !== undefined && { keyAmount }), freeModel });
    } catch (error) {
      if (!(error instanceof InsufficientCreditsError || error instanceof KeyLimitReachedError)) throw error;
      const source = error instanceof KeyLimitReachedError ? 'key_limit' : 'credits';
      throw new GatewayError(
        402,
        'payment_required',
        `This request requires more credits: its input may count up to ${parsed.maxPromptTokens} tokens, which costs up to ${formatUsd(amount)}, and ${formatUsd(Math.max(0, budgetOf(error)))} is available. ` +
          (source === 'key_limit' ? "Raise this key's limit, wait for it to reset, or send less input." : 'Add credits (purchaseCredits) or send less input.'),
        { ...error.metadata, limit_source: source, max_input_tokens: parsed.maxPromptTokens, required: amount, model: targets[0]!.model },
        undefined,
        error.code,
      );
    }
    input.onReserved?.();
    const attempts: AttemptFacts[] = [];
    let served: { target: RouteTarget; vectors: readonly (readonly number[])[]; promptTokens: number; usageSource: 'provider' | 'estimated' } | null = null;
    let failure: ProviderError | null = null;
    for (const target of targets) {
      if (input.shutdown?.aborted) break;
      const attemptStart = now();
      try {
        const result = await callEmbeddings(target, parsed.request, input.shutdown);
        // A count that is no token count (negative, as chat's countsAreTokens reads it) is no report: the estimate, never free.
        const reported = result.promptTokens !== null && countsAreTokens({ prompt_tokens: result.promptTokens, completion_tokens: 0, total_tokens: result.promptTokens }) ? result.promptTokens : null;
        served = { target, vectors: result.vectors, promptTokens: reported ?? parsed.promptTokens, usageSource: reported === null ? 'estimated' : 'provider' };
        breakers.success(target.endpoint.id);
        attempts.push({ attempt: attempts.length + 1, target, startedAt: attemptStart, endedAt: now(), error: null, countsAgainstUptime: false, afterFirstToken: false });
        break;
      } catch (error) {
        // Cut by the shutdown: not the upstream's failure (no breaker, no attempt's error), and no next target.
        if (input.shutdown?.aborted) break;
        // As on chat (router.ts): an upstream may quote back the key it was sent.
        const providerError = redactProviderError(upstreamFailure(target.endpoint.provider.name, error, 'the request failed'), credentialsOf(target));
        failure = providerError;
        if (countsAgainstUptime(providerError, target)) breakers.failure(target.endpoint.id, now());
        attempts.push({
          attempt: attempts.length + 1,
          target,
          startedAt: attemptStart,
          endedAt: now(),
          error: { code: providerError.code, status: providerError.status, retryable: providerError.retryable, message: providerError.message },
          countsAgainstUptime: countsAgainstUptime(providerError, target),
          afterFirstToken: false,
        });
        // A request error ends the call; a refused own key (BYOK) goes on to the shared key, as on chat.
        if (!providerError.retryable && !ownKeyRefused(providerError, target)) break;
      }
    }
    const target = served?.target ?? targets[attempts.length - 1] ?? targets[0]!;
    const billing = served
      ? billUsage({ prompt_tokens: served.promptTokens, completion_tokens: 0, total_tokens: served.promptTokens }, target.endpoint.prices, {
          promptTokens: target.endpoint.contextLength * parsed.request.input.length,
          completionTokens: 0,
          cost: listBudgetOf(target, amount),
        })
      : null;
    const error = served
      ? null
      : input.shutdown?.aborted
        ? shuttingDown()
        : failure === null
          ? null
          : fromProviderError(failure, { providerName: target.endpoint.provider.name, providerSlug: target.endpoint.provider.slug, model: target.model, attempts: attempts.length, cooldownLeftMs: cooldownLeft(targets), byok: target.byok });
    const usage = billing?.usage ?? ZERO_USAGE;
    const cost = billing ? chargeOf(target, billing.breakdown.total) : 0;
    const upstreamCost = billing && target.byok ? billing.breakdown.total : undefined;
    const endedAt = now();
    const clientGone = input.clientGone?.() === true;
    const work = (async () => {
      const charge = served
        ? ledger.settle({
            accountId: principal.accountId,
            generationId,
            actual: cost,
            usage: { model: target.model, provider: target.endpoint.provider.slug, promptTokens: usage.prompt_tokens, completionTokens: 0, reasoningTokens: 0, cachedTokens: 0 },
            ...(upstreamCost !== undefined && { byok: { upstreamCost } }),
          })
        : ledger.release({ accountId: principal.accountId, generationId, reason: error?.message ?? 'failed' });
      // Recorded once charged, as chat's are (finalize).
      await charge;
      return deps.generations
        .record({
          generationId,
          principal,
          correlationId: input.correlationId,
          apiType: 'embeddings',
          models: [parsed.request.model],
          provider: null,
          stream: false,
          user: parsed.request.user ?? null,
          router: null,
          workflow: null,
          app: input.app ?? null,
          promptTokensEstimate: parsed.promptTokens,
          promptMedia: NO_MEDIA,
          sessionId: null,
          reserved: amount,
          startedAt,
          attempts,
          end: {
            kind: served ? 'completed' : 'failed',
            target,
            usage,
            usageSource: served?.usageSource ?? 'estimated',
            cost,
            cacheDiscount: billing?.cacheDiscount ?? 0,
            ...(upstreamCost !== undefined && { upstreamCost }),
            firstTokenAt: served ? endedAt : null,
            endedAt,
            upstreamId: null,
            finishReason: served ? 'stop' : 'error',
            nativeFinishReason: null,
            error: error ? { errorType: error.errorType, status: error.status, message: error.message } : null,
            committed: served !== null,
            clientGone,
            completion: null,
          },
          overReport: null,
          at: endedAt,
        })
        .then((position) => {
          if (position !== null) lastPosition = Math.max(lastPosition, position);
          return position;
        });
    })().catch((err: unknown) => {
      logger.error({ err, generationId }, 'could not settle or record an embeddings call');
      return null;
    });
    track(work.then(() => undefined));
    // Its record is on its way (recordOf) from before its settlement is appended, as a chat call's.
    recording.set(generationId, work);
    void work.finally(() => recording.delete(generationId));
    noteWrites(principal.accountId, work);
    if (!served) throw error ?? new GatewayError(503, 'provider_unavailable', 'No provider could serve the request');
    return { generationId, model: target.model, providerName: target.endpoint.provider.name, vectors: served.vectors, usage, cost, upstreamCost: upstreamCost ?? null };
  };

  const callEmbeddings = async (target: RouteTarget, request: EmbeddingRequest, shutdown: AbortLike | undefined) => {
    const { endpoint } = target;
    const { protocol } = endpoint.provider;
    if (protocol === 'demo') return { vectors: request.input.map((text) => demoEmbedding(text, request.dimensions ?? DEMO_EMBEDDING_DIMENSIONS)), promptTokens: null };
    // Routing keeps embeddings away from Anthropic (embed's targets): never called there.
    if (protocol === 'anthropic') throw new ProviderError({ code: 'bad_request', status: 400, retryable: false, message: 'Anthropic has no embeddings API' });
    const adapter = ADAPTERS[protocol];
    const upstreamRequest = buildUpstreamRequest(endpoint.provider.name, () => buildEmbeddingRequest(protocol, request, { baseUrl: endpoint.provider.baseUrl, upstreamModel: endpoint.upstreamModel, ...(target.apiKey !== null && { apiKey: target.apiKey }), headers: { ...endpoint.provider.headers } }));
    const timeout = AbortSignal.timeout(config.requestTimeoutMs);
    // The request's deadline, or the shutdown's, whichever comes first.
    const signal = new Cancellation();
    const onTimeout = () => signal.abort(timeout.reason);
    const onShutdown = () => signal.abort(shutdown?.reason);
    timeout.addEventListener('abort', onTimeout, { once: true });
    shutdown?.addEventListener('abort', onShutdown, { once: true });
    let text: string;
    try {
      const res = await deps.upstream.post(upstreamRequest.url, upstreamRequest.headers, upstreamRequest.body, signal, { guarded: !endpoint.provider.trusted });
      if (res.status < 200 || res.status > 299) throw adapter.mapError(res.status, res.headers, await readErrorText(res.body), now());
      text = await deps.upstream.readAnswer(res.body);
    } finally {
      timeout.removeEventListener('abort', onTimeout);
      shutdown?.removeEventListener('abort', onShutdown);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return parseEmbeddingResponse(protocol, json, request.input.length);
  };

  /**
   * OpenRouter: a request without `model` (and without `models`) is answered by the account's default model. The same
   * body, unread beyond two fields, when it names one; the directory (in memory) is asked only when it names none.
   */
  const withDefaultModel = (body: unknown, accountId: string): unknown => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
    const { model, models } = body as { model?: unknown; models?: unknown };
    // An empty `models` names no model either (as the parser reads it).
    if (model != null || (models != null && !(Array.isArray(models) && models.length === 0))) return body;
    const fallback = deps.directory?.account(accountId)?.defaultModel;
    if (!fallback) throw invalidRequest(NO_DEFAULT_MODEL, { param: 'model' });
    return { ...body, model: fallback };
  };

  return {
    embed,
    catalog,
    withDefaultModel,
    vault: deps.vault,
    upstream: deps.upstream,
    breakers,
    stats: deps.stats,
    presets: deps.presets ?? NO_PRESETS,
    prepare,
    execute,
    generate: async (input: GenerateInput, options?: ExecuteOptions) => execute(await prepare(input), options),
    /**
     * The position of a generation's record if this process answered it and is still appending the record (held for
     * the next reservation's commit), once appended; null when it is not being written here (or could not be).
     */
    recordOf: (generationId: string): Promise<number | null> => recording.get(generationId) ?? Promise.resolve(null),
    /**
     * Read your writes for the read models of calls (usage, generations): resolves once the account's last call
     * answered by this process is settled and recorded and the read models hold both. At once when there is none, or
     * it is already applied (one map lookup): only a query right after a call waits.
     */
    async readYourWrites(accountId: string): Promise<void> {
      const done = accountWrites.get(accountId);
      if (done === undefined || !deps.waitForReadModels) return;
      await done.catch(() => undefined);
      // Settled and recorded: both positions are at most these (a little later at worst: another account's append).
      const applied = await deps.waitForReadModels(Math.max(lastPosition, ledger.lastPosition ?? 0));
      if (applied && accountWrites.get(accountId) === done) accountWrites.delete(accountId);
    },
    /** Resolves when every settle and generation append started so far is done and applied by the read models. */
    async idle(): Promise<void> {
      // Said, as a stop can wait here for an upstream that is slow to answer (up to the request timeout).
      if (pending.size > 0) logger.info({ pending: pending.size }, 'waiting for the model calls in flight to end, be charged and recorded');
      while (pending.size > 0) await Promise.allSettled([...pending]);
      // The settlements' appends too: the ledger may send one after the generation's record.
      const upTo = Math.max(lastPosition, ledger.lastPosition ?? 0);
      if (upTo > 0 && deps.waitForReadModels) await deps.waitForReadModels(upTo);
    },
  };
};

export type Gateway = ReturnType<typeof createGateway>;
