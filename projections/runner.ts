import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type EventStore, type RecordedEvent, type Subscription } from '../src/eventStore/eventStore.js';
import { cancellableSleep, createFollowHealth, createStartGate, type FollowStatus, type RetryPolicy } from '../src/eventStore/followStatus.js';
import { createPositionTracker } from '../src/eventStore/positionTracker.js';
import { isLeaseLost, type Doc, type DocWrite, type Fence, type Lease, type ProjectionCheckpoint, type ReadStore } from '../src/readStore/readStore.js';
import { readsEvent, type Projection } from './projection.js';

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
  /** Whether this runner holds the projection lease, i.e. writes the read models (for /health). */
  lease(): LeaseStatus;
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

/**
 * A read model rebuilt from the event log by the writer (its checkpoint's version is not the projection's, it has none
 * while the log has events, or it was ahead of the log): reported when it starts and once it has caught up.
 */
export type ReadModelRebuild = {
  readonly projection: string;
  /** The version of the read model found (null: none was stored). */
  readonly fromVersion: number | null;
  readonly toVersion: number;
  readonly reason: 'version' | 'missing' | 'aheadOfLog';
} & ({ readonly phase: 'started' } | { readonly phase: 'done'; readonly events: number; readonly ms: number });

/** One line saying it, for the server's log and the CLIs. */
export const describeRebuild = (rebuild: ReadModelRebuild): string => {
  const versions = rebuild.fromVersion === null || rebuild.fromVersion === rebuild.toVersion ? `version ${rebuild.toVersion}` : `version ${rebuild.fromVersion} → ${rebuild.toVersion}`;
  const why = rebuild.reason === 'aheadOfLog' ? ', as it was ahead of the log' : '';
  if (rebuild.phase === 'started') return `${rebuild.reason === 'missing' ? 'building' : 'rebuilding'} read model ${rebuild.projection} (${versions}) from the event log${why}`;
  return `${rebuild.reason === 'missing' ? 'built' : 'rebuilt'} read model ${rebuild.projection} (${versions}) from the event log: ${rebuild.events.toLocaleString('en-US')} event${rebuild.events === 1 ? '' : 's'} in ${(rebuild.ms / 1000).toFixed(2)} s`;
};

export interface LeaseStatus {
  readonly name: string;
  /** This runner's id as a lease holder. */
  readonly holder: string;
  /** True: this runner writes the read models; false: another process does, and this one follows its progress. */
  readonly held: boolean;
  /** The fencing epoch while held. */
  readonly epoch: number | null;
}

export interface LeaseOptions {
  /** One lease per read store: every runner on the store competes for this name. */
  readonly name?: string;
  readonly holder?: string;
  /** How long a lease lasts without renewal: how long a dead writer's read models stand still before another takes over. */
  readonly ttlMs?: number;
  /** How often the holder renews and the others try to take it (default: a third of the TTL). */
  readonly renewMs?: number;
  /** How often a process without the lease looks at the holder's progress while it waits for it. */
  readonly pollMs?: number;
}

interface State {
  projection: Projection;
  /** Events at or before this position are already in the read model. */
  position: number;
  /** The position last stored as the checkpoint (may trail `position` while only unrelated events pass). */
  stored: number;
  /** When (ms) the checkpoint was last stored. */
  storedAt: number;
  /** Being rebuilt from the log: what is reported once it has caught up (null otherwise). */
  rebuild: { readonly report: Omit<ReadModelRebuild, 'phase' | 'events' | 'ms'>; readonly startedAt: number; events: number } | null;
}

/**
 * A projection that sees only unrelated events stores its checkpoint this often (and when caught up): by time, since
 * positions are not event counts (EventStoreDB's are bytes).
 */
const IDLE_CHECKPOINT_MS = 5_000;
const DEFAULT_LEASE_TTL_MS = 15_000;
const DEFAULT_POLL_MS = 20;
/** How long live events may gather before the next batch is applied (read models are eventually consistent). */
const LIVE_GATHER_MS = 2;

/**
 * One writer per read store: the runner that holds the store's projection lease (see readStore.ts) applies events;
 * its commits carry the lease's epoch, so once another runner has taken the lease (this one stalled past its TTL),
 * they are refused and this runner turns follower. A follower applies nothing: it reads the same events, and for
 * each batch waits until the lease's position (the holder's progress, stored with each of its commits) has passed
 * the batch's last event some projection reads (none: no wait), then advances `position` and tells `onApplied`
 * listeners, so `waitFor` (read-your-writes) and live read-model subscriptions work on every process. Every `renewMs` the holder renews and a follower tries to take the lease; a
 * follower that gets it reads the stored checkpoints and continues from them. A clean stop releases the lease, so
 * another process takes over at once; after a crash, after the TTL.
 *
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
  lease?: LeaseOptions;
  /** The clock of the idle checkpoint cadence (tests). */
  now?: () => number;
  /** Whether this runner holds the lease changed. */
  onLease?: (status: LeaseStatus) => void;
  /** Live: resolves when the next batch may be read (default: after LIVE_GATHER_MS; the storage thread waits longer, cut short by a waitFor). */
  gather?: () => Promise<void>;
  /**
   * Given: a projection whose checkpoint is past the end of the event log is rebuilt from the log, and reported here.
   * Only one store's read models can be ahead of its own log for a bad reason (the log restored from an older copy,
   * or commits lost): the embedded one. Left out elsewhere, where another node's view may simply be newer.
   */
  onAheadOfLog?: (projection: string, checkpoint: number, head: number) => void;
  /** A read model rebuilt from the log: at its start and once caught up (see ReadModelRebuild). */
  onRebuild?: (rebuild: ReadModelRebuild) => void;
}): ProjectionRunner => {
  const { eventStore, readStore, projections } = deps;
  const leaseName = deps.lease?.name ?? 'projections';
  const holder = deps.lease?.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const ttlMs = deps.lease?.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const renewMs = deps.lease?.renewMs ?? Math.max(1, Math.floor(ttlMs / 3));
  const pollMs = deps.lease?.pollMs ?? DEFAULT_POLL_MS;
  const clock = deps.now ?? Date.now;
  /** The lease while this runner writes; null while it follows. */
  let lease: Lease | null = null;
  /** A lease the timer took while following: the loop becomes the writer at its next step. */
  let taken: Lease | null = null;
  let leaseTimer: NodeJS.Timeout | null = null;
  let leaseTick: Promise<void> | null = null;
  /** Where the next subscription starts: the writer's applied position, or what the follower saw applied. */
  let cursor = 0;
  let states: State[] = [];
  let subscription: Subscription | null = null;
  let loop: Promise<void> | null = null;
  let tracker = createPositionTracker();
  let eventsApplied = 0;
  let stopped = false;
  const health = createFollowHealth(deps.retry);
  /** The wait before resubscribing after a failure (cut short by stop()). */
  const backoff = cancellableSleep();
  /** A follower's wait between looks at the holder's progress (cut short by stop()). */
  const poll = cancellableSleep();
  // A lease taken while idle counts as held: the store says so, though the loop takes over at its next event.
  const leaseStatus = (): LeaseStatus => {
    const current = lease ?? taken;
    return { name: leaseName, holder, held: current !== null, epoch: current?.epoch ?? null };
  };
  const fence = (position: number): Fence | undefined =>
    lease ? { lease: leaseName, holder, epoch: lease.epoch, position } : undefined;
  const lost = () => {
    if (!lease) return;
    lease = null;
    deps.onLease?.(leaseStatus());
  };
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

  /** Store every checkpoint that trails what was applied, so a restart starts from here (the writer only). */
  const storeLaggingCheckpoints = async () => {
    if (!lease) return;
    const lagging = states.filter((state) => state.position > state.stored);
    if (lagging.length === 0) return;
    const position = Math.min(...states.map((s) => s.position));
    await readStore.commit(
      [],
      lagging.map((s) => ({ projection: s.projection.name, version: s.projection.version, position: s.position })),
      fence(position),
    );
    const at = clock();
    for (const state of lagging) {
      state.stored = state.position;
      state.storedAt = at;
    }
  };

  /** Caught up: the read models being rebuilt are done. */
  const reportRebuilt = () => {
    for (const state of states) {
      if (!state.rebuild) continue;
      const { report, startedAt, events } = state.rebuild;
      state.rebuild = null;
      deps.onRebuild?.({ ...report, phase: 'done', events, ms: Math.round(performance.now() - startedAt) });
    }
  };

  /** Read every projection's checkpoint (rebuilding those whose version changed): the writer's starting point. */
  const loadStates = async (): Promise<{ loaded: State[]; rebuilt: boolean }> => {
    const loaded: State[] = [];
    let rebuilt = false;
    const at = clock();
    const logHead = await eventStore.headPosition();
    const head = deps.onAheadOfLog ? logHead : Number.POSITIVE_INFINITY;
    for (const projection of projections) {
      const checkpoint = await readStore.getCheckpoint(projection.name);
      // Ahead of the log: it holds what the log no longer has, and would skip what the log writes next up to there.
      if (checkpoint && checkpoint.position > head) deps.onAheadOfLog?.(projection.name, checkpoint.position, head);
      if (checkpoint && checkpoint.version === projection.version && checkpoint.position <= head) {
        loaded.push({ projection, position: checkpoint.position, stored: checkpoint.position, storedAt: at, rebuild: null });
      } else {
        await readStore.reset(projection.name, [projection.collection]);
        // Said when there is something to rebuild from (a new data directory's read models start empty, silently).
        const reason = checkpoint === null ? 'missing' : checkpoint.version !== projection.version ? 'version' : 'aheadOfLog';
        const report = { projection: projection.name, fromVersion: checkpoint?.version ?? null, toVersion: projection.version, reason } as const;
        const told = deps.onRebuild !== undefined && (checkpoint !== null || logHead > 0);
        if (told) deps.onRebuild!({ ...report, phase: 'started' });
        loaded.push({ projection, position: 0, stored: 0, storedAt: at, rebuild: told ? { report, startedAt: performance.now(), events: 0 } : null });
        rebuilt = true;
      }
    }
    return { loaded, rebuilt };
  };

  /** Become the writer with a lease just taken: continue from the stored checkpoints. */
  const becomeWriter = async (acquired: Lease) => {
    const { loaded, rebuilt } = await loadStates();
    states = loaded;
    lease = acquired;
    taken = null;
    const from = Math.min(...states.map((s) => s.position));
    // A rebuild starts below what the former holder reported applied: followers must wait for it again.
    if (rebuilt) await readStore.commit([], [], fence(from));
    cursor = from;
    deps.onLease?.(leaseStatus());
  };

  /** The timer: the holder renews; a follower tries to take a free or expired lease. */
  const tickLease = async () => {
    try {
      const held = lease;
      const renewed = await readStore.acquireLease(leaseName, holder, ttlMs);
      if (held) {
        // Another holder had it in between (a new epoch): what this runner applied since may be overwritten, so it
        // drops the lease and takes it again cleanly later.
        if (!renewed || renewed.epoch !== held.epoch) lost();
        else if (lease) lease = renewed;
      } else if (renewed && !taken) {
        taken = renewed;
        deps.onLease?.(leaseStatus());
      }
    } catch {
      // The store is unreachable: the fence keeps commits safe meanwhile, the loop reports the store's failures, and
      // the next tick tries again.
    }
  };
  const startLeaseTimer = () => {
    leaseTimer = setInterval(() => {
      if (!leaseTick) leaseTick = tickLease().finally(() => (leaseTick = null));
    }, renewMs);
    leaseTimer.unref();
  };

  /** Apply a batch to every projection, then store all their documents and checkpoints in one commit. */
  const applyBatch = async (events: readonly RecordedEvent[]) => {
    const last = events[events.length - 1]!.position;
    const now = clock();
    const writes: DocWrite[] = [];
    const checkpoints: ProjectionCheckpoint[] = [];
    for (const state of states) {
      const { projection } = state;
      const relevant = events.filter((e) => e.position > state.position && readsEvent(projection, e));
      if (relevant.length === 0) {
        // Nothing of its own: store its checkpoint only now and then, so a restart does not replay much.
        if (last > state.stored && now - state.storedAt >= IDLE_CHECKPOINT_MS) checkpoints.push({ projection: projection.name, version: projection.version, position: last });
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
      if (state.rebuild) state.rebuild.events += relevant.length;
      checkpoints.push({ projection: projection.name, version: projection.version, position: last });
    }
    if (checkpoints.length > 0) await readStore.commit(writes, checkpoints, fence(last));
    for (const state of states) {
      state.position = last;
      if (checkpoints.some((c) => c.projection === state.projection.name)) {
        state.stored = last;
        state.storedAt = now;
      }
    }
    eventsApplied += events.length;
    applied(events, last);
  };

  const applied = (events: readonly RecordedEvent[], last: number) => {
    // Only once applied (before waiters hear of it): a batch delivered again and failing again (a full disk) is no
    // progress, so the failures in a row, and the backoff, keep growing.
    delivered(false);
    cursor = last;
    tracker.advance(last);
    if (listeners.size > 0) {
      const batch: AppliedBatch = { position: last, streams: [...new Set(events.map((e) => e.stream))] };
      for (const listener of listeners) listener(batch);
    }
  };

  /** The position of the batch's last event some projection reads (null: none). */
  const lastRead = (events: readonly RecordedEvent[]): number | null => {
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i]!;
      if (projections.some((projection) => readsEvent(projection, event))) return event.position;
    }
    return null;
  };

  /** A follower's batch: wait until the holder's progress passes it. False when this runner took the lease meanwhile. */
  const awaitHolder = async (last: number): Promise<boolean> => {
    while (!stopped && !taken) {
      const current = await readStore.readLease(leaseName);
      if (current && current.position >= last) return true;
      await poll.sleep(pollMs);
    }
    return false;
  };

  /**
   * Take a lease the timer got: true when the stored checkpoints are behind what this subscription has delivered,
   * so it must start again from them.
   */
  const takeOver = async (delivered: number): Promise<boolean> => {
    if (!taken) return false;
    await becomeWriter(taken);
    return cursor < delivered;
  };

  /** Returns 'rewind' when the subscription must start again from `cursor` (this runner became the writer). */
  const run = async (sub: Subscription, from: number, onCaughtUp: () => void): Promise<'ended' | 'rewind'> => {
    let caughtUp = false;
    let seen = from;
    for await (const message of sub) {
      if (await takeOver(seen)) return 'rewind';
      if (message.kind === 'caughtUp') {
        caughtUp = true;
        if (lease) {
          for (const state of states) state.position = Math.max(state.position, message.position);
          await storeLaggingCheckpoints().catch((error: unknown) => {
            if (!isLeaseLost(error)) throw error;
            lost();
          });
        }
        if (lease) {
          cursor = Math.max(cursor, message.position);
          tracker.advance(message.position);
        } else {
          // Only as far as the holder has applied; the next batch waits for the rest.
          const current = await readStore.readLease(leaseName);
          tracker.advance(Math.min(message.position, current?.position ?? 0));
        }
        seen = Math.max(seen, message.position);
        if (lease) reportRebuilt();
        delivered(true);
        deps.onProgress?.({ position: tracker.position, head: message.position, eventsApplied, caughtUp });
        onCaughtUp();
        continue;
      }
      if (paused) await paused.until;
      const last = message.events[message.events.length - 1]!.position;
      if (lease) {
        try {
          await applyBatch(message.events);
        } catch (error) {
          if (!isLeaseLost(error)) throw error;
          lost();
        }
      }
      if (!lease) {
        // The holder stores its progress only with the events some read model reads (a commit per batch of those):
        // what follows the last of them in a batch changes no read model, and is applied once that one is, at once
        // when there is none (the batches before were, in order). Waiting for the batch's last event would wait for
        // a later relevant event or an idle checkpoint: about 5 s for a model alias or an app authorization.
        const needed = lastRead(message.events);
        if (needed !== null && !(await awaitHolder(needed))) {
          if (stopped) return 'ended';
          if (await takeOver(seen)) return 'rewind';
          await applyBatch(message.events);
        } else applied(message.events, last);
      }
      seen = last;
      if (!caughtUp) deps.onProgress?.({ position: tracker.position, head: await eventStore.headPosition(), eventsApplied, caughtUp });
      // Live: let events gather for a moment, so a busy process applies (and stores) them in fewer, larger batches.
      else await (deps.gather?.() ?? new Promise((resolve) => setTimeout(resolve, LIVE_GATHER_MS)));
    }
    return 'ended';
  };

  /**
   * Subscribe from the position every read model has applied; on a failure, log it (onError) and subscribe again
   * from there after a backoff. A batch is committed with its checkpoints at once, so a retry neither skips an
   * event nor applies one twice (and documents' `_pos` would make a replayed event a no-op anyway).
   */
  /** At start, before catching up: ends the start with an event no retry can read (true), instead of retrying. */
  let failStart: (error: unknown) => boolean = () => false;

  const follow = async (onCaughtUp: () => void) => {
    while (!stopped) {
      try {
        // Unfiltered on purpose: the runner then sees every position, so waitFor(position) works for any append.
        const from = cursor;
        const sub = eventStore.subscribeToAll({ after: from, batchSize: deps.batchSize ?? 2000 });
        subscription = sub;
        if ((await run(sub, from, onCaughtUp)) === 'rewind') {
          await sub.close();
          continue;
        }
        if (stopped) return;
        throw new Error('the event subscription ended');
      } catch (error) {
        if (stopped) return;
        await subscription?.close().catch(() => undefined);
        if (failStart(error)) return;
        const retry = health.failed(error);
        deps.onStatus?.(health.status(tracker.position));
        deps.onError?.(error, retry);
        await backoff.sleep(retry.delayMs);
      }
    }
  };

  const runner: ProjectionRunner = {
    get position() {
      return tracker.position;
    },
    status: () => health.status(tracker.position),
    lease: leaseStatus,
    async start() {
      stopped = false;
      health.starting();
      states = [];
      for (const projection of projections) {
        for (const index of projection.indexes ?? []) await readStore.collection(projection.collection).createIndex(index);
      }
      const head = await eventStore.headPosition();
      const acquired = await readStore.acquireLease(leaseName, holder, ttlMs);
      if (acquired) await becomeWriter(acquired);
      // A follower starts from what the holder has applied.
      else cursor = (await readStore.readLease(leaseName))?.position ?? 0;
      cursor = Math.min(cursor, head);
      if (!acquired) deps.onLease?.(leaseStatus());
      tracker = createPositionTracker(cursor);
      startLeaseTimer();
      // An event that cannot be read ends the start, naming it (the read models cannot pass it).
      const gate = createStartGate();
      failStart = gate.refuse;
      loop = follow(gate.signal).finally(gate.signal);
      try {
        await gate.caughtUp;
      } catch (error) {
        await runner.stop();
        throw error;
      }
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
      poll.cancel();
      if (leaseTimer) clearInterval(leaseTimer);
      await leaseTick;
      await subscription?.close();
      await loop;
      await storeLaggingCheckpoints().catch((error: unknown) => {
        if (!isLeaseLost(error)) throw error;
      });
      // Another process takes over at once instead of after the TTL.
      const held = lease ?? taken;
      if (held) await readStore.releaseLease(leaseName, holder, held.epoch);
      taken = null;
      lost();
      tracker.cancelAll();
    },
  };
  return runner;
};

