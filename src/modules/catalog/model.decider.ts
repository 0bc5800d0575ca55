import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { MODALITIES, MODEL_ID_PATTERN, ownerOf, type ModelEvent, type ModelSpec } from './model.events.js';
import type { CatalogActor } from './provider.events.js';

export type ModelState =
  | { readonly status: 'none' }
  | { readonly status: 'published' | 'retired'; readonly spec: ModelSpec; readonly ownerAccountId: string; readonly openToProviders: boolean };

export type ModelCommand =
  | { readonly type: 'PublishModel'; readonly data: ModelSpec & { readonly at: string; readonly actor: CatalogActor } }
  | { readonly type: 'RetireModel'; readonly data: { readonly modelId: string; readonly at: string } }
  | { readonly type: 'SetModelOpenToProviders'; readonly data: { readonly modelId: string; readonly open: boolean; readonly actor: CatalogActor; readonly at: string } };

const sameSpec = (a: ModelSpec, b: ModelSpec) => JSON.stringify(a) === JSON.stringify(b);

const validate = (spec: ModelSpec) => {
  if (!MODEL_ID_PATTERN.test(spec.modelId)) throw new ValidationError(`model id must look like author/slug, got "${spec.modelId}"`, { field: 'modelId' });
  if (spec.name.trim() === '' || spec.name.length > 200) throw new ValidationError('name must be 1 to 200 characters', { field: 'name' });
  if (!Number.isSafeInteger(spec.contextLength) || spec.contextLength < 1) throw new ValidationError('contextLength must be a positive integer', { field: 'contextLength' });
  for (const m of [...spec.inputModalities, ...spec.outputModalities]) {
    if (!(MODALITIES as readonly string[]).includes(m)) throw new ValidationError(`unknown modality "${m}"`);
  }
};

/**
 * The first PublishModel makes its actor the owner. Publishing again updates the description (a new ModelPublished,
 * same owner) when the owner or an admin asks; publishing the same spec is a no-op. Another account's PublishModel
 * of an existing model changes nothing and does not fail: the state it returns names the real owner, which is how
 * two providers racing to create the same model both learn who won.
 */
export const modelDecider: Decider<ModelState, ModelCommand, ModelEvent> = {
  initialState: () => ({ status: 'none' }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'ModelPublished': {
        const { at: _at, ownerAccountId: _owner, ...spec } = event.data;
        // The owner is who published first; a later ModelPublished only updates the spec.
        if (state.status !== 'none') return { ...state, status: 'published', spec };
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
        const { at, actor, ...spec } = command.data;
        validate(spec);
        if (state.status === 'none') return [{ type: 'ModelPublished', data: { ...spec, at, ownerAccountId: actor.accountId } }];
        if (!actor.admin && actor.accountId !== state.ownerAccountId) return [];
        if (state.status === 'published' && sameSpec(state.spec, spec)) return [];
        return [{ type: 'ModelPublished', data: { ...spec, at, ownerAccountId: state.ownerAccountId } }];
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
