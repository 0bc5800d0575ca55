import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Give the calling thread a lower CPU priority (a higher nice value) than the request thread, so that on a busy
 * machine the request thread is scheduled first. Linux only: its thread id comes from /proc/thread-self, and
 * setpriority on a thread id changes that thread alone. Elsewhere, or when not permitted, nothing changes.
 */
export const lowerThisThreadPriority = (): void => {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, BACKGROUND_NICE);
  } catch {
    // Not Linux, or not permitted: the thread keeps the process's priority.
  }
};

/** The nice value of background threads (storage thread, WAL checkpointers). */
export const BACKGROUND_NICE = 10;
