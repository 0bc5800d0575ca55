import { ConflictError, NotFoundError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { kindOfKey, type ApiKeyCreated, type ApiKeyEvent, type KeyKind, type LimitReset } from './apiKey.events.js';

export type ApiKeyStatus = 'active' | 'disabled' | 'revoked';

/** A key as decided: everything its owner may see of it (never the hash), so a command can answer with it. */
export type ApiKeyState =
  | { readonly status: 'none' }
  | {
      readonly status: ApiKeyStatus;
      readonly keyId: string;
      readonly accountId: string;
      readonly kind: KeyKind;
      readonly name: string;
      readonly hint: string;
      readonly limit: number | null;
      readonly limitReset: LimitReset;
      readonly includeByokInLimit: boolean;
      readonly expiresAt: string | null;
      readonly createdAt: string;
      readonly updatedAt: string;
    };

export type LiveApiKeyState = Exclude<ApiKeyState, { status: 'none' }>;

export type ApiKeyCommand =
  | { readonly type: 'CreateApiKey'; readonly data: ApiKeyCreated['data'] }
  | { readonly type: 'RenameApiKey'; readonly data: { readonly keyId: string; readonly name: string; readonly at: string } }
  | { readonly type: 'SetApiKeyLimit'; readonly data: { readonly keyId: string; readonly limit: number | null; readonly limitReset: LimitReset; readonly at: string } }
  | { readonly type: 'SetApiKeyByokInLimit'; readonly data: { readonly keyId: string; readonly includeByokInLimit: boolean; readonly at: string } }
  | { readonly type: 'SetApiKeyExpiry'; readonly data: { readonly keyId: string; readonly expiresAt: string | null; readonly at: string } }
  | { readonly type: 'DisableApiKey'; readonly data: { readonly keyId: string; readonly at: string } }
  | { readonly type: 'EnableApiKey'; readonly data: { readonly keyId: string; readonly at: string } }
  | { readonly type: 'RevokeApiKey'; readonly data: { readonly keyId: string; readonly at: string } };

/** A key that exists and is not revoked; revoked keys are final. */
const requireLive = (state: ApiKeyState, keyId: string) => {
  if (state.status === 'none') throw new NotFoundError('API key', keyId);
  if (state.status === 'revoked') throw new ConflictError(`API key ${keyId} is revoked and cannot be changed`);
  return state;
};

export const apiKeyDecider: Decider<ApiKeyState, ApiKeyCommand, ApiKeyEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    if (event.type === 'ApiKeyCreated') {
      const { keyId, accountId, name, hint, limit, limitReset, includeByokInLimit = false, expiresAt, at } = event.data;
      return { status: 'active', keyId, accountId, kind: kindOfKey(event.data), name, hint, limit, limitReset, includeByokInLimit, expiresAt, createdAt: at, updatedAt: at };
    }
    if (state.status === 'none') return state;
    const updatedAt = event.data.at;
    switch (event.type) {
      case 'ApiKeyRenamed':
        return { ...state, name: event.data.name, updatedAt };
      case 'ApiKeyLimitChanged':
        return { ...state, limit: event.data.limit, limitReset: event.data.limitReset, updatedAt };
      case 'ApiKeyByokInLimitChanged':
        return { ...state, includeByokInLimit: event.data.includeByokInLimit, updatedAt };
      case 'ApiKeyExpiryChanged':
        return { ...state, expiresAt: event.data.expiresAt, updatedAt };
      case 'ApiKeyDisabled':
        return { ...state, status: 'disabled', updatedAt };
      case 'ApiKeyEnabled':
        return { ...state, status: 'active', updatedAt };
      case 'ApiKeyRevoked':
        return { ...state, status: 'revoked', updatedAt };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'CreateApiKey':
        if (state.status !== 'none') throw new ConflictError(`API key ${command.data.keyId} already exists`);
        return [{ type: 'ApiKeyCreated', data: command.data }];
      case 'RenameApiKey': {
        const live = requireLive(state, command.data.keyId);
        return live.name === command.data.name ? [] : [{ type: 'ApiKeyRenamed', data: command.data }];
      }
      case 'SetApiKeyLimit': {
        const live = requireLive(state, command.data.keyId);
        return live.limit === command.data.limit && live.limitReset === command.data.limitReset ? [] : [{ type: 'ApiKeyLimitChanged', data: command.data }];
      }
      case 'SetApiKeyByokInLimit': {
        const live = requireLive(state, command.data.keyId);
        return live.includeByokInLimit === command.data.includeByokInLimit ? [] : [{ type: 'ApiKeyByokInLimitChanged', data: command.data }];
      }
      case 'SetApiKeyExpiry': {
        const live = requireLive(state, command.data.keyId);
        return live.expiresAt === command.data.expiresAt ? [] : [{ type: 'ApiKeyExpiryChanged', data: command.data }];
      }
      case 'DisableApiKey':
        return requireLive(state, command.data.keyId).status === 'disabled' ? [] : [{ type: 'ApiKeyDisabled', data: command.data }];
      case 'EnableApiKey':
        return requireLive(state, command.data.keyId).status === 'active' ? [] : [{ type: 'ApiKeyEnabled', data: command.data }];
      case 'RevokeApiKey':
        // Revoking twice is a no-op, so a client may safely retry.
        if (state.status === 'revoked') return [];
        requireLive(state, command.data.keyId);
        return [{ type: 'ApiKeyRevoked', data: command.data }];
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
