import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { accountStream } from '../../src/modules/accounts/account.events.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { createLedgerService } from '../../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../../src/modules/ledger/payments.js';

type LedgerOptions = Omit<Parameters<typeof createLedgerService>[0], 'eventStore' | 'directory' | 'payments' | 'logger'>;

/**
 * A ledger service over the embedded event store in `dir` (`normal` unless `store` says otherwise), as one app process
 * would have it. `start` starts it (the follower of other processes' appends with it); `wrap` puts a wrapper between
 * the ledger and the store.
 */
export const openLedger = async (
  dir: string,
  options: { start?: boolean; wrap?: (store: EventStore) => EventStore; ledger?: LedgerOptions; store?: Omit<Parameters<typeof openSqliteEventStore>[0], 'dir'> } = {},
) => {
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal', ...options.store });
  const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
  await directory.start();
  const ledger = createLedgerService({
    eventStore: options.wrap ? options.wrap(eventStore) : eventStore,
    directory,
    payments: builtInPaymentProcessor(),
    logger: createLogger('silent'),
    ...options.ledger,
  });
  if (options.start) await ledger.start();
  return {
    eventStore,
    directory,
    ledger,
    async close() {
      await ledger.stop();
      await directory.stop();
      await eventStore.close();
    },
  };
};

export const openAccount = async (eventStore: ReturnType<typeof openSqliteEventStore>, accountId: string) => {
  const { position } = await eventStore.append(accountStream(accountId), [
    { type: 'AccountOpened', data: { accountId, name: accountId, email: null, roles: ['user'], plan: 'free', at: new Date().toISOString() } },
  ]);
  return position;
};
