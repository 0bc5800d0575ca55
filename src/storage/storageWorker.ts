/**
 * The storage thread (embedded mode): runs the projection runner and owns the embedded read store, and answers
 * the request thread's read-store calls (see storageThread.ts). It reads the event log through its own connection
 * to the SQLite file; the request thread tells it when the head moved. Started as a worker; never imported by the
 * request thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { allProjections, diskCollections } from '../../projections/index.js';
import { createProjectionRunner } from '../../projections/runner.js';
import { openSqliteEventStore } from '../eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from '../readStore/embeddedReadStore.js';
import type { DocWrite, ProjectionCheckpoint, ReadCollection } from '../readStore/readStore.js';
import { createChannel } from './rpc.js';

export interface StorageWorkerData {
  readonly dir: string;
  /** One Int32 the request thread increments (and notifies) after each commit of appends. */
  readonly appends: SharedArrayBuffer;
}

const channel = createChannel(parentPort!, 'microtask');
const data = workerData as StorageWorkerData;

const start = async () => {
  // Reads only, of recent events: appends are the request thread's, and so are the file's background checkpoints.
  const eventStore = openSqliteEventStore({ dir: data.dir, backgroundCheckpoints: false, cacheMiB: 8 });
  // Wait on the request thread's append counter without polling. A notify costs the request thread nothing while
  // this thread is busy; the changed counter is seen on the next wait.
  const appends = new Int32Array(data.appends);
  let stopped = false;
  void (async () => {
    let seen = Atomics.load(appends, 0);
    while (!stopped) {
      const wait = Atomics.waitAsync(appends, 0, seen);
      if (wait.async) await wait.value;
      if (stopped) break;
      seen = Atomics.load(appends, 0);
      eventStore.notifyAppended();
    }
  })();
  const readStore = await openEmbeddedReadStore({ dir: data.dir, diskCollections }).catch(async (error: unknown) => {
    await eventStore.close();
    throw error;
  });
  const runner = createProjectionRunner({
    eventStore,
    readStore,
    projections: allProjections,
    onError: (error) => channel.push('runnerError', error instanceof Error ? { message: error.message, stack: error.stack } : { message: String(error) }),
  });
  runner.onApplied((applied) => channel.push('applied', applied));

  type CollectionMethod = Exclude<keyof ReadCollection, 'name'>;
  channel.handle('collection', (name: string, method: CollectionMethod, args: unknown[]) =>
    (readStore.collection(name)[method] as (...a: unknown[]) => Promise<unknown>)(...args),
  );
  channel.handle('getCheckpoint', (projection: string) => readStore.getCheckpoint(projection));
  channel.handle('commit', (writes: readonly DocWrite[], checkpoints: ProjectionCheckpoint | readonly ProjectionCheckpoint[]) => readStore.commit(writes, checkpoints));
  channel.handle('reset', (projection: string, collections: readonly string[]) => readStore.reset(projection, collections));
  channel.handle('health', () => readStore.health());
  channel.handle('close', async () => {
    stopped = true;
    Atomics.add(appends, 0, 1);
    Atomics.notify(appends, 0);
    await runner.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });

  await runner.start();
  return { position: runner.position };
};

channel.handle('start', start);
