import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import { ROOT_ACCOUNT_ID } from '../src/modules/auth/principal.js';
import { ownerOf, type ModelEvent, type ModelSpec, type Modality } from '../src/modules/catalog/model.events.js';
import { endpointId, type DataPolicy, type EndpointPrices, type EndpointStatus, type ProviderEvent, type ProviderProtocol, type VariantTag } from '../src/modules/catalog/provider.events.js';
import type { ReadStore } from '../src/readStore/readStore.js';
import { defineProjection, type Projection } from './projection.js';

/** The models/endpoints catalog and the providers list, as the models API and GraphQL show them. */

export interface EndpointDoc {
  readonly id: string;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly prices: EndpointPrices;
  readonly contextLength: number;
  readonly maxOutput: number;
  readonly quantization: string | null;
  readonly supportedParameters: string[];
  readonly variants: VariantTag[];
  readonly status: EndpointStatus;
  /** Disabled by an admin: only an admin enables it again. */
  readonly disabledByAdmin: boolean;
  readonly publishedAt: string;
  readonly updatedAt: string;
}

export type ModelDoc = {
  _id: string;
  /** False while only endpoints name the model (no ModelPublished yet). */
  published: boolean;
  name: string;
  description: string;
  contextLength: number;
  inputModalities: Modality[];
  outputModalities: Modality[];
  tokenizer: string;
  createdAt: string;
  retired: boolean;
  /** The account that first published it (the root admin for seeded models). */
  ownerAccountId: string;
  /** Any provider may publish endpoints for it; otherwise providers other than its owner need an admin's approval. */
  openToProviders: boolean;
  endpoints: EndpointDoc[];
};

export type ProviderDoc = {
  _id: string;
  name: string;
  protocol: ProviderProtocol;
  baseUrl: string;
  /** How the key is held; never the key. */
  credential: { kind: 'env'; env: string } | { kind: 'encrypted' } | { kind: 'none' };
  ownerAccountId: string;
  registeredAt: string;
  /** As an admin stated it; null: unstated (routing treats the provider as one that collects data). */
  dataPolicy: DataPolicy | null;
  /** Whether aborting a call stops its billing; false: a client that leaves is charged the whole answer. */
  cancellable: boolean;
  /** An admin allows accounts to bring their own key for it (BYOK). */
  byok: boolean;
  models: string[];
};

export const MODELS = 'models';
export const PROVIDERS = 'providers';

const emptyModel = (id: string, at: string): ModelDoc => ({
  _id: id,
  published: false,
  name: id,
  description: '',
  contextLength: 0,
  inputModalities: ['text'],
  outputModalities: ['text'],
  tokenizer: 'Other',
  createdAt: at,
  retired: false,
  ownerAccountId: ROOT_ACCOUNT_ID,
  openToProviders: false,
  endpoints: [],
});

const modelDocs: Projection<ModelDoc> = {
  name: 'models',
  // 2: owners, openness and who disabled an endpoint (issue 10).
  version: 2,
  collection: MODELS,
  filter: { categories: ['model', 'provider'] },
  documentId: (recorded) => {
    const event = recorded as RecordedEvent<ModelEvent | ProviderEvent>;
    switch (event.type) {
      case 'ModelPublished':
      case 'ModelRetired':
      case 'ModelOpenToProvidersSet':
        return event.data.modelId;
      case 'EndpointPublished':
      case 'EndpointPriceChanged':
      case 'EndpointDisabled':
      case 'EndpointEnabled':
        return event.data.model;
      default:
        return null;
    }
  },
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<ModelEvent | ProviderEvent>;
    switch (event.type) {
      case 'ModelPublished': {
        const { modelId, at, inputModalities, outputModalities, ...rest } = event.data;
        const base = doc ?? emptyModel(modelId, at);
        const { ownerAccountId: _owner, decidedBy: _by, ...spec } = rest;
        const first = !doc?.published;
        return {
          ...base,
          ...spec,
          inputModalities: [...inputModalities],
          outputModalities: [...outputModalities],
          published: true,
          createdAt: first ? at : base.createdAt,
          ownerAccountId: first ? ownerOf(event.data) : base.ownerAccountId,
        };
      }
      case 'ModelRetired':
        return doc && { ...doc, retired: true };
      case 'ModelOpenToProvidersSet':
        return doc && { ...doc, openToProviders: event.data.open };
      case 'EndpointPublished': {
        const d = event.data;
        const base = doc ?? emptyModel(d.model, d.at);
        const id = `${d.model}@${d.providerSlug}`;
        const previous = base.endpoints.find((e) => e.id === id);
        const endpoint: EndpointDoc = {
          id,
          provider: d.providerSlug,
          upstreamModel: d.upstreamModel,
          prices: d.prices,
          contextLength: d.contextLength,
          maxOutput: d.maxOutput,
          quantization: d.quantization,
          supportedParameters: [...d.supportedParameters],
          variants: [...d.variants],
          // Events from before issue 10 carry no status: a publish activated then. A republish keeps who disabled it.
          status: d.status ?? 'active',
          disabledByAdmin: d.status === 'disabled' && (previous?.disabledByAdmin ?? true),
          publishedAt: previous?.publishedAt ?? d.at,
          updatedAt: d.at,
        };
        return { ...base, endpoints: previous ? base.endpoints.map((e) => (e.id === id ? endpoint : e)) : [...base.endpoints, endpoint] };
      }
      case 'EndpointPriceChanged': {
        if (!doc) return null;
        const id = `${event.data.model}@${event.data.providerSlug}`;
        return { ...doc, endpoints: doc.endpoints.map((e) => (e.id === id ? { ...e, prices: event.data.prices, updatedAt: event.data.at } : e)) };
      }
      case 'EndpointDisabled':
      case 'EndpointEnabled': {
        if (!doc) return null;
        const id = `${event.data.model}@${event.data.providerSlug}`;
        const changed =
          event.type === 'EndpointEnabled'
            ? { status: 'active' as const, disabledByAdmin: false }
            : // A disabling from before issue 10 names nobody: it counts as an admin's (as in the provider decider).
              { status: 'disabled' as const, disabledByAdmin: event.data.decidedBy?.admin ?? true };
        return { ...doc, endpoints: doc.endpoints.map((e) => (e.id === id ? { ...e, ...changed, updatedAt: event.data.at } : e)) };
      }
      default:
        return doc;
    }
  },
};
export const modelsProjection = defineProjection(modelDocs);

const providerDocs: Projection<ProviderDoc> = {
  name: 'providers',
  // 2: the data policy. 3: cancellable. 4: BYOK, base URL changes.
  version: 4,
  collection: PROVIDERS,
  filter: { categories: ['provider'] },
  documentId: (recorded) => {
    const event = recorded as RecordedEvent<ProviderEvent>;
    return event.type === 'ProviderRegistered' ? event.data.slug : event.data.providerSlug;
  },
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<ProviderEvent>;
    switch (event.type) {
      case 'ProviderRegistered': {
        const { slug, name, protocol, baseUrl, credential, ownerAccountId, at } = event.data;
        return {
          _id: slug,
          name,
          protocol,
          baseUrl,
          credential: credential === null ? { kind: 'none' } : 'env' in credential ? { kind: 'env', env: credential.env } : { kind: 'encrypted' },
          ownerAccountId,
          registeredAt: at,
          dataPolicy: null,
          cancellable: true,
          byok: false,
          models: [],
        };
      }
      case 'ProviderDataPolicySet':
        return doc && { ...doc, dataPolicy: event.data.dataPolicy };
      case 'ProviderCancellationSet':
        return doc && { ...doc, cancellable: event.data.cancellable };
      case 'ProviderByokSet':
        return doc && { ...doc, byok: event.data.allowed };
      case 'ProviderBaseUrlChanged':
        return doc && { ...doc, baseUrl: event.data.baseUrl };
      case 'EndpointPublished':
      case 'EndpointEnabled':
        // The models it serves: a republish of a disabled endpoint does not add it back.
        if (event.type === 'EndpointPublished' && event.data.status === 'disabled') return doc;
        return doc && (doc.models.includes(event.data.model) ? doc : { ...doc, models: [...doc.models, event.data.model] });
      case 'EndpointDisabled':
        return doc && { ...doc, models: doc.models.filter((m) => m !== event.data.model) };
      case 'EndpointPriceChanged':
      case 'EndpointProposed':
      case 'EndpointApproved':
      case 'EndpointRejected':
        return doc;
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
};
export const providersProjection = defineProjection(providerDocs);

export type ProposalStatus = 'pending' | 'approved' | 'rejected';

/** A provider's proposal to serve a model it may not publish on by itself, and what an admin decided. */
export type EndpointProposalDoc = {
  /** The endpoint id it would get: `model@provider`. */
  _id: string;
  provider: string;
  model: string;
  upstreamModel: string;
  prices: EndpointPrices;
  contextLength: number;
  maxOutput: number;
  quantization: string | null;
  supportedParameters: string[];
  variants: VariantTag[];
  modelOwnerAccountId: string;
  /** The model its approval creates, when it was not in the catalog (absent on proposals filed before namespaces). */
  newModel?: ModelSpec | null;
  /**
   * Where its provider sends calls and whether aborting one stops its billing, as filed (a provider moving either
   * files its pending proposals again); null on proposals filed before reviews were pinned.
   */
  baseUrl: string | null;
  cancellable: boolean | null;
  /** Which filing this is (EndpointProposed.version): what an admin approves (approveEndpoint's expectedVersion). */
  version: number;
  /** A change to the endpoint, already published, which routes as it was approved meanwhile (absent before amendments: false). */
  amends?: boolean;
  proposedBy: string;
  proposedAt: string;
  status: ProposalStatus;
  reason: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
};

export const ENDPOINT_PROPOSALS = 'endpointProposals';

const proposalDocs: Projection<EndpointProposalDoc> = {
  name: 'endpointProposals',
  // 2: each filing's version, base URL and cancellation.
  version: 2,
  collection: ENDPOINT_PROPOSALS,
  filter: { categories: ['provider'] },
  indexes: [{ keys: { status: 1 } }, { keys: { proposedBy: 1 } }],
  documentId: (recorded) => {
    const event = recorded as RecordedEvent<ProviderEvent>;
    switch (event.type) {
      case 'EndpointProposed':
      case 'EndpointApproved':
      case 'EndpointRejected':
      case 'EndpointPublished':
        return endpointId(event.data.model, event.data.providerSlug);
      default:
        return null;
    }
  },
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<ProviderEvent>;
    switch (event.type) {
      case 'EndpointProposed': {
        const { providerSlug, proposedBy, at, supportedParameters, variants, newModel, baseUrl, cancellable, version, amends, ...spec } = event.data;
        return {
          ...spec,
          amends: amends === true,
          newModel: newModel ?? null,
          baseUrl: baseUrl ?? null,
          cancellable: cancellable ?? null,
          // Filed before versions were recorded: counted, as the provider decider counts them.
          version: version ?? (doc?.version ?? 0) + 1,
          _id: endpointId(spec.model, providerSlug),
          provider: providerSlug,
          supportedParameters: [...supportedParameters],
          variants: [...variants],
          proposedBy: proposedBy.accountId,
          proposedAt: at,
          status: 'pending',
          reason: null,
          decidedBy: null,
          decidedAt: null,
        };
      }
      case 'EndpointApproved':
      case 'EndpointRejected':
        return (
          doc && {
            ...doc,
            status: event.type === 'EndpointApproved' ? 'approved' : 'rejected',
            reason: event.type === 'EndpointRejected' ? event.data.reason : null,
            decidedBy: event.data.decidedBy.accountId,
            decidedAt: event.data.at,
          }
        );
      case 'EndpointPublished':
        // Published without an approval (an admin published it, or the owner opened the model): the proposal is settled.
        return doc?.status === 'pending' ? { ...doc, status: 'approved', decidedBy: event.data.decidedBy?.accountId ?? null, decidedAt: event.data.at } : doc;
      default:
        return doc;
    }
  },
};
export const endpointProposalsProjection = defineProjection(proposalDocs);

/**
 * The read models' pure evolve functions, typed: the catalog module folds an aggregate's own events through them to
 * answer a command with exactly what it decided, in the shape the read model will have.
 */
export const catalogDocs = { model: modelDocs, provider: providerDocs, proposal: proposalDocs };

export const catalogQueries = (store: ReadStore) => {
  const models = store.collection<ModelDoc>(MODELS);
  const providers = store.collection<ProviderDoc>(PROVIDERS);
  const proposals = store.collection<EndpointProposalDoc>(ENDPOINT_PROPOSALS);
  return {
    /** Newest first; `proposedBy` narrows to one account's proposals. */
    proposals: (filter: { status?: ProposalStatus; proposedBy?: string }) =>
      proposals.find({ ...(filter.status && { status: filter.status }), ...(filter.proposedBy && { proposedBy: filter.proposedBy }) }, { sort: { proposedAt: -1, _id: 1 } }),
    proposal: (id: string) => proposals.findOne({ _id: id }),
    /** How many of an account's proposals wait for an admin (they count against its endpoints cap). */
    /** An account's pending proposals of endpoints not yet published (an amendment's endpoint is counted as published). */
    pendingProposalCount: (accountId: string) => proposals.count({ proposedBy: accountId, status: 'pending', amends: { $ne: true } }),
    allModels: () => models.find({}, { sort: { _id: 1 } }),
    model: (id: string) => models.findOne({ _id: id }),
    modelsByIds: (ids: readonly string[]) => models.find({ _id: { $in: [...ids] } }),
    /** The models a provider has an endpoint for, disabled ones too (the provider's `models` lists only routed ones). */
    modelsServedBy: (slug: string) => models.find({ 'endpoints.provider': slug }, { sort: { _id: 1 } }),
    allProviders: () => providers.find({}, { sort: { _id: 1 } }),
    providersByIds: (ids: readonly string[]) => providers.find({ _id: { $in: [...ids] } }),
  };
};
