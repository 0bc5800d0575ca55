import { NotFoundError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { MODEL_ID_PATTERN } from './model.events.js';
import { MODEL_ALIAS_PATTERN, isAliasId, type ModelAliasEvent } from './modelAlias.events.js';

/** The model the alias names; null: none (never set, or removed). */
export type ModelAliasState = { readonly model: string | null };

/**
 * `model` is a catalog model id as the catalog API resolved it (whether a chat can be answered by it is checked there,
 * against routing's catalog); the decider keeps the invariants of the forms: an alias names a model, never another
 * alias (so resolving one is a single lookup) nor variants (those go after the alias).
 */
export type ModelAliasCommand =
  | { readonly type: 'SetModelAlias'; readonly data: { readonly alias: string; readonly model: string; readonly at: string } }
  | { readonly type: 'RemoveModelAlias'; readonly data: { readonly alias: string; readonly at: string } };

/** As long as an entry of a request's `models` list may be, so that the alias can be named there. */
const MAX_ALIAS_LENGTH = 200;

export const checkAliasForm = (alias: string): void => {
  if (alias.length > MAX_ALIAS_LENGTH || !MODEL_ALIAS_PATTERN.test(alias)) {
    throw new ValidationError(
      `An alias looks like ~author/slug (lowercase letters, digits, ".", "-", "_"; no variant suffix; at most ${MAX_ALIAS_LENGTH} characters), got ${JSON.stringify(alias.slice(0, MAX_ALIAS_LENGTH + 1))}`,
      { field: 'alias' },
    );
  }
};

export const modelAliasDecider: Decider<ModelAliasState, ModelAliasCommand, ModelAliasEvent> = {
  initialState: () => ({ model: null }),
  evolve: (_state, event) => {
    switch (event.type) {
      case 'ModelAliasSet':
        return { model: event.data.model };
      case 'ModelAliasRemoved':
        return { model: null };
      default: {
        const _never: never = event;
        return _state;
      }
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'SetModelAlias': {
        const { alias, model } = command.data;
        checkAliasForm(alias);
        if (isAliasId(model)) throw new ValidationError(`${model} is an alias: an alias names a catalog model, never another alias`, { field: 'model' });
        if (!MODEL_ID_PATTERN.test(model)) throw new ValidationError(`An alias names a catalog model id (author/slug, no variant suffix: variants go after the alias), got "${model}"`, { field: 'model' });
        if (state.model === model) return [];
        return [{ type: 'ModelAliasSet', data: command.data }];
      }
      case 'RemoveModelAlias':
        checkAliasForm(command.data.alias);
        if (state.model === null) throw new NotFoundError('Model alias', command.data.alias);
        return [{ type: 'ModelAliasRemoved', data: { ...command.data, model: state.model } }];
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
