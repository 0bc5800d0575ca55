import type { EndpointDoc, ModelDoc } from '../../../projections/catalog.js';
import type { Modality } from './model.events.js';
import { PRICE_FIELDS } from './provider.events.js';

/**
 * The one model-listing query, with one set of rules, behind GraphQL `models` and REST `/api/v1/models` (each has a
 * thin parser into `ModelQuery`). Pure: the read model's documents and the routing stats come in.
 */

/**
 * An endpoint that serves the `:free` variant, as routing reads it (catalog.ts): tagged free and priced at 0. A tagged
 * one with a price (repriced before changePrice refused that) serves the paid model, and is listed with it.
 */
const servesFree = (e: EndpointDoc) => e.variants.includes('free') && PRICE_FIELDS.every((f) => e.prices[f] === 0);

/**
 * A listed model: its document and the active endpoints of this listing, those that can serve now first, each group
 * cheapest first. `available`: at least one of them can serve now.
 */
export interface ModelListing {
  /** The model id, or `…:free` for the listing of its free endpoints (OpenRouter lists those apart). */
  readonly id: string;
  readonly doc: ModelDoc;
  readonly free: boolean;
  readonly endpoints: readonly EndpointDoc[];
  readonly available: boolean;
}

export const MODEL_SORTS = ['id', 'pricing-low-to-high', 'pricing-high-to-low', 'context-high-to-low', 'throughput-high-to-low', 'latency-low-to-high', 'newest', 'most-popular', 'top-weekly'] as const;
/** The sorts that rank by the last week's usage (requests; tokens). */
export const USAGE_SORTS: readonly ModelSort[] = ['most-popular', 'top-weekly'];
export type ModelSort = (typeof MODEL_SORTS)[number];

export interface ModelQuery {
  /** `separate`: a model with free endpoints is listed twice, `id` (paid) and `id:free` (OpenRouter). `merged`: once. */
  readonly freeVariants: 'separate' | 'merged';
  /** Case-insensitive substring of the id or name. */
  readonly search?: string;
  /** Served by this provider (slug). */
  readonly provider?: string;
  /** Nano-dollars per prompt / completion token: some endpoint of the listing at most these (both on one endpoint). */
  readonly maxPromptPrice?: number;
  readonly maxCompletionPrice?: number;
  readonly minContextLength?: number;
  /** Each supported by some endpoint of the listing. */
  readonly supportedParameters?: readonly string[];
  /** The model takes one of these as input (absent: any). */
  readonly inputModalities?: readonly Modality[];
  /** The model produces one of these (absent: any). */
  readonly outputModalities?: readonly string[];
  /**
   * Also list models no endpoint of which can ever serve as configured (absent: hidden), and show such endpoints of
   * the listed ones. A model whose endpoints are only down for now (circuit breaker open) is always listed.
   */
  readonly includeUnavailable?: boolean;
  readonly sort: ModelSort;
}

/** Routing's view of an endpoint's recent speed (the gateway's stats snapshot). */
export type EndpointSpeed = (endpointId: string) => { readonly latencyP50Ms: number | null; readonly throughputP50: number | null } | undefined;

/** Requests and tokens of a model id (`a/b`, `a/b:free`) over the last week, every account together. */
export type ModelWeeklyUsage = (modelId: string) => { readonly requests: number; readonly tokens: number } | undefined;

/**
 * When routing can serve an endpoint: `now` (its credential resolves, its circuit breaker is not open), `later` (its
 * breaker is open after recent failures: it is tried again after a cooldown), or `never` as configured (no usable
 * credential; routing does not know it).
 */
export type EndpointServes = (endpointId: string) => 'now' | 'later' | 'never';

const priceOf = (e: EndpointDoc) => e.prices.prompt + e.prices.completion;
const byPrice = (a: EndpointDoc, b: EndpointDoc) => priceOf(a) - priceOf(b);
/** Code-unit order: the same on every read store and locale. */
const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The context length a listing shows: the model's, or its endpoints' largest while only endpoints name it. */
export const contextLengthOf = (m: ModelListing): number => (m.doc.published ? m.doc.contextLength : Math.max(0, ...m.endpoints.map((e) => e.contextLength)));

/**
 * Listings of non-retired models with active endpoints that can serve now or after a cooldown, and with
 * `includeUnavailable` the others too.
 */
export const listingsOf = (docs: readonly ModelDoc[], freeVariants: ModelQuery['freeVariants'], serves: EndpointServes, includeUnavailable: boolean): ModelListing[] => {
  const out: ModelListing[] = [];
  const push = (id: string, doc: ModelDoc, free: boolean, endpoints: readonly EndpointDoc[]) => {
    const now: EndpointDoc[] = [];
    const rest: EndpointDoc[] = [];
    for (const e of endpoints) {
      const when = serves(e.id);
      if (when === 'now') now.push(e);
      else if (when === 'later' || includeUnavailable) rest.push(e);
    }
    if (now.length + rest.length > 0) out.push({ id, doc, free, endpoints: [...now, ...rest], available: now.length > 0 });
  };
  for (const doc of docs) {
    if (doc.retired) continue;
    const active = doc.endpoints.filter((e) => e.status === 'active').sort(byPrice);
    if (freeVariants === 'merged') {
      push(doc._id, doc, false, active);
      continue;
    }
    push(doc._id, doc, false, active.filter((e) => !servesFree(e)));
    push(`${doc._id}:free`, doc, true, active.filter(servesFree));
  }
  return out;
};

const matches = (m: ModelListing, q: ModelQuery): boolean => {
  const search = q.search?.toLowerCase();
  const outputs = q.outputModalities;
  return (
    (!search || `${m.doc._id} ${m.doc.name}`.toLowerCase().includes(search)) &&
    (!q.provider || m.endpoints.some((e) => e.provider === q.provider)) &&
    ((q.maxPromptPrice === undefined && q.maxCompletionPrice === undefined) ||
      m.endpoints.some((e) => (q.maxPromptPrice === undefined || e.prices.prompt <= q.maxPromptPrice) && (q.maxCompletionPrice === undefined || e.prices.completion <= q.maxCompletionPrice))) &&
    (q.minContextLength === undefined || contextLengthOf(m) >= q.minContextLength) &&
    (q.supportedParameters ?? []).every((p) => m.endpoints.some((e) => e.supportedParameters.includes(p))) &&
    (!q.inputModalities?.length || q.inputModalities.some((i) => m.doc.inputModalities.includes(i))) &&
    (!outputs?.length || outputs.some((o) => (m.doc.outputModalities as readonly string[]).includes(o)))
  );
};

/** The listings a query selects, in its order (ties by id, a paid listing before its `:free` one). */
export const queryModels = (docs: readonly ModelDoc[], q: ModelQuery, speed: EndpointSpeed, serves: EndpointServes, usage: ModelWeeklyUsage = () => undefined): ModelListing[] => {
  /** A listing's usage: its own id's, or with free variants merged into one listing, the paid and free ids' together. */
  const used = (m: ModelListing, pick: 'requests' | 'tokens'): number =>
    q.freeVariants === 'merged' ? (usage(m.doc._id)?.[pick] ?? 0) + (usage(`${m.doc._id}:free`)?.[pick] ?? 0) : (usage(m.id)?.[pick] ?? 0);
  const best = (m: ModelListing, pick: 'latency' | 'throughput'): number | null => {
    const values = m.endpoints.map((e) => speed(e.id)).map((s) => (pick === 'latency' ? s?.latencyP50Ms : s?.throughputP50)).filter((v): v is number => typeof v === 'number');
    return values.length === 0 ? null : pick === 'latency' ? Math.min(...values) : Math.max(...values);
  };
  const cheapest = (m: ModelListing) => (m.endpoints[0] ? priceOf(m.endpoints[0]) : Number.MAX_SAFE_INTEGER);
  const key: Record<ModelSort, (m: ModelListing) => number> = {
    id: () => 0,
    'pricing-low-to-high': (m) => cheapest(m),
    'pricing-high-to-low': (m) => -cheapest(m),
    'context-high-to-low': (m) => -contextLengthOf(m),
    'throughput-high-to-low': (m) => -(best(m, 'throughput') ?? -1),
    'latency-low-to-high': (m) => best(m, 'latency') ?? Number.MAX_SAFE_INTEGER,
    newest: (m) => -Date.parse(m.doc.createdAt),
    'most-popular': (m) => -used(m, 'requests'),
    'top-weekly': (m) => -used(m, 'tokens'),
  };
  const by = key[q.sort];
  return listingsOf(docs, q.freeVariants, serves, q.includeUnavailable === true)
    .filter((m) => matches(m, q))
    .map((m) => ({ m, k: by(m) }))
    .sort((a, b) => a.k - b.k || byId(a.m.doc._id, b.m.doc._id) || Number(a.m.free) - Number(b.m.free))
    .map(({ m }) => m);
};

/**
 * One listing of a model, serving or not (its `available` says): its `…:free` one when `free` (the catalog variant;
 * routing variants such as `:nitro` name the model), or null when the model is unknown or retired.
 */
export const findListing = (doc: ModelDoc | null, free: boolean, serves: EndpointServes): ModelListing | null => {
  if (!doc || doc.retired) return null;
  const wanted = free ? `${doc._id}:free` : doc._id;
  return listingsOf([doc], 'separate', serves, true).find((m) => m.id === wanted) ?? { id: wanted, doc, free, endpoints: [], available: false };
};
