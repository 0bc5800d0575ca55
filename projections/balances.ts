import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import { LEDGER_CATEGORY, type LedgerEvent } from '../src/modules/ledger/ledger.events.js';
import type { ReadStore } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

export type BalanceDoc = {
  _id: string;
  purchased: number;
  granted: number;
  refunded: number;
  settled: number;
  reserved: number;
  /** purchased + granted − refunded − settled − reserved. */
  available: number;
  lifetimePurchased: number;
  fees: number;
  uncollected: number;
  openReservations: number;
  updatedAt: string;
};

export const BALANCES = 'balances';

export const emptyBalance = (accountId: string): BalanceDoc => ({
  _id: accountId,
  purchased: 0,
  granted: 0,
  refunded: 0,
  settled: 0,
  reserved: 0,
  available: 0,
  lifetimePurchased: 0,
  fees: 0,
  uncollected: 0,
  openReservations: 0,
  updatedAt: '',
});

/**
 * The balance after one ledger event, written into `next` (which it returns): the billing audit folds millions of
 * events into one document per account, so it must not copy per event. The projection passes a fresh copy.
 */
export const applyToBalance = (next: BalanceDoc, event: LedgerEvent): BalanceDoc => {
  next.updatedAt = event.data.at;
  switch (event.type) {
    case 'CreditsPurchased':
      next.purchased += event.data.amount;
      next.lifetimePurchased += event.data.amount;
      next.fees += event.data.fee;
      break;
    case 'CreditsGranted':
      next.granted += event.data.amount;
      break;
    case 'CreditsRefunded':
      next.refunded += event.data.amount;
      break;
    case 'CreditsReserved':
      next.reserved += event.data.amount;
      next.openReservations += 1;
      break;
    case 'ReservationSettled':
      next.reserved -= event.data.reserved;
      next.settled += event.data.charged;
      next.uncollected += event.data.uncollected;
      // A late settlement (after the reservation expired) closes no reservation.
      if (!event.data.late) next.openReservations -= 1;
      break;
    case 'ReservationReleased':
    case 'ReservationExpired':
      next.reserved -= event.data.reserved;
      next.openReservations -= 1;
      break;
    // A purchase being paid holds room under the credits cap, not credits: the balance is unchanged until it is recorded.
    case 'PurchaseStarted':
    case 'PurchaseFailed':
      break;
    default: {
      const _never: never = event;
    }
  }
  next.available = next.purchased + next.granted - next.refunded - next.settled - next.reserved;
  return next;
};

export const balancesProjection = defineProjection<BalanceDoc>({
  name: 'balances',
  version: 1,
  collection: BALANCES,
  filter: { categories: [LEDGER_CATEGORY] },
  indexes: [{ keys: { openReservations: 1 } }],
  documentId: (event) => (event as RecordedEvent<LedgerEvent>).data.accountId,
  evolve: (doc, event) => applyToBalance(doc ? { ...doc } : emptyBalance((event as RecordedEvent<LedgerEvent>).data.accountId), event as RecordedEvent<LedgerEvent>),
});

export const balanceQueries = (store: ReadStore) => {
  const balances = store.collection<BalanceDoc>(BALANCES);
  return {
    byIds: (ids: readonly string[]) => balances.find({ _id: { $in: [...ids] } }),
    accountsWithReservations: async () => (await balances.find({ openReservations: { $gt: 0 } })).map((b) => b._id),
  };
};
