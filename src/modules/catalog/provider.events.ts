import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import type { ModelSpec } from './model.events.js';

/**
 * The `provider-{slug}` aggregate: a provider (an upstream API) and the endpoints it publishes. An endpoint is one
 * provider serving one model, with its own prices and limits; routing picks among a model's endpoints.
 */

export const PROTOCOLS = ['openai', 'anthropic', 'gemini', 'demo'] as const;
export type ProviderProtocol = (typeof PROTOCOLS)[number];

/**
 * How the provider's API key is found. Never the key itself: either the name of an environment variable read at
 * call time, or the key encrypted with AES-256-GCM under SWITCHYARD_MASTER_KEY (`v1.<iv>.<tag>.<ciphertext>`,
 * base64url), or null for providers that need none (the demo, a local Ollama).
 */
export type CredentialRef = { readonly env: string } | { readonly encrypted: string } | null;

/** Integer nano-dollars (1 USD = 1,000,000,000) per token, and per request for `request`. */
export interface EndpointPrices {
  readonly prompt: number;
  readonly completion: number;
  readonly request: number;
  /** Reasoning tokens are output tokens; usually the completion price. */
  readonly reasoning: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
}

export const PRICE_FIELDS = ['prompt', 'completion', 'request', 'reasoning', 'cacheRead', 'cacheWrite'] as const satisfies readonly (keyof EndpointPrices)[];
export type PriceField = (typeof PRICE_FIELDS)[number];
/** Every price component, once: a price added to EndpointPrices and not to PRICE_FIELDS does not compile. */
type MissingPriceFields = Exclude<keyof EndpointPrices, PriceField>;
const _everyPriceListed: [MissingPriceFields] extends [never] ? true : MissingPriceFields = true;
void _everyPriceListed;

/** Variant tags an endpoint can carry: `free` endpoints serve the `:free` variant (rate-limited, zero price). */
export const VARIANT_TAGS = ['free', 'nitro', 'floor', 'beta', 'thinking', 'extended'] as const;
export type VariantTag = (typeof VARIANT_TAGS)[number];

export interface EndpointSpec {
  readonly model: string;
  readonly upstreamModel: string;
  readonly prices: EndpointPrices;
  readonly contextLength: number;
  readonly maxOutput: number;
  readonly quantization: string | null;
  readonly supportedParameters: readonly string[];
  readonly variants: readonly VariantTag[];
}

export type ProviderRegistered = {
  readonly type: 'ProviderRegistered';
  readonly data: {
    readonly slug: string;
    readonly name: string;
    readonly protocol: ProviderProtocol;
    readonly baseUrl: string;
    readonly credential: CredentialRef;
    /** Extra headers sent upstream (non-secret, e.g. `anthropic-beta`). */
    readonly headers: Readonly<Record<string, string>>;
    readonly ownerAccountId: string;
    /**
     * Registered by an admin: may name an environment variable as its credential and connect to any address (other
     * providers go through the outbound address policy). Absent on events written before it existed: read as true
     * only for the root admin's account (the seed), false for everyone else.
     */
    readonly trusted?: boolean;
    readonly at: string;
  };
};

/** Whether a registration was an admin's (`trusted`), reading events from before the field as its comment says. */
export const registeredByAdmin = (data: Pick<ProviderRegistered['data'], 'trusted' | 'ownerAccountId'>): boolean => data.trusted ?? data.ownerAccountId === ROOT_ACCOUNT_ID;

/**
 * Who manages a provider (its endpoints, prices, base URL, cancellation): an admin; its owner only when it registered
 * it as a non-admin. A provider an admin registered is the platform's (it may read the platform's environment
 * credentials and connect anywhere): its owner keeps no power over it when it loses the admin role.
 */
export const managesProvider = (provider: { readonly ownerAccountId: string; readonly trusted: boolean }, actor: { readonly admin: boolean; readonly accountId: string }): boolean =>
  actor.admin || (!provider.trusted && actor.accountId === provider.ownerAccountId);

/**
 * What a provider does with the prompts and completions it serves, as an admin states it (a provider's own word is not
 * taken: requests that ask for a data policy rely on it). `collects`: it stores them beyond serving the request, or
 * trains on them; `no_collection`: neither (it may keep them for a while, for abuse monitoring); `zero_retention`: it
 * keeps nothing once it has answered. Unstated (null), routing treats a provider as `collects`.
 */
export const DATA_POLICIES = ['collects', 'no_collection', 'zero_retention'] as const;
export type DataPolicy = (typeof DATA_POLICIES)[number];

/** Who decided a catalog change: the account, and whether it acted as an admin. Recorded in the event data. */
export interface CatalogActor {
  readonly accountId: string;
  readonly admin: boolean;
}

export type EndpointStatus = 'active' | 'disabled';

/**
 * An endpoint is published (first time, on approval) or republished with a new spec. `status` is the endpoint's
 * status after it: republishing never changes it (an endpoint an admin disabled stays disabled). Events written
 * before issue 10 have neither `status` (they always activated) nor `decidedBy`.
 */
export type EndpointPublished = {
  readonly type: 'EndpointPublished';
  readonly data: EndpointSpec & { readonly providerSlug: string; readonly at: string; readonly status?: EndpointStatus; readonly decidedBy?: CatalogActor };
};

export type EndpointPriceChanged = {
  readonly type: 'EndpointPriceChanged';
  readonly data: { readonly providerSlug: string; readonly model: string; readonly prices: EndpointPrices; readonly at: string; readonly decidedBy?: CatalogActor };
};

/** `decidedBy` is absent in events written before issue 10: such a disabling counts as an admin's (fail closed). */
export type EndpointDisabled = {
  readonly type: 'EndpointDisabled';
  readonly data: { readonly providerSlug: string; readonly model: string; readonly reason: string; readonly at: string; readonly decidedBy?: CatalogActor };
};

export type EndpointEnabled = {
  readonly type: 'EndpointEnabled';
  readonly data: { readonly providerSlug: string; readonly model: string; readonly at: string; readonly decidedBy: CatalogActor };
};

/**
 * A provider asked to serve a model it may not publish on by itself (another account's model, not open to
 * providers, or a model not in the catalog outside the provider's namespace): nothing routes to it until an admin
 * approves. `newModel` is the model as the provider described it when it is not in the catalog: an admin's approval
 * creates it (owned by the root account, see modelDecider). `modelOwnerAccountId` is the owner it has or will have.
 */
export type EndpointProposed = {
  readonly type: 'EndpointProposed';
  readonly data: EndpointSpec & {
    readonly providerSlug: string;
    readonly modelOwnerAccountId: string;
    readonly newModel?: ModelSpec;
    readonly proposedBy: CatalogActor;
    /**
     * Where its provider sends calls, and whether aborting one stops the provider's billing, as they are while it
     * waits: an admin reviews them with the rest. Its provider moving either files the proposal again (this event, with
     * the rest unchanged). Absent on events written before reviews were pinned (read: the provider's at that time).
     */
    readonly baseUrl?: string;
    readonly cancellable?: boolean;
    /**
     * Which filing of this endpoint's proposal this is (1, 2, …; it never starts again, a rejection neither): what an
     * admin approves (approveEndpoint's expectedVersion). Absent on events written before it: the count of the
     * endpoint's EndpointProposed events so far.
     */
    readonly version?: number;
    /**
     * A change to an endpoint already published, which its provider may not change by itself (the model is another
     * account's and closed to providers): the endpoint routes as it was approved until an admin approves this.
     * Absent: a proposal of an endpoint not yet published (and every filing written before amendments).
     */
    readonly amends?: true;
    readonly at: string;
  };
};

/** What an admin reviews in a proposal: everything its approval publishes or creates, and where calls would go. */
export interface ProposalContent {
  readonly spec: EndpointSpec;
  readonly newModel: ModelSpec | null;
  readonly baseUrl: string;
  readonly cancellable: boolean;
}

/** An admin approved a pending proposal; the EndpointPublished that follows in the same append publishes it. */
export type EndpointApproved = {
  readonly type: 'EndpointApproved';
  readonly data: { readonly providerSlug: string; readonly model: string; readonly at: string; readonly decidedBy: CatalogActor };
};

/** An admin rejected a pending proposal, or its provider withdrew an amendment (decidedBy names it; reason WITHDRAWN). */
export type EndpointRejected = {
  readonly type: 'EndpointRejected';
  readonly data: { readonly providerSlug: string; readonly model: string; readonly reason: string; readonly at: string; readonly decidedBy: CatalogActor };
};

/** An admin stated (or, with null, withdrew) the provider's data policy. */
export type ProviderDataPolicySet = {
  readonly type: 'ProviderDataPolicySet';
  readonly data: { readonly providerSlug: string; readonly dataPolicy: DataPolicy | null; readonly at: string; readonly decidedBy: CatalogActor };
};

/**
 * Whether aborting a call stops the provider's processing and billing (OpenRouter's "stream cancellation", supported by
 * some providers and not others). Stated by the provider's owner or an admin; without this event a provider is
 * cancellable. A provider that is not keeps generating, and billing, after a client leaves: the gateway then reads
 * its stream to the end and charges the whole answer instead of aborting it.
 */
export type ProviderCancellationSet = {
  readonly type: 'ProviderCancellationSet';
  readonly data: { readonly providerSlug: string; readonly cancellable: boolean; readonly at: string; readonly decidedBy: CatalogActor };
};

/**
 * An admin allowed (or stopped) accounts storing their own key for this provider (BYOK). Only an admin allows: a
 * user's key goes to wherever the provider's endpoints point, which the provider's owner controls. Its owner moving it
 * to another origin withdraws the allowance (decidedBy: the owner), with its ProviderBaseUrlChanged.
 */
export type ProviderByokSet = {
  readonly type: 'ProviderByokSet';
  readonly data: { readonly providerSlug: string; readonly allowed: boolean; readonly at: string; readonly decidedBy: CatalogActor };
};

/**
 * The provider's owner (or an admin) pointed its endpoints at another base URL. BYOK keys bound to the old origin are
 * no longer sent to it (see the accounts' ByokKeySet).
 */
export type ProviderBaseUrlChanged = {
  readonly type: 'ProviderBaseUrlChanged';
  readonly data: { readonly providerSlug: string; readonly baseUrl: string; readonly at: string; readonly decidedBy: CatalogActor };
};

export type ProviderEvent =
  | ProviderRegistered
  | ProviderDataPolicySet
  | ProviderCancellationSet
  | ProviderByokSet
  | ProviderBaseUrlChanged
  | EndpointPublished
  | EndpointPriceChanged
  | EndpointDisabled
  | EndpointEnabled
  | EndpointProposed
  | EndpointApproved
  | EndpointRejected;

export const providerStream = (slug: string): string => `provider-${slug}`;

/** The id of an endpoint: `openai/gpt-4o@openai` (model, then provider slug). */
export const endpointId = (model: string, providerSlug: string): string => `${model}@${providerSlug}`;
