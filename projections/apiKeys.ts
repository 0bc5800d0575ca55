import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { ApiKeyStatus } from '../src/modules/apiKeys/apiKey.decider.js';
import { kindOfKey, type ApiKeyEvent, type KeyKind, type LimitReset } from '../src/modules/apiKeys/apiKey.events.js';
import type { Filter, ReadStore, SortSpec } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

export type ApiKeyDoc = {
  _id: string;
  accountId: string;
  kind: KeyKind;
  name: string;
  hint: string;
  limit: number | null;
  limitReset: LimitReset;
  /** BYOK calls' list price counts against the limit too (absent in documents from before it: false). */
  includeByokInLimit?: boolean;
  expiresAt: string | null;
  status: ApiKeyStatus;
  createdAt: string;
  updatedAt: string;
};

export const API_KEYS = 'apiKeys';

export const apiKeysProjection = defineProjection<ApiKeyDoc>({
  name: 'apiKeys',
  // 2: documents say the key's kind (inference or management). 3: includeByokInLimit.
  version: 3,
  collection: API_KEYS,
  filter: { categories: ['apikey'] },
  // Listings page an account's documents in `_id` order.
  indexes: [{ keys: { accountId: 1, _id: 1 } }],
  documentId: (event) => (event as RecordedEvent<ApiKeyEvent>).data.keyId,
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<ApiKeyEvent>;
    if (event.type === 'ApiKeyCreated') {
      const { keyId, accountId, name, hint, limit, limitReset, includeByokInLimit = false, expiresAt, at } = event.data;
      return { _id: keyId, accountId, kind: kindOfKey(event.data), name, hint, limit, limitReset, includeByokInLimit, expiresAt, status: 'active', createdAt: at, updatedAt: at };
    }
    if (!doc) return null;
    const updatedAt = event.data.at;
    switch (event.type) {
      case 'ApiKeyRenamed':
        return { ...doc, name: event.data.name, updatedAt };
      case 'ApiKeyLimitChanged':
        return { ...doc, limit: event.data.limit, limitReset: event.data.limitReset, updatedAt };
      case 'ApiKeyByokInLimitChanged':
        return { ...doc, includeByokInLimit: event.data.includeByokInLimit, updatedAt };
      case 'ApiKeyExpiryChanged':
        return { ...doc, expiresAt: event.data.expiresAt, updatedAt };
      case 'ApiKeyDisabled':
        return { ...doc, status: 'disabled', updatedAt };
      case 'ApiKeyEnabled':
        return { ...doc, status: 'active', updatedAt };
      case 'ApiKeyRevoked':
        return { ...doc, status: 'revoked', updatedAt };
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const apiKeyQueries = (store: ReadStore) => {
  const keys = store.collection<ApiKeyDoc>(API_KEYS);
  return {
    byIds: (ids: readonly string[]) => keys.find({ _id: { $in: [...ids] } }),
    /** One page of an account's keys (filter and sort from idPage); revoked keys only when asked for. */
    pageForAccount: (accountId: string, page: { filter: Filter; sort: SortSpec; limit: number }, includeRevoked: boolean) =>
      keys.find({ ...page.filter, accountId, ...(includeRevoked ? {} : { status: { $ne: 'revoked' } }) }, { sort: page.sort, limit: page.limit }),
    /** OpenRouter's `GET /api/v1/keys`: an account's inference keys, newest first, `offset` skipped; disabled ones when asked. */
    inferenceKeysPage: (accountId: string, page: { offset: number; limit: number; includeDisabled: boolean }) =>
      keys.find(
        { accountId, kind: 'inference', status: page.includeDisabled ? { $ne: 'revoked' } : 'active' },
        { sort: { _id: -1 }, skip: page.offset, limit: page.limit },
      ),
  };
};
