import { resolveArrayConnection } from '@pothos/plugin-relay';
import { z } from 'zod';
import { catalogQueries, type EndpointDoc, type EndpointProposalDoc, type ModelDoc, type ProposalStatus, type ProviderDoc } from '../../../projections/catalog.js';
import { providerStatsQueries, summarizeStats, type EndpointStatsSummary } from '../../../projections/providerStats.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { DomainEvent, RecordedEvent } from '../../eventStore/eventStore.js';
import { foldEvents, type Decider } from '../../eventStore/handleCommand.js';
import { adapterFor } from '../../gateway/providers/registry.js';
import { builder } from '../../graphql/builder.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import type { AuthenticatedContext, GraphQLContext } from '../../graphql/context.js';
import { actorOf } from '../accounts/account.graphql.js';
import { isAdmin } from '../auth/principal.js';
import { autoRouterDecider } from './autoRouter.decider.js';
import { AUTO_ROUTER_STREAM, type AutoRule } from './autoRouter.events.js';
import { mayCreateModel, modelDecider } from './model.decider.js';
import { MODALITIES, authorOf, modelStream, type Modality, type ModelEvent, type ModelSpec } from './model.events.js';
import { providerDecider, validateSpec, type ModelAccess, type ProviderCommand } from './provider.decider.js';
import {
  PROTOCOLS,
  VARIANT_TAGS,
  endpointId,
  providerStream,
  type CredentialRef,
  type EndpointPrices,
  type EndpointSpec,
  type ProviderEvent,
  type ProviderProtocol,
  type VariantTag,
} from './provider.events.js';

const queries = (ctx: GraphQLContext) => catalogQueries(ctx.core.readStore);

export const ProviderProtocolEnum = builder.enumType('ProviderProtocol', {
  values: Object.fromEntries(PROTOCOLS.map((p) => [p.toUpperCase(), { value: p }])) as Record<Uppercase<ProviderProtocol>, { value: ProviderProtocol }>,
});
export const VariantTagEnum = builder.enumType('VariantTag', {
  values: Object.fromEntries(VARIANT_TAGS.map((v) => [v.toUpperCase(), { value: v }])) as Record<Uppercase<VariantTag>, { value: VariantTag }>,
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

const toPrices = (input: { prompt: number; completion: number; request?: number | null; reasoning?: number | null; cacheRead?: number | null; cacheWrite?: number | null }): EndpointPrices => ({
  prompt: input.prompt,
  completion: input.completion,
  request: input.request ?? 0,
  reasoning: input.reasoning ?? input.completion,
  cacheRead: input.cacheRead ?? input.prompt,
  cacheWrite: input.cacheWrite ?? input.prompt,
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
const seesInternals = (ctx: GraphQLContext, provider: ProviderDoc) => ctx.principal !== null && (isAdmin(ctx.principal) || ctx.principal.accountId === provider.ownerAccountId);

export const ProviderRef = builder.loadableObject('Provider', {
  description: 'An upstream API that serves models. Its key is never shown: only how it is held.',
  load: loadByIds('Provider', (slugs, ctx) => queries(ctx).providersByIds(slugs)),
  sort: (doc: ProviderDoc) => doc._id,
  fields: (t) => ({
    slug: t.exposeString('_id'),
    name: t.exposeString('name'),
    protocol: t.field({ type: ProviderProtocolEnum, resolve: (p) => p.protocol }),
    baseUrl: t.exposeString('baseUrl'),
    credentialKind: t.string({ description: 'env (an environment variable), encrypted (AES-256-GCM at rest) or none.', resolve: (p) => p.credential.kind }),
    credentialEnv: t.string({
      nullable: true,
      description: 'The environment variable holding its key (its owner and admins only).',
      resolve: (p, _a, ctx) => (p.credential.kind === 'env' && seesInternals(ctx, p) ? p.credential.env : null),
    }),
    ownerAccountId: t.id({ nullable: true, description: 'The account that registered it (its owner and admins only).', resolve: (p, _a, ctx) => (seesInternals(ctx, p) ? p.ownerAccountId : null) }),
    registeredAt: t.field({ type: 'DateTime', resolve: (p) => p.registeredAt }),
    models: t.exposeStringList('models'),
    available: t.boolean({ description: 'Whether its credential resolves (routing skips it otherwise).', resolve: (p, _a, ctx) => ctx.core.gateway.catalog.provider(p._id)?.auth().problem === null }),
    unavailableReason: t.string({
      nullable: true,
      description: 'Why it is unavailable (its owner and admins only).',
      resolve: (p, _a, ctx) => (seesInternals(ctx, p) ? (ctx.core.gateway.catalog.provider(p._id)?.auth().problem ?? null) : null),
    }),
  }),
});

type EndpointView = EndpointDoc & { model: string };

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
    stats: t.field({
      type: EndpointStatsRef,
      resolve: async (e, _a, ctx) => {
        const [doc] = await providerStatsQueries(ctx.core.readStore).byIds([e.id]);
        return summarizeStats(doc, ctx.core.now().getTime());
      },
    }),
  }),
});

const PROPOSAL_STATUSES = ['pending', 'approved', 'rejected'] as const satisfies readonly ProposalStatus[];
const ProposalStatusEnum = builder.enumType('ProposalStatus', {
  values: Object.fromEntries(PROPOSAL_STATUSES.map((s) => [s.toUpperCase(), { value: s }])) as Record<Uppercase<ProposalStatus>, { value: ProposalStatus }>,
});

export const EndpointProposalRef = builder.objectRef<EndpointProposalDoc>('EndpointProposal').implement({
  description:
    "A provider's request to serve a model that belongs to another account and is not open to providers, or a model new to the catalog outside the provider's namespace. Nothing routes to it; an admin approves it (the endpoint is published) or rejects it with a reason.",
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
  load: loadByIds('Model', (ids, ctx) => queries(ctx).modelsByIds(ids)),
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
      resolve: (m, _a, ctx) => (ctx.principal && (ctx.principal.roles.has('admin') || ctx.principal.accountId === m.ownerAccountId) ? m.ownerAccountId : null),
    }),
    endpoints: t.field({
      type: [EndpointRef],
      args: { includeDisabled: t.arg.boolean({ defaultValue: false }) },
      resolve: (m, args) => m.endpoints.filter((e) => args.includeDisabled || e.status === 'active').map((e) => ({ ...e, model: m._id })),
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

const ModelSortEnum = builder.enumType('ModelSort', { values: ['ID', 'PRICE_LOW_TO_HIGH', 'PRICE_HIGH_TO_LOW', 'CONTEXT_HIGH_TO_LOW', 'NEWEST'] as const });

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

const cheapest = (m: ModelDoc) => Math.min(...m.endpoints.filter((e) => e.status === 'active').map((e) => e.prices.prompt + e.prices.completion), Number.MAX_SAFE_INTEGER);

builder.queryFields((t) => ({
  models: t.connection({
    type: ModelRef,
    description: 'The catalog (public): models with at least one active endpoint, filtered and sorted.',
    args: { filter: t.arg({ type: ModelFilter, required: false }), sort: t.arg({ type: ModelSortEnum, defaultValue: 'ID' }) },
    resolve: async (_root, args, ctx) => {
      const f = args.filter;
      let models = (await queries(ctx).allModels()).filter((m) => {
        const active = m.endpoints.filter((e) => e.status === 'active');
        if (m.retired || active.length === 0) return false;
        if (f?.search && !`${m._id} ${m.name}`.toLowerCase().includes(f.search.toLowerCase())) return false;
        if (f?.provider && !active.some((e) => e.provider === f.provider)) return false;
        if (f?.maxPromptPrice != null && !active.some((e) => e.prices.prompt <= f.maxPromptPrice!)) return false;
        if (f?.minContextLength != null && m.contextLength < f.minContextLength) return false;
        if (f?.supportedParameter && !active.some((e) => e.supportedParameters.includes(f.supportedParameter!))) return false;
        if (f?.inputModality && !m.inputModalities.includes(f.inputModality)) return false;
        return true;
      });
      const sorts: Record<string, (a: ModelDoc, b: ModelDoc) => number> = {
        ID: (a, b) => a._id.localeCompare(b._id),
        PRICE_LOW_TO_HIGH: (a, b) => cheapest(a) - cheapest(b),
        PRICE_HIGH_TO_LOW: (a, b) => cheapest(b) - cheapest(a),
        CONTEXT_HIGH_TO_LOW: (a, b) => b.contextLength - a.contextLength,
        NEWEST: (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt),
      };
      models = models.sort((a, b) => sorts[args.sort ?? 'ID']!(a, b) || a._id.localeCompare(b._id));
      return resolveArrayConnection({ args }, models);
    },
  }),
  model: t.field({
    type: ModelRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => (await queries(ctx).model(String(args.id).replace(/:(free|nitro|floor)$/, ''))) ?? null,
  }),
  providers: t.field({ type: [ProviderRef], description: 'Every registered provider (public).', resolve: (_root, _args, ctx) => queries(ctx).allProviders() }),
  endpointProposals: t.withAuth({ provider: true }).connection({
    type: EndpointProposalRef,
    description: "Endpoint proposals, newest first: an admin sees every provider's, a provider its own. status null lists all.",
    args: { status: t.arg({ type: ProposalStatusEnum, required: false, defaultValue: 'pending' }) },
    resolve: async (_root, args, ctx) => {
      const actor = actorFor(ctx);
      const docs = await queries(ctx).proposals({ status: args.status ?? undefined, proposedBy: actor.admin ? undefined : actor.accountId });
      return resolveArrayConnection({ args }, docs);
    },
  }),
  autoRouterRules: t.field({
    type: 'JSON',
    nullable: true,
    description: 'The rules of the auto model (switchyard/auto), in order.',
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.core.gateway.catalog.autoRules(),
  }),
}));

// ---------------------------------------------------------------------------------------------------------------
// Mutations: a provider account manages its own providers and endpoints; an admin manages any.

const AutoRouterRulesRef = builder.objectRef<{ rules: readonly AutoRule[] }>('AutoRouterRules').implement({
  fields: (t) => ({ rules: t.field({ type: 'JSON', resolve: (r) => r.rules }) }),
});

const actorFor = (ctx: AuthenticatedContext) => ({ accountId: ctx.principal.accountId, admin: ctx.principal.roles.has('admin') });

/** Run a catalog command and return once routing (the in-memory catalog) and the read models both see it. */
const runCatalog = async <S, C, E extends DomainEvent>(ctx: GraphQLContext, stream: string, decider: Decider<S, C, E>, command: C) => {
  const result = await ctx.core.execute(stream, decider, command, actorOf(ctx));
  if (result.position !== null) await ctx.core.gateway.catalog.waitFor(result.position);
  return result;
};

const reloadProvider = async (ctx: GraphQLContext, slug: string) => {
  const [doc] = await queries(ctx).providersByIds([slug]);
  if (!doc) throw new NotFoundError('Provider', slug);
  return doc;
};

const reloadEndpoint = async (ctx: GraphQLContext, providerSlug: string, model: string): Promise<EndpointView> => {
  const doc = await queries(ctx).model(model);
  const endpoint = doc?.endpoints.find((e) => e.id === endpointId(model, providerSlug));
  if (!endpoint) throw new NotFoundError('Endpoint', `${model} on ${providerSlug}`);
  return { ...endpoint, model };
};

const providerCommand = (ctx: GraphQLContext, slug: string, command: ProviderCommand) => runCatalog(ctx, providerStream(slug), providerDecider, command);

const reloadProposal = async (ctx: GraphQLContext, providerSlug: string, model: string) => {
  const doc = await queries(ctx).proposal(endpointId(model, providerSlug));
  if (!doc) throw new NotFoundError('Endpoint proposal', `${model} on ${providerSlug}`);
  return doc;
};

/** The model's owner and openness from its own stream (exact; the read model may lag). */
const loadModel = async (ctx: GraphQLContext, modelId: string) => foldEvents(modelDecider, (await ctx.core.eventStore.readStream(modelStream(modelId))) as RecordedEvent<ModelEvent>[]);

/**
 * An admin approving a proposal that carries a model not in the catalog creates that model first (two streams, so
 * two appends: model first, so that an approved endpoint never routes to a model the catalog does not list; if the
 * approval then fails, the model stays, a neutral name owned by the root account).
 */
const createProposedModel = async (ctx: AuthenticatedContext, providerSlug: string, modelId: string) => {
  const provider = foldEvents(providerDecider, (await ctx.core.eventStore.readStream(providerStream(providerSlug))) as RecordedEvent<ProviderEvent>[]);
  const proposal = provider.status === 'registered' ? provider.endpoints.get(modelId) : undefined;
  if (proposal?.status !== 'proposed' || proposal.newModel === null) return;
  if ((await loadModel(ctx, modelId)).status !== 'none') return;
  await runCatalog(ctx, modelStream(modelId), modelDecider, { type: 'PublishModel', data: { ...proposal.newModel, at: ctx.core.now().toISOString(), actor: actorFor(ctx), provider: null } });
};

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
      "Register a provider owned by the caller. Give its key as apiKey (stored encrypted with SWITCHYARD_MASTER_KEY), or (admins only) as credentialEnv, the name of an environment variable the operator allowed (PROVIDER_CREDENTIAL_ENV_ALLOW), or neither for keyless servers. A provider not registered by an admin must have a baseUrl that resolves to public addresses (or ones OUTBOUND_ALLOW admits). The slug is also the namespace the provider creates new models in (slug/…): a non-admin cannot take a slug whose namespace holds another account's models.",
    errors: { directResult: true },
    args: {
      slug: t.arg.string({ required: true, validate: slugArg }),
      name: t.arg.string({ required: true, validate: z.string().trim().min(1).max(100) }),
      protocol: t.arg({ type: ProviderProtocolEnum, required: true }),
      baseUrl: t.arg.string({ required: true }),
      apiKey: t.arg.string({ required: false }),
      credentialEnv: t.arg.string({ required: false }),
      headers: t.arg({ type: 'JSON', required: false, description: 'Extra non-secret headers sent upstream, e.g. {"anthropic-beta": "…"}.' }),
    },
    resolve: async (_root, args, ctx) => {
      const admin = isAdmin(ctx.principal);
      if (args.apiKey && args.credentialEnv) throw new ValidationError('Give either apiKey or credentialEnv, not both');
      if (args.protocol === 'demo' && !admin) throw new ValidationError('Only admins register demo providers');
      const headers = args.headers ?? {};
      if (typeof headers !== 'object' || Array.isArray(headers) || Object.values(headers as object).some((v) => typeof v !== 'string')) {
        throw new ValidationError('headers must be an object of strings');
      }
      if (args.credentialEnv) {
        if (!admin) throw new ForbiddenError('Only an admin may name an environment variable as a provider credential: pass apiKey instead');
        ctx.core.gateway.vault.checkEnvName(args.credentialEnv);
      }
      if (!admin && args.protocol !== 'demo') {
        const refusal = await ctx.core.gateway.upstream.policy.checkUrl(args.baseUrl);
        if (refusal) throw new ValidationError(`baseUrl refused: ${refusal.message}`, { field: 'baseUrl', reason: refusal.reason });
      }
      const credential: CredentialRef = args.apiKey ? { encrypted: ctx.core.gateway.vault.encrypt(args.slug, args.apiKey) } : args.credentialEnv ? { env: args.credentialEnv } : null;
      await providerCommand(ctx, args.slug, {
        type: 'RegisterProvider',
        data: {
          slug: args.slug,
          name: args.name,
          protocol: args.protocol,
          baseUrl: args.baseUrl,
          credential,
          headers: headers as Record<string, string>,
          ownerAccountId: ctx.principal.accountId,
          trusted: admin,
          at: ctx.core.now().toISOString(),
          modelNamespaceOwners: ctx.core.gateway.catalog
            .models()
            .filter((m) => authorOf(m.spec.modelId) === args.slug)
            .map((m) => m.ownerAccountId),
        },
      });
      return reloadProvider(ctx, args.slug);
    },
  }),
  publishEndpoint: t.withAuth({ provider: true }).field({
    type: PublishEndpointResult,
    description:
      "Publish (or republish) a model on one of the caller's providers. A model new to the catalog is added, owned by the caller, only in the provider's own namespace: on provider acme, a new model id must be acme/…. On a model the caller owns, or one its owner opened to providers, the answer is the Endpoint, routed at once. On another account's model that is not open, or a model new to the catalog outside the provider's namespace (e.g. openai/… on provider acme), the answer is an EndpointProposal with proposalStatus PENDING (createsModel true for a new model): nothing routes until an admin approves it (approveEndpoint, which creates such a model owned by the root account), and the caller sees it in endpointProposals. To serve a model under another maker's name without waiting on each proposal, ask an admin to publish the model and open it to providers (setModelOpenToProviders). Admins publish on any model and create any model (owned by the root account). Republishing an existing endpoint updates its spec and never changes its status: an endpoint an admin disabled stays disabled.",
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
      modelName: t.arg.string({ required: false, description: 'For a model new to the catalog.' }),
      modelDescription: t.arg.string({ required: false }),
    },
    resolve: async (_root, args, ctx) => {
      const provider = ctx.core.gateway.catalog.provider(args.provider);
      if (!provider) throw new NotFoundError('Provider', args.provider);
      const actor = actorFor(ctx);
      // Checked before the model is created too, so that nobody comes to own a model through another's provider.
      if (!actor.admin && provider.ownerAccountId !== actor.accountId) throw new ForbiddenError(`Provider ${args.provider} belongs to another account`);
      const spec: EndpointSpec = {
        model: args.model,
        upstreamModel: args.upstreamModel,
        prices: toPrices(args.prices),
        contextLength: args.contextLength,
        maxOutput: args.maxOutput,
        quantization: args.quantization ?? null,
        supportedParameters: args.supportedParameters ?? [...adapterFor(provider.protocol).supportedParameters],
        variants: args.variants ?? [],
      };
      validateSpec(spec);
      const at = ctx.core.now().toISOString();
      const newModel: ModelSpec = {
        modelId: args.model,
        name: args.modelName ?? args.model,
        description: args.modelDescription ?? '',
        contextLength: args.contextLength,
        inputModalities: ['text'],
        outputModalities: ['text'],
        tokenizer: 'Other',
      };
      const publishingOn = { slug: provider.slug, ownerAccountId: provider.ownerAccountId };
      let model = await loadModel(ctx, args.model);
      // Outside the provider's namespace the model is not created here: the endpoint becomes a proposal carrying it.
      if (model.status === 'none' && mayCreateModel(args.model, actor, publishingOn)) {
        const created = await runCatalog(ctx, modelStream(args.model), modelDecider, { type: 'PublishModel', data: { ...newModel, at, actor, provider: publishingOn } });
        // The state after the command: if another provider created the model first, it names that owner.
        model = created.state;
      }
      const access: ModelAccess | null = model.status === 'none' ? null : { ownerAccountId: model.ownerAccountId, openToProviders: model.openToProviders };
      const result = await providerCommand(ctx, args.provider, { type: 'PublishEndpoint', data: { providerSlug: args.provider, actor, spec, model: access, newModel, at } });
      const endpoint = result.state.status === 'registered' ? result.state.endpoints.get(args.model) : undefined;
      if (endpoint?.status === 'proposed') return reloadProposal(ctx, args.provider, args.model);
      return reloadEndpoint(ctx, args.provider, args.model);
    },
  }),
  changePrice: t.withAuth({ provider: true }).field({
    type: EndpointRef,
    description: "Change the prices of one of the caller's endpoints (an admin may change any). Takes effect for the next request.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }), prices: t.arg({ type: PricesInput, required: true }) },
    resolve: async (_root, args, ctx) => {
      await providerCommand(ctx, args.provider, {
        type: 'ChangeEndpointPrice',
        data: { providerSlug: args.provider, actor: actorFor(ctx), model: args.model, prices: toPrices(args.prices), at: ctx.core.now().toISOString() },
      });
      return reloadEndpoint(ctx, args.provider, args.model);
    },
  }),
  disableEndpoint: t.withAuth({ provider: true }).field({
    type: EndpointRef,
    description: "Stop routing to an endpoint. Its provider's owner may enable it again only if the owner disabled it; one an admin disabled stays disabled until an admin enables it.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }), reason: t.arg.string({ required: false, description: 'Default: who disabled it.' }) },
    resolve: async (_root, args, ctx) => {
      const actor = actorFor(ctx);
      const reason = args.reason ?? (actor.admin ? 'disabled by an admin' : 'disabled by its owner');
      await providerCommand(ctx, args.provider, { type: 'DisableEndpoint', data: { providerSlug: args.provider, actor, model: args.model, reason, at: ctx.core.now().toISOString() } });
      return reloadEndpoint(ctx, args.provider, args.model);
    },
  }),
  enableEndpoint: t.withAuth({ provider: true }).field({
    type: EndpointRef,
    description: "Route to a disabled endpoint again: an admin enables any; a provider's owner only one it disabled itself.",
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await providerCommand(ctx, args.provider, { type: 'EnableEndpoint', data: { providerSlug: args.provider, actor: actorFor(ctx), model: args.model, at: ctx.core.now().toISOString() } });
      return reloadEndpoint(ctx, args.provider, args.model);
    },
  }),
  approveEndpoint: t.withAuth({ admin: true }).field({
    type: EndpointRef,
    description:
      'Approve a pending endpoint proposal (admin): the endpoint is published as proposed and routes at once. A proposal for a model not in the catalog (createsModel) creates the model first, owned by the root account and closed to other providers.',
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await createProposedModel(ctx, args.provider, args.model);
      await providerCommand(ctx, args.provider, { type: 'ApproveEndpoint', data: { providerSlug: args.provider, actor: actorFor(ctx), model: args.model, at: ctx.core.now().toISOString() } });
      return reloadEndpoint(ctx, args.provider, args.model);
    },
  }),
  rejectEndpoint: t.withAuth({ admin: true }).field({
    type: EndpointProposalRef,
    description: 'Reject a pending endpoint proposal (admin), with a reason the provider sees. The provider may propose again by publishing.',
    errors: { directResult: true },
    args: { provider: t.arg.string({ required: true }), model: t.arg.string({ required: true }), reason: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await providerCommand(ctx, args.provider, {
        type: 'RejectEndpoint',
        data: { providerSlug: args.provider, actor: actorFor(ctx), model: args.model, reason: args.reason, at: ctx.core.now().toISOString() },
      });
      return reloadProposal(ctx, args.provider, args.model);
    },
  }),
  setModelOpenToProviders: t.withAuth({ provider: true }).field({
    type: ModelRef,
    description: "Open a model to every provider (they publish endpoints for it without approval) or close it again (owner or admin). Closing keeps the endpoints already published.",
    errors: { directResult: true },
    args: { model: t.arg.string({ required: true }), open: t.arg.boolean({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await runCatalog(ctx, modelStream(args.model), modelDecider, {
        type: 'SetModelOpenToProviders',
        data: { modelId: args.model, open: args.open, actor: actorFor(ctx), at: ctx.core.now().toISOString() },
      });
      const doc = await queries(ctx).model(args.model);
      if (!doc) throw new NotFoundError('Model', args.model);
      return doc;
    },
  }),
  setAutoRouterRules: t.field({
    type: AutoRouterRulesRef,
    description: 'Replace the rules of the auto model (admin). See src/modules/catalog/autoRouter.events.ts for the fields.',
    errors: { directResult: true },
    authScopes: { admin: true },
    args: { rules: t.arg({ type: 'JSON', required: true }) },
    resolve: async (_root, args, ctx) => {
      if (!Array.isArray(args.rules)) throw new ValidationError('rules must be a list');
      const rules = args.rules as AutoRule[];
      await runCatalog(ctx, AUTO_ROUTER_STREAM, autoRouterDecider, { type: 'SetAutoRouterRules', data: { rules, at: ctx.core.now().toISOString() } });
      return { rules: ctx.core.gateway.catalog.autoRules() ?? [] };
    },
  }),
}));
