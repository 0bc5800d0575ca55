import { UnreadableEventError } from '../errors.js';

/**
 * What every consumer of the event log (the in-memory followers, the projection runner) reports to /health, and how
 * it waits before subscribing again after a failure.
 */

export type FollowState = 'catchingUp' | 'live' | 'retrying' | 'stopped';

export interface FollowStatus {
  /** The last position applied. */
  readonly position: number;
  /** `retrying` from a failure until a new subscription delivers again. */
  readonly state: FollowState;
  /** Failures since start, each one retried. */
  readonly failures: number;
  /** The latest failure, kept after recovery so an operator can see what happened. */
  readonly lastError: { readonly message: string; readonly at: string } | null;
}

export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 100, maxMs: 30_000 };

/**
 * Exponential and capped, with jitter (half fixed, half random) so consumers that failed together (the store went
 * away under all of them) do not come back in step. `attempt` counts failures in a row, from 1.
 */
export const retryDelay = (attempt: number, policy: RetryPolicy, random: () => number = Math.random): number => {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
};

/** A wait that `cancel()` ends early (on stop). */
export const cancellableSleep = () => {
  let wake: (() => void) | null = null;
  return {
    sleep: (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = null;
          resolve();
        }, ms);
        wake = () => {
          clearTimeout(timer);
          wake = null;
          resolve();
        };
      }),
    cancel: () => wake?.(),
  };
};

/**
 * The bookkeeping behind a FollowStatus. `delivered` after each message of a subscription (true when it is the
 * caught-up marker), `failed` after a failure (returns how long to wait before subscribing again). Each returns
 * whether the state, failures or last error changed, so a caller can pass the change on (the storage thread does).
 */
export const createFollowHealth = (retry: RetryPolicy = DEFAULT_RETRY) => {
  let state: FollowState = 'catchingUp';
  let everCaughtUp = false;
  let failures = 0;
  let inARow = 0;
  let lastError: FollowStatus['lastError'] = null;
  return {
    status: (position: number): FollowStatus => ({ position, state, failures, lastError }),
    starting() {
      state = 'catchingUp';
      everCaughtUp = false;
    },
    delivered(caughtUp: boolean): boolean {
      everCaughtUp ||= caughtUp;
      const next: FollowState = everCaughtUp ? 'live' : 'catchingUp';
      if (next === state) return false;
      state = next;
      inARow = 0;
      return true;
    },
    failed(error: unknown): { delayMs: number; attempt: number } {
      failures += 1;
      inARow += 1;
      state = 'retrying';
      lastError = { message: errorMessage(error), at: new Date().toISOString() };
      return { delayMs: retryDelay(inARow, retry), attempt: inARow };
    },
    stopped() {
      state = 'stopped';
    },
  };
};

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * A follower's start: `caughtUp` resolves once `signal` says so, or rejects with an event that cannot be read, which
 * fails every retry alike (`refuse`, true when it ended the start): the start stops naming it rather than waiting for
 * ever. Once caught up, `refuse` declines (false), and a failure is retried and shown on /health as any other.
 */
export const createStartGate = () => {
  let ready = false;
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const caughtUp = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    caughtUp,
    signal: () => {
      ready = true;
      resolve();
    },
    refuse: (error: unknown): boolean => {
      if (ready || !(error instanceof UnreadableEventError)) return false;
      reject(error);
      return true;
    },
  };
};
