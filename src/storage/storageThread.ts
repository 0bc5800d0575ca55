/**
 * Embedded mode runs its read side on a thread of its own: the projection runner and the embedded read store live
 * in a worker (storageWorker.ts), and the request thread reaches them through the same ReadStore and
 * ProjectionRunner ports, implemented here as calls over a message port.
 *
 * Why: SQLite is synchronous, and the read side is most of the storage work of a request (reading the new events
 * back, applying six projections, serialising and committing the changed documents). On the request thread every
 * projection batch blocked all requests in flight, and the read models' documents grew the request thread's heap
 * and its garbage-collection pauses. Appends run on the event store's own writer thread (eventStore/sqliteWriter.ts).
 * After each acknowledged commit the
 * request thread bumps a shared counter the worker watches (Atomics): the worker looks at it every 50 ms while appends
 * come and sleeps on it when they stop, and is woken only then, so there is no message or wake-up per commit. A wait
 * for the read models (`runner.waitFor`) sets a flag that wakes the worker at once.
 *
 * The network-backed production stores (EventStoreDB, MongoDB) are asynchronous already and run in-process.
 */
import { Worker } from 'node:worker_threads';
import type { AppliedBatch, LeaseStatus, ProjectionRunner, ReadModelRebuild } from '../../projections/runner.js';
import { UnavailableError } from '../errors.js';
import type { FollowStatus } from '../eventStore/followStatus.js';
import { createPositionTracker } from '../eventStore/positionTracker.js';
import type { SqliteEventStore } from '../eventStore/sqliteEventStore.js';
import type { Lease, ReadCollection, ReadStore, ReadStoreHealth } from '../readStore/readStore.js';
import { createChannel } from './rpc.js';
import { ACKNOWLEDGED, APPENDS, ARMED, URGENT, type StorageWorkerData } from './protocol.js';

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
  readonly readStore: ReadStore;
  /** Started: the read models have caught up with the event log. */
  readonly runner: ProjectionRunner;
  /** Stop the projection runner, close the read store and end the thread. */
  close(): Promise<void>;
}

/**
 * Start the read side on its own thread over `dir`, following `eventStore` (the request thread's connection to the
 * same event log). Resolves once the read models have caught up. `onError` hears an unexpected end of the thread,
 * `onRunnerError` the projection runner's failures (each retried).
 */
export const startStorageThread = async (options: {
  dir: string;
  eventStore: SqliteEventStore;
  onError: (error: Error) => void;
  /** A failure of the projection runner, which it retries from its position after `delayMs`. */
  onRunnerError?: (error: Error, retry: { attempt: number; delayMs: number }) => void;
  /** A read model found ahead of the event log at start, and rebuilt from it. */
  onAheadOfLog?: (ahead: { projection: string; checkpoint: number; head: number }) => void;
  /** A read model rebuilt from the log (a new version, ...): at its start and once caught up. */
  onRebuild?: (rebuild: ReadModelRebuild) => void;
  /** Tests only: see eventStore/eventStoreWrapper.ts. */
  eventStoreWrapper?: string;
}): Promise<StorageThread> => {
  const typescript = import.meta.url.endsWith('.ts');
  const entry = new URL(`./storageWorker.${typescript ? 'ts' : 'js'}`, import.meta.url).href;
  const tsx = typescript ? import.meta.resolve('tsx/esm/api') : null;
  const appends = new Int32Array(new SharedArrayBuffer(12));
  const acknowledged = new BigInt64Array(new SharedArrayBuffer(8));
  Atomics.store(acknowledged, ACKNOWLEDGED, BigInt(options.eventStore.writeStats().acknowledgedPosition));
  const data: StorageWorkerData = {
    dir: options.dir,
    appends: appends.buffer as SharedArrayBuffer,
    acknowledged: acknowledged.buffer as SharedArrayBuffer,
    ...(options.eventStoreWrapper !== undefined && { eventStoreWrapper: options.eventStoreWrapper }),
  };
  const worker = new Worker(BOOT, { eval: true, workerData: { ...data, entry, tsx } });
  const channel = createChannel(worker, 'turn');
  let closing = false;

  const tracker = createPositionTracker();
  const listeners = new Set<(applied: AppliedBatch) => void>();
  channel.onPush('applied', (payload) => {
    const applied = payload as AppliedBatch;
    tracker.advance(applied.position);
    for (const listener of listeners) listener(applied);
  });
  // The runner's status lives on the storage thread; it pushes each change (its position comes with 'applied').
  let runnerStatus: FollowStatus = { position: 0, state: 'catchingUp', failures: 0, lastError: null };
  channel.onPush('runnerStatus', (payload) => {
    runnerStatus = payload as FollowStatus;
    tracker.advance(runnerStatus.position);
  });
  let leaseStatus: LeaseStatus = { name: 'projections', holder: '', held: false, epoch: null };
  channel.onPush('lease', (payload) => (leaseStatus = payload as LeaseStatus));
  channel.onPush('aheadOfLog', (payload) => options.onAheadOfLog?.(payload as { projection: string; checkpoint: number; head: number }));
  channel.onPush('rebuild', (payload) => options.onRebuild?.(payload as ReadModelRebuild));
  channel.onPush('runnerError', (payload) => {
    const { message, stack, attempt, delayMs } = payload as { message: string; stack?: string; attempt: number; delayMs: number };
    options.onRunnerError?.(Object.assign(new Error(message), stack ? { stack } : {}), { attempt, delayMs });
  });
  /** The highest position a `waitFor` asked for: while the read models are behind it, the worker applies at once. */
  let wanted = 0;
  const hurry = () => {
    if (Atomics.compareExchange(appends, URGENT, 0, 1) === 0) Atomics.notify(appends, URGENT);
  };
  // Heard once the appends are acknowledged (with `full`: once they are on disk).
  options.eventStore.onAppended((position) => {
    Atomics.store(acknowledged, ACKNOWLEDGED, BigInt(position));
    Atomics.add(appends, APPENDS, 1);
    if (Atomics.compareExchange(appends, ARMED, 1, 0) === 1) Atomics.notify(appends, APPENDS);
    // A wait that came before its position was acknowledged (on disk) is served now, not at the worker's next look.
    else if (wanted > tracker.position) hurry();
  });

  const gone = (reason: string) => {
    const error = new UnavailableError(`The storage thread ${reason}`);
    channel.failPending(error);
    tracker.cancelAll();
    if (!closing) options.onError(error);
  };
  worker.on('error', (error) => gone(`failed: ${error.message}`));
  worker.on('exit', (code) => gone(`exited with code ${code}`));

  runnerStatus = await channel.call<FollowStatus>('start').catch(async (error: unknown) => {
    closing = true;
    await worker.terminate();
    throw error;
  });
  tracker.advance(runnerStatus.position);

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
    commit: (writes, checkpoints, fence) => channel.call('commit', writes, checkpoints, fence),
    acquireLease: (name, holder, ttlMs) => channel.call<Lease | null>('acquireLease', name, holder, ttlMs),
    releaseLease: (name, holder, epoch) => channel.call('releaseLease', name, holder, epoch),
    readLease: (name) => channel.call<Lease | null>('readLease', name),
    reset: (projection, names) => channel.call('reset', projection, names),
    health: () => channel.call<ReadStoreHealth>('health').catch((error: Error) => ({ ok: false, kind: 'embedded', detail: error.message })),
    async close() {
      // Closed with the thread (see `close` below).
    },
  };

  const runner: ProjectionRunner = {
    get position() {
      return tracker.position;
    },
    status: () => ({ ...runnerStatus, position: tracker.position }),
    lease: () => leaseStatus,
    async start() {
      // Started with the thread: `startStorageThread` resolves once the read models have caught up.
    },
    waitFor(position, timeoutMs) {
      // Someone waits (read-your-writes): the storage thread applies what it has gathered now, not at its next look.
      if (position > tracker.position) {
        wanted = Math.max(wanted, position);
        hurry();
      }
      return tracker.waitFor(position, timeoutMs);
    },
    onApplied(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    // Answered by the storage thread once its runner holds (or applies) again.
    pause: () => channel.call('pause'),
    resume: () => channel.call('resume'),
    async stop() {
      // Stopped with the thread.
    },
  };

  return {
    readStore,
    runner,
    async close() {
      if (closing) return;
      closing = true;
      await channel.call('close').catch(() => undefined);
      tracker.cancelAll();
      await worker.terminate();
    },
  };
};
