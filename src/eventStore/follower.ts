import type { AllFilter, EventStore, RecordedEvent, Subscription } from './eventStore.js';
import { createPositionTracker } from './positionTracker.js';

/**
 * Keeps an in-memory view up to date with the event log: catch up with every matching event, then apply live
 * ones. Write-side views (who may call, the routing catalog) use it instead of the read models, which may lag.
 */
export interface Follower {
  /** Resolves once the view has caught up with the log. */
  start(): Promise<void>;
  /** Resolves once the view has applied the event at `position` (false on timeout). */
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

export const followEvents = (eventStore: EventStore, filter: AllFilter, apply: (event: RecordedEvent) => void): Follower => {
  const tracker = createPositionTracker();
  let subscription: Subscription | null = null;
  let loop: Promise<void> | null = null;
  return {
    async start() {
      const sub = eventStore.subscribeToAll({ filter, batchSize: 5000 });
      subscription = sub;
      let caughtUp!: () => void;
      const ready = new Promise<void>((resolve) => (caughtUp = resolve));
      loop = (async () => {
        for await (const message of sub) {
          if (message.kind === 'caughtUp') {
            tracker.advance(message.position);
            caughtUp();
          } else {
            for (const event of message.events) apply(event);
            tracker.advance(message.events[message.events.length - 1]!.position);
          }
        }
      })();
      loop.catch(() => caughtUp());
      await ready;
    },
    waitFor: (position, timeoutMs) => tracker.waitFor(position, timeoutMs),
    async stop() {
      await subscription?.close();
      await loop?.catch(() => undefined);
      tracker.cancelAll();
    },
  };
};
