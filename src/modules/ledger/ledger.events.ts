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

export type LedgerEvent = CreditsPurchased | CreditsGranted | CreditsRefunded | CreditsReserved | ReservationSettled | ReservationReleased | ReservationExpired;

export const LEDGER_CATEGORY = 'ledger';
export const ledgerStream = (accountId: string): string => `${LEDGER_CATEGORY}-${accountId}`;
