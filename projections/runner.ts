import { matchesFilter, type EventStore, type RecordedEvent, type Subscription } from '../src/eventStore/eventStore.js';
import { cancellableSleep, createFollowHealth, type FollowStatus, type RetryPolicy } from '../src/eventStore/followStatus.js';
import { createPositionTracker } from '../src/eventStore/positionTracker.js';
import type { Doc, DocWrite, ProjectionCheckpoint, ReadStore } from '../src/readStore/readStore.js';
import type { Projection } from './projection.js';

export interface ProjectionProgress {
  readonly position: number;
  readonly head: number;
  readonly eventsApplied: number;
  readonly caughtUp: boolean;
}

export interface ProjectionRunner {
  /** Bring every read model up to date (rebuilding those whose version changed), then follow live events. */
  start(): Promise<void>;
  /** Resolve once every read model has applied the event at `position` (read-your-writes for mutations). */
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  /** Position up to which every read model is applied. */
  readonly position: number;
  /** How its subscription to the event log is doing (for /health). */
  status(): FollowStatus;
  /** Called after each batch is stored (for live GraphQL subscriptions of read models). */
  onApplied(listener: (applied: AppliedBatch) => void): () => void;
  /** Hold back applying events until resume(): tests use it to show what answers without the read models. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** A batch the read models have stored: the position now applied and the streams whose events it held. */
export interface AppliedBatch {
  readonly position: number;
  readonly streams: readonly string[];
}

interface State {
  projection: Projection;
  /** Events at or before this position are already in the read model. */
  position: number;
  /** The position last stored as the checkpoint (may trail `position` while only unrelated events pass). */
  stored: number;
}

/** A projection that sees only unrelated events stores its checkpoint every this many events (and when caught up). */
const IDLE_CHECKPOINT_EVERY = 10_000;
/** How long live events may gather before the next batch is applied (read models are eventually consistent). */
const LIVE_GATHER_MS = 2;

/**
 * One subscription over all events feeds every projection. Each projection keeps its own checkpoint; events at or
 * before it are skipped, and each document remembers the last position applied to it (`_pos`), so delivering an
 * event twice changes nothing. Writes and the checkpoint are stored together per batch.
 */
export const createProjectionRunner = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  projections: readonly Projection[];
  batchSize?: number;
  onProgress?: (progress: ProjectionProgress) => void;
  /** A failure of the subscription or of applying a batch; the runner resubscribes from its position after `delayMs`. */
  onError?: (error: unknown, retry: { attempt: number; delayMs: number }) => void;
  /** The status changed (state, failures or last error; not position). */
  onStatus?: (status: FollowStatus) => void;
  retry?: RetryPolicy;
  /** Live: resolves when the next batch may be read (default: after LIVE_GATHER_MS; the storage thread waits longer, cut short by a waitFor). */
  gather?: () => Promise<void>;
}): ProjectionRunner => {
  const { eventStore, readStore, projections } = deps;
  let states: State[] = [];
  let subscription: Subscription | null = null;
  let loop: Promise<void> | null = null;
  let tracker = createPositionTracker();
  let eventsApplied = 0;
  let stopped = false;
  const health = createFollowHealth(deps.retry);
  /** The wait before resubscribing after a failure (cut short by stop()). */
  const backoff = cancellableSleep();
  const delivered = (caughtUp: boolean) => {
    if (health.delivered(caughtUp)) deps.onStatus?.(health.status(tracker.position));
  };
  const listeners = new Set<(applied: AppliedBatch) => void>();
  /** While paused: the promise the loop waits on before its next batch, and the function that ends the pause. */
  let paused: { until: Promise<void>; resume: () => void } | null = null;
  const resume = () => {
    paused?.resume();
    paused = null;
  };

  const storeCheckpoint = async (state: State) => {
    await readStore.commit([], { projection: state.projection.name, version: state.projection.version, position: state.position });
    state.stored = state.position;
  };
  /** Store every checkpoint that trails what was applied, so a restart starts from here. */
  const storeLaggingCheckpoints = async () => {
    for (const state of states) if (state.position > state.stored) await storeCheckpoint(state);
  };

  /** Apply a batch to every projection, then store all their documents and checkpoints in one commit. */
  const applyBatch = async (events: readonly RecordedEvent[]) => {
    const last = events[events.length - 1]!.position;
    const writes: DocWrite[] = [];
    const checkpoints: ProjectionCheckpoint[] = [];
    for (const state of states) {
      const { projection } = state;
      const relevant = events.filter((e) => e.position > state.position && matchesFilter(e, projection.filter));
      if (relevant.length === 0) {
        // Nothing of its own: store its checkpoint only now and then, so a restart does not replay much.
        if (last - state.stored >= IDLE_CHECKPOINT_EVERY) checkpoints.push({ projection: projection.name, version: projection.version, position: last });
        continue;
      }
      const ids = new Map<RecordedEvent, string>();
      for (const event of relevant) {
        const id = projection.documentId(event);
        if (id !== null) ids.set(event, id);
      }
      const unique = [...new Set(ids.values())];
      const loaded = await readStore.collection(projection.collection).find({ _id: { $in: unique } });
      const docs = new Map<string, Doc | null>(loaded.map((doc) => [doc._id, doc]));
      for (const [event, id] of ids) {
        const current = docs.get(id) ?? null;
        if (current && typeof current._pos === 'number' && current._pos >= event.position) continue;
        const next = projection.evolve(current, event);
        docs.set(id, next && { ...next, _pos: event.position });
      }
      for (const id of unique) writes.push({ collection: projection.collection, id, doc: docs.get(id) ?? null });
      checkpoints.push({ projection: projection.name, version: projection.version, position: last });
    }
    if (checkpoints.length > 0) await readStore.commit(writes, checkpoints);
    for (const state of states) {
      state.position = last;
      if (checkpoints.some((c) => c.projection === state.projection.name)) state.stored = last;
    }
    eventsApplied += events.length;
    tracker.advance(last);
    if (listeners.size > 0) {
      const applied: AppliedBatch = { position: last, streams: [...new Set(events.map((e) => e.stream))] };
      for (const listener of listeners) listener(applied);
    }
  };

  const run = async (sub: Subscription, onCaughtUp: () => void) => {
    let caughtUp = false;
    for await (const message of sub) {
      if (message.kind === 'caughtUp') {
        caughtUp = true;
        for (const state of states) state.position = Math.max(state.position, message.position);
        await storeLaggingCheckpoints();
        tracker.advance(message.position);
        delivered(true);
        deps.onProgress?.({ position: tracker.position, head: message.position, eventsApplied, caughtUp });
        onCaughtUp();
        continue;
      }
      if (paused) await paused.until;
      delivered(false);
      await applyBatch(message.events);
      if (!caughtUp) deps.onProgress?.({ position: tracker.position, head: await eventStore.headPosition(), eventsApplied, caughtUp });
      // Live: let events gather for a moment, so a busy process applies (and stores) them in fewer, larger batches.
      else await (deps.gather?.() ?? new Promise((resolve) => setTimeout(resolve, LIVE_GATHER_MS)));
    }
  };

  /**
   * Subscribe from the position every read model has applied; on a failure, log it (onError) and subscribe again
   * from there after a backoff. A batch is committed with its checkpoints at once, so a retry neither skips an
   * event nor applies one twice (and documents' `_pos` would make a replayed event a no-op anyway).
   */
  const follow = async (onCaughtUp: () => void) => {
    while (!stopped) {
      try {
        // Unfiltered on purpose: the runner then sees every position, so waitFor(position) works for any append.
        const sub = eventStore.subscribeToAll({ after: tracker.position, batchSize: deps.batchSize ?? 2000 });
        subscription = sub;
        await run(sub, onCaughtUp);
        if (stopped) return;
        throw new Error('the event subscription ended');
      } catch (error) {
        if (stopped) return;
        await subscription?.close().catch(() => undefined);
        const retry = health.failed(error);
        deps.onStatus?.(health.status(tracker.position));
        deps.onError?.(error, retry);
        await backoff.sleep(retry.delayMs);
      }
    }
  };

  return {
    get position() {
      return tracker.position;
    },
    status: () => health.status(tracker.position),
    async start() {
      stopped = false;
      health.starting();
      states = [];
      for (const projection of projections) {
        for (const index of projection.indexes ?? []) await readStore.collection(projection.collection).createIndex(index);
        const checkpoint = await readStore.getCheckpoint(projection.name);
        if (checkpoint && checkpoint.version === projection.version) {
          states.push({ projection, position: checkpoint.position, stored: checkpoint.position });
        } else {
          await readStore.reset(projection.name, [projection.collection]);
          states.push({ projection, position: 0, stored: 0 });
        }
      }
      const from = Math.min(...states.map((s) => s.position), await eventStore.headPosition());
      tracker = createPositionTracker(from);
      let signalCaughtUp!: () => void;
      const caughtUp = new Promise<void>((resolve) => (signalCaughtUp = resolve));
      loop = follow(signalCaughtUp).finally(signalCaughtUp);
      await caughtUp;
    },
    waitFor: (target, timeoutMs) => tracker.waitFor(target, timeoutMs),
    onApplied(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async pause() {
      if (paused) return;
      let resume!: () => void;
      const until = new Promise<void>((resolve) => (resume = resolve));
      paused = { until, resume };
    },
    resume: async () => resume(),
    async stop() {
      resume();
      stopped = true;
      health.stopped();
      backoff.cancel();
      await subscription?.close();
      await loop;
      await storeLaggingCheckpoints();
      tracker.cancelAll();
    },
  };
};

