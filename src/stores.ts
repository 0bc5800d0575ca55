import { allProjections, diskCollections } from '../projections/index.js';
import { createProjectionRunner, describeRebuild, type ProjectionRunner, type ReadModelRebuild } from '../projections/runner.js';
import { ConfigError, type Config } from './config.js';
import type { ContentStore } from './contentStore/contentStore.js';
import { openSqliteContentStore } from './contentStore/sqliteContentStore.js';
import type { EventStore } from './eventStore/eventStore.js';
import { loadEventStoreWrapper } from './eventStore/eventStoreWrapper.js';
import { openSqliteEventStore } from './eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from './readStore/embeddedReadStore.js';
import type { Logger } from './logger.js';
import type { ReadStore } from './readStore/readStore.js';
import { ensurePrivateDir, missingDataDirAdvice, ownershipAdvice } from './sqlite/privateFiles.js';
import { startStorageThread } from './storage/storageThread.js';

/**
 * DATA_DIR made (0700) or narrowed, when anything is embedded: one that cannot be (a file, a path through a file, no
 * permission, a read-only file system) stops the start with a line naming DATA_DIR, not a mkdir stack trace; one
 * that is not there and cannot be made names the folder above it in the way, not DATA_DIR's own chown.
 */
export const ensureDataDir = (config: Config): void => {
  if (config.EVENTSTORE_URL && config.MONGODB_URL) return;
  try {
    ensurePrivateDir(config.DATA_DIR);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST'
        ? 'is not a directory'
        : code === 'ENOTDIR'
          ? 'goes through a file, not a directory'
          : code === 'EACCES' || code === 'EPERM'
            ? (missingDataDirAdvice(config.DATA_DIR) ?? `cannot be created or used: permission denied. It and every file in it ${ownershipAdvice(config.DATA_DIR)}`)
            : code === 'EROFS'
              ? 'is on a read-only file system'
              : null;
    if (why === null) throw error;
    throw new ConfigError(`DATA_DIR (${config.DATA_DIR}) ${why}`);
  }
};

/** EventStoreDB when EVENTSTORE_URL is set, else the embedded SQLite store under DATA_DIR; the same for MongoDB. */
export const openStores = async (config: Config): Promise<{ eventStore: EventStore; readStore: ReadStore }> => {
  ensureDataDir(config);
  // The production clients (gRPC, MongoDB driver) are loaded only when configured: they add seconds to start-up.
  const eventStore = config.EVENTSTORE_URL
    ? (await import('./eventStore/eventStoreDbEventStore.js')).openEventStoreDb(config.EVENTSTORE_URL)
    : openSqliteEventStore({ dir: config.DATA_DIR, synchronous: config.EVENTSTORE_SYNC });
  const readStore = config.MONGODB_URL
    ? await (await import('./readStore/mongoReadStore.js')).openMongoReadStore(config.MONGODB_URL)
    : await openEmbeddedReadStore({ dir: config.DATA_DIR, diskCollections });
  return { eventStore, readStore };
};

/** Generations' logged content: a collection in MongoDB when MONGODB_URL is set, else its own SQLite file in DATA_DIR. */
export const openContentStore = async (config: Config): Promise<ContentStore> =>
  config.MONGODB_URL
    ? (await import('./contentStore/mongoContentStore.js')).openMongoContentStore(config.MONGODB_URL)
    : openSqliteContentStore({ dir: config.DATA_DIR });

export interface Storage {
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  /** Started: the read models have caught up with the event log. */
  readonly runner: ProjectionRunner;
  close(): Promise<void>;
}

/**
 * The server's storage. Fully embedded, the read side runs on the storage thread (see storage/storageThread.ts); with
 * EventStoreDB or MongoDB configured, the stores and the projection runner run in-process (their clients are
 * asynchronous already). The runner's failures are logged here and retried by the runner.
 */
export const openStorage = async (config: Config, logger: Logger, options: { eventStoreWrapper?: string } = {}): Promise<Storage> => {
  const onRunnerError = (error: unknown, retry: { attempt: number; delayMs: number }) =>
    logger.error({ err: error, attempt: retry.attempt, retryInMs: retry.delayMs }, 'projection runner: following the event log failed; resubscribing from its checkpoint');
  // A new version of a read model (an upgrade, a downgrade) is rebuilt from the whole log: the start takes that long.
  const onRebuild = (rebuild: ReadModelRebuild) => logger.info(rebuild, describeRebuild(rebuild));
  ensureDataDir(config);
  if (!config.EVENTSTORE_URL && !config.MONGODB_URL) {
    // The storage thread's read store locks DATA_DIR (another server cannot start on it): no other process appends.
    const eventStore = openSqliteEventStore({ dir: config.DATA_DIR, synchronous: config.EVENTSTORE_SYNC, otherWriters: false });
    const thread = await startStorageThread({
      dir: config.DATA_DIR,
      eventStore,
      onError: (error) => logger.error({ err: error }, 'storage failed: read models stop following the event log'),
      onRunnerError,
      onAheadOfLog: (ahead) =>
        logger.error(ahead, 'a read model was ahead of the event log (the log was restored from an older copy, or lost commits): it is rebuilt from the log'),
      onRebuild,
      ...(options.eventStoreWrapper !== undefined && { eventStoreWrapper: options.eventStoreWrapper }),
    }).catch(async (error: unknown) => {
      await eventStore.close();
      throw error;
    });
    return {
      eventStore,
      readStore: thread.readStore,
      runner: thread.runner,
      async close() {
        await thread.close();
        await eventStore.close();
      },
    };
  }
  const { eventStore, readStore } = await openStores(config);
  const wrap = await loadEventStoreWrapper(options.eventStoreWrapper);
  const runner = createProjectionRunner({
    eventStore: wrap(eventStore, { dataDir: config.DATA_DIR, thread: 'request' }),
    readStore,
    projections: allProjections,
    onError: onRunnerError,
    onRebuild,
  });
  try {
    await runner.start();
  } catch (error) {
    await Promise.all([eventStore.close(), readStore.close()]);
    throw error;
  }
  return {
    eventStore,
    readStore,
    runner,
    async close() {
      await runner.stop();
      await Promise.all([eventStore.close(), readStore.close()]);
    },
  };
};
