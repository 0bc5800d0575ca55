import type { UsageRecord } from './ledger.js';

/** Every amount is integer nano-dollars. `at` is the ISO time of the decision. */
export type CreditsPurchased = {
  readonly type: 'CreditsPurchased';
  readonly data: {
    readonly accountId: string;
    readonly amount: number;
    readonly fee: number;
    readonly paymentRef: string;
    /** The purchase's hold (PurchaseStarted) this payment completes; absent on purchases recorded before holds. */
    readonly purchaseKey?: string;
    readonly at: string;
  };
};
/**
 * A purchase about to be charged: its amount is held under the account's credits cap (as a reservation holds credits
 * for a call) until the payment is recorded (CreditsPurchased) or refused (PurchaseFailed), so no other purchase or
 * grant can take that room while the card is charged. `purchaseKey` names the purchase (a digest of the account and
 * the idempotency key, never the key itself); `method` is a digest of the payment method: a retry under the same key
 * must be the same request.
 */
export type PurchaseStarted = {
  readonly type: 'PurchaseStarted';
  readonly data: { readonly accountId: string; readonly purchaseKey: string; readonly amount: number; readonly fee: number; readonly method: string; readonly at: string };
};
/** The processor refused the payment (nothing was charged): the hold is given back, and its key with it. */
export type PurchaseFailed = {
  readonly type: 'PurchaseFailed';
  readonly data: { readonly accountId: string; readonly purchaseKey: string; readonly amount: number; readonly reason: string; readonly at: string };
};
/**
 * `grantKey` (a refund's `refundKey`) names the grant when the admin sent an idempotency key: a digest of the account
 * and the key, never the key itself, as a purchase's `purchaseKey`. Absent on unkeyed ones and those recorded before.
 */
export type CreditsGranted = {
  readonly type: 'CreditsGranted';
  readonly data: { readonly accountId: string; readonly amount: number; readonly reason: string; readonly grantedBy: string; readonly grantKey?: string; readonly at: string };
};
export type CreditsRefunded = {
  readonly type: 'CreditsRefunded';
  readonly data: { readonly accountId: string; readonly amount: number; readonly reason: string; readonly refundedBy: string; readonly refundKey?: string; readonly at: string };
};
export type CreditsReserved = {
  readonly type: 'CreditsReserved';
  readonly data: {
    readonly accountId: string;
    readonly generationId: string;
    readonly keyId: string | null;
    readonly amount: number;
    /** A request to a free model: costs nothing, counts against the free tier's request limits. */
    readonly free: boolean;
    /**
     * Present when the key counts BYOK calls' list price against its limit (include_byok_in_limit) and the call may
     * go to the account's own provider key: what the key's limit holds for it (the fee and the list price's worst
     * case), instead of `amount`.
     */
    readonly keyAmount?: number;
    readonly at: string;
  };
};

/**
 * A call served with the account's own provider key (BYOK): `actual` is the fee, `upstreamCost` what the same call
 * costs at the endpoint's list price (paid to the provider on the account's key, not here), and `inKeyLimit` the
 * part of it counted against the key's limit (0 unless the key includes BYOK in its limit).
 */
export interface ByokSettlement {
  readonly upstreamCost: number;
  readonly inKeyLimit: number;
}
export type ReservationSettled = {
  readonly type: 'ReservationSettled';
  readonly data: {
    readonly accountId: string;
    readonly generationId: string;
    readonly keyId: string | null;
    /** What was held for it (0 when settling after the reservation expired). */
    readonly reserved: number;
    /** The actual cost computed from usage. */
    readonly actual: number;
    /** What the account paid: the actual cost, capped by what the account could pay (reservation + available). */
    readonly charged: number;
    /** actual − charged: cost the platform absorbed, recorded instead of a negative balance. */
    readonly uncollected: number;
    readonly usage: UsageRecord | null;
    /** Settled after the reservation had expired (nothing was held any more). */
    readonly late: boolean;
    /** When the reservation was made (key limit windows count from then). */
    readonly reservedAt: string;
    /** What the key's limit held for it, when not `reserved` (the reservation's keyAmount; 0 when late). */
    readonly keyReserved?: number;
    /** Served with the account's own provider key. */
    readonly byok?: ByokSettlement;
    readonly at: string;
  };
};
export type ReservationReleased = {
  readonly type: 'ReservationReleased';
  readonly data: {
    readonly accountId: string;
    readonly generationId: string;
    readonly keyId: string | null;
    readonly reserved: number;
    readonly keyReserved?: number;
    readonly reservedAt: string;
    readonly reason: string;
    readonly at: string;
  };
};
export type ReservationExpired = {
  readonly type: 'ReservationExpired';
  readonly data: { readonly accountId: string; readonly generationId: string; readonly keyId: string | null; readonly reserved: number; readonly keyReserved?: number; readonly reservedAt: string; readonly at: string };
};

export type LedgerEvent =
  | PurchaseStarted
  | PurchaseFailed
  | CreditsPurchased
  | CreditsGranted
  | CreditsRefunded
  | CreditsReserved
  | ReservationSettled
  | ReservationReleased
  | ReservationExpired;

export const LEDGER_CATEGORY = 'ledger';
export const ledgerStream = (accountId: string): string => `${LEDGER_CATEGORY}-${accountId}`;
