import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { AccountEvent, AccountProviderPreferences, ByokKey, Role } from '../src/modules/accounts/account.events.js';
import type { Filter, ReadStore, SortSpec } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

export type AccountDoc = {
  _id: string;
  name: string;
  email: string | null;
  roles: Role[];
  plan: string;
  /** Input & output logging (the content store). */
  contentLogging: boolean;
  /** The model a chat request that names none is answered by (null: none). */
  defaultModel: string | null;
  /** Its provider ignore and allow lists (null: none). */
  providerPreferences: AccountProviderPreferences | null;
  /** Its own provider keys (BYOK), by provider slug: never the key, sealed or not. */
  byokKeys: ByokKeyDoc[];
  openedAt: string;
  updatedAt: string;
};

/** A BYOK key as the account sees it: what it was bound to, and its last characters. */
export type ByokKeyDoc = Omit<ByokKey, 'encrypted' | 'at'> & { createdAt: string };

export const byokKeyDoc = ({ encrypted: _sealed, at, ...key }: ByokKey): ByokKeyDoc => ({ ...key, createdAt: at });

export const ACCOUNTS = 'accounts';

export const accountsProjection = defineProjection<AccountDoc>({
  name: 'accounts',
  // 5: BYOK keys.
  version: 5,
  collection: ACCOUNTS,
  filter: { categories: ['account'] },
  indexes: [{ keys: { email: 1 } }],
  documentId: (event) => (event as RecordedEvent<AccountEvent>).data.accountId,
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<AccountEvent>;
    switch (event.type) {
      case 'AccountOpened': {
        const { accountId, name, email, roles, plan, at } = event.data;
        return { _id: accountId, name, email, roles: [...roles], plan, contentLogging: false, defaultModel: null, providerPreferences: null, byokKeys: [], openedAt: at, updatedAt: at };
      }
      case 'RoleGranted':
        return doc && { ...doc, roles: doc.roles.includes(event.data.role) ? doc.roles : [...doc.roles, event.data.role], updatedAt: event.data.at };
      case 'RoleRevoked':
        return doc && { ...doc, roles: doc.roles.filter((r) => r !== event.data.role), updatedAt: event.data.at };
      case 'PlanChanged':
        return doc && { ...doc, plan: event.data.plan, updatedAt: event.data.at };
      case 'ContentLoggingChanged':
        return doc && { ...doc, contentLogging: event.data.enabled, updatedAt: event.data.at };
      case 'DefaultModelChanged':
        return doc && { ...doc, defaultModel: event.data.model, updatedAt: event.data.at };
      case 'ProviderPreferencesChanged':
        return doc && { ...doc, providerPreferences: event.data.preferences, updatedAt: event.data.at };
      case 'ByokKeySet': {
        if (!doc) return doc;
        const { accountId: _account, ...key } = event.data;
        return { ...doc, byokKeys: [...(doc.byokKeys ?? []).filter((k) => k.provider !== key.provider), byokKeyDoc(key)], updatedAt: key.at };
      }
      case 'ByokKeyRemoved':
        return doc && { ...doc, byokKeys: (doc.byokKeys ?? []).filter((k) => k.provider !== event.data.provider), updatedAt: event.data.at };
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const accountQueries = (store: ReadStore) => {
  const accounts = store.collection<AccountDoc>(ACCOUNTS);
  return {
    byIds: (ids: readonly string[]) => accounts.find({ _id: { $in: [...ids] } }),
    /**
     * One page of a relay connection (filter and sort from idPage), optionally only accounts with a role, or whose
     * name, email or id contains `search` (any case).
     */
    page: (page: { filter: Filter; sort: SortSpec; limit: number }, options: { role?: Role; search?: string } = {}) => {
      const { role, search } = options;
      const contains = search ? { $regex: search.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), $options: 'i' } : null;
      const filter = {
        ...page.filter,
        ...(role ? { roles: role } : {}),
        ...(contains ? { $or: [{ name: contains }, { email: contains }, { _id: contains }] } : {}),
      };
      return accounts.find(filter, { sort: page.sort, limit: page.limit });
    },
  };
};
