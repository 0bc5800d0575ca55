/**
 * The storage thread (embedded mode): runs the projection runner and owns the embedded read store, and answers
 * the request thread's read-store calls (see storageThread.ts). It reads the event log through its own connection
 * to the SQLite file; the request thread tells it when the head moved. Started as a worker; never imported by the
 * request thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { allProjections, diskCollections } from '../../projections/index.js';
import { createProjectionRunner } from '../../projections/runner.js';
import { loadEventStoreWrapper } from '../eventStore/eventStoreWrapper.js';
import { openSqliteEventStore } from '../eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from '../readStore/embeddedReadStore.js';
import { lowerThisThreadPriority } from '../threadPriority.js';
import type { DocWrite, Fence, ProjectionCheckpoint, ReadCollection } from '../readStore/readStore.js';
import { ACKNOWLEDGED, APPENDS, ARMED, URGENT, type StorageWorkerData } from './protocol.js';
import { createChannel } from './rpc.js';

/**
 * While appends keep coming, how often the counter is looked at (the runner batches what gathered in between), unless
 * the request thread waits for a position (URGENT). Each batch costs this thread a read of the new events, one read
 * of every document it changes, a read-store commit and a message back, whatever its size: at 100 req/s, looking
 * every 10 ms instead of every 2 ms cut this thread's CPU per request by 30-45% (bench/README.md, gateway section, item 18),
 * and every 50 ms instead of 10 by another 60% at 100 req/s and 50% at 300 (issue 15, stop 25). A read model nobody
 * waits for (`waitFor`, read-your-writes) is therefore up to ~50 ms behind the log; one that is waited for is not.
 */
const GATHER_MS = 50;
/** Looks without a new append before this thread sleeps until woken. */
const QUIET_LOOKS = 3;

const channel = createChannel(parentPort!, 'microtask');
const data = workerData as StorageWorkerData;

const start = async () => {
  lowerThisThreadPriority();
  // Reads only, of recent events: appends are the request thread's, and so are the file's background checkpoints.
  // Only up to what the request thread acknowledged: with EVENTSTORE_SYNC=full, what is on disk.
  const acknowledged = new BigInt64Array(data.acknowledged);
  const eventStore = openSqliteEventStore({
    dir: data.dir,
    backgroundCheckpoints: false,
    cacheMiB: 8,
    visibleUpTo: () => Number(Atomics.load(acknowledged, ACKNOWLEDGED)),
    // Told of each acknowledged append (notifyAppended, below); nothing else appends while the server holds DATA_DIR.
    otherWriters: false,
  });
  // Follow the request thread's appends without a message per commit: it bumps a shared counter after each one.
  // While appends keep coming this thread looks at the counter every GATHER_MS (the runner batches what gathered), or
  // at once when the request thread waits for a position (URGENT); once they stop it arms itself and sleeps on the
  // counter, and the request thread's next commit wakes it (a futex wake-up costs the request thread tens of µs on a
  // VM, so it pays one only after a quiet spell, not per commit).
  const shared = new Int32Array(data.appends);
  let stopped = false;
  void (async () => {
    let seen = Atomics.load(shared, APPENDS);
    let quiet = 0;
    while (!stopped) {
      if (quiet >= QUIET_LOOKS) {
        Atomics.store(shared, ARMED, 1);
        const wait = Atomics.waitAsync(shared, APPENDS, seen);
        if (wait.async) await wait.value;
        Atomics.store(shared, ARMED, 0);
      } else {
        const wait = Atomics.waitAsync(shared, URGENT, 0, GATHER_MS);
        if (wait.async) await wait.value;
      }
      if (stopped) break;
      const urgent = Atomics.exchange(shared, URGENT, 0) === 1;
      const current = Atomics.load(shared, APPENDS);
      if (current === seen && !urgent) {
        quiet += 1;
        continue;
      }
      seen = current;
      quiet = 0;
      eventStore.notifyAppended();
    }
  })();
  const readStore = await openEmbeddedReadStore({ dir: data.dir, diskCollections }).catch(async (error: unknown) => {
    await eventStore.close();
    throw error;
  });
  const wrap = await loadEventStoreWrapper(data.eventStoreWrapper);
  const runner = createProjectionRunner({
    eventStore: wrap(eventStore, { dataDir: data.dir, thread: 'storage' }),
    readStore,
    projections: allProjections,
    // The request thread logs the failures and serves the status on /health (see storageThread.ts).
    onError: (error, retry) =>
      channel.push('runnerError', { ...(error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) }), ...retry }),
    onStatus: (status) => channel.push('runnerStatus', status),
    onLease: (status) => channel.push('lease', status),
    onAheadOfLog: (projection, checkpoint, head) => channel.push('aheadOfLog', { projection, checkpoint, head }),
    onRebuild: (rebuild) => channel.push('rebuild', rebuild),
    // Between live batches, as between looks at the counter: GATHER_MS, or less when the request thread waits.
    gather: async () => {
      const wait = Atomics.waitAsync(shared, URGENT, 0, GATHER_MS);
      if (wait.async) await wait.value;
    },
  });
  runner.onApplied((applied) => channel.push('applied', applied));

  type CollectionMethod = Exclude<keyof ReadCollection, 'name'>;
  channel.handle('collection', (name: string, method: CollectionMethod, args: unknown[]) =>
    (readStore.collection(name)[method] as (...a: unknown[]) => Promise<unknown>)(...args),
  );
  channel.handle('getCheckpoint', (projection: string) => readStore.getCheckpoint(projection));
  channel.handle('commit', (writes: readonly DocWrite[], checkpoints: ProjectionCheckpoint | readonly ProjectionCheckpoint[], fence?: Fence) =>
    readStore.commit(writes, checkpoints, fence),
  );
  channel.handle('acquireLease', (name: string, holder: string, ttlMs: number) => readStore.acquireLease(name, holder, ttlMs));
  channel.handle('releaseLease', (name: string, holder: string, epoch: number) => readStore.releaseLease(name, holder, epoch));
  channel.handle('readLease', (name: string) => readStore.readLease(name));
  channel.handle('reset', (projection: string, collections: readonly string[]) => readStore.reset(projection, collections));
  channel.handle('health', () => readStore.health());
  channel.handle('pause', () => runner.pause());
  channel.handle('resume', () => runner.resume());
  channel.handle('close', async () => {
    stopped = true;
    Atomics.add(shared, APPENDS, 1);
    Atomics.notify(shared, APPENDS);
    Atomics.notify(shared, URGENT);
    await runner.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });

  await runner.start();
  return runner.status();
};

channel.handle('start', start);
