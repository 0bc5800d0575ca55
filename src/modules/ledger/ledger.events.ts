import type { UsageRecord } from './ledger.js';

/** Every amount is integer nano-dollars. `at` is the ISO time of the decision. */
export type CreditsPurchased = {
  readonly type: 'CreditsPurchased';
  readonly data: { readonly accountId: string; readonly amount: number; readonly fee: number; readonly paymentRef: string; readonly at: string };
};
export type CreditsGranted = {
  readonly type: 'CreditsGranted';
  readonly data: { readonly accountId: string; readonly amount: number; readonly reason: string; readonly grantedBy: string; readonly at: string };
};
export type CreditsRefunded = {
  readonly type: 'CreditsRefunded';
  readonly data: { readonly accountId: string; readonly amount: number; readonly reason: string; readonly refundedBy: string; readonly at: string };
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
    readonly at: string;
  };
};
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
    readonly at: string;
  };
};
export type ReservationReleased = {
  readonly type: 'ReservationReleased';
  readonly data: { readonly accountId: string; readonly generationId: string; readonly keyId: string | null; readonly reserved: number; readonly reservedAt: string; readonly reason: string; readonly at: string };
};
export type ReservationExpired = {
  readonly type: 'ReservationExpired';
  readonly data: { readonly accountId: string; readonly generationId: string; readonly keyId: string | null; readonly reserved: number; readonly reservedAt: string; readonly at: string };
};

export type LedgerEvent = CreditsPurchased | CreditsGranted | CreditsRefunded | CreditsReserved | ReservationSettled | ReservationReleased | ReservationExpired;

export const LEDGER_CATEGORY = 'ledger';
export const ledgerStream = (accountId: string): string => `${LEDGER_CATEGORY}-${accountId}`;
