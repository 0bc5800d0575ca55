/** Tracks how far a consumer of the event log has applied events, and lets callers wait for a position. */
export interface PositionTracker {
  readonly position: number;
  advance(to: number): void;
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  /** Resolve every pending wait with false (on shutdown). */
  cancelAll(): void;
}

export const createPositionTracker = (initial = 0): PositionTracker => {
  let position = initial;
  const waiters = new Set<{ position: number; resolve: (ok: boolean) => void }>();
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
          waiter.resolve(true);
        }
      }
    },
    waitFor(target, timeoutMs = 5_000) {
      if (target <= position) return Promise.resolve(true);
      return new Promise((resolve) => {
        const waiter = { position: target, resolve };
        waiters.add(waiter);
        setTimeout(() => {
          if (waiters.delete(waiter)) resolve(false);
        }, timeoutMs).unref();
      });
    },
    cancelAll() {
      for (const waiter of waiters) waiter.resolve(false);
      waiters.clear();
    },
  };
};
