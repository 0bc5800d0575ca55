/**
 * The `run-{id}` stream: one durable run of a pinned workflow version, from its trigger to its end. The run decider
 * (run.decider.ts) decides every event; an executor performs the steps and records their outcomes.
 */
import type { JsonValue } from '../../eventStore/eventStore.js';

/** Why a run or a step failed: a stable code and a readable message. */
export interface RunError {
  readonly code: string;
  readonly message: string;
}

/**
 * The bytes of JSON an event's payload holds (its output, input, error), as the run's size limit counts them
 * (run.decider.ts storedBytes): recorded by the decider, so a fold need not measure megabytes again. Absent in events
 * written before the limit counted everything (they are measured, an input they kept as this version would have kept
 * it: storedBytes).
 */
export type StoredBytes = number;

/** What a run is: its workflow, pinned version and trigger. */
export interface RunIdentity {
  readonly runId: string;
  readonly workflowId: string;
  /** The workflow version the run is pinned to. */
  readonly version: number;
  readonly trigger: JsonValue;
  /** The failed run this one retries (retryWorkflowRun), absent for a fresh run. */
  readonly retryOf?: string;
  /**
   * How many runs came before this one in a chain of runs triggering each other (an event a run caused: its failure,
   * an emitted event, a model call). Absent (0) for a run a person, a webhook or a schedule started.
   */
  readonly depth?: number;
  /** The first run of the chain this one belongs to (absent for a run no run caused): MAX_RUNS_PER_CHAIN counts by it. */
  readonly chain?: string;
  /**
   * The API key of the workflow's own account that started the run (runWorkflow, the REST runs route, a retry) or
   * caused it (its table write, its model call, or the run that caused this one: triggers/chain.ts): its model calls
   * count against that key's spending limit and usage (as if the key had made them), and are refused once the key is
   * revoked. Absent when no key of the account did (a webhook, a schedule, a key created or revoked, an admin of
   * another account): the account's balance and the workflow's budget bound those.
   */
  readonly keyId?: string;
  readonly at: string;
}

/**
 * The run begins its work (its deadline counts from here). The first event of a run, or the admission of a queued
 * one (then it repeats the queued run's identity, with the time of admission).
 */
export type RunStarted = { readonly type: 'RunStarted'; readonly data: RunIdentity };

/** The workflow already had its maximum of concurrent runs: this one waits for a slot (admitted in queue order). */
export type RunQueued = { readonly type: 'RunQueued'; readonly data: RunIdentity };

/**
 * A retry reuses what its failed run did before the failed step: that step's output (or its skip), recorded as
 * carried over from `fromRun`, never run again in this run (no side effect, no charge).
 */
export type StepCarriedOver = {
  readonly type: 'StepCarriedOver';
  readonly data: { readonly key: string; readonly fromRun: string; readonly output: JsonValue; readonly skipped: SkipReason | null; readonly bytes?: StoredBytes; readonly at: string };
};

export type StepStarted = {
  readonly type: 'StepStarted';
  readonly data: {
    readonly key: string;
    /** Numbered from 1; a retry is the next attempt. */
    readonly attempt: number;
    /** Derived from run, step and attempt (stepIdempotencyKey): a re-run after a crash sends the same one. */
    readonly idempotencyKey: string;
    readonly at: string;
  };
};

export type StepSucceeded = {
  readonly type: 'StepSucceeded';
  readonly data: {
    readonly key: string;
    readonly attempt: number;
    readonly output: JsonValue;
    /** Nano-dollars the step charged (model calls); counts against the run's budget. */
    readonly cost: number;
    /**
     * The attempt's input, its expressions evaluated, kept for reading the run: absent when over 64 KiB
     * (RunLimits.maxKeptInputBytes) or when keeping it would pass what the run may store (older events kept inputs up
     * to 1 MiB).
     */
    readonly input?: JsonValue;
    /** Bytes of its output and input (StoredBytes). */
    readonly bytes?: StoredBytes;
    readonly at: string;
  };
};

export type StepFailed = {
  readonly type: 'StepFailed';
  readonly data: {
    readonly key: string;
    readonly attempt: number;
    readonly error: RunError;
    /**
     * A failed model call may still have charged (the tokens streamed before a cut, a timeout or an error): it counts
     * against the budget. The executor records a failure only once the attempt's call has settled, so this is its charge.
     */
    readonly cost: number;
    /** When the next attempt is due, or null when the step will not be retried. */
    readonly retryAt: string | null;
    /** As StepSucceeded's; also absent when the input itself could not be evaluated. */
    readonly input?: JsonValue;
    /** Bytes of its error and input (StoredBytes). */
    readonly bytes?: StoredBytes;
    /**
     * The attempt's call had not settled when the failure was recorded (it ignored its abort past the executor's
     * patience): its charge, if any, comes later as StepCharged, and the step is not retried (the budget left is unknown).
     */
    readonly chargePending?: true;
    readonly at: string;
  };
};

/**
 * The charge of an attempt whose call settled after the run ended: the step in flight when the run was cancelled, or
 * an attempt recorded as failed with `chargePending`. At most one per attempt, always after the run's end event; it
 * adds to the run's and the step's cost.
 */
export type StepCharged = {
  readonly type: 'StepCharged';
  readonly data: { readonly key: string; readonly attempt: number; readonly cost: number; readonly at: string };
};

/**
 * A `control.delay` step waits until `until` (after its StepStarted): the wake-up time is stored, so the executor of
 * any process, after any restart, wakes the step on time (StepSucceeded with `{wokeAt, scheduledFor}`).
 */
export type StepWaiting = {
  readonly type: 'StepWaiting';
  readonly data: { readonly key: string; readonly attempt: number; readonly until: string; readonly at: string };
};

/** `condition`: the step's `if` was false. `path`: the step belongs to a branch path that was not chosen. */
export type SkipReason = 'condition' | 'path';

export type StepSkipped = {
  readonly type: 'StepSkipped';
  readonly data: { readonly key: string; readonly reason: SkipReason; readonly at: string };
};

export type RunSucceeded = {
  readonly type: 'RunSucceeded';
  /** `bytes`: of its output (StoredBytes). */
  readonly data: { readonly output: JsonValue; readonly bytes?: StoredBytes; readonly at: string };
};

export type RunFailed = {
  readonly type: 'RunFailed';
  /** `step` is the step the run failed on, or null when no step is to blame. */
  readonly data: { readonly error: RunError; readonly step: string | null; readonly at: string };
};

/** The run is cancelled: a step in flight is aborted and ends FAILED (CANCELLED); its call's charge follows (StepCharged). */
export type RunCancelled = {
  readonly type: 'RunCancelled';
  readonly data: { readonly reason: string; readonly at: string };
};

/** A `control.filter` step's condition did not hold: the run stops there, successfully. */
export type RunFiltered = {
  readonly type: 'RunFiltered';
  readonly data: { readonly step: string; readonly at: string };
};

/** The error of a step that was in flight (or waiting) when its run was cancelled (the run decider and read model set it). */
export const CANCELLED_STEP_ERROR: RunError = { code: 'CANCELLED', message: 'The run was cancelled while this step was in flight: it was aborted' };

export type RunEvent =
  | RunQueued
  | RunStarted
  | StepCarriedOver
  | StepStarted
  | StepWaiting
  | StepSucceeded
  | StepFailed
  | StepSkipped
  | RunSucceeded
  | RunFailed
  | RunCancelled
  | RunFiltered
  | StepCharged;

export const RUN_CATEGORY = 'run';
export const runStream = (runId: string): string => `${RUN_CATEGORY}-${runId}`;

/**
 * The idempotency key of one attempt of one step: deterministic, so the executor re-running an attempt after a
 * crash sends the same key (an HTTP Idempotency-Key header, a model call's generation id). Step keys match
 * `^[a-z][a-z0-9_]*$`, so the dots cannot be confused with the parts.
 */
export const stepIdempotencyKey = (runId: string, key: string, attempt: number): string => `${runId}.${key}.${attempt}`;

/**
 * The `Idempotency-Key` of a step's outbound call: one per step, the same for every attempt (a retry after a timeout
 * or a 5xx whose work the target had done is the same work, as Temporal's run id + activity id), and for a re-run
 * after a crash. The attempt travels beside it (`X-Switchyard-Attempt`).
 */
export const stepCallKey = (runId: string, key: string): string => `${runId}.${key}`;
