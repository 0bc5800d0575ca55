import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { accountStream } from '../../src/modules/accounts/account.events.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { createLedgerService } from '../../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../../src/modules/ledger/payments.js';

/** A ledger service over the embedded event store in `dir`, as one app process would have it. */
export const openLedger = async (dir: string) => {
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
  const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
  await directory.start();
  const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent') });
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
