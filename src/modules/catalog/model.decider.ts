import { ConflictError, NotFoundError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { MODALITIES, MODEL_ID_PATTERN, type ModelEvent, type ModelSpec } from './model.events.js';

export type ModelState =
  | { readonly status: 'none' }
  | { readonly status: 'published' | 'retired'; readonly spec: ModelSpec };

export type ModelCommand =
  | { readonly type: 'PublishModel'; readonly data: ModelSpec & { readonly at: string } }
  | { readonly type: 'RetireModel'; readonly data: { readonly modelId: string; readonly at: string } };

const sameSpec = (a: ModelSpec, b: ModelSpec) => JSON.stringify(a) === JSON.stringify(b);

const validate = (spec: ModelSpec) => {
  if (!MODEL_ID_PATTERN.test(spec.modelId)) throw new ValidationError(`model id must look like author/slug, got "${spec.modelId}"`, { field: 'modelId' });
  if (spec.name.trim() === '' || spec.name.length > 200) throw new ValidationError('name must be 1 to 200 characters', { field: 'name' });
  if (!Number.isSafeInteger(spec.contextLength) || spec.contextLength < 1) throw new ValidationError('contextLength must be a positive integer', { field: 'contextLength' });
  for (const m of [...spec.inputModalities, ...spec.outputModalities]) {
    if (!(MODALITIES as readonly string[]).includes(m)) throw new ValidationError(`unknown modality "${m}"`);
  }
};

/** Publishing again updates the description (a new ModelPublished); publishing the same spec is a no-op. */
export const modelDecider: Decider<ModelState, ModelCommand, ModelEvent> = {
  initialState: () => ({ status: 'none' }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'ModelPublished': {
        const { at: _at, ...spec } = event.data;
        return { status: 'published', spec };
      }
      case 'ModelRetired':
        return state.status === 'none' ? state : { ...state, status: 'retired' };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'PublishModel': {
        const { at, ...spec } = command.data;
        validate(spec);
        if (state.status === 'published' && sameSpec(state.spec, spec)) return [];
        return [{ type: 'ModelPublished', data: { ...spec, at } }];
      }
      case 'RetireModel':
        if (state.status === 'none') throw new NotFoundError('Model', command.data.modelId);
        if (state.status === 'retired') throw new ConflictError(`Model ${command.data.modelId} is already retired`);
        return [{ type: 'ModelRetired', data: command.data }];
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
