import { isWellFormedText, NOT_WELL_FORMED } from '../../wellFormedText.js';
import { hasControlCharacters } from './catalogText.js';
import { reservedVendorOf } from './vendorNamespaces.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import { MODALITIES, MODEL_ID_PATTERN, authorOf, ownerOf, type ModelEvent, type ModelSpec } from './model.events.js';
import type { CatalogActor } from './provider.events.js';

export type ModelState =
  | { readonly status: 'none' }
  | { readonly status: 'published' | 'retired'; readonly spec: ModelSpec; readonly ownerAccountId: string; readonly openToProviders: boolean };

/** The provider a model is published on, as its stream says: its slug is the namespace its owner creates models in. */
export interface PublishingProvider {
  readonly slug: string;
  readonly ownerAccountId: string;
}

export type ModelCommand =
  | {
      readonly type: 'PublishModel';
      /** `provider` is the provider the caller publishes the model on (null when an admin publishes it outright, as the seed does). */
      readonly data: ModelSpec & { readonly at: string; readonly actor: CatalogActor; readonly provider: PublishingProvider | null };
    }
  | { readonly type: 'RetireModel'; readonly data: { readonly modelId: string; readonly at: string } }
  | { readonly type: 'SetModelOpenToProviders'; readonly data: { readonly modelId: string; readonly open: boolean; readonly actor: CatalogActor; readonly at: string } };

const sameSpec = (a: ModelSpec, b: ModelSpec) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The longest model description: every listing of the catalog (anonymous `/api/v1/models`, up to 1,000 models a page,
 * its RSS form, GraphQL `models`) carries it, so it is bounded like the other catalog text. OpenRouter's longest run to
 * about 2,000 characters (a paragraph or three with a few links); twice that leaves room, and a page of 500 models
 * stays within a few MB.
 */
export const MAX_MODEL_DESCRIPTION = 4_000;

/** What a model's spec must be, whoever describes it: checked when a model is published and when a proposal carries one. */
export const validateModelSpec = (spec: ModelSpec): void => {
  if (!MODEL_ID_PATTERN.test(spec.modelId)) throw new ValidationError(`model id must look like author/slug, got "${spec.modelId}"`, { field: 'modelId' });
  for (const field of ['name', 'description'] as const) if (!isWellFormedText(spec[field])) throw new ValidationError(`${field} ${NOT_WELL_FORMED}`, { field });
  if (spec.name.trim() === '' || spec.name.length > 200 || hasControlCharacters(spec.name)) throw new ValidationError('name must be 1 to 200 characters, without control characters', { field: 'name' });
  if (spec.description.length > MAX_MODEL_DESCRIPTION) {
    throw new ValidationError(`description must be at most ${MAX_MODEL_DESCRIPTION} characters (it has ${spec.description.length})`, { field: 'description' });
  }
  if (hasControlCharacters(spec.description, { lines: true })) throw new ValidationError('description must not contain control characters (line breaks are fine)', { field: 'description' });
  if (!Number.isSafeInteger(spec.contextLength) || spec.contextLength < 1) throw new ValidationError('contextLength must be a positive integer', { field: 'contextLength' });
  for (const m of [...spec.inputModalities, ...spec.outputModalities]) {
    if (!(MODALITIES as readonly string[]).includes(m)) throw new ValidationError(`unknown modality "${m}"`);
  }
};

/**
 * Whether the actor may create this model: an admin any; anyone else only in the namespace of the provider it publishes
 * on and owns (`acme/…` on provider `acme`), so that nobody takes a well-known name (`openai/gpt-9`) by publishing it
 * first, and never in a model maker's reserved namespace (a provider that got such a slug before it was reserved).
 * Everything else goes through an admin (publishEndpoint files a proposal carrying the model).
 */
export const mayCreateModel = (modelId: string, actor: CatalogActor, provider: PublishingProvider | null): boolean =>
  actor.admin ||
  (provider !== null && provider.ownerAccountId === actor.accountId && provider.slug === authorOf(modelId) && reservedVendorOf(provider.slug) === undefined);

/**
 * The first PublishModel makes the model's owner: its actor, or the root account when an admin creates it (directly
 * or by approving a proposal), so that a name an admin admitted stays the catalog's, not one person's: it does not
 * follow that account if it loses its admin role, and every admin manages it alike. Publishing again updates the description (a new ModelPublished,
 * same owner) when the owner or an admin asks; publishing the same spec is a no-op. Another account's PublishModel
 * of an existing model changes nothing and does not fail: the state it returns names the real owner, which is how
 * two providers racing to create the same model both learn who won.
 */
export const modelDecider: Decider<ModelState, ModelCommand, ModelEvent> = {
  initialState: () => ({ status: 'none' }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'ModelPublished': {
        const { at: _at, ownerAccountId: _owner, decidedBy: _by, ...spec } = event.data;
        // The owner is who published first; a later ModelPublished only updates the spec (a retired model stays
        // retired: retiring is final, as the catalog and its read model hold it).
        if (state.status !== 'none') return { ...state, spec };
        return { status: 'published', spec, ownerAccountId: ownerOf(event.data), openToProviders: false };
      }
      case 'ModelRetired':
        return state.status === 'none' ? state : { ...state, status: 'retired' };
      case 'ModelOpenToProvidersSet':
        return state.status === 'none' ? state : { ...state, openToProviders: event.data.open };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'PublishModel': {
        const { at, actor, provider, ...spec } = command.data;
        validateModelSpec(spec);
        if (state.status === 'none') {
          if (!mayCreateModel(spec.modelId, actor, provider)) {
            const reserved = provider && reservedVendorOf(provider.slug);
            if (reserved) throw new ForbiddenError(`Model ${spec.modelId} is in ${reserved}/…, a model maker's reserved namespace: publish it on your provider to propose it to an admin`);
            const namespace = provider ? `${provider.slug}/…` : 'the one of a provider it owns';
            throw new ForbiddenError(
              `Model ${spec.modelId} is not in the catalog, and a provider creates models only in its own namespace (${namespace}). Publish it on your provider to propose it to an admin, or ask an admin to publish the model and open it to providers.`,
            );
          }
          const ownerAccountId = actor.admin ? ROOT_ACCOUNT_ID : actor.accountId;
          return [{ type: 'ModelPublished', data: { ...spec, at, ownerAccountId, decidedBy: actor } }];
        }
        if (!actor.admin && actor.accountId !== state.ownerAccountId) return [];
        if (sameSpec(state.spec, spec)) return [];
        return [{ type: 'ModelPublished', data: { ...spec, at, ownerAccountId: state.ownerAccountId, decidedBy: actor } }];
      }
      case 'RetireModel':
        if (state.status === 'none') throw new NotFoundError('Model', command.data.modelId);
        if (state.status === 'retired') throw new ConflictError(`Model ${command.data.modelId} is already retired`);
        return [{ type: 'ModelRetired', data: command.data }];
      case 'SetModelOpenToProviders': {
        const { modelId, open, actor, at } = command.data;
        if (state.status === 'none') throw new NotFoundError('Model', modelId);
        if (!actor.admin && actor.accountId !== state.ownerAccountId) throw new ForbiddenError(`Model ${modelId} belongs to another account: only its owner or an admin opens or closes it`);
        if (state.openToProviders === open) return [];
        return [{ type: 'ModelOpenToProvidersSet', data: { modelId, open, at, decidedBy: actor } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
