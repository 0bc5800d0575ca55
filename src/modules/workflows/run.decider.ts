/**
 * A durable workflow run, decided purely from its events and the pinned definition.
 *
 * `next(state, definition, now)` says what the executor does now: start (or re-run) a step, skip one, wait for a
 * retry's backoff, or finish the run. `decide(command, state)` records what happened, refusing anything `next`
 * would not allow (a step out of order, a second start of an attempt, an outcome for a step not in flight, anything
 * after the end). Steps run in order, one at a time. Expressions (`if`, branch and filter conditions) are evaluated
 * by the executor: their results come in with the commands (SkipStep, a control step's output).
 *
 * Crash safety: a succeeded step is done for good (its output is in the stream); a step started and never finished
 * is handed back by `next` as `resume` with the same attempt and idempotency key, to be run again without recording
 * a second start (at-least-once per step).
 *
 * Queueing: whether a run may start now depends on the workflow's other runs, which this decider does not see; the
 * runs API decides it and says so with QueueRun (then AdmitRun later) or StartRun. A queued run does no work.
 *
 * Retries: `carryOver` says which steps of a failed run a retry reuses; StartRun / QueueRun record them first.
 *
 * Delays: a `control.delay` step's runner says how long to wait; RecordStepWaiting stores the wake-up time
 * (StepWaiting), `next` says `wait` until then and `wake` after, and WakeStep records the step's success. The run's
 * timeout counts delays: a wake-up time at or past the deadline fails the step at once (DELAY_PAST_TIMEOUT), never
 * hours later. A crash before StepWaiting re-runs the step (the delay then counts from the re-run).
 */
import { ConflictError, ValidationError } from '../../errors.js';
import type { JsonValue } from '../../eventStore/eventStore.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { CANCELLED_STEP_ERROR, stepIdempotencyKey, type RunError, type RunEvent, type RunIdentity, type SkipReason } from './run.events.js';

/**
 * What the run decider needs of a workflow definition (the definitions module owns the full shape and validates it).
 * `retry.attempts` counts every attempt, the first included (absent: 1, no retry). `path` names the branch path a
 * step belongs to: it runs only if an earlier `control.branch` step chose that path.
 */
export interface RunStepDefinition {
  readonly key: string;
  readonly type: string;
  readonly if?: string;
  readonly retry?: { readonly attempts: number; readonly backoffMs?: number };
  readonly timeoutSeconds?: number;
  readonly path?: string;
}
export interface RunDefinition {
  readonly steps: readonly RunStepDefinition[];
  /** `budget` in nano-dollars for the whole run. */
  readonly settings: { readonly timeoutSeconds: number; readonly budget: number };
}

export interface RunLimits {
  /** Distinct steps a run may start (retries of a step do not count; they are bounded by its retry policy). */
  readonly maxStepsPerRun: number;
  /** UTF-8 bytes of a step's output as JSON. */
  readonly maxOutputBytes: number;
  /**
   * Bytes a run may store in all (RunState.stored): its trigger, every output, input kept and error, and each event's
   * fixed part (RUN_EVENT_BYTES). Every run's record is read whole, and its outputs held while it runs; and nothing
   * else bounds what one run writes to the event log, which keeps it for good.
   */
  readonly maxStateBytes: number;
  /** UTF-8 bytes of a step's input as JSON kept with its outcome, for reading the run (a larger one is not kept). */
  readonly maxKeptInputBytes: number;
}
export const DEFAULT_RUN_LIMITS: RunLimits = { maxStepsPerRun: 100, maxOutputBytes: 1024 * 1024, maxStateBytes: 16 * 1024 * 1024, maxKeptInputBytes: 64 * 1024 };

/**
 * What each event of a run counts beside its payload (trigger, output, input, error): its type, ids, step key, times,
 * and the metadata and index entries stored with it. A small event takes about this much of events.db (QA s45 measured
 * 716 bytes for a table entry event whose data is some 250 bytes of JSON).
 */
export const RUN_EVENT_BYTES = 512;

export const DEFAULT_BACKOFF_MS = 1_000;
/** Exponential backoff stops growing here, so a long retry policy cannot push an attempt past any sane deadline. */
export const MAX_BACKOFF_MS = 60 * 60 * 1_000;
/** Stored error messages are bounded: an upstream may send a whole HTML page. */
export const RUN_ERROR_MESSAGE_MAX = 1_000;

/** The stable codes of the failures the decider itself decides. */
export const RUN_ERROR_CODES = {
  budget: 'BUDGET_EXCEEDED',
  steps: 'STEP_LIMIT_REACHED',
  output: 'OUTPUT_TOO_LARGE',
  timeout: 'RUN_TIMEOUT',
  chain: 'CHAIN_TOO_DEEP',
  chainTooLong: 'CHAIN_TOO_LONG',
  delayPastTimeout: 'DELAY_PAST_TIMEOUT',
  state: 'RUN_STATE_TOO_LARGE',
  tooManyRuns: 'TOO_MANY_RUNS',
} as const;

export const DELAY_STEP = 'control.delay';

/** `waiting`: a delay step stored its wake-up time and waits for it. */
export type StepStatus = 'running' | 'waiting' | 'succeeded' | 'failed' | 'skipped';
export interface StepState {
  readonly status: StepStatus;
  /** The last attempt (0 for a skipped step or one carried over). */
  readonly attempt: number;
  readonly idempotencyKey: string | null;
  readonly output: JsonValue;
  readonly error: RunError | null;
  /** Epoch ms of the next attempt after a failure, or null when it will not be retried. */
  readonly retryAt: number | null;
  /** The run whose outcome of this step was reused (a retry), or null. */
  readonly carriedFrom: string | null;
  /** Why a skipped step was skipped. */
  readonly skipped: SkipReason | null;
  /** Epoch ms a waiting delay step wakes at, or null. */
  readonly wakeAt: number | null;
  /**
   * The last attempt ended before its call settled (aborted by the run's cancel, or recorded with `chargePending`): its
   * charge may still be recorded (RecordStepCharge, once).
   */
  readonly chargeOpen: boolean;
  /** Bytes its last outcome's event stores (its output and input kept, or its error): see storedBytes. */
  readonly bytes: number;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'filtered';
export type RunState =
  | { readonly status: 'none' }
  | {
      readonly status: RunStatus;
      readonly runId: string;
      readonly workflowId: string;
      readonly version: number;
      readonly trigger: JsonValue;
      /** The run this one retries, or null. */
      readonly retryOf: string | null;
      /** Runs before this one in a chain of runs triggering each other (RunIdentity.depth). */
      readonly depth: number;
      /** The key whose spending limit the run's model calls count against (RunIdentity.keyId), or null. */
      readonly keyId: string | null;
      /** The first run of its chain (RunIdentity.chain), or null. */
      readonly chain: string | null;
      /** When the run was queued (null if it never was); `startedAt` is its admission then (while queued: the queueing). */
      readonly queuedAt: number | null;
      readonly startedAt: number;
      /** By step key (a Map: step keys such as `constructor` must not meet Object.prototype). */
      readonly steps: ReadonlyMap<string, StepState>;
      /** Distinct steps started. */
      readonly stepsStarted: number;
      /**
       * Bytes the run's events store (storedBytes): each event's payload as JSON plus RUN_EVENT_BYTES. Bounded by
       * RunLimits.maxStateBytes when a step's outcome is recorded.
       */
      readonly stored: number;
      /**
       * Nano-dollars charged by the run's steps so far: every attempt's charge (succeeded, failed, timed out or
       * aborted), as recorded with its outcome or after it (StepCharged). What is left of the budget is budget − spent.
       */
      readonly spent: number;
    };
export type StartedRunState = Exclude<RunState, { status: 'none' }>;

/** A step a retry reuses: the failed run's output of it, or its skip. */
export type CarriedStep =
  | { readonly key: string; readonly status: 'succeeded'; readonly output: JsonValue }
  | { readonly key: string; readonly status: 'skipped'; readonly reason: SkipReason };

/** `carried`: a retry's reused steps, the first steps of the definition in order (carryOver). */
export type StartRunData = Omit<RunIdentity, 'retryOf'> & { readonly retryOf?: string; readonly carried?: readonly CarriedStep[] };

export type RunCommand =
  /** Start now (the runs API found a free slot). */
  | { readonly type: 'StartRun'; readonly data: StartRunData }
  /** Record the run as queued (the workflow's runs are at their maximum). */
  | { readonly type: 'QueueRun'; readonly data: StartRunData }
  /** The run may not start (a chain of runs past its depth limit): recorded as started and failed at once, no step run. */
  | { readonly type: 'RefuseRun'; readonly data: StartRunData & { readonly error: RunError } }
  /** A slot freed: the queued run starts. */
  | { readonly type: 'AdmitRun'; readonly data: { readonly at: string } }
  /** `estimatedCost`: the step's worst-case charge in nano-dollars (a model call's reservation; 0 for most steps). */
  | { readonly type: 'RecordStepStarted'; readonly data: { readonly key: string; readonly attempt: number; readonly estimatedCost: number; readonly at: string } }
  /** `input`: the attempt's evaluated input, kept for reading the run (dropped when over the output limit). */
  | {
      readonly type: 'RecordStepSucceeded';
      readonly data: { readonly key: string; readonly attempt: number; readonly output: JsonValue; readonly cost: number; readonly input?: JsonValue; readonly at: string };
    }
  /** `retryable: false` for failures that would fail the same way again (a bad expression, a 4xx answer). */
  | {
      readonly type: 'RecordStepFailed';
      readonly data: {
        readonly key: string;
        readonly attempt: number;
        readonly error: RunError;
        readonly retryable: boolean;
        readonly cost: number;
        readonly input?: JsonValue;
        /** The attempt's call had not settled (StepFailed.chargePending): never retried, its charge recorded later. */
        readonly chargePending?: boolean;
        readonly at: string;
      };
    }
  /** The charge of an attempt whose call settled after the run ended (StepCharged); nothing when already recorded. */
  | { readonly type: 'RecordStepCharge'; readonly data: { readonly key: string; readonly attempt: number; readonly cost: number; readonly at: string } }
  | { readonly type: 'SkipStep'; readonly data: { readonly key: string; readonly reason: SkipReason; readonly at: string } }
  /** A delay step's attempt in flight waits until `until` (its runner's answer, made a time by the executor). */
  | { readonly type: 'RecordStepWaiting'; readonly data: { readonly key: string; readonly attempt: number; readonly until: string; readonly at: string } }
  /** A waiting delay step's time has come (`next` says `wake`): it succeeds with `{wokeAt, scheduledFor}`. */
  | { readonly type: 'WakeStep'; readonly data: { readonly key: string; readonly attempt: number; readonly at: string } }
  /** Ends the run as `next` says it must end (succeeded, failed or filtered); refused while work is left. */
  | { readonly type: 'FinishRun'; readonly data: { readonly at: string } }
  | { readonly type: 'CancelRun'; readonly data: { readonly reason: string; readonly at: string } };

/** What the executor does now. Times are epoch ms. */
export type NextAction =
  /** The run has not started, or has ended: nothing to do. */
  | { readonly kind: 'idle'; readonly status: 'none' | Exclude<RunStatus, 'running'> }
  /** Evaluate the step's `if` (when it has one: false → SkipStep), then RecordStepStarted, run it, record its outcome. */
  | { readonly kind: 'start'; readonly step: RunStepDefinition; readonly attempt: number; readonly idempotencyKey: string; readonly deadline: number }
  /** The attempt started and never finished (a crash): run it again with the same key, without recording a start. */
  | { readonly kind: 'resume'; readonly step: RunStepDefinition; readonly attempt: number; readonly idempotencyKey: string; readonly deadline: number }
  /** The step is on a branch path that was not chosen: SkipStep with reason `path`. */
  | { readonly kind: 'skip'; readonly step: RunStepDefinition; readonly reason: 'path' }
  /** A retry's backoff or a delay step's wait (never past the run's deadline): ask again at `until`. */
  | { readonly kind: 'wait'; readonly until: number; readonly key: string; readonly attempt: number }
  /** A waiting delay step's wake-up time has come: WakeStep. */
  | { readonly kind: 'wake'; readonly step: RunStepDefinition; readonly attempt: number; readonly scheduledFor: number }
  /** FinishRun: the run's end is decided. */
  | { readonly kind: 'finish'; readonly outcome: 'succeeded'; readonly output: JsonValue }
  | { readonly kind: 'finish'; readonly outcome: 'failed'; readonly error: RunError; readonly step: string | null }
  | { readonly kind: 'finish'; readonly outcome: 'filtered'; readonly step: string };

export const initialState = (): RunState => ({ status: 'none' });

const ms = (iso: string): number => Date.parse(iso);

const withStep = (state: StartedRunState, key: string, step: StepState): ReadonlyMap<string, StepState> => new Map(state.steps).set(key, step);

/**
 * A run's end leaves no step in flight (one rule for a failure, a timeout and a cancel; a success or a filter ends only
 * once every step before it has): the step running is aborted (its call's charge may still follow), a waiting delay
 * ends. Each ends FAILED with `error` (the run's, or CANCELLED_STEP_ERROR).
 */
const closeInFlight = (steps: ReadonlyMap<string, StepState>, error: RunError): ReadonlyMap<string, StepState> => {
  let closed: Map<string, StepState> | null = null;
  for (const [key, step] of steps) {
    if (step.status === 'running' || step.status === 'waiting') {
      closed ??= new Map(steps);
      closed.set(key, { ...step, status: 'failed', error, retryAt: null, wakeAt: null, chargeOpen: step.status === 'running' });
    }
  }
  return closed ?? steps;
};

const NOT_RUN = { idempotencyKey: null, output: null, error: null, retryAt: null, carriedFrom: null, skipped: null, wakeAt: null, chargeOpen: false, bytes: 0 } as const;

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');

/**
 * An input an older event kept, as the run's size counts it: as this version would have kept it, at most
 * maxKeptInputBytes and while it fits in `room` (what the run may still store, its output or error counted), else 0.
 * Before the limit counted everything an input up to maxOutputBytes (1 MiB) was kept beside each outcome and counted
 * nowhere: measured whole, a run in flight at the upgrade that earlier steps gave large inputs would be over
 * maxStateBytes already and fail its next output for good (review s45 F5). The default limits apply (the events were
 * written under them; the configured ones are for tests).
 */
const olderInputBytes = (input: JsonValue | undefined, room: number): number => {
  if (input === undefined) return 0;
  const bytes = jsonBytes(input);
  return bytes <= Math.min(DEFAULT_RUN_LIMITS.maxKeptInputBytes, room) ? bytes : 0;
};

/**
 * The bytes of an event's payload as the run's size counts them: its trigger, output, input kept, error or reason as
 * JSON. The events that may be large record theirs (`bytes`); older ones, and the small ones, are measured, an older
 * one's input as this version would have kept it (olderInputBytes). `before`: what the run stored before the event.
 */
export const storedBytes = (event: RunEvent, before = 0): number => {
  const room = (payload: number) => DEFAULT_RUN_LIMITS.maxStateBytes - before - RUN_EVENT_BYTES - payload;
  switch (event.type) {
    case 'RunQueued':
    case 'RunStarted':
      return jsonBytes(event.data.trigger);
    case 'StepCarriedOver':
      return event.data.bytes ?? (event.data.skipped === null ? jsonBytes(event.data.output) : 0);
    case 'StepSucceeded': {
      if (event.data.bytes !== undefined) return event.data.bytes;
      const output = jsonBytes(event.data.output);
      return output + olderInputBytes(event.data.input, room(output));
    }
    case 'StepFailed': {
      if (event.data.bytes !== undefined) return event.data.bytes;
      const error = jsonBytes(event.data.error);
      return error + olderInputBytes(event.data.input, room(error));
    }
    case 'RunSucceeded':
      return event.data.bytes ?? jsonBytes(event.data.output);
    case 'RunFailed':
      return jsonBytes(event.data.error);
    case 'RunCancelled':
      return jsonBytes(event.data.reason);
    case 'StepStarted':
    case 'StepWaiting':
    case 'StepSkipped':
    case 'StepCharged':
    case 'RunFiltered':
      return 0;
    default: {
      const _never: never = event;
      return 0;
    }
  }
};

export const evolve = (state: RunState, event: RunEvent): RunState => {
  const before = state.status === 'none' ? 0 : state.stored;
  const bytes = storedBytes(event, before);
  const next = evolveRun(state, event, bytes);
  if (next.status === 'none') return next;
  return { ...next, stored: before + RUN_EVENT_BYTES + bytes };
};

/** The run after `event` (its `stored` as before it: evolve adds the event's). `bytes`: the event's storedBytes. */
const evolveRun = (state: RunState, event: RunEvent, bytes: number): RunState => {
  if (event.type === 'RunStarted' && state.status === 'queued') return { ...state, status: 'running', startedAt: ms(event.data.at) };
  if (event.type === 'RunStarted' || event.type === 'RunQueued') {
    const { runId, workflowId, version, trigger, retryOf, depth, keyId, chain, at } = event.data;
    const queued = event.type === 'RunQueued';
    return {
      status: queued ? 'queued' : 'running',
      runId,
      workflowId,
      version,
      trigger,
      retryOf: retryOf ?? null,
      depth: depth ?? 0,
      keyId: keyId ?? null,
      chain: chain ?? null,
      queuedAt: queued ? ms(at) : null,
      startedAt: ms(at),
      steps: new Map(),
      stepsStarted: 0,
      stored: 0,
      spent: 0,
    };
  }
  if (state.status === 'none') return state;
  switch (event.type) {
    case 'StepCarriedOver': {
      const { key, fromRun, output, skipped } = event.data;
      const step: StepState = { ...NOT_RUN, status: skipped === null ? 'succeeded' : 'skipped', attempt: 0, output: skipped === null ? output : null, carriedFrom: fromRun, skipped, bytes };
      return { ...state, steps: withStep(state, key, step) };
    }
    case 'StepStarted': {
      const { key, attempt, idempotencyKey } = event.data;
      const first = !state.steps.has(key);
      const step: StepState = { ...NOT_RUN, status: 'running', attempt, idempotencyKey };
      return { ...state, steps: withStep(state, key, step), stepsStarted: state.stepsStarted + (first ? 1 : 0) };
    }
    case 'StepWaiting': {
      const { key, attempt, until } = event.data;
      const idempotencyKey = state.steps.get(key)?.idempotencyKey ?? null;
      return { ...state, steps: withStep(state, key, { ...NOT_RUN, status: 'waiting', attempt, idempotencyKey, wakeAt: ms(until) }) };
    }
    case 'StepSucceeded': {
      const { key, attempt, output, cost } = event.data;
      const idempotencyKey = state.steps.get(key)?.idempotencyKey ?? null;
      const step: StepState = { ...NOT_RUN, status: 'succeeded', attempt, idempotencyKey, output, bytes };
      return { ...state, steps: withStep(state, key, step), spent: state.spent + cost };
    }
    case 'StepFailed': {
      const { key, attempt, error, cost, retryAt, chargePending } = event.data;
      const idempotencyKey = state.steps.get(key)?.idempotencyKey ?? null;
      const step: StepState = { ...NOT_RUN, status: 'failed', attempt, idempotencyKey, error, retryAt: retryAt === null ? null : ms(retryAt), chargeOpen: chargePending === true, bytes };
      return { ...state, steps: withStep(state, key, step), spent: state.spent + cost };
    }
    case 'StepCharged': {
      const step = state.steps.get(event.data.key);
      const steps = step === undefined ? state.steps : withStep(state, event.data.key, { ...step, chargeOpen: false });
      return { ...state, steps, spent: state.spent + event.data.cost };
    }
    case 'StepSkipped':
      return { ...state, steps: withStep(state, event.data.key, { ...NOT_RUN, status: 'skipped', attempt: 0, skipped: event.data.reason }) };
    case 'RunSucceeded':
      return { ...state, status: 'succeeded' };
    case 'RunFailed':
      return { ...state, status: 'failed', steps: closeInFlight(state.steps, event.data.error) };
    case 'RunCancelled':
      return { ...state, status: 'cancelled', steps: closeInFlight(state.steps, CANCELLED_STEP_ERROR) };
    case 'RunFiltered':
      return { ...state, status: 'filtered' };
    default: {
      const _never: never = event;
      return state;
    }
  }
};

const isRecord = (value: JsonValue): value is { [key: string]: JsonValue } => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A `control.filter` step's output says whether the run goes on; a `control.branch` step's output names its path. */
const filterStopped = (output: JsonValue): boolean => isRecord(output) && output.passed === false;
const chosenPath = (output: JsonValue): string | null => (isRecord(output) && typeof output.path === 'string' ? output.path : null);

const backoffMs = (step: RunStepDefinition, failedAttempt: number): number =>
  Math.min((step.retry?.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (failedAttempt - 1), MAX_BACKOFF_MS);

export const runDeadline = (state: StartedRunState, definition: RunDefinition): number => state.startedAt + definition.settings.timeoutSeconds * 1_000;

/**
 * What to do now. The run's end takes precedence over its deadline: a run whose work is all recorded finishes as it
 * ended even when `now` is past the deadline (a restart long after a crash must not turn a success into a timeout).
 */
export const next = (state: RunState, definition: RunDefinition, now: number, limits: RunLimits = DEFAULT_RUN_LIMITS): NextAction => {
  if (state.status === 'none') return { kind: 'idle', status: 'none' };
  if (state.status !== 'running') return { kind: 'idle', status: state.status };
  const deadline = runDeadline(state, definition);
  const chosen = new Set<string>();
  let output: JsonValue = null;
  for (const step of definition.steps) {
    const done = state.steps.get(step.key);
    if (done?.status === 'skipped') continue;
    if (done?.status === 'succeeded') {
      if (step.type === 'control.filter' && filterStopped(done.output)) return { kind: 'finish', outcome: 'filtered', step: step.key };
      if (step.type === 'control.branch') {
        const path = chosenPath(done.output);
        if (path !== null) chosen.add(path);
      }
      // `action.respond` sets the run's output (a synchronous webhook answers with it).
      if (step.type === 'action.respond') output = done.output;
      continue;
    }
    if (done?.status === 'failed' && done.retryAt === null) {
      return { kind: 'finish', outcome: 'failed', error: done.error ?? { code: 'STEP_FAILED', message: `Step ${step.key} failed` }, step: step.key };
    }
    // This step is the run's current work.
    if (now >= deadline) {
      return { kind: 'finish', outcome: 'failed', error: { code: RUN_ERROR_CODES.timeout, message: `The run passed its timeout of ${definition.settings.timeoutSeconds} s` }, step: step.key };
    }
    if (done?.status === 'waiting') {
      const wakeAt = done.wakeAt ?? now;
      if (now < wakeAt) return { kind: 'wait', until: Math.min(wakeAt, deadline), key: step.key, attempt: done.attempt };
      return { kind: 'wake', step, attempt: done.attempt, scheduledFor: wakeAt };
    }
    if (done?.status === 'running') {
      return { kind: 'resume', step, attempt: done.attempt, idempotencyKey: done.idempotencyKey ?? stepIdempotencyKey(state.runId, step.key, done.attempt), deadline };
    }
    if (done?.status === 'failed' && done.retryAt !== null) {
      const attempt = done.attempt + 1;
      if (now < done.retryAt) return { kind: 'wait', until: Math.min(done.retryAt, deadline), key: step.key, attempt };
      return { kind: 'start', step, attempt, idempotencyKey: stepIdempotencyKey(state.runId, step.key, attempt), deadline };
    }
    // Never touched.
    if (step.path !== undefined && !chosen.has(step.path)) return { kind: 'skip', step, reason: 'path' };
    if (state.stepsStarted >= limits.maxStepsPerRun) {
      return {
        kind: 'finish',
        outcome: 'failed',
        error: { code: RUN_ERROR_CODES.steps, message: `The run reached its limit of ${limits.maxStepsPerRun} steps before step ${step.key}` },
        step: step.key,
      };
    }
    return { kind: 'start', step, attempt: 1, idempotencyKey: stepIdempotencyKey(state.runId, step.key, 1), deadline };
  }
  return { kind: 'finish', outcome: 'succeeded', output };
};

/**
 * What a retry of this run reuses: its first steps, in order, up to the first that neither succeeded nor was skipped
 * (the step it failed on). Only a failed run is retried: a cancelled one was stopped on purpose, one that succeeded or
 * was filtered has nothing left to do, and a queued or running one has not ended.
 */
export const carryOver = (state: RunState, definition: RunDefinition): CarriedStep[] => {
  if (state.status !== 'failed') {
    const what = state.status === 'none' ? 'has not started' : state.status === 'queued' || state.status === 'running' ? `is ${state.status}` : `${state.status === 'cancelled' ? 'was cancelled' : state.status}`;
    throw new ConflictError(`Only a failed run can be retried; this run ${what}`, { status: state.status });
  }
  const carried: CarriedStep[] = [];
  for (const step of definition.steps) {
    const done = state.steps.get(step.key);
    if (done?.status === 'succeeded') carried.push({ key: step.key, status: 'succeeded', output: done.output });
    // A skip stays a skip: the retry has the same trigger and the same earlier outputs.
    else if (done?.status === 'skipped') carried.push({ key: step.key, status: 'skipped', reason: done.skipped ?? 'condition' });
    else break;
  }
  return carried;
};

const parseAt = (at: string): number => {
  const time = ms(at);
  if (!Number.isFinite(time)) throw new ValidationError(`"at" must be an ISO timestamp, got ${JSON.stringify(at)}`, { field: 'at' });
  return time;
};

const requireAmount = (field: string, value: number): void => {
  if (!Number.isSafeInteger(value) || value < 0) throw new ValidationError(`${field} must be a non-negative integer of nano-dollars, got ${value}`, { field });
};

const requireRunning = (state: RunState, what: string): StartedRunState => {
  if (state.status === 'none') throw new ConflictError(`Cannot ${what}: the run has not started`);
  if (state.status !== 'running') throw new ConflictError(`Cannot ${what}: the run has already ${state.status === 'cancelled' ? 'been cancelled' : state.status}`, { status: state.status });
  return state;
};

const requireStep = (definition: RunDefinition, key: string): RunStepDefinition => {
  const step = definition.steps.find((candidate) => candidate.key === key);
  if (!step) throw new ValidationError(`Step ${key} is not in this workflow version`, { step: key });
  return step;
};

const describeAction = (action: NextAction): string => {
  switch (action.kind) {
    case 'idle':
      return 'nothing (the run is not running)';
    case 'start':
      return `attempt ${action.attempt} of step ${action.step.key}`;
    case 'resume':
      return `re-running attempt ${action.attempt} of step ${action.step.key}, which is in flight`;
    case 'skip':
      return `skipping step ${action.step.key} (its path was not chosen)`;
    case 'wait':
      return `waiting until ${new Date(action.until).toISOString()} for attempt ${action.attempt} of step ${action.key}`;
    case 'wake':
      return `waking delay step ${action.step.key}`;
    case 'finish':
      return action.outcome === 'failed' ? `finishing the run as failed (${action.error.message})` : `finishing the run as ${action.outcome}`;
    default: {
      const _never: never = action;
      return 'unknown';
    }
  }
};

/** The step's attempt in flight, which an outcome must name. */
const requireInFlight = (state: StartedRunState, key: string, attempt: number, what: string): void => {
  const step = state.steps.get(key);
  if (!step) throw new ConflictError(`Cannot ${what}: step ${key} never started`, { step: key });
  if (step.status !== 'running') throw new ConflictError(`Cannot ${what}: step ${key} has already ${step.status}`, { step: key });
  if (step.attempt !== attempt) throw new ConflictError(`Cannot ${what}: attempt ${step.attempt} of step ${key} is in flight, not attempt ${attempt}`, { step: key });
};

/** Bytes of the output as stored; an executor bug handing over something that is not JSON is refused, not stored. */
const outputBytes = (key: string, output: JsonValue): number => {
  let json: string | undefined;
  try {
    json = JSON.stringify(output);
  } catch {
    json = undefined; // a cycle or a BigInt
  }
  if (json === undefined) throw new ValidationError(`The output of step ${key} is not JSON`, { step: key });
  return Buffer.byteLength(json, 'utf8');
};

const bounded = (error: RunError): RunError => (error.message.length > RUN_ERROR_MESSAGE_MAX ? { ...error, message: error.message.slice(0, RUN_ERROR_MESSAGE_MAX) } : error);

/**
 * Bytes the run's end will store, held for it: its event, and a run that succeeds repeats its answer (the last
 * `action.respond` output) in RunSucceeded, so that step's bytes too (its input kept included: a bound, not the exact
 * count).
 */
const endingBytes = (run: StartedRunState, definition: RunDefinition): number => {
  let bytes = RUN_EVENT_BYTES;
  for (const step of definition.steps) {
    const done = step.type === 'action.respond' ? run.steps.get(step.key) : undefined;
    if (done?.status === 'succeeded') bytes = RUN_EVENT_BYTES + done.bytes;
  }
  return bytes;
};

/**
 * An attempt's input is kept with its outcome (to read, not to run on) when it is at most maxKeptInputBytes and fits in
 * the `room` the run has left to store: a large input is not worth the space the run's outputs need.
 */
const keptInput = (key: string, input: JsonValue | undefined, limits: RunLimits, room: number): { readonly value: JsonValue; readonly bytes: number } | undefined => {
  if (input === undefined) return undefined;
  const bytes = outputBytes(key, input);
  return bytes <= Math.min(limits.maxKeptInputBytes, room) ? { value: input, bytes } : undefined;
};

/**
 * A step's failure. It is always recorded (it is small: a code and a bounded message), and counts in what the run
 * stores; its input is kept when it fits.
 */
const decideFailure = (
  run: StartedRunState,
  definition: RunDefinition,
  limits: RunLimits,
  failure: { key: string; attempt: number; error: RunError; retryable: boolean; cost: number; at: string; input?: JsonValue; chargePending?: boolean },
): RunEvent[] => {
  const { key, attempt, retryable, cost, at, chargePending = false } = failure;
  const step = requireStep(definition, key);
  const attempts = step.retry?.attempts ?? 1;
  // An attempt whose charge is not known yet leaves the budget left unknown: no further attempt is made on it.
  const retryAt = retryable && !chargePending && attempt < attempts ? new Date(parseAt(at) + backoffMs(step, attempt)).toISOString() : null;
  const error = bounded(failure.error);
  const errorBytes = jsonBytes(error);
  const input = keptInput(key, failure.input, limits, limits.maxStateBytes - run.stored - RUN_EVENT_BYTES - errorBytes - endingBytes(run, definition));
  const bytes = errorBytes + (input?.bytes ?? 0);
  return [{ type: 'StepFailed', data: { key, attempt, error, cost, retryAt, ...(input !== undefined && { input: input.value }), bytes, ...(chargePending && { chargePending: true as const }), at } }];
};

/** The first events of a run (queued or started), its carried-over steps after them. */
const beginRun = (type: 'RunStarted' | 'RunQueued', state: RunState, definition: RunDefinition, data: StartRunData, limits: RunLimits): RunEvent[] => {
  const { runId, workflowId, version, trigger, retryOf, depth, keyId, chain, carried = [], at } = data;
  if (state.status !== 'none') throw new ConflictError(`Run ${runId} has already started`);
  if (runId === '') throw new ValidationError('A run needs an id', { field: 'runId' });
  if (!Number.isSafeInteger(version) || version < 1) throw new ValidationError(`A run pins a workflow version (a positive integer), got ${version}`, { field: 'version' });
  parseAt(at);
  if (carried.length > 0 && retryOf === undefined) throw new ValidationError('Only a retry carries steps over', { field: 'carried' });
  const carriedBytes = carried.map((step, index) => {
    // The carried steps are the definition's first ones, in order: the retry goes on right after them.
    if (definition.steps[index]?.key !== step.key) throw new ValidationError(`Carried step ${step.key} is not step ${index + 1} of this workflow version`, { step: step.key });
    const bytes = step.status === 'succeeded' ? outputBytes(step.key, step.output) : 0;
    if (bytes > limits.maxOutputBytes) throw new ValidationError(`The output of carried step ${step.key} is over the limit`, { step: step.key });
    return bytes;
  });
  if (depth !== undefined && (!Number.isSafeInteger(depth) || depth < 0)) throw new ValidationError(`A run's depth is a non-negative integer, got ${depth}`, { field: 'depth' });
  const identity: RunIdentity = { runId, workflowId, version, trigger, ...(retryOf !== undefined && { retryOf }), ...(depth !== undefined && depth > 0 && { depth }), ...(keyId !== undefined && { keyId }), ...(chain !== undefined && { chain }), at };
  return [
    { type, data: identity },
    ...carried.map(
      (step, index): RunEvent => ({
        type: 'StepCarriedOver',
        data: {
          key: step.key,
          fromRun: retryOf ?? '',
          output: step.status === 'succeeded' ? step.output : null,
          skipped: step.status === 'skipped' ? step.reason : null,
          ...(step.status === 'succeeded' && { bytes: carriedBytes[index] ?? 0 }),
          at,
        },
      }),
    ),
  ];
};

/** The run decider for one pinned definition (decisions need its steps, retry policies, budget and deadline). */
export const runDecider = (definition: RunDefinition, limits: RunLimits = DEFAULT_RUN_LIMITS): Decider<RunState, RunCommand, RunEvent> => ({
  initialState,
  evolve,
  decide: (command, state) => {
    switch (command.type) {
      case 'StartRun':
        return beginRun('RunStarted', state, definition, command.data, limits);

      case 'QueueRun':
        return beginRun('RunQueued', state, definition, command.data, limits);

      case 'RefuseRun': {
        const { error, ...data } = command.data;
        return [...beginRun('RunStarted', state, definition, { ...data, carried: [] }, limits), { type: 'RunFailed', data: { error: bounded(error), step: null, at: data.at } }];
      }

      case 'AdmitRun': {
        if (state.status !== 'queued') throw new ConflictError(`Cannot admit the run: it is ${state.status === 'none' ? 'not there' : `${state.status}, not queued`}`, { status: state.status });
        parseAt(command.data.at);
        const { runId, workflowId, version, trigger, retryOf, depth, keyId, chain } = state;
        return [
          {
            type: 'RunStarted',
            data: { runId, workflowId, version, trigger, ...(retryOf !== null && { retryOf }), ...(depth > 0 && { depth }), ...(keyId !== null && { keyId }), ...(chain !== null && { chain }), at: command.data.at },
          },
        ];
      }

      case 'RecordStepStarted': {
        const { key, attempt, estimatedCost, at } = command.data;
        const run = requireRunning(state, `start step ${key}`);
        requireStep(definition, key);
        requireAmount('estimatedCost', estimatedCost);
        const current = run.steps.get(key);
        if (current !== undefined && current.attempt >= attempt) {
          throw new ConflictError(`Attempt ${attempt} of step ${key} has already started`, { step: key, attempt });
        }
        const action = next(run, definition, parseAt(at), limits);
        if (action.kind !== 'start' || action.step.key !== key || action.attempt !== attempt) {
          throw new ConflictError(`Cannot start attempt ${attempt} of step ${key}: the run is ${describeAction(action)}`, { step: key, attempt });
        }
        // Checked before the call, so a step that could overspend the run is never made.
        const left = Math.max(0, definition.settings.budget - run.spent);
        if (estimatedCost > left) {
          const message = `Step ${key} may cost up to ${estimatedCost} nano-dollars, more than the ${left} left of the run's budget of ${definition.settings.budget}`;
          return [{ type: 'RunFailed', data: { error: { code: RUN_ERROR_CODES.budget, message }, step: key, at } }];
        }
        return [{ type: 'StepStarted', data: { key, attempt, idempotencyKey: action.idempotencyKey, at } }];
      }

      case 'RecordStepSucceeded': {
        const { key, attempt, output, cost, at } = command.data;
        const run = requireRunning(state, `record step ${key} as succeeded`);
        const step = requireStep(definition, key);
        requireInFlight(run, key, attempt, `record step ${key} as succeeded`);
        requireAmount('cost', cost);
        parseAt(at);
        const failure = { key, attempt, retryable: false, cost, at, input: command.data.input };
        const bytes = outputBytes(key, output);
        if (bytes > limits.maxOutputBytes) {
          // The output is refused, not stored; producing it again would produce as much, so no retry.
          const error = { code: RUN_ERROR_CODES.output, message: `Step ${key} produced ${bytes} bytes of output, over the limit of ${limits.maxOutputBytes}` };
          return decideFailure(run, definition, limits, { ...failure, error });
        }
        // An answer (action.respond) is stored twice: here and in the run's end, which holds the last one.
        const stored = run.stored + RUN_EVENT_BYTES + bytes + (step.type === 'action.respond' ? RUN_EVENT_BYTES + bytes : endingBytes(run, definition));
        if (stored > limits.maxStateBytes) {
          const message = `Step ${key}'s output of ${bytes} bytes would bring what the run stores (its trigger, outputs, inputs kept, errors and end, ${RUN_EVENT_BYTES} bytes an event) to ${stored} bytes, over the limit of ${limits.maxStateBytes}`;
          return decideFailure(run, definition, limits, { ...failure, error: { code: RUN_ERROR_CODES.state, message } });
        }
        if (step.type === 'control.filter' && !(isRecord(output) && typeof output.passed === 'boolean')) {
          throw new ValidationError(`The output of filter step ${key} must be { passed: boolean }`, { step: key });
        }
        if (step.type === 'control.branch' && !(isRecord(output) && (typeof output.path === 'string' || output.path === null))) {
          throw new ValidationError(`The output of branch step ${key} must be { path: string | null }`, { step: key });
        }
        if (step.type === DELAY_STEP) throw new ValidationError(`Delay step ${key} succeeds by waking (RecordStepWaiting, then WakeStep)`, { step: key });
        const input = keptInput(key, command.data.input, limits, limits.maxStateBytes - stored);
        return [{ type: 'StepSucceeded', data: { key, attempt, output, cost, ...(input !== undefined && { input: input.value }), bytes: bytes + (input?.bytes ?? 0), at } }];
      }

      case 'RecordStepFailed': {
        const { key, attempt, error, retryable, cost, at } = command.data;
        const run = requireRunning(state, `record step ${key} as failed`);
        requireStep(definition, key);
        requireInFlight(run, key, attempt, `record step ${key} as failed`);
        requireAmount('cost', cost);
        return decideFailure(run, definition, limits, { key, attempt, error, retryable, cost, at, input: command.data.input, chargePending: command.data.chargePending === true });
      }

      case 'RecordStepCharge': {
        const { key, attempt, cost, at } = command.data;
        if (state.status === 'none' || state.status === 'queued' || state.status === 'running') {
          throw new ConflictError(`Cannot record a late charge of step ${key}: the run ${state.status === 'none' ? 'has not started' : `is ${state.status}`}`, { step: key });
        }
        requireStep(definition, key);
        requireAmount('cost', cost);
        parseAt(at);
        const step = state.steps.get(key);
        if (step === undefined || step.attempt !== attempt) throw new ConflictError(`Cannot record a late charge of attempt ${attempt} of step ${key}: it is not the step's last attempt`, { step: key, attempt });
        // Recorded already (or the attempt's charge was known with its outcome): a repeat changes nothing.
        if (!step.chargeOpen) return [];
        return [{ type: 'StepCharged', data: { key, attempt, cost, at } }];
      }

      case 'SkipStep': {
        const { key, reason, at } = command.data;
        const run = requireRunning(state, `skip step ${key}`);
        const step = requireStep(definition, key);
        const action = next(run, definition, parseAt(at), limits);
        // A condition is evaluated once, before the step's first attempt; a path skip is what `next` asked for.
        const allowed =
          reason === 'condition'
            ? action.kind === 'start' && action.step.key === key && action.attempt === 1 && step.if !== undefined
            : action.kind === 'skip' && action.step.key === key;
        if (!allowed) {
          const why = reason === 'condition' && step.if === undefined ? `step ${key} has no condition` : `the run is ${describeAction(action)}`;
          throw new ConflictError(`Cannot skip step ${key} (${reason}): ${why}`, { step: key });
        }
        return [{ type: 'StepSkipped', data: { key, reason, at } }];
      }

      case 'RecordStepWaiting': {
        const { key, attempt, until, at } = command.data;
        const run = requireRunning(state, `record step ${key} as waiting`);
        const step = requireStep(definition, key);
        if (step.type !== DELAY_STEP) throw new ValidationError(`Step ${key} is a ${step.type} step; only a ${DELAY_STEP} step waits`, { step: key });
        requireInFlight(run, key, attempt, `record step ${key} as waiting`);
        parseAt(at);
        const wakeAt = parseAt(until);
        const deadline = runDeadline(run, definition);
        if (wakeAt >= deadline) {
          const error = {
            code: RUN_ERROR_CODES.delayPastTimeout,
            message: `Step ${key} would wake at ${until}, at or after the run's deadline ${new Date(deadline).toISOString()} (settings.timeoutSeconds ${definition.settings.timeoutSeconds} counts delays): raise the timeout or shorten the delay`,
          };
          return decideFailure(run, definition, limits, { key, attempt, error, retryable: false, cost: 0, at });
        }
        return [{ type: 'StepWaiting', data: { key, attempt, until: new Date(wakeAt).toISOString(), at } }];
      }

      case 'WakeStep': {
        const { key, attempt, at } = command.data;
        const run = requireRunning(state, `wake step ${key}`);
        const action = next(run, definition, parseAt(at), limits);
        if (action.kind !== 'wake' || action.step.key !== key || action.attempt !== attempt) {
          throw new ConflictError(`Cannot wake attempt ${attempt} of step ${key}: the run is ${describeAction(action)}`, { step: key, attempt });
        }
        const output = { wokeAt: at, scheduledFor: new Date(action.scheduledFor).toISOString() };
        return [{ type: 'StepSucceeded', data: { key, attempt, output, cost: 0, at } }];
      }

      case 'FinishRun': {
        const { at } = command.data;
        const run = requireRunning(state, 'finish the run');
        const action = next(run, definition, parseAt(at), limits);
        if (action.kind !== 'finish') throw new ConflictError(`Cannot finish the run: it is not done, next is ${describeAction(action)}`);
        switch (action.outcome) {
          case 'succeeded':
            return [{ type: 'RunSucceeded', data: { output: action.output, bytes: jsonBytes(action.output), at } }];
          case 'failed':
            return [{ type: 'RunFailed', data: { error: action.error, step: action.step, at } }];
          case 'filtered':
            return [{ type: 'RunFiltered', data: { step: action.step, at } }];
          default: {
            const _never: never = action;
            return [];
          }
        }
      }

      case 'CancelRun': {
        const { reason, at } = command.data;
        // A queued run is cancelled as a running one: it never starts.
        if (state.status !== 'queued') requireRunning(state, 'cancel the run');
        parseAt(at);
        return [{ type: 'RunCancelled', data: { reason: reason.slice(0, RUN_ERROR_MESSAGE_MAX), at } }];
      }

      default: {
        const _never: never = command;
        return [];
      }
    }
  },
});
