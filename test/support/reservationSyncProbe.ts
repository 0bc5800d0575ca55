import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/** What the request thread's store of one app was asked: each reservation append's syncWithinMs, and its hurries. */
export interface ReservationSyncLog {
  readonly reservations: (number | undefined)[];
  hurries: number;
}

/** Shared through globalThis: the app loads this module by URL, which may be a different instance than the test's. */
const REGISTRY = Symbol.for('switchyard.test.reservationSyncProbe');
const registry = (): Map<string, ReservationSyncLog> => {
  const global = globalThis as { [REGISTRY]?: Map<string, ReservationSyncLog> };
  return (global[REGISTRY] ??= new Map());
};

/** The log of the app over this data directory. */
export const reservationSyncLog = (dataDir: string): ReservationSyncLog => {
  const logs = registry();
  const log = logs.get(dataDir) ?? { reservations: [], hurries: 0 };
  logs.set(dataDir, log);
  return log;
};

/** For startSwitchyard's `eventStoreWrapper`: the request thread's store, every call passed on, reservations noted. */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }): EventStore => {
  if (thread !== 'request') return store;
  const log = reservationSyncLog(dataDir);
  return delegatingEventStore(store, {
    hurry: () => {
      log.hurries += 1;
      store.hurry?.();
    },
    append(stream, events, options) {
      if (events.some((e) => e.type === 'CreditsReserved')) log.reservations.push(options?.syncWithinMs);
      return store.append(stream, events, options);
    },
  });
};
