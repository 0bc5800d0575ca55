/** Tracks how far a consumer of the event log has applied events, and lets callers wait for a position. */
import { setLongTimeout, type LongTimer } from '../longTimer.js';

export interface PositionTracker {
  readonly position: number;
  advance(to: number): void;
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  /** Resolve every pending wait with false (on shutdown). */
  cancelAll(): void;
}

export const createPositionTracker = (initial = 0): PositionTracker => {
  let position = initial;
  const waiters = new Set<{ position: number; resolve: (ok: boolean) => void; timer?: LongTimer }>();
  return {
    get position() {
      return position;
    },
    advance(to) {
      if (to <= position) return;
      position = to;
      for (const waiter of waiters) {
        if (waiter.position <= position) {
          waiters.delete(waiter);
          waiter.timer?.clear();
          waiter.resolve(true);
        }
      }
    },
    waitFor(target, timeoutMs = 5_000) {
      if (target <= position) return Promise.resolve(true);
      return new Promise((resolve) => {
        const waiter: { position: number; resolve: (ok: boolean) => void; timer?: LongTimer } = { position: target, resolve };
        waiters.add(waiter);
        // A synchronous webhook waits as long as its run's timeout: up to 30 days, past setTimeout's 24.8 (and cleared
        // once reached, not left pending that long).
        waiter.timer = setLongTimeout(
          () => {
            if (waiters.delete(waiter)) resolve(false);
          },
          timeoutMs,
          { unref: true },
        );
      });
    },
    cancelAll() {
      for (const waiter of waiters) {
        waiter.timer?.clear();
        waiter.resolve(false);
      }
      waiters.clear();
    },
  };
};
