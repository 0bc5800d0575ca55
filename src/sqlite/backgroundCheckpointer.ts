import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { BACKGROUND_NICE } from '../threadPriority.js';

/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit crosses the
 * threshold, on the thread that commits: with the embedded stores that is the event loop, and every few seconds all
 * requests in flight stalled for 100–180 ms while the WAL was copied into the database file. The stores switch
 * automatic checkpoints off and run this: a worker thread with its own connection that checkpoints (PASSIVE, which
 * never blocks readers or writers) every `intervalMs`. Closing the stores' own connection last still checkpoints and
 * removes the WAL.
 */
const WORKER = `
const { workerData } = require('node:worker_threads');
// The same as lowerThisThreadPriority (src/threadPriority.ts), which this eval'd CommonJS cannot import.
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, workerData.nice);
} catch { /* not Linux, or not permitted: the thread keeps the process's priority */ }
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 5000 });
const passes = workerData.passes && new Int32Array(workerData.passes);
setInterval(() => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (passes) {
      Atomics.store(passes, 1, result.log);
      Atomics.add(passes, 0, 1);
    }
  } catch { /* busy or closing: the next round catches up */ }
}, workerData.intervalMs);
`;

const driver = createRequire(import.meta.url).resolve('better-sqlite3');

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * `passes`: for a writer that finishes passes between its own commits (the event store's writer thread,
 * src/eventStore/sqliteWriter.ts), two Int32s: at index 0 a counter bumped after each pass, at index 1 the number of
 * frames the WAL held at that pass.
 */
export const startBackgroundCheckpointer = (file: string, options: { intervalMs?: number; passes?: SharedArrayBuffer } = {}): Checkpointer => {
  const workerData = { file, intervalMs: options.intervalMs ?? 1000, passes: options.passes ?? null, driver, nice: BACKGROUND_NICE };
  const worker = new Worker(WORKER, { eval: true, workerData });
  worker.unref();
  // A failing checkpointer must not take the process down: SQLite then simply keeps a longer WAL.
  worker.on('error', () => undefined);
  return {
    stop: async () => {
      await worker.terminate();
    },
  };
};
