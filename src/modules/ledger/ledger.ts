/**
 * The credits ledger as the gateway and the API use it. The implementation (ledgerService.ts) keeps one writer per
 * account in this process, batches concurrent operations on an account into one append, and appends with the
 * expected revision so several processes sharing a store stay exact (and follows the other processes' appends).
 *
 * Money is integer nano-dollars (1 USD = 1,000,000,000) everywhere.
 */
import type { Urgency } from '../../eventStore/eventStore.js';

/** What a settled generation consumed; feeds the usage read model and the audit. */
export interface UsageRecord {
  readonly model: string;
  readonly provider: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly reasoningTokens: number;
  readonly cachedTokens: number;
  /** The workflow whose run made the call (usage is grouped by it); absent for other calls. */
  readonly workflowId?: string;
  /** The app that made the call, as it named itself (its X-OpenRouter-Title, else its HTTP-Referer); absent when none did. */
  readonly app?: string;
}

export interface Balance {
  readonly accountId: string;
  readonly purchased: number;
  readonly granted: number;
  readonly refunded: number;
  readonly settled: number;
  readonly reserved: number;
  /** purchased + granted − refunded − settled − reserved; never negative. */
  readonly available: number;
  readonly lifetimePurchased: number;
  /** Purchase fees paid on top of purchases. */
  readonly fees: number;
  /** Cost above what the account could pay, absorbed by the platform. */
  readonly uncollected: number;
  readonly openReservations: number;
}

export interface KeyWindowUsage {
  readonly daily: number;
  readonly weekly: number;
  readonly monthly: number;
  readonly lifetime: number;
}

export interface Ledger {
  /**
   * Reserve the worst-case cost of a generation before calling a provider (amount 0 for a free model: it still
   * counts against the free tier's request limits). Throws InsufficientCreditsError / KeyLimitReachedError (402),
   * RateLimitedError (429, with retryAfterMs) or, for a negative balance, InsufficientCreditsError.
   */
  reserve(input: {
    accountId: string;
    keyId: string | null;
    generationId: string;
    amount: number;
    /**
     * What the key's limit holds when it counts more than `amount`: a key with include_byok_in_limit, on a call that
     * may go to the account's own provider key, holds the fee and the list price's worst case.
     */
    keyAmount?: number;
    freeModel: boolean;
    /**
     * How long the store may wait before the fsync that makes the reservation durable (AppendOptions.syncWithinMs):
     * for a call whose answer is not expected sooner. Whoever then finds it not yet durable hurries the store.
     */
    syncWithinMs?: number;
    /**
     * Called once the reservation is admitted against this process's state of the account, before it is appended
     * (the returned promise resolves when it is durable). Lets a caller start the provider call during the append;
     * it must still deliver nothing before the promise resolves: with several processes on one store an append can
     * meet a concurrent one, and the reservation, decided again on the reloaded account, may then be refused.
     */
    onAdmitted?: () => void;
  }): Promise<void>;
  /**
   * Settle a reservation with the actual cost, exactly once. A repeat with the same amount is a no-op; a different
   * amount throws ConflictError. Never charges more than the reservation: a cost above it is recorded as uncollected
   * (the platform's loss). After the reservation expired, it charges at most what it held, as far as the balance
   * allows then (the balance never goes negative). `soon` (the default: after an answer, nobody waits) may hold the
   * append up to SOON_HOLD_MS for the account's next reservation; `now` sends it at once (a workflow step that must
   * not be recorded before its call's charge).
   */
  settle(input: {
    accountId: string;
    generationId: string;
    actual: number;
    usage: UsageRecord | null;
    /** Served with the account's own provider key (BYOK): `actual` is the fee, `upstreamCost` the list price. */
    byok?: { upstreamCost: number };
    urgency?: Urgency;
  }): Promise<{ charged: number; overrun: number; uncollected: number }>;
  /** Release a reservation with no charge (the provider call failed before anything was generated). Idempotent. */
  release(input: { accountId: string; generationId: string; reason: string; urgency?: Urgency }): Promise<void>;
  balance(accountId: string): Promise<Balance>;
  keyUsage(accountId: string, keyId: string): Promise<KeyWindowUsage>;
  /** Global position of the newest ledger append this process made durable (for read-your-writes waits). */
  readonly lastPosition?: number;
}
