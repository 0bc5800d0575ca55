import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import { LEDGER_CATEGORY, type LedgerEvent, type ReservationSettled } from '../src/modules/ledger/ledger.events.js';
import type { ReadStore } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

/** Usage per account × key × model × provider × workflow × app × UTC day (the day each call started), from settled generations. */
export type UsageDoc = {
  _id: string;
  accountId: string;
  keyId: string | null;
  model: string;
  provider: string;
  /** The workflow whose runs made the calls; null for calls outside workflows. */
  workflowId: string | null;
  /** The app that made the calls (its title, else its URL); null when none named itself. */
  app: string | null;
  day: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  /** What was charged, integer nano-dollars. */
  cost: number;
  /** The list price of the calls served with the account's own provider keys (BYOK; their `cost` is the fee). */
  byokUsage?: number;
};

export const USAGE_DAILY = 'usageDaily';

/**
 * The UTC day a call counts on: the day it started (its reservation), as the key's limit windows count it and as its
 * generation's created_at says, not the day it settled (a stream that crosses midnight, a late settlement).
 */
export const usageDay = (data: ReservationSettled['data']): string => data.reservedAt.slice(0, 10);

export const usageKey = (data: ReservationSettled['data']): string =>
  [data.accountId, data.keyId ?? '-', data.usage?.model ?? '-', data.usage?.provider ?? '-', usageDay(data), data.usage?.workflowId ?? '-', data.usage?.app ?? '-'].join('|');

/** A usage row after one settlement, written into `row` when given (see applyToBalance for why), else a new row. */
export const applyToUsage = (row: UsageDoc | null, data: ReservationSettled['data']): UsageDoc => {
  const next: UsageDoc = row ?? {
    _id: usageKey(data),
    accountId: data.accountId,
    keyId: data.keyId,
    model: data.usage?.model ?? '-',
    provider: data.usage?.provider ?? '-',
    workflowId: data.usage?.workflowId ?? null,
    app: data.usage?.app ?? null,
    day: usageDay(data),
    requests: 0,
    promptTokens: 0,
    completionTokens: 0,
    reasoningTokens: 0,
    cachedTokens: 0,
    cost: 0,
  };
  next.requests += 1;
  next.promptTokens += data.usage?.promptTokens ?? 0;
  next.completionTokens += data.usage?.completionTokens ?? 0;
  next.reasoningTokens += data.usage?.reasoningTokens ?? 0;
  next.cachedTokens += data.usage?.cachedTokens ?? 0;
  next.cost += data.charged;
  if (data.byok) next.byokUsage = (next.byokUsage ?? 0) + data.byok.upstreamCost;
  return next;
};

export const usageDailyProjection = defineProjection<UsageDoc>({
  name: 'usageDaily',
  // 2: rows are per workflow too; 3: and per app; 4: BYOK list prices; 5: a call's day is its start's (reservedAt), not its settlement's.
  version: 5,
  collection: USAGE_DAILY,
  filter: { categories: [LEDGER_CATEGORY], eventTypes: ['ReservationSettled'] },
  indexes: [{ keys: { accountId: 1, day: 1 } }],
  documentId: (event) => usageKey((event as RecordedEvent<LedgerEvent & ReservationSettled>).data),
  evolve: (doc, event) => applyToUsage(doc && { ...doc }, (event as RecordedEvent<ReservationSettled>).data),
});

/** One day's usage of one model on one provider: a row of OpenRouter's `/api/v1/activity`. */
export interface ActivityRow {
  readonly day: string;
  readonly model: string;
  readonly provider: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly reasoningTokens: number;
  readonly cost: number;
  /** The list price of its BYOK calls. */
  readonly byokUsage: number;
}

/**
 * An account's usage per day × model × provider between two UTC days (inclusive), of one key when given: the rows
 * of every key and workflow summed. Newest day first, then by model and provider.
 */
/** Requests and tokens (prompt + completion) per model, every account together, from `fromDay` (UTC, inclusive). */
export const modelUsageSince = (store: ReadStore, fromDay: string): Promise<Map<string, ModelUsage>> =>
  store
    .collection(USAGE_DAILY)
    .aggregate<{ _id: string; requests: number; promptTokens: number; completionTokens: number }>([
      { $match: { day: { $gte: fromDay } } },
      { $group: { _id: '$model', requests: { $sum: '$requests' }, promptTokens: { $sum: '$promptTokens' }, completionTokens: { $sum: '$completionTokens' } } },
    ])
    .then((rows) => new Map(rows.map((r) => [r._id, { requests: r.requests, tokens: r.promptTokens + r.completionTokens }])));

export interface ModelUsage {
  readonly requests: number;
  readonly tokens: number;
}

export const activityRows = (store: ReadStore, accountId: string, query: { from: string; to: string; keyId: string | null }): Promise<ActivityRow[]> =>
  store
    .collection(USAGE_DAILY)
    .aggregate<Omit<ActivityRow, 'day' | 'model' | 'provider'> & { _id: { day: string; model: string; provider: string } }>([
      { $match: { accountId, day: { $gte: query.from, $lte: query.to }, ...(query.keyId === null ? {} : { keyId: query.keyId }) } },
      {
        $group: {
          _id: { day: '$day', model: '$model', provider: '$provider' },
          requests: { $sum: '$requests' },
          promptTokens: { $sum: '$promptTokens' },
          completionTokens: { $sum: '$completionTokens' },
          reasoningTokens: { $sum: '$reasoningTokens' },
          cost: { $sum: '$cost' },
          byokUsage: { $sum: '$byokUsage' },
        },
      },
      { $sort: { '_id.day': -1, '_id.model': 1, '_id.provider': 1 } },
    ])
    .then((rows) => rows.map(({ _id, ...sums }) => ({ ..._id, ...sums })));
