import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import { LEDGER_CATEGORY, type LedgerEvent, type ReservationSettled } from '../src/modules/ledger/ledger.events.js';
import { defineProjection } from './projection.js';

/** Usage per account × key × model × provider × UTC day, from settled generations. */
export type UsageDoc = {
  _id: string;
  accountId: string;
  keyId: string | null;
  model: string;
  provider: string;
  day: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  /** What was charged, integer nano-dollars. */
  cost: number;
};

export const USAGE_DAILY = 'usageDaily';

export const usageKey = (data: ReservationSettled['data']): string =>
  [data.accountId, data.keyId ?? '-', data.usage?.model ?? '-', data.usage?.provider ?? '-', data.at.slice(0, 10)].join('|');

/** Pure: a usage row after one settlement. Shared by the projection and the billing audit. */
export const applyToUsage = (doc: UsageDoc | null, data: ReservationSettled['data']): UsageDoc => {
  const base: UsageDoc = doc ?? {
    _id: usageKey(data),
    accountId: data.accountId,
    keyId: data.keyId,
    model: data.usage?.model ?? '-',
    provider: data.usage?.provider ?? '-',
    day: data.at.slice(0, 10),
    requests: 0,
    promptTokens: 0,
    completionTokens: 0,
    reasoningTokens: 0,
    cachedTokens: 0,
    cost: 0,
  };
  return {
    ...base,
    requests: base.requests + 1,
    promptTokens: base.promptTokens + (data.usage?.promptTokens ?? 0),
    completionTokens: base.completionTokens + (data.usage?.completionTokens ?? 0),
    reasoningTokens: base.reasoningTokens + (data.usage?.reasoningTokens ?? 0),
    cachedTokens: base.cachedTokens + (data.usage?.cachedTokens ?? 0),
    cost: base.cost + data.charged,
  };
};

export const usageDailyProjection = defineProjection<UsageDoc>({
  name: 'usageDaily',
  version: 1,
  collection: USAGE_DAILY,
  filter: { categories: [LEDGER_CATEGORY], eventTypes: ['ReservationSettled'] },
  indexes: [{ keys: { accountId: 1, day: 1 } }],
  documentId: (event) => usageKey((event as RecordedEvent<LedgerEvent & ReservationSettled>).data),
  evolve: (doc, event) => applyToUsage(doc, (event as RecordedEvent<ReservationSettled>).data),
});
