/**
 * The scheduler: fires one run per due time of every enabled workflow with a `schedule` trigger.
 *
 * What it knows of workflows comes from a follower of the `workflow` category of the log (created, updated with a new
 * cron, enabled, disabled, deleted: applied live, no restart needed). Due times sit in one min-heap with one timer
 * for the earliest, so 10,000 schedules cost one timer, and a tick pops only what is due.
 *
 * One run per due time, across restarts and processes: the run id is derived from (workflow id, due time), and the
 * runs API answers the existing run for a taken id (the run stream's `no_stream` expectation), so two processes, or a
 * restart re-firing a due time, start it once. That run stream is also the durable record of "this due time fired":
 * no separate checkpoint is written (nothing extra per fire), and "was the latest due time missed?" is answered by
 * starting it with its derived id — a new run if it was missed, the existing one if not.
 *
 * Catch-up (on start, from the trigger's `catchUp`): "one" fires the latest due time at or before now once, if the
 * schedule was already in force then (not before its workflow was created, given this schedule or re-enabled);
 * "none" skips every due time that passed while the server was down and waits for the next. While running, a timer
 * late by more than a period (a stalled process) fires only the latest due time it passed, never a burst.
 */
import { createHash } from 'node:crypto';
import type { Cron } from 'croner';
import type { ProjectionRunner } from '../../../../projections/runner.js';
import { ConflictError, NotFoundError } from '../../../errors.js';
import type { EventStore, RecordedEvent } from '../../../eventStore/eventStore.js';
import { followEvents, type Follower } from '../../../eventStore/follower.js';
import type { Logger } from '../../../logger.js';
import type { WorkflowTrigger } from '../definition.js';
import type { RunsApi } from '../run.api.js';
import { WORKFLOW_CATEGORY, type WorkflowEvent } from '../workflow.events.js';
import { compileSchedule, latestDue, nextDue } from './cron.js';

type ScheduleTrigger = Extract<WorkflowTrigger, { type: 'schedule' }>;

/** The trigger payload of a scheduled run (`trigger.scheduledAt` in expressions). */
export interface ScheduledTrigger {
  readonly type: 'schedule';
  /** The due time this run is for (its identity). */
  readonly scheduledAt: string;
  /** When the scheduler fired it (later than scheduledAt by the timer's lag, or by a catch-up). */
  readonly firedAt: string;
}

/** The run of a workflow's due time: the same id in every process and after every restart. */
export const scheduledRunId = (workflowId: string, due: number): string =>
  `run_${createHash('sha256').update(`schedule\n${workflowId}\n${new Date(due).toISOString()}`).digest('hex').slice(0, 40)}`;

/**
 * Fires handed to the runs API at once (startMany): a burst of due times (10,000 workflows on the same second) is
 * started in a few batches whose appends share transactions and fsyncs, every run of a batch recorded before any of
 * them runs its steps.
 */
const MAX_FIRES_PER_BATCH = 10_000;
/** A fire that failed for a reason other than the workflow's state (the store unreachable) is tried this often. */
const FIRE_ATTEMPTS = 3;
/** setTimeout cannot wait past 2^31 - 1 ms; a longer wait is taken in parts. */
const MAX_TIMER_MS = 6 * 60 * 60 * 1_000;

/** What the follower knows of one workflow. */
interface Known {
  readonly accountId: string;
  enabled: boolean;
  trigger: WorkflowTrigger;
  /** Epoch ms since which the current schedule has been in force (created, given this schedule, or re-enabled). */
  since: number;
  /** The log position of the workflow's last event: a fire waits for the read models to have it (the runs API reads them). */
  position: number;
}

/** A workflow being scheduled: its compiled cron and next due time. `generation` tells stale heap items apart. */
interface Scheduled {
  readonly cron: Cron;
  /** The cron and time zone: schedules with the same key have the same due times. */
  readonly key: string;
  readonly generation: number;
  due: number;
}

interface HeapItem {
  readonly due: number;
  readonly workflowId: string;
  readonly generation: number;
}

/** A binary min-heap by due time. */
const createHeap = () => {
  const items: HeapItem[] = [];
  const swap = (a: number, b: number) => ([items[a], items[b]] = [items[b]!, items[a]!]);
  return {
    get size() {
      return items.length;
    },
    peek: (): HeapItem | undefined => items[0],
    push(item: HeapItem) {
      items.push(item);
      let at = items.length - 1;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (items[parent]!.due <= items[at]!.due) break;
        swap(at, parent);
        at = parent;
      }
    },
    pop(): HeapItem | undefined {
      const top = items[0];
      const last = items.pop();
      if (items.length > 0 && last !== undefined) {
        items[0] = last;
        let at = 0;
        for (;;) {
          const left = at * 2 + 1;
          const right = left + 1;
          let least = at;
          if (left < items.length && items[left]!.due < items[least]!.due) least = left;
          if (right < items.length && items[right]!.due < items[least]!.due) least = right;
          if (least === at) break;
          swap(at, least);
          at = least;
        }
      }
      return top;
    },
  };
};

const sameSchedule = (a: WorkflowTrigger, b: WorkflowTrigger): boolean =>
  a.type === 'schedule' && b.type === 'schedule' && a.cron === b.cron && a.timezone === b.timezone && a.catchUp === b.catchUp;

export const createScheduler = (deps: {
  eventStore: EventStore;
  runner: Pick<ProjectionRunner, 'waitFor'>;
  runs: Pick<RunsApi, 'start' | 'startMany'>;
  logger: Logger;
  now: () => Date;
}) => {
  const known = new Map<string, Known>();
  const scheduled = new Map<string, Scheduled>();
  const heap = createHeap();
  let generations = 0;
  let live = false;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let armedFor = Infinity;

  type Fire = { workflowId: string; due: number; firedAt: number };
  const fires: Fire[] = [];
  let inFlight = 0;
  let drained: (() => void) | null = null;

  const request = (job: Fire) => {
    const workflow = known.get(job.workflowId);
    if (!workflow) return null;
    const runId = scheduledRunId(job.workflowId, job.due);
    const trigger: ScheduledTrigger = { type: 'schedule', scheduledAt: new Date(job.due).toISOString(), firedAt: new Date(job.firedAt).toISOString() };
    const caller = { principal: { accountId: workflow.accountId, keyId: null, roles: new Set<never>() }, requestId: `schedule:${runId}` };
    return { workflow, runId, trigger, caller };
  };

  /** Disabled or deleted since the follower saw it: the due time is not the workflow's any more. */
  const refused = (error: unknown): error is ConflictError | NotFoundError => error instanceof ConflictError || error instanceof NotFoundError;

  /** One fire on its own, tried again after a failure that is not the workflow's state (the store unreachable). */
  const fire = async (job: Fire, firstError: unknown): Promise<void> => {
    const prepared = request(job);
    if (!prepared) return;
    const { runId, trigger, caller } = prepared;
    let error = firstError;
    for (let attempt = 1; !stopped; attempt++) {
      if (attempt >= FIRE_ATTEMPTS) {
        deps.logger.error({ err: error, workflowId: job.workflowId, scheduledAt: trigger.scheduledAt }, 'schedule: firing failed; this due time is missed');
        return;
      }
      deps.logger.warn({ err: error, workflowId: job.workflowId, scheduledAt: trigger.scheduledAt, attempt }, 'schedule: firing failed; trying again');
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      try {
        await deps.runs.start(caller, job.workflowId, { ...trigger }, { runId, readYourWrites: false });
        deps.logger.debug({ workflowId: job.workflowId, runId, scheduledAt: trigger.scheduledAt }, 'schedule: fired');
        return;
      } catch (next) {
        if (refused(next)) {
          deps.logger.info({ workflowId: job.workflowId, scheduledAt: trigger.scheduledAt, reason: next.message }, 'schedule: not fired');
          return;
        }
        error = next;
      }
    }
  };

  /** Fire a batch of due times at once; what failed for another reason than the workflow's state is tried again alone. */
  const fireBatch = async (jobs: readonly Fire[]): Promise<void> => {
    const prepared = jobs.map((job) => ({ job, request: request(job) }));
    const requests = prepared.flatMap(({ job, request }) => (request === null ? [] : [{ job, request }]));
    if (requests.length === 0) return;
    const startedAt = performance.now();
    try {
      // The runs API reads the workflows from their streams; the read models are waited for only up to the newest change seen.
      await deps.runner.waitFor(Math.max(...requests.map(({ request }) => request.workflow.position)), 5_000);
      const results = await deps.runs.startMany(
        requests.map(({ job, request: { runId, trigger, caller } }) => ({ caller, workflowId: job.workflowId, trigger: { ...trigger }, options: { runId } })),
      );
      const retries: Promise<void>[] = [];
      results.forEach((result, index) => {
        const { job, request } = requests[index]!;
        if (result.status === 'fulfilled') return;
        if (refused(result.reason)) {
          deps.logger.info({ workflowId: job.workflowId, scheduledAt: request.trigger.scheduledAt, reason: result.reason.message }, 'schedule: not fired');
          return;
        }
        retries.push(fire(job, result.reason));
      });
      deps.logger.info({ fired: results.length - retries.length, retried: retries.length, durableAfterMs: Math.round(performance.now() - startedAt) }, 'schedule: due times fired');
      await Promise.all(retries);
    } catch (error) {
      await Promise.all(requests.map(({ job }) => fire(job, error)));
    }
  };

  const pump = (): void => {
    if (stopped || inFlight > 0 || fires.length === 0) return;
    const batch = fires.splice(0, MAX_FIRES_PER_BATCH);
    inFlight++;
    void fireBatch(batch).finally(() => {
      inFlight--;
      pump();
      if (inFlight === 0 && fires.length === 0) drained?.();
    });
  };
  const enqueue = (workflowId: string, due: number, firedAt: number) => {
    fires.push({ workflowId, due, firedAt });
    // Every fire of this tick (or catch-up pass) goes in one batch: the batch starts once the tick is done.
    if (fires.length === 1) queueMicrotask(pump);
  };

  const arm = (): void => {
    if (stopped) return;
    // Drop stale items at the top, so the timer is armed for a due time that will fire.
    for (let top = heap.peek(); top !== undefined && scheduled.get(top.workflowId)?.generation !== top.generation; top = heap.peek()) heap.pop();
    const top = heap.peek();
    if (top === undefined) {
      if (timer) clearTimeout(timer);
      timer = null;
      armedFor = Infinity;
      return;
    }
    if (timer && armedFor <= top.due) return;
    if (timer) clearTimeout(timer);
    armedFor = top.due;
    timer = setTimeout(tick, Math.min(MAX_TIMER_MS, Math.max(0, top.due - deps.now().getTime())));
  };

  const tick = (): void => {
    timer = null;
    armedFor = Infinity;
    const now = deps.now().getTime();
    // Many schedules share a cron (10,000 due in the same second): each due time after another is computed once per tick.
    const following = new Map<string, number | null>();
    const nextOf = (entry: Scheduled, after: number): number | null => {
      const key = `${entry.key}\n${after}`;
      let due = following.get(key);
      if (due === undefined) following.set(key, (due = nextDue(entry.cron, after)));
      return due;
    };
    for (let top = heap.peek(); top !== undefined && top.due <= now; top = heap.peek()) {
      heap.pop();
      const entry = scheduled.get(top.workflowId);
      if (entry?.generation !== top.generation) continue;
      // Late by more than a period (a stalled process): only the latest due time passed fires.
      const afterTop = nextOf(entry, top.due);
      const due = afterTop !== null && afterTop <= now ? (latestDue(entry.cron, now) ?? top.due) : top.due;
      enqueue(top.workflowId, due, now);
      const after = due === top.due ? afterTop : nextOf(entry, due);
      if (after === null) scheduled.delete(top.workflowId);
      else heap.push({ due: (entry.due = after), workflowId: top.workflowId, generation: entry.generation });
    }
    arm();
  };

  /** (Re)schedule a workflow from what the follower knows; `catchUp`: on start, fire a missed due time as configured. */
  const schedule = (workflowId: string, catchUp: boolean): void => {
    scheduled.delete(workflowId);
    const workflow = known.get(workflowId);
    if (!workflow?.enabled || workflow.trigger.type !== 'schedule') return;
    const trigger: ScheduleTrigger = workflow.trigger;
    const compiled = compileSchedule(trigger);
    if (!compiled.ok) {
      // Checked when saved; a time zone the runtime no longer knows (an ICU update) stops the schedule, loudly.
      deps.logger.error({ workflowId, problem: compiled.problem }, 'schedule: the trigger cannot be scheduled');
      return;
    }
    const now = deps.now().getTime();
    if (catchUp && trigger.catchUp === 'one') {
      const missed = latestDue(compiled.cron, now);
      if (missed !== null && missed >= workflow.since) enqueue(workflowId, missed, now);
    }
    const due = nextDue(compiled.cron, now);
    if (due === null) return;
    const entry: Scheduled = { cron: compiled.cron, key: `${trigger.cron}\n${trigger.timezone}`, generation: ++generations, due };
    scheduled.set(workflowId, entry);
    heap.push({ due, workflowId, generation: entry.generation });
  };

  const apply = (recorded: RecordedEvent): void => {
    const event = recorded as RecordedEvent<WorkflowEvent>;
    const { workflowId } = event.data;
    const at = Date.parse(event.data.at);
    const workflow = known.get(workflowId);
    let changed = false;
    switch (event.type) {
      case 'WorkflowCreated':
        known.set(workflowId, { accountId: event.data.accountId, enabled: true, trigger: event.data.definition.trigger, since: at, position: event.position });
        changed = true;
        break;
      case 'WorkflowUpdated':
        if (!workflow) return;
        if (!sameSchedule(workflow.trigger, event.data.definition.trigger)) {
          workflow.since = at;
          changed = true;
        }
        workflow.trigger = event.data.definition.trigger;
        break;
      case 'WorkflowEnabled':
        if (!workflow) return;
        changed = !workflow.enabled;
        // Due times that passed while it was disabled are not "missed": catch-up does not reach back to them.
        if (changed) workflow.since = at;
        workflow.enabled = true;
        break;
      case 'WorkflowDisabled':
        if (!workflow) return;
        changed = workflow.enabled;
        workflow.enabled = false;
        break;
      case 'WorkflowDeleted':
        known.delete(workflowId);
        changed = true;
        break;
      case 'WebhookSecretRotated':
        break;
      default: {
        const _never: never = event;
        return _never;
      }
    }
    const current = known.get(workflowId);
    if (current) current.position = event.position;
    // Before the follower caught up, start() schedules everything at once (with catch-up).
    if (!live || !changed) return;
    schedule(workflowId, false);
    arm();
  };

  let follower: Follower | null = null;

  return {
    /** Follow the workflows (catching up with the log), fire what catch-up asks, and arm the timer. */
    async start(): Promise<void> {
      stopped = false;
      follower = followEvents(deps.eventStore, { categories: [WORKFLOW_CATEGORY] }, apply, { name: 'workflow schedules', logger: deps.logger });
      await follower.start();
      live = true;
      for (const workflowId of known.keys()) schedule(workflowId, true);
      arm();
      if (scheduled.size > 0) deps.logger.info({ schedules: scheduled.size }, 'schedule: scheduling workflows');
    },
    /** Workflows scheduled now (for /health and tests). */
    get size() {
      return scheduled.size;
    },
    /** Stop firing; fires in flight finish (their runs are recorded or not; a restart's catch-up covers the rest). */
    async stop(): Promise<void> {
      stopped = true;
      live = false;
      if (timer) clearTimeout(timer);
      timer = null;
      fires.length = 0;
      await follower?.stop();
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
    },
  };
};

export type Scheduler = ReturnType<typeof createScheduler>;
