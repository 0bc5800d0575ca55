/**
 * Embedded mode runs its storage on a thread of its own: the SQLite event store, the projection runner and the
 * embedded read store live in a worker (storageWorker.ts), and the request thread reaches them through the same
 * EventStore, ReadStore and ProjectionRunner ports, implemented here as calls over a message port.
 *
 * Why: SQLite is synchronous. On the request thread every append, every projection batch and every read-model
 * commit blocked all requests in flight, and the read models' documents grew the request thread's heap (and its
 * garbage-collection pauses). On the storage thread that work runs on the machine's other core, and the request
 * thread only parses, routes, decides and proxies. The network-backed production stores (EventStoreDB, MongoDB)
 * are asynchronous already and run in-process.
 */
import { Worker } from 'node:worker_threads';
import type { AppliedBatch, ProjectionRunner } from '../../projections/runner.js';
import { UnavailableError } from '../errors.js';
import type { EventStore, StoreHealth, Subscription, SubscriptionMessage } from '../eventStore/eventStore.js';
import { createPositionTracker } from '../eventStore/positionTracker.js';
import type { ReadCollection, ReadStore, ReadStoreHealth } from '../readStore/readStore.js';
import { createChannel } from './rpc.js';
import type { StorageWorkerData } from './storageWorker.js';

// The worker runs the TypeScript sources through tsx when this module is itself TypeScript (npm start, tests), and
// the compiled JavaScript next to it after `npm run build`.
const BOOT = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})();
`;

export interface StorageThread {
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  readonly runner: ProjectionRunner;
  /** Stop the projection runner, close both stores and end the thread. */
  close(): Promise<void>;
}

/** Start the storage thread; resolves once its read models have caught up with the event log. `onError` hears the
 * projection runner's errors and an unexpected end of the thread. */
export const startStorageThread = async (options: StorageWorkerData & { onError: (error: Error) => void }): Promise<StorageThread> => {
  const typescript = import.meta.url.endsWith('.ts');
  const entry = new URL(`./storageWorker.${typescript ? 'ts' : 'js'}`, import.meta.url).href;
  const tsx = typescript ? import.meta.resolve('tsx/esm/api') : null;
  const data: StorageWorkerData = { dir: options.dir, synchronous: options.synchronous };
  const worker = new Worker(BOOT, { eval: true, workerData: { ...data, entry, tsx } });
  const channel = createChannel(worker);
  let closing = false;

  // Subscriptions of this thread's followers: the worker pushes each message; we queue it for the iterator.
  interface Queue {
    readonly items: SubscriptionMessage[];
    wake: (() => void) | null;
    ended: boolean;
    error: string | null;
  }
  const queues = new Map<number, Queue>();
  let nextSubscription = 1;
  channel.onPush('subscription', (payload) => {
    const { id, message, end, error } = payload as { id: number; message?: SubscriptionMessage; end?: boolean; error?: string };
    const queue = queues.get(id);
    if (!queue) return;
    if (message) queue.items.push(message);
    if (end) {
      queue.ended = true;
      queue.error = error ?? null;
    }
    queue.wake?.();
  });

  const tracker = createPositionTracker();
  const listeners = new Set<(applied: AppliedBatch) => void>();
  channel.onPush('applied', (payload) => {
    const applied = payload as AppliedBatch;
    tracker.advance(applied.position);
    for (const listener of listeners) listener(applied);
  });
  channel.onPush('runnerError', (payload) => {
    const { message, stack } = payload as { message: string; stack?: string };
    options.onError(Object.assign(new Error(`projection runner: ${message}`), stack ? { stack } : {}));
  });

  const gone = (reason: string) => {
    const error = new UnavailableError(`The storage thread ${reason}`);
    channel.failPending(error);
    for (const queue of queues.values()) {
      queue.ended = true;
      queue.error = error.message;
      queue.wake?.();
    }
    tracker.cancelAll();
    if (!closing) options.onError(error);
  };
  worker.on('error', (error) => gone(`failed: ${error.message}`));
  worker.on('exit', (code) => gone(`exited with code ${code}`));

  const started = await channel.call<{ position: number }>('start').catch(async (error: unknown) => {
    closing = true;
    await worker.terminate();
    throw error;
  });
  tracker.advance(started.position);

  const eventStore: EventStore = {
    kind: 'embedded',
    append: (stream, events, appendOptions) => channel.call('append', stream, events, appendOptions),
    readStream: (stream, readOptions) => channel.call('readStream', stream, readOptions),
    readAll: (readOptions) => channel.call('readAll', readOptions),
    headPosition: () => channel.call('headPosition'),
    health: () => channel.call<StoreHealth>('eventStoreHealth').catch((error: Error) => ({ ok: false, kind: 'embedded', detail: error.message })),
    subscribeToAll(subscribeOptions): Subscription {
      const id = nextSubscription++;
      const queue: Queue = { items: [], wake: null, ended: false, error: null };
      queues.set(id, queue);
      void channel.call('subscribe', id, subscribeOptions).catch(() => undefined);
      const close = async () => {
        if (!queues.delete(id)) return;
        queue.ended = true;
        queue.wake?.();
        await channel.call('unsubscribe', id).catch(() => undefined);
      };
      return {
        close,
        async *[Symbol.asyncIterator]() {
          try {
            for (;;) {
              const message = queue.items.shift();
              if (message) {
                yield message;
                continue;
              }
              if (queue.ended) {
                if (queue.error) throw new UnavailableError(`Subscription ended: ${queue.error}`);
                return;
              }
              await new Promise<void>((resolve) => (queue.wake = resolve));
              queue.wake = null;
            }
          } finally {
            await close();
          }
        },
      };
    },
    async close() {
      // Closed with the thread (see `close` below).
    },
  };

  const collections = new Map<string, ReadCollection>();
  const readStore: ReadStore = {
    kind: 'embedded',
    collection<T extends { _id: string }>(name: string) {
      let collection = collections.get(name);
      if (!collection) {
        const call = (method: string) => (...args: unknown[]) => channel.call('collection', name, method, args);
        collection = {
          name,
          findOne: call('findOne'),
          find: call('find'),
          count: call('count'),
          aggregate: call('aggregate'),
          updateOne: call('updateOne'),
          replaceOne: call('replaceOne'),
          deleteOne: call('deleteOne'),
          createIndex: call('createIndex'),
        } as ReadCollection;
        collections.set(name, collection);
      }
      return collection as unknown as ReadCollection<T & Record<string, unknown>>;
    },
    getCheckpoint: (projection) => channel.call('getCheckpoint', projection),
    commit: (writes, checkpoints) => channel.call('commit', writes, checkpoints),
    reset: (projection, names) => channel.call('reset', projection, names),
    health: () => channel.call<ReadStoreHealth>('readStoreHealth').catch((error: Error) => ({ ok: false, kind: 'embedded', detail: error.message })),
    async close() {
      // Closed with the thread.
    },
  };

  const runner: ProjectionRunner = {
    get position() {
      return tracker.position;
    },
    async start() {
      // Started with the thread: `startStorageThread` resolves once the read models have caught up.
    },
    waitFor: (position, timeoutMs) => tracker.waitFor(position, timeoutMs),
    onApplied(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      // Stopped with the thread.
    },
  };

  return {
    eventStore,
    readStore,
    runner,
    async close() {
      if (closing) return;
      closing = true;
      for (const id of [...queues.keys()]) queues.get(id)!.wake?.();
      await channel.call('close').catch(() => undefined);
      tracker.cancelAll();
      await worker.terminate();
    },
  };
};
