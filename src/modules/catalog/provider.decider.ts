import { SUPPORTED_PARAMETER_NAMES } from '../../gateway/parameterNames.js';
import { checkUrlInput } from '../../urlInput.js';
import { isWellFormedText, NOT_WELL_FORMED } from '../../wellFormedText.js';
import { hasControlCharacters, hasInvisibleCharacters, mixesScripts } from './catalogText.js';
import { ConflictError, ForbiddenError, NotFoundError, RateLimitedError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import { validateModelSpec } from './model.decider.js';
import { reservedVendorOf } from './vendorNamespaces.js';
import { MODEL_ID_PATTERN, type ModelSpec } from './model.events.js';
import {
  DATA_POLICIES,
  managesProvider,
  PRICE_FIELDS,
  PROTOCOLS,
  registeredByAdmin,
  VARIANT_TAGS,
  type CatalogActor,
  type CredentialRef,
  type DataPolicy,
  type EndpointPrices,
  type EndpointProposed,
  type EndpointSpec,
  type ProposalContent,
  type ProviderEvent,
  type ProviderProtocol,
  type ProviderRegistered,
} from './provider.events.js';

export type { CatalogActor };

/**
 * One filing of a proposal (EndpointProposed): its version and content, and the filings before it, newest first, the
 * last FILINGS_KEPT - 1 of them (an approval of an older version is refused as one of no known version).
 */
export interface ProposalFiling {
  readonly version: number;
  readonly content: ProposalContent;
  readonly earlier: readonly { readonly version: number; readonly content: ProposalContent }[];
}

/** Filings of a proposal a provider state keeps: a provider republishing in a loop grows no state without bound. */
export const FILINGS_KEPT = 32;

/**
 * How long after a change of its base URL or cancellation a provider's owner waits before the next one, while it has
 * proposals pending: each such change files every pending proposal again (up to ENDPOINT_MAX_PER_ACCOUNT events),
 * which a loop of changes would otherwise multiply into the log. An admin is not held.
 */
export const REFILING_COOLDOWN_MS = 60_000;

/**
 * A filing that waits for an admin (proposed) or was refused (rejected): of an endpoint not yet published, or of a
 * change to a published one (an amendment). `newModel` is the model its approval creates (null when the model was in
 * the catalog); `filing` its latest filing (content.spec is `spec`), which names its version, and through it every
 * earlier one, so that an approval of an earlier version can say what changed since.
 */
export interface PendingFiling {
  readonly status: 'proposed' | 'rejected';
  readonly spec: EndpointSpec;
  readonly newModel: ModelSpec | null;
  readonly filing: ProposalFiling;
  readonly proposedBy: CatalogActor;
  readonly modelOwnerAccountId: string;
}

/**
 * A published endpoint: `spec` as it routes (its prices as last changed); `amendment` a change its provider filed for
 * an admin because it may not change the endpoint by itself (the model is another account's and closed to providers),
 * while the endpoint keeps routing as it is; `lastVersion` the last filing's version when it was published (0: none),
 * so that an amendment's versions go on from its proposal's and never name content an admin reviewed before.
 */
interface Published {
  readonly spec: EndpointSpec;
  readonly amendment: PendingFiling | null;
  readonly lastVersion: number;
}

/** One model on this provider: proposed (waiting for an admin) or rejected, else published and then active or disabled. Only active endpoints route. */
export type EndpointState = PendingFiling | (Published & { readonly status: 'active' }) | (Published & { readonly status: 'disabled'; readonly disabledBy: CatalogActor });

/** Whether the provider may publish on the model by itself, as the `model-{id}` stream says (read by the caller, see PublishEndpoint). */
export interface ModelAccess {
  readonly ownerAccountId: string;
  readonly openToProviders: boolean;
}

export type ProviderState =
  | { readonly status: 'none' }
  | {
      readonly status: 'registered';
      readonly slug: string;
      readonly protocol: ProviderProtocol;
      readonly ownerAccountId: string;
      /** Registered by an admin (registeredByAdmin): only admins manage it (managesProvider). */
      readonly trusted: boolean;
      readonly dataPolicy: DataPolicy | null;
      readonly cancellable: boolean;
      readonly byok: boolean;
      readonly baseUrl: string;
      /** When its owner last changed its base URL or cancellation while proposals were pending (null: never): see REFILING_COOLDOWN_MS. */
      readonly settingsChangedAt: string | null;
      readonly endpoints: ReadonlyMap<string, EndpointState>;
    };

export type ProviderCommand =
  | {
      readonly type: 'RegisterProvider';
      /**
       * `modelNamespaceOwners`: the owners of the catalog's models whose id starts with `{slug}/`, as the caller read
       * them (absent: none). A provider's slug is the namespace it creates models in, so a non-admin may not take a
       * slug whose namespace already holds another account's models (`google` while `google/gemini-2.0-flash` is
       * listed), or it could publish `google/gemini-3` as its own.
       */
      readonly data: ProviderRegistered['data'] & { readonly modelNamespaceOwners?: readonly string[] };
    }
  | {
      readonly type: 'PublishEndpoint';
      /**
       * `model` is the model's owner and openness as its stream says, read by the caller just before; null when the
       * model is not known (then only an admin publishes directly). Ownership never changes once recorded, and
       * openness changing between that read and this append is the same as the publish landing just before the
       * owner's change (closing a model never withdraws endpoints already admitted), so the decision stays one the
       * model's own history allows. `newModel`, when the model is not known, is the model as the caller described it:
       * a proposal carries it so that an admin's approval creates the model.
       */
      readonly data: {
        readonly providerSlug: string;
        readonly actor: CatalogActor;
        readonly spec: EndpointSpec;
        readonly model: ModelAccess | null;
        readonly newModel?: ModelSpec;
        readonly at: string;
      };
    }
  | {
      readonly type: 'ChangeEndpointPrice';
      /** `access`: the model's owner and openness, read by the caller as PublishEndpoint's `model` (a raise on a model closed to the provider is an admin's to review). */
      readonly data: {
        readonly providerSlug: string;
        readonly actor: CatalogActor;
        readonly model: string;
        readonly prices: EndpointPrices;
        readonly access: ModelAccess | null;
        readonly at: string;
      };
    }
  | {
      readonly type: 'DisableEndpoint';
      readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly model: string; readonly reason: string; readonly at: string };
    }
  | { readonly type: 'EnableEndpoint'; readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly model: string; readonly at: string } }
  | {
      readonly type: 'ApproveEndpoint';
      readonly data: {
        readonly providerSlug: string;
        readonly actor: CatalogActor;
        readonly model: string;
        /** Every price the admin reviewed: approval fails if the proposal has been republished with any other since. */
        readonly expectedPrices?: EndpointPrices;
        /** The proposal's version the admin reviewed (EndpointProposal.version): approval fails unless it is still the current one. */
        readonly expectedVersion?: number;
        readonly at: string;
      };
    }
  | { readonly type: 'SetDataPolicy'; readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly dataPolicy: DataPolicy | null; readonly at: string } }
  | {
      readonly type: 'SetCancellation';
      readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly cancellable: boolean; readonly freeModels: readonly string[]; readonly at: string };
    }
  | { readonly type: 'SetByok'; readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly allowed: boolean; readonly at: string } }
  | {
      readonly type: 'ChangeBaseUrl';
      /** A provider not registered by an admin: the caller has checked the URL against the outbound policy. */
      readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly baseUrl: string; readonly freeModels: readonly string[]; readonly at: string };
    }
  | {
      readonly type: 'RejectEndpoint';
      readonly data: {
        readonly providerSlug: string;
        readonly actor: CatalogActor;
        readonly model: string;
        readonly reason: string;
        /** The proposal's version the admin reviewed: the rejection fails unless it is still the current one (as approval's). */
        readonly expectedVersion?: number;
        readonly at: string;
      };
    };

export const PROVIDER_SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;
const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;

const isCount = (n: unknown, min: number): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= min;

export const validatePrices = (prices: EndpointPrices): void => {
  for (const field of PRICE_FIELDS) {
    if (!isCount(prices[field], 0)) throw new ValidationError(`prices.${field} must be a non-negative integer number of nano-dollars`, { field: `prices.${field}` });
  }
};

const validateCredential = (credential: CredentialRef): void => {
  if (credential === null) return;
  if ('env' in credential && !ENV_NAME_PATTERN.test(credential.env)) throw new ValidationError('credential.env must be an environment variable name such as OPENAI_API_KEY');
  if ('encrypted' in credential && !credential.encrypted.startsWith('v1.')) throw new ValidationError('credential.encrypted must be a v1 ciphertext');
};

export const validateSpec = (spec: EndpointSpec): void => {
  if (!MODEL_ID_PATTERN.test(spec.model)) throw new ValidationError(`model must look like author/slug, got "${spec.model}"`, { field: 'model' });
  if (!isWellFormedText(spec.upstreamModel)) throw new ValidationError(`upstreamModel ${NOT_WELL_FORMED}`, { field: 'upstreamModel' });
  if (spec.quantization !== null && spec.quantization !== undefined && !isWellFormedText(spec.quantization)) throw new ValidationError(`quantization ${NOT_WELL_FORMED}`, { field: 'quantization' });
  if (spec.upstreamModel.trim() !== spec.upstreamModel || spec.upstreamModel === '' || spec.upstreamModel.length > 200 || hasControlCharacters(spec.upstreamModel)) {
    throw new ValidationError('upstreamModel must be 1 to 200 characters, without control characters or surrounding spaces', { field: 'upstreamModel' });
  }
  if (spec.quantization !== null && spec.quantization !== undefined && (spec.quantization.length > 40 || hasControlCharacters(spec.quantization))) {
    throw new ValidationError('quantization must be at most 40 characters, without control characters', { field: 'quantization' });
  }
  validatePrices(spec.prices);
  if (!isCount(spec.contextLength, 1)) throw new ValidationError('contextLength must be a positive integer', { field: 'contextLength' });
  if (!isCount(spec.maxOutput, 1) || spec.maxOutput > spec.contextLength) {
    throw new ValidationError('maxOutput must be a positive integer no larger than contextLength', { field: 'maxOutput' });
  }
  if (spec.supportedParameters.length > SUPPORTED_PARAMETER_NAMES.size) {
    throw new ValidationError(`supportedParameters lists at most ${SUPPORTED_PARAMETER_NAMES.size} names`, { field: 'supportedParameters' });
  }
  for (const name of spec.supportedParameters) {
    if (!SUPPORTED_PARAMETER_NAMES.has(name)) {
      throw new ValidationError(`unknown parameter "${name.slice(0, 64)}" in supportedParameters (known: ${[...SUPPORTED_PARAMETER_NAMES].join(', ')})`, { field: 'supportedParameters' });
    }
  }
  for (const tag of spec.variants) {
    if (!(VARIANT_TAGS as readonly string[]).includes(tag)) throw new ValidationError(`unknown variant tag "${tag}"`, { field: 'variants' });
  }
  requireFreePrices(spec.variants.includes('free'), spec.prices, 'variants');
};

/** An endpoint tagged free serves the `:free` variant: it costs nothing, whether published so or repriced later. */
const requireFreePrices = (taggedFree: boolean, prices: EndpointPrices, field: 'variants' | 'prices') => {
  if (taggedFree && PRICE_FIELDS.some((f) => prices[f] !== 0)) {
    throw new ValidationError('an endpoint tagged free must have every price at 0', { field });
  }
};

/** FORBIDDEN unless the actor manages the provider (managesProvider). */
export const requireManager = (provider: Parameters<typeof managesProvider>[0], slug: string, actor: CatalogActor): void => {
  if (!managesProvider(provider, actor)) {
    throw new ForbiddenError(actor.accountId === provider.ownerAccountId ? `Provider ${slug} was registered by an admin: only an admin changes it` : `Provider ${slug} belongs to another account`);
  }
};

const requireOwned = (state: ProviderState, slug: string, actor: CatalogActor) => {
  if (state.status === 'none') throw new NotFoundError('Provider', slug);
  requireManager(state, slug, actor);
  return state;
};

const samePrices = (a: EndpointPrices, b: EndpointPrices) => PRICE_FIELDS.every((f) => a[f] === b[f]);

/** The prices of a proposal that differ from those its reviewer saw (none without a review), every component. */
export const changedSinceReview = (reviewed: EndpointPrices | undefined | null, proposed: EndpointPrices) =>
  reviewed ? PRICE_FIELDS.filter((field) => proposed[field] !== reviewed[field]) : [];
const sameSpec = (a: EndpointSpec | ModelSpec | null, b: EndpointSpec | ModelSpec | null) => JSON.stringify(a) === JSON.stringify(b);

/** One difference between two contents of a proposal: a field's path (`upstreamModel`, `prices.request`, `newModel.name`). */
export interface ProposalChange {
  readonly field: string;
  readonly was: unknown;
  readonly now: unknown;
}

/** A content as field paths and their values (objects walked into, arrays and null kept whole). */
const fieldsOf = (value: unknown, path: string, into: Map<string, unknown>): Map<string, unknown> => {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) fieldsOf(inner, path === '' ? key : `${path}.${key}`, into);
  } else into.set(path, value);
  return into;
};

/** What differs between two contents of a proposal, field by field (a model to create appearing or going is one change). */
export const proposalChanges = (was: ProposalContent, now: ProposalContent): ProposalChange[] => {
  const whole = (content: ProposalContent, withModel: boolean) => ({ ...content.spec, ...(withModel && { newModel: content.newModel }), baseUrl: content.baseUrl, cancellable: content.cancellable });
  const modelCameOrWent = (was.newModel === null) !== (now.newModel === null);
  const before = fieldsOf(whole(was, !modelCameOrWent), '', new Map());
  const after = fieldsOf(whole(now, !modelCameOrWent), '', new Map());
  const changes: ProposalChange[] = modelCameOrWent ? [{ field: 'newModel', was: was.newModel, now: now.newModel }] : [];
  for (const field of new Set([...after.keys(), ...before.keys()])) {
    if (JSON.stringify(before.get(field)) !== JSON.stringify(after.get(field))) changes.push({ field, was: before.get(field) ?? null, now: after.get(field) ?? null });
  }
  return changes;
};

const filingOf = (latest: ProposalFiling, version: number): { readonly version: number; readonly content: ProposalContent } | null => {
  if (latest.version === version) return latest;
  for (const filing of latest.earlier) if (filing.version === version) return filing;
  return null;
};

const shownValue = (value: unknown): string => {
  const text = JSON.stringify(value) ?? 'null';
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/**
 * CONFLICT unless `reviewed` is the proposal's current version: an admin approves the content it read, nothing filed
 * since (another upstream model, base URL, limit, parameter, model description), naming each change. A version the
 * content came back to is refused too: the version says which filing was read, and another has been filed since.
 */
const requireReviewedVersion = (proposal: PendingFiling, reviewed: number, model: string, slug: string): void => {
  const current = proposal.filing;
  if (reviewed === current.version) return;
  const earlier = filingOf(current, reviewed);
  if (earlier === null) {
    throw new ConflictError(`The proposal of ${model} on ${slug} has no version ${reviewed}: it is at version ${current.version}, review it again`, {
      reviewedVersion: reviewed,
      version: current.version,
      changes: null,
    });
  }
  const changes = proposalChanges(earlier.content, current.content);
  const what = changes.length === 0 ? 'changed and changed back' : changes.map((c) => `${c.field} is now ${shownValue(c.now)} (was ${shownValue(c.was)})`).join(', ');
  throw new ConflictError(`The proposal of ${model} on ${slug} changed since version ${reviewed} was reviewed (${what}): it is at version ${current.version}, review it again`, {
    reviewedVersion: reviewed,
    version: current.version,
    changes,
    prices: current.content.spec.prices,
  });
};

/** The endpoint's filing waiting for an admin or refused: the endpoint itself before it is published, else its amendment. */
export const pendingOf = (endpoint: EndpointState | undefined): PendingFiling | null => (endpoint === undefined ? null : isPublished(endpoint) ? endpoint.amendment : endpoint);

/** The next filing's version of this endpoint, a proposal or an amendment (its versions never start again, a rejection or an approval neither). */
const nextVersion = (current: EndpointState | undefined): number => {
  if (current === undefined) return 1;
  if (!isPublished(current)) return current.filing.version + 1;
  return (current.amendment?.filing.version ?? current.lastVersion) + 1;
};

/** The reason an amendment its provider withdrew (by publishing the endpoint as it routes) is recorded with. */
export const WITHDRAWN = 'withdrawn by its provider, which published the endpoint again as approved';

/** Whether the actor may publish on, or change an endpoint of, the model by itself (an admin, its owner, or any provider once it is open); else an admin reviews. */
export const publishesDirectly = (actor: CatalogActor, model: ModelAccess | null): boolean =>
  actor.admin || (model !== null && (model.ownerAccountId === actor.accountId || model.openToProviders));

/** The same endpoint spec, field by field (whatever the order its fields were written in). */
export const sameEndpointSpec = (a: EndpointSpec, b: EndpointSpec): boolean => JSON.stringify(specFields(a)) === JSON.stringify(specFields(b));
const specFields = (s: EndpointSpec) => [
  s.model,
  s.upstreamModel,
  PRICE_FIELDS.map((f) => s.prices[f]),
  s.contextLength,
  s.maxOutput,
  s.quantization ?? null,
  s.supportedParameters,
  s.variants,
];

/** An endpoint's spec, and nothing else, out of what carries one (an EndpointPublished, a proposal's document). */
export const endpointSpecOf = (data: EndpointSpec): EndpointSpec => ({
  model: data.model,
  upstreamModel: data.upstreamModel,
  prices: data.prices,
  contextLength: data.contextLength,
  maxOutput: data.maxOutput,
  quantization: data.quantization ?? null,
  supportedParameters: data.supportedParameters,
  variants: data.variants,
});

/**
 * FORBIDDEN when a non-admin owner would change where, or on what terms, endpoints an admin admitted send calls: those
 * of its published endpoints whose model it may not publish on by itself (`freeModels`, as the caller read them,
 * lists those it may: any other published endpoint counts, so that one approved meanwhile is not missed).
 */
const requireNothingReviewedMoves = (owned: Extract<ProviderState, { status: 'registered' }>, actor: CatalogActor, freeModels: readonly string[], what: string): void => {
  if (actor.admin) return;
  const free = new Set(freeModels);
  const held = [...owned.endpoints].filter(([model, endpoint]) => isPublished(endpoint) && !free.has(model)).map(([model]) => model);
  if (held.length === 0) return;
  const named = held.slice(0, 5).join(', ') + (held.length > 5 ? ` and ${held.length - 5} more` : '');
  throw new ForbiddenError(
    `Provider ${owned.slug} serves models of other accounts that are closed to providers (${named}), admitted by an admin's review of where calls go and what they cost: only an admin ${what}`,
    { models: held },
  );
};

/**
 * The provider's pending proposals filed again as they are, under its new base URL or cancellation: what an admin
 * reviews is where calls go and what they cost, so each gets a new version (proposedBy stays its proposer).
 */
const refilePending = (owned: Extract<ProviderState, { status: 'registered' }>, moved: Pick<ProposalContent, 'baseUrl' | 'cancellable'>, at: string, actor: CatalogActor): EndpointProposed[] => {
  const pending = pendingProposals(owned);
  // At most the cooldown: another process's clock ahead of this one's does not hold the owner longer.
  const waitMs = owned.settingsChangedAt === null ? 0 : Math.min(REFILING_COOLDOWN_MS, Date.parse(owned.settingsChangedAt) + REFILING_COOLDOWN_MS - Date.parse(at));
  if (pending > 0 && !actor.admin && waitMs > 0) {
    throw new RateLimitedError(
      `Provider ${owned.slug} changed its base URL or cancellation less than a minute ago, and each change files its ${pending} pending proposal(s) again: try again in ${Math.ceil(waitMs / 1000)} s`,
      waitMs,
      { reason: 'provider_settings_cooldown' },
    );
  }
  return [...owned.endpoints.values()].flatMap((endpoint): EndpointProposed[] => {
    const filed = pendingOf(endpoint);
    return filed?.status === 'proposed'
      ? [
          {
            type: 'EndpointProposed',
            data: {
              ...filed.spec,
              providerSlug: owned.slug,
              modelOwnerAccountId: filed.modelOwnerAccountId,
              ...(filed.newModel && { newModel: filed.newModel }),
              ...(isPublished(endpoint) && { amends: true }),
              proposedBy: filed.proposedBy,
              ...moved,
              version: filed.filing.version + 1,
              at,
            },
          },
        ]
      : [];
  });
};

/**
 * When the owner (not an admin) last changed a setting in a way that re-filed proposals (some were pending: the
 * decider re-files them from this same state): what REFILING_COOLDOWN_MS counts from.
 */
const ownersChangeAt = (state: Extract<ProviderState, { status: 'registered' }>, change: { readonly at: string; readonly decidedBy?: CatalogActor }): string | null =>
  change.decidedBy?.admin === true || pendingProposals(state) === 0 ? state.settingsChangedAt : change.at;

/** How many of the provider's endpoints wait for an admin (what a settings change files again). */
const pendingProposals = (state: Extract<ProviderState, { status: 'registered' }>): number => [...state.endpoints.values()].filter((endpoint) => pendingOf(endpoint)?.status === 'proposed').length;

/** A disabling recorded before issue 10 names nobody: count it as an admin's, so only an admin lifts it. */
const UNRECORDED_ADMIN: CatalogActor = { accountId: 'unrecorded', admin: true };

/** Only published endpoints (active or disabled) can be repriced, disabled or enabled. */
type PublishedEndpoint = Extract<EndpointState, { status: 'active' | 'disabled' }>;
const isPublished = (endpoint: EndpointState | undefined): endpoint is PublishedEndpoint => endpoint?.status === 'active' || endpoint?.status === 'disabled';

const requirePublished = (state: Extract<ProviderState, { status: 'registered' }>, slug: string, model: string): PublishedEndpoint => {
  const endpoint = state.endpoints.get(model);
  if (!isPublished(endpoint)) throw new NotFoundError('Endpoint', `${model} on ${slug}`);
  return endpoint;
};

/** The pending filing an admin decides on (a proposal or an amendment), and the endpoint it is of. */
const requirePending = (state: ProviderState, slug: string, model: string, actor: CatalogActor) => {
  if (state.status === 'none') throw new NotFoundError('Provider', slug);
  if (!actor.admin) throw new ForbiddenError('Only an admin approves or rejects endpoint proposals');
  const endpoint = state.endpoints.get(model);
  const filed = pendingOf(endpoint);
  if (filed?.status === 'rejected') throw new ConflictError(`The proposal of ${model} on ${slug} was rejected: the provider proposes again by publishing`);
  if (filed?.status !== 'proposed') throw new NotFoundError('Endpoint proposal', `${model} on ${slug}`);
  return { filed, endpoint: endpoint! };
};

const withEndpoint = (state: ProviderState, model: string, next: (current: EndpointState | undefined) => EndpointState | undefined): ProviderState => {
  if (state.status === 'none') return state;
  const endpoint = next(state.endpoints.get(model));
  return endpoint ? { ...state, endpoints: new Map(state.endpoints).set(model, endpoint) } : state;
};

/**
 * A provider's base URL (its owner and admins read it back): a key never goes in it, neither as a user name or password
 * nor in a query string (`?api-key=…`, `?key=…`, as Gemini and some proxies take one): it goes in `apiKey`, sealed.
 */
const checkBaseUrl = (raw: string): URL =>
  checkUrlInput(raw, {
    refuse: (why) => new ValidationError(`baseUrl ${why}`, { field: 'baseUrl' }),
    notAUrl: 'must be an http(s) URL',
    scheme: (url) => (url.protocol === 'http:' || url.protocol === 'https:' ? null : 'must be an http(s) URL'),
    credentials: 'must not carry a user name or password: give the key as apiKey',
    query: 'must not have a query string (?...): give the key as apiKey, other values as headers',
  });

export const providerDecider: Decider<ProviderState, ProviderCommand, ProviderEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'ProviderRegistered':
        return {
          status: 'registered',
          slug: event.data.slug,
          protocol: event.data.protocol,
          ownerAccountId: event.data.ownerAccountId,
          trusted: registeredByAdmin(event.data),
          dataPolicy: null,
          cancellable: true,
          byok: false,
          settingsChangedAt: null,
          baseUrl: event.data.baseUrl,
          endpoints: new Map(),
        };
      case 'ProviderDataPolicySet':
        return state.status === 'registered' ? { ...state, dataPolicy: event.data.dataPolicy } : state;
      case 'ProviderCancellationSet':
        return state.status === 'registered' ? { ...state, cancellable: event.data.cancellable, settingsChangedAt: ownersChangeAt(state, event.data) } : state;
      case 'ProviderByokSet':
        return state.status === 'registered' ? { ...state, byok: event.data.allowed } : state;
      case 'ProviderBaseUrlChanged':
        return state.status === 'registered' ? { ...state, baseUrl: event.data.baseUrl, settingsChangedAt: ownersChangeAt(state, event.data) } : state;
      case 'EndpointPublished': {
        const { status = 'active', decidedBy } = event.data;
        const spec = endpointSpecOf(event.data);
        return withEndpoint(state, event.data.model, (current) => {
          // Whatever was filed is settled by a publish (approved, or published by someone who may): versions go on from it.
          const filed = pendingOf(current);
          const published: Published = { spec, amendment: null, lastVersion: Math.max(filed?.filing.version ?? 0, isPublished(current) ? current.lastVersion : 0) };
          return status === 'active'
            ? { status, ...published }
            : { status, ...published, disabledBy: current?.status === 'disabled' ? current.disabledBy : (decidedBy ?? UNRECORDED_ADMIN) };
        });
      }
      case 'EndpointPriceChanged':
        return withEndpoint(state, event.data.model, (current) => (isPublished(current) ? { ...current, spec: { ...current.spec, prices: event.data.prices } } : current));
      case 'EndpointDisabled':
        return withEndpoint(state, event.data.model, (current) =>
          isPublished(current) ? { status: 'disabled', spec: current.spec, amendment: current.amendment, lastVersion: current.lastVersion, disabledBy: event.data.decidedBy ?? UNRECORDED_ADMIN } : current,
        );
      case 'EndpointEnabled':
        return withEndpoint(state, event.data.model, (current) =>
          current?.status === 'disabled' ? { status: 'active', spec: current.spec, amendment: current.amendment, lastVersion: current.lastVersion } : current,
        );
      case 'EndpointProposed': {
        const { providerSlug: _p, modelOwnerAccountId, proposedBy, at: _at, newModel, baseUrl, cancellable, version, amends: _amends, ...spec } = event.data;
        if (state.status !== 'registered') return state;
        return withEndpoint(state, spec.model, (current) => {
          const last = pendingOf(current)?.filing ?? null;
          const earlier = last === null ? [] : [{ version: last.version, content: last.content }, ...last.earlier.slice(0, FILINGS_KEPT - 2)];
          // Filed before reviews were pinned: under the provider's settings of the time, counted.
          const content: ProposalContent = { spec, newModel: newModel ?? null, baseUrl: baseUrl ?? state.baseUrl, cancellable: cancellable ?? state.cancellable };
          const filing = { version: version ?? nextVersion(current), content, earlier };
          const filed: PendingFiling = { status: 'proposed', spec, newModel: content.newModel, filing, proposedBy, modelOwnerAccountId };
          // A change to a published endpoint waits beside it: the endpoint routes as it is until an admin approves.
          return isPublished(current) ? { ...current, amendment: filed } : filed;
        });
      }
      case 'EndpointApproved':
        // The EndpointPublished appended with it does the publishing.
        return state;
      case 'EndpointRejected':
        return withEndpoint(state, event.data.model, (current) => {
          if (isPublished(current)) return current.amendment?.status === 'proposed' ? { ...current, amendment: { ...current.amendment, status: 'rejected' } } : current;
          return current?.status === 'proposed' ? { ...current, status: 'rejected' } : current;
        });
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'RegisterProvider': {
        const { modelNamespaceOwners = [], ...data } = command.data;
        if (!PROVIDER_SLUG_PATTERN.test(data.slug)) throw new ValidationError('slug must be lowercase letters, digits and dashes (at most 40)', { field: 'slug' });
        if (!isWellFormedText(data.name)) throw new ValidationError(`name ${NOT_WELL_FORMED}`, { field: 'name' });
        if (data.name.trim() === '' || data.name.length > 100 || hasControlCharacters(data.name)) throw new ValidationError('name must be 1 to 100 characters, without control characters', { field: 'name' });
        // A name is how provider lists and readers tell providers apart: nothing in it may hide, or pass for a letter of another script.
        if (hasInvisibleCharacters(data.name)) throw new ValidationError('name must not contain invisible characters (zero-width spaces, joiners, format characters)', { field: 'name' });
        if (mixesScripts(data.name)) throw new ValidationError('name must not mix scripts within a word (such as a Cyrillic letter among Latin ones)', { field: 'name' });
        if (!(PROTOCOLS as readonly string[]).includes(data.protocol)) throw new ValidationError(`protocol must be one of ${PROTOCOLS.join(', ')}`);
        if (data.protocol !== 'demo') checkBaseUrl(data.baseUrl);
        validateCredential(data.credential);
        if (data.credential !== null && 'env' in data.credential && data.trusted !== true) {
          throw new ForbiddenError('Only an admin may name an environment variable as a provider credential: pass apiKey instead');
        }
        if (state.status !== 'none') throw new ConflictError(`Provider ${data.slug} is already registered`);
        if (data.trusted !== true && modelNamespaceOwners.some((owner) => owner !== data.ownerAccountId)) {
          throw new ForbiddenError(`Slug ${data.slug} is the namespace of models in the catalog (${data.slug}/…) that belong to another account: choose another slug, or ask an admin to register this provider`);
        }
        if (data.trusted !== true) {
          // A slug is the namespace of the models its provider creates at once: a maker's is an admin's to give.
          const bySlug = reservedVendorOf(data.slug);
          if (bySlug !== undefined) {
            throw new ForbiddenError(
              `Slug ${data.slug} is reserved for ${bySlug}, a model maker's namespace (${bySlug}/…): choose a slug of your own brand, or ask an admin to register this provider`,
              { field: 'slug', reserved: bySlug },
            );
          }
          const byName = reservedVendorOf(data.name);
          if (byName !== undefined) {
            throw new ForbiddenError(`Name ${data.name} is reserved for ${byName}, a model maker: choose a name of your own brand, or ask an admin to register this provider`, {
              field: 'name',
              reserved: byName,
            });
          }
        }
        return [{ type: 'ProviderRegistered', data }];
      }
      case 'PublishEndpoint': {
        const { providerSlug, actor, spec, model, newModel, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        validateSpec(spec);
        if (newModel && newModel.modelId !== spec.model) throw new ValidationError(`newModel describes ${newModel.modelId}, not ${spec.model}`, { field: 'model' });
        // A proposal carries the model it would create: bounded as the model itself is.
        if (newModel) validateModelSpec(newModel);
        const current = owned.endpoints.get(spec.model);
        if (publishesDirectly(actor, model)) {
          // Republishing a published endpoint updates its spec and keeps its status.
          return [{ type: 'EndpointPublished', data: { ...spec, providerSlug, at, status: isPublished(current) ? current.status : 'active', decidedBy: actor } }];
        }
        // On a model the provider may not publish on by itself, an admin reviews the endpoint, and then every change
        // to it (another upstream model, price, limit): the endpoint routes as it was approved until the change is.
        if (isPublished(current) && sameEndpointSpec(current.spec, spec)) {
          // Published again as it routes: what the provider wants is the endpoint as approved, and a change it filed
          // before is withdrawn (an admin's approval of it would publish what its provider no longer asks for).
          return current.amendment?.status === 'proposed'
            ? [{ type: 'EndpointRejected', data: { providerSlug, model: spec.model, reason: WITHDRAWN, at, decidedBy: actor } }]
            : [];
        }
        const carried = model === null && !isPublished(current) ? (newModel ?? null) : null;
        const { baseUrl, cancellable } = owned;
        const pending = pendingOf(current);
        const unchanged =
          pending?.status === 'proposed' &&
          sameEndpointSpec(pending.spec, spec) &&
          sameSpec(pending.newModel, carried) &&
          pending.filing.content.baseUrl === baseUrl &&
          pending.filing.content.cancellable === cancellable;
        if (unchanged) return [];
        // A model an admin creates on approval is the root account's (see modelDecider).
        const modelOwnerAccountId = model?.ownerAccountId ?? ROOT_ACCOUNT_ID;
        return [
          {
            type: 'EndpointProposed',
            data: {
              ...spec,
              providerSlug,
              modelOwnerAccountId,
              ...(carried && { newModel: carried }),
              ...(isPublished(current) && { amends: true }),
              proposedBy: actor,
              baseUrl,
              cancellable,
              version: nextVersion(current),
              at,
            },
          },
        ];
      }
      case 'ChangeEndpointPrice': {
        const { providerSlug, actor, model, prices, access, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        validatePrices(prices);
        const endpoint = requirePublished(owned, providerSlug, model);
        requireFreePrices(endpoint.spec.variants.includes('free'), prices, 'prices');
        // A price an older event did not record counts as 0: setting it is a raise.
        const raised = PRICE_FIELDS.filter((field) => prices[field] > (endpoint.spec.prices[field] ?? 0));
        // What a call costs was part of the review that admitted it: a raise is reviewed too (a cut is not held).
        if (raised.length > 0 && !publishesDirectly(actor, access)) {
          throw new ForbiddenError(
            `Endpoint ${model} on ${providerSlug} serves a model of another account that is closed to providers, admitted at its prices by an admin's review: a raise (${raised.join(', ')}) is reviewed too. Publish the endpoint again with the new prices (publishEndpoint): the change waits for an admin while the endpoint routes at its current prices`,
            { field: 'prices', raised },
          );
        }
        return samePrices(endpoint.spec.prices, prices) ? [] : [{ type: 'EndpointPriceChanged', data: { providerSlug, model, prices, at, decidedBy: actor } }];
      }
      case 'DisableEndpoint': {
        const { providerSlug, actor, model, reason, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        const endpoint = requirePublished(owned, providerSlug, model);
        // An admin disabling an endpoint its provider had disabled takes the decision over: only an admin lifts it then.
        if (endpoint.status === 'disabled' && (endpoint.disabledBy.admin || !actor.admin)) return [];
        return [{ type: 'EndpointDisabled', data: { providerSlug, model, reason, at, decidedBy: actor } }];
      }
      case 'EnableEndpoint': {
        const { providerSlug, actor, model, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        const endpoint = requirePublished(owned, providerSlug, model);
        if (endpoint.status === 'active') return [];
        if (!actor.admin && (endpoint.disabledBy.admin || endpoint.disabledBy.accountId !== actor.accountId)) {
          throw new ForbiddenError(`Endpoint ${model} on ${providerSlug} was disabled by an admin: only an admin enables it again`);
        }
        return [{ type: 'EndpointEnabled', data: { providerSlug, model, at, decidedBy: actor } }];
      }
      case 'ApproveEndpoint': {
        const { providerSlug, actor, model, expectedPrices, expectedVersion, at } = command.data;
        const { filed: proposal, endpoint } = requirePending(state, providerSlug, model, actor);
        // A provider may republish its pending proposal at other prices while it is being reviewed: every component
        // counts (a per-request fee or a reasoning price moves what a call costs as much as the token prices do).
        const changed = changedSinceReview(expectedPrices, proposal.spec.prices);
        if (changed.length > 0) {
          throw new ConflictError(`The proposal changed since it was reviewed (${changed.map((field) => `${field} is now ${proposal.spec.prices[field]}`).join(', ')}): review it again`, {
            prices: proposal.spec.prices,
          });
        }
        // Anything else may have been filed since too (another upstream model, base URL, limit): without a version, an
        // admin's approval takes the proposal as it is now.
        if (expectedVersion !== undefined) requireReviewedVersion(proposal, expectedVersion, model, providerSlug);
        return [
          { type: 'EndpointApproved', data: { providerSlug, model, at, decidedBy: actor } },
          // An amendment approved keeps the endpoint's status (one disabled stays so).
          { type: 'EndpointPublished', data: { ...proposal.spec, providerSlug, at, status: isPublished(endpoint) ? endpoint.status : 'active', decidedBy: actor } },
        ];
      }
      case 'SetDataPolicy': {
        const { providerSlug, actor, dataPolicy, at } = command.data;
        // Requests that ask for a data policy rely on it: a provider's word about itself is not enough.
        if (!actor.admin) throw new ForbiddenError(`Only an admin states a provider's data policy (${providerSlug})`);
        if (state.status !== 'registered') throw new NotFoundError('Provider', providerSlug);
        if (dataPolicy !== null && !(DATA_POLICIES as readonly string[]).includes(dataPolicy)) {
          throw new ValidationError(`dataPolicy must be one of ${DATA_POLICIES.join(', ')}, or null`, { field: 'dataPolicy' });
        }
        return state.dataPolicy === dataPolicy ? [] : [{ type: 'ProviderDataPolicySet', data: { providerSlug, dataPolicy, at, decidedBy: actor } }];
      }
      case 'SetCancellation': {
        const { providerSlug, actor, cancellable, freeModels, at } = command.data;
        // Its owner may say so: what it changes is whether the gateway reads on to the end, and bills, tokens the
        // provider really streams (the owner sets its prices anyway).
        const owned = requireOwned(state, providerSlug, actor);
        if (typeof cancellable !== 'boolean') throw new ValidationError('cancellable must be true or false', { field: 'cancellable' });
        if (owned.cancellable === cancellable) return [];
        // Billing aborted calls to their end was not what an admin admitted (stopping it costs callers nothing).
        if (!cancellable) requireNothingReviewedMoves(owned, actor, freeModels, 'makes its calls bill on after an abort (cancellable false)');
        return [{ type: 'ProviderCancellationSet', data: { providerSlug, cancellable, at, decidedBy: actor } }, ...refilePending(owned, { baseUrl: owned.baseUrl, cancellable }, at, actor)];
      }
      case 'SetByok': {
        const { providerSlug, actor, allowed, at } = command.data;
        // A user's key goes wherever the provider's endpoints point, which its owner decides: not its owner's call.
        if (!actor.admin) throw new ForbiddenError(`Only an admin decides whether accounts may bring their own key for a provider (${providerSlug})`);
        if (state.status !== 'registered') throw new NotFoundError('Provider', providerSlug);
        if (typeof allowed !== 'boolean') throw new ValidationError('allowed must be true or false', { field: 'allowed' });
        if (allowed && state.protocol === 'demo') throw new ValidationError(`Provider ${providerSlug} runs in-process (demo): it takes no key`, { field: 'provider' });
        return state.byok === allowed ? [] : [{ type: 'ProviderByokSet', data: { providerSlug, allowed, at, decidedBy: actor } }];
      }
      case 'ChangeBaseUrl': {
        const { providerSlug, actor, baseUrl, freeModels, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        if (owned.protocol === 'demo') throw new ValidationError(`Provider ${providerSlug} runs in-process (demo): it has no base URL`, { field: 'baseUrl' });
        checkBaseUrl(baseUrl);
        if (owned.baseUrl === baseUrl) return [];
        requireNothingReviewedMoves(owned, actor, freeModels, 'moves its base URL');
        const moved: ProviderEvent[] = [{ type: 'ProviderBaseUrlChanged', data: { providerSlug, baseUrl, at, decidedBy: actor } }];
        // An admin allowed accounts' own keys for the provider where it pointed: moved elsewhere by its owner, the
        // provider asks an admin again, so that no key set from now on goes to an origin no admin looked at.
        if (owned.byok && !actor.admin && new URL(baseUrl).origin !== new URL(owned.baseUrl).origin) {
          moved.push({ type: 'ProviderByokSet', data: { providerSlug, allowed: false, at, decidedBy: actor } });
        }
        return [...moved, ...refilePending(owned, { baseUrl, cancellable: owned.cancellable }, at, actor)];
      }
      case 'RejectEndpoint': {
        const { providerSlug, actor, model, reason, expectedVersion, at } = command.data;
        const { filed: proposal } = requirePending(state, providerSlug, model, actor);
        if (reason.trim() === '' || reason.length > 500) throw new ValidationError('reason must be 1 to 500 characters', { field: 'reason' });
        if (expectedVersion !== undefined) requireReviewedVersion(proposal, expectedVersion, model, providerSlug);
        return [{ type: 'EndpointRejected', data: { providerSlug, model, reason, at, decidedBy: actor } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
