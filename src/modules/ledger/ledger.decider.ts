import { ConflictError, IdempotencyKeyReusedError, InsufficientCreditsError, KeyLimitReachedError, NotFoundError, RateLimitedError, ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { LimitReset } from '../apiKeys/apiKey.events.js';
import type { UsageRecord } from './ledger.js';
import type { LedgerEvent } from './ledger.events.js';
import { formatUsd, NANOS_PER_CENT, NANOS_PER_USD } from './money.js';
import { addToWindows, emptyWindows, usageIn, windowEnd, type KeyWindows } from './windows.js';

export interface Reservation {
  readonly keyId: string | null;
  readonly amount: number;
  /** What the key's limit holds (amount, or more when the key includes BYOK list prices: `byokInLimit`). */
  readonly keyAmount: number;
  readonly byokInLimit: boolean;
  readonly atMs: number;
  readonly at: string;
  readonly free: boolean;
}

export interface Finalized {
  readonly outcome: 'settled' | 'released' | 'expired';
  /** What the reservation held: a late settlement (after expiry) charges no more than this either. */
  readonly reserved: number;
  readonly actual: number;
  readonly charged: number;
  readonly uncollected: number;
  readonly keyId: string | null;
  readonly keyReserved: number;
  readonly byokInLimit: boolean;
  readonly reservedAt: string;
}

/** A purchase under its key: held under the cap while its payment is made (`paymentRef` null), then recorded. */
export interface PurchaseRecord {
  readonly amount: number;
  readonly fee: number;
  /** A digest of the payment method (PurchaseStarted's `method`). */
  readonly method: string;
  readonly paymentRef: string | null;
}

/**
 * One account's ledger. `evolve` mutates this state in place and returns it: folding a long, hot stream must not
 * copy maps per event. Whoever holds a state owns it (the service reloads it from the stream after a failed append).
 */
export interface LedgerState {
  purchased: number;
  granted: number;
  refunded: number;
  settled: number;
  reserved: number;
  uncollected: number;
  /** Purchase fees paid on top of purchases (the balance shows them). */
  fees: number;
  readonly reservations: Map<string, Reservation>;
  /** Outcome per finished generation, so a repeated settle is a no-op and a conflicting one is caught. */
  readonly finalized: Map<string, Finalized>;
  readonly keys: Map<string, KeyWindows>;
  /** The list price of each key's BYOK calls (OpenRouter's `byok_usage`), per window. */
  readonly byokKeys: Map<string, KeyWindows>;
  /** Times (ms) of free-model requests in the last minute, oldest first. */
  freeRecent: number[];
  freeDay: { id: string; count: number };
  /** Payment references already credited, with what they credited: a retried purchase records nothing. */
  readonly paymentRefs: Map<string, { readonly amount: number; readonly fee: number }>;
  /** Purchases by key (PurchaseStarted's `purchaseKey`): being paid, or recorded. */
  readonly purchases: Map<string, PurchaseRecord>;
  /** The amounts of purchases being paid: held under the credits cap. */
  held: number;
  /** The amount of each grant and refund recorded under an idempotency key (their `grantKey`, `refundKey`). */
  readonly grants: Map<string, number>;
  readonly refunds: Map<string, number>;
}

export const available = (s: LedgerState): number => s.purchased + s.granted - s.refunded - s.settled - s.reserved;

export interface KeyLimit {
  readonly limit: number | null;
  readonly reset: LimitReset;
}

export interface FreeTier {
  readonly perMinute: number | null;
  readonly perDay: number | null;
}

export type LedgerCommand =
  | { readonly type: 'StartPurchase'; readonly data: { accountId: string; purchaseKey: string; amount: number; fee: number; method: string; at: string }; readonly creditsCap?: number }
  /** With `purchaseKey`: completes that started purchase (its room under the cap is held); without: a purchase in one step. */
  | { readonly type: 'PurchaseCredits'; readonly data: { accountId: string; amount: number; fee: number; paymentRef: string; purchaseKey?: string; at: string }; readonly creditsCap?: number }
  | { readonly type: 'FailPurchase'; readonly data: { accountId: string; purchaseKey: string; reason: string; at: string } }
  /** With `grantKey` (`refundKey`): the same key again records nothing more; with another amount it is refused. */
  | { readonly type: 'GrantCredits'; readonly data: { accountId: string; amount: number; reason: string; grantedBy: string; grantKey?: string; at: string }; readonly creditsCap?: number }
  | { readonly type: 'RefundCredits'; readonly data: { accountId: string; amount: number; reason: string; refundedBy: string; refundKey?: string; at: string } }
  | {
      readonly type: 'Reserve';
      readonly data: {
        accountId: string;
        generationId: string;
        keyId: string | null;
        amount: number;
        /** Present when the key includes BYOK list prices in its limit and the call may use the account's own key. */
        keyAmount?: number;
        free: boolean;
        keyLimit: KeyLimit | null;
        freeTier: FreeTier;
        at: string;
      };
    }
  | {
      readonly type: 'Settle';
      /** `byok`: served with the account's own provider key; `actual` is then the fee. */
      readonly data: { accountId: string; generationId: string; actual: number; usage: UsageRecord | null; byok?: { upstreamCost: number }; at: string };
    }
  | { readonly type: 'Release'; readonly data: { accountId: string; generationId: string; reason: string; at: string } }
  | { readonly type: 'Expire'; readonly data: { accountId: string; generationId: string; at: string } };

/** The largest single amount accepted: $1,000,000 (keeps every sum far inside 2^53 nano-dollars). */
export const MAX_AMOUNT = 1_000_000 * NANOS_PER_USD;
/**
 * The most credits (purchased + granted, over the account's life) an account may receive unless configured
 * otherwise: every counter and balance then stays an exact integer far below 2^53 nano-dollars (~$9M).
 */
export const DEFAULT_CREDITS_CAP = 1_000_000 * NANOS_PER_USD;
const MINUTE = 60_000;
const FINALIZED_KEPT = 100_000;

const requireAmount = (amount: number, what: string, unit: 'cent' | 'nano') => {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new ValidationError(`${what} must be a positive integer number of nano-dollars`, { amount });
  if (amount > MAX_AMOUNT) throw new ValidationError(`${what} must be at most ${formatUsd(MAX_AMOUNT)}`, { amount });
  if (unit === 'cent' && amount % NANOS_PER_CENT !== 0) {
    throw new ValidationError(`${what} must be a whole number of cents (a multiple of ${NANOS_PER_CENT} nano-dollars)`, { amount });
  }
};

/** Check a purchase's amount: whole cents, positive, at most MAX_AMOUNT (the fee quote checks the same). */
export const requirePurchaseAmount = (amount: number) => requireAmount(amount, 'A purchase', 'cent');

/**
 * Refuse credits that would take the account's lifetime purchased + granted beyond the cap, counting the purchases
 * being paid (their room is held for them).
 */
const requireWithinCap = (s: LedgerState, amount: number, what: string, cap = DEFAULT_CREDITS_CAP) => {
  const credits = s.purchased + s.granted + s.held;
  if (credits + amount > cap) {
    const counted = s.held > 0 ? `purchased + granted, and ${formatUsd(s.held)} of purchases being paid` : 'purchased + granted';
    throw new ValidationError(
      `${what} of ${formatUsd(amount)} would bring this account's credits (${counted}) to ${formatUsd(credits + amount)}, above the limit of ${formatUsd(cap)} per account`,
      { amount, credits, cap },
    );
  }
};

const keyWindows = (s: LedgerState, keyId: string, map: Map<string, KeyWindows> = s.keys): KeyWindows => {
  let windows = map.get(keyId);
  if (!windows) map.set(keyId, (windows = emptyWindows()));
  return windows;
};

const finalize = (s: LedgerState, generationId: string, value: Finalized) => {
  s.reservations.delete(generationId);
  s.finalized.set(generationId, value);
  // Bounded memory: the oldest outcomes go first (a Map iterates in insertion order).
  if (s.finalized.size > FINALIZED_KEPT) s.finalized.delete(s.finalized.keys().next().value!);
};

const ms = (iso: string) => Date.parse(iso);

/** A grant or refund under a key already recorded: the same amount is a repeat (true); another is refused. */
const recordedUnder = (recorded: Map<string, number>, key: string | undefined, amount: number, what: 'grant' | 'refund'): boolean => {
  const known = key === undefined ? undefined : recorded.get(key);
  if (known === undefined) return false;
  if (known === amount) return true;
  throw new IdempotencyKeyReusedError(`This idempotency key was used for another ${what} (${formatUsd(known)}): send a new key for a new ${what}`, { amount: known, attempted: amount });
};

/** A settled, released or expired event's `keyReserved`: given only when the key's limit held other than `reserved`. */
const keyReservedOf = (r: Reservation) => r.keyAmount !== r.amount && { keyReserved: r.keyAmount };

export const ledgerDecider: Decider<LedgerState, LedgerCommand, LedgerEvent> = {
  initialState: () => ({
    purchased: 0,
    granted: 0,
    refunded: 0,
    settled: 0,
    reserved: 0,
    uncollected: 0,
    fees: 0,
    reservations: new Map(),
    finalized: new Map(),
    keys: new Map(),
    byokKeys: new Map(),
    freeRecent: [],
    freeDay: { id: '', count: 0 },
    paymentRefs: new Map(),
    purchases: new Map(),
    held: 0,
    grants: new Map(),
    refunds: new Map(),
  }),

  evolve: (s, event) => {
    switch (event.type) {
      case 'PurchaseStarted': {
        const { purchaseKey, amount, fee, method } = event.data;
        s.held += amount;
        s.purchases.set(purchaseKey, { amount, fee, method, paymentRef: null });
        return s;
      }
      case 'PurchaseFailed': {
        const started = s.purchases.get(event.data.purchaseKey);
        if (started?.paymentRef === null) {
          s.held -= started.amount;
          s.purchases.delete(event.data.purchaseKey);
        }
        return s;
      }
      case 'CreditsPurchased': {
        const { amount, fee, paymentRef, purchaseKey } = event.data;
        s.purchased += amount;
        s.fees += fee;
        s.paymentRefs.set(paymentRef, { amount, fee });
        const started = purchaseKey === undefined ? undefined : s.purchases.get(purchaseKey);
        if (started?.paymentRef === null) {
          s.held -= started.amount;
          s.purchases.set(purchaseKey!, { ...started, paymentRef });
        }
        return s;
      }
      case 'CreditsGranted':
        s.granted += event.data.amount;
        if (event.data.grantKey !== undefined) s.grants.set(event.data.grantKey, event.data.amount);
        return s;
      case 'CreditsRefunded':
        s.refunded += event.data.amount;
        if (event.data.refundKey !== undefined) s.refunds.set(event.data.refundKey, event.data.amount);
        return s;
      case 'CreditsReserved': {
        const { generationId, keyId, amount, keyAmount, free, at } = event.data;
        const atMs = ms(at);
        s.reserved += amount;
        s.reservations.set(generationId, { keyId, amount, keyAmount: keyAmount ?? amount, byokInLimit: keyAmount !== undefined, atMs, at, free });
        if (keyId) addToWindows(keyWindows(s, keyId), keyAmount ?? amount, atMs);
        if (free) {
          const day = at.slice(0, 10);
          s.freeDay = day === s.freeDay.id ? { id: day, count: s.freeDay.count + 1 } : day > s.freeDay.id ? { id: day, count: 1 } : s.freeDay;
          s.freeRecent = s.freeRecent.filter((t) => t > atMs - MINUTE);
          s.freeRecent.push(atMs);
        }
        return s;
      }
      case 'ReservationSettled': {
        const { generationId, keyId, reserved, keyReserved = reserved, actual, charged, uncollected, byok, reservedAt } = event.data;
        s.reserved -= reserved;
        s.settled += charged;
        s.uncollected += uncollected;
        if (keyId) {
          addToWindows(keyWindows(s, keyId), charged + (byok?.inKeyLimit ?? 0) - keyReserved, ms(reservedAt));
          if (byok) addToWindows(keyWindows(s, keyId, s.byokKeys), byok.upstreamCost, ms(reservedAt));
        }
        const byokInLimit = s.reservations.get(generationId)?.byokInLimit ?? s.finalized.get(generationId)?.byokInLimit ?? false;
        finalize(s, generationId, { outcome: 'settled', reserved, actual, charged, uncollected, keyId, keyReserved, byokInLimit, reservedAt });
        return s;
      }
      case 'ReservationReleased':
      case 'ReservationExpired': {
        const { generationId, keyId, reserved, keyReserved = reserved, reservedAt } = event.data;
        s.reserved -= reserved;
        if (keyId) addToWindows(keyWindows(s, keyId), -keyReserved, ms(reservedAt));
        const byokInLimit = s.reservations.get(generationId)?.byokInLimit ?? false;
        finalize(s, generationId, {
          outcome: event.type === 'ReservationReleased' ? 'released' : 'expired',
          reserved,
          actual: 0,
          charged: 0,
          uncollected: 0,
          keyId,
          keyReserved,
          byokInLimit,
          reservedAt,
        });
        return s;
      }
      default: {
        const _never: never = event;
        return s;
      }
    }
  },

  decide: (command, s) => {
    switch (command.type) {
      case 'StartPurchase': {
        const { purchaseKey, amount, method } = command.data;
        requirePurchaseAmount(amount);
        const known = s.purchases.get(purchaseKey);
        if (known) {
          if (known.amount === amount && known.method === method) return [];
          throw new IdempotencyKeyReusedError(
            `This idempotency key was used for another purchase (${formatUsd(known.amount)}${known.method === method ? '' : ' with another payment method'}): send a new key for a new purchase`,
            { amount: known.amount, attempted: amount, ...(known.paymentRef !== null && { paymentRef: known.paymentRef }) },
          );
        }
        requireWithinCap(s, amount, 'A purchase', command.creditsCap);
        return [{ type: 'PurchaseStarted', data: command.data }];
      }
      case 'PurchaseCredits': {
        const { accountId, amount, fee, paymentRef, purchaseKey, at } = command.data;
        requirePurchaseAmount(amount);
        if (purchaseKey === undefined) {
          if (s.paymentRefs.has(paymentRef)) return [];
          requireWithinCap(s, amount, 'A purchase', command.creditsCap);
          return [{ type: 'CreditsPurchased', data: command.data }];
        }
        const started = s.purchases.get(purchaseKey);
        if (!started) throw new ConflictError('No purchase was started under this idempotency key (or its payment was refused): nothing is recorded', { paymentRef });
        if (started.amount !== amount || started.fee !== fee) {
          throw new ConflictError(`The payment differs from the purchase started under this key (${formatUsd(started.amount)} + ${formatUsd(started.fee)} fee)`, { paymentRef });
        }
        if (started.paymentRef !== null) {
          if (started.paymentRef === paymentRef) return [];
          throw new ConflictError(`This purchase was recorded with payment ${started.paymentRef}, not ${paymentRef}`, { paymentRef, recorded: started.paymentRef });
        }
        // A payment credited before, under no hold (a purchase recorded before holds, retried): give the hold back.
        if (s.paymentRefs.has(paymentRef)) return [{ type: 'PurchaseFailed', data: { accountId, purchaseKey, amount, reason: `payment ${paymentRef} was credited before`, at } }];
        // Its room under the cap was held when it started: no cap check here, the card is charged.
        return [{ type: 'CreditsPurchased', data: { accountId, amount, fee, paymentRef, purchaseKey, at } }];
      }
      case 'FailPurchase': {
        const { accountId, purchaseKey, reason, at } = command.data;
        const started = s.purchases.get(purchaseKey);
        if (started?.paymentRef !== null) return [];
        return [{ type: 'PurchaseFailed', data: { accountId, purchaseKey, amount: started.amount, reason, at } }];
      }
      case 'GrantCredits': {
        requireAmount(command.data.amount, 'A grant', 'nano');
        if (recordedUnder(s.grants, command.data.grantKey, command.data.amount, 'grant')) return [];
        requireWithinCap(s, command.data.amount, 'A grant', command.creditsCap);
        return [{ type: 'CreditsGranted', data: command.data }];
      }
      case 'RefundCredits': {
        const { amount } = command.data;
        requireAmount(amount, 'A refund', 'cent');
        if (recordedUnder(s.refunds, command.data.refundKey, amount, 'refund')) return [];
        const refundable = s.purchased - s.refunded;
        if (amount > refundable) {
          throw new ConflictError(`A refund of ${formatUsd(amount)} exceeds what was purchased and not yet refunded (${formatUsd(refundable)})`, { amount, refundable });
        }
        if (amount > available(s)) {
          throw new ConflictError(`A refund of ${formatUsd(amount)} exceeds the available balance (${formatUsd(available(s))}); the rest is spent or reserved`, {
            amount,
            available: available(s),
          });
        }
        return [{ type: 'CreditsRefunded', data: command.data }];
      }
      case 'Reserve': {
        const { accountId, generationId, keyId, amount, keyAmount, free, keyLimit, freeTier, at } = command.data;
        if (!Number.isSafeInteger(amount) || amount < 0) throw new ValidationError('A reservation must be a non-negative integer amount', { amount });
        if (keyAmount !== undefined && (!Number.isSafeInteger(keyAmount) || keyAmount < amount)) {
          throw new ValidationError("A reservation's key amount must be an integer no smaller than its amount", { amount, keyAmount });
        }
        const held = keyAmount ?? amount;
        if (s.reservations.has(generationId) || s.finalized.has(generationId)) throw new ConflictError(`Generation ${generationId} already has a reservation`);
        const balance = available(s);
        if (balance < 0) throw new InsufficientCreditsError('Your account has a negative credit balance; add credits to continue (this applies to free models too)', { available: balance });
        const nowMs = ms(at);
        if (free) {
          const recent = s.freeRecent.filter((t) => t > nowMs - MINUTE);
          if (freeTier.perMinute !== null && recent.length >= freeTier.perMinute) {
            throw new RateLimitedError(`Rate limit exceeded: free-models-per-min (${freeTier.perMinute} requests per minute)`, recent[0]! + MINUTE - nowMs, {
              limit_source: 'free_tier_minute',
              limit: freeTier.perMinute,
            });
          }
          const today = at.slice(0, 10);
          const usedToday = s.freeDay.id === today ? s.freeDay.count : 0;
          if (freeTier.perDay !== null && usedToday >= freeTier.perDay) {
            throw new RateLimitedError(`Rate limit exceeded: free-models-per-day (${freeTier.perDay} requests per day). Add credits to raise the limit.`, windowEnd('daily', nowMs) - nowMs, {
              limit_source: 'free_tier_day',
              limit: freeTier.perDay,
            });
          }
        }
        // More than any account can hold (an endpoint priced absurdly) is as unaffordable as more than this one holds.
        if (amount > balance || amount > MAX_AMOUNT) {
          throw new InsufficientCreditsError(`This request requires more credits: it can cost up to ${formatUsd(amount)}, but the available balance is ${formatUsd(balance)}`, {
            required: amount,
            available: balance,
          });
        }
        if (keyId && keyLimit && keyLimit.limit !== null) {
          const used = usageIn(s.keys.get(keyId) ?? emptyWindows(), keyLimit.reset, nowMs);
          if (used + held > keyLimit.limit) {
            throw new KeyLimitReachedError(`Key limit exceeded: this request can cost up to ${formatUsd(held)}, but the key has ${formatUsd(Math.max(0, keyLimit.limit - used))} left of its ${keyLimit.reset} limit`, {
              limit: keyLimit.limit,
              limit_reset: keyLimit.reset,
              used,
              required: held,
            });
          }
        }
        return [{ type: 'CreditsReserved', data: { accountId, generationId, keyId, amount, ...(keyAmount !== undefined && { keyAmount }), free, at } }];
      }
      case 'Settle': {
        const { accountId, generationId, actual, usage, byok, at } = command.data;
        if (!Number.isSafeInteger(actual) || actual < 0 || actual > MAX_AMOUNT) throw new ValidationError('An actual cost must be a non-negative integer amount', { actual });
        if (byok && (!Number.isSafeInteger(byok.upstreamCost) || byok.upstreamCost < 0)) throw new ValidationError('A BYOK list-price cost must be a non-negative integer amount', { upstreamCost: byok.upstreamCost });
        /** The BYOK facts: the list price counted against the key's limit only if the key included it, within what the key held. */
        const byokOf = (keyHeld: number, byokInLimit: boolean, charged: number) =>
          byok && { byok: { upstreamCost: byok.upstreamCost, inKeyLimit: byokInLimit ? Math.max(0, Math.min(byok.upstreamCost, keyHeld - charged)) : 0 } };
        const reservation = s.reservations.get(generationId);
        if (reservation) {
          // Never more than the reservation the request was admitted on: the rest is the platform's (uncollected).
          const charged = Math.min(actual, reservation.amount);
          return [
            {
              type: 'ReservationSettled',
              data: {
                accountId,
                generationId,
                keyId: reservation.keyId,
                reserved: reservation.amount,
                ...keyReservedOf(reservation),
                actual,
                charged,
                uncollected: actual - charged,
                usage,
                late: false,
                reservedAt: reservation.at,
                ...byokOf(reservation.keyAmount, reservation.byokInLimit, charged),
                at,
              },
            },
          ];
        }
        const done = s.finalized.get(generationId);
        if (!done) throw new NotFoundError('Reservation', generationId);
        if (done.outcome === 'settled') {
          if (done.actual === actual) return [];
          throw new ConflictError(`Generation ${generationId} was already settled at ${done.actual} nano-dollars; a different amount (${actual}) is refused`, {
            settled: done.actual,
            attempted: actual,
          });
        }
        if (done.outcome === 'expired') {
          // The generation outlived its reservation: charge what it held, as far as the balance allows now; record the rest.
          const charged = Math.min(actual, done.reserved, Math.max(0, available(s)));
          return [
            {
              type: 'ReservationSettled',
              data: {
                accountId,
                generationId,
                keyId: done.keyId,
                reserved: 0,
                ...(done.byokInLimit && { keyReserved: 0 }),
                actual,
                charged,
                uncollected: actual - charged,
                usage,
                late: true,
                reservedAt: done.reservedAt,
                ...byokOf(done.keyReserved, done.byokInLimit, charged),
                at,
              },
            },
          ];
        }
        throw new ConflictError(`Generation ${generationId} was released and cannot be settled`);
      }
      case 'Release':
      case 'Expire': {
        const { accountId, generationId, at } = command.data;
        const reservation = s.reservations.get(generationId);
        if (!reservation) {
          if (s.finalized.has(generationId)) return [];
          throw new NotFoundError('Reservation', generationId);
        }
        const base = {
          accountId,
          generationId,
          keyId: reservation.keyId,
          reserved: reservation.amount,
          ...keyReservedOf(reservation),
          reservedAt: reservation.at,
          at,
        };
        return command.type === 'Release' ? [{ type: 'ReservationReleased', data: { ...base, reason: command.data.reason } }] : [{ type: 'ReservationExpired', data: base }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
