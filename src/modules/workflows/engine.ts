/**
 * The workflow engine's background work runs on one process at a time: the holder of the `workflows` lease in the
 * read store (the port's lease, as the projection writer's). The holder drives and admits runs (runs.resumeAll on
 * taking the lease), follows the entry and event triggers from their stored checkpoints and runs the scheduler; the
 * other processes serve requests and hand the runs they start over to it (run.api.ts).
 *
 * Every `renewMs` each process asks for the lease: the holder renews it, the others take it once it is free (a clean
 * stop releases it) or expired (a holder gone for `ttlMs`). A holder that cannot renew stops its background work
 * before its lease can expire, by its own clock (`ttlMs - renewMs` after the last renewal it asked for, which the
 * store granted no earlier), so a new holder never resumes a run whose step the former one still performs.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Cancellation, type AbortLike } from '../../cancellation.js';
import type { Logger } from '../../logger.js';
import type { Lease, ReadStore } from '../../readStore/readStore.js';
import type { RunsApi } from './run.api.js';

export const WORKFLOWS_LEASE = 'workflows';
/** As the projection writer's: how long runs and triggers stand still when their holder dies. */
const DEFAULT_TTL_MS = 15_000;

/** A trigger's background work (the entry and event followers, the scheduler). */
export interface Background {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface EngineStatus {
  readonly lease: string;
  readonly holder: string;
  /** Whether this process runs the workflow engine's background work now. */
  readonly held: boolean;
  readonly epoch: number | null;
}

export const createWorkflowEngine = (deps: {
  readStore: Pick<ReadStore, 'acquireLease' | 'releaseLease'>;
  runs: Pick<RunsApi, 'resumeAll' | 'pause' | 'drain'>;
  /** Built afresh on each takeover, in start order (each starts from its stored checkpoint; stopped in reverse). */
  triggers: () => Background[];
  logger: Logger;
  lease?: { holder?: string; ttlMs?: number; renewMs?: number };
  now?: () => number;
}) => {
  const holder = deps.lease?.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const ttlMs = deps.lease?.ttlMs ?? DEFAULT_TTL_MS;
  const renewMs = deps.lease?.renewMs ?? Math.max(1, Math.floor(ttlMs / 3));
  const now = deps.now ?? Date.now;
  const { logger } = deps;
  /** The lease as the store last granted it to this process, until it is refused or runs out by this process's clock. */
  let current: Lease | null = null;
  /** The epoch whose work (runs taken over, triggers started) runs now; null while none does. */
  let working: number | null = null;
  let background: Background[] = [];
  let timer: NodeJS.Timeout | null = null;
  let expiry: NodeJS.Timeout | null = null;
  let ticking: Promise<void> | null = null;
  let stopped = false;
  /** A graceful stop is under way: no takeover, but the lease is renewed while the steps in flight finish. */
  let leaving = false;
  /** Aborted to end a graceful stop's wait for the steps in flight: at the grace period's end, or when the lease is lost. */
  let drainCut: Cancellation | null = null;
  /** Takeovers and stops of the work one after the other (renewals do not wait for them). */
  let transitions: Promise<void> = Promise.resolve();
  const serially = (work: () => Promise<void>): Promise<void> =>
    (transitions = transitions.then(work).catch((error: unknown) => logger.error({ err: error }, 'workflow engine: a lease transition failed')));

  /** `grace`: let the steps in flight finish until it aborts (a graceful stop); otherwise they stop at once. */
  const stopWork = async (reason: string, grace?: AbortLike): Promise<void> => {
    if (working === null) return;
    const epoch = working;
    working = null;
    logger.warn({ lease: WORKFLOWS_LEASE, holder, epoch, reason }, 'workflow engine: this process stops running workflows in the background');
    const started = background.reverse();
    background = [];
    for (const work of started) await work.stop().catch((error: unknown) => logger.error({ err: error }, 'workflow engine: a trigger failed to stop'));
    if (grace) await deps.runs.drain(grace);
    await deps.runs.pause();
  };

  const startWork = async (lease: Lease): Promise<void> => {
    // Lost again before its turn came (or this process is stopping).
    if (stopped || leaving || current?.epoch !== lease.epoch || working === lease.epoch) return;
    working = lease.epoch;
    logger.info({ lease: WORKFLOWS_LEASE, holder, epoch: lease.epoch }, 'workflow engine: this process runs workflows in the background');
    try {
      await deps.runs.resumeAll();
      for (const work of deps.triggers()) {
        background.push(work);
        await work.start();
      }
    } catch (error) {
      // Half taken over: give the lease back, so that this process or another takes over cleanly on a next tick.
      logger.error({ err: error }, 'workflow engine: taking over failed; letting the lease go');
      await stopWork('the takeover failed');
      if (current?.epoch === lease.epoch) current = null;
      await deps.readStore.releaseLease(WORKFLOWS_LEASE, holder, lease.epoch).catch(() => undefined);
    }
  };

  const lost = (reason: string): void => {
    current = null;
    if (expiry) clearTimeout(expiry);
    expiry = null;
    // A graceful stop waiting for steps: they stop now, before another holder may resume their runs.
    drainCut?.abort(new Error(reason));
    void serially(() => stopWork(reason));
  };

  /** Ask for the lease (renew it, or take it when free or expired). */
  const tick = async (): Promise<void> => {
    const asked = now();
    let lease: Lease | null;
    try {
      lease = await deps.readStore.acquireLease(WORKFLOWS_LEASE, holder, ttlMs);
    } catch (error) {
      // The expiry timer stops the work in time if this lasts; a follower just tries again.
      if (current) logger.warn({ err: error }, 'workflow engine: could not renew the workflows lease');
      return;
    }
    // Stopped, or stopping without the lease (a lease taken now would only be given back).
    if (stopped || (leaving && current === null)) {
      if (lease) await deps.readStore.releaseLease(WORKFLOWS_LEASE, holder, lease.epoch).catch(() => undefined);
      return;
    }
    if (lease === null) {
      if (current) lost('another process holds the workflows lease');
      return;
    }
    // Another holder had it in between (a new epoch): what it did with the runs is not known here, so start afresh.
    if (current && current.epoch !== lease.epoch) lost('the workflows lease passed to another process in between');
    const taken = current === null;
    current = lease;
    if (expiry) clearTimeout(expiry);
    // The store counts the lease from no earlier than `asked`: stop before it can run out there.
    expiry = setTimeout(() => lost('the workflows lease could not be renewed in time'), Math.max(0, asked + ttlMs - renewMs - now()));
    expiry.unref();
    // Not awaited: renewals go on while a takeover waits for the read models.
    if (taken) void serially(() => startWork(lease));
  };
  const schedule = (): Promise<void> => {
    if (!ticking) ticking = tick().finally(() => (ticking = null));
    return ticking;
  };

  return {
    /** Take the lease if it is free (then resume the runs and start the triggers before answering), and keep asking. */
    async start(): Promise<void> {
      stopped = false;
      await schedule();
      await transitions;
      timer = setInterval(() => void schedule(), renewMs);
      timer.unref();
    },
    status: (): EngineStatus => ({ lease: WORKFLOWS_LEASE, holder, held: working !== null, epoch: working }),
    /**
     * Stop the background work and let the lease go, so another process takes over at once. `grace` (a graceful stop):
     * the triggers stop at once, the steps in flight may finish until it aborts (the lease is renewed meanwhile; lost,
     * they stop at once), then the rest stop unrecorded and run again at the next start.
     */
    async stop(options: { grace?: AbortLike } = {}): Promise<void> {
      const { grace } = options;
      if (grace && !leaving) {
        leaving = true;
        const cut = (drainCut = new Cancellation());
        const passOn = () => cut.abort(grace.reason);
        if (grace.aborted) passOn();
        else grace.addEventListener('abort', passOn, { once: true });
        await serially(() => stopWork('this process is stopping', cut));
        grace.removeEventListener('abort', passOn);
        drainCut = null;
      }
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await ticking;
      const epoch = current?.epoch;
      lost('this process is stopping');
      await transitions;
      if (epoch !== undefined) await deps.readStore.releaseLease(WORKFLOWS_LEASE, holder, epoch).catch(() => undefined);
    },
  };
};

export type WorkflowEngine = ReturnType<typeof createWorkflowEngine>;
