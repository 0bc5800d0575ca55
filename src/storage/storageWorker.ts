/**
 * The storage thread (embedded mode): owns the SQLite event store, the embedded read store and the projection
 * runner, and answers the request thread's calls (see storageThread.ts). Started as a worker thread; never imported
 * by the request thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { allProjections } from '../../projections/index.js';
import { createProjectionRunner } from '../../projections/runner.js';
import type { EventStore, NewEvent, ReadAllOptions, ReadStreamOptions, SubscribeOptions, Subscription } from '../eventStore/eventStore.js';
import { openSqliteEventStore } from '../eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from '../readStore/embeddedReadStore.js';
import type { DocWrite, ProjectionCheckpoint, ReadCollection } from '../readStore/readStore.js';
import { createChannel } from './rpc.js';

export interface StorageWorkerData {
  readonly dir: string;
  readonly synchronous: 'full' | 'normal';
}

const port = parentPort!;
const channel = createChannel(port);
const data = workerData as StorageWorkerData;

const start = async () => {
  const eventStore: EventStore = openSqliteEventStore({ dir: data.dir, synchronous: data.synchronous });
  const readStore = await openEmbeddedReadStore({ dir: data.dir }).catch(async (error: unknown) => {
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

  channel.handle('append', (stream: string, events: readonly NewEvent[], options?: Parameters<EventStore['append']>[2]) => eventStore.append(stream, events, options));
  channel.handle('readStream', (stream: string, options?: ReadStreamOptions) => eventStore.readStream(stream, options));
  channel.handle('readAll', (options?: ReadAllOptions) => eventStore.readAll(options));
  channel.handle('headPosition', () => eventStore.headPosition());
  channel.handle('eventStoreHealth', () => eventStore.health());

  // Subscriptions of the request thread (write-side followers): each message is pushed as it is read.
  const subscriptions = new Map<number, Subscription>();
  channel.handle('subscribe', (id: number, options?: SubscribeOptions) => {
    const subscription = eventStore.subscribeToAll(options);
    subscriptions.set(id, subscription);
    void (async () => {
      try {
        for await (const message of subscription) channel.push('subscription', { id, message });
        channel.push('subscription', { id, end: true });
      } catch (error) {
        channel.push('subscription', { id, end: true, error: error instanceof Error ? error.message : String(error) });
      } finally {
        subscriptions.delete(id);
      }
    })();
  });
  channel.handle('unsubscribe', async (id: number) => {
    await subscriptions.get(id)?.close();
  });

  type CollectionMethod = Exclude<keyof ReadCollection, 'name'>;
  channel.handle('collection', (name: string, method: CollectionMethod, args: unknown[]) =>
    (readStore.collection(name)[method] as (...a: unknown[]) => Promise<unknown>)(...args),
  );
  channel.handle('getCheckpoint', (projection: string) => readStore.getCheckpoint(projection));
  channel.handle('commit', (writes: readonly DocWrite[], checkpoints: ProjectionCheckpoint | readonly ProjectionCheckpoint[]) => readStore.commit(writes, checkpoints));
  channel.handle('reset', (projection: string, collections: readonly string[]) => readStore.reset(projection, collections));
  channel.handle('readStoreHealth', () => readStore.health());

  channel.handle('close', async () => {
    for (const subscription of subscriptions.values()) await subscription.close();
    await runner.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });

  await runner.start();
  return { position: runner.position };
};

channel.handle('start', start);
