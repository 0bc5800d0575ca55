/**
 * Waiting in tests without betting on the host's speed. CI runs the suite on a busy 2-CPU host, where a fixed sleep
 * or a deadline of a second is sometimes too short: tests wait for the condition itself (or the promise that signals
 * it), and the deadline here only turns a hang into a failure, never what a test proves. How fast something happens
 * is measured in bench/, not asserted here.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Long enough for a loaded host; short enough that several waits fit in the suite's 30 s per test. */
export const DEADLINE_MS = 15_000;

/** Polls `probe` until it answers a truthy value, which it returns; throws naming `what` past the deadline. */
export const eventually = async <T>(
  what: string,
  probe: () => T | Promise<T>,
  { timeoutMs = DEADLINE_MS, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<Exclude<T, null | undefined | false | 0 | ''>> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Exclude<T, null | undefined | false | 0 | ''>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
};

/** Awaits `promise`, or throws naming `what` past the deadline. */
export const within = async <T>(what: string, promise: Promise<T>, timeoutMs = DEADLINE_MS): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
};

/**
 * Until every read model has applied what the event log holds now: after it, a query shows every write made before
 * the call (a test that checks something did not happen then cannot pass only because the read side lags).
 */
export const readModelsCaughtUp = async (core: {
  eventStore: { headPosition(): Promise<number> };
  runner: { waitFor(position: number, timeoutMs?: number): Promise<boolean> };
}): Promise<void> => {
  const head = await core.eventStore.headPosition();
  if (!(await core.runner.waitFor(head, DEADLINE_MS))) throw new Error(`the read models did not reach position ${head} in ${DEADLINE_MS} ms`);
};

/**
 * Watches this process's event loop for stalls (a descheduled process on a loaded host, a long GC): what a timer
 * that fired late saw. A behaviour that the code allows only after a stall (the scheduler fires only the latest of
 * the due times a late timer passed) is then told apart from a bug.
 */
export const watchStalls = () => {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    /** The longest delay seen so far, in ms. */
    longestMs: () => histogram.max / 1e6,
    stop: () => histogram.disable(),
  };
};
