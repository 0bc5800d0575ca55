import { createHash, timingSafeEqual } from 'node:crypto';
import { ConflictError, ForbiddenError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { AppAuthorizationEvent, AppAuthorizationGranted, CodeChallengeMethod } from './appAuth.events.js';

export type AppAuthorizationState =
  | { readonly status: 'none' }
  | { readonly status: 'granted'; readonly grant: AppAuthorizationGranted['data'] }
  | { readonly status: 'exchanged'; readonly grant: AppAuthorizationGranted['data']; readonly keyId: string };

export type AppAuthorizationCommand =
  | { readonly type: 'GrantAppAuthorization'; readonly data: AppAuthorizationGranted['data'] }
  | {
      readonly type: 'ExchangeAppAuthorization';
      readonly data: {
        readonly codeHash: string;
        /** The app's PKCE code verifier. */
        readonly verifier: string;
        /** The method the exchange names, if it names one: it must be the grant's. */
        readonly method: CodeChallengeMethod | null;
        readonly keyId: string;
        readonly at: string;
      };
    };

/** One answer for every refused exchange: which part was wrong (unknown, used, expired, verifier) is not told. */
export const INVALID_CODE = 'Invalid code or code_verifier: the code is unknown, already used or expired, or the verifier does not match its challenge';

/** RFC 7636 §4.2: S256 is BASE64URL(SHA-256(verifier)); plain is the verifier itself. */
export const codeChallengeOf = (verifier: string, method: CodeChallengeMethod): string =>
  method === 'S256' ? createHash('sha256').update(verifier, 'ascii').digest('base64url') : verifier;

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export const appAuthorizationDecider: Decider<AppAuthorizationState, AppAuthorizationCommand, AppAuthorizationEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'AppAuthorizationGranted':
        return { status: 'granted', grant: event.data };
      case 'AppAuthorizationExchanged':
        return state.status === 'none' ? state : { status: 'exchanged', grant: state.grant, keyId: event.data.keyId };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'GrantAppAuthorization':
        // A code is 256 random bits: a second grant under the same hash is a bug, never a retry to absorb.
        if (state.status !== 'none') throw new ConflictError('This authorization code already exists');
        return [{ type: 'AppAuthorizationGranted', data: command.data }];
      case 'ExchangeAppAuthorization': {
        const { codeHash, verifier, method, keyId, at } = command.data;
        if (state.status !== 'granted') throw new ForbiddenError(INVALID_CODE);
        const { grant } = state;
        if (Date.parse(at) >= Date.parse(grant.expiresAt)) throw new ForbiddenError(INVALID_CODE);
        if (method !== null && method !== grant.codeChallengeMethod) throw new ForbiddenError(INVALID_CODE);
        // Constant time: with the plain method the challenge is the verifier itself.
        if (!sameText(codeChallengeOf(verifier, grant.codeChallengeMethod), grant.codeChallenge)) throw new ForbiddenError(INVALID_CODE);
        return [{ type: 'AppAuthorizationExchanged', data: { codeHash, keyId, at } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
