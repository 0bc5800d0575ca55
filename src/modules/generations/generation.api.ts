/**
 * The generations module's application API.
 *
 * - `createGenerationRecorder`: the write side, handed to the gateway (which exists before this API, and which this
 *   API drives): `record(facts)` turns what happened on a call into commands, decides them with the generation
 *   decider and appends the events in ONE append, after the answer went out (the gateway tracks it).
 * - `createGenerationsApi`: queries over the generations read model (with the ownership policy), the live token
 *   feeds, and the `send` / `start` commands of GraphQL's `sendPrompt` / `startGeneration`, run through the gateway.
 */
import { GENERATIONS, generationQueries, type GenerationDoc } from '../../../projections/generations.js';
import { describeStorageFailure, DomainError, type ErrorType, NotFoundError, storageFailureOf, ValidationError, WrongExpectedVersionError } from '../../errors.js';
import type { EventStore, NewEvent, RecordedEvent } from '../../eventStore/eventStore.js';
import { createWriteRetry, type WriteRetry } from '../../eventStore/writeRetry.js';
import type { LedgerService } from '../ledger/ledgerService.js';
import { parseChatBody } from '../../gateway/chatRequest.js';
import { parseEmbeddingBody } from '../../gateway/embeddings.js';
import { GatewayError } from '../../gateway/gatewayErrors.js';
import type { Gateway, GenerationOutcome } from '../../gateway/gateway.js';
import type { ChatChunk, FinishReason, ProviderErrorCode, Usage } from '../../gateway/types.js';
import type { StoredContent } from '../../contentStore/contentStore.js';
import type { GenerationContent } from './generationContent.js';
import type { Logger } from '../../logger.js';
import type { ReadStore } from '../../readStore/readStore.js';
import { isAdmin, type Principal } from '../auth/principal.js';
import { extend } from '../../objects.js';
import { applyPreset } from '../presets/presetResolution.js';
import { decideAll, type GenerationCommand } from './generation.decider.js';
import { generationStream, newGenerationId, type ApiType, type AppAttribution, type GenerationEvent, type PromptMedia, type TokenUsage, type UsageSource, type WorkflowAttribution } from './generation.events.js';
import { createGenerationFeeds, type FeedItem } from './generationFeed.js';
import { isoTime } from '../../isoTime.js';
import { requestFingerprint } from './requestIdempotency.js';

// -----------------------------------------------------------------------------------------------------------------
// Recording: what the gateway saw → commands → events

/** The target of an attempt as the gateway's router knows it (its RouteTarget has this shape). */
export interface TargetFacts {
  readonly model: string;
  readonly endpoint: { readonly id: string; readonly upstreamModel: string; readonly provider: { readonly slug: string; readonly name: string } };
}

export interface AttemptFacts {
  readonly attempt: number;
  readonly target: TargetFacts;
  /** Milliseconds since the epoch. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** Why the attempt failed; null for the last attempt when it did not (completed, cancelled, refused). */
  readonly error: { readonly code: ProviderErrorCode; readonly status: number; readonly retryable: boolean; readonly message: string } | null;
  /** Whether the endpoint's health is to blame (the router's rule), when it failed. */
  readonly countsAgainstUptime: boolean;
  readonly afterFirstToken: boolean;
}

/** One generation, from its request to its end, as the gateway saw it. Times are milliseconds since the epoch. */
export interface GenerationFacts {
  readonly generationId: string;
  readonly principal: Pick<Principal, 'accountId' | 'keyId'>;
  readonly correlationId: string;
  readonly apiType: ApiType;
  readonly models: readonly string[];
  /** The request's `provider` object as sent. */
  readonly provider: unknown;
  readonly stream: boolean;
  readonly user: string | null;
  readonly router: string | null;
  /** The workflow run that made the call, or null. */
  readonly workflow: WorkflowAttribution | null;
  /** The app that named itself in the request's headers, or null. */
  readonly app: AppAttribution | null;
  readonly promptTokensEstimate: number;
  /** The media parts of the prompt's messages, as parsed. */
  readonly promptMedia: PromptMedia;
  /** The conversation's id as the client sent it (`session_id` / `x-session-id`), or null. */
  readonly sessionId: string | null;
  /** Nano-dollars reserved before the first attempt. */
  readonly reserved: number;
  readonly startedAt: number;
  readonly attempts: readonly AttemptFacts[];
  readonly end: {
    readonly kind: 'completed' | 'failed' | 'cancelled';
    /** The target that served, broke mid-stream or was tried last. */
    readonly target: TargetFacts | null;
    /** As billed. */
    readonly usage: Usage;
    readonly usageSource: UsageSource;
    /** Nano-dollars owed. */
    readonly cost: number;
    /** Nano-dollars the cache saved against the prompt price (Billing.cacheDiscount; 0 when nothing was billed). */
    readonly cacheDiscount: number;
    /** Served with the account's own provider key: the list-price cost (`cost` is the fee); absent otherwise. */
    readonly upstreamCost?: number;
    readonly firstTokenAt: number | null;
    readonly endedAt: number;
    readonly upstreamId: string | null;
    readonly finishReason: FinishReason | null;
    readonly nativeFinishReason: string | null;
    /**
     * Why it failed, as the client was told (required when it failed); completed, the error its provider ended the
     * answer with mid-generation, if any.
     */
    readonly error: { readonly errorType: string; readonly status: number; readonly message: string; readonly metadata?: Record<string, unknown> } | null;
    /** Whether tokens reached the client before the end. */
    readonly committed: boolean;
    /**
     * The client went away and the answer was made all the same: read on from a provider that cannot cancel (see
     * RunResult.clientGone), or a call that does not stream, which runs to its end (ExecuteOptions.clientGone).
     */
    readonly clientGone: boolean;
    /** The answer's text when the caller asked for it to be kept (GenerateInput.keepCompletion). */
    readonly completion?: string | null;
  };
  /** The billing of the provider's usage, when it reported more than is billed. */
  readonly overReport: {
    readonly reported: TokenUsage;
    readonly billed: TokenUsage;
    readonly caps: { readonly promptTokens: number; readonly completionTokens: number; readonly cost: number };
    readonly reportedCost: number;
    readonly billedCost: number;
  } | null;
  /** When the generation was recorded. */
  readonly at: number;
}

export const toTokenUsage = (usage: Usage): TokenUsage => ({
  prompt: usage.prompt_tokens,
  completion: usage.completion_tokens,
  reasoning: usage.completion_tokens_details?.reasoning_tokens ?? 0,
  cached: usage.prompt_tokens_details?.cached_tokens ?? 0,
  cacheWrite: usage.prompt_tokens_details?.cache_write_tokens ?? 0,
});

/** The commands that tell a generation's story, in order. Pure. */
export const generationCommands = (facts: GenerationFacts): GenerationCommand[] => {
  const at = isoTime(facts.at);
  const { generationId } = facts;
  const { accountId, keyId } = facts.principal;
  const commands: GenerationCommand[] = [
    {
      type: 'RequestGeneration',
      data: {
        generationId,
        accountId,
        keyId,
        models: facts.models,
        provider: facts.provider ?? null,
        stream: facts.stream,
        user: facts.user,
        apiType: facts.apiType,
        router: facts.router,
        ...(facts.workflow !== null && { workflow: facts.workflow }),
        ...(facts.app !== null && { app: facts.app }),
        promptTokensEstimate: facts.promptTokensEstimate,
        promptMedia: facts.promptMedia,
        ...(facts.sessionId !== null && { sessionId: facts.sessionId }),
        reserved: facts.reserved,
        at: isoTime(facts.startedAt),
      },
    },
  ];
  for (const a of facts.attempts) {
    const { endpoint, model } = a.target;
    const ref = { generationId, attempt: a.attempt, endpointId: endpoint.id, providerSlug: endpoint.provider.slug, model };
    commands.push({ type: 'StartAttempt', data: extend(ref, { upstreamModel: endpoint.upstreamModel, at: isoTime(a.startedAt) }) });
    if (a.error) {
      commands.push({
        type: 'FailAttempt',
        data: extend(ref, {
          errorCode: a.error.code,
          status: a.error.status,
          retryable: a.error.retryable,
          countsAgainstUptime: a.countsAgainstUptime,
          afterFirstToken: a.afterFirstToken,
          latencyMs: a.endedAt - a.startedAt,
          message: a.error.message,
          at: isoTime(a.endedAt),
        }),
      });
    }
  }
  const { end } = facts;
  const outcome = {
    generationId,
    accountId,
    keyId,
    endpointId: end.target?.endpoint.id ?? null,
    providerSlug: end.target?.endpoint.provider.slug ?? null,
    providerName: end.target?.endpoint.provider.name ?? null,
    model: end.target?.model ?? null,
    usage: toTokenUsage(end.usage),
    usageSource: end.usageSource,
    cost: end.cost,
    cacheDiscount: end.cacheDiscount,
    ...(end.upstreamCost !== undefined && { upstreamCost: end.upstreamCost }),
    latencyMs: end.firstTokenAt === null ? null : end.firstTokenAt - facts.startedAt,
    generationTimeMs: end.endedAt - facts.startedAt,
    streamed: facts.stream,
    at,
  };
  switch (end.kind) {
    case 'completed':
      commands.push({
        type: 'CompleteGeneration',
        data: extend(outcome, {
          upstreamId: end.upstreamId,
          finishReason: end.finishReason,
          nativeFinishReason: end.nativeFinishReason,
          // The error its provider ended the answer with mid-generation (the only error a completed call has).
          ...(end.error !== null && { error: { errorType: end.error.errorType, status: end.error.status, message: end.error.message, ...retryableOf(end.error) } }),
          ...(typeof end.completion === 'string' && { completion: end.completion }),
          ...(end.clientGone && { clientGone: true as const }),
        }),
      });
      break;
    case 'cancelled':
      commands.push({ type: 'CancelGeneration', data: extend(outcome, { reason: 'client disconnected' as const }) });
      break;
    case 'failed': {
      const error = end.error ?? { errorType: 'server', status: 500, message: 'The generation failed' };
      commands.push({
        type: 'FailGeneration',
        data: extend(outcome, { errorType: error.errorType, status: error.status, message: error.message, ...retryableOf(error), afterFirstToken: end.committed, ...(end.clientGone && { clientGone: true as const }) }),
      });
      break;
    }
    default: {
      const _never: never = end.kind;
    }
  }
  if (facts.overReport && end.target) {
    const { endpoint, model } = end.target;
    commands.push({
      type: 'ReportUsageOverReported',
      data: {
        generationId,
        accountId,
        keyId,
        endpointId: endpoint.id,
        providerSlug: endpoint.provider.slug,
        providerName: endpoint.provider.name,
        model,
        usageSource: end.usageSource,
        ...facts.overReport,
        at,
      },
    });
  }
  return commands;
};

/**
 * A record is appended once, after the answer went out (its fsync may be shared with the next call's reservation),
 * only if its stream does not exist: a second record of one generation is refused, and a retry finds an earlier
 * attempt's.
 */
const RECORD_APPEND = { expectedRevision: 'no_stream', urgency: 'soon' } as const;

/** A record's append failures that pass: the store's disk full (storageFailureOf), the store unavailable or busy. */
const recordFailurePasses = (error: unknown): boolean => storageFailureOf(error) === 'disk_full' || (error instanceof DomainError && error.code === 'UNAVAILABLE');

export const createGenerationRecorder = (deps: {
  eventStore: EventStore;
  logger: Logger;
  /**
   * How a record whose append failed for a reason that passes is tried again (default: its own): the composition root
   * shares the ledger's, so a record is retried as its settlement is, within the same bound, and stopped with it.
   */
  writeRetry?: WriteRetry;
}) => {
  const { eventStore, logger } = deps;
  const writeRetry = deps.writeRetry ?? createWriteRetry({ logger });
  return {
    /**
     * Decide the generation's events and append them in one append. An append that fails for a reason that passes (a
     * full disk, a store unavailable or busy) is tried again until it is written, as its settlement is (writeRetry):
     * the call is charged, its record must not be lost. Resolves with the appended position, or null when it could
     * not be recorded (logged: the caller has already answered its client).
     */
    async record(facts: GenerationFacts): Promise<number | null> {
      try {
        const events = decideAll(generationCommands(facts));
        const metadata = { actor: facts.principal.accountId, correlationId: facts.correlationId, at: isoTime(facts.at) };
        const toAppend: NewEvent[] = [];
        for (const event of events) {
          if (event.type === 'UsageOverReported') logger.warn(event.data, 'a provider reported more usage than is billed; the excess is not charged');
          toAppend.push({ type: event.type, data: event.data, metadata });
        }
        const stream = generationStream(facts.generationId);
        try {
          return (await eventStore.append(stream, toAppend, RECORD_APPEND)).position;
        } catch (error) {
          // Only once an append failed: nothing more is done for a record the store takes.
          return await writeRetry.retryAfter(error, { what: 'generation record', ids: { generationId: facts.generationId }, passes: recordFailurePasses, meanwhile: 'the call is charged; its record waits' }, async () => {
            try {
              return (await eventStore.append(stream, toAppend, RECORD_APPEND)).position;
            } catch (again) {
              // The stream is the record's own, appended only when absent (`no_stream`): found now, it is an earlier
              // attempt's, whose failure was ambiguous (a timeout after the commit): written once, not twice.
              if (!(again instanceof WrongExpectedVersionError)) throw again;
              const [last] = await eventStore.readStream(stream, { direction: 'backwards', maxCount: 1 });
              if (!last) throw again;
              logger.info({ generationId: facts.generationId }, 'a generation record tried again was written by an earlier attempt');
              return last.position;
            }
          });
        }
      } catch (error) {
        // The event store's storage (a full disk...) is logged by the store once per change of state (main.ts
        // trackWrites): here one line naming the generation, not a stack per call.
        const storage = storageFailureOf(error);
        if (storage !== null) logger.warn({ generationId: facts.generationId, reason: storage }, `could not record a generation: ${describeStorageFailure(storage)}`);
        else logger.error({ err: error, generationId: facts.generationId }, 'could not record a generation');
        return null;
      }
    },
  };
};

export type GenerationRecorder = ReturnType<typeof createGenerationRecorder>;

// -----------------------------------------------------------------------------------------------------------------
// The application API

/** Policy: a generation is its account's business, and the admins'. */
export const maySeeGeneration = (actor: Principal, accountId: string): boolean => isAdmin(actor) || actor.accountId === accountId;

/**
 * May `actor` see this generation: one of its account's, and for a restricted key (a spending limit, or issued to an
 * app) only its own calls: an app signed in with Switchyard does not read the account's other prompts and answers.
 */
export const maySeeGenerationDoc = (actor: Principal, doc: { readonly accountId: string; readonly keyId: string | null }): boolean =>
  maySeeGeneration(actor, doc.accountId) && (actor.restricted !== true || doc.keyId === actor.keyId);

/** GraphQL's PromptInput: a chat request by name (every field optional, null as absent). */
export interface PromptInput {
  readonly model?: string | null;
  readonly models?: readonly string[] | null;
  readonly messages?: readonly { readonly role: string; readonly content: string }[] | null;
  readonly prompt?: string | null;
  readonly maxTokens?: number | null;
  readonly temperature?: number | null;
  readonly provider?: unknown;
  readonly user?: string | null;
  readonly sessionId?: string | null;
  /** OpenRouter's `response_format`, as JSON. */
  readonly responseFormat?: unknown;
  /** OpenRouter's `plugins` (response-healing, context-compression, auto-router, file-parser), as JSON. */
  readonly plugins?: unknown;
}

/** How `send` runs a call beyond its prompt (a workflow step's model call uses all of them). */
export interface SendOptions {
  /** The generation's id, chosen by the caller (derived from a step's idempotency key); a new one otherwise. */
  readonly generationId?: string;
  /** Refuse (402) before the call when its reservation would exceed this many nano-dollars. */
  readonly maxReserved?: number;
  /** Aborts the call; what was generated is charged. */
  readonly signal?: AbortSignal;
  /** Stream the answer and hand over each piece of content as it arrives. */
  readonly onToken?: (content: string) => void;
  /** The workflow run making the call: recorded on the generation and its usage (grouped by workflow). */
  readonly workflow?: WorkflowAttribution;
  /** Keep the answer's text in the generation's record, for `recall` (workflow model steps). */
  readonly keepCompletion?: boolean;
  /** The caller's Idempotency-Key (checked): one generation per key and account. */
  readonly idempotencyKey?: string;
}

/**
 * What became of a generation id, for a workflow step attempt run again after a crash: the recorded end (the
 * answer when its text was kept) with what it was charged, or, when nothing was recorded, what the ledger did with
 * its reservation.
 */
/**
 * A failure's `retryable` as the gateway said it (GatewayError's metadata) or as it was recorded, to record and to
 * give back: a workflow step resumed after a crash retries, or not, as the live one did. Empty when none was said.
 */
const retryableOf = (error: { readonly retryable?: boolean; readonly metadata?: Record<string, unknown> }): { retryable?: boolean } => {
  const said = error.metadata === undefined ? error.retryable : error.metadata['retryable'];
  return typeof said === 'boolean' ? { retryable: said } : {};
};

export type RecalledGeneration =
  | { readonly kind: 'completed'; readonly answer: SentPrompt | null; readonly cost: number }
  | { readonly kind: 'failed'; readonly status: number; readonly errorType: string; readonly message: string; readonly retryable?: boolean; readonly cost: number }
  | { readonly kind: 'cancelled'; readonly reason: string; readonly cost: number }
  /** `charged`: what a settled reservation charged (0 otherwise): a call whose record was lost was charged this. */
  | { readonly kind: 'unrecorded'; readonly reservation: 'none' | 'open' | 'settled' | 'released' | 'expired'; readonly charged: number };

/** The input as the OpenRouter body it means (null fields as absent), for the same preset and validation as REST. */
const promptBody = (input: PromptInput, stream: boolean) => ({
  model: input.model ?? undefined,
  models: input.models ?? undefined,
  ...(input.messages ? { messages: input.messages } : { prompt: input.prompt ?? undefined }),
  max_tokens: input.maxTokens ?? undefined,
  temperature: input.temperature ?? undefined,
  provider: input.provider ?? undefined,
  user: input.user ?? undefined,
  session_id: input.sessionId ?? undefined,
  response_format: input.responseFormat ?? undefined,
  plugins: input.plugins ?? undefined,
  stream,
});

/** A whole answer to `send`. */
export interface SentPrompt {
  readonly generationId: string;
  readonly completion: string;
  readonly model: string | null;
  readonly provider: string | null;
  readonly finishReason: string | null;
  readonly usage: TokenUsage;
  /** Nano-dollars charged. */
  readonly cost: number;
  /**
   * The error its provider ended the answer with mid-generation (`finishReason` "error": the text is partial, and
   * charged as the provider billed it), as the client was told it and the record says; null otherwise.
   */
  readonly error: GatewayError | null;
}

/** GraphQL's EmbedInput: one text or several (GraphQL coerces a lone string to a list of one). */
export interface EmbedInput {
  readonly model: string;
  readonly input: readonly string[];
  readonly dimensions?: number | null;
  readonly user?: string | null;
}

/** An embeddings call's answer: one vector per input, in order, and what it cost. */
export interface Embedded {
  readonly generationId: string;
  readonly model: string;
  readonly provider: string;
  readonly vectors: readonly (readonly number[])[];
  /** Input tokens only. */
  readonly usage: TokenUsage;
  /** Nano-dollars charged. */
  readonly cost: number;
}

/** Which generations a list keeps: each field given must match (from/to: ISO timestamps, inclusive, on createdAt). */
export interface GenerationFilter {
  readonly model?: string | null;
  readonly keyId?: string | null;
  /** The provider's slug. */
  readonly provider?: string | null;
  readonly status?: GenerationDoc['status'] | null;
  readonly from?: string | null;
  readonly to?: string | null;
  /** The conversation's id the client sent (session_id / x-session-id). */
  readonly sessionId?: string | null;
}

/** A cursor range of a list paged by `_id` (our ids sort by creation time). */
export interface IdRange {
  readonly after?: string | null;
  readonly before?: string | null;
  /** Newest first (relay's `last`). */
  readonly inverted: boolean;
  readonly limit: number;
}

const doneItem = (outcome: GenerationOutcome): FeedItem => {
  const usage = toTokenUsage(outcome.usage);
  return {
    kind: 'done',
    status: outcome.kind,
    model: outcome.model,
    provider: outcome.providerName,
    finishReason: outcome.finishReason,
    promptTokens: usage.prompt,
    completionTokens: usage.completion,
    reasoningTokens: usage.reasoning,
    cachedTokens: usage.cached,
    cost: outcome.cost,
    error: outcome.error ? { type: outcome.error.errorType, message: outcome.error.message } : null,
  };
};

const FAILED_UNEXPECTEDLY: FeedItem = {
  kind: 'done',
  status: 'failed',
  model: null,
  provider: null,
  finishReason: 'error',
  promptTokens: 0,
  completionTokens: 0,
  reasoningTokens: 0,
  cachedTokens: 0,
  cost: 0,
  error: { type: 'server', message: 'Internal error' },
};

export const createGenerationsApi = (deps: {
  readStore: ReadStore;
  eventStore: Pick<EventStore, 'readStream'>;
  gateway: Pick<Gateway, 'prepare' | 'execute' | 'generate' | 'embed' | 'presets' | 'withDefaultModel' | 'recordOf' | 'readYourWrites'>;
  /** Resolves once the read models have applied a position (false on timeout). */
  waitForReadModels: (position: number) => Promise<boolean>;
  /** What became of a reservation, for `recall`. */
  ledger: Pick<LedgerService, 'reservationOf'>;
  /** Input & output logging's stored content. */
  content: Pick<GenerationContent, 'find' | 'deleteAll'>;
  logger: Logger;
  /** What the live feeds of started generations keep at most, together (GATEWAY_ANSWER_BUFFER_BYTES; generationFeed.ts). */
  feedBufferBytes?: number;
}) => {
  const { gateway, logger } = deps;
  const queries = generationQueries(deps.readStore);
  const collection = deps.readStore.collection<GenerationDoc>(GENERATIONS);
  const feeds = createGenerationFeeds(deps.feedBufferBytes === undefined ? {} : { maxBytes: deps.feedBufferBytes });
  const request = (actor: Principal, prompt: PromptInput, stream: boolean, correlationId: string, options: SendOptions = {}) => {
    // `model: "@preset/slug"` (or "vendor/model@preset/slug") applies the account's preset, as on REST.
    // Then the account's default model when neither names one, as on REST.
    const body = gateway.withDefaultModel(applyPreset(promptBody(prompt, stream), actor.accountId, gateway.presets), actor.accountId) as { provider?: unknown };
    return {
      generationId: options.generationId ?? newGenerationId(),
      ...(options.maxReserved !== undefined && { maxReserved: options.maxReserved }),
      ...(options.keepCompletion === true && { keepCompletion: true }),
      principal: actor,
      parsed: parseChatBody(body, prompt.messages ? 'chat' : 'completion'),
      rawProvider: body.provider ?? null,
      apiType: options.workflow === undefined ? ('graphql' as const) : ('workflow' as const),
      ...(options.workflow !== undefined && { workflow: options.workflow }),
      correlationId,
      // The mutation and its input are the request a key's fingerprint is of.
      ...(options.idempotencyKey !== undefined && {
        idempotency: { key: options.idempotencyKey, fingerprint: requestFingerprint(stream ? 'graphql startGeneration' : 'graphql sendPrompt', prompt) },
      }),
    };
  };

  /**
   * Where a generation's record is in the event log when the read model may not hold it yet: being appended by this
   * process's gateway (held for the next commit: its position once appended), or appended already. Undefined when
   * there is none: not written here and not in the log (a charge whose record was lost, or no such generation).
   */
  const recordPosition = async (id: string): Promise<number | undefined> =>
    (await gateway.recordOf(id)) ?? (await deps.eventStore.readStream(generationStream(id), { direction: 'backwards', maxCount: 1 }))[0]?.position;

  /** A generation's record, read your writes (see `byId`); null when there is none. */
  const recordOf = async (id: string): Promise<GenerationDoc | null> => {
    const doc = await queries.byId(id);
    if (doc && doc.status !== 'unrecorded') return doc;
    const position = await recordPosition(id);
    return position !== undefined && (await deps.waitForReadModels(position)) ? queries.byId(id) : doc;
  };

  /**
   * `docs` with each `unrecorded` one whose record is on its way (recordPosition) read again once the read models hold
   * that record, through `reread` (which leaves out what no longer matches the caller's query). The settlement is
   * appended before its record and the read models apply them in batches, so a listing may hold an ordinary call's
   * stub in between: it is never shown as a charge whose record was lost. `docs` itself when none is unrecorded.
   */
  const withRecordsOnTheirWay = async (docs: GenerationDoc[], reread: (ids: string[]) => Promise<GenerationDoc[]>): Promise<GenerationDoc[]> => {
    const stubs = docs.filter((d) => d.status === 'unrecorded');
    if (stubs.length === 0) return docs;
    const positions = await Promise.all(stubs.map((d) => recordPosition(d._id)));
    const coming = new Set(stubs.filter((_, i) => positions[i] !== undefined).map((d) => d._id));
    // As `byId`: the read models not there in time, the stubs are what is known.
    if (coming.size === 0 || !(await deps.waitForReadModels(Math.max(...positions.filter((p) => p !== undefined))))) return docs;
    const records = new Map((await reread([...coming])).map((d) => [d._id, d]));
    return docs.flatMap((d) => (!coming.has(d._id) ? [d] : records.has(d._id) ? [records.get(d._id)!] : []));
  };

  return {
    /**
     * One generation; another account's answers NOT_FOUND, exactly as a missing one. Read your writes: a client that
     * asks as soon as it has its answer finds the record, though its append waits for the next reservation's commit
     * and the read models apply in batches (bench/README.md, issue 15 stop 25). Not in the read model yet, the record
     * is looked for where it is being written (this process's gateway) and in the event log, and the read models
     * are waited for up to its position: only a miss pays for that. So does a charge without its record (`unrecorded`):
     * the read models may hold the settlement while its record is still on its way.
     */
    async byId(actor: Principal, id: string): Promise<GenerationDoc> {
      const doc = await recordOf(id);
      if (!doc || !maySeeGenerationDoc(actor, doc)) throw new NotFoundError('Generation', id);
      return doc;
    },
    /** For the per-request loader, which applies the policy per document (records on their way waited for, as `byId`). */
    byIds: async (ids: readonly string[]): Promise<GenerationDoc[]> => withRecordsOnTheirWay(await queries.byIds(ids), queries.byIds),
    /**
     * What one of the caller's generations was sent and answered, when its account logged content then; NOT_FOUND
     * otherwise, and for another account's generation (an admin's included: prompts are their account's alone).
     */
    async content(actor: Principal, id: string): Promise<StoredContent> {
      // The content store knows the account, not the key: a restricted key sees its own calls only (maySeeGenerationDoc),
      // which the record tells. Only such a key pays for reading it.
      if (actor.restricted === true) {
        const doc = await recordOf(id);
        if (!doc || !maySeeGenerationDoc(actor, doc)) throw new NotFoundError('Stored content of generation', id);
      }
      const [content] = await deps.content.find(actor, [id]);
      if (!content) throw new NotFoundError('Stored content of generation', id);
      return content;
    },
    /**
     * The same for several, null where there is none (GraphQL's `Generation.content`, batched). Account-wide: it asks
     * only of generations the caller was shown, which the Generation loader checked key by key (maySeeGenerationDoc).
     */
    findContents: (actor: Principal, ids: readonly string[]): Promise<(StoredContent | null)[]> => deps.content.find(actor, ids),
    /** Delete every stored content of an account (its owner or an admin; checked at the edges); how many. */
    deleteContent: (accountId: string): Promise<number> => deps.content.deleteAll(accountId),
    /** What became of a generation id of the account (its own stream, exact: the read model may lag; then the ledger). */
    async recall(accountId: string, generationId: string): Promise<RecalledGeneration> {
      const events = (await deps.eventStore.readStream(generationStream(generationId))) as RecordedEvent<GenerationEvent>[];
      for (const event of events) {
        switch (event.type) {
          case 'GenerationCompleted': {
            const { data } = event;
            if (data.accountId !== accountId) break;
            const answer: SentPrompt | null =
              data.completion === undefined
                ? null
                : {
                    generationId,
                    completion: data.completion,
                    model: data.model,
                    provider: data.providerName,
                    finishReason: data.finishReason,
                    usage: data.usage,
                    cost: data.cost,
                    error: data.error === undefined ? null : new GatewayError(data.error.status, data.error.errorType as ErrorType, data.error.message, retryableOf(data.error)),
                  };
            return { kind: 'completed', answer, cost: data.cost };
          }
          case 'GenerationFailed':
            if (event.data.accountId !== accountId) break;
            return { kind: 'failed', status: event.data.status, errorType: event.data.errorType, message: event.data.message, ...retryableOf(event.data), cost: event.data.cost };
          case 'GenerationCancelled':
            if (event.data.accountId !== accountId) break;
            return { kind: 'cancelled', reason: event.data.reason, cost: event.data.cost };
          case 'GenerationRequested':
          case 'AttemptStarted':
          case 'AttemptFailed':
          case 'UsageOverReported':
            break;
          default: {
            const _never: never = event;
          }
        }
      }
      const { outcome, charged } = await deps.ledger.reservationOf(accountId, generationId);
      return { kind: 'unrecorded', reservation: outcome, charged };
    },
    /**
     * A page of an account's generations, by id (ids sort by creation time), its calls answered here included: oldest first, or newest first (then
     * `after` a cursor means older than it), keeping only those that match every field of `filter`. `accountId`
     * null: every account's (admins only).
     */
    async list(actor: Principal, accountId: string | null, range: IdRange, options: { newestFirst?: boolean; filter?: GenerationFilter } = {}): Promise<GenerationDoc[]> {
      if (accountId === null ? !isAdmin(actor) : !maySeeGeneration(actor, accountId)) throw new NotFoundError('Account', accountId ?? 'all');
      const { after, before } = range;
      const [afterOp, beforeOp] = options.newestFirst ? (['$lt', '$gt'] as const) : (['$gt', '$lt'] as const);
      const bounds: Record<string, string> = { ...(after ? { [afterOp]: after } : {}), ...(before ? { [beforeOp]: before } : {}) };
      const { model, provider, status, from, to, sessionId } = options.filter ?? {};
      // A restricted key lists only its own calls (maySeeGenerationDoc): another key's are none of them.
      const asked = options.filter?.keyId;
      if (actor.restricted === true && asked && asked !== actor.keyId) return [];
      const keyId = actor.restricted === true ? actor.keyId : asked;
      if (from && to && from > to) throw new ValidationError('filter.from must not be after filter.to', { argument: 'filter.from' });
      const filter = {
        ...(model ? { model } : {}),
        ...(keyId ? { keyId } : {}),
        ...(provider ? { providerSlug: provider } : {}),
        ...(status ? { status } : {}),
        ...(sessionId ? { sessionId } : {}),
        ...(from || to ? { createdAt: { ...(from ? { $gte: from } : {}), ...(to ? { $lte: to } : {}) } } : {}),
      };
      const ascending = options.newestFirst ? range.inverted : !range.inverted;
      // The account's own last call is in the list as soon as it has answered (at once unless one is being applied).
      if (accountId !== null) await gateway.readYourWrites(accountId);
      const where = { ...filter, ...(accountId === null ? {} : { accountId }) };
      /**
       * `limit` documents from the id range `ids` on, a call whose record is on its way shown by its record
       * (withRecordsOnTheirWay). A record that no longer matches (the UNRECORDED filter's ordinary calls) leaves a
       * gap, which the documents after the page's last fill: a page is as long as it would be with every record
       * applied, so `hasNextPage` holds.
       */
      const read = async (ids: Record<string, string>, limit: number): Promise<GenerationDoc[]> => {
        const docs = await collection.find({ ...where, ...(Object.keys(ids).length > 0 && { _id: ids }) }, { sort: { _id: ascending ? 1 : -1 }, limit });
        const shown = await withRecordsOnTheirWay(docs, (stubs) => collection.find({ ...where, _id: { $in: stubs } }));
        const last = docs.at(-1);
        if (shown.length === docs.length || docs.length < limit || last === undefined) return shown;
        return [...shown, ...(await read({ ...ids, [ascending ? '$gt' : '$lt']: last._id }, docs.length - shown.length))];
      };
      return read(bounds, range.limit);
    },
    /**
     * Call a model and wait for the whole answer; a failed call throws its error (the client's 4xx/5xx). With
     * `onToken` the call streams and the answer is what was streamed.
     */
    async send(actor: Principal, prompt: PromptInput, correlationId: string, options: SendOptions = {}): Promise<SentPrompt> {
      const { onToken, signal } = options;
      let streamed = '';
      const outcome = await gateway.generate(request(actor, prompt, onToken !== undefined, correlationId, options), {
        ...(signal && { signal }),
        ...(onToken && {
          onChunk: (chunk: ChatChunk) => {
            const content = chunk.choices[0]?.delta.content;
            if (!content) return;
            streamed += content;
            onToken(content);
          },
        }),
      });
      // A workflow step is recorded done (or failed) only once its call's charge and record are: after a crash, a step
      // on record never stands for a call whose charge was lost with the process.
      if (options.workflow !== undefined) await gateway.recordOf(outcome.generationId);
      // A cancelled call (its signal aborted) has no error of its own: the abort's reason says why.
      if (outcome.kind !== 'completed') throw outcome.error ?? signal?.reason ?? new Error('The generation was cancelled');
      return {
        generationId: outcome.generationId,
        completion: onToken ? streamed : (outcome.response?.choices[0]?.message.content ?? ''),
        model: outcome.model,
        provider: outcome.providerName,
        finishReason: outcome.finishReason,
        usage: toTokenUsage(outcome.usage),
        cost: outcome.cost,
        error: outcome.error,
      };
    },
    /** One embeddings call, validated, routed, billed and recorded as REST's /api/v1/embeddings (the gateway's one path). */
    async embed(actor: Principal, input: EmbedInput, correlationId: string): Promise<Embedded> {
      const parsed = parseEmbeddingBody({ model: input.model, input: input.input, dimensions: input.dimensions ?? undefined, user: input.user ?? undefined });
      const outcome = await gateway.embed({ generationId: newGenerationId(), principal: actor, parsed, correlationId });
      return { generationId: outcome.generationId, model: outcome.model, provider: outcome.providerName, vectors: outcome.vectors, usage: toTokenUsage(outcome.usage), cost: outcome.cost };
    },
    /** Route and reserve, then stream in the background into a live feed (`live`); answers once the call is admitted. */
    async start(actor: Principal, prompt: PromptInput, correlationId: string, idempotencyKey?: string): Promise<{ generationId: string }> {
      const input = request(actor, prompt, true, correlationId, { idempotencyKey });
      const { generationId } = input;
      const prepared = await gateway.prepare(input);
      feeds.open(generationId, { accountId: actor.accountId, keyId: actor.keyId });
      void gateway
        .execute(prepared, {
          onChunk: (chunk) => {
            const delta = chunk.choices[0]?.delta;
            if (delta && (delta.content || delta.reasoning)) feeds.push(generationId, { kind: 'token', content: delta.content ?? '', reasoning: delta.reasoning ?? null });
          },
        })
        .then(
          (outcome) => feeds.push(generationId, doneItem(outcome)),
          (error: unknown) => {
            logger.error({ err: error, generationId }, 'a started generation failed unexpectedly');
            feeds.push(generationId, FAILED_UNEXPECTEDLY);
          },
        );
      return { generationId };
    },
    /**
     * The tokens of a started generation from the first, then its end; one the caller may not see (another account's,
     * or for a restricted key another key's: maySeeGenerationDoc) answers NOT_FOUND, exactly as a missing one.
     */
    live(actor: Principal, id: string): AsyncGenerator<FeedItem> {
      const owner = feeds.owner(id);
      const feed = owner !== undefined && maySeeGenerationDoc(actor, owner) ? feeds.subscribe(id) : null;
      if (!feed) throw new NotFoundError('Live generation', id);
      return feed;
    },
  };
};

export type GenerationsApi = ReturnType<typeof createGenerationsApi>;
