/**
 * The catalog's GraphQL types, queries and mutations: thin, over the catalog API (catalog.api.ts).
 */
import { z } from 'zod';
import type { EndpointProposalDoc, ModelDoc, ProposalStatus, ProviderDoc } from '../../../projections/catalog.js';
import type { EndpointStatsSummary } from '../../../projections/providerStats.js';
import { calendarDayArg } from '../../calendarDay.js';
import { builder } from '../../graphql/builder.js';
import { arrayConnection } from '../../graphql/connections.js';
import type { AuthenticatedContext } from '../../graphql/context.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import type { AutoRule } from './autoRouter.events.js';
import type { ModelAlias } from './catalog.js';
import type { EndpointTrafficRow } from './providerTraffic.js';
import { seesOwnerDetails, type CatalogCaller, type EndpointView } from './catalog.api.js';
import { MODALITIES, type Modality, type ModelSpec } from './model.events.js';
import type { ModelQuery, ModelSort } from './modelListing.js';
import type { ProposalChange } from './provider.decider.js';
import { DATA_POLICIES, PRICE_FIELDS, PROTOCOLS, VARIANT_TAGS, type DataPolicy, type EndpointPrices, type PriceField, type ProviderProtocol, type VariantTag } from './provider.events.js';

/** The caller of a mutation, as the catalog API takes it. */
const callerOf = (ctx: AuthenticatedContext): CatalogCaller => ({ principal: ctx.principal, correlationId: ctx.requestId });

export const ProviderProtocolEnum = builder.enumType('ProviderProtocol', {
  values: Object.fromEntries(PROTOCOLS.map((p) => [p.toUpperCase(), { value: p }])) as Record<Uppercase<ProviderProtocol>, { value: ProviderProtocol }>,
});
export const VariantTagEnum = builder.enumType('VariantTag', {
  values: Object.fromEntries(VARIANT_TAGS.map((v) => [v.toUpperCase(), { value: v }])) as Record<Uppercase<VariantTag>, { value: VariantTag }>,
});
export const DataPolicyEnum = builder.enumType('DataPolicy', {
  description:
    "What a provider does with the prompts and completions it serves, as an admin stated it. COLLECTS: stores them beyond serving the request, or trains on them; NO_COLLECTION: neither (may keep them for a while, for abuse monitoring); ZERO_RETENTION: keeps nothing once it has answered. Requests route by it with provider.data_collection \"deny\" (NO_COLLECTION or ZERO_RETENTION) and provider.zdr true (ZERO_RETENTION); a provider whose policy is unstated counts as COLLECTS.",
  values: Object.fromEntries(DATA_POLICIES.map((p) => [p.toUpperCase(), { value: p }])) as Record<Uppercase<DataPolicy>, { value: DataPolicy }>,
});
export const ModalityEnum = builder.enumType('Modality', {
  values: Object.fromEntries(MODALITIES.map((m) => [m.toUpperCase(), { value: m }])) as Record<Uppercase<Modality>, { value: Modality }>,
});

const PricesRef = builder.objectRef<EndpointPrices>('Prices').implement({
  description: 'Prices in integer nano-dollars: per token (prompt, completion, reasoning, cache read/write) and per request.',
  fields: (t) => ({
    prompt: t.field({ type: 'Money', resolve: (p) => p.prompt }),
    completion: t.field({ type: 'Money', resolve: (p) => p.completion }),
    request: t.field({ type: 'Money', resolve: (p) => p.request }),
    reasoning: t.field({ type: 'Money', resolve: (p) => p.reasoning }),
    cacheRead: t.field({ type: 'Money', resolve: (p) => p.cacheRead }),
    cacheWrite: t.field({ type: 'Money', resolve: (p) => p.cacheWrite }),
  }),
});

const PricesInput = builder.inputType('PricesInput', {
  description: 'Integer nano-dollars per token ($0.15 per million tokens = 150). reasoning defaults to completion; cacheRead and cacheWrite to prompt.',
  fields: (t) => ({
    prompt: t.field({ type: 'Money', required: true }),
    completion: t.field({ type: 'Money', required: true }),
    request: t.field({ type: 'Money', required: false, description: 'Per request; default 0.' }),
    reasoning: t.field({ type: 'Money', required: false }),
    cacheRead: t.field({ type: 'Money', required: false }),
    cacheWrite: t.field({ type: 'Money', required: false }),
  }),
});

/** Built from PRICE_FIELDS: a price added later is a field here, and required, without another edit. */
const ReviewedPricesInput = builder.inputType('ReviewedPricesInput', {
  description: 'Every price of a proposal as the admin reviewed it (EndpointProposal.prices), in integer nano-dollars: all are required, none defaults.',
  fields: (t) => Object.fromEntries(PRICE_FIELDS.map((field) => [field, t.field({ type: 'Money', required: true })])) as { [F in PriceField]: ReturnType<typeof t.field<'Money', true>> },
});

interface Percentile {
  p50: number;
  p75: number;
  p90: number;
  p99: number;
}
const PercentilesRef = builder.objectRef<Percentile>('Percentiles').implement({
  fields: (t) => ({ p50: t.exposeFloat('p50'), p75: t.exposeFloat('p75'), p90: t.exposeFloat('p90'), p99: t.exposeFloat('p99') }),
});

const EndpointStatsRef = builder.objectRef<EndpointStatsSummary>('EndpointStats').implement({
  description: 'Rolling health of an endpoint from its generations: uptime in percent, error rate, latency to first token (ms) and throughput (tokens/s).',
  fields: (t) => ({
    uptime5m: t.float({ nullable: true, resolve: (s) => s.uptime5m }),
    uptime30m: t.float({ nullable: true, resolve: (s) => s.uptime30m }),
    uptime1d: t.float({ nullable: true, resolve: (s) => s.uptime1d }),
    errorRate30m: t.float({ nullable: true, resolve: (s) => s.errorRate30m }),
    requests30m: t.int({ resolve: (s) => s.requests30m }),
    latency30m: t.field({ type: PercentilesRef, nullable: true, resolve: (s) => s.latency30m }),
    throughput30m: t.field({ type: PercentilesRef, nullable: true, resolve: (s) => s.throughput30m }),
  }),
});

/** How a provider's key is held and why it fails are its owner's and the admins' business, nobody else's. */
const seesInternals = (ctx: { principal: AuthenticatedContext['principal'] | null }, provider: ProviderDoc) => seesOwnerDetails(ctx.principal, provider.ownerAccountId);

export const ProviderRef = builder.loadableObject('Provider', {
  description: 'An upstream API that serves models. Its key is never shown: only how it is held.',
  load: loadByIds('Provider', (slugs, ctx) => ctx.catalog.providersByIds(slugs)),
  sort: (doc: ProviderDoc) => doc._id,
  fields: (t) => ({
    slug: t.exposeString('_id'),
    name: t.exposeString('name'),
    protocol: t.field({ type: ProviderProtocolEnum, resolve: (p) => p.protocol }),
    baseUrl: t.string({
      nullable: true,
      description: 'Where its endpoints are called (its owner and admins only: an address inside the operator\'s network is nobody else\'s business).',
      resolve: (p, _a, ctx) => (seesInternals(ctx, p) ? p.baseUrl : null),
    }),
    credentialKind: t.string({ description: 'env (an environment variable), encrypted (AES-256-GCM at rest) or none.', resolve: (p) => p.credential.kind }),
    credentialEnv: t.string({
      nullable: true,
      description: 'The environment variable holding its key (its owner and admins only).',
      resolve: (p, _a, ctx) => (p.credential.kind === 'env' && seesInternals(ctx, p) ? p.credential.env : null),
    }),
    ownerAccountId: t.id({ nullable: true, description: 'The account that registered it (its owner and admins only).', resolve: (p, _a, ctx) => (seesInternals(ctx, p) ? p.ownerAccountId : null) }),
    registeredAt: t.field({ type: 'DateTime', resolve: (p) => p.registeredAt }),
    dataPolicy: t.field({
      type: DataPolicyEnum,
      nullable: true,
      description: 'Its data policy as an admin stated it (setProviderDataPolicy); null: unstated, routed as COLLECTS.',
      resolve: (p) => p.dataPolicy,
    }),
    cancellable: t.exposeBoolean('cancellable', {
      description:
        'Whether aborting a call stops its processing and billing (setProviderCancellation; true unless stated). When false, a client that leaves a stream is charged the whole answer: the gateway reads it to the end, as the provider bills it.',
    }),
    byok: t.exposeBoolean('byok', {
      description: 'Whether accounts may bring their own key for it (setByokKey): an admin decides (setProviderByok).',
    }),
    models: t.exposeStringList('models'),
    available: t.boolean({ description: 'Whether its credential resolves (routing skips it otherwise).', resolve: (p, _a, ctx) => ctx.catalog.providerProblem(p._id).available }),
    unavailableReason: t.string({
      nullable: true,
      description: 'Why it is unavailable (its owner and admins only).',
      resolve: (p, _a, ctx) => (seesInternals(ctx, p) ? ctx.catalog.providerProblem(p._id).problem : null),
    }),
  }),
});

export const EndpointRef = builder.objectRef<EndpointView>('Endpoint').implement({
  description: 'One provider serving one model, at its prices.',
  fields: (t) => ({
    id: t.exposeID('id'),
    model: t.exposeString('model'),
    provider: t.field({ type: ProviderRef, resolve: (e) => e.provider }),
    upstreamModel: t.exposeString('upstreamModel'),
    prices: t.field({ type: PricesRef, resolve: (e) => e.prices }),
    contextLength: t.exposeInt('contextLength'),
    maxOutput: t.exposeInt('maxOutput'),
    quantization: t.exposeString('quantization', { nullable: true }),
    supportedParameters: t.exposeStringList('supportedParameters'),
    variants: t.field({ type: [VariantTagEnum], resolve: (e) => e.variants }),
    status: t.exposeString('status'),
    disabledByAdmin: t.exposeBoolean('disabledByAdmin', { description: 'Disabled by an admin: only an admin enables it again (republishing or repricing does not).' }),
    // One read of the stats for every endpoint of a response (a per-request DataLoader).
    circuitBreaker: t.string({
      description: "Routing's circuit breaker for it in this process: closed, open (recent attempts kept failing; tried last) or half-open.",
      resolve: (e, _a, ctx) => ctx.catalog.breakerState(e.id),
    }),
    available: t.boolean({
      description: "Whether routing can serve it now for the caller: active, a key the caller may use reaches its provider (the caller's own (BYOK) while active, else the provider's credential resolves) and its circuit breaker is not open (demo endpoints always).",
      resolve: (e, _a, ctx) => e.status === 'active' && ctx.catalog.endpointAvailable(e.id, ctx.principal),
    }),
    unavailableReason: t.string({
      nullable: true,
      description: "Why it cannot serve now (null when it can). A credential's exact problem is shown to its provider's owner and admins only.",
      resolve: (e, _a, ctx) => (e.status === 'active' ? ctx.catalog.unavailableReason(e.id, ctx.principal) : 'it is disabled'),
    }),
    stats: t.loadable({ type: EndpointStatsRef, load: (ids: string[], ctx) => ctx.catalog.endpointStats(ids), resolve: (e) => e.id }),
  }),
});

const PROPOSAL_STATUSES = ['pending', 'approved', 'rejected'] as const satisfies readonly ProposalStatus[];
const ProposalStatusEnum = builder.enumType('ProposalStatus', {
  values: Object.fromEntries(PROPOSAL_STATUSES.map((s) => [s.toUpperCase(), { value: s }])) as Record<Uppercase<ProposalStatus>, { value: ProposalStatus }>,
});

const ProposedModelRef = builder.objectRef<ModelSpec>('ProposedModel').implement({
  description: 'A model as a provider described it in a proposal: what approving the proposal adds to the catalog.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    contextLength: t.exposeInt('contextLength'),
    inputModalities: t.field({ type: [ModalityEnum], resolve: (m) => m.inputModalities }),
  }),
});

export const EndpointProposalRef = builder.objectRef<EndpointProposalDoc>('EndpointProposal').implement({
  description:
    "A provider's request to serve a model that belongs to another account and is not open to providers, or a model new to the catalog outside the provider's namespace, or to change such an endpoint once published (amends). Nothing routes to it; an admin approves it (the endpoint is published as proposed) or rejects it with a reason.",
  fields: (t) => ({
    id: t.exposeID('_id', { description: 'The id the endpoint gets once published: model@provider.' }),
    model: t.exposeString('model'),
    provider: t.field({ type: ProviderRef, resolve: (p) => p.provider }),
    proposalStatus: t.field({
      type: ProposalStatusEnum,
      description: "PENDING until an admin decides. Not named status, so that it and Endpoint's status can be selected side by side in publishEndpoint's answer.",
      resolve: (p) => p.status,
    }),
    upstreamModel: t.exposeString('upstreamModel'),
    prices: t.field({ type: PricesRef, resolve: (p) => p.prices }),
    contextLength: t.exposeInt('contextLength'),
    maxOutput: t.exposeInt('maxOutput'),
    quantization: t.exposeString('quantization', { nullable: true }),
    supportedParameters: t.exposeStringList('supportedParameters'),
    variants: t.field({ type: [VariantTagEnum], resolve: (p) => p.variants }),
    baseUrl: t.exposeString('baseUrl', {
      nullable: true,
      description: "Where its provider sends calls, as filed: the provider moving it files its pending proposals again (a new version). Null on a proposal filed before reviews were pinned (its provider's baseUrl applies).",
    }),
    cancellable: t.exposeBoolean('cancellable', {
      nullable: true,
      description: "Whether aborting a call stops the provider's billing (Provider.cancellable), as filed: changing it files the provider's pending proposals again. Null as baseUrl.",
    }),
    newModel: t.field({
      type: ProposedModelRef,
      nullable: true,
      description: 'The model its approval creates (createsModel), as the provider described it; null when the model is in the catalog.',
      resolve: (p) => p.newModel ?? null,
    }),
    version: t.exposeInt('version', {
      description:
        "Which filing of the proposal this is (1, 2, …): it moves whenever anything its approval would publish changes: the provider publishing it again with anything different (upstream model, prices, limits, quantization, parameters, variants, the model it creates), or moving its provider's baseUrl or cancellation while it waits. Pass the version reviewed to approveEndpoint (expectedVersion).",
    }),
    amends: t.boolean({
      description:
        "A change to an endpoint already published on a model its provider may not publish on by itself (another account's, closed to providers): the endpoint keeps routing as it was approved (upstream model, prices, limits) until an admin approves this; rejected, it stays so.",
      resolve: (p) => p.amends === true,
    }),
    changes: t.field({
      type: 'JSON',
      nullable: true,
      description:
        "A pending amendment's changes to the endpoint as it routes now, field by field, as approveEndpoint's CONFLICT names them: [{ field, was, now }] (field a path such as upstreamModel or prices.completion; was as it routes, now as filed): what approving it changes. Null for a proposal of a new endpoint and once decided.",
      resolve: (p, _args, ctx): ProposalChange[] | null => ctx.catalog.amendmentChanges(p),
    }),
    createsModel: t.boolean({
      description: "The model is not in the catalog and is outside the provider's namespace: approving it creates the model (owned by the root account).",
      resolve: (p) => p.newModel != null,
    }),
    proposedBy: t.exposeID('proposedBy'),
    proposedAt: t.field({ type: 'DateTime', resolve: (p) => p.proposedAt }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why an admin rejected it.' }),
    decidedBy: t.exposeID('decidedBy', { nullable: true }),
    decidedAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.decidedAt }),
  }),
});

export const ModelRef = builder.loadableObject('Model', {
  description: 'A model of the catalog and the endpoints that serve it.',
  load: loadByIds('Model', (ids, ctx) => ctx.catalog.modelsByIds(ids)),
  sort: (doc: ModelDoc) => doc._id,
  fields: (t) => ({
    id: t.exposeID('_id'),
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    contextLength: t.exposeInt('contextLength'),
    inputModalities: t.field({ type: [ModalityEnum], resolve: (m) => m.inputModalities }),
    outputModalities: t.field({ type: [ModalityEnum], resolve: (m) => m.outputModalities }),
    tokenizer: t.exposeString('tokenizer'),
    createdAt: t.field({ type: 'DateTime', resolve: (m) => m.createdAt }),
    retired: t.exposeBoolean('retired'),
    openToProviders: t.exposeBoolean('openToProviders', {
      description: "Any provider may publish endpoints for it. Otherwise only its owner and admins do; another provider's publishEndpoint files a proposal for an admin.",
    }),
    ownerAccountId: t.id({
      nullable: true,
      description: 'The account that first published it (the root admin for seeded models). Shown to its owner and admins, null to others.',
      resolve: (m, _a, ctx) => (seesOwnerDetails(ctx.principal, m.ownerAccountId) ? m.ownerAccountId : null),
    }),
    endpoints: t.field({
      type: [EndpointRef],
      args: { includeDisabled: t.arg.boolean({ defaultValue: false }) },
      resolve: (m, args) => m.endpoints.filter((e) => args.includeDisabled || e.status === 'active').map((e) => ({ ...e, model: m._id })),
    }),
    available: t.boolean({
      description: "Whether some active endpoint can serve it now for the caller (a key reaches it: the caller's own provider key (BYOK) or the provider's credential; circuit breaker not open).",
      resolve: (m, _a, ctx) => ctx.catalog.modelAvailable(m, ctx.principal),
    }),
    cheapestPrices: t.field({
      type: PricesRef,
      nullable: true,
      description: 'The prices of its cheapest active paid endpoint.',
      resolve: (m) =>
        m.endpoints.filter((e) => e.status === 'active' && !e.variants.includes('free')).sort((a, b) => a.prices.prompt + a.prices.completion - (b.prices.prompt + b.prices.completion))[0]?.prices ?? null,
    }),
  }),
});

const ModelAliasRef = builder.objectRef<ModelAlias>('ModelAlias').implement({
  description: "An admin's alias of a catalog model (OpenRouter's ~vendor/x-latest ids): requests naming it are served, answered and recorded as the model it names.",
  fields: (t) => ({
    alias: t.exposeString('alias', { description: '~author/slug' }),
    model: t.exposeString('model', { description: 'The id of the catalog model it names.' }),
    target: t.field({ type: ModelRef, nullable: true, description: 'The model it names (null while the read models catch up).', resolve: (a) => a.model }),
  }),
});

const SORTS = {
  ID: 'id',
  PRICE_LOW_TO_HIGH: 'pricing-low-to-high',
  PRICE_HIGH_TO_LOW: 'pricing-high-to-low',
  CONTEXT_HIGH_TO_LOW: 'context-high-to-low',
  THROUGHPUT_HIGH_TO_LOW: 'throughput-high-to-low',
  LATENCY_LOW_TO_HIGH: 'latency-low-to-high',
  NEWEST: 'newest',
  /** Requests over the current UTC day and the six before it, every account together. */
  MOST_POPULAR: 'most-popular',
  /** Tokens (prompt + completion) over the same week. */
  TOP_WEEKLY: 'top-weekly',
} as const satisfies Record<string, ModelSort>;
const ModelSortEnum = builder.enumType('ModelSort', {
  values: Object.fromEntries(Object.entries(SORTS).map(([name, value]) => [name, { value }])) as { [K in keyof typeof SORTS]: { value: (typeof SORTS)[K] } },
});

const ModelFilter = builder.inputType('ModelFilter', {
  fields: (t) => ({
    search: t.string({ required: false, description: 'Case-insensitive substring of the id or name.' }),
    provider: t.string({ required: false, description: 'Only models this provider (slug) serves.' }),
    maxPromptPrice: t.field({ type: 'Money', required: false, description: 'Nano-dollars per prompt token, on the cheapest endpoint.' }),
    minContextLength: t.int({ required: false }),
    supportedParameter: t.string({ required: false }),
    inputModality: t.field({ type: ModalityEnum, required: false }),
  }),
});

type ModelFilterInput = typeof ModelFilter.$inferInput;

/** GraphQL's filter as the catalog's model query (REST's query string is the other parser: catalog.rest.ts). */
const modelQueryOf = (filter: ModelFilterInput | null | undefined, sort: ModelSort, includeUnavailable: boolean): ModelQuery => ({
  freeVariants: 'merged',
  sort,
  includeUnavailable,
  ...(filter?.search && { search: filter.search }),
  ...(filter?.provider && { provider: filter.provider }),
  ...(filter?.maxPromptPrice != null && { maxPromptPrice: filter.maxPromptPrice }),
  ...(filter?.minContextLength != null && { minContextLength: filter.minContextLength }),
  ...(filter?.supportedParameter && { supportedParameters: [filter.supportedParameter] }),
  ...(filter?.inputModality && { inputModalities: [filter.inputModality] }),
});

builder.queryFields((t) => ({
  models: t.connection({
    type: ModelRef,
    description:
      "The catalog (public): models with at least one active endpoint that can serve now or once its circuit breaker closes (all of them with includeUnavailable; see Model.available), as the caller is served (its own provider keys (BYOK) count), filtered and sorted (the same query as REST /api/v1/models).",
    args: {
      filter: t.arg({ type: ModelFilter, required: false }),
      sort: t.arg({ type: ModelSortEnum, defaultValue: 'id' }),
      includeUnavailable: t.arg.boolean({ defaultValue: false, description: 'Also models no endpoint of which can serve as configured (credentials missing). Models whose endpoints are only down for now (circuit breaker open) are always listed, with available false.' }),
    },
    resolve: async (_root, args, ctx) => {
      const listings = await ctx.catalog.listModels(modelQueryOf(args.filter, args.sort ?? 'id', args.includeUnavailable ?? false), ctx.principal);
      return arrayConnection(args, listings.map((m) => m.doc));
    },
  }),
  model: t.field({
    type: ModelRef,
    nullable: true,
    description:
      'A model by id as a chat reads it (variant suffixes such as :free or :nitro, an alias such as ~openai/gpt-latest, another spelling of its version such as claude-3-5-sonnet), retired or not; null when the catalog has none or the variants are refused.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.model(String(args.id)),
  }),
  providers: t.field({ type: [ProviderRef], description: 'Every registered provider (public).', resolve: (_root, _args, ctx) => ctx.catalog.providers() }),
  endpointProposals: t.withAuth({ provider: true }).connection({
    type: EndpointProposalRef,
    description: "Endpoint proposals, newest first: an admin sees every provider's, a provider its own. status null lists all.",
    args: { status: t.arg({ type: ProposalStatusEnum, required: false, defaultValue: 'pending' }) },
    resolve: async (_root, args, ctx) => arrayConnection(args, await ctx.catalog.proposals(ctx.principal, args.status ?? undefined)),
  }),
  modelAliases: t.field({
    type: [ModelAliasRef],
    description: "The admins' aliases of catalog models (public, as the catalog): ~author/slug ids that requests, the REST model routes and model(id:) read as the model each names, variant suffixes after the alias (~openai/gpt-latest:nitro). By alias.",
    resolve: (_root, _args, ctx) => ctx.catalog.modelAliases(),
  }),
  autoRouterRules: t.field({
    type: 'JSON',
    nullable: true,
    description: 'The rules of the auto model (switchyard/auto), in order.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.catalog.autoRules(),
  }),
}));

// ---------------------------------------------------------------------------------------------------------------
// Mutations: a provider account manages its own providers and endpoints; an admin manages any.

const AutoRouterRulesRef = builder.objectRef<{ rules: readonly AutoRule[] }>('AutoRouterRules').implement({
  fields: (t) => ({ rules: t.field({ type: 'JSON', resolve: (r) => r.rules }) }),
});

/** The errors plugin's union: thrown DomainErrors become the DomainError member, as with `errors: { directResult }`. */
const PublishEndpointResult = builder.errorUnion('PublishEndpointResult', {
  description: 'The published Endpoint, an EndpointProposal waiting for an admin, or why nothing was done (DomainError).',
  types: [EndpointRef, EndpointProposalRef],
  resolveType: (value) => ('proposedBy' in value ? 'EndpointProposal' : 'Endpoint'),
});

const slugArg = z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be lowercase letters, digits and dashes (at most 40)');

builder.mutationFields((t) => ({
  registerProvider: t.withAuth({ provider: true }).field({
    type: ProviderRef,
    description:
      "Register a provider owned by the caller. Give its key as apiKey (stored encrypted with SWITCHYARD_MASTER_KEY), or (admins only) as credentialEnv, the name of an environment variable the operator allowed (PROVIDER_CREDENTIAL_ENV_ALLOW), or neither for keyless servers. A provider not registered by an admin must have a baseUrl that resolves to public addresses (or ones OUTBOUND_ALLOW admits). The slug is also the namespace the provider creates new models in (slug/…): a non-admin cannot take a slug whose namespace holds another account's models, nor a model maker's reserved namespace (mistralai, x-ai, qwen, cohere, …) as slug or as name, compared after NFKC, case folding and leaving out all but letters and digits (mistral-ai and Mistral AI are mistralai): FORBIDDEN; an admin registers such a provider. Provider lists name a provider by its slug or its name in any case, so neither may be one that already names another provider (CONFLICT), for admins too; names are compared after NFKC and case folding (fullwidth ＯｐｅｎＡＩ is OpenAI), and a name with invisible characters (Unicode format characters such as U+200B) or a word mixing scripts (a Cyrillic А among Latin letters) is refused (VALIDATION).",
    errors: { directResult: true },
    args: {
      slug: t.arg.string({ required: true, validate: slugArg }),
      name: t.arg.string({ required: true, validate: z.string().trim().min(1).max(100) }),
      protocol: t.arg({ type: ProviderProtocolEnum, required: true }),
      baseUrl: t.arg.string({ required: true }),
      apiKey: t.arg.string({ required: false }),
      credentialEnv: t.arg.string({ required: false }),
      headers: t.arg({
        type: 'JSON',
        required: false,
        description: 'Extra non-secret headers sent upstream, e.g. {"anthropic-beta": "…"}: header names to printable values (host, content-length and the other framing headers are refused).',
      }),
    },
    resolve: (_root, args, ctx) => ctx.catalog.registerProvider(callerOf(ctx), args),
  }),
  publishEndpoint: t.withAuth({ provider: true }).field({
    type: PublishEndpointResult,
    description:
      "Publish (or republish) a model on one of the caller's providers. A model new to the catalog is added, owned by the caller, only in the provider's own namespace: on provider acme, a new model id must be acme/…. On a model the caller owns, or one its owner opened to providers, the answer is the Endpoint, routed at once. On another account's model that is not open, or a model new to the catalog outside the provider's namespace (e.g. openai/… on provider acme), the answer is an EndpointProposal with proposalStatus PENDING (createsModel true for a new model): nothing routes until an admin approves it (approveEndpoint, which creates such a model owned by the root account), and the caller sees it in endpointProposals. To serve a model under another maker's name without waiting on each proposal, ask an admin to publish the model and open it to providers (setModelOpenToProviders). Admins publish on any model and create any model (owned by the root account). A non-admin account has at most ENDPOINT_MAX_PER_ACCOUNT active endpoints and pending proposals on its providers together (default 200): one more is a CONFLICT (too_many_endpoints) until it disables one or a proposal is decided. Republishing an existing endpoint updates its spec and never changes its status: an endpoint an admin disabled stays disabled. On a model the caller may not publish on by itself (another account's, closed to providers, whether it was closed when the endpoint was admitted or since), a republish with anything different is an amendment: the answer is an EndpointProposal with amends true, PENDING, and the endpoint routes as it was approved until an admin approves the change; publishing it again as it routes withdraws the change (REJECTED, its reason saying so).",
    args: {
      provider: t.arg.string({ required: true }),
      model: t.arg.string({ required: true }),
      upstreamModel: t.arg.string({ required: true }),
      prices: t.arg({ type: PricesInput, required: true }),
      contextLength: t.arg.int({ required: true }),
      maxOutput: t.arg.int({ required: true }),
      quantization: t.arg.string({ required: false }),
      supportedParameters: t.arg.stringList({ required: false, description: "Defaults to what the provider's protocol maps." }),
      variants: t.arg({ type: [VariantTagEnum], required: false }),
      modelName: t.arg.string({ required: false, description: 'For a model new to the catalog (at most 200 characters).' }),
      modelDescription: t.arg.string({ required: false, description: 'For a model new to the catalog: at most 4000 characters, line breaks allowed, no other control characters.' }),
      inputModalities: t.arg({
        type: [ModalityEnum],
        required: false,
        description:
          "What the model takes as input (TEXT is always included). For a model new to the catalog (default: TEXT only); on an existing model, its owner or an admin changes them. Requests route only to models that take their parts: an image to a model without IMAGE is a 404.",
      }),
    },
    resolve: (_root, args, ctx) => ctx.catalog.publishEndpoint(callerOf(ctx), args),
  }),
  changePrice: t.withAuth({ provider: true }).field({
    type: EndpointRef,
    description: "Change the prices of one of the caller's endpoints (an admin may change any). Takes effect for the next request. An endpoint tagged FREE keeps every price at 0 (VALIDATION otherwise, as publishing it): republish it without the tag to price it. On a model the caller may not publish on by itself (another account's, closed to providers), a cut is taken and a raise of any price is FORBIDDEN (details: raised): republish the endpoint with the new prices, which files them for an admin's review (publishEndpoint).",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }), prices: t.arg({ type: PricesInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.changePrice(callerOf(ctx), args),
  }),
  disableEndpoint: t.withAuth({ provider: true }).field({
    type: EndpointRef,
    description: "Stop routing to an endpoint. Its provider's owner may enable it again only if the owner disabled it; one an admin disabled stays disabled until an admin enables it.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }), reason: t.arg.string({ required: false, description: 'Default: who disabled it.' }) },
    resolve: (_root, args, ctx) => ctx.catalog.disableEndpoint(callerOf(ctx), args),
  }),
  enableEndpoint: t.withAuth({ provider: true }).field({
    type: EndpointRef,
    description: "Route to a disabled endpoint again: an admin enables any; a provider's owner only one it disabled itself, within ENDPOINT_MAX_PER_ACCOUNT (CONFLICT, too_many_endpoints, past it).",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.enableEndpoint(callerOf(ctx), args),
  }),
  approveEndpoint: t.withAuth({ admin: true }).field({
    type: EndpointRef,
    description:
      "Approve a pending endpoint proposal (admin): the endpoint is published as proposed and routes at once (an amendment's endpoint keeps its status: one disabled stays disabled). A proposal for a model not in the catalog (createsModel) creates the model first, owned by the root account and closed to other providers. `expectedVersion`: the proposal's `version` reviewed; a proposal filed again since (anything changed: upstream model, baseUrl, limits, parameters, prices, the model it creates) is a CONFLICT naming each change (details: reviewedVersion, version, changes [{ field, was, now }]), and stays pending. `expectedPrices`: every price reviewed (the proposal's `prices`, all of them); a proposal republished since with any price changed (per token or per request) is a CONFLICT naming each change. Without either, the proposal is approved as it is at that moment (an admin's direct approval; a review should send the version it showed).",
    errors: { directResult: true },
    args: {
      provider: t.arg.string({ required: true }),
      model: t.arg.string({ required: true }),
      expectedPrices: t.arg({ type: ReviewedPricesInput, required: false }),
      expectedVersion: t.arg.int({ required: false, description: "The proposal's version reviewed (EndpointProposal.version)." }),
    },
    resolve: (_root, args, ctx) =>
      ctx.catalog.approveEndpoint(callerOf(ctx), { provider: args.provider, model: args.model, expectedPrices: args.expectedPrices ?? null, expectedVersion: args.expectedVersion ?? null }),
  }),
  rejectEndpoint: t.withAuth({ admin: true }).field({
    type: EndpointProposalRef,
    description:
      'Reject a pending endpoint proposal (admin), with a reason the provider sees. The provider may propose again by publishing. `expectedVersion`: the proposal\'s `version` reviewed; a proposal filed again since is a CONFLICT naming each change (as approveEndpoint\'s), and stays pending.',
    errors: { directResult: true },
    args: {
      provider: t.arg.string({ required: true }),
      model: t.arg.string({ required: true }),
      reason: t.arg.string({ required: true }),
      expectedVersion: t.arg.int({ required: false, description: "The proposal's version reviewed (EndpointProposal.version)." }),
    },
    resolve: (_root, args, ctx) => ctx.catalog.rejectEndpoint(callerOf(ctx), { provider: args.provider, model: args.model, reason: args.reason, expectedVersion: args.expectedVersion ?? null }),
  }),
  setModelOpenToProviders: t.withAuth({ provider: true }).field({
    type: ModelRef,
    description: "Open a model to every provider (they publish endpoints for it without approval) or close it again (owner or admin). Closing keeps the endpoints already published.",
    errors: { directResult: true },
    args: { model: t.arg.string({ required: true }), open: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.setModelOpenToProviders(callerOf(ctx), args),
  }),
  setProviderDataPolicy: t.withAuth({ admin: true }).field({
    type: ProviderRef,
    description:
      "State a provider's data policy (admin), or withdraw it with null. Routing relies on it for requests that ask for one (provider.data_collection, provider.zdr), so a provider cannot state its own.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), dataPolicy: t.arg({ type: DataPolicyEnum, required: false }) },
    resolve: (_root, args, ctx) => ctx.catalog.setProviderDataPolicy(callerOf(ctx), { provider: args.provider, dataPolicy: args.dataPolicy ?? null }),
  }),
  setProviderByok: t.withAuth({ admin: true }).field({
    type: ProviderRef,
    description:
      "Allow accounts to store their own key for a provider (BYOK, setByokKey), or stop it (admin). Keys already stored are then not used, and kept. A user's key goes to wherever the provider's endpoints point, so only an admin vouches for that.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), allowed: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.setProviderByok(callerOf(ctx), args),
  }),
  setProviderBaseUrl: t.withAuth({ provider: true }).field({
    type: ProviderRef,
    description:
      "Point a provider's endpoints at another base URL (its owner or an admin; one an admin did not register must resolve to public addresses). Accounts' BYOK keys are bound to the origin they were set for: they are not sent to the new one until their owner sets them again. Each change files the provider's pending endpoint proposals again (a new version each, to be reviewed again); while some are pending, its owner waits a minute after such a change before the next (RATE_LIMITED, reason provider_settings_cooldown, retry_after_ms; an admin does not). While the provider has endpoints (active or disabled) on models of other accounts closed to providers, which an admin admitted at this address, only an admin moves it (FORBIDDEN to its owner, details: models).",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), baseUrl: t.arg.string({ required: true, validate: z.string().max(2048, 'must be at most 2048 characters') }) },
    resolve: (_root, args, ctx) => ctx.catalog.setProviderBaseUrl(callerOf(ctx), args),
  }),
  setProviderCancellation: t.withAuth({ provider: true }).field({
    type: ProviderRef,
    description:
      "Say whether aborting a call stops the provider's processing and billing (its owner or an admin). Not cancellable: when a streaming client leaves, the gateway keeps reading the answer to its end (undelivered) and charges it whole, as the provider bills it; cancellable (the default): the call is aborted and what was generated is charged. Each change files the provider's pending endpoint proposals again (a new version each, to be reviewed again); while some are pending, its owner waits a minute after such a change before the next (RATE_LIMITED, reason provider_settings_cooldown, retry_after_ms; an admin does not). While the provider has endpoints on models of other accounts closed to providers (admitted by an admin), only an admin sets it to false (FORBIDDEN to its owner, details: models); true is always its owner's to set.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), cancellable: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.setProviderCancellation(callerOf(ctx), args),
  }),
  retireModel: t.withAuth({ admin: true }).field({
    type: ModelRef,
    description:
      'Retire a model (admin), by its catalog id: chats naming it, or an alias of it, are refused with a 400 (… is retired), saved ids naming it (presets, default models, workflow steps) are refused, the REST listing and single-model routes no longer show it; model(id:) shows it with retired true. NOT_FOUND for a model the catalog does not hold, CONFLICT for one already retired. Retiring is final: there is no un-retire.',
    errors: { directResult: true },
    args: { model: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.retireModel(callerOf(ctx), args.model),
  }),
  setModelAlias: t.withAuth({ admin: true }).field({
    type: ModelAliasRef,
    description:
      'Point an alias (~author/slug) at a catalog model (admin), or point it at another. The model as a chat names it (another spelling of its version is that model; stored as the catalog id), one a chat can be answered by: VALIDATION for an unknown, retired or non-text model, a router, another alias or variant suffixes (those go after the alias in a request). Calls naming the alias are answered as the model, and name it in the answer and the generation record; once that model is retired they are refused naming both.',
    errors: { directResult: true },
    args: { alias: t.arg.string({ required: true }), model: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.setModelAlias(callerOf(ctx), args),
  }),
  removeModelAlias: t.withAuth({ admin: true }).field({
    type: ModelAliasRef,
    description: 'Remove an alias (admin): ids naming it are unknown from then on. Answers the alias and the model it named; NOT_FOUND when it names none.',
    errors: { directResult: true },
    args: { alias: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.removeModelAlias(callerOf(ctx), args.alias),
  }),
  setAutoRouterRules: t.withAuth({ admin: true }).field({
    type: AutoRouterRulesRef,
    description: 'Replace the rules of the auto model (admin). See src/modules/catalog/autoRouter.events.ts for the fields; every problem is named by its path (rules[0].limit …).',
    errors: { directResult: true },
    args: { rules: t.arg({ type: 'JSON', required: true }) },
    resolve: (_root, args, ctx) => ctx.catalog.setAutoRouterRules(callerOf(ctx), args.rules),
  }),
}));

builder.objectField(ProviderRef, 'endpoints', (t) =>
  t.field({
    type: [EndpointRef],
    description: 'Every endpoint it publishes, disabled ones too, by model.',
    resolve: (p, _a, ctx) => ctx.catalog.providerEndpoints(p),
  }),
);

const EndpointTrafficRef = builder.objectRef<EndpointTrafficRow>('EndpointTraffic').implement({
  description: "One endpoint's traffic and earnings on one UTC day.",
  fields: (t) => ({
    endpointId: t.exposeID('endpointId'),
    provider: t.exposeString('provider', { description: "The provider's slug." }),
    model: t.exposeString('model'),
    day: t.exposeString('day', { description: 'YYYY-MM-DD (UTC).' }),
    requests: t.exposeInt('requests', { description: 'Attempts routed to it (a generation that fell back counts on each endpoint it tried).' }),
    errors: t.exposeInt('errors', { description: 'Attempts that failed upstream.' }),
    errorRate: t.float({ description: 'errors / requests, 0 to 1.', resolve: (r) => (r.requests === 0 ? 0 : r.errors / r.requests) }),
    served: t.exposeInt('served', { description: 'Generations it answered.' }),
    avgLatencyMs: t.float({ nullable: true, description: 'Mean time to the first token of the generations it answered.', resolve: (r) => (r.latencyCount === 0 ? null : r.latencySumMs / r.latencyCount) }),
    promptTokens: t.exposeInt('promptTokens'),
    completionTokens: t.exposeInt('completionTokens'),
    earnings: t.field({
      type: 'Money',
      description:
        "What the ledger charged for its service (nano-dollars): every generation that ended on it, a stream cut after some tokens (FAILED, charged for what was sent) included. A call on an account's own key (BYOK) earns nothing here: the account paid the provider on that key, and the fee is Switchyard's. A charge whose record was lost (UNRECORDED) counts on the endpoint its model and provider name ({model}@{provider}), in earnings only (its attempts are not known).",
      resolve: (r) => r.earnings,
    }),
  }),
});

builder.queryFields((t) => ({
  myProviders: t.withAuth({ provider: true }).field({
    type: [ProviderRef],
    description: "The providers the caller registered (an admin: every provider), with their endpoints.",
    resolve: (_root, _args, ctx) => ctx.catalog.ownedProviders(ctx.principal),
  }),
  providerTraffic: t.withAuth({ provider: true }).field({
    type: [EndpointTrafficRef],
    description:
      "Traffic, errors, latency and earnings per endpoint per day (UTC, inclusive) of the caller's providers (an admin: every provider), or of one of them. Another account's provider answers NOT_FOUND, as a missing one.",
    args: {
      provider: t.arg.string({ required: false, description: "One provider's slug." }),
      from: t.arg.string({ validate: calendarDayArg }),
      to: t.arg.string({ validate: calendarDayArg }),
    },
    resolve: (_root, args, ctx) => ctx.catalog.providerTraffic(ctx.principal, args),
  }),
}));
