import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Hold every thread of libuv's pool in this process, as slow DNS lookups would: each open of a FIFO with no writer
 * holds one until a writer comes. `poolFree()` turns true once a job queued behind them ran (it stays false while
 * they hold); `release()` lets them all go and waits for that job.
 */
export const holdThreadPool = async (dir: string) => {
  const fifos = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, (_, i) => join(dir, `pool-${process.pid}-${Date.now()}-${i}`));
  for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
  const held = fifos.map((fifo) => open(fifo, 'r'));
  let free = false;
  const queued = stat(dir).then(() => (free = true));
  // Long enough for the pool to have taken every open.
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    poolFree: () => free,
    async release() {
      for (const fifo of fifos) {
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // No reader waits on this one (a non-blocking open for writing then fails).
        }
      }
      await Promise.all(held.map((opening) => opening.then((handle) => handle.close(), () => undefined)));
      await queued;
    },
  };
};
