import { mkdirSync } from 'node:fs';
import type { Config } from './config.js';
import type { EventStore } from './eventStore/eventStore.js';
import { openSqliteEventStore } from './eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from './readStore/embeddedReadStore.js';
import type { ReadStore } from './readStore/readStore.js';

/** EventStoreDB when EVENTSTORE_URL is set, else the embedded SQLite store under DATA_DIR; the same for MongoDB. */
export const openStores = async (config: Config): Promise<{ eventStore: EventStore; readStore: ReadStore }> => {
  if (!config.EVENTSTORE_URL || !config.MONGODB_URL) mkdirSync(config.DATA_DIR, { recursive: true });
  // The production clients (gRPC, MongoDB driver) are loaded only when configured: they add seconds to start-up.
  const eventStore = config.EVENTSTORE_URL
    ? (await import('./eventStore/eventStoreDbEventStore.js')).openEventStoreDb(config.EVENTSTORE_URL)
    : openSqliteEventStore({ dir: config.DATA_DIR, synchronous: config.EVENTSTORE_SYNC });
  const readStore = config.MONGODB_URL
    ? await (await import('./readStore/mongoReadStore.js')).openMongoReadStore(config.MONGODB_URL)
    : await openEmbeddedReadStore({ dir: config.DATA_DIR });
  return { eventStore, readStore };
};
