import { ConflictError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { ProviderHandleEvent } from './providerHandle.events.js';

/** The refusal of a handle that already names another provider. */
export const handleTaken = (handle: string, holder: string): ConflictError =>
  new ConflictError(`${JSON.stringify(handle)} already names provider ${holder}: provider slugs and names are unique, in any case`, { provider: holder });

/** The slug of the provider the handle names; null: none yet. */
export type ProviderHandleState = { readonly slug: string | null };

/**
 * `replacing`: the provider holding the handle that the caller found registered under other handles, so not named by
 * this one (it claimed the handle, then lost the race for its slug to a registration with another name): that claim
 * names nobody and is taken over. Registrations never change a provider's slug or name, so that stays true.
 */
export type ProviderHandleCommand = {
  readonly type: 'ClaimProviderHandle';
  readonly data: { readonly handle: string; readonly slug: string; readonly replacing: string | null; readonly at: string };
};

export const providerHandleDecider: Decider<ProviderHandleState, ProviderHandleCommand, ProviderHandleEvent> = {
  initialState: () => ({ slug: null }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'ProviderHandleClaimed':
        return { slug: event.data.slug };
      default: {
        const _never: never = event.type;
        return state;
      }
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'ClaimProviderHandle': {
        const { handle, slug, replacing, at } = command.data;
        if (state.slug === slug) return [];
        if (state.slug !== null && state.slug !== replacing) throw handleTaken(handle, state.slug);
        return [{ type: 'ProviderHandleClaimed', data: { handle, slug, at } }];
      }
      default: {
        const _never: never = command.type;
        return [];
      }
    }
  },
};
