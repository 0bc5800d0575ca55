import { ConflictError, NotFoundError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import { MAX_BYOK_KEYS, type AccountEvent, type AccountProviderPreferences, type ByokKey, type Role } from './account.events.js';

/** An account as decided: everything it may see of itself, so a command can answer with it. */
export type AccountState =
  | { readonly status: 'none' }
  | {
      readonly status: 'open';
      readonly accountId: string;
      readonly name: string;
      readonly email: string | null;
      readonly roles: ReadonlySet<Role>;
      /** The admin roster's revision of the last ADMIN change recorded here (-1: none). */
      readonly adminRosterRevision: number;
      readonly plan: string;
      readonly contentLogging: boolean;
      readonly defaultModel: string | null;
      readonly providerPreferences: AccountProviderPreferences | null;
      /** Its own provider keys (BYOK), by provider slug. */
      readonly byokKeys: ReadonlyMap<string, ByokKey>;
      readonly openedAt: string;
      readonly updatedAt: string;
    };

export type OpenAccountState = Exclude<AccountState, { status: 'none' }>;

export type AccountCommand =
  | { readonly type: 'OpenAccount'; readonly data: { readonly accountId: string; readonly name: string; readonly email: string | null; readonly roles: readonly Role[]; readonly plan: string; readonly at: string } }
  /** `rosterRevision`: an ADMIN change decided on the admin roster at that revision (an older one than recorded is stale). */
  | { readonly type: 'GrantRole'; readonly data: { readonly accountId: string; readonly role: Role; readonly at: string; readonly rosterRevision?: number } }
  | {
      readonly type: 'RevokeRole';
      readonly data: { readonly accountId: string; readonly role: Role; readonly actorAccountId: string | null; readonly at: string; readonly rosterRevision?: number };
    }
  | { readonly type: 'ChangePlan'; readonly data: { readonly accountId: string; readonly plan: string; readonly at: string } }
  | { readonly type: 'SetContentLogging'; readonly data: { readonly accountId: string; readonly enabled: boolean; readonly at: string } }
  | { readonly type: 'SetDefaultModel'; readonly data: { readonly accountId: string; readonly model: string | null; readonly at: string } }
  | {
      readonly type: 'SetProviderPreferences';
      /** A list left undefined stays as it is; an empty one clears it. */
      readonly data: { readonly accountId: string; readonly ignore?: readonly string[]; readonly allow?: readonly string[]; readonly at: string };
    }
  /** The key comes sealed, its origin checked by the caller (the provider must accept BYOK keys). */
  | { readonly type: 'SetByokKey'; readonly data: ByokKey & { readonly accountId: string } }
  | { readonly type: 'RemoveByokKey'; readonly data: { readonly accountId: string; readonly provider: string; readonly at: string } };

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((item, i) => item === b[i]);

/**
 * The revocations of ADMIN refused whatever the state: an admin's own (it could lock every admin out), and the bootstrap
 * admin's, whose role comes from configuration (ADMIN_API_KEY, or the key printed at the first start): the API cannot
 * take it away, so it cannot say it did.
 */
export const refuseAdminRevocation = (accountId: string, actorAccountId: string | null): void => {
  if (actorAccountId === accountId) throw new ConflictError('An admin cannot revoke its own admin role (that could lock every admin out)');
  if (accountId === ROOT_ACCOUNT_ID) {
    throw new ValidationError("The bootstrap admin's role comes from configuration (ADMIN_API_KEY, or the key printed at the first start) and cannot be revoked through the API", { field: 'accountId' });
  }
};

const requireOpen = (state: AccountState, accountId: string) => {
  if (state.status !== 'open') throw new NotFoundError('Account', accountId);
  return state;
};

export const accountDecider: Decider<AccountState, AccountCommand, AccountEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'AccountOpened': {
        const { accountId, name, email, roles, plan, at } = event.data;
        return {
          status: 'open',
          accountId,
          name,
          email,
          roles: new Set(roles),
          adminRosterRevision: -1,
          plan,
          contentLogging: false,
          defaultModel: null,
          providerPreferences: null,
          byokKeys: new Map(),
          openedAt: at,
          updatedAt: at,
        };
      }
      case 'RoleGranted':
        return state.status === 'open'
          ? { ...state, roles: new Set([...state.roles, event.data.role]), adminRosterRevision: event.data.rosterRevision ?? state.adminRosterRevision, updatedAt: event.data.at }
          : state;
      case 'RoleRevoked':
        return state.status === 'open'
          ? { ...state, roles: new Set([...state.roles].filter((r) => r !== event.data.role)), adminRosterRevision: event.data.rosterRevision ?? state.adminRosterRevision, updatedAt: event.data.at }
          : state;
      case 'PlanChanged':
        return state.status === 'open' ? { ...state, plan: event.data.plan, updatedAt: event.data.at } : state;
      case 'ContentLoggingChanged':
        return state.status === 'open' ? { ...state, contentLogging: event.data.enabled, updatedAt: event.data.at } : state;
      case 'DefaultModelChanged':
        return state.status === 'open' ? { ...state, defaultModel: event.data.model, updatedAt: event.data.at } : state;
      case 'ProviderPreferencesChanged':
        return state.status === 'open' ? { ...state, providerPreferences: event.data.preferences, updatedAt: event.data.at } : state;
      case 'ByokKeySet': {
        if (state.status !== 'open') return state;
        const { accountId: _account, ...key } = event.data;
        return { ...state, byokKeys: new Map(state.byokKeys).set(key.provider, key), updatedAt: key.at };
      }
      case 'ByokKeyRemoved': {
        if (state.status !== 'open') return state;
        const byokKeys = new Map(state.byokKeys);
        byokKeys.delete(event.data.provider);
        return { ...state, byokKeys, updatedAt: event.data.at };
      }
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'OpenAccount':
        if (state.status !== 'none') throw new ConflictError(`Account ${command.data.accountId} already exists`);
        return [{ type: 'AccountOpened', data: { ...command.data, roles: [...new Set(command.data.roles)] } }];
      case 'GrantRole': {
        const open = requireOpen(state, command.data.accountId);
        // Decided on the admin roster: recorded unless a later decision already is (its revision is kept even when the
        // account holds the role, so that an older decision arriving after it cannot undo it).
        if (command.data.rosterRevision !== undefined) return command.data.rosterRevision > open.adminRosterRevision ? [{ type: 'RoleGranted', data: command.data }] : [];
        // Granting a role the account already has changes nothing: no event.
        return open.roles.has(command.data.role) ? [] : [{ type: 'RoleGranted', data: command.data }];
      }
      case 'RevokeRole': {
        const open = requireOpen(state, command.data.accountId);
        const { accountId, role, at, rosterRevision } = command.data;
        if (rosterRevision !== undefined) {
          refuseAdminRevocation(accountId, command.data.actorAccountId);
          return rosterRevision > open.adminRosterRevision ? [{ type: 'RoleRevoked', data: { accountId, role, at, rosterRevision } }] : [];
        }
        if (!open.roles.has(role)) return [];
        if (role === 'admin') refuseAdminRevocation(accountId, command.data.actorAccountId);
        return [{ type: 'RoleRevoked', data: { accountId, role, at } }];
      }
      case 'ChangePlan': {
        const open = requireOpen(state, command.data.accountId);
        return open.plan === command.data.plan ? [] : [{ type: 'PlanChanged', data: command.data }];
      }
      case 'SetContentLogging': {
        const open = requireOpen(state, command.data.accountId);
        return open.contentLogging === command.data.enabled ? [] : [{ type: 'ContentLoggingChanged', data: command.data }];
      }
      case 'SetDefaultModel': {
        const open = requireOpen(state, command.data.accountId);
        return open.defaultModel === command.data.model ? [] : [{ type: 'DefaultModelChanged', data: command.data }];
      }
      case 'SetProviderPreferences': {
        const open = requireOpen(state, command.data.accountId);
        const { accountId, at } = command.data;
        const current = open.providerPreferences;
        const ignore = command.data.ignore ?? current?.ignore ?? [];
        const allow = command.data.allow ?? current?.allow ?? [];
        if (sameList(ignore, current?.ignore ?? []) && sameList(allow, current?.allow ?? [])) return [];
        // Two empty lists are none at all: routing then has one null to check.
        return [{ type: 'ProviderPreferencesChanged', data: { accountId, preferences: ignore.length === 0 && allow.length === 0 ? null : { ignore, allow }, at } }];
      }
      case 'SetByokKey': {
        const open = requireOpen(state, command.data.accountId);
        if (!open.byokKeys.has(command.data.provider) && open.byokKeys.size >= MAX_BYOK_KEYS) {
          throw new ValidationError(`An account holds keys for at most ${MAX_BYOK_KEYS} providers: remove one first (removeByokKey)`, { field: 'provider' });
        }
        return [{ type: 'ByokKeySet', data: command.data }];
      }
      case 'RemoveByokKey': {
        const open = requireOpen(state, command.data.accountId);
        if (!open.byokKeys.has(command.data.provider)) throw new NotFoundError('BYOK key', command.data.provider);
        return [{ type: 'ByokKeyRemoved', data: command.data }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
