import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { followEvents } from '../../eventStore/follower.js';
import type { FollowStatus } from '../../eventStore/followStatus.js';
import type { Logger } from '../../logger.js';
import type { AutoRouterEvent, AutoRule } from './autoRouter.events.js';
import type { CredentialVault } from './credentials.js';
import { ownerOf, type ModelEvent, type ModelSpec } from './model.events.js';
import type { ModelAliasEvent } from './modelAlias.events.js';
import { PRICE_FIELDS, endpointId, registeredByAdmin, type DataPolicy, type EndpointPrices, type ProviderEvent, type ProviderRegistered, type VariantTag } from './provider.events.js';

/** The stream categories the catalog follows. */
export const CATALOG_CATEGORIES: readonly string[] = ['provider', 'model', 'autorouter', 'modelalias'];

/** A registered provider: what ProviderRegistered said, with its time as `registeredAt`. */
export interface ProviderEntry extends Omit<ProviderRegistered['data'], 'at' | 'trusted'> {
  readonly registeredAt: string;
  /** Registered by an admin: may read an allowed environment variable and connect to any address. */
  readonly trusted: boolean;
  /** As an admin stated it (ProviderDataPolicySet); null: unstated. */
  dataPolicy: DataPolicy | null;
  /** Whether aborting a call stops its billing (ProviderCancellationSet); true until stated otherwise. */
  cancellable: boolean;
  /** Accounts may bring their own key for it (ProviderByokSet, an admin's decision); false until stated. */
  byok: boolean;
  /** Resolved once, then cached: the upstream key, or why there is none. */
  auth(): { secret: string | null; problem: string | null };
}

export interface EndpointEntry {
  /** `model@provider` */
  readonly id: string;
  readonly model: string;
  readonly provider: ProviderEntry;
  readonly upstreamModel: string;
  readonly prices: EndpointPrices;
  readonly contextLength: number;
  readonly maxOutput: number;
  readonly quantization: string | null;
  readonly supportedParameters: ReadonlySet<string>;
  readonly variants: readonly VariantTag[];
  readonly status: 'active' | 'disabled';
  /** Tagged `free`: serves only the `:free` variant, at zero cost, under the free tier's rate limits. */
  readonly free: boolean;
  readonly publishedAt: string;
}

export interface ModelEntry {
  readonly spec: ModelSpec;
  /** Who first published it (see ownerOf). */
  readonly ownerAccountId: string;
  readonly retired: boolean;
  readonly publishedAt: string;
}

export interface Catalog {
  start(): Promise<void>;
  provider(slug: string): ProviderEntry | undefined;
  providers(): readonly ProviderEntry[];
  model(modelId: string): ModelEntry | undefined;
  models(): readonly ModelEntry[];
  /** The model's active endpoints (free and paid), in publication order. Same array until the catalog changes. */
  endpoints(modelId: string): readonly EndpointEntry[];
  endpoint(id: string): EndpointEntry | undefined;
  /** How many active endpoints the providers an account owns have (the cap on a non-admin's endpoints counts them). */
  activeEndpointsOwnedBy(accountId: string): number;
  autoRules(): readonly AutoRule[] | null;
  /** The catalog model id an admin's alias (`~openai/gpt-latest`) names; undefined when it names none. */
  alias(alias: string): string | undefined;
  /** Every alias, by alias. */
  aliases(): readonly ModelAlias[];
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  /** How its subscription to the event log is doing (for /health). */
  status(): FollowStatus;
  stop(): Promise<void>;
}

export interface ModelAlias {
  readonly alias: string;
  readonly model: string;
}

const EMPTY: readonly EndpointEntry[] = [];

/**
 * The catalog as the gateway routes and bills with it: providers, models and endpoints in memory, fed by the event
 * store (not the read models, which may lag and must not decide prices). Every process keeps its own copy.
 */
export const createCatalog = (deps: { eventStore: EventStore; vault: CredentialVault; logger: Logger }): Catalog => {
  const providers = new Map<string, ProviderEntry>();
  const models = new Map<string, ModelEntry>();
  const endpointsById = new Map<string, EndpointEntry>();
  /** Active endpoints per model; rebuilt for a model when one of its endpoints changes. */
  const byModel = new Map<string, readonly EndpointEntry[]>();
  let rules: readonly AutoRule[] | null = null;
  const aliases = new Map<string, string>();

  const reindex = (modelId: string) => {
    const active = [...endpointsById.values()].filter((e) => e.model === modelId && e.status === 'active');
    if (active.length === 0) byModel.delete(modelId);
    else byModel.set(modelId, active);
  };

  const isFree = (prices: EndpointPrices, variants: readonly VariantTag[]) => variants.includes('free') && PRICE_FIELDS.every((f) => prices[f] === 0);

  const apply = (recorded: RecordedEvent) => {
    const event = recorded as RecordedEvent<ProviderEvent | ModelEvent | AutoRouterEvent | ModelAliasEvent>;
    switch (event.type) {
      case 'ProviderRegistered': {
        const { at, trusted: _recorded, ...registered } = event.data;
        const { slug, credential } = registered;
        const trusted = registeredByAdmin(event.data);
        let resolved: { secret: string | null; problem: string | null } | null = null;
        providers.set(slug, {
          ...registered,
          trusted,
          dataPolicy: null,
          cancellable: true,
          byok: false,
          registeredAt: at,
          auth: () => (resolved ??= deps.vault.resolve(slug, credential, trusted)),
        });
        break;
      }
      case 'ProviderDataPolicySet': {
        const provider = providers.get(event.data.providerSlug);
        if (provider) provider.dataPolicy = event.data.dataPolicy;
        break;
      }
      case 'ProviderCancellationSet': {
        const provider = providers.get(event.data.providerSlug);
        if (provider) provider.cancellable = event.data.cancellable;
        break;
      }
      case 'ProviderByokSet': {
        const provider = providers.get(event.data.providerSlug);
        if (provider) provider.byok = event.data.allowed;
        break;
      }
      case 'ProviderBaseUrlChanged': {
        // A new entry, never a changed one: a request in flight keeps the URL it was planned with (a BYOK key was
        // checked against it), and every endpoint of the provider is re-pointed at the new entry.
        const previous = providers.get(event.data.providerSlug);
        if (!previous) break;
        const provider: ProviderEntry = { ...previous, baseUrl: event.data.baseUrl };
        providers.set(provider.slug, provider);
        const touched = new Set<string>();
        for (const [id, entry] of endpointsById) {
          if (entry.provider !== previous) continue;
          endpointsById.set(id, { ...entry, provider });
          touched.add(entry.model);
        }
        for (const model of touched) reindex(model);
        break;
      }
      case 'EndpointPublished': {
        const provider = providers.get(event.data.providerSlug);
        if (!provider) break;
        const id = endpointId(event.data.model, provider.slug);
        const existing = endpointsById.get(id);
        const fields = {
          upstreamModel: event.data.upstreamModel,
          prices: event.data.prices,
          contextLength: event.data.contextLength,
          maxOutput: event.data.maxOutput,
          quantization: event.data.quantization,
          supportedParameters: new Set(event.data.supportedParameters),
          variants: event.data.variants,
          // Events from before issue 10 carry no status: a publish activated then.
          status: event.data.status ?? 'active',
          free: isFree(event.data.prices, event.data.variants),
        };
        // Entries are replaced, never changed: a request in flight holds the entry it was admitted on, and is billed
        // at those prices (a price raised meanwhile must not reach it).
        endpointsById.set(id, existing ? { ...existing, ...fields } : { id, model: event.data.model, provider, publishedAt: event.data.at, ...fields });
        reindex(event.data.model);
        break;
      }
      case 'EndpointPriceChanged': {
        const id = endpointId(event.data.model, event.data.providerSlug);
        const entry = endpointsById.get(id);
        if (entry) {
          endpointsById.set(id, { ...entry, prices: event.data.prices, free: isFree(event.data.prices, entry.variants) });
          reindex(entry.model);
        }
        break;
      }
      case 'EndpointDisabled':
      case 'EndpointEnabled': {
        const id = endpointId(event.data.model, event.data.providerSlug);
        const entry = endpointsById.get(id);
        if (entry) {
          endpointsById.set(id, { ...entry, status: event.type === 'EndpointEnabled' ? 'active' : 'disabled' });
          reindex(entry.model);
        }
        break;
      }
      // A proposal routes nothing; its approval comes with the EndpointPublished that does.
      case 'EndpointProposed':
      case 'EndpointApproved':
      case 'EndpointRejected':
      // Who owns a model matters when publishing (read from the model's stream), not when routing.
      case 'ModelOpenToProvidersSet':
        break;
      case 'ModelPublished': {
        const { at, ownerAccountId: _owner, decidedBy: _by, ...spec } = event.data;
        const known = models.get(spec.modelId);
        models.set(spec.modelId, { spec, ownerAccountId: known?.ownerAccountId ?? ownerOf(event.data), retired: known?.retired ?? false, publishedAt: known?.publishedAt ?? at });
        break;
      }
      case 'ModelRetired': {
        const model = models.get(event.data.modelId);
        if (model) models.set(event.data.modelId, { ...model, retired: true });
        break;
      }
      case 'AutoRouterRulesSet':
        rules = event.data.rules;
        break;
      case 'ModelAliasSet':
        aliases.set(event.data.alias, event.data.model);
        break;
      case 'ModelAliasRemoved':
        aliases.delete(event.data.alias);
        break;
      default: {
        const _never: never = event;
      }
    }
  };

  const follower = followEvents(deps.eventStore, { categories: CATALOG_CATEGORIES }, apply, { name: 'routing catalog', logger: deps.logger });

  return {
    start: () => follower.start(),
    provider: (slug) => providers.get(slug),
    providers: () => [...providers.values()],
    model: (modelId) => models.get(modelId),
    models: () => [...models.values()],
    endpoints: (modelId) => byModel.get(modelId) ?? EMPTY,
    endpoint: (id) => endpointsById.get(id),
    // A walk over every endpoint: asked only when an account publishes or enables one, never on a request.
    activeEndpointsOwnedBy: (accountId) => {
      let count = 0;
      for (const entry of endpointsById.values()) if (entry.status === 'active' && entry.provider.ownerAccountId === accountId) count++;
      return count;
    },
    autoRules: () => rules,
    alias: (alias) => aliases.get(alias),
    aliases: () => [...aliases].map(([alias, model]) => ({ alias, model })).sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0)),
    waitFor: (position, timeoutMs) => follower.waitFor(position, timeoutMs),
    status: () => follower.status(),
    stop: () => follower.stop(),
  };
};
