import { ConflictError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { ProviderHandleEvent } from './providerHandle.events.js';

/** The refusal of a handle that already names another provider. */
export const handleTaken = (handle: string, holder: string): ConflictError =>
  new ConflictError(`${JSON.stringify(handle)} already names provider ${holder}: provider slugs and names are unique, in any case`, { provider: holder });

/**
 * How old a claim whose provider was never registered must be to be taken over: a registration claims its handles
 * and registers its provider within milliseconds, unless its process died in between.
 */
export const ABANDONED_CLAIM_MS = 60_000;

/** The slug of the provider the handle names (null: none yet), and when it was claimed. */
export type ProviderHandleState = { readonly slug: string | null; readonly at: string | null };

/**
 * `replacing`: the provider holding the handle whose claim the caller found to name nobody, so taken over: one
 * registered under other handles (it claimed the handle, then lost the race for its slug to a registration with
 * another name; registrations never change a provider's slug or name, so that stays true), or one never registered
 * although its claim is older than ABANDONED_CLAIM_MS (its registration died between the claim and the provider).
 */
export type ProviderHandleCommand = {
  readonly type: 'ClaimProviderHandle';
  readonly data: { readonly handle: string; readonly slug: string; readonly replacing: string | null; readonly at: string };
};

export const providerHandleDecider: Decider<ProviderHandleState, ProviderHandleCommand, ProviderHandleEvent> = {
  initialState: () => ({ slug: null, at: null }),
  evolve: (state, event) => {
    switch (event.type) {
      case 'ProviderHandleClaimed':
        return { slug: event.data.slug, at: event.data.at };
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
