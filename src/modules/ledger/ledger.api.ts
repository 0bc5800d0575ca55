import { randomUUID } from 'node:crypto';
import { map } from 'graphql-yoga';
import type { BalanceDoc } from '../../../projections/balances.js';
import { modelUsageSince, USAGE_DAILY, type ModelUsage } from '../../../projections/usageDaily.js';
import { USAGE_OVER_REPORTS, type UsageOverReportDoc } from '../../../projections/usageOverReports.js';
import { UnauthenticatedError, ValidationError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import type { ReadStore } from '../../readStore/readStore.js';
import type { LimitReset } from '../apiKeys/apiKey.events.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { Principal } from '../auth/principal.js';
import type { ProjectionRunner } from '../../../projections/runner.js';
import { runBillingAudit, type AuditReport } from './audit.js';
import type { Balance, KeyWindowUsage } from './ledger.js';
import { ledgerStream, type LedgerEvent } from './ledger.events.js';
import type { Actor, LedgerService } from './ledgerService.js';

export type { Actor } from './ledgerService.js';

export interface Purchase {
  readonly paymentRef: string;
  /** Credits bought. */
  readonly amount: number;
  /** Charged on top of the amount. */
  readonly fee: number;
  /** The balance the ledger decided with this purchase. */
  readonly balance: Balance;
}

export type UsageGroupBy = 'day' | 'model' | 'keyId' | 'provider' | 'workflowId' | 'app';

export interface UsageRow {
  readonly group: string;
  /** The day of the row when the query split the groups per day (`perDay`), else null. */
  readonly day: string | null;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly reasoningTokens: number;
  readonly cachedTokens: number;
  readonly cost: number;
}

/**
 * A page of ledger entries, newest first, bounded by revisions (exclusive): `after` and `before` are revisions as
 * seen in that order (after = older than, before = newer than). `oldestFirst` reads towards newer entries (a relay
 * `last`/`before` page), returned in that order.
 */
export interface EntriesPage {
  readonly after?: number | undefined;
  readonly before?: number | undefined;
  readonly limit: number;
  readonly oldestFirst: boolean;
}

/** How many ledger events a restricted key's list reads at a time to fill a page with the entries it may see. */
const RESTRICTED_SCAN_BATCH = 500;

/** What `/api/v1/key` reports about the calling key. */
export interface KeyReport {
  /** The calling key as the auth directory holds it; null only for the bootstrap admin key (ADMIN_API_KEY). */
  readonly key: {
    readonly keyId: string;
    readonly hint: string;
    readonly name: string;
    readonly limit: number | null;
    readonly limitReset: LimitReset;
    readonly expiresAt: number | null;
    readonly includeByokInLimit: boolean;
  } | null;
  /** What counts against its limit: charges, and with includeByokInLimit the list price of BYOK calls too. */
  readonly usage: KeyWindowUsage;
  /** The list price of its BYOK calls. */
  readonly byokUsage: KeyWindowUsage;
  /** What the key may still spend in its current window; null without a limit. */
  readonly limitRemaining: number | null;
  readonly balance: Balance;
}

const NO_USAGE: KeyWindowUsage = { daily: 0, weekly: 0, monthly: 0, lifetime: 0 };

/** What a key with this limit may still spend in its current window, given its usage; null without a limit. */
export const limitRemaining = (key: { readonly limit: number | null; readonly limitReset: LimitReset }, usage: KeyWindowUsage): number | null => {
  if (key.limit === null) return null;
  const used = key.limitReset === 'never' ? usage.lifetime : usage[key.limitReset];
  return Math.max(0, key.limit - used);
};

/** The balances read model's document in the shape the ledger answers with. */
const fromDoc = (doc: BalanceDoc): Balance => ({
  accountId: doc._id,
  purchased: doc.purchased,
  granted: doc.granted,
  refunded: doc.refunded,
  settled: doc.settled,
  reserved: doc.reserved,
  available: doc.available,
  lifetimePurchased: doc.lifetimePurchased,
  fees: doc.fees,
  uncollected: doc.uncollected,
  openReservations: doc.openReservations,
});

/**
 * The credits ledger's application API. Commands answer with the balance the ledger decided (its write-side state
 * right after the append), never with a read model. Balances and key usage are read from the same write-side state,
 * so `balance` (GraphQL), `/api/v1/credits` and a mutation's answer always agree with what the next reservation is
 * decided on, whatever the projections' lag.
 */
export const createLedgerApi = (deps: {
  ledger: LedgerService;
  eventStore: EventStore;
  readStore: ReadStore;
  directory: Pick<AuthDirectory, 'key'>;
  /** Balance documents as the balances read model stores them (published after it did). */
  balanceDocs: (accountId: string) => AsyncIterable<BalanceDoc>;
  /** The read models' applied position, for the billing audit to compare them at it. */
  runner: Pick<ProjectionRunner, 'position'>;
  /** Resolves once the read models hold the account's last call answered by this process (the gateway's). */
  readYourWrites?: (accountId: string) => Promise<void>;
  /** Resolves once this process has appended the record of a call it is still recording (the gateway's), for the billing audit. */
  recordOf?: (generationId: string) => Promise<unknown>;
}) => {
  const { ledger, eventStore, readStore } = deps;

  /** The last week's usage per model, computed at most once a minute (one pass over a week of usage rows). */
  let weekly: { at: number; usage: Promise<Map<string, ModelUsage>> } | null = null;
  const WEEKLY_TTL_MS = 60_000;

  return {
    // Commands: each answers with what the ledger decided.
    grantCredits: (by: Actor, input: { accountId: string; amount: number; reason: string; idempotencyKey?: string | null }): Promise<Balance> =>
      ledger.grant({ ...input, idempotencyKey: input.idempotencyKey ?? undefined, ...by }),

    refundCredits: (by: Actor, input: { accountId: string; amount: number; reason: string; idempotencyKey?: string | null }): Promise<Balance> =>
      ledger.refund({ ...input, idempotencyKey: input.idempotencyKey ?? undefined, ...by }),

    /** Charge the payment method (amount + fee) and credit the amount. Retrying with the same idempotency key never charges twice. */
    purchaseCredits: (by: Actor, input: { accountId: string; amount: number; paymentMethod: string; idempotencyKey?: string | null }): Promise<Purchase> =>
      ledger.purchase({ accountId: input.accountId, amount: input.amount, paymentMethod: input.paymentMethod, idempotencyKey: input.idempotencyKey ?? randomUUID(), ...by }),

    // Queries.
    /** The fee a purchase of `amount` adds on top (the payment processor's policy), to show before buying. */
    purchaseFee: (amount: number): number => ledger.fee(amount),

    /**
     * Requests and tokens per model over the current UTC day and the six before it, every account together (the
     * models list's most-popular and top-weekly sorts). Cached for a minute: a ranking, not a meter.
     */
    weeklyModelUsage: (nowMs: number = Date.now()): Promise<ReadonlyMap<string, ModelUsage>> => {
      if (!weekly || nowMs - weekly.at >= WEEKLY_TTL_MS) {
        const usage = modelUsageSince(readStore, new Date(nowMs - 6 * 86_400_000).toISOString().slice(0, 10));
        weekly = { at: nowMs, usage };
        // A failed read is not kept: the next listing asks again.
        usage.catch(() => {
          if (weekly?.usage === usage) weekly = null;
        });
      }
      return weekly.usage;
    },

    /** The account's balance as the ledger holds it now (NotFoundError for an unknown account). */
    balance: (accountId: string): Promise<Balance> => ledger.balance(accountId),

    /** Usage of several keys at once (one per-request loader batch). */
    keyUsages: (keys: readonly { readonly accountId: string; readonly keyId: string }[]): Promise<KeyWindowUsage[]> =>
      Promise.all(keys.map(({ accountId, keyId }) => ledger.keyUsage(accountId, keyId))),

    /** The list price of BYOK calls of several keys (OpenRouter's `byok_usage*`). */
    byokKeyUsages: (keys: readonly { readonly accountId: string; readonly keyId: string }[]): Promise<KeyWindowUsage[]> =>
      Promise.all(keys.map(({ accountId, keyId }) => ledger.byokKeyUsage(accountId, keyId))),

    /** The calling key's limit, usage and the account's balance (the bootstrap admin key has no key of the store). */
    async keyReport(principal: Principal): Promise<KeyReport> {
      // From the write side, like the limit: the key that just authenticated is there, whatever the read models' lag.
      const key = principal.keyId === null ? undefined : deps.directory.key(principal.keyId);
      if (principal.keyId !== null && !key) throw new UnauthenticatedError('Invalid API key');
      const [usage, byokUsage, balance] = await Promise.all([
        key ? ledger.keyUsage(principal.accountId, key.keyId) : NO_USAGE,
        key ? ledger.byokKeyUsage(principal.accountId, key.keyId) : NO_USAGE,
        ledger.balance(principal.accountId),
      ]);
      return {
        key: key
          ? { keyId: key.keyId, hint: key.hint, name: key.name, limit: key.limit, limitReset: key.limitReset, expiresAt: key.expiresAt, includeByokInLimit: key.includeByokInLimit }
          : null,
        usage,
        byokUsage,
        limitRemaining: key ? limitRemaining(key, usage) : null,
        balance,
      };
    },

    /**
     * Ledger entries of an account as `viewer` may see them, read from its stream (the stream is the list: no read model
     * can lag it). A restricted key (Principal.restricted) sees the account's credits (purchases, grants, refunds: its
     * balance's history, which it reads) and its own calls' entries, not another key's (maySeeGenerationDoc): its page
     * is filled from batches of the stream, so only its lists read past the entries they leave out.
     */
    async entries(accountId: string, page: EntriesPage, viewer: Principal | null): Promise<RecordedEvent<LedgerEvent>[]> {
      const { after, before, limit, oldestFirst } = page;
      const inPage = (e: RecordedEvent<LedgerEvent>) => (after === undefined || e.revision < after) && (before === undefined || e.revision > before);
      const ownKey = viewer?.restricted === true ? viewer.keyId : undefined;
      const read = async (from: { after?: number | undefined; before?: number | undefined }, count: number) =>
        (oldestFirst
          ? await eventStore.readStream(ledgerStream(accountId), { direction: 'forwards', fromRevision: from.before === undefined ? 0 : from.before + 1, maxCount: count })
          : from.after === 0
            ? []
            : await eventStore.readStream(ledgerStream(accountId), { direction: 'backwards', ...(from.after !== undefined ? { fromRevision: from.after - 1 } : {}), maxCount: count })) as RecordedEvent<LedgerEvent>[];
      if (ownKey === undefined) return (await read(page, limit)).filter(inPage);

      const shown = (e: RecordedEvent<LedgerEvent>) => inPage(e) && (!('generationId' in e.data) || e.data.keyId === ownKey);
      const batch = Math.max(limit, RESTRICTED_SCAN_BATCH);
      const kept: RecordedEvent<LedgerEvent>[] = [];
      let from: { after?: number | undefined; before?: number | undefined } = { after, before };
      for (;;) {
        const events = await read(from, batch);
        kept.push(...events.filter(shown));
        const last = events.at(-1);
        if (kept.length >= limit || events.length < batch || last === undefined) return kept.slice(0, limit);
        // Past the page's far bound, nothing more is in it.
        if (oldestFirst ? after !== undefined && last.revision >= after : before !== undefined && last.revision <= before) return kept.slice(0, limit);
        from = oldestFirst ? { after, before: last.revision } : { after: last.revision, before };
      }
    },

    /**
     * Usage summed per day, model, key, provider, workflow or app, between two days (inclusive, UTC); `workflowId` keeps
     * only that workflow's runs' calls. Calls outside workflows group under `-` by workflow, calls of no named app under
     * `-` by app. `perDay` splits each
     * group per day (a row per day and group, in day order): a chart's series. `accountId` null: every account's.
     */
    async usage(accountId: string | null, query: { groupBy: UsageGroupBy; from?: string | null; to?: string | null; workflowId?: string | null; perDay?: boolean | null }): Promise<UsageRow[]> {
      const { groupBy, from, to, workflowId, perDay } = query;
      if (from && to && from > to) throw new ValidationError('from must not be after to');
      // The account's own last call counts as soon as it has answered, as in its balance.
      if (accountId !== null) await deps.readYourWrites?.(accountId);
      const dayFilter = { ...(from ? { $gte: from } : {}), ...(to ? { $lte: to } : {}) };
      type Key = string | null | { day: string; group: string | null };
      const rows = await readStore.collection(USAGE_DAILY).aggregate<Omit<UsageRow, 'group' | 'day'> & { _id: Key }>([
        { $match: { ...(accountId === null ? {} : { accountId }), ...(from || to ? { day: dayFilter } : {}), ...(workflowId ? { workflowId } : {}) } },
        {
          $group: {
            _id: perDay ? { day: '$day', group: `$${groupBy}` } : `$${groupBy}`,
            requests: { $sum: '$requests' },
            promptTokens: { $sum: '$promptTokens' },
            completionTokens: { $sum: '$completionTokens' },
            reasoningTokens: { $sum: '$reasoningTokens' },
            cachedTokens: { $sum: '$cachedTokens' },
            cost: { $sum: '$cost' },
          },
        },
        { $sort: perDay ? { '_id.day': 1, '_id.group': 1 } : { _id: 1 } },
      ]);
      return rows.map(({ _id, ...row }) =>
        _id !== null && typeof _id === 'object' ? { ...row, day: _id.day, group: _id.group ?? '-' } : { ...row, day: null, group: _id ?? '-' },
      );
    },

    /** A page of over-reports by id (ids sort by time), optionally of one provider. */
    usageOverReports: (page: { filter: Record<string, unknown>; sort: { _id: 1 | -1 }; limit: number }, provider?: string | null): Promise<UsageOverReportDoc[]> =>
      readStore.collection<UsageOverReportDoc>(USAGE_OVER_REPORTS).find({ ...page.filter, ...(provider ? { providerSlug: provider } : {}) }, { sort: page.sort, limit: page.limit }),

    /** Replay the ledger and compare with the read models (one account, or all). */
    billingAudit: (accountId?: string | null): Promise<AuditReport> =>
      runBillingAudit({ eventStore, readStore, appliedPosition: () => deps.runner.position, ...(deps.recordOf && { recordOf: deps.recordOf }) }, { accountId: accountId ?? undefined }),

    /** The account's balance each time the balances read model stored a change (subscriptions show read-model data). */
    balanceChanges: (accountId: string): AsyncIterable<Balance> => map(fromDoc)(deps.balanceDocs(accountId)),
  };
};

export type LedgerApi = ReturnType<typeof createLedgerApi>;
