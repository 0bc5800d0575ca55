/**
 * How a trigger follows the event log (the `entry` and `event` triggers): from a durable checkpoint kept in the read
 * store, each matching event handed to `handle` in log order, failures logged and retried with backoff from the last
 * event handled. Delivery is at least once (a crash between a start and the checkpoint replays the events after it);
 * triggers derive each run's id from the source event, so a replay never starts a second run.
 *
 * The checkpoint is stored once the follower has caught up, at most once a second while events keep coming, and on
 * stop: storing it after every batch cost a write on the read side per request or two under load, and all it buys is
 * a shorter replay after a crash, which the derived run ids make harmless.
 *
 * A trigger whose interest changes (the `event` trigger reads only the event types some workflow listens to) gives its
 * filter as a function of the position the subscription starts after, asked at every subscribe; its `one` handler answers 'resubscribe' at an event that changes the interest (a workflow change): the
 * follower then subscribes again right after that event, without reading on in the old subscription, whose cursor may
 * already be past events the new filter takes.
 */
import type { AllFilter, EventStore, RecordedEvent, Subscription } from '../../../eventStore/eventStore.js';
import { cancellableSleep, createFollowHealth, type FollowStatus, type RetryPolicy } from '../../../eventStore/followStatus.js';
import type { Logger } from '../../../logger.js';
import type { ReadStore } from '../../../readStore/readStore.js';

/** At most this often, the checkpoint of a follower that keeps receiving events. */
const CHECKPOINT_EVERY_MS = 1_000;

export interface TriggerFollower {
  /** Resolves once the events since the checkpoint have been handled (or the first attempt failed: boot goes on). */
  start(): Promise<void>;
  status(): FollowStatus;
  stop(): Promise<void>;
}

export const followForTrigger = (deps: {
  /** For logs. */
  name: string;
  eventStore: EventStore;
  readStore: ReadStore;
  /** The checkpoint's name in the read store (beside the projections'). */
  checkpoint: string;
  /** Or asked at every (re)subscribe with the position the subscription starts after (a failure is retried with backoff). */
  filter: AllFilter | ((position: number) => Promise<AllFilter>);
  batchSize: number;
  /** Where a first start (no checkpoint yet) begins: the log's start, or its head (only what happens from now on). */
  firstStart: 'start' | 'head';
  /**
   * Handle a batch of events (what the subscription delivered at once), in log order: given instead of handling them
   * one by one, a trigger can start their runs together (runs.startMany).
   */
  handle: { one: (event: RecordedEvent) => Promise<void | 'resubscribe'> } | { batch: (events: readonly RecordedEvent[]) => Promise<void> };
  logger: Logger;
  retry?: RetryPolicy;
  now?: () => number;
}): TriggerFollower => {
  const now = deps.now ?? Date.now;
  const health = createFollowHealth(deps.retry);
  const pause = cancellableSleep();
  let position = 0;
  let stored = 0;
  let storedAt = 0;
  let subscription: Subscription | null = null;
  let loop: Promise<void> | null = null;
  let stopped = false;

  const store = async (at: number) => {
    if (at <= stored) return;
    await deps.readStore.commit([], { projection: deps.checkpoint, version: 1, position: at });
    stored = at;
    storedAt = now();
  };

  const follow = async (caughtUp: () => void) => {
    while (!stopped) {
      try {
        const filter = typeof deps.filter === 'function' ? await deps.filter(position) : deps.filter;
        if (stopped) return;
        const sub = deps.eventStore.subscribeToAll({ after: position, filter, batchSize: deps.batchSize });
        subscription = sub;
        let resubscribe = false;
        for await (const message of sub) {
          if (stopped) return;
          if (message.kind === 'caughtUp') {
            // Past the events the filter skipped too, so a restart does not read them again.
            position = Math.max(position, message.position);
            await store(position);
            health.delivered(true);
            caughtUp();
            continue;
          }
          if ('batch' in deps.handle) {
            await deps.handle.batch(message.events);
            position = message.events.at(-1)?.position ?? position;
          } else {
            for (const event of message.events) {
              if (stopped) return;
              resubscribe = (await deps.handle.one(event)) === 'resubscribe';
              position = event.position;
              if (resubscribe) break;
            }
          }
          if (now() - storedAt >= CHECKPOINT_EVERY_MS) await store(position);
          health.delivered(false);
          // Not a message more from this subscription: its filter is stale from here on.
          if (resubscribe) break;
        }
        if (stopped) return;
        if (resubscribe) {
          await sub.close();
          continue;
        }
        throw new Error('the event subscription ended');
      } catch (error) {
        if (stopped) return;
        await subscription?.close().catch(() => undefined);
        const { delayMs, attempt } = health.failed(error);
        // Boot does not wait on an event that keeps failing: the server starts, the follower keeps retrying.
        caughtUp();
        deps.logger.error({ err: error, position, attempt, retryInMs: delayMs }, `${deps.name}: following the event log failed; trying again from the last event handled`);
        await pause.sleep(delayMs);
      }
    }
  };

  return {
    async start() {
      stopped = false;
      health.starting();
      const checkpoint = await deps.readStore.getCheckpoint(deps.checkpoint);
      if (checkpoint) position = stored = checkpoint.position;
      else if (deps.firstStart === 'head') await store((position = await deps.eventStore.headPosition()));
      let caughtUp!: () => void;
      const ready = new Promise<void>((resolve) => (caughtUp = resolve));
      loop = follow(caughtUp).finally(() => caughtUp());
      await ready;
    },
    status: () => health.status(position),
    async stop() {
      stopped = true;
      health.stopped();
      pause.cancel();
      await subscription?.close();
      await loop?.catch(() => undefined);
      // What was handled since the last checkpoint need not be handled again on the next start.
      await store(position).catch((error: unknown) => deps.logger.warn({ err: error, position }, `${deps.name}: could not store its checkpoint on stop`));
    },
  };
};
