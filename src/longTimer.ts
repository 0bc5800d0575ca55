/**
 * A timer for a delay computed from a designer's or caller's input (a run's 30-day deadline, a synchronous webhook's
 * wait). setTimeout holds at most 2^31 - 1 ms (24.8 days): past that Node fires after 1 ms, with a
 * TimeoutOverflowWarning, so a step of a run with `settings.timeoutSeconds` 2,592,000 was aborted at once as timed out,
 * and a webhook waiting on such a run polled its stream every millisecond. This one waits in parts of at most that.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

/** Calls `callback` once `delayMs` have passed (0 for a negative delay), however long that is. */
export const setLongTimeout = (callback: () => void, delayMs: number, options: { readonly unref?: boolean } = {}): LongTimer => {
  const due = performance.now() + Math.max(0, delayMs);
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = due - performance.now();
    timer = left > MAX_TIMEOUT_MS ? setTimeout(arm, MAX_TIMEOUT_MS) : setTimeout(callback, Math.max(0, left));
    if (options.unref) timer.unref();
  };
  arm();
  return { clear: () => clearTimeout(timer) };
};
