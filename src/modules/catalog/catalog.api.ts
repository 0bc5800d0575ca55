/**
 * The catalog's application API: providers, models, endpoints, proposals and the auto-router's rules. GraphQL
 * (catalog.graphql.ts), REST (catalog.rest.ts) and the seed's operators call only this. Commands answer with what they
 * decided, folded from the aggregate's own events through the read models' evolve functions (the shape the read model
 * will have, without reading it); queries read the read models, and the in-memory routing catalog for what routing
 * knows (whether a credential resolves, the auto-router's rules).
 */
import { z } from 'zod';
import { catalogDocs, catalogQueries, type EndpointDoc, type EndpointProposalDoc, type ModelDoc, type ProposalStatus, type ProviderDoc } from '../../../projections/catalog.js';
import { providerStatsQueries, summarizeStats, type EndpointStatsSummary } from '../../../projections/providerStats.js';
import type { Actor } from '../../core.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { DomainEvent, EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { foldEvents, handleCommand, type Decider, type HandleOptions, type HandleResult } from '../../eventStore/handleCommand.js';
import { oneAtATime } from '../../oneAtATime.js';
import type { ReasoningControls } from '../../gateway/providers/adapter.js';
import { adapterFor } from '../../gateway/providers/registry.js';
import { REASONING_EFFORTS } from '../../gateway/types.js';
import type { ReadStore } from '../../readStore/readStore.js';
import type { ByokKey } from '../accounts/account.events.js';
import { byokStatus } from '../accounts/byok.js';
import { isAdmin, type Principal } from '../auth/principal.js';
import type { OutboundPolicy } from '../outbound/outboundPolicy.js';
import { autoRouterDecider, parseAutoRules } from './autoRouter.decider.js';
import { AUTO_ROUTER_STREAM, ROUTER_MODEL_IDS, type AutoRule } from './autoRouter.events.js';
import type { Catalog, ModelAlias } from './catalog.js';
import type { CredentialVault } from './credentials.js';
import { mayCreateModel, modelDecider } from './model.decider.js';
import { authorOf, modelStream, type Modality, type ModelEvent, type ModelSpec } from './model.events.js';
import { checkAliasForm, modelAliasDecider } from './modelAlias.decider.js';
import { isAliasId, modelAliasStream } from './modelAlias.events.js';
import { resolveModelId, retiredRefusal, type ResolvedModelId } from './modelId.js';
import { findListing, queryModels, USAGE_SORTS, type EndpointServes, type EndpointSpeed, type ModelListing, type ModelQuery } from './modelListing.js';
import { endpointTraffic, type EndpointTrafficRow } from './providerTraffic.js';
import { ABANDONED_CLAIM_MS, handleTaken, providerHandleDecider } from './providerHandle.decider.js';
import { handlesOf, providerHandleStream, type ProviderHandleEvent } from './providerHandle.events.js';
import {
  endpointSpecOf,
  pendingOf,
  proposalChanges,
  providerDecider,
  publishesDirectly,
  requireManager,
  sameEndpointSpec,
  validateSpec,
  type ModelAccess,
  type ProposalChange,
  type ProviderCommand,
} from './provider.decider.js';
import { endpointId, providerStream, type CatalogActor, type CredentialRef, type DataPolicy, type EndpointPrices, type EndpointSpec, type ProviderEvent, type ProviderProtocol, type VariantTag } from './provider.events.js';
import { endpointParameters } from '../../gateway/parameterNames.js';

/** Who asks, and the request it belongs to (the events' correlation id). */
export interface CatalogCaller {
  readonly principal: Principal;
  readonly correlationId: string;
}

/** An endpoint as commands and GraphQL show it: the read model's document and its model. */
export type EndpointView = Omit<EndpointDoc, 'publishedAt' | 'updatedAt'> & { readonly model: string };

export type PricesInput = { prompt: number; completion: number; request?: number | null; reasoning?: number | null; cacheRead?: number | null; cacheWrite?: number | null };

export interface RegisterProviderInput {
  readonly slug: string;
  readonly name: string;
  readonly protocol: ProviderProtocol;
  readonly baseUrl: string;
  readonly apiKey?: string | null;
  readonly credentialEnv?: string | null;
  /** JSON from the caller: parsed here. */
  readonly headers?: unknown;
}

export interface PublishEndpointInput {
  readonly provider: string;
  readonly model: string;
  readonly upstreamModel: string;
  readonly prices: PricesInput;
  readonly contextLength: number;
  readonly maxOutput: number;
  readonly quantization?: string | null;
  readonly supportedParameters?: readonly string[] | null;
  readonly variants?: readonly VariantTag[] | null;
  readonly modelName?: string | null;
  readonly modelDescription?: string | null;
  /** What the model takes as input (text always): a new model's (default text only), or a change by its owner or an admin. */
  readonly inputModalities?: readonly Modality[] | null;
}

export interface EndpointRef {
  readonly provider: string;
  readonly model: string;
}

/** What the REST endpoints list shows of one endpoint beyond its document. */
export interface EndpointDetail {
  readonly endpoint: EndpointDoc;
  readonly provider: ProviderDoc | undefined;
  readonly stats: EndpointStatsSummary;
  readonly circuitBreaker: string;
  readonly available: boolean;
  /** Null when available; a credential's problem only for the provider's owner and admins. */
  readonly unavailableReason: string | null;
}

/** An endpoint whose provider routing does not know (yet): nothing is known to reach it. */
const NO_REASONING_CONTROLS: ReasoningControls = { efforts: [], maxTokens: false };

/** Whether routing can serve an endpoint now, and why not (`problem`: the credential's, for its owner and admins). */
export interface EndpointAvailability {
  readonly available: boolean;
  readonly reason: 'credentials' | 'own_key' | 'circuit_open' | 'unknown_to_routing' | null;
  readonly problem: string | null;
}

const UNAVAILABLE_WHY: Record<NonNullable<EndpointAvailability['reason']>, string> = {
  credentials: 'its credentials are not available',
  own_key: 'your own key for its provider (BYOK) cannot be sent now, and it does not allow the shared key (fallbackToShared: false): see Account.byokKeys',
  circuit_open: 'its circuit breaker is open: recent attempts failed, it is tried again after a cooldown',
  unknown_to_routing: 'routing does not know it yet',
};

// -----------------------------------------------------------------------------------------------------------------
// Policy: who sees and does what.

/** A provider's credential, its failures and a model's owner are the owner's and the admins' business. */
export const seesOwnerDetails = (viewer: Principal | null, ownerAccountId: string | undefined): boolean =>
  viewer !== null && (isAdmin(viewer) || (ownerAccountId !== undefined && viewer.accountId === ownerAccountId));

const catalogActor = (principal: Principal): CatalogActor => ({ accountId: principal.accountId, admin: isAdmin(principal) });

// -----------------------------------------------------------------------------------------------------------------
// Input parsing

const HOP_BY_HOP = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection', 'expect', 'content-type']);
/**
 * Headers that carry a credential: the provider's key goes in `apiKey` (sealed at rest), never among these headers,
 * which are stored and shown as they are (and one here would replace the sealed key on every call).
 */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'x-api-key', 'x-goog-api-key', 'api-key', 'cookie']);

/** Extra headers sent upstream: HTTP tokens as names, printable values; the framing ones are Switchyard's to set. */
const headersSchema = z.record(
  z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/, { error: 'is not a valid header name' })
    .refine((name) => !HOP_BY_HOP.has(name.toLowerCase()), { error: 'is set by Switchyard, not by a provider' })
    .refine((name) => !CREDENTIAL_HEADERS.has(name.toLowerCase()), { error: 'carries a credential: give the key as apiKey (sealed at rest), not as a header' }),
  z.string({ error: 'must be a string' }).regex(/^[\t\x20-\x7e\x80-\xff]{0,4096}$/, { error: 'must be printable text of at most 4096 characters (no line breaks)' }),
  // A bad key comes as one invalid_key issue wrapping the key's own: show the key's message.
  { error: (issue) => (issue.code === 'invalid_key' ? issue.issues[0]?.message : 'must be an object of strings') },
).refine((headers) => Object.keys(headers).length <= 50, { error: 'has more than 50 headers' });

export const parseProviderHeaders = (json: unknown): Record<string, string> => {
  const parsed = headersSchema.safeParse(json ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    // A bad key is reported on the key itself: `headers["bad name"]`.
    const path = ['headers', ...issue.path.map((key) => (typeof key === 'string' && /^[\w-]+$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`))].join('');
    return { path, message: `${path} ${issue.message}` };
  });
  throw new ValidationError(problems.map((p) => p.message).join('; '), { field: problems[0]?.path ?? 'headers' });
};

const sameModalities = (a: readonly Modality[], b: readonly Modality[]) => a.length === b.length && a.every((m) => b.includes(m));

const toPrices = (input: PricesInput): EndpointPrices => ({
  prompt: input.prompt,
  completion: input.completion,
  request: input.request ?? 0,
  reasoning: input.reasoning ?? input.completion,
  cacheRead: input.cacheRead ?? input.prompt,
  cacheWrite: input.cacheWrite ?? input.prompt,
});

// -----------------------------------------------------------------------------------------------------------------
// Answers folded from an aggregate's own events

/** The read models' evolve functions take recorded events but read only their type and data. */
const asRecorded = (event: DomainEvent, stream: string): RecordedEvent =>
  ({ id: '', stream, revision: -1, position: -1, metadata: {}, recordedAt: '', type: event.type, data: event.data }) as RecordedEvent;

/** A decider that also folds the documents its commands answer with. Deciding is unchanged. */
const withView = <S, C, E extends DomainEvent, V>(decider: Decider<S, C, E>, view: { initial: V; evolve(view: V, event: RecordedEvent): V }, stream: string): Decider<{ state: S; view: V }, C, E> => ({
  initialState: () => ({ state: decider.initialState(), view: view.initial }),
  evolve: (s, event) => ({ state: decider.evolve(s.state, event), view: view.evolve(s.view, asRecorded(event, stream)) }),
  decide: (command, s) => decider.decide(command, s.state),
});

interface ProviderView {
  readonly provider: ProviderDoc | null;
  /** Per model, the model document as this provider's events alone make it: its one endpoint is this provider's. */
  readonly models: ReadonlyMap<string, ModelDoc>;
  readonly proposals: ReadonlyMap<string, EndpointProposalDoc>;
}

const evolveInto = <D>(map: ReadonlyMap<string, D>, id: string | null, evolve: (doc: D | null) => D | null): ReadonlyMap<string, D> => {
  if (id === null) return map;
  const next = evolve(map.get(id) ?? null);
  if (next === (map.get(id) ?? null)) return map;
  const copy = new Map(map);
  if (next === null) copy.delete(id);
  else copy.set(id, next);
  return copy;
};

const providerView = {
  initial: { provider: null, models: new Map(), proposals: new Map() } as ProviderView,
  evolve: (view: ProviderView, event: RecordedEvent): ProviderView => ({
    provider: catalogDocs.provider.evolve(view.provider, event),
    models: evolveInto(view.models, catalogDocs.model.documentId(event), (doc) => catalogDocs.model.evolve(doc, event)),
    proposals: evolveInto(view.proposals, catalogDocs.proposal.documentId(event), (doc) => catalogDocs.proposal.evolve(doc, event)),
  }),
};

const modelView = { initial: null as ModelDoc | null, evolve: (doc: ModelDoc | null, event: RecordedEvent) => catalogDocs.model.evolve(doc, event) };

const endpointOf = (view: ProviderView, providerSlug: string, model: string): EndpointView => {
  const endpoint = view.models.get(model)?.endpoints.find((e) => e.id === endpointId(model, providerSlug));
  if (!endpoint) throw new NotFoundError('Endpoint', `${model} on ${providerSlug}`);
  const { publishedAt: _p, updatedAt: _u, ...shown } = endpoint;
  return { ...shown, model };
};

const proposalOf = (view: ProviderView, providerSlug: string, model: string): EndpointProposalDoc => {
  const proposal = view.proposals.get(endpointId(model, providerSlug));
  if (!proposal) throw new NotFoundError('Endpoint proposal', `${model} on ${providerSlug}`);
  return proposal;
};

// -----------------------------------------------------------------------------------------------------------------

/** Runs a command and returns once the read models have applied it (Core.execute). */
export type Execute = <S, C, E extends DomainEvent>(stream: string, decider: Decider<S, C, E>, command: C, actor: Actor, options?: Pick<HandleOptions<E>, 'first'>) => Promise<HandleResult<S, E>>;

export const createCatalogApi = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  /** The in-memory catalog routing uses (it decides prices; the read models may lag). */
  routing: Catalog;
  vault: CredentialVault;
  outbound: Pick<OutboundPolicy, 'checkUrl'>;
  /** Routing's health of an endpoint: its recent speed and its circuit breaker. */
  routeHealth: { speed: EndpointSpeed; breakerState(endpointId: string): string };
  /** An account's own provider keys (BYOK), by provider slug: what routing will try for it (the auth directory's). */
  byokKeys: (accountId: string) => ReadonlyMap<string, ByokKey> | undefined;
  /** The last week's requests and tokens per model id (the ledger's usage), for the most-popular and top-weekly sorts. */
  weeklyModelUsage: () => Promise<ReadonlyMap<string, { readonly requests: number; readonly tokens: number }>>;
  /**
   * The most active endpoints and pending proposals a non-admin account may have on its providers together
   * (ENDPOINT_MAX_PER_ACCOUNT): each adds a model to the public listing or to the admins' queue. Absent: no cap.
   */
  maxEndpointsPerAccount?: number;
  execute: Execute;
  now: () => Date;
}) => {
  const queries = catalogQueries(deps.readStore);
  const stats = providerStatsQueries(deps.readStore);
  const at = () => deps.now().toISOString();
  /** Each endpoint's rolling stats, in the order asked: one read for all of them. */
  const endpointStats = async (ids: readonly string[]): Promise<EndpointStatsSummary[]> => {
    const docs = new Map((await stats.byIds(ids)).map((d) => [d._id, d]));
    const nowMs = deps.now().getTime();
    return ids.map((id) => summarizeStats(docs.get(id), nowMs));
  };
  /** The providers `viewer` owns (an admin: every provider). */
  const ownedProviders = async (viewer: Principal): Promise<ProviderDoc[]> => {
    const all = await queries.allProviders();
    return isAdmin(viewer) ? all : all.filter((p) => p.ownerAccountId === viewer.accountId);
  };
  const actorOf = (caller: CatalogCaller): Actor => ({ actor: caller.principal.accountId, correlationId: caller.correlationId });

  /** The viewer's own provider keys (BYOK), or null for an anonymous viewer or an account without any (most). */
  const keysOf = (viewer: Principal | null | undefined): ReadonlyMap<string, ByokKey> | null => {
    const keys = viewer ? deps.byokKeys(viewer.accountId) : undefined;
    return keys !== undefined && keys.size > 0 ? keys : null;
  };
  /**
   * Served now, for a viewer with `keys` (null: anyone): a key reaches the provider, and the breaker is not open
   * (half-open routes normally). The key is the viewer's own where it is active (the provider still points at the
   * origin it was set for), else the provider's shared one where its credential resolves, unless the viewer's own key
   * for it refuses the shared key (fallbackToShared: false), as routing reads them (routePlan.ts). Read from routing's
   * memory on every call, so a breaker opening or closing and a new provider show at once. Demo endpoints answer
   * offline: always available.
   */
  const availability = (id: string, keys: ReadonlyMap<string, ByokKey> | null = null): EndpointAvailability => {
    const endpoint = deps.routing.endpoint(id);
    if (!endpoint) return { available: false, reason: 'unknown_to_routing', problem: null };
    const { provider } = endpoint;
    if (provider.protocol === 'demo') return { available: true, reason: null, problem: null };
    const key = keys?.get(provider.slug);
    if (key === undefined || byokStatus(provider, key).status !== 'active') {
      if (key?.fallbackToShared === false) return { available: false, reason: 'own_key', problem: null };
      const problem = provider.auth().problem;
      if (problem !== null) return { available: false, reason: 'credentials', problem };
    }
    if (deps.routeHealth.breakerState(id) === 'open') return { available: false, reason: 'circuit_open', problem: null };
    return { available: true, reason: null, problem: null };
  };
  const isAvailable = (id: string, viewer: Principal | null = null) => availability(id, keysOf(viewer)).available;
  /** For the listing: an open breaker is a passing outage (the model stays listed), a missing credential is not. */
  const servesWith =
    (keys: ReadonlyMap<string, ByokKey> | null): EndpointServes =>
    (id) => {
      const { available, reason } = availability(id, keys);
      return available ? 'now' : reason === 'circuit_open' ? 'later' : 'never';
    };
  const anyoneServes = servesWith(null);
  /** As `viewer` is served: the shared judgement unless the viewer's account has keys of its own. */
  const servesFor = (viewer: Principal | null | undefined): EndpointServes => {
    const keys = keysOf(viewer);
    return keys === null ? anyoneServes : servesWith(keys);
  };
  /** Why an endpoint is unavailable as `viewer` may read it: a credential's problem names a variable or a key. */
  const unavailableReason = (id: string, viewer: Principal | null): string | null => {
    const { reason, problem } = availability(id, keysOf(viewer));
    if (reason === null) return null;
    return reason === 'credentials' && problem !== null && seesOwnerDetails(viewer, deps.routing.endpoint(id)?.provider.ownerAccountId) ? problem : UNAVAILABLE_WHY[reason];
  };

  /** Run a command and return once routing (the in-memory catalog) and the read models both see it. */
  const run = async <S, C, E extends DomainEvent>(caller: CatalogCaller, stream: string, decider: Decider<S, C, E>, command: C, options?: Pick<HandleOptions<E>, 'first'>) => {
    const result = await deps.execute(stream, decider, command, actorOf(caller), options);
    if (result.position !== null) await deps.routing.waitFor(result.position);
    return result;
  };
  const providerCommand = async (caller: CatalogCaller, slug: string, command: ProviderCommand, options?: Pick<HandleOptions<ProviderEvent>, 'first'>) =>
    (await run(caller, providerStream(slug), withView(providerDecider, providerView, providerStream(slug)), command, options)).state;
  /** A change of one of a provider's settings, answering the provider as it is after it. */
  const changeProvider = async (caller: CatalogCaller, slug: string, command: ProviderCommand): Promise<ProviderDoc> => {
    const decided = await providerCommand(caller, slug, command);
    if (!decided.view.provider) throw new NotFoundError('Provider', slug);
    return decided.view.provider;
  };
  /** CONFLICT when the slug or the name (as a handle) names another provider the catalog holds. */
  const requireFreeHandles = (slug: string, name: string) => {
    const handles = handlesOf({ slug, name });
    for (const provider of deps.routing.providers()) {
      const taken = provider.slug === slug ? undefined : handles.find((h) => handlesOf(provider).includes(h));
      if (taken !== undefined) throw handleTaken(taken, provider.slug);
    }
  };
  /**
   * Claim the handles of a new provider's slug and name (providerHandle.events.ts), or throw ConflictError when one
   * names another provider: a provider the catalog holds (registered before handles were claimed, the seed's too), or
   * one whose claim is in the handle's stream. A claim left by a registration that never happened (a crash between the
   * claim and the registration) is taken over once it is older than ABANDONED_CLAIM_MS and its provider's stream is
   * still empty.
   */
  const claimHandles = async (caller: CatalogCaller, slug: string, name: string) => {
    const handles = handlesOf({ slug, name });
    requireFreeHandles(slug, name);
    const metadata = { actor: caller.principal.accountId, correlationId: caller.correlationId, at: at() };
    for (const handle of handles) {
      const stream = providerHandleStream(handle);
      const claim = foldEvents(providerHandleDecider, (await deps.eventStore.readStream(stream)) as RecordedEvent<ProviderHandleEvent>[]);
      const holder = claim.slug;
      const holding = holder === null || holder === slug ? undefined : deps.routing.provider(holder);
      const abandoned =
        holder !== null &&
        holder !== slug &&
        holding === undefined &&
        Date.parse(claim.at ?? '') < Date.parse(metadata.at) - ABANDONED_CLAIM_MS &&
        (await deps.eventStore.readStream(providerStream(holder), { maxCount: 1 })).length === 0;
      const replacing = (holding && !handlesOf(holding).includes(handle)) || abandoned ? holder : null;
      await handleCommand(deps.eventStore, stream, providerHandleDecider, { type: 'ClaimProviderHandle', data: { handle, slug, replacing, at: metadata.at } }, { metadata });
    }
  };
  /** A base URL of a provider an admin did not register: refused unless it resolves to public addresses (or ones OUTBOUND_ALLOW admits). */
  const checkPublicBaseUrl = async (baseUrl: string) => {
    const refusal = await deps.outbound.checkUrl(baseUrl);
    if (refusal) throw new ValidationError(`baseUrl refused: ${refusal.message}`, { field: 'baseUrl', reason: refusal.reason });
  };
  const modelCommand = (caller: CatalogCaller, modelId: string, command: Parameters<typeof modelDecider.decide>[0]) =>
    run(caller, modelStream(modelId), withView(modelDecider, modelView, modelStream(modelId)), command);
  /**
   * A change of a model, answering the model as its stream decided it; its endpoints (other providers' aggregates, not
   * part of this decision) from the read model.
   */
  const changeModel = async (caller: CatalogCaller, modelId: string, command: Parameters<typeof modelDecider.decide>[0]): Promise<ModelDoc> => {
    const decided = await modelCommand(caller, modelId, command);
    if (!decided.state.view) throw new NotFoundError('Model', modelId);
    const listed = await queries.model(modelId);
    return { ...decided.state.view, endpoints: listed?.endpoints ?? [] };
  };

  /**
   * The account's changes that may take room under ENDPOINT_MAX_PER_ACCOUNT run one at a time in this process, each from
   * its check to the moment routing and the read models hold its result, so the cap is exact within a process. The
   * count spans the account's providers (several streams), which no append guards: processes sharing one event store
   * may still pass it by the changes they make at the same moment (README). Admins are not counted: not held.
   */
  const endpointRoom = oneAtATime();
  const withEndpointRoom = <T>(actor: CatalogActor, work: () => Promise<T>): Promise<T> =>
    deps.maxEndpointsPerAccount === undefined || actor.admin ? work() : endpointRoom(actor.accountId, work);
  /**
   * CONFLICT (`too_many_endpoints`) when a non-admin account would get one more active endpoint or pending proposal
   * than ENDPOINT_MAX_PER_ACCOUNT allows (`publishing`: the endpoint id a publish names, which may be there already).
   * Counted from routing's catalog (active endpoints of the providers it owns) and the proposals read model; call it
   * within withEndpointRoom, so that the count includes every earlier change of the account's made in this process.
   */
  const requireEndpointRoom = async (actor: CatalogActor, publishing?: string) => {
    const max = deps.maxEndpointsPerAccount;
    if (max === undefined || actor.admin) return;
    // Republishing an endpoint (whatever its status) or a pending proposal adds nothing.
    if (publishing !== undefined && (deps.routing.endpoint(publishing) || (await queries.proposal(publishing))?.status === 'pending')) return;
    const held = deps.routing.activeEndpointsOwnedBy(actor.accountId) + (await queries.pendingProposalCount(actor.accountId));
    if (held >= max) {
      throw new ConflictError(`The account has the maximum of ${max} active endpoints and pending proposals on its providers; disable one first, or ask an admin to raise ENDPOINT_MAX_PER_ACCOUNT`, {
        reason: 'too_many_endpoints',
        limit: max,
      });
    }
  };

  /** The model's owner and openness from its own stream (exact; the read model may lag). */
  const loadModel = async (modelId: string) => foldEvents(modelDecider, (await deps.eventStore.readStream(modelStream(modelId))) as RecordedEvent<ModelEvent>[]);
  const accessOf = (model: Awaited<ReturnType<typeof loadModel>>): ModelAccess | null =>
    model.status === 'none' ? null : { ownerAccountId: model.ownerAccountId, openToProviders: model.openToProviders };

  /**
   * The models of a provider's published endpoints the actor may change by itself (its own, or open to providers), read
   * from their streams: a change of the provider's base URL or cancellation moves the others, which an admin admitted
   * (see the decider's ChangeBaseUrl). An admin needs none.
   */
  const freeModelsOf = async (slug: string, actor: CatalogActor): Promise<string[]> => {
    if (actor.admin) return [];
    const provider = foldEvents(providerDecider, (await deps.eventStore.readStream(providerStream(slug))) as RecordedEvent<ProviderEvent>[]);
    if (provider.status !== 'registered') return [];
    const free: string[] = [];
    for (const [model, endpoint] of provider.endpoints) {
      if (endpoint.status !== 'active' && endpoint.status !== 'disabled') continue;
      if (publishesDirectly(actor, accessOf(await loadModel(model)))) free.push(model);
    }
    return free;
  };

  /**
   * An admin approving a proposal that carries a model not in the catalog creates that model first (two streams, so
   * two appends: model first, so that an approved endpoint never routes to a model the catalog does not list; if the
   * approval then fails, the model stays, a neutral name owned by the root account). Run in the provider stream's turn,
   * right before the approval is decided: a republish of the proposal in this process cannot come between the check
   * below and the approval (QA s45 regress #1: it did, and a refused approval left the model created); across
   * processes it still can.
   */
  const createProposedModel = async (caller: CatalogCaller, approval: Extract<ProviderCommand, { type: 'ApproveEndpoint' }>) => {
    const { providerSlug, model: modelId } = approval.data;
    const provider = foldEvents(providerDecider, (await deps.eventStore.readStream(providerStream(providerSlug))) as RecordedEvent<ProviderEvent>[]);
    const proposal = provider.status === 'registered' ? provider.endpoints.get(modelId) : undefined;
    if (proposal?.status !== 'proposed' || proposal.newModel === null) return;
    // The approval as it stands refused (changed since it was reviewed, at any price or version): it creates nothing,
    // and the command that follows says why.
    try {
      providerDecider.decide(approval, provider);
    } catch {
      return;
    }
    if ((await loadModel(modelId)).status !== 'none') return;
    await modelCommand(caller, modelId, { type: 'PublishModel', data: { ...proposal.newModel, at: at(), actor: catalogActor(caller.principal), provider: null } });
  };

  /**
   * Why a model id saved for later (a preset's, an account's default model, a workflow step's) could never answer a
   * chat, or null when it can: a catalog model as routing reads the id (resolveModelId: an alias, another spelling of
   * a version), with supported variants, or a router id; not a retired model, one that writes no text, or `:free` of a
   * model without free endpoints. Reads routing's catalog: the one that will route the id (exact, fed by the event log;
   * the read models may lag). `resolved`: the id as resolveModelId read it.
   */
  const problemOf = (model: string, resolved: ResolvedModelId): string | null => {
    const { base, free, problem, modelId } = resolved;
    if (problem !== null) return problem;
    if (ROUTER_MODEL_IDS.includes(base)) return null;
    if (modelId === null) return `${model} is not a valid model ID`;
    const entry = deps.routing.model(modelId);
    if (entry?.retired) return retiredRefusal(model, resolved);
    if (entry && !entry.spec.outputModalities.includes('text')) return `${model} does not produce text (its output is ${entry.spec.outputModalities.join(', ')})`;
    if (free && !deps.routing.endpoints(modelId).some((e) => e.free)) return `${modelId} has no free endpoints`;
    return null;
  };
  const modelProblem = (model: string): string | null => problemOf(model, resolveModelId(deps.routing, model));

  return {
    // ---------------------------------------------------------------------------------------------------------------
    // Commands

    /**
     * Register a provider owned by the caller: the key encrypted at rest, an environment variable only for admins
     * (and only one the operator allowed), a base URL that resolves to public addresses unless an admin registers it.
     */
    async registerProvider(caller: CatalogCaller, input: RegisterProviderInput): Promise<ProviderDoc> {
      const admin = isAdmin(caller.principal);
      if (input.apiKey && input.credentialEnv) throw new ValidationError('Give either apiKey or credentialEnv, not both');
      // A key goes into a header as it is: printable, one line, of a sane length.
      if (input.apiKey !== undefined && input.apiKey !== null && !/^[\x21-\x7e]{1,4096}$/.test(input.apiKey)) {
        throw new ValidationError('apiKey must be 1 to 4096 printable characters, without spaces or line breaks', { field: 'apiKey' });
      }
      if (input.protocol === 'demo' && !admin) throw new ValidationError('Only admins register demo providers');
      const headers = parseProviderHeaders(input.headers);
      if (input.credentialEnv) {
        if (!admin) throw new ForbiddenError('Only an admin may name an environment variable as a provider credential: pass apiKey instead');
        deps.vault.checkEnvName(input.credentialEnv);
      }
      if (!admin && input.protocol !== 'demo') await checkPublicBaseUrl(input.baseUrl);
      const credential: CredentialRef = input.apiKey ? { encrypted: deps.vault.encrypt(input.slug, input.apiKey) } : input.credentialEnv ? { env: input.credentialEnv } : null;
      const command: ProviderCommand = {
        type: 'RegisterProvider',
        data: {
          slug: input.slug,
          name: input.name,
          protocol: input.protocol,
          baseUrl: input.baseUrl,
          credential,
          headers,
          ownerAccountId: caller.principal.accountId,
          trusted: admin,
          at: at(),
          modelNamespaceOwners: deps.routing
            .models()
            .filter((m) => authorOf(m.spec.modelId) === input.slug)
            .map((m) => m.ownerAccountId),
        },
      };
      // A name another provider has is a CONFLICT first, for anyone (before a reserved maker's name, FORBIDDEN to a
      // non-admin, is looked at); then the registration's own checks, so that one it refuses claims no name.
      requireFreeHandles(input.slug, input.name);
      providerDecider.decide(command, foldEvents(providerDecider, (await deps.eventStore.readStream(providerStream(input.slug))) as RecordedEvent<ProviderEvent>[]));
      await claimHandles(caller, input.slug, input.name);
      const decided = await providerCommand(caller, input.slug, command);
      if (!decided.view.provider) throw new NotFoundError('Provider', input.slug);
      return decided.view.provider;
    },

    /**
     * Publish (or republish) a model on one of the caller's providers: creates the model when the caller may (see
     * mayCreateModel), then publishes the endpoint, or files a proposal for an admin when the caller may not publish
     * on that model by itself.
     */
    async publishEndpoint(caller: CatalogCaller, input: PublishEndpointInput): Promise<EndpointView | EndpointProposalDoc> {
      const provider = deps.routing.provider(input.provider);
      if (!provider) throw new NotFoundError('Provider', input.provider);
      const actor = catalogActor(caller.principal);
      // Checked before the model is created too, so that nobody comes to own a model through another's provider.
      requireManager(provider, input.provider, actor);
      const spec: EndpointSpec = {
        model: input.model,
        upstreamModel: input.upstreamModel,
        prices: toPrices(input.prices),
        contextLength: input.contextLength,
        maxOutput: input.maxOutput,
        quantization: input.quantization ?? null,
        supportedParameters: endpointParameters(input.supportedParameters ?? adapterFor(provider.protocol).supportedParameters),
        variants: input.variants ?? [],
      };
      validateSpec(spec);
      return withEndpointRoom(actor, async () => {
        // A new endpoint or proposal (not a republish of one, whatever its status) counts against the account's cap,
        // checked before a model is created for it.
        await requireEndpointRoom(actor, endpointId(input.model, input.provider));
        const now = at();
        const newModel: ModelSpec = {
          modelId: input.model,
          name: input.modelName ?? input.model,
          description: input.modelDescription ?? '',
          contextLength: input.contextLength,
          inputModalities: input.inputModalities ? [...new Set<Modality>(['text', ...input.inputModalities])] : ['text'],
          outputModalities: ['text'],
          tokenizer: 'Other',
        };
        const publishingOn = { slug: provider.slug, ownerAccountId: provider.ownerAccountId };
        let model = await loadModel(input.model);
        // Input modalities route requests (an image goes only to a model that takes images): its owner or an admin may
        // change them by publishing again; anyone else asking for a change is refused, not ignored.
        if (input.inputModalities && model.status === 'published' && !sameModalities(model.spec.inputModalities, newModel.inputModalities)) {
          if (!actor.admin && actor.accountId !== model.ownerAccountId) throw new ForbiddenError(`Model ${input.model} belongs to another account: only its owner or an admin changes its inputModalities`);
          model = (await modelCommand(caller, input.model, { type: 'PublishModel', data: { ...model.spec, inputModalities: newModel.inputModalities, at: now, actor, provider: publishingOn } })).state.state;
        }
        // Outside the provider's namespace the model is not created here: the endpoint becomes a proposal carrying it.
        if (model.status === 'none' && mayCreateModel(input.model, actor, publishingOn)) {
          const created = await modelCommand(caller, input.model, { type: 'PublishModel', data: { ...newModel, at: now, actor, provider: publishingOn } });
          // The state after the command: if another provider created the model first, it names that owner.
          model = created.state.state;
        }
        const access = accessOf(model);
        const decided = await providerCommand(caller, input.provider, { type: 'PublishEndpoint', data: { providerSlug: input.provider, actor, spec, model: access, newModel, at: now } });
        const endpoint = decided.state.status === 'registered' ? decided.state.endpoints.get(input.model) : undefined;
        // A proposal, or a change to a published endpoint waiting for an admin (its amendment of this very spec).
        const filed = endpoint !== undefined && pendingOf(endpoint)?.status === 'proposed' && (endpoint.status === 'proposed' || !sameEndpointSpec(endpoint.spec, spec));
        return filed ? proposalOf(decided.view, input.provider, input.model) : endpointOf(decided.view, input.provider, input.model);
      });
    },

    async changePrice(caller: CatalogCaller, input: EndpointRef & { readonly prices: PricesInput }): Promise<EndpointView> {
      const access = accessOf(await loadModel(input.model));
      const decided = await providerCommand(caller, input.provider, {
        type: 'ChangeEndpointPrice',
        data: { providerSlug: input.provider, actor: catalogActor(caller.principal), model: input.model, prices: toPrices(input.prices), access, at: at() },
      });
      return endpointOf(decided.view, input.provider, input.model);
    },

    async disableEndpoint(caller: CatalogCaller, input: EndpointRef & { readonly reason?: string | null }): Promise<EndpointView> {
      const actor = catalogActor(caller.principal);
      const reason = input.reason ?? (actor.admin ? 'disabled by an admin' : 'disabled by its owner');
      const decided = await providerCommand(caller, input.provider, { type: 'DisableEndpoint', data: { providerSlug: input.provider, actor, model: input.model, reason, at: at() } });
      return endpointOf(decided.view, input.provider, input.model);
    },

    async enableEndpoint(caller: CatalogCaller, input: EndpointRef): Promise<EndpointView> {
      // A disabled endpoint made room under the cap: enabling it takes that room again.
      const actor = catalogActor(caller.principal);
      return withEndpointRoom(actor, async () => {
        const disabled = deps.routing.endpoint(endpointId(input.model, input.provider));
        if (disabled?.status === 'disabled' && disabled.provider.ownerAccountId === caller.principal.accountId) await requireEndpointRoom(actor);
        const decided = await providerCommand(caller, input.provider, { type: 'EnableEndpoint', data: { providerSlug: input.provider, actor, model: input.model, at: at() } });
        return endpointOf(decided.view, input.provider, input.model);
      });
    },

    /**
     * Approve a pending proposal (admins: the decider says so). `expectedVersion` (EndpointProposal.version) and
     * `expectedPrices` pin what the admin reviewed; without either, the proposal is approved as it is now.
     */
    async approveEndpoint(caller: CatalogCaller, input: EndpointRef & { readonly expectedPrices?: EndpointPrices | null; readonly expectedVersion?: number | null }): Promise<EndpointView> {
      const approval: Extract<ProviderCommand, { type: 'ApproveEndpoint' }> = {
        type: 'ApproveEndpoint',
        data: {
          providerSlug: input.provider,
          actor: catalogActor(caller.principal),
          model: input.model,
          ...(input.expectedPrices && { expectedPrices: input.expectedPrices }),
          ...(input.expectedVersion != null && { expectedVersion: input.expectedVersion }),
          at: at(),
        },
      };
      const decided = await providerCommand(caller, input.provider, approval, { first: () => createProposedModel(caller, approval) });
      return endpointOf(decided.view, input.provider, input.model);
    },

    /** Reject a pending proposal (admins), with `expectedVersion` as approveEndpoint's: a filing made since is not rejected for a reason about an earlier one. */
    async rejectEndpoint(caller: CatalogCaller, input: EndpointRef & { readonly reason: string; readonly expectedVersion?: number | null }): Promise<EndpointProposalDoc> {
      const decided = await providerCommand(caller, input.provider, {
        type: 'RejectEndpoint',
        data: {
          providerSlug: input.provider,
          actor: catalogActor(caller.principal),
          model: input.model,
          reason: input.reason,
          ...(input.expectedVersion != null && { expectedVersion: input.expectedVersion }),
          at: at(),
        },
      });
      return proposalOf(decided.view, input.provider, input.model);
    },

    /** State (or with null withdraw) a provider's data policy: admins only (the decider says so). */
    async setProviderDataPolicy(caller: CatalogCaller, input: { readonly provider: string; readonly dataPolicy: DataPolicy | null }): Promise<ProviderDoc> {
      return changeProvider(caller, input.provider, {
        type: 'SetDataPolicy',
        data: { providerSlug: input.provider, actor: catalogActor(caller.principal), dataPolicy: input.dataPolicy, at: at() },
      });
    },

    /** Allow (or stop) accounts bringing their own key for a provider (BYOK): admins only (the decider says so). */
    async setProviderByok(caller: CatalogCaller, input: { readonly provider: string; readonly allowed: boolean }): Promise<ProviderDoc> {
      return changeProvider(caller, input.provider, {
        type: 'SetByok',
        data: { providerSlug: input.provider, actor: catalogActor(caller.principal), allowed: input.allowed, at: at() },
      });
    },

    /**
     * Point a provider's endpoints at another base URL: its owner or an admin; one registered by an admin only an
     * admin; one not registered by an admin must resolve to public addresses, as at registration. BYOK keys bound to the old origin stop going there.
     */
    async setProviderBaseUrl(caller: CatalogCaller, input: { readonly provider: string; readonly baseUrl: string }): Promise<ProviderDoc> {
      const routed = deps.routing.provider(input.provider);
      // One an admin registered connects anywhere, and only an admin moves it (the decider: managesProvider).
      if (routed && !routed.trusted) await checkPublicBaseUrl(input.baseUrl);
      const actor = catalogActor(caller.principal);
      return changeProvider(caller, input.provider, {
        type: 'ChangeBaseUrl',
        data: { providerSlug: input.provider, actor, baseUrl: input.baseUrl, freeModels: await freeModelsOf(input.provider, actor), at: at() },
      });
    },

    /** Say whether aborting a call stops the provider's billing: its owner or an admin (the decider says so). */
    async setProviderCancellation(caller: CatalogCaller, input: { readonly provider: string; readonly cancellable: boolean }): Promise<ProviderDoc> {
      const actor = catalogActor(caller.principal);
      return changeProvider(caller, input.provider, {
        type: 'SetCancellation',
        // Only a change to false is held for the models an admin admitted (the decider): true needs no reading.
        data: { providerSlug: input.provider, actor, cancellable: input.cancellable, freeModels: input.cancellable ? [] : await freeModelsOf(input.provider, actor), at: at() },
      });
    },

    /** Open a model to every provider or close it again: its owner or an admin (the decider says so). */
    async setModelOpenToProviders(caller: CatalogCaller, input: { readonly model: string; readonly open: boolean }): Promise<ModelDoc> {
      return changeModel(caller, input.model, { type: 'SetModelOpenToProviders', data: { modelId: input.model, open: input.open, actor: catalogActor(caller.principal), at: at() } });
    },

    /**
     * Retire a model (admins: the GraphQL scope says so): chats naming it (or an alias of it) are refused, saved ids
     * naming it too, the REST listing and single-model routes no longer show it. An unknown model is NOT_FOUND, a
     * retired one CONFLICT. The id exactly as the catalog has it (no variant, alias or other spelling).
     */
    async retireModel(caller: CatalogCaller, model: string): Promise<ModelDoc> {
      return changeModel(caller, model, { type: 'RetireModel', data: { modelId: model, at: at() } });
    },

    /**
     * Point an alias (`~author/slug`) at a catalog model (admins: the GraphQL scope says so), or at another one. The
     * model is given as a chat could name it (another spelling of its version is that model) and must be one a chat
     * can be answered by (modelProblem): not a router, an alias, a retired model or one with variants. Stored as the
     * catalog's id.
     */
    async setModelAlias(caller: CatalogCaller, input: { readonly alias: string; readonly model: string }): Promise<ModelAlias> {
      checkAliasForm(input.alias);
      if (isAliasId(input.model)) throw new ValidationError(`${input.model} is an alias: an alias names a catalog model, never another alias`, { field: 'model' });
      const resolved = resolveModelId(deps.routing, input.model);
      const problem = problemOf(input.model, resolved);
      if (problem !== null) throw new ValidationError(problem, { field: 'model' });
      const { modelId } = resolved;
      if (modelId === null) throw new ValidationError(`${input.model} is a router, not a catalog model: an alias names a model of the catalog`, { field: 'model' });
      if (input.model.includes(':')) {
        throw new ValidationError(`An alias names a model without variants (${input.model}): put them after the alias, as in ${input.alias}:nitro`, { field: 'model' });
      }
      await run(caller, modelAliasStream(input.alias), modelAliasDecider, { type: 'SetModelAlias', data: { alias: input.alias, model: modelId, at: at() } });
      return { alias: input.alias, model: modelId };
    },

    /** Remove an alias (admins): ids naming it are unknown from then on. NOT_FOUND when it names nothing. Answers what it named. */
    async removeModelAlias(caller: CatalogCaller, alias: string): Promise<ModelAlias> {
      const decided = await run(caller, modelAliasStream(alias), modelAliasDecider, { type: 'RemoveModelAlias', data: { alias, at: at() } });
      const [removed] = decided.events;
      if (removed?.type !== 'ModelAliasRemoved') throw new NotFoundError('Model alias', alias);
      return { alias, model: removed.data.model };
    },

    /** Replace the auto model's rules (admins: the GraphQL scope says so). `rules` is the caller's JSON. */
    async setAutoRouterRules(caller: CatalogCaller, rules: unknown): Promise<{ rules: readonly AutoRule[] }> {
      const parsed = parseAutoRules(rules);
      const decided = await run(caller, AUTO_ROUTER_STREAM, autoRouterDecider, { type: 'SetAutoRouterRules', data: { rules: parsed, at: at() } });
      return { rules: decided.state.rules ?? parsed };
    },

    // ---------------------------------------------------------------------------------------------------------------
    // Queries

    /**
     * The one model listing (GraphQL `models`, REST `/api/v1/models` and its count), as `viewer` is served: its own
     * provider keys (BYOK) count (absent or null: as anyone is served).
     */
    listModels: async (query: ModelQuery, viewer: Principal | null = null): Promise<ModelListing[]> => {
      const usage = USAGE_SORTS.includes(query.sort) ? await deps.weeklyModelUsage() : null;
      return queryModels(await queries.allModels(), query, deps.routeHealth.speed, servesFor(viewer), (id) => usage?.get(id));
    },
    /**
     * One listing by id as routing reads it (resolveModelId: `…:free` for the free one, routing variants dropped,
     * another spelling of a version resolved), serving or not, or null when unknown or retired, or the variants are
     * refused (REST).
     */
    findListing: async (id: string, viewer: Principal | null = null): Promise<ModelListing | null> => {
      const { modelId, free, problem } = resolveModelId(deps.routing, id);
      return problem === null && modelId !== null ? findListing(await queries.model(modelId), free, servesFor(viewer)) : null;
    },
    modelProblem,
    /**
     * What `reasoning` controls reach the upstream whichever of a listing's endpoints that take it serves (from their
     * providers' protocols); null when none takes it.
     */
    reasoningOf: (listing: ModelListing): ReasoningControls | null => {
      const controls = listing.endpoints
        .filter((e) => e.supportedParameters.includes('reasoning'))
        .map((e) => {
          const provider = deps.routing.provider(e.provider);
          return provider ? adapterFor(provider.protocol).reasoning : NO_REASONING_CONTROLS;
        });
      if (controls.length === 0) return null;
      return { efforts: REASONING_EFFORTS.filter((effort) => controls.every((c) => c.efforts.includes(effort))), maxTokens: controls.every((c) => c.maxTokens) };
    },
    /** Whether routing can serve an endpoint now for `viewer` (see `availability`). */
    endpointAvailable: isAvailable,
    unavailableReason,
    /** Some active endpoint of the model can serve `viewer` now (GraphQL Model.available). */
    modelAvailable: (doc: ModelDoc, viewer: Principal | null = null): boolean => {
      const keys = keysOf(viewer);
      return !doc.retired && doc.endpoints.some((e) => e.status === 'active' && availability(e.id, keys).available);
    },
    /** A model's document by id as routing reads it (resolveModelId, as findListing), retired or not (GraphQL). */
    model: async (id: string): Promise<ModelDoc | null> => {
      const { modelId, problem } = resolveModelId(deps.routing, id);
      return problem === null && modelId !== null ? queries.model(modelId) : null;
    },
    modelsByIds: (ids: readonly string[]) => queries.modelsByIds(ids),
    providers: () => queries.allProviders(),
    providersByIds: (ids: readonly string[]) => queries.providersByIds(ids),
    /** Newest first: an admin sees every provider's proposals, anyone else its own. */
    proposals: (viewer: Principal, status: ProposalStatus | undefined) => queries.proposals({ status, proposedBy: isAdmin(viewer) ? undefined : viewer.accountId }),
    /**
     * What approving a pending amendment changes in the endpoint as it routes now, field by field (the reviewer's
     * diff); null for anything else (a proposal of a new endpoint, a decided filing, an endpoint no longer known).
     */
    amendmentChanges: (doc: EndpointProposalDoc): ProposalChange[] | null => {
      const live = doc.amends === true && doc.status === 'pending' ? deps.routing.endpoint(doc._id) : undefined;
      if (live === undefined) return null;
      const { baseUrl, cancellable } = live.provider;
      return proposalChanges(
        { spec: endpointSpecOf({ ...live, supportedParameters: [...live.supportedParameters] }), newModel: null, baseUrl, cancellable },
        { spec: endpointSpecOf(doc), newModel: null, baseUrl: doc.baseUrl ?? baseUrl, cancellable: doc.cancellable ?? cancellable },
      );
    },
    autoRules: (): readonly AutoRule[] | null => deps.routing.autoRules(),
    /** Every alias and the model it names, by alias (routing's: what requests resolve now). */
    modelAliases: (): readonly ModelAlias[] => deps.routing.aliases(),
    /** Whether routing can use the provider's credential, and why not (null when it can, or the provider is unknown). */
    providerProblem: (slug: string): { readonly available: boolean; readonly problem: string | null } => {
      const problem = deps.routing.provider(slug)?.auth().problem;
      return { available: problem === null, problem: problem ?? null };
    },
    endpointStats,
    /** Routing's circuit breaker of an endpoint: closed, open or half-open. */
    breakerState: (endpointId: string): string => deps.routeHealth.breakerState(endpointId),
    ownedProviders,
    /** Every endpoint of a provider, disabled ones too, in model order. */
    async providerEndpoints(provider: ProviderDoc): Promise<EndpointView[]> {
      const models = await queries.modelsServedBy(provider._id);
      return models.flatMap((m) => m.endpoints.filter((e) => e.provider === provider._id).map(({ publishedAt: _p, updatedAt: _u, ...e }) => ({ ...e, model: m._id })));
    },
    /**
     * Traffic and earnings per endpoint per day of the viewer's providers (an admin: any), or of one of them; another
     * account's provider answers NOT_FOUND, exactly as a missing one.
     */
    async providerTraffic(viewer: Principal, query: { provider?: string | null; from?: string | null; to?: string | null }): Promise<EndpointTrafficRow[]> {
      const owned = await ownedProviders(viewer);
      const slugs = query.provider ? owned.filter((p) => p._id === query.provider).map((p) => p._id) : owned.map((p) => p._id);
      if (query.provider && slugs.length === 0) throw new NotFoundError('Provider', query.provider);
      return endpointTraffic(deps.readStore, slugs, query);
    },
    /** The endpoints of a listing with their providers, stats and health, as `viewer` may see them (REST). */
    async endpointDetails(listing: ModelListing, viewer: Principal | null): Promise<EndpointDetail[]> {
      const [providers, summaries] = await Promise.all([queries.providersByIds(listing.endpoints.map((e) => e.provider)), endpointStats(listing.endpoints.map((e) => e.id))]);
      const providerOf = new Map(providers.map((p) => [p._id, p]));
      return listing.endpoints.map((endpoint, i) => ({
        endpoint,
        provider: providerOf.get(endpoint.provider),
        stats: summaries[i]!,
        circuitBreaker: deps.routeHealth.breakerState(endpoint.id),
        available: isAvailable(endpoint.id, viewer),
        unavailableReason: unavailableReason(endpoint.id, viewer),
      }));
    },
  };
};

export type CatalogApi = ReturnType<typeof createCatalogApi>;
