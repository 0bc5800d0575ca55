/**
 * Routing, the I/O half: try the planned targets in order with bounded retries (backoff with jitter, honouring
 * Retry-After), a circuit breaker per endpoint, a first-token timeout per attempt, an idle timeout between chunks
 * and a deadline for the whole request. Fallback happens only before the first token reaches the client; after it
 * a failure ends the stream. Cancellation (client gone) aborts the upstream fetch, unless the serving provider cannot
 * cancel (it bills the whole answer whatever happens): then its answer is read to the end, undelivered, and billed.
 *
 * This is the only place that does upstream I/O: upstream.ts (node:http, keep-alive) + readSse + the pure adapters,
 * or the in-process demo model. Per attempt it allocates one Cancellation (src/cancellation.ts) and two timers; per
 * streamed chunk, one JSON.parse (in the adapter) and the chunk objects the adapter returns, nothing else.
 */
import { Cancellation, type AbortLike } from '../cancellation.js';
import { extend } from '../objects.js';
import type { ProviderErrorCode } from './types.js';
import type { ResponseMeta, StreamOutcome, UpstreamRequest } from './providers/adapter.js';
import { demoComplete, demoStream } from './providers/demo/demoProvider.js';
import { ADAPTERS } from './providers/registry.js';
import type { Breakers } from './breaker.js';
import type { RouteTarget } from './routePlan.js';
import { credentialsOf, redactProviderError } from './redactCredentials.js';
import { AnswerBudgetError, MAX_ANSWER_BYTES, UnreadableAnswerError, readErrorText, unreadableReason, type UpstreamClient } from './upstream.js';
import { readSse, SseTooLargeError } from './sse.js';
import { withSupportedParameters } from './parameterNames.js';
import { malformedResponse, parseJson, unreadableAnswer } from './providers/common.js';
import { bodyMessage, providerError } from './providers/httpErrors.js';
import {
  ProviderError,
  type ChatChunk,
  type ChatRequest,
  type ChatResponse,
  type ChoiceLogprobs,
  type ChunkDelta,
  type FinishReason,
  type ReasoningDetail,
  type ResponseMessage,
  type Usage,
} from './types.js';

export interface RouterConfig {
  readonly firstTokenTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxAttempts: number;
  readonly maxRetryAfterMs: number;
  readonly backoffBaseMs: number;
  readonly demoTokenDelayMs: number;
}

export interface AttemptRecord {
  readonly attempt: number;
  readonly target: RouteTarget;
  readonly startedAt: number;
  endedAt: number;
  /** Why it failed; for the attempt that answered, the error its provider ended the answer with mid-generation, if any. */
  error: ProviderError | null;
  afterFirstToken: boolean;
}

export interface RunResult {
  readonly kind: 'completed' | 'failed' | 'cancelled';
  /** The target that served (completed), broke mid-stream, or was last tried. */
  readonly target: RouteTarget | null;
  readonly attempts: readonly AttemptRecord[];
  readonly response: ChatResponse | null;
  /** Provider-reported usage, when it arrived. */
  readonly usage: Usage | null;
  /** Characters of generated text seen (content, reasoning, tool-call arguments), to estimate tokens without usage. */
  readonly completionChars: number;
  /**
   * Whether a token reached the client (streaming), or the answer was received (non-streaming); after the client went
   * away from a provider read on (clientGone), whether a token came: either way, the point past which it is billed.
   */
  readonly committed: boolean;
  readonly firstTokenAt: number | null;
  readonly endedAt: number;
  readonly finishReason: FinishReason | null;
  readonly nativeFinishReason: string | null;
  readonly upstreamId: string | null;
  /**
   * Why it failed (the last attempt's error); null when cancelled, and when completed unless the provider ended the
   * whole answer with an error mid-generation (finish_reason "error", OpenRouter's `choices[0].error`): that error.
   */
  readonly error: ProviderError | null;
  /** Set when `ready` rejected: its error. The run then failed with nothing delivered. */
  readonly refused?: unknown;
  /**
   * The client went away while a provider that cannot cancel was serving: the attempt was not aborted but read on to
   * its end (or its failure), delivering nothing more, so that it is billed on what the provider billed. (The gateway
   * sets it too for a whole call whose client left: ExecuteOptions.clientGone.)
   */
  readonly clientGone: boolean;
}

export interface RunOptions {
  readonly stream: boolean;
  /** The `gen-…` id, created time and (per target) model go on every response and chunk. */
  readonly meta: { readonly id: string; readonly created: number };
  /**
   * Aborts when the client goes away (streaming only: a non-streaming call runs to completion and is billed). An
   * attempt on a provider that is not cancellable is not aborted: it stops delivering and is read to its end.
   */
  readonly signal?: AbortLike;
  /** Wall-clock deadline (ms since epoch) for all attempts together. */
  readonly deadline: number;
  /**
   * Streaming: receives each chunk once the first token has arrived; the first call is the point of no fallback. A
   * Promise back (any other value is ignored) says delivery is full, the client not reading: the upstream is not read
   * until it resolves, and the idle timer does not count that wait against the provider. If the call's deadline passes
   * after such a wait, `stillReading` says what the client is.
   */
  readonly onChunk?: (chunk: ChatChunk) => void | Promise<void>;
  /**
   * Asked once, when the call's deadline passes and delivery had to wait for the client (it reads slower than the
   * provider sends): whether it is still reading. Yes: delivery is not waited for any more and the upstream is read to
   * its end, the provider given back the time it was held (at most READ_ON_MAX_MS), so the answer completes (what the
   * client has not taken is the caller's to keep, within maxOutputChars). No, or unset: the client is taken for gone
   * (the attempt is aborted and the run cancelled).
   */
  readonly stillReading?: () => boolean;
  readonly onAttempt?: (record: AttemptRecord) => void;
  /** A stream's attempt is about to send this body to the target's provider (the demo: the chat request). */
  readonly onUpstreamBody?: (target: RouteTarget, body: unknown) => void;
  /**
   * Delivery waits for it (the ledger's reservation becoming durable while the upstream works): a streamed answer's
   * first chunk and a whole answer are held until it resolves. If it rejects, the attempt in flight is aborted and
   * the run fails with `refused` set; nothing reached the client.
   */
  readonly ready?: Promise<void>;
  /** Called when delivery finds `ready` still waiting: the store may have put off the fsync it waits for. */
  readonly hurry?: () => void;
  /** The targets' requests as the reservation decided them (for this request and `stream`); absent, built here. */
  readonly carriage?: Carriage;
}

/**
 * What one generation may deliver, in characters of everything it forwards of a choice (outputOf: content,
 * reasoning, tool calls, a refusal, reasoning details, ... ; logprobs apart, below), from the max output tokens its
 * reservation covers: 32 a token (eight times English's ~4; a token of a long whitespace run or a repeated symbol is
 * rarely past 16; reasoning sent twice, as text and as a detail, fits), at least 1 Mi (a small max_tokens is never cut
 * for a few long tokens), at most 16 Mi (half a million tokens at that rate, beyond any model's output; a quarter of
 * MAX_ANSWER_BYTES, the whole answer Switchyard reads). A provider that sends more ignored max_tokens (or loops): the
 * attempt ends there as its failure (`output_too_long`), billed as a cut stream is, within the reservation. This is
 * what bounds what one generation holds in memory and on disk (a kept completion for content logging or a workflow
 * step, a live feed's replay for startGeneration, an answer kept for a slow client past the deadline) and sends its
 * client.
 */
export const OUTPUT_CHARS_PER_TOKEN = 32;
export const MIN_OUTPUT_CHARS = 1024 * 1024;
export const MAX_OUTPUT_CHARS = MAX_ANSWER_BYTES / 4;
export const maxOutputChars = (maxOutputTokens: number): number => Math.min(MAX_OUTPUT_CHARS, Math.max(MIN_OUTPUT_CHARS, maxOutputTokens * OUTPUT_CHARS_PER_TOKEN));
/**
 * Logprobs (their JSON) are bounded apart: asked for, each token brings 1 + top_logprobs entries of up to 256
 * characters (a 32-character token, its UTF-8 bytes as numbers, its logprob and their keys), at most MAX_ANSWER_BYTES
 * in all (what a whole answer may be); not asked for, as much as the rest may be.
 */
export const LOGPROB_ENTRY_CHARS = 256;
export const maxLogprobChars = (maxOutputTokens: number, request: Pick<ChatRequest, 'logprobs' | 'top_logprobs'>): number => {
  const rest = maxOutputChars(maxOutputTokens);
  if (request.logprobs !== true) return rest;
  return Math.min(MAX_ANSWER_BYTES, Math.max(rest, maxOutputTokens * (1 + (request.top_logprobs ?? 0)) * LOGPROB_ENTRY_CHARS));
};

const outputTooLong = (provider: string, maxTokens: number, out: Output, maxChars: number, maxLogprobs: number) => {
  const detail =
    out.chars > maxChars
      ? `the answer passed ${maxChars} characters, more than ${maxTokens} tokens can hold`
      : `the answer's logprobs passed ${maxLogprobs} characters, more than ${maxTokens} tokens can hold`;
  return new ProviderError({ code: 'output_too_long', status: 502, retryable: false, message: `${provider}: ${detail}`, detail, provider });
};

/**
 * After the deadline, an attempt held back by a slow client that still reads has at most this long to send the rest:
 * half the minute a reservation outlives the request timeout (config.ts reservationTtlMs), so that it is settled
 * before it expires.
 */
export const READ_ON_MAX_MS = 30_000;

const MAX_TRIES_PER_TARGET = 2;
const MAX_BACKOFF_MS = 8_000;

/** `ended`: the attempt is over; whatever of its answer is still coming is not wanted (its connection is destroyed). */
type AbortKind = 'client' | 'first_token' | 'idle' | 'deadline' | 'refused' | 'ended';
class AttemptAbort extends Error {
  constructor(readonly kind: AbortKind) {
    super(`attempt aborted: ${kind}`);
  }
}
/**
 * One reason per kind, made once: only its kind is read, and every attempt ends with `ended` (an Error made per attempt
 * cost ~5 µs of the request thread for its stack trace).
 */
const ATTEMPT_ABORTS: { readonly [K in AbortKind]: AttemptAbort } = {
  client: new AttemptAbort('client'),
  first_token: new AttemptAbort('first_token'),
  idle: new AttemptAbort('idle'),
  deadline: new AttemptAbort('deadline'),
  refused: new AttemptAbort('refused'),
  ended: new AttemptAbort('ended'),
};

/** Errors that say nothing about the endpoint's health (the request was wrong, or never sent): they do not trip its breaker. */
const REQUEST_ERRORS: ReadonlySet<ProviderErrorCode> = new Set(['bad_request', 'context_length', 'content_filter', 'internal', 'capacity']);
/** On the account's own key (BYOK), refusing that key says nothing about the endpoint either (another account's key works). */
const OWN_KEY_ERRORS: ReadonlySet<ProviderErrorCode> = new Set(['auth', 'payment_required']);
export const countsAgainstUptime = (error: ProviderError, target: Pick<RouteTarget, 'byok'>): boolean =>
  !REQUEST_ERRORS.has(error.code) && !(target.byok && OWN_KEY_ERRORS.has(error.code));
/** The account's own key (BYOK) was refused: the same endpoint may still serve on its shared key (then the next target). */
export const ownKeyRefused = (error: ProviderError, target: Pick<RouteTarget, 'byok'>): boolean => target.byok && OWN_KEY_ERRORS.has(error.code);

/**
 * The provider's request, built by `build`: whatever that throws happened before anything was sent, so it is
 * Switchyard's failure (`internal`: a 500, no retry, no breaker), never a connection error charged to the provider;
 * except the adapter's own refusal of what the client sent (`badRequest`): what that protocol cannot carry, which the
 * router takes as a reason to skip that target (chat: `cannotCarry` in run), a 400 when no target can carry it.
 */
export const buildUpstreamRequest = <T>(provider: string, build: () => T): T => {
  try {
    return build();
  } catch (error) {
    // The adapter refusing what the client sent (audio for Anthropic, tool arguments that are no JSON object).
    if (error instanceof ProviderError && error.code === 'bad_request') throw error;
    throw new ProviderError({ code: 'internal', status: 500, retryable: false, message: `${provider}: the request could not be built (${error instanceof Error ? error.message : String(error)})`, provider, cause: error });
  }
};

/** A target's request as it is sent: the chat request for it (forTarget) and, but for the in-process demo, its provider's. */
interface Prepared {
  readonly request: ChatRequest;
  readonly upstream: UpstreamRequest | null;
}

/**
 * The request as this target takes it: with the conversation compressed for it, reasoning `:thinking` turned on
 * (routePlan.ts), and without the parameters the endpoint does not list.
 */
const forTarget = (request: ChatRequest, target: RouteTarget): ChatRequest => {
  if (target.messages !== undefined) request = extend(request, { messages: target.messages });
  if (target.reasoning !== undefined) request = extend(request, { reasoning: target.reasoning });
  return withSupportedParameters(request, target.endpoint.supportedParameters);
};

/**
 * The target's request and its provider's, built by its protocol's adapter (the demo takes the chat request itself).
 * Throws what buildUpstreamRequest throws: the adapter's refusal (bad_request), else an internal error.
 */
const prepare = (target: RouteTarget, request: ChatRequest, stream: boolean): Prepared => {
  const { endpoint } = target;
  const { protocol } = endpoint.provider;
  request = forTarget(request, target);
  if (protocol === 'demo') return { request, upstream: null };
  const adapter = ADAPTERS[protocol];
  const upstream = buildUpstreamRequest(endpoint.provider.name, () =>
    adapter.buildRequest(
      extend(request, { stream }),
      { baseUrl: endpoint.provider.baseUrl, upstreamModel: endpoint.upstreamModel, ...(target.apiKey !== null && { apiKey: target.apiKey }), headers: { ...endpoint.provider.headers }, maxOutputTokens: target.maxOutput },
    ),
  );
  return { request, upstream };
};

/** The adapter's refusal of what the client sent: what the target's protocol cannot carry. */
const isRefusal = (error: unknown): error is ProviderError => error instanceof ProviderError && error.code === 'bad_request';

/**
 * Whether each target can carry one call's request (`request`, streamed or not), decided once for both who ask: the
 * gateway's reservation, which covers only the targets that can (a dear endpoint that will refuse must not price the
 * caller out of the one that answers), and the router, which skips those that cannot. The decision is the build
 * itself (the adapter's refusal), kept for the router to send; a target whose protocol refuses nothing (OpenAI's, the
 * demo: ProviderAdapter.refuses) carries it without being built here, so a call whose endpoints all speak such a
 * protocol builds nothing more than before.
 */
export interface Carriage {
  readonly request: ChatRequest;
  readonly stream: boolean;
  /**
   * Known without building anything more: true (it carries it: its protocol refuses nothing, or it was built), the
   * adapter's refusal, or undefined (not decided yet).
   */
  known(target: RouteTarget): true | ProviderError | undefined;
  /** Decides (builds the target's request if its protocol may refuse it): false only when its adapter refused it. */
  carries(target: RouteTarget): boolean;
  /** The target's request, as built when the reservation asked, else now; throws what building it threw. */
  build(target: RouteTarget): Prepared;
}

/** What building a target's request gave: its request, or what the build threw. */
type Built = Prepared | { readonly failure: unknown };
/** An internal failure to build is no refusal: the target is tried, and that failure is its attempt's (router.run). */
const decisionOf = (got: Built): true | ProviderError => ('failure' in got && isRefusal(got.failure) ? got.failure : true);

/** One object per call (its methods shared), and a Map only once a target whose protocol may refuse is decided. */
class CallCarriage implements Carriage {
  private built: Map<RouteTarget, Built> | undefined;
  constructor(
    readonly request: ChatRequest,
    readonly stream: boolean,
  ) {}

  known(target: RouteTarget): true | ProviderError | undefined {
    const { protocol } = target.endpoint.provider;
    if (protocol === 'demo' || !ADAPTERS[protocol].refuses) return true;
    const got = this.built?.get(target);
    return got === undefined ? undefined : decisionOf(got);
  }

  carries(target: RouteTarget): boolean {
    const said = this.known(target);
    if (said !== undefined) return said === true;
    let got: Built;
    try {
      got = prepare(target, this.request, this.stream);
    } catch (failure) {
      got = { failure };
    }
    (this.built ??= new Map()).set(target, got);
    return decisionOf(got) === true;
  }

  build(target: RouteTarget): Prepared {
    const got = this.built?.get(target);
    if (got === undefined) return prepare(target, this.request, this.stream);
    if ('failure' in got) throw got.failure;
    return got;
  }
}

export const carriageOf = (request: ChatRequest, stream: boolean): Carriage => new CallCarriage(request, stream);

const timeoutError = (provider: string, what: string) => new ProviderError({ code: 'timeout', status: 504, retryable: true, message: `${provider}: ${what}`, provider });

/** A message or a delta without its reasoning (`reasoning.exclude`). */
const reasoningLeftOut = <T extends { reasoning?: string | null; reasoning_details?: unknown }>(part: T): Omit<T, 'reasoning' | 'reasoning_details'> => {
  const { reasoning: _text, reasoning_details: _details, ...rest } = part;
  return rest;
};

const withoutReasoning = (response: ChatResponse): ChatResponse =>
  extend(response, { choices: response.choices.map((c) => extend(c, { message: reasoningLeftOut(c.message) })) });

/** A chunk without reasoning deltas; the same object when it has none. Its choices stay (an emptied delta is a chunk still). */
const withoutReasoningDelta = (chunk: ChatChunk): ChatChunk => {
  if (!chunk.choices.some((c) => c.delta.reasoning != null || c.delta.reasoning_details !== undefined)) return chunk;
  return extend(chunk, { choices: chunk.choices.map((c) => extend(c, { delta: reasoningLeftOut(c.delta) })) });
};

const connectionError = (provider: string, cause: unknown, what: string) =>
  new ProviderError({
    code: 'connection',
    status: 502,
    retryable: true,
    message: `${provider}: ${what}${cause instanceof Error ? ` (${(cause.cause as Error | undefined)?.message ?? cause.message})` : ''}`,
    provider,
    cause,
  });

/**
 * What a failed upstream exchange was, when not a ProviderError: an answer Switchyard could not read (the provider's
 * bad answer: not asked for again from that endpoint), one it could not hold (its own limit: no breaker), else a
 * connection failure (`what` says when).
 */
export const upstreamFailure = (provider: string, caught: unknown, what: string): ProviderError => {
  if (caught instanceof ProviderError) return caught;
  if (caught instanceof SseTooLargeError) return malformedResponse(provider, caught.message);
  if (caught instanceof AnswerBudgetError) return new ProviderError({ code: 'capacity', status: 503, retryable: false, message: `${provider}: ${caught.message}`, detail: caught.message, provider });
  const unreadable = unreadableReason(caught);
  return unreadable === undefined ? connectionError(provider, caught, what) : unreadableAnswer(provider, unreadable, caught);
};

/** What an adapter's conversion of an answer threw: unless a ProviderError (a RangeError on JSON nested too deep to walk), the answer was unreadable. */
const notConverted = (error: unknown): Error =>
  error instanceof ProviderError
    ? error
    : new UnreadableAnswerError(`the answer could not be converted (${error instanceof Error ? `${error.name}: ${error.message}` : String(error)})`, { cause: error });

const sleep = (ms: number, signal: AbortLike | undefined) =>
  new Promise<boolean>((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * The error the provider ended a streamed answer with (StreamOutcome.error), redacted as any upstream error (it may
 * quote back the key it was sent): the run's error, as a whole answer's `choices[0].error` is. Null when none.
 */
const inBandError = (outcome: StreamOutcome, target: RouteTarget): ProviderError | null => endedWith(outcome.error, outcome.finishReason, outcome.nativeFinishReason, target);

/** The provider's own finish reasons that say it failed the answer: OpenRouter's `error`, vLLM's and SGLang's `abort`. */
const FAILED_ANSWER_REASONS: ReadonlySet<string> = new Set(['error', 'abort']);

/**
 * The error an answer ended with: the provider's, redacted, or, when it finished `error` or `abort` in its own words
 * and said no more, one that says so (a 502: no clean completion, for the record, the breaker and uptime, the sticky
 * pin and a workflow step alike). Null otherwise, also for a reason that only maps to `error` (Gemini's
 * MALFORMED_FUNCTION_CALL or LANGUAGE, which the request or the model causes; a reason no protocol here knows): such
 * an answer is recorded with its finish reason and native reason, as OpenRouter gives it, and blames no endpoint.
 */
const endedWith = (said: ProviderError | undefined, finishReason: FinishReason | null | undefined, native: string | null | undefined, target: RouteTarget): ProviderError | null => {
  if (said !== undefined) return redactProviderError(said, credentialsOf(target));
  if (finishReason !== 'error' || (native != null && !FAILED_ANSWER_REASONS.has(native))) return null;
  return providerError({ provider: target.endpoint.provider.name, status: 502, detail: `it ended the answer with finish reason ${JSON.stringify(native ?? 'error')} mid-generation, without an error saying which` });
};

/** Whether a delta or a whole answer's message carries something generated: text, reasoning, a tool call, a refusal. */
const holdsOutput = (part: ChunkDelta | ResponseMessage): boolean =>
  (part.content !== undefined && part.content !== null && part.content !== '') || !!part.reasoning || !!part.tool_calls || !!part.refusal || !!part.reasoning_details;

const hasPayload = (chunk: ChatChunk): boolean => chunk.choices.some((choice) => !!choice.finish_reason || holdsOutput(choice.delta));

/**
 * What an attempt has forwarded, in characters: `text`, the generated text (content, reasoning, tool-call names and
 * arguments), from which tokens are estimated without usage; `chars`, all of it and everything else a choice carries
 * to the client (a refusal, reasoning details, tool-call ids, the native finish reason and stop sequence, and one for
 * each choice, detail and tool call, so that a flood of empty ones is not free): maxOutputChars bounds it; `logprobs`,
 * their JSON (maxLogprobChars). Every field of ChunkDelta, ChunkChoice and ResponseMessage is counted here, and only
 * here: a field added there is added here.
 */
interface Output {
  text: number;
  chars: number;
  logprobs: number;
}

const detailsChars = (details: readonly ReasoningDetail[]): number => {
  let n = 0;
  for (const detail of details) {
    n += 1 + (detail.format?.length ?? 0) + (detail.id?.length ?? 0);
    if (detail.type === 'reasoning.text') n += (detail.text?.length ?? 0) + (detail.signature?.length ?? 0);
    else if (detail.type === 'reasoning.encrypted') n += detail.data.length;
    else n += detail.summary.length;
  }
  return n;
};

/** One choice's part: what a streamed delta and a whole answer's message have in common. */
const countPart = (out: Output, part: ChunkDelta | ResponseMessage, choice: { native_finish_reason?: string | null; stop_sequence?: string; logprobs?: ChoiceLogprobs | null }) => {
  let text = 0;
  let other = 1;
  if (part.content) text += part.content.length;
  if (part.reasoning) text += part.reasoning.length;
  if (part.tool_calls) for (const call of part.tool_calls) {
    text += (call.function?.arguments?.length ?? 0) + (call.function?.name?.length ?? 0);
    other += 1 + (call.id?.length ?? 0);
  }
  if (part.refusal) other += part.refusal.length;
  if (part.reasoning_details) other += detailsChars(part.reasoning_details);
  if (choice.native_finish_reason) other += choice.native_finish_reason.length;
  if (choice.stop_sequence) other += choice.stop_sequence.length;
  // Only when sent (asked for, or a provider's own): their JSON, which is what goes on.
  if (choice.logprobs) out.logprobs += JSON.stringify(choice.logprobs).length;
  out.text += text;
  out.chars += text + other;
};

const countChunk = (out: Output, chunk: ChatChunk) => {
  for (const choice of chunk.choices) countPart(out, choice.delta, choice);
};

const responseOutput = (response: ChatResponse): Output => {
  const out: Output = { text: 0, chars: 0, logprobs: 0 };
  for (const choice of response.choices) countPart(out, choice.message, choice);
  return out;
};

export const createRouter = (deps: { breakers: Breakers; config: RouterConfig; upstream: UpstreamClient; now?: () => number; random?: () => number }) => {
  const { breakers, config } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;

  /**
   * An attempt that answered: delivered and billed, and never tried again. One its provider ended with an error
   * mid-generation (`error`, after tokens or in a whole answer: OpenRouter's `choices[0].error`) still failed: its
   * record says so, and its endpoint's breaker counts it as the same error before any token would (a 5xx or a 429
   * against it, a request error not at all).
   */
  const answered = (record: AttemptRecord, target: RouteTarget, error: ProviderError | null) => {
    if (error === null) return breakers.success(target.endpoint.id);
    record.error = error;
    record.afterFirstToken = true;
    if (countsAgainstUptime(error, target)) breakers.failure(target.endpoint.id, record.endedAt);
  };

  const run = async (targets: readonly RouteTarget[], request: ChatRequest, options: RunOptions): Promise<RunResult> => {
    // `reasoning.exclude`: the model reasons (and its reasoning tokens are billed), the answer leaves the text out.
    const excludeReasoning = request.reasoning?.exclude === true;
    const shown = excludeReasoning ? withoutReasoningDelta : (chunk: ChatChunk) => chunk;
    const attempts: AttemptRecord[] = [];
    const queue = targets.map((target) => ({ target, tries: 0, readyAt: 0, dead: false }));
    // GATEWAY_MAX_ATTEMPTS holds per requested model (an entry of `models`, whose own length is capped), not for the
    // whole call: a primary's endpoints and retries (its BYOK targets take two: own key, then shared) must not use up
    // what its fallback models need. The total stays bounded: at most maxAttempts × the models asked for.
    const used = new Map<string, number>();
    const budgetLeft = (q: (typeof queue)[number]) => (used.get(q.target.requested) ?? 0) < config.maxAttempts;
    let lastError: ProviderError | null = null;
    let lastTarget: RouteTarget | null = null;
    /** The first target whose protocol could not carry the request (its adapter's refusal): the answer if no target can. */
    let cannotCarry: { readonly target: RouteTarget; readonly error: ProviderError } | null = null;
    const carriage = options.carriage ?? carriageOf(request, options.stream);

    // Streaming state shared across attempts (only the committing attempt ever writes to the client).
    /** Delivery: dropped when the client goes away from a provider that is read on. */
    let onChunk = options.onChunk;
    let clientGone = false;
    let committed = false;
    /** What the last attempt forwarded (only the attempt that commits is the answer). */
    let attemptOutput: Output = { text: 0, chars: 0, logprobs: 0 };
    let firstTokenAt: number | null = null;

    // `ready`: settled once; a rejection aborts the attempt in flight.
    let ready = options.ready ? 'waiting' : 'ok';
    let refused: unknown;
    let abortAttempt: ((kind: AbortKind) => void) | null = null;
    options.ready?.then(
      () => (ready = 'ok'),
      (error: unknown) => {
        ready = 'refused';
        refused = error;
        abortAttempt?.('refused');
      },
    );
    /** Hold delivery until `ready` resolves; throws (into the attempt's catch) if it was refused. */
    const awaitReady = async () => {
      if (ready === 'waiting') {
        options.hurry?.();
        await options.ready!.catch(() => undefined);
      }
      if (ready === 'refused') throw refused;
    };

    const result = (kind: RunResult['kind'], extra: Partial<RunResult> = {}): RunResult => ({
      kind,
      target: lastTarget,
      attempts,
      response: null,
      usage: null,
      completionChars: attemptOutput.text,
      committed,
      firstTokenAt,
      endedAt: now(),
      finishReason: null,
      nativeFinishReason: null,
      upstreamId: null,
      error: kind === 'failed' ? lastError : null,
      clientGone,
      ...extra,
    });

    for (;;) {
      if (options.signal?.aborted) return result('cancelled');
      if (ready === 'refused') return result('failed', { refused });
      let entry = queue.find((q) => q.tries === 0 && !q.dead && budgetLeft(q));
      if (!entry) {
        const retryable = queue.filter((q) => !q.dead && q.tries < MAX_TRIES_PER_TARGET && budgetLeft(q));
        if (retryable.length === 0) break;
        entry = retryable.reduce((a, b) => (b.readyAt < a.readyAt ? b : a));
        const wait = entry.readyAt - now();
        if (now() + Math.max(0, wait) >= options.deadline) break;
        if (wait > 0 && !(await sleep(wait, options.signal))) return result('cancelled');
      }
      const { target } = entry;
      // The request as this target's protocol takes it, built before the try is counted. An adapter that refuses it
      // (what its protocol cannot express: a system prompt alone for Anthropic or Gemini, a thinking budget that does
      // not fit below max_tokens, a media link it cannot send) says nothing of the other targets, whose protocols may
      // carry it: this one is skipped, not attempted (no record, no breaker, none of the model's attempts, nothing sent).
      let prepared: Prepared | undefined;
      let buildFailure: unknown;
      try {
        prepared = carriage.build(target);
      } catch (error) {
        if (isRefusal(error)) {
          entry.dead = true;
          cannotCarry ??= { target, error };
          continue;
        }
        buildFailure = error; // Switchyard's own failure (internal): the attempt's, below
      }
      lastTarget = target;
      const record: AttemptRecord = { attempt: attempts.length + 1, target, startedAt: now(), endedAt: 0, error: null, afterFirstToken: false };
      attempts.push(record);
      options.onAttempt?.(record);
      entry.tries += 1;
      used.set(target.requested, (used.get(target.requested) ?? 0) + 1);
      // Only the attempt that commits counts toward what was generated.
      const output: Output = { text: 0, chars: 0, logprobs: 0 };
      attemptOutput = output;
      const maxChars = maxOutputChars(target.maxOutput);
      const maxLogprobs = maxLogprobChars(target.maxOutput, request);

      const cancel = new Cancellation();
      const abort = (kind: AbortKind) => cancel.abort(ATTEMPT_ABORTS[kind]);
      abortAttempt = abort;
      /** A finish reason came: the answer is whole, and only what follows it (OpenAI's usage, the end marker) is left. */
      let finished = false;
      // A provider that cannot cancel generates (and bills) the whole answer anyway: aborting would only lose its usage.
      // Nor is a whole answer cut for its last chunks: its usage is read on and billed, not an estimate.
      const onClientAbort = () => {
        if (target.endpoint.provider.cancellable && !finished) return abort('client');
        clientGone = true;
        onChunk = undefined;
      };
      options.signal?.addEventListener('abort', onClientAbort, { once: true });
      /** Delivery is full: the upstream is not read (and the idle timer measures nothing) until the client reads. */
      let held = false;
      /** When the wait under way began, and how long the waits before it took. */
      let heldSince = 0;
      let heldMs = 0;
      /** Past the deadline with a client still reading: delivery is no longer waited for (stillReading). */
      let readOn = false;
      let wake: (() => void) | null = null;
      // The deadline keeps the reservation's lifetime (request timeout plus a margin). If the client never held the
      // upstream back, it is the provider's timeout. If it did, the deadline is the client's: one that no longer reads
      // is taken for gone, as if it had left; one still reading gets its answer, the provider the time it was held.
      const onDeadline = () => {
        if (!held && heldMs === 0) return abort('deadline');
        if (options.stillReading?.() !== true) return abort('client');
        readOn = true;
        const owed = heldMs + (held ? now() - heldSince : 0);
        wake?.();
        deadlineTimer = setTimeout(() => abort('deadline'), Math.min(owed, READ_ON_MAX_MS));
      };
      let deadlineTimer = setTimeout(onDeadline, Math.max(0, options.deadline - now()));
      let firstTokenTimer: NodeJS.Timeout | null = setTimeout(() => abort('first_token'), config.firstTokenTimeoutMs);
      let lastDataAt = now();
      let idleTimer: NodeJS.Timeout | null = null;
      const armIdle = () => {
        idleTimer = setTimeout(function check() {
          const idle = now() - lastDataAt;
          if (idle >= config.idleTimeoutMs && !held) abort('idle');
          else idleTimer = setTimeout(check, held ? config.idleTimeoutMs : config.idleTimeoutMs - idle);
        }, config.idleTimeoutMs);
      };
      /** Wait for the client to take what was delivered (`wait`), or for the attempt's end; the provider's clock restarts after. */
      const holdFor = async (wait: Promise<void>) => {
        held = true;
        heldSince = now();
        let resume!: () => void;
        try {
          await new Promise<void>((resolve) => {
            resume = resolve;
            wake = resolve;
            cancel.addEventListener('abort', resolve);
            wait.then(resolve, resolve);
          });
        } finally {
          cancel.removeEventListener('abort', resume);
          wake = null;
          held = false;
          lastDataAt = now();
          heldMs += lastDataAt - heldSince;
        }
        if (cancel.aborted) throw cancel.reason;
      };
      /** `at`: when the first token came from the provider (before the reservation's durability was awaited). */
      const commit = (at = now()) => {
        committed = true;
        firstTokenAt = at;
        if (firstTokenTimer) clearTimeout(firstTokenTimer);
        firstTokenTimer = null;
        armIdle();
      };

      let upstream: Awaited<ReturnType<typeof openStream>> | null = null;
      try {
        const meta: Required<ResponseMeta> = { id: options.meta.id, created: options.meta.created, model: target.model };
        if (prepared === undefined) throw buildFailure;
        if (!options.stream) {
          const { response, upstreamId } = await callComplete(target, prepared, meta, cancel);
          const whole = responseOutput(response);
          if (whole.chars > maxChars || whole.logprobs > maxLogprobs) throw outputTooLong(target.endpoint.provider.name, target.maxOutput, whole, maxChars, maxLogprobs);
          const choice = response.choices[0];
          // The provider's error mid-generation (OpenRouter's `choices[0].error`), redacted as any upstream error.
          const error = endedWith(choice?.error, choice?.finish_reason, choice?.native_finish_reason, target);
          // Ended with an error before anything was generated: its failure before the first token, as a stream's
          // (another endpoint is tried, nothing is charged), not an empty answer.
          if (error !== null && !response.choices.some((c) => holdsOutput(c.message))) throw error;
          await awaitReady();
          record.endedAt = now();
          committed = true;
          firstTokenAt = record.endedAt;
          attemptOutput = whole;
          answered(record, target, error);
          return result('completed', {
            response: excludeReasoning ? withoutReasoning(response) : response,
            usage: response.usage ?? null,
            finishReason: choice?.finish_reason ?? null,
            nativeFinishReason: choice?.native_finish_reason ?? null,
            upstreamId,
            error,
          });
        }
        upstream = await openStream(target, prepared, meta, cancel, options.onUpstreamBody);
        // Every chunk names the provider that wrote it, as OpenRouter's do.
        const provider = target.endpoint.provider.name;
        const named = (chunk: ChatChunk): ChatChunk => extend(shown(chunk), { provider });
        const buffered: ChatChunk[] = [];
        let upstreamId: string | null = null;
        for await (const chunks of upstream.chunks) {
          // Only progress keeps a stream alive: empty deltas sent as a heartbeat count no more than keep-alive comments.
          if (chunks.some((chunk) => chunk.usage !== undefined || hasPayload(chunk))) lastDataAt = now();
          for (const chunk of chunks) {
            countChunk(output, chunk);
            if (output.chars > maxChars || output.logprobs > maxLogprobs) throw outputTooLong(provider, target.maxOutput, output, maxChars, maxLogprobs);
            if (!finished && chunk.choices.some((choice) => choice.finish_reason)) finished = true;
            if (!committed) {
              // An error the provider ended the answer with before its first token is its failure like any other
              // (as a chunk's top-level error, which the parser throws): another try, not an empty answer.
              const first = chunk.choices[0];
              const failed = first && endedWith(first.error, first.finish_reason, first.native_finish_reason, target);
              if (failed) throw failed;
              if (!hasPayload(chunk)) {
                buffered.push(chunk);
                continue;
              }
              // The provider's latency and throughput (its stats, the record) start from its first token, not from
              // the end of this gateway's wait for the reservation's fsync: with a fast stream the whole answer could
              // arrive during that wait, and its throughput then read as unmeasurable.
              const arrivedAt = now();
              await awaitReady();
              commit(arrivedAt);
              for (const early of buffered) {
                const wait = onChunk?.(named(early));
                if (wait instanceof Promise && !readOn) await holdFor(wait);
              }
              buffered.length = 0;
            }
            const wait = onChunk?.(named(chunk));
            if (wait instanceof Promise && !readOn) await holdFor(wait);
          }
        }
        const outcome: StreamOutcome = upstream.finish();
        upstreamId = upstream.upstreamId();
        // Ended before its end marker: a failure, unless the provider had said why the answer ended (a finish reason,
        // with OpenAI's usage after it): then the answer is whole, and only its `[DONE]` was lost. The body ended as
        // a whole one does (a broken connection throws above): the provider's incomplete answer, not a connection
        // failure, so it is not asked for again from the same endpoint (as a stream of only its end marker, below).
        if (!outcome.done && outcome.finishReason === undefined) {
          throw unreadableAnswer(target.endpoint.provider.name, 'the stream ended before the answer did (no finish reason, no end marker)');
        }
        // Nothing but the end marker (no token, no finish reason, no usage): no answer at all, the provider's failure
        // before any token, so another endpoint is tried (it was completed and billed a prompt estimate).
        if (!committed && outcome.finishReason === undefined && outcome.usage === undefined) {
          throw unreadableAnswer(target.endpoint.provider.name, 'the stream ended with no answer (only its end marker)');
        }
        record.endedAt = now();
        if (!committed) {
          await awaitReady();
          commit(); // an empty answer that says why it ended, or with the provider's usage
        }
        const error = inBandError(outcome, target);
        answered(record, target, error);
        return result('completed', {
          usage: outcome.usage ?? null,
          finishReason: outcome.finishReason ?? null,
          nativeFinishReason: outcome.nativeFinishReason ?? null,
          upstreamId,
          error,
        });
      } catch (caught) {
        record.endedAt = now();
        const reason = cancel.aborted ? (cancel.reason as AttemptAbort).kind : null;
        if (reason === 'client') return result('cancelled');
        // The provider had said why the answer ended (a finish reason; OpenAI's usage comes after it): the answer is
        // whole, and what broke after that (the connection, an idle wait for the end marker) lost only the marker, as
        // a stream that ends without it does (above). Billed on the usage when it came.
        const ended = committed ? upstream?.finish() : undefined;
        if (ended?.finishReason !== undefined) {
          const error = inBandError(ended, target);
          answered(record, target, error);
          return result('completed', { usage: ended.usage ?? null, finishReason: ended.finishReason, nativeFinishReason: ended.nativeFinishReason ?? null, upstreamId: upstream!.upstreamId(), error });
        }
        // Not the provider's fault: no error on the attempt, no breaker, no retry.
        if (ready === 'refused' && !committed) return result('failed', { refused });
        const provider = target.endpoint.provider.name;
        const classified =
          reason === 'first_token'
            ? timeoutError(provider, `no ${options.stream ? 'first token' : 'response'} within ${config.firstTokenTimeoutMs} ms`)
            : reason === 'idle'
              ? timeoutError(provider, `no data for ${config.idleTimeoutMs} ms mid-stream`)
              : reason === 'deadline'
                ? new ProviderError({ code: 'timeout', status: 504, retryable: false, message: `${provider}: the request deadline passed`, provider })
                : upstreamFailure(provider, caught, committed ? 'the connection broke mid-stream' : 'the request failed');
        // Before it reaches the client, the record or an event: an upstream may quote back the key it was sent.
        const error = redactProviderError(classified, credentialsOf(target));
        record.error = error;
        record.afterFirstToken = committed;
        lastError = error;
        if (countsAgainstUptime(error, target)) breakers.failure(target.endpoint.id, record.endedAt);
        // After the first token there is no fallback: the stream ends with an error chunk, billed on the provider's
        // usage when it had come (its prompt count beats an estimate).
        if (committed) return result('failed', { usage: ended?.usage ?? null });
        if (reason === 'deadline') break;
        // An answer that could not be read was still an answer the provider may bill: not asked again here (another
        // endpoint may still be tried), as a timeout or a connection failure before any byte would be.
        if (!error.retryable || error.code === 'malformed_response') {
          entry.dead = true;
          // A request the upstream finds invalid will be invalid on the model's other endpoints too: next model.
          if (error.code === 'bad_request' || error.code === 'content_filter') for (const q of queue) if (q.target.model === target.model) q.dead = true;
        } else if ((error.retryAfterMs ?? 0) > config.maxRetryAfterMs) {
          entry.dead = true;
        } else {
          const backoff = Math.min(MAX_BACKOFF_MS, config.backoffBaseMs * 2 ** (entry.tries - 1)) * (0.5 + random() * 0.5);
          entry.readyAt = now() + Math.max(error.retryAfterMs ?? 0, backoff);
        }
      } finally {
        // Nothing more of this attempt's answer is wanted: one still coming (never ending) must not be read on.
        cancel.abort(ATTEMPT_ABORTS.ended);
        clearTimeout(deadlineTimer);
        if (firstTokenTimer) clearTimeout(firstTokenTimer);
        if (idleTimer) clearTimeout(idleTimer);
        options.signal?.removeEventListener('abort', onClientAbort);
        abortAttempt = null;
      }
    }
    // Every target failed: the answer is the last model's error (OpenRouter's rule), whatever earlier model was
    // retried after it, with the endpoint it came from.
    const rank = (a: AttemptRecord) => targets.findIndex((t) => t.model === a.target.model);
    let last: AttemptRecord | null = null;
    for (const a of attempts) if (a.error !== null && (last === null || rank(a) >= rank(last))) last = a;
    if (last !== null) {
      lastError = last.error;
      lastTarget = last.target;
    } else if (cannotCarry !== null) {
      // No target could carry it, and none was tried: the first refusal says why (a 400, nothing sent or charged).
      lastError = cannotCarry.error;
      lastTarget = cannotCarry.target;
    }
    return result('failed');
  };

  // -------------------------------------------------------------------------------------------------------------
  // Upstream calls: the demo in-process, every other protocol over fetch with its adapter.

  const callComplete = async (
    target: RouteTarget,
    { request, upstream }: Prepared,
    meta: Required<ResponseMeta>,
    signal: AbortLike,
  ): Promise<{ response: ChatResponse; upstreamId: string | null }> => {
    const { endpoint } = target;
    const { protocol } = endpoint.provider;
    if (protocol === 'demo' || upstream === null) {
      if (signal.aborted) throw signal.reason;
      return { response: demoComplete(request, meta), upstreamId: null };
    }
    const adapter = ADAPTERS[protocol];
    const res = await deps.upstream.post(upstream.url, upstream.headers, upstream.body, signal, { guarded: !endpoint.provider.trusted });
    if (res.status < 200 || res.status > 299) throw adapter.mapError(res.status, res.headers, await readErrorText(res.body), now());
    const text = await deps.upstream.readAnswer(res.body);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    let response: ChatResponse;
    try {
      response = adapter.parseResponse(res.status, json, meta);
    } catch (error) {
      throw notConverted(error);
    }
    // The response carries our id; keep the upstream's own (OpenAI/Anthropic `id`, Gemini `responseId`) for the record.
    const raw = json as { id?: unknown; responseId?: unknown };
    const upstreamId = typeof raw.id === 'string' ? raw.id : typeof raw.responseId === 'string' ? raw.responseId : null;
    return { response, upstreamId };
  };

  const openStream = async (
    target: RouteTarget,
    { request, upstream }: Prepared,
    meta: Required<ResponseMeta>,
    signal: AbortLike,
    onBody?: (target: RouteTarget, body: unknown) => void,
  ): Promise<{ chunks: AsyncIterable<ChatChunk[]>; finish(): StreamOutcome; upstreamId(): string | null }> => {
    const { endpoint } = target;
    const { protocol } = endpoint.provider;
    if (protocol === 'demo' || upstream === null) {
      onBody?.(target, extend(request, { stream: true }));
      const demo = demoStream(request, meta, config.demoTokenDelayMs, signal);
      return { ...demo, upstreamId: () => null };
    }
    const adapter = ADAPTERS[protocol];
    // The body only: the credentials travel in the headers (or, for Gemini, the URL), never echoed.
    onBody?.(target, JSON.parse(upstream.body));
    const res = await deps.upstream.post(upstream.url, upstream.headers, upstream.body, signal, { guarded: !endpoint.provider.trusted });
    if (res.status < 200 || res.status > 299) throw adapter.mapError(res.status, res.headers, await readErrorText(res.body), now());
    // JSON where a stream was asked for is an error the provider put in a 200 (or no stream at all): say what it said.
    if (/^\s*application\/(?:[\w.+-]+\+)?json/i.test(res.headers['content-type'] ?? '')) {
      const said = bodyMessage(parseJson(await readErrorText(res.body)));
      throw malformedResponse(endpoint.provider.name, `answered with JSON, not a stream${said === undefined ? '' : `: ${said.slice(0, 500)}`}`);
    }
    const body = res.body;
    // The adapter parses with our id (meta); keep the upstream's own id from the raw stream for the record.
    const parser = adapter.createStreamParser(meta);
    let upstreamId: string | null = null;
    async function* chunks(): AsyncGenerator<ChatChunk[]> {
      let events = 0;
      for await (const message of readSse(body)) {
        // Past the protocol's end nothing is the answer: stop reading (the attempt's end closes the connection). Only a
        // message after it does that: a stream that just ends there keeps its connection for the next call.
        if (parser.ended()) return;
        events += 1;
        if (upstreamId === null && message.data.length > 8 && message.data.charCodeAt(0) === 123 /* { */) {
          const match = /"(?:id|responseId)"\s*:\s*"([^"]{1,200})"/.exec(message.data.slice(0, 400));
          if (match) upstreamId = match[1]!;
        }
        let out: ChatChunk[];
        try {
          out = parser.push(message);
        } catch (error) {
          throw notConverted(error);
        }
        if (out.length > 0) yield out;
      }
      // A 200 whose body held no event (no `data:` line): nothing the client could be given, and no cut either.
      if (events === 0) throw new UnreadableAnswerError('the stream had no events (no data: lines)');
    }
    return { chunks: chunks(), finish: () => parser.finish(), upstreamId: () => upstreamId };
  };

  return { run };
};

export type Router = ReturnType<typeof createRouter>;
