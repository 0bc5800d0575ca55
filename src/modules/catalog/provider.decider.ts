import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { MODEL_ID_PATTERN } from './model.events.js';
import {
  PRICE_FIELDS,
  PROTOCOLS,
  VARIANT_TAGS,
  type CredentialRef,
  type EndpointPrices,
  type EndpointSpec,
  type ProviderEvent,
  type ProviderProtocol,
  type ProviderRegistered,
} from './provider.events.js';

/** Who asks: ownership is decided here, from data that comes in with the command. */
export interface CatalogActor {
  readonly accountId: string;
  readonly admin: boolean;
}

export interface EndpointState {
  readonly status: 'active' | 'disabled';
  readonly prices: EndpointPrices;
}

export type ProviderState =
  | { readonly status: 'none' }
  | {
      readonly status: 'registered';
      readonly slug: string;
      readonly protocol: ProviderProtocol;
      readonly ownerAccountId: string;
      readonly endpoints: ReadonlyMap<string, EndpointState>;
    };

export type ProviderCommand =
  | { readonly type: 'RegisterProvider'; readonly data: ProviderRegistered['data'] }
  | { readonly type: 'PublishEndpoint'; readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly spec: EndpointSpec; readonly at: string } }
  | {
      readonly type: 'ChangeEndpointPrice';
      readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly model: string; readonly prices: EndpointPrices; readonly at: string };
    }
  | {
      readonly type: 'DisableEndpoint';
      readonly data: { readonly providerSlug: string; readonly actor: CatalogActor; readonly model: string; readonly reason: string; readonly at: string };
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

const validateSpec = (spec: EndpointSpec): void => {
  if (!MODEL_ID_PATTERN.test(spec.model)) throw new ValidationError(`model must look like author/slug, got "${spec.model}"`, { field: 'model' });
  if (spec.upstreamModel.trim() === '' || spec.upstreamModel.length > 200) throw new ValidationError('upstreamModel must be 1 to 200 characters', { field: 'upstreamModel' });
  validatePrices(spec.prices);
  if (!isCount(spec.contextLength, 1)) throw new ValidationError('contextLength must be a positive integer', { field: 'contextLength' });
  if (!isCount(spec.maxOutput, 1) || spec.maxOutput > spec.contextLength) {
    throw new ValidationError('maxOutput must be a positive integer no larger than contextLength', { field: 'maxOutput' });
  }
  for (const tag of spec.variants) {
    if (!(VARIANT_TAGS as readonly string[]).includes(tag)) throw new ValidationError(`unknown variant tag "${tag}"`, { field: 'variants' });
  }
  if (spec.variants.includes('free') && PRICE_FIELDS.some((f) => spec.prices[f] !== 0)) {
    throw new ValidationError('an endpoint tagged free must have every price at 0', { field: 'variants' });
  }
};

const requireOwned = (state: ProviderState, slug: string, actor: CatalogActor) => {
  if (state.status === 'none') throw new NotFoundError('Provider', slug);
  if (!actor.admin && actor.accountId !== state.ownerAccountId) throw new ForbiddenError(`Provider ${slug} belongs to another account`);
  return state;
};

const samePrices = (a: EndpointPrices, b: EndpointPrices) => PRICE_FIELDS.every((f) => a[f] === b[f]);

export const providerDecider: Decider<ProviderState, ProviderCommand, ProviderEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'ProviderRegistered':
        return { status: 'registered', slug: event.data.slug, protocol: event.data.protocol, ownerAccountId: event.data.ownerAccountId, endpoints: new Map() };
      case 'EndpointPublished': {
        if (state.status === 'none') return state;
        const endpoints = new Map(state.endpoints);
        endpoints.set(event.data.model, { status: 'active', prices: event.data.prices });
        return { ...state, endpoints };
      }
      case 'EndpointPriceChanged': {
        const current = state.status === 'registered' ? state.endpoints.get(event.data.model) : undefined;
        if (state.status === 'none' || !current) return state;
        return { ...state, endpoints: new Map(state.endpoints).set(event.data.model, { ...current, prices: event.data.prices }) };
      }
      case 'EndpointDisabled': {
        const current = state.status === 'registered' ? state.endpoints.get(event.data.model) : undefined;
        if (state.status === 'none' || !current) return state;
        return { ...state, endpoints: new Map(state.endpoints).set(event.data.model, { ...current, status: 'disabled' }) };
      }
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'RegisterProvider': {
        const data = command.data;
        if (!PROVIDER_SLUG_PATTERN.test(data.slug)) throw new ValidationError('slug must be lowercase letters, digits and dashes (at most 40)', { field: 'slug' });
        if (data.name.trim() === '' || data.name.length > 100) throw new ValidationError('name must be 1 to 100 characters', { field: 'name' });
        if (!(PROTOCOLS as readonly string[]).includes(data.protocol)) throw new ValidationError(`protocol must be one of ${PROTOCOLS.join(', ')}`);
        if (data.protocol !== 'demo' && !/^https?:\/\/[^\s/]+/.test(data.baseUrl)) throw new ValidationError('baseUrl must be an http(s) URL', { field: 'baseUrl' });
        validateCredential(data.credential);
        if (data.credential !== null && 'env' in data.credential && data.trusted !== true) {
          throw new ForbiddenError('Only an admin may name an environment variable as a provider credential: pass apiKey instead');
        }
        if (state.status !== 'none') throw new ConflictError(`Provider ${data.slug} is already registered`);
        return [{ type: 'ProviderRegistered', data }];
      }
      case 'PublishEndpoint': {
        const { providerSlug, actor, spec, at } = command.data;
        requireOwned(state, providerSlug, actor);
        validateSpec(spec);
        return [{ type: 'EndpointPublished', data: { ...spec, providerSlug, at } }];
      }
      case 'ChangeEndpointPrice': {
        const { providerSlug, actor, model, prices, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        validatePrices(prices);
        const endpoint = owned.endpoints.get(model);
        if (!endpoint) throw new NotFoundError('Endpoint', `${model} on ${providerSlug}`);
        return samePrices(endpoint.prices, prices) ? [] : [{ type: 'EndpointPriceChanged', data: { providerSlug, model, prices, at } }];
      }
      case 'DisableEndpoint': {
        const { providerSlug, actor, model, reason, at } = command.data;
        const owned = requireOwned(state, providerSlug, actor);
        const endpoint = owned.endpoints.get(model);
        if (!endpoint) throw new NotFoundError('Endpoint', `${model} on ${providerSlug}`);
        return endpoint.status === 'disabled' ? [] : [{ type: 'EndpointDisabled', data: { providerSlug, model, reason, at } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
