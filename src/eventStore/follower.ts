import type { Logger } from '../logger.js';
import type { AllFilter, EventStore, RecordedEvent, Subscription } from './eventStore.js';
import { cancellableSleep, createFollowHealth, createStartGate, type FollowStatus, type RetryPolicy } from './followStatus.js';
import { createPositionTracker } from './positionTracker.js';

/**
 * Keeps an in-memory view up to date with the event log: catch up with every matching event, then apply live
 * ones. Write-side views (who may call, the routing catalog) use it instead of the read models, which may lag.
 */
export interface Follower {
  /**
   * Resolves once the view has caught up with the log (retrying failures until it has, or until stop). Rejects with an
   * event it cannot read (UnreadableEventError): no retry reads it, so the start stops naming it instead of waiting.
   */
  start(): Promise<void>;
  /** Resolves once the view has applied the event at `position` (false on timeout). */
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  /** For /health. A filtered follower's position is its last matching event, which may trail the head when healthy. */
  status(): FollowStatus;
  stop(): Promise<void>;
}

/**
 * A failed subscription (or a failing `apply`) is logged and retried, with backoff, from the last event applied:
 * the view neither misses an event nor applies one twice, and never silently stops following.
 */
export const followEvents = (
  eventStore: EventStore,
  filter: AllFilter,
  apply: (event: RecordedEvent) => void,
  options: {
    name: string;
    logger: Logger;
    retry?: RetryPolicy;
    /** Exclusive: follow from after this position instead of the beginning (a view that loads its state itself). */
    after?: number;
  },
): Follower => {
  const { name, logger } = options;
  const tracker = createPositionTracker(options.after);
  const health = createFollowHealth(options.retry);
  const pause = cancellableSleep();
  let subscription: Subscription | null = null;
  let loop: Promise<void> | null = null;
  let stopped = false;

  /** At start, before catching up: ends the start with an event no retry can read (true), instead of retrying. */
  let failStart: (error: unknown) => boolean = () => false;

  const follow = async (caughtUp: () => void) => {
    while (!stopped) {
      let applied = tracker.position;
      try {
        const sub = eventStore.subscribeToAll({ after: applied, filter, batchSize: 5000 });
        subscription = sub;
        for await (const message of sub) {
          if (message.kind === 'caughtUp') {
            tracker.advance(message.position);
            health.delivered(true);
            caughtUp();
            continue;
          }
          try {
            for (const event of message.events) {
              apply(event);
              applied = event.position;
            }
          } finally {
            // Up to the last event applied, so a retry resumes right after it.
            tracker.advance(applied);
          }
          health.delivered(false);
        }
        if (stopped) return;
        throw new Error('the event subscription ended');
      } catch (error) {
        if (stopped) return;
        await subscription?.close().catch(() => undefined);
        if (failStart(error)) return;
        const { delayMs, attempt } = health.failed(error);
        logger.error({ err: error, follower: name, position: tracker.position, attempt, retryInMs: delayMs }, `${name}: following the event log failed; resubscribing from its last position`);
        await pause.sleep(delayMs);
      }
    }
  };

  return {
    async start() {
      stopped = false;
      health.starting();
      const gate = createStartGate();
      failStart = (error) => {
        if (!gate.refuse(error)) return false;
        stopped = true;
        health.stopped();
        return true;
      };
      loop = follow(gate.signal).finally(gate.signal);
      await gate.caughtUp;
    },
    waitFor: (position, timeoutMs) => tracker.waitFor(position, timeoutMs),
    status: () => health.status(tracker.position),
    async stop() {
      stopped = true;
      health.stopped();
      pause.cancel();
      await subscription?.close();
      await loop?.catch(() => undefined);
      tracker.cancelAll();
    },
  };
};
