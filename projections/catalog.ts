import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { ModelEvent, Modality } from '../src/modules/catalog/model.events.js';
import type { EndpointPrices, ProviderEvent, ProviderProtocol, VariantTag } from '../src/modules/catalog/provider.events.js';
import type { ReadStore } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

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
  readonly status: 'active' | 'disabled';
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
  endpoints: [],
});

export const modelsProjection = defineProjection<ModelDoc>({
  name: 'models',
  version: 1,
  collection: MODELS,
  filter: { categories: ['model', 'provider'] },
  documentId: (recorded) => {
    const event = recorded as RecordedEvent<ModelEvent | ProviderEvent>;
    switch (event.type) {
      case 'ModelPublished':
      case 'ModelRetired':
        return event.data.modelId;
      case 'EndpointPublished':
      case 'EndpointPriceChanged':
      case 'EndpointDisabled':
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
        return { ...base, ...rest, inputModalities: [...inputModalities], outputModalities: [...outputModalities], published: true, createdAt: doc?.published ? doc.createdAt : at };
      }
      case 'ModelRetired':
        return doc && { ...doc, retired: true };
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
          status: 'active',
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
      case 'EndpointDisabled': {
        if (!doc) return null;
        const id = `${event.data.model}@${event.data.providerSlug}`;
        return { ...doc, endpoints: doc.endpoints.map((e) => (e.id === id ? { ...e, status: 'disabled' as const, updatedAt: event.data.at } : e)) };
      }
      default:
        return doc;
    }
  },
});

export const providersProjection = defineProjection<ProviderDoc>({
  name: 'providers',
  version: 1,
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
          models: [],
        };
      }
      case 'EndpointPublished':
        return doc && (doc.models.includes(event.data.model) ? doc : { ...doc, models: [...doc.models, event.data.model] });
      case 'EndpointDisabled':
        return doc && { ...doc, models: doc.models.filter((m) => m !== event.data.model) };
      case 'EndpointPriceChanged':
        return doc;
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const catalogQueries = (store: ReadStore) => {
  const models = store.collection<ModelDoc>(MODELS);
  const providers = store.collection<ProviderDoc>(PROVIDERS);
  return {
    allModels: () => models.find({}, { sort: { _id: 1 } }),
    model: (id: string) => models.findOne({ _id: id }),
    modelsByIds: (ids: readonly string[]) => models.find({ _id: { $in: [...ids] } }),
    allProviders: () => providers.find({}, { sort: { _id: 1 } }),
    providersByIds: (ids: readonly string[]) => providers.find({ _id: { $in: [...ids] } }),
  };
};
