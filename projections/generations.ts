import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { ApiType, AppAttribution, GenerationEvent, PromptMedia, TokenUsage, UsageSource } from '../src/modules/generations/generation.events.js';
import { LEDGER_CATEGORY, type ReservationSettled } from '../src/modules/ledger/ledger.events.js';
import type { ReadStore } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

/**
 * `unrecorded`: charged, record lost. The ledger settled the call, but the process stopped before the generation's
 * record (appended after the settlement) was written: the document holds what the settlement knows.
 */
export type GenerationStatus = 'pending' | 'completed' | 'failed' | 'cancelled' | 'unrecorded';

export interface AttemptDoc {
  readonly attempt: number;
  readonly endpointId: string;
  readonly providerSlug: string;
  readonly model: string;
  readonly ok: boolean;
  readonly errorCode: string | null;
  readonly status: number | null;
  /** Milliseconds from the attempt's start to its end (its failure, or the generation's end for the last one). */
  readonly latencyMs: number | null;
  readonly startedAt: string;
}

export type GenerationDoc = {
  _id: string;
  accountId: string;
  keyId: string | null;
  status: GenerationStatus;
  createdAt: string;
  finishedAt: string | null;
  requestedModels: string[];
  /** Null when unrecorded (only the record knows it), as every field the settlement does not hold. */
  apiType: ApiType | null;
  router: string | null;
  /** The workflow run that made the call; absent outside workflows (and in documents from before attribution). */
  workflowId?: string;
  runId?: string;
  /** The app that named itself in the request's headers; absent when none did. */
  app?: AppAttribution;
  streamed: boolean | null;
  user: string | null;
  model: string | null;
  providerSlug: string | null;
  providerName: string | null;
  endpointId: string | null;
  upstreamId: string | null;
  usage: TokenUsage | null;
  usageSource: UsageSource | null;
  /** Nano-dollars. */
  cost: number;
  /** Nano-dollars the cache saved against the prompt price; absent when its events predate it. */
  cacheDiscount?: number;
  /** Served with the account's own provider key (BYOK): the list-price cost (`cost` is the fee); absent otherwise. */
  upstreamCost?: number;
  reserved: number;
  /** The media parts of the prompt; absent when its events predate them. */
  promptMedia?: PromptMedia;
  /** The conversation's id as the client sent it; absent when it sent none. */
  sessionId?: string;
  latencyMs: number | null;
  generationTimeMs: number | null;
  finishReason: string | null;
  nativeFinishReason: string | null;
  /** Why it failed; completed, the error its provider ended the answer with mid-generation (`finishReason` "error"), if any. */
  error: { type: string; status: number; message: string } | null;
  attempts: AttemptDoc[];
  /**
   * Completed or failed after its client went away, read on from a provider that cannot cancel or not streamed (run to
   * its end); absent otherwise.
   */
  clientGone?: true;
};

export const GENERATIONS = 'generations';

/**
 * OpenRouter's media counts of a record (the REST record and GraphQL's Generation): the prompt's media parts (images,
 * files and audio) and its audio inputs, null when its events predate them; the answer's, always 0 (Switchyard's
 * answers are text).
 */
export const mediaCounts = (doc: GenerationDoc): { readonly prompt: number | null; readonly inputAudio: number | null; readonly completion: number } => ({
  prompt: doc.promptMedia === undefined ? null : doc.promptMedia.images + doc.promptMedia.files + doc.promptMedia.audio,
  inputAudio: doc.promptMedia?.audio ?? null,
  completion: 0,
});

/** The attempt still open when the generation ends (the one that answered, or was cut off) ends with it. */
const closeOpenAttempts = (doc: GenerationDoc, generationTimeMs: number): AttemptDoc[] => {
  const endedAt = Date.parse(doc.createdAt) + generationTimeMs;
  return doc.attempts.map((a) => (a.ok && a.latencyMs === null ? { ...a, latencyMs: Math.max(0, endedAt - Date.parse(a.startedAt)) } : a));
};

const finish = (doc: GenerationDoc, data: Extract<GenerationEvent, { type: 'GenerationCompleted' | 'GenerationFailed' | 'GenerationCancelled' }>['data']): GenerationDoc => ({
  ...doc,
  attempts: closeOpenAttempts(doc, data.generationTimeMs),
  finishedAt: data.at,
  model: data.model,
  providerSlug: data.providerSlug,
  providerName: data.providerName,
  endpointId: data.endpointId,
  usage: data.usage,
  usageSource: data.usageSource,
  cost: data.cost,
  ...(data.cacheDiscount !== undefined && { cacheDiscount: data.cacheDiscount }),
  ...(data.upstreamCost !== undefined && { upstreamCost: data.upstreamCost }),
  streamed: data.streamed,
  latencyMs: data.latencyMs,
  generationTimeMs: data.generationTimeMs,
});

/** A generation's document before anything but its identity is known: what its record or its settlement fill in. */
const blankGeneration = (id: string, accountId: string, keyId: string | null, createdAt: string, reserved: number): GenerationDoc => ({
  _id: id,
  accountId,
  keyId,
  status: 'pending',
  createdAt,
  finishedAt: null,
  requestedModels: [],
  apiType: null,
  router: null,
  streamed: null,
  user: null,
  model: null,
  providerSlug: null,
  providerName: null,
  endpointId: null,
  upstreamId: null,
  usage: null,
  usageSource: null,
  cost: 0,
  reserved,
  latencyMs: null,
  generationTimeMs: null,
  finishReason: null,
  nativeFinishReason: null,
  error: null,
  attempts: [],
});

/**
 * A charge with no record (yet): what the ledger's settlement knows of the call. In the normal flow its record follows
 * at once and replaces it (GenerationRequested starts the document afresh); it stays only when the process stopped
 * between the two appends.
 */
const unrecorded = (d: ReservationSettled['data']): GenerationDoc => ({
  // Created when the reservation was made: the call's start, as near as the ledger knows it.
  ...blankGeneration(d.generationId, d.accountId, d.keyId, d.reservedAt, d.reserved),
  status: 'unrecorded',
  ...(d.usage?.workflowId !== undefined && { workflowId: d.usage.workflowId }),
  model: d.usage?.model || null,
  providerSlug: d.usage?.provider || null,
  // The ledger does not keep cache-write tokens (the prompt count includes them).
  usage: d.usage ? { prompt: d.usage.promptTokens, completion: d.usage.completionTokens, reasoning: d.usage.reasoningTokens, cached: d.usage.cachedTokens, cacheWrite: 0 } : null,
  // The call's cost, as a record holds it (the ledger's `actual`; `charged` is less only when the platform absorbed some).
  cost: d.actual,
  ...(d.byok !== undefined && { upstreamCost: d.byok.upstreamCost }),
});

export const generationsProjection = defineProjection<GenerationDoc>({
  name: 'generations',
  // 3: a settlement without a record is a generation (`unrecorded`).
  version: 3,
  collection: GENERATIONS,
  // The generations' own events, and the ledger's settlements (a charge whose record a stopped process never wrote).
  filter: [{ categories: ['generation'] }, { categories: [LEDGER_CATEGORY], eventTypes: ['ReservationSettled'] }],
  // Listings page an account's documents in `_id` order.
  indexes: [{ keys: { accountId: 1, _id: 1 } }],
  onDisk: true,
  documentId: (event) => (event as RecordedEvent<GenerationEvent | ReservationSettled>).data.generationId,
  evolve: (doc, recorded) => {
    // The settlement comes before its record: it makes a document only for a generation that has none, and never
    // changes one (a recorded generation's fields are its record's).
    if (recorded.type === 'ReservationSettled') return doc ?? unrecorded((recorded as RecordedEvent<ReservationSettled>).data);
    const event = recorded as RecordedEvent<GenerationEvent>;
    if (event.type === 'GenerationRequested') {
      const d = event.data;
      return {
        ...blankGeneration(d.generationId, d.accountId, d.keyId, d.at, d.reserved),
        requestedModels: [...d.models],
        apiType: d.apiType,
        router: d.router,
        ...(d.workflow !== undefined && { workflowId: d.workflow.workflowId, runId: d.workflow.runId }),
        ...(d.app !== undefined && { app: d.app }),
        streamed: d.stream,
        user: d.user,
        ...(d.promptMedia !== undefined && { promptMedia: d.promptMedia }),
        ...(d.sessionId !== undefined && { sessionId: d.sessionId }),
        attempts: [],
      };
    }
    if (!doc) return null;
    switch (event.type) {
      case 'AttemptStarted': {
        const { attempt, endpointId, providerSlug, model, at } = event.data;
        return { ...doc, attempts: [...doc.attempts, { attempt, endpointId, providerSlug, model, ok: true, errorCode: null, status: null, latencyMs: null, startedAt: at }] };
      }
      case 'AttemptFailed': {
        const { attempt, errorCode, status, latencyMs } = event.data;
        return { ...doc, attempts: doc.attempts.map((a) => (a.attempt === attempt ? { ...a, ok: false, errorCode, status, latencyMs } : a)) };
      }
      case 'GenerationCompleted':
        return {
          ...finish(doc, event.data),
          status: 'completed',
          upstreamId: event.data.upstreamId,
          finishReason: event.data.finishReason,
          nativeFinishReason: event.data.nativeFinishReason,
          // The error its provider ended the answer with mid-generation (absent from older events: none was kept).
          ...(event.data.error !== undefined && { error: { type: event.data.error.errorType, status: event.data.error.status, message: event.data.error.message } }),
          ...(event.data.clientGone && { clientGone: true }),
        };
      case 'GenerationFailed':
        return {
          ...finish(doc, event.data),
          status: 'failed',
          finishReason: 'error',
          error: { type: event.data.errorType, status: event.data.status, message: event.data.message },
          ...(event.data.clientGone && { clientGone: true }),
        };
      case 'GenerationCancelled':
        return { ...finish(doc, event.data), status: 'cancelled' };
      case 'UsageOverReported':
        // The outcome already holds the billed usage; the reported figures are in the usageOverReports read model.
        return doc;
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const generationQueries = (store: ReadStore) => {
  const generations = store.collection<GenerationDoc>(GENERATIONS);
  return {
    byIds: (ids: readonly string[]) => generations.find({ _id: { $in: [...ids] } }),
    byId: (id: string) => generations.findOne({ _id: id }),
  };
};
