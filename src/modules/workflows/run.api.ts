/**
 * Workflow runs: manual starts, cancels, reads, and the executor that drives every run to its end.
 *
 * The executor asks the pure run decider (`next`) what to do, does it (evaluates the step's expressions, runs its
 * StepRunner) and records the outcome through the decider, until the run ends. Everything it knows is in the run's
 * stream, so a run interrupted by a crash is picked up on the next start (`resumeAll`): a succeeded step never runs
 * again, a step in flight runs again with the same idempotency key.
 *
 * Concurrency: a workflow runs at most `settings.maxConcurrentRuns` runs at once (the setting of the version a run
 * pins); further runs are recorded as queued (RunQueued) and admitted in queue order (RunStarted) as runs end, also
 * after a restart (the queue is rebuilt from the read model). Deciding and recording a start is one critical section
 * per workflow, so two starts cannot both take the last slot.
 *
 * Several processes: only the process holding the `workflows` lease (engine.ts) drives runs and admits them; it is
 * `active` between `resumeAll` (on taking the lease) and `pause` (on losing it). Any other process hands a start over:
 * it records the run as queued, and the holder, which follows the log's RunQueued events, admits it in log order, so
 * the count of running runs is one process's count and holds across processes. The holder also follows run ends, so
 * a run cancelled elsewhere stops at once and its slot is freed. Every step event is appended at the exact revision
 * the executor knows: an executor whose append conflicts while the run still runs has met another executor (a former
 * holder that had not yet stopped) and stops driving the run quietly instead of resuming the step itself.
 */
import { createHash } from 'node:crypto';
import { workflowRunQueries, type WorkflowRunDoc } from '../../../projections/workflowRuns.js';
import type { ProjectionRunner } from '../../../projections/runner.js';
import type { Actor } from '../../core.js';
import { ConflictError, NotFoundError, RateLimitedError, UnauthenticatedError, ValidationError, WrongExpectedVersionError } from '../../errors.js';
import type { DomainEvent, EventStore, JsonValue, RecordedEvent } from '../../eventStore/eventStore.js';
import { followEvents, type Follower } from '../../eventStore/follower.js';
import { foldEvents, handleCommand, type Decider, type HandleResult } from '../../eventStore/handleCommand.js';
import type { AbortLike } from '../../cancellation.js';
import { newId } from '../../ids.js';
import { checkFiniteNumbers } from '../../objects.js';
import { setLongTimeout, type LongTimer } from '../../longTimer.js';
import { oneAtATime } from '../../oneAtATime.js';
import type { Logger } from '../../logger.js';
import type { ReadStore } from '../../readStore/readStore.js';
import { isAdmin, onlyOwnKey, type Caller, type Principal } from '../auth/principal.js';
import type { Role } from '../accounts/account.events.js';
import type { WorkflowDefinition } from './definition.js';
import { carryOver, evolve, initialState, next, runDecider, DEFAULT_RUN_LIMITS, DELAY_STEP, RUN_ERROR_CODES, type NextAction, type RunCommand, type RunLimits, type RunState, type RunStatus, type StartedRunState, type StartRunData, type StepStatus } from './run.decider.js';
import { RUN_CATEGORY, runStream, type RunError, type RunEvent } from './run.events.js';
import { createRunProgress, type ProgressFailure, type RunProgressItem, type RunStatusChange } from './run.progress.js';
import type { ExpressionThreads } from './expressionThreads.js';
import { DEFAULT_EXPRESSION_LIMITS, type ExpressionLimits, type ExpressionScope } from './run.expressions.js';
import { controlSteps, wakeUpTime } from './steps/control.js';
import { StepError, type StepRunners } from './steps/step.js';
import { sameCall, startIdempotent, type KeyScope } from './runIdempotency.js';
import type { WorkflowsApi } from './workflow.api.js';
import type { LiveWorkflowState } from './workflow.decider.js';

export interface RunStepView {
  readonly key: string;
  readonly status: StepStatus;
  readonly attempts: number;
  readonly output: JsonValue;
  /** The last attempt's input, its expressions evaluated (null before an outcome is recorded). */
  readonly input: JsonValue;
  readonly error: RunError | null;
  readonly cost: number;
  /** From the step's first start to its outcome (retries and their waits included); null until it ends. */
  readonly durationMs: number | null;
  /** The run whose outcome of this step was reused (a retry): the step did not run in this run. */
  readonly carriedFrom: string | null;
  /** When a waiting delay step wakes (null unless it waits). */
  readonly wakingAt: string | null;
}

/** A run as commands and queries answer it. */
export interface RunView {
  readonly id: string;
  readonly workflowId: string;
  readonly version: number;
  readonly status: RunStatus;
  readonly steps: readonly RunStepView[];
  readonly output: JsonValue;
  readonly error: RunError | null;
  readonly cost: number;
  /** When the run was admitted; while it is queued, when it was queued. */
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  /** When the run was queued for a slot, or null if it started at once. */
  readonly queuedAt: string | null;
  /** The failed run this one retries, or null. */
  readonly retryOf: string | null;
  /** Runs before this one in a chain of runs triggering each other (error workflows, emitted events, entries a run wrote). */
  readonly depth: number;
}

/** The codes of failures the executor decides (the decider's own are in RUN_ERROR_CODES). */
export const EXECUTOR_ERROR_CODES = {
  unknownStep: 'UNKNOWN_STEP_TYPE',
  timeout: 'STEP_TIMEOUT',
  failed: 'STEP_FAILED',
  badOutput: 'BAD_STEP_OUTPUT',
} as const;

/**
 * Runs a chain of runs triggering each other may hold before one is refused: a run at a greater depth is recorded as
 * failed with CHAIN_TOO_DEEP (and logged) instead of started, so two workflows whose error workflows or emitted
 * events trigger each other stop.
 */
export const MAX_CHAIN_DEPTH = 5;

/**
 * Runs one chain may start (counted by the chain's first run, on the process that starts them, since its start): a
 * run that starts several others, each doing the same, fans out as fast as the depth limit allows; past this, its
 * runs are recorded as failed with CHAIN_TOO_LONG instead of started.
 */
export const MAX_RUNS_PER_CHAIN = 100;
/** Chains whose runs are counted at once (the oldest are forgotten first). */
const COUNTED_CHAINS = 10_000;

/** What a start refused for the account's maximum of runs suggests waiting (runs end at their own pace). */
const TOO_MANY_RUNS_RETRY_MS = 5_000;

/** A wait longer than this is taken in parts (setTimeout cannot wait past 2^31 - 1 ms; the loop asks `next` again). */
const MAX_TIMER_MS = 6 * 60 * 60 * 1_000;

/**
 * How long the executor waits for a runner it aborted (a step timeout, a cancel) to settle, for what its call was
 * charged: an aborted model call settles at once (the gateway charges what was generated), and that charge must count
 * against the budget before another attempt reserves. A runner that ignores its signal longer does not hold the run.
 */
export const ABORTED_STEP_SETTLE_MS = 5_000;

/** Run ids are ours (`run_…`): anything else cannot name one, so it is not looked up. */
const RUN_ID = /^run_[0-9a-z]{1,64}$/;
/** Bytes of a manual run's input as JSON. */
export const MAX_TRIGGER_BYTES = 256 * 1024;

/** How a run is started. */
export interface StartOptions {
  /** A derived run id (an Idempotency-Key, a due time, an entry event): a run already started with it is answered. */
  readonly runId?: string;
  /** How many runs of a chain of runs triggering each other precede this one (see MAX_CHAIN_DEPTH). */
  readonly depth?: number;
  /** The first run of that chain (see MAX_RUNS_PER_CHAIN). */
  readonly chain?: string;
  /**
   * Answer only once the read models hold the start (default), so the caller may query the run next. A trigger that
   * never reads the run passes false: its start is answered as soon as it is durable, which is what lets a burst of
   * due schedules start at the rate of the event log instead of the read models'.
   */
  readonly readYourWrites?: boolean;
  /** With a derived run id: whether the run already started with it answers this start (its trigger is the same call's); else a CONFLICT. */
  readonly matches?: (trigger: JsonValue) => boolean;
  /**
   * Past the account's maximum of runs running or queued: `refuse` (a caller's start: RATE_LIMITED, 429) or `record`
   * (a trigger's firing: recorded as a FAILED run, TOO_MANY_RUNS, so the skipped firing shows, never queued).
   */
  readonly whenTooMany?: 'refuse' | 'record';
}

/** Runs running or queued at once per account, across its workflows (config: WORKFLOW_MAX_RUNS_PER_ACCOUNT). */
export const DEFAULT_MAX_RUNS_PER_ACCOUNT = 100;

/** One start of a batch (startMany): a trigger's start, with the run id it derived. */
export interface StartRequest {
  readonly caller: Caller;
  readonly workflowId: string;
  readonly trigger: JsonValue;
  readonly options: Omit<StartOptions, 'readYourWrites'> & { readonly runId: string };
}

/**
 * Starts of a batch decided and appended in one pass (one transaction): bounded, so a burst of 10,000 hands the event
 * loop back between passes, and the fsync of one pass runs while the next is decided.
 */
const START_PASS = 500;
/** Runs started by batches driven at once; the others wait their turn (see driveWaiting). */
const BATCH_DRIVEN = 256;

type Execute = <S, C, E extends DomainEvent>(stream: string, decider: Decider<S, C, E>, command: C, actor: Actor) => Promise<HandleResult<S, E>>;

const parseJson = (text: string | null): JsonValue => (text === null ? null : (JSON.parse(text) as JsonValue));

const viewOfDoc = (doc: WorkflowRunDoc): RunView => ({
  id: doc._id,
  workflowId: doc.workflowId,
  version: doc.version,
  status: doc.status,
  steps: doc.steps.map((step) => ({
    key: step.key,
    status: step.status,
    attempts: step.attempts,
    output: parseJson(step.output),
    input: parseJson(step.input ?? null),
    error: step.error,
    cost: step.cost,
    durationMs: step.startedAt !== null && step.endedAt !== null ? Math.max(0, Date.parse(step.endedAt) - Date.parse(step.startedAt)) : null,
    carriedFrom: step.carriedFrom,
    // Absent in documents written before delays existed.
    wakingAt: step.wakingAt ?? null,
  })),
  output: parseJson(doc.output),
  error: doc.error,
  cost: doc.cost,
  startedAt: doc.startedAt,
  endedAt: doc.endedAt,
  durationMs: doc.durationMs,
  queuedAt: doc.queuedAt,
  retryOf: doc.retryOf,
  depth: doc.depth,
});

/** What a command decided, before the read model has it (the decider's state holds no output or end time). */
const viewOfState = (state: RunState, ended: { at: string; error: RunError | null } | null): RunView => {
  if (state.status === 'none') throw new Error('a run command decided on a run that does not exist');
  const startedAt = new Date(state.startedAt).toISOString();
  return {
    id: state.runId,
    workflowId: state.workflowId,
    version: state.version,
    status: state.status,
    steps: [...state.steps].map(([key, step]) => ({
      key,
      status: step.status,
      attempts: step.attempt,
      output: step.output,
      input: null,
      error: step.error,
      cost: 0,
      durationMs: null,
      carriedFrom: step.carriedFrom,
      wakingAt: step.status === 'waiting' && step.wakeAt !== null ? new Date(step.wakeAt).toISOString() : null,
    })),
    output: null,
    error: ended?.error ?? null,
    cost: state.spent,
    startedAt,
    endedAt: ended?.at ?? null,
    durationMs: ended === null ? null : Math.max(0, Date.parse(ended.at) - state.startedAt),
    queuedAt: state.queuedAt === null ? null : new Date(state.queuedAt).toISOString(),
    retryOf: state.retryOf,
    depth: state.depth,
  };
};

/** A retry's id, derived from the run it retries: retrying the same run again answers the same retry. */
const retryRunId = (runId: string): string => `run_${createHash('sha256').update(`retry\n${runId}`).digest('hex').slice(0, 40)}`;

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The step's outcome as the executor records it, with the input it ran on (absent when that failed to evaluate).
 * `lateCharge`: an aborted runner had not settled within ABORTED_STEP_SETTLE_MS; what it is charged once it does.
 */
type Outcome = { readonly input?: JsonValue } & (
  | { readonly ok: true; readonly output: JsonValue; readonly cost: number }
  | { readonly ok: false; readonly error: RunError; readonly retryable: boolean; readonly cost: number; readonly lateCharge?: Promise<number | null> }
);

/** The run ended (a cancel, here or elsewhere) with the step in flight: nothing to record but its call's charge, once settled. */
interface Interrupted {
  readonly interrupted: true;
  readonly charge: Promise<number | null>;
}

/** A charge to record once the run has ended (StepCharged): a step's call that settled after the run's end. */
interface LateCharge {
  readonly key: string;
  readonly attempt: number;
  readonly charge: Promise<number | null>;
}

const isCost = (cost: unknown): cost is number => typeof cost === 'number' && Number.isSafeInteger(cost) && cost >= 0;

/** What a runner was charged once it settles (a StepError's cost when it failed); null when it has not within `ms`. */
const settledCharge = (running: Promise<{ readonly cost: number }> | undefined, ms: number): Promise<number | null> => {
  if (running === undefined) return Promise.resolve(0);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    void running
      .then(
        (result) => result.cost,
        (error: unknown) => (error instanceof StepError ? error.cost : 0),
      )
      .then((cost) => {
        clearTimeout(timer);
        resolve(isCost(cost) ? cost : 0);
      });
  });
};

/** A run's state and the revision of its stream's last event. */
interface Known {
  readonly state: RunState;
  readonly revision: number;
}

/**
 * Another executor appended to the run's stream while it still runs: this one stops driving the run (not a failure of
 * the run, not retried: the other executor goes on with it).
 */
class DrivenElsewhere extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId} is driven by another executor`);
  }
}

/** The run events the lease holder follows: starts handed over by other processes, and ends recorded anywhere. */
const FOLLOWED_RUN_EVENTS = ['RunQueued', 'RunSucceeded', 'RunFailed', 'RunCancelled', 'RunFiltered'] as const satisfies readonly RunEvent['type'][];

/** One run the executor is driving: aborting it stops the step in flight (a cancel, or the server stopping). */
interface Driving {
  readonly controller: AbortController;
  /** Ends a retry's backoff wait early. */
  wake: (() => void) | null;
  done: Promise<void>;
}

export const createRunsApi = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  runner: ProjectionRunner;
  execute: Execute;
  workflows: WorkflowsApi;
  /** The step runners of the other step groups; the control steps are built in. */
  steps: StepRunners;
  /** Where the steps' expressions are evaluated: threads stopped at an expression's time limit. */
  expressions: ExpressionThreads;
  logger: Logger;
  now: () => Date;
  limits?: { run?: RunLimits; expression?: ExpressionLimits; maxRunsPerAccount?: number };
  /** The account's roles as they are now (the auth directory's): a step acts with them, so a role revoked counts at once. */
  rolesOf: (accountId: string) => ReadonlySet<Role>;
  /** Why the run's key is refused now (the auth directory's): a key revoked, disabled or expired spends no more through its runs. */
  keyRefusal: (keyId: string) => UnauthenticatedError | null;
}) => {
  const queries = workflowRunQueries(deps.readStore);
  const runners: StepRunners = { ...controlSteps, ...deps.steps };
  const runLimits = deps.limits?.run ?? DEFAULT_RUN_LIMITS;
  const expressionLimits = deps.limits?.expression ?? DEFAULT_EXPRESSION_LIMITS;
  const maxRunsPerAccount = deps.limits?.maxRunsPerAccount ?? DEFAULT_MAX_RUNS_PER_ACCOUNT;
  const driving = new Map<string, Driving>();
  const progress = createRunProgress({ eventStore: deps.eventStore, logger: deps.logger });
  /** Stopped for good (shutdown). */
  let stopping = false;
  /** This process holds the workflows lease: it drives runs and admits queued ones (from resumeAll until pause). */
  let active = false;
  /** A graceful stop (`drain`): the steps in flight may finish, no step starts and no queued run is admitted (until pause). */
  let draining = false;
  /** The holder's follower of queued runs and run ends (see FOLLOWED_RUN_EVENTS). */
  let runEvents: Follower | null = null;

  /** A new run's identity: its place in a chain (when a run caused it) and the key it spends under (when one started it). */
  const startData = (runId: string, workflow: { workflowId: string; version: number; accountId: string }, trigger: JsonValue, options: StartOptions, principal: Principal): StartRunData => {
    const depth = options.depth ?? 0;
    return {
      runId,
      workflowId: workflow.workflowId,
      version: workflow.version,
      trigger,
      ...(depth > 0 && { depth }),
      ...(options.chain !== undefined && { chain: options.chain }),
      ...startingKey(principal, workflow.accountId),
      at: deps.now().toISOString(),
    };
  };

  /** Runs started per chain on this process, by the chain's first run; the least recently started forgotten first. */
  const chainRuns = new Map<string, number>();

  /** Why a run may not start for its place in a chain (too deep, or its chain started too many), or null; a run that may is counted. */
  const chainRefusal = (data: StartRunData): RunError | null => {
    const depth = data.depth ?? 0;
    if (depth > MAX_CHAIN_DEPTH) {
      return { code: RUN_ERROR_CODES.chain, message: `Not started: this run would be run ${depth + 1} of a chain of runs triggering each other (error workflows, emitted events, model calls); at most ${MAX_CHAIN_DEPTH + 1} run in a chain` };
    }
    if (data.chain === undefined) return null;
    const started = chainRuns.get(data.chain) ?? 0;
    if (started >= MAX_RUNS_PER_CHAIN) {
      return { code: RUN_ERROR_CODES.chainTooLong, message: `Not started: the chain of runs begun by ${data.chain} has started ${MAX_RUNS_PER_CHAIN} runs, its limit (runs starting runs that start runs)` };
    }
    chainRuns.delete(data.chain);
    chainRuns.set(data.chain, started + 1);
    if (chainRuns.size > COUNTED_CHAINS) chainRuns.delete(chainRuns.keys().next().value!);
    return null;
  };

  /** A run its chain refuses: recorded as started and failed at once (no step runs, so it causes nothing), and logged. */
  const refuseRun = async (definition: WorkflowDefinition, data: StartRunData, actor: Actor, error: RunError): Promise<RunView> => {
    deps.logger.warn({ runId: data.runId, workflowId: data.workflowId, depth: data.depth ?? 0, chain: data.chain, code: error.code }, `workflow runs: ${error.code === RUN_ERROR_CODES.tooManyRuns ? 'the account is at its maximum of runs running or queued' : 'a chain of runs triggering each other reached its limit'} (${error.code}); the run is recorded as failed, not started`);
    const { state } = await deps.execute(runStream(data.runId), runDecider(definition, runLimits), { type: 'RefuseRun', data: { ...data, error } }, actor);
    return viewOfState(state, { at: data.at, error });
  };

  /**
   * The caller's key when it is a key of the workflow's own account (RunIdentity.keyId): the run spends under its limit.
   * A trigger calls as the key that caused its event (triggers/chain.ts), so a run a key causes is its run too.
   */
  const startingKey = (principal: Principal, owner: string): { keyId?: string } => (principal.keyId && principal.accountId === owner ? { keyId: principal.keyId } : {});

  const principalOf = (caller: Caller): Principal => {
    if (!caller.principal) throw new UnauthenticatedError();
    return caller.principal;
  };
  /** The caller's account owns the workflow (or the caller is an admin); otherwise it does not exist for them. */
  const requireWorkflow = async (caller: Caller, workflowId: string): Promise<string> => {
    const principal = principalOf(caller);
    const owner = await deps.workflows.ownerOf(workflowId);
    if (owner === null || (owner !== principal.accountId && !isAdmin(principal))) throw new NotFoundError('Workflow', workflowId);
    return owner;
  };
  /**
   * Policy: whose runs a restricted key (Principal.restricted: a spending limit, or issued to an app) sees: only those it
   * started or caused (RunIdentity.keyId: what spends under it), as it sees only its own generations; another key's,
   * a webhook's or a schedule's run holds triggers and step outputs (model answers) that are the account's. The key
   * to list them by, when only one key's may be seen (undefined: all of the account's).
   */
  const visibleKey = onlyOwnKey;

  /**
   * The run's first event, if the caller may see the run: another account's run, and for a restricted key a run it did
   * not start (visibleKey), is NOT_FOUND like a missing one.
   */
  const requireRun = async (caller: Caller, runId: string) => {
    const principal = principalOf(caller);
    const [first] = RUN_ID.test(runId) ? ((await deps.eventStore.readStream(runStream(runId), { maxCount: 1 })) as RecordedEvent<RunEvent>[]) : [];
    if (first?.type !== 'RunStarted' && first?.type !== 'RunQueued') throw new NotFoundError('WorkflowRun', runId);
    const onlyKey = visibleKey(principal);
    if (onlyKey !== undefined && first.data.keyId !== onlyKey) throw new NotFoundError('WorkflowRun', runId);
    const owner = await deps.workflows.ownerOf(first.data.workflowId);
    if (owner === null || (owner !== principal.accountId && !isAdmin(principal))) throw new NotFoundError('WorkflowRun', runId);
    return first.data;
  };

  const scopeOf = (state: StartedRunState, definition: WorkflowDefinition): ExpressionScope => {
    const steps: Record<string, JsonValue> = {};
    for (const [key, step] of state.steps) if (step.status === 'succeeded') steps[key] = step.output;
    return {
      trigger: state.trigger,
      steps,
      run: { id: state.runId, startedAt: new Date(state.startedAt).toISOString() },
      workflow: { id: state.workflowId, version: state.version, name: definition.name },
    };
  };

  /**
   * Run one attempt of a step. Interrupted when the run ended meanwhile (a cancel): only the charge of its call is left
   * to record. Null when this process stops driving runs: nothing is recorded, the next holder runs the attempt again.
   */
  const perform = async (
    state: StartedRunState,
    definition: WorkflowDefinition,
    action: Extract<NextAction, { kind: 'start' | 'resume' }>,
    owner: string,
    run: Driving,
  ): Promise<Outcome | Interrupted | null> => {
    const step = definition.steps.find((candidate) => candidate.key === action.step.key);
    if (!step) return { ok: false, error: { code: EXECUTOR_ERROR_CODES.failed, message: `Step ${action.step.key} is not in version ${state.version}` }, retryable: false, cost: 0 };
    const now = deps.now().getTime();
    const stepLimitMs = step.timeoutSeconds === undefined ? Infinity : step.timeoutSeconds * 1_000;
    // The run's own deadline comes first: then it is the run that ran out of time (not retryable), not the step.
    const runOutOfTime = action.deadline - now < stepLimitMs;
    const timeoutMs = Math.max(0, Math.min(stepLimitMs, action.deadline - now));
    const timedOut = () =>
      runOutOfTime
        ? new StepError(RUN_ERROR_CODES.timeout, `The run ran longer than its ${definition.settings.timeoutSeconds} s (settings.timeoutSeconds) during step ${step.key}`, false)
        : new StepError(EXECUTOR_ERROR_CODES.timeout, `Step ${step.key} ran longer than ${Math.round(timeoutMs / 1_000)} s`, true);
    const controller = new AbortController();
    const onRunAbort = () => controller.abort(run.controller.signal.reason);
    run.controller.signal.addEventListener('abort', onRunAbort, { once: true });
    let timer: LongTimer | undefined;
    let evaluated: JsonValue | undefined;
    let running: ReturnType<StepRunners[string]> | undefined;
    // A runner that ignores its signal must not hold the run: the executor stops waiting for it when it is aborted.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      // The run's deadline may be 30 days away: past setTimeout's 24.8 days it would fire at once.
      timer = setLongTimeout(() => controller.abort(timedOut()), timeoutMs);
    });
    aborted.catch(() => undefined);
    try {
      const runner = runners[step.type];
      if (runner === undefined) throw new StepError(EXECUTOR_ERROR_CODES.unknownStep, `There is no runner for step type ${step.type} (step ${step.key})`, false);
      const input = await Promise.race([deps.expressions.evaluateStepInput(step.input, scopeOf(state, definition), `steps.${step.key}.input`, expressionLimits, { account: owner, signal: controller.signal }), aborted]);
      evaluated = input as JsonValue;
      running = runner(input, {
          runId: state.runId,
          workflowId: state.workflowId,
          stepKey: step.key,
          attempt: action.attempt,
          idempotencyKey: action.idempotencyKey,
          principal: { accountId: owner, keyId: state.keyId, roles: deps.rolesOf(owner) },
          keyRefused: state.keyId === null ? null : deps.keyRefusal(state.keyId),
          budgetLeft: Math.max(0, definition.settings.budget - state.spent),
          signal: controller.signal,
          // A runner that outlived its timeout or cancel may still stream: its tokens are not the run's any more.
          onProgress: (event) => {
            if (!controller.signal.aborted) progress.token(state.runId, step.key, action.attempt, event.content);
          },
        });
      running.catch(() => undefined);
      const result = await Promise.race([running, aborted]);
      if (!Number.isSafeInteger(result.cost) || result.cost < 0) {
        return { ok: false, error: { code: EXECUTOR_ERROR_CODES.badOutput, message: `Step ${step.key} reported a cost that is not a whole number of nano-dollars` }, retryable: false, cost: 0, input: evaluated };
      }
      const text = result.output === undefined ? 'null' : JSON.stringify(result.output);
      if (text === undefined) return { ok: false, error: { code: EXECUTOR_ERROR_CODES.badOutput, message: `Step ${step.key} produced output that is not JSON` }, retryable: false, cost: result.cost, input: evaluated };
      return { ok: true, output: JSON.parse(text) as JsonValue, cost: result.cost, input: evaluated };
    } catch (error) {
      const interrupted = (): Interrupted | null => (active ? { interrupted: true, charge: settledCharge(running, ABORTED_STEP_SETTLE_MS) } : null);
      if (run.controller.signal.aborted) return interrupted();
      const withInput = evaluated === undefined ? {} : { input: evaluated };
      if (controller.signal.aborted) {
        // Timed out: the runner was aborted and settles in a moment, charged for what its call generated. That charge
        // is the attempt's, and counts against the budget before a next attempt reserves: it is waited for.
        const charge = await settledCharge(running, ABORTED_STEP_SETTLE_MS);
        if (run.controller.signal.aborted) return active ? { interrupted: true, charge: Promise.resolve(charge) } : null;
        const failure = error instanceof StepError ? { code: error.code, message: error.message } : { code: EXECUTOR_ERROR_CODES.failed, message: `Step ${step.key} failed: ${describeError(error)}` };
        if (charge !== null) return { ok: false, error: failure, retryable: error instanceof StepError ? error.retryable : true, cost: charge, ...withInput };
        // Still not settled: recorded without its charge and not retried; the charge is recorded once it lands.
        return { ok: false, error: failure, retryable: false, cost: 0, lateCharge: settledCharge(running, ABORTED_STEP_SETTLE_MS), ...withInput };
      }
      if (error instanceof StepError) return { ok: false, error: { code: error.code, message: error.message }, retryable: error.retryable, cost: isCost(error.cost) ? error.cost : 0, ...withInput };
      // An unexpected failure of a runner: the step's retry policy decides whether it is tried again.
      return { ok: false, error: { code: EXECUTOR_ERROR_CODES.failed, message: `Step ${step.key} failed: ${describeError(error)}` }, retryable: true, cost: 0, ...withInput };
    } finally {
      timer?.clear();
      run.controller.signal.removeEventListener('abort', onRunAbort);
    }
  };

  const readState = async (runId: string): Promise<Known> => {
    const history = (await deps.eventStore.readStream(runStream(runId))) as RecordedEvent<RunEvent>[];
    return { state: foldEvents({ initialState, evolve }, history), revision: history.at(-1)?.revision ?? -1 };
  };

  /** `known`: the run as its start just recorded it (so a new run's stream is not read back). */
  const loop = async (runId: string, run: Driving, known?: Known): Promise<void> => {
    let { state, revision } = known ?? (await readState(runId));
    if (state.status !== 'running') return;
    const { workflowId, version } = state;
    const [definition, owner] = await Promise.all([deps.workflows.definitionAt(workflowId, version), deps.workflows.ownerOf(workflowId)]);
    if (definition === null || owner === null) {
      deps.logger.error({ runId, workflowId, version }, 'workflow run: its pinned definition is missing; the run cannot go on');
      return;
    }
    const decider = runDecider(definition, runLimits);
    /**
     * The run's way (steps started, succeeded, failed, skipped) goes on once committed, without an fsync each: a power
     * loss takes back at most a tail of the log (what survives is a prefix), which puts the run back as a crash at that
     * point would: attempts and their idempotency keys derive from the recorded events, so the steps after it run
     * again with the keys they had. What may not be lost is durable before it is used, and so are the step records
     * before it (one log): a model step's reservation before its answer reaches the run, so it is charged once. The
     * start was made durable before its id was answered (`begin`); the end is made durable before the loop returns,
     * which is what wakes a synchronous webhook's answer (`waitForEnd`) and frees the run's slot.
     */
    const record = async (command: RunCommand) => {
      const metadata = { actor: owner, correlationId: runId, at: deps.now().toISOString() };
      // Decided on the state this loop holds, appended at the revision it knows (no read of the stream per step); a
      // write by someone else in between (a cancel) is a wrong expected revision, and then it reads, decides again.
      const events = decider.decide(command, state);
      if (events.length === 0) return;
      let durable: Promise<void>;
      try {
        const appended = await deps.eventStore.append(
          runStream(runId),
          events.map((event) => ({ type: event.type, data: event.data, metadata })),
          { expectedRevision: revision === -1 ? 'no_stream' : revision, durability: 'commit' },
        );
        state = events.reduce(decider.evolve, state);
        revision = appended.nextExpectedRevision;
        durable = appended.durable;
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
        // Only executors append to a running run (a cancel ends it): a run that still runs has another executor,
        // which recorded this step's start or outcome first. Going on would run the step a second time.
        ({ state, revision } = await readState(runId));
        if (state.status === 'running') throw new DrivenElsewhere(runId);
        return;
      }
      if (state.status !== 'running') await durable;
    };
    const at = () => deps.now().toISOString();
    /** Charges of calls that settle after the run's end (the step a cancel aborted), recorded once it has ended. */
    const late: LateCharge[] = [];

    const steps = async (): Promise<void> => {
      while (state.status === 'running' && !run.controller.signal.aborted) {
        const now = deps.now().getTime();
        const action = next(state, definition, now, runLimits);
        // Draining: recording what is decided goes on (an end, a skip), but nothing starts that the stop would cut;
        // the run stays running and is resumed at the next start (or by the next holder).
        if (draining && (action.kind === 'start' || action.kind === 'resume' || action.kind === 'wait')) return;
        switch (action.kind) {
          case 'idle':
            return;
          case 'finish':
            await record({ type: 'FinishRun', data: { at: at() } });
            break;
          case 'skip':
            await record({ type: 'SkipStep', data: { key: action.step.key, reason: action.reason, at: at() } });
            break;
          case 'wait':
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, Math.min(MAX_TIMER_MS, Math.max(0, action.until - now)));
              run.wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            run.wake = null;
            break;
          case 'wake':
            await record({ type: 'WakeStep', data: { key: action.step.key, attempt: action.attempt, at: at() } });
            break;
          case 'start': {
            const { key } = action.step;
            // A condition decides once, before the first attempt (the decider refuses a skip later on).
            if (action.step.if !== undefined && action.attempt === 1) {
              let holds: boolean | StepError;
              try {
                holds = Boolean(await deps.expressions.evaluateExpression(action.step.if, scopeOf(state, definition), `steps.${key}.if`, expressionLimits, { account: owner, signal: run.controller.signal }));
              } catch (error) {
                // Cancelled, ended elsewhere or stopping: nothing to record (a resumed run decides again).
                if (run.controller.signal.aborted) return;
                holds = error instanceof StepError ? error : new StepError(EXECUTOR_ERROR_CODES.failed, describeError(error), false);
              }
              if (holds === false) {
                await record({ type: 'SkipStep', data: { key, reason: 'condition', at: at() } });
                break;
              }
              if (holds instanceof StepError) {
                // A condition that cannot be evaluated fails its step, so the error shows where it belongs.
                await record({ type: 'RecordStepStarted', data: { key, attempt: action.attempt, estimatedCost: 0, at: at() } });
                if (state.status === 'running') {
                  await record({ type: 'RecordStepFailed', data: { key, attempt: action.attempt, error: { code: holds.code, message: holds.message }, retryable: false, cost: 0, at: at() } });
                }
                break;
              }
            }
            await record({ type: 'RecordStepStarted', data: { key, attempt: action.attempt, estimatedCost: 0, at: at() } });
            if (state.status !== 'running') break;
            await performAndRecord(state, definition, action, owner, run, record, late);
            break;
          }
          case 'resume':
            await performAndRecord(state, definition, action, owner, run, record, late);
            break;
          default: {
            const _never: never = action;
            return;
          }
        }
      }
    };

    try {
      await steps();
    } finally {
      // The run has ended (or this loop stops): each late charge is recorded on the ended run, once (the decider
      // ignores a repeat), so the run's cost is what its account was charged for it.
      for (const { key, attempt, charge } of late) {
        const cost = await charge;
        if (cost === 0) continue;
        if (cost === null) {
          deps.logger.warn({ runId, step: key, attempt }, 'workflow run: an aborted step did not settle in time; whatever its call is charged is not in the run\'s cost (the ledger and usage have it)');
          continue;
        }
        try {
          await deps.execute(runStream(runId), decider, { type: 'RecordStepCharge', data: { key, attempt, cost, at: at() } }, { actor: owner, correlationId: runId });
        } catch (error) {
          deps.logger.error({ err: error, runId, step: key, attempt, cost }, 'workflow run: recording the charge of an aborted step failed; the run\'s cost leaves it out (the ledger and usage have it)');
        }
      }
    }
  };

  const performAndRecord = async (
    state: StartedRunState,
    definition: WorkflowDefinition,
    action: Extract<NextAction, { kind: 'start' | 'resume' }>,
    owner: string,
    run: Driving,
    record: (command: RunCommand) => Promise<void>,
    late: LateCharge[],
  ) => {
    const outcome = await perform(state, definition, action, owner, run);
    if (outcome === null) return;
    const { key } = action.step;
    if ('interrupted' in outcome) return void late.push({ key, attempt: action.attempt, charge: outcome.charge });
    const now = deps.now();
    const at = now.toISOString();
    if (outcome.ok && action.step.type === DELAY_STEP) {
      // The runner said how long (delayPlan); the wake-up time is stored, not held in a timer.
      const until = new Date(wakeUpTime(outcome.output, now.getTime())).toISOString();
      await record({ type: 'RecordStepWaiting', data: { key, attempt: action.attempt, until, at } });
    } else if (outcome.ok) await record({ type: 'RecordStepSucceeded', data: { key, attempt: action.attempt, output: outcome.output, cost: outcome.cost, input: outcome.input, at } });
    else {
      const chargePending = outcome.lateCharge !== undefined;
      await record({ type: 'RecordStepFailed', data: { key, attempt: action.attempt, error: outcome.error, retryable: outcome.retryable, cost: outcome.cost, input: outcome.input, ...(chargePending && { chargePending }), at } });
      if (outcome.lateCharge) late.push({ key, attempt: action.attempt, charge: outcome.lateCharge });
    }
  };

  /** Per workflow: the runs holding a slot (started, not ended) and the queued runs in queue order. */
  const slots = new Map<string, { readonly active: Set<string>; queue: string[] }>();
  /** The workflow of each run holding a slot. */
  const holders = new Map<string, string>();
  const slotsOf = (workflowId: string) => {
    let slot = slots.get(workflowId);
    if (!slot) slots.set(workflowId, (slot = { active: new Set(), queue: [] }));
    return slot;
  };
  /**
   * Per account, its workflows that have held slots on this process: what its runs running or queued are counted over
   * (the account cap). Only the lease holder counts; a start another process hands over is counted once it holds it.
   */
  const accountWorkflows = new Map<string, Set<string>>();
  const noteOwner = (workflowId: string, accountId: string): void => {
    let owned = accountWorkflows.get(accountId);
    if (!owned) accountWorkflows.set(accountId, (owned = new Set()));
    owned.add(workflowId);
  };
  const runsInFlight = (accountId: string): number => {
    let count = 0;
    for (const workflowId of accountWorkflows.get(accountId) ?? []) {
      const slot = slots.get(workflowId);
      if (slot) count += slot.active.size + slot.queue.length;
    }
    return count;
  };
  /** The refusal of a start past the account's maximum of runs running or queued, or null when it may start. */
  const tooManyRuns = (accountId: string): RunError | null => {
    const count = runsInFlight(accountId);
    if (count < maxRunsPerAccount) return null;
    return { code: RUN_ERROR_CODES.tooManyRuns, message: `Not started: the account has ${count} workflow runs running or queued, its maximum (WORKFLOW_MAX_RUNS_PER_ACCOUNT ${maxRunsPerAccount}); start again once some have ended` };
  };
  const tooManyRunsError = (error: RunError) => new RateLimitedError(error.message.replace(/^Not started: /, 'Run not started: '), TOO_MANY_RUNS_RETRY_MS, { reason: 'too_many_runs', limit: maxRunsPerAccount });

  /** By id, not by position: a cancel may take a run out of the queue while an admission waits on the store. */
  const dequeue = (workflowId: string, runId: string): void => {
    const slot = slots.get(workflowId);
    if (slot) slot.queue = slot.queue.filter((id) => id !== runId);
  };
  /** Per-workflow critical sections, so deciding whether a run takes a slot and recording it are one step. */
  const exclusive = oneAtATime();
  /**
   * The critical sections of several workflows at once (a batch of starts): entered in one synchronous pass (oneAtATime
   * takes a place in line when called), so two batches sharing workflows queue in the same order in each and cannot
   * wait on each other.
   */
  const exclusiveAll = async <T>(workflowIds: readonly string[], work: () => Promise<T>): Promise<T> => {
    let leave!: () => void;
    const left = new Promise<void>((resolve) => (leave = resolve));
    const entered = [...new Set(workflowIds)].map(
      (workflowId) =>
        new Promise<void>((resolve) => {
          void exclusive(workflowId, () => {
            resolve();
            return left;
          });
        }),
    );
    try {
      await Promise.all(entered);
      return await work();
    } finally {
      leave();
    }
  };
  /** Queue a run once (the holder's own QueueRun and the follower's RunQueued name the same run). */
  const enqueue = (workflowId: string, runId: string): void => {
    const slot = slotsOf(workflowId);
    if (!slot.active.has(runId) && !slot.queue.includes(runId)) slot.queue.push(runId);
  };
  /** Resolved once resumeAll has rebuilt the slots and the queue, so a start right after a takeover counts them. */
  let markRecovered: () => void = () => undefined;
  let recovered = new Promise<void>((resolve) => (markRecovered = resolve));
  const admitTimers = new Set<NodeJS.Timeout>();

  /** Admit queued runs of the workflow while its runs are under their maximum (inside its critical section). */
  const admitQueued = async (workflowId: string): Promise<void> => {
    const slot = slotsOf(workflowId);
    while (active && !draining && slot.queue.length > 0) {
      const runId = slot.queue[0]!;
      const state = foldEvents({ initialState, evolve }, (await deps.eventStore.readStream(runStream(runId))) as RecordedEvent<RunEvent>[]);
      const definition = state.status === 'queued' ? await deps.workflows.definitionAt(workflowId, state.version) : null;
      if (state.status !== 'queued' || definition === null) {
        // Cancelled while queued (or its definition is gone, which cannot happen: versions are kept): not admitted.
        dequeue(workflowId, runId);
        continue;
      }
      if (slot.active.size >= definition.settings.maxConcurrentRuns) return;
      // A workflow disabled or deleted since the run was queued starts no more runs: the queued one is cancelled.
      const workflow = await deps.workflows.current(workflowId);
      if (workflow === null || workflow.status !== 'enabled') {
        const at = deps.now().toISOString();
        const reason = `Not started: the workflow was ${workflow === null ? 'deleted' : workflow.status} while the run was queued`;
        try {
          await handleCommand(deps.eventStore, runStream(runId), runDecider(definition, runLimits), { type: 'CancelRun', data: { reason, at } }, { metadata: { actor: 'system', correlationId: runId, at } });
        } catch (error) {
          // Cancelled by someone else between our read and our append.
          if (!(error instanceof ConflictError)) throw error;
        }
        dequeue(workflowId, runId);
        continue;
      }
      const owner = workflow.accountId;
      try {
        const at = deps.now().toISOString();
        await handleCommand(deps.eventStore, runStream(runId), runDecider(definition, runLimits), { type: 'AdmitRun', data: { at } }, { metadata: { actor: owner, correlationId: runId, at } });
      } catch (error) {
        // Cancelled between our read and our append: the next one in line.
        if (!(error instanceof ConflictError)) throw error;
        dequeue(workflowId, runId);
        continue;
      }
      dequeue(workflowId, runId);
      slot.active.add(runId);
      holders.set(runId, workflowId);
      drive(runId);
    }
    if (slot.active.size === 0 && slot.queue.length === 0) slots.delete(workflowId);
  };
  /** Admit what can be admitted; a failure (the event store unreachable) tries again a moment later. */
  const admit = (workflowId: string, delayMs = 1_000): void =>
    void exclusive(workflowId, () => admitQueued(workflowId)).catch((error: unknown) => {
      if (!active) return;
      deps.logger.error({ err: error, workflowId, retryInMs: delayMs }, 'workflow runs: admitting queued runs failed; trying again');
      const timer = setTimeout(() => {
        admitTimers.delete(timer);
        admit(workflowId, Math.min(delayMs * 2, 60_000));
      }, delayMs);
      admitTimers.add(timer);
    });
  /** A run this process drove has ended (or is cancelled): its slot goes to the next queued run. */
  const release = (runId: string): void => {
    const workflowId = holders.get(runId);
    if (workflowId === undefined || !active) return;
    holders.delete(runId);
    slots.get(workflowId)?.active.delete(runId);
    admit(workflowId);
  };

  /**
   * Record a new run as started, or as queued when its workflow is at its maximum of concurrent runs (or others wait
   * already: the queue is first come, first served); a started run is driven at once.
   */
  const begin = async (definition: WorkflowDefinition, data: StartRunData, actor: Actor, readYourWrites: boolean, owner: string, whenTooMany: 'refuse' | 'record'): Promise<RunView> => {
    if (active) await recovered;
    // Not the lease holder: the run is handed over queued (the holder admits it); counting here would count one process.
    if (!active) return handOver(definition, data, actor, readYourWrites);
    return exclusive(data.workflowId, async () => {
      noteOwner(data.workflowId, owner);
      const tooMany = tooManyRuns(owner);
      if (tooMany !== null) {
        if (whenTooMany === 'refuse') throw tooManyRunsError(tooMany);
        return refuseRun(definition, data, actor, tooMany);
      }
      const slot = slotsOf(data.workflowId);
      const queued = slot.queue.length > 0 || slot.active.size >= definition.settings.maxConcurrentRuns;
      const command: RunCommand = { type: queued ? 'QueueRun' : 'StartRun', data };
      // Durable before it is answered either way (a webhook's 202 names the run); the read models are waited for only
      // by a caller who may read the run next.
      const { state, revision } = readYourWrites
        ? await deps.execute(runStream(data.runId), runDecider(definition, runLimits), command, actor)
        : await handleCommand(deps.eventStore, runStream(data.runId), runDecider(definition, runLimits), command, { metadata: { actor: actor.actor, correlationId: actor.correlationId, at: deps.now().toISOString() } });
      if (queued) enqueue(data.workflowId, data.runId);
      else {
        slot.active.add(data.runId);
        holders.set(data.runId, data.workflowId);
        drive(data.runId, { state, revision });
      }
      return viewOfState(state, null);
    });
  };

  /**
   * Runs a batch started, waiting for the executor: at most BATCH_DRIVEN of them are driven at once, so 10,000 started
   * together do not all evaluate their steps at once (each would take long enough to hit its expression timeout).
   * They hold their slots meanwhile, as a run does during a slow step.
   */
  const waitingToDrive: { runId: string; known: Known }[] = [];
  let batchDriven = 0;
  const driveWaiting = (): void => {
    while (active && batchDriven < BATCH_DRIVEN && waitingToDrive.length > 0) {
      const { runId, known } = waitingToDrive.shift()!;
      drive(runId, known);
      const run = driving.get(runId);
      if (run === undefined) continue;
      batchDriven++;
      void run.done.finally(() => {
        batchDriven--;
        driveWaiting();
      });
    }
  };

  /** Record a run queued for the lease holder, which follows RunQueued and admits it in log order. */
  const handOver = async (definition: WorkflowDefinition, data: StartRunData, actor: Actor, readYourWrites: boolean): Promise<RunView> => {
    const command: RunCommand = { type: 'QueueRun', data };
    const { state } = readYourWrites
      ? await deps.execute(runStream(data.runId), runDecider(definition, runLimits), command, actor)
      : await handleCommand(deps.eventStore, runStream(data.runId), runDecider(definition, runLimits), command, { metadata: { actor: actor.actor, correlationId: actor.correlationId, at: deps.now().toISOString() } });
    return viewOfState(state, null);
  };

  /** The holder learns of runs queued by other processes and of runs ended anywhere (a cancel elsewhere). */
  const onRunEvent = (recorded: RecordedEvent): void => {
    const event = recorded as RecordedEvent<RunEvent>;
    if (event.type === 'RunQueued') {
      const { runId, workflowId } = event.data;
      if (holders.has(runId)) return;
      enqueue(workflowId, runId);
      admit(workflowId);
      void deps.workflows.ownerOf(workflowId).then(
        (owner) => owner !== null && noteOwner(workflowId, owner),
        () => undefined,
      );
      return;
    }
    const runId = event.stream.slice(RUN_CATEGORY.length + 1);
    const run = driving.get(runId);
    if (run) {
      // Ended by another process (a cancel): the step in flight is abandoned, as a cancel here does.
      run.controller.abort(new Error(`run ${runId} has ended`));
      run.wake?.();
      return;
    }
    const workflowId = holders.get(runId);
    if (workflowId !== undefined) release(runId);
    else for (const [id, slot] of slots) if (slot.queue.includes(runId)) dequeue(id, runId);
  };

  /** Stop driving and admitting (the lease is lost, or shutdown): steps in flight are abandoned unrecorded. */
  const halt = async (): Promise<void> => {
    active = false;
    draining = false;
    const follower = runEvents;
    runEvents = null;
    for (const timer of retryTimers) clearTimeout(timer);
    retryTimers.clear();
    for (const timer of admitTimers) clearTimeout(timer);
    admitTimers.clear();
    const runs = [...driving.values()];
    for (const run of runs) {
      run.controller.abort(new Error('this process no longer drives workflow runs'));
      run.wake?.();
    }
    await Promise.all([follower?.stop(), ...runs.map((run) => run.done)]);
    // The next holder rebuilds them from the read model.
    slots.clear();
    holders.clear();
    failures.clear();
    // Starts waiting for a takeover that ended here hand their runs over; the next takeover has its own wait.
    markRecovered();
    recovered = new Promise<void>((resolve) => (markRecovered = resolve));
  };

  /** Failures in a row of the executor per run (the event store unreachable, say), for the backoff before it tries again. */
  const failures = new Map<string, number>();
  const retryTimers = new Set<NodeJS.Timeout>();

  const stillRunning = async (runId: string): Promise<boolean> =>
    foldEvents({ initialState, evolve }, (await deps.eventStore.readStream(runStream(runId))) as RecordedEvent<RunEvent>[]).status === 'running';

  /** Drive a run to its end (once per run in this process). */
  const drive = (runId: string, known?: Known): void => {
    if (!active || driving.has(runId)) return;
    const run: Driving = { controller: new AbortController(), wake: null, done: Promise.resolve() };
    driving.set(runId, run);
    run.done = loop(runId, run, known)
      .then(
        () => {
          failures.delete(runId);
          release(runId);
        },
        async (error: unknown) => {
          if (error instanceof DrivenElsewhere) {
            // Its slot is freed when the follower sees the run end.
            failures.delete(runId);
            deps.logger.warn({ runId }, 'workflow run: another executor recorded a step of this run first; this process stops driving it');
            return;
          }
          // A cancel between our read and our append is a conflict that ends the loop as it should.
          if (error instanceof ConflictError && !(await stillRunning(runId).catch(() => true))) {
            failures.delete(runId);
            return release(runId);
          }
          if (!active) return;
          const count = (failures.get(runId) ?? 0) + 1;
          failures.set(runId, count);
          const delayMs = Math.min(1_000 * 2 ** (count - 1), 60_000);
          deps.logger.error({ err: error, runId, retryInMs: delayMs }, 'workflow run: the executor failed; trying the run again');
          const timer = setTimeout(() => {
            retryTimers.delete(timer);
            drive(runId);
          }, delayMs);
          retryTimers.add(timer);
        },
      )
      .finally(() => driving.delete(runId));
  };

  /** A run as its stream has it (output and end included), or null when there is no such run. */
  const viewOfStream = async (runId: string): Promise<RunView | null> => (await readRun(runId))?.view ?? null;

  /** The run as its stream has it, and the log position of its last event. */
  const readRun = async (runId: string): Promise<{ view: RunView; position: number; trigger: JsonValue } | null> => {
    const history = (await deps.eventStore.readStream(runStream(runId))) as RecordedEvent<RunEvent>[];
    const state = foldEvents({ initialState, evolve }, history);
    if (state.status === 'none') return null;
    const last = history[history.length - 1]!;
    // Late charges come after the run's end: the end is the last event before them.
    const end = history.findLast((event) => event.type !== 'StepCharged') ?? last;
    return { view: viewOfHistory(state, end), position: last.position, trigger: state.trigger };
  };

  const viewOfHistory = (state: StartedRunState, last: RecordedEvent<RunEvent>): RunView => {
    switch (last.type) {
      case 'RunSucceeded':
        return { ...viewOfState(state, { at: last.data.at, error: null }), output: last.data.output };
      case 'RunFailed':
        return viewOfState(state, { at: last.data.at, error: last.data.error });
      case 'RunCancelled':
        return viewOfState(state, { at: last.data.at, error: { code: 'CANCELLED', message: last.data.reason } });
      case 'RunFiltered':
        return viewOfState(state, { at: last.data.at, error: null });
      case 'RunQueued':
      case 'RunStarted':
      case 'StepCarriedOver':
      case 'StepStarted':
      case 'StepWaiting':
      case 'StepSucceeded':
      case 'StepFailed':
      case 'StepSkipped':
      case 'StepCharged':
        return viewOfState(state, null);
      default: {
        const _never: never = last;
        return _never;
      }
    }
  };

  /** The workflow a call names, if the caller may see it (NOT_FOUND otherwise, as a missing one). */
  const reachable = async (caller: Caller, workflowId: string) => {
    const principal = principalOf(caller);
    // From the workflow's stream (folded in memory, as fresh as the log): no read-model round trip per start.
    const workflow = await deps.workflows.current(workflowId);
    if (workflow === null || workflow.status === 'deleted' || (workflow.accountId !== principal.accountId && !isAdmin(principal))) throw new NotFoundError('Workflow', workflowId);
    return { principal, workflow };
  };

  /**
   * Whether the workflow may start this run now: CONFLICT when not enabled, VALIDATION for the start's input (its size,
   * and numbers JSON can hold: a webhook's or manual run's `1e999` would reach expressions as null; places are named
   * as in the trigger, `body.a.b` for the input's `a.b`).
   */
  const checkStart = (workflow: LiveWorkflowState, triggerPayload: JsonValue, runId: string): void => {
    if (workflow.status !== 'enabled') throw new ConflictError(`Workflow ${workflow.workflowId} is ${workflow.status}: enable it to run it`, { status: workflow.status });
    const bytes = Buffer.byteLength(JSON.stringify(triggerPayload) ?? 'null', 'utf8');
    if (bytes > MAX_TRIGGER_BYTES) throw new ValidationError(`The run's input is ${bytes} bytes, over the limit of ${MAX_TRIGGER_BYTES}`, { field: 'input' });
    checkFiniteNumbers(triggerPayload, 'run input', '');
    if (!RUN_ID.test(runId)) throw new ValidationError(`${runId} is not a run id`, { field: 'runId' });
  };

  /** The workflow a start is for, checked (NOT_FOUND, CONFLICT when not enabled) with the start's input (VALIDATION). */
  const startable = async (caller: Caller, workflowId: string, triggerPayload: JsonValue, runId: string) => {
    const found = await reachable(caller, workflowId);
    checkStart(found.workflow, triggerPayload, runId);
    return found;
  };

  /** A derived id already taken, as read: its run, if it is a run of this workflow (anything else is a conflict, not a replay). */
  const takenRun = (runId: string, existing: Awaited<ReturnType<typeof readRun>>, workflowId: string, error: unknown, matches?: (trigger: JsonValue) => boolean): RunView => {
    if (existing === null || existing.view.workflowId !== workflowId) throw error;
    if (matches !== undefined && !matches(existing.trigger)) {
      throw new ConflictError(`Run ${runId} was started by an earlier call with this key and another trigger: a key is for retries of the same call`, { runId });
    }
    return existing.view;
  };

  /** A derived id already taken: its run, read now (takenRun). */
  const existingRun = async (runId: string, workflowId: string, error: unknown, matches?: (trigger: JsonValue) => boolean): Promise<RunView> =>
    takenRun(runId, await readRun(runId), workflowId, error, matches);

  /**
   * Starts of one batch (startMany) recorded in one pass: each decided (started or queued) on this process's slots in
   * batch order, its first event appended with `no_stream` at commit, every append of the pass sharing one
   * transaction; the pass ends once they are committed (not yet durable).
   */
  const beginPass = (items: readonly { definition: WorkflowDefinition; data: StartRunData; actor: Actor; owner: string }[]) =>
    exclusiveAll(
      items.map((item) => item.data.workflowId),
      () =>
        Promise.all(
          items.map(async ({ definition, data, actor, owner }) => {
            // Counted in batch order, before any append: the slots taken by earlier starts of the pass count.
            noteOwner(data.workflowId, owner);
            const tooMany = tooManyRuns(owner);
            if (tooMany !== null) return { ok: 'refused' as const, error: tooMany };
            const slot = slotsOf(data.workflowId);
            const queued = slot.queue.length > 0 || slot.active.size >= definition.settings.maxConcurrentRuns;
            const decider = runDecider(definition, runLimits);
            const events = decider.decide({ type: queued ? 'QueueRun' : 'StartRun', data }, initialState());
            // The slot is taken before the append resolves, so the next start of the same workflow in this pass counts it.
            if (queued) slot.queue.push(data.runId);
            else {
              slot.active.add(data.runId);
              holders.set(data.runId, data.workflowId);
            }
            const metadata = { actor: actor.actor, correlationId: actor.correlationId, at: data.at };
            try {
              const appended = await deps.eventStore.append(
                runStream(data.runId),
                events.map((event) => ({ type: event.type, data: event.data, metadata })),
                { expectedRevision: 'no_stream', durability: 'commit' },
              );
              return { ok: true as const, queued, known: { state: events.reduce(decider.evolve, initialState()), revision: appended.nextExpectedRevision }, durable: appended.durable };
            } catch (error) {
              // Not recorded (its id is taken, or the store failed): the slot goes back; a run queued behind it may go.
              if (queued) dequeue(data.workflowId, data.runId);
              else {
                slot.active.delete(data.runId);
                holders.delete(data.runId);
              }
              return { ok: false as const, error };
            }
          }),
        ),
    );

  const api = {
    /**
     * Start a run of the workflow's current version; answers it as started (then drives it in the background) or, when
     * the workflow is at its maximum of concurrent runs, as queued.
     * `runId` (derived, as from an Idempotency-Key): when that run has already started, it is answered instead of
     * a new one; the run stream's `no_stream` expectation makes this hold across concurrent calls and restarts.
     */
    async start(caller: Caller, workflowId: string, triggerPayload: JsonValue, options: StartOptions = {}): Promise<RunView> {
      const runId = options.runId ?? newId('run');
      const { principal, workflow } = await reachable(caller, workflowId);
      // A retried call (an Idempotency-Key) gets the run it started whatever became of the workflow since (disabled, a
      // new version; deleted is NOT_FOUND, as for any call): looked up before the workflow is asked whether it may
      // start one.
      if (options.runId !== undefined && options.matches !== undefined) {
        const found = await readRun(runId).catch(() => null);
        if (found !== null && found.view.workflowId === workflowId) return takenRun(runId, found, workflowId, null, options.matches);
      }
      checkStart(workflow, triggerPayload, runId);
      try {
        const data = startData(runId, workflow, triggerPayload, options, principal);
        const actor = { actor: principal.accountId, correlationId: caller.requestId };
        const refusal = chainRefusal(data);
        if (refusal) return await refuseRun(workflow.definition, data, actor, refusal);
        return await begin(workflow.definition, data, actor, options.readYourWrites ?? true, workflow.accountId, options.whenTooMany ?? 'refuse');
      } catch (error) {
        if (options.runId === undefined || !(error instanceof ConflictError)) throw error;
        return existingRun(runId, workflowId, error, options.matches);
      }
    },

    /**
     * Start a run once per Idempotency-Key (runIdempotency.ts: 24 hours from the run's start; the same key with another
     * body is a CONFLICT): a webhook's keys are the workflow's, any other caller's are its API key's own (the bootstrap
     * admin key's, its account's). Concurrent calls with one key start one run and all answer it.
     */
    startOnce(caller: Caller, workflowId: string, trigger: { readonly type: string; readonly body: JsonValue; readonly [field: string]: JsonValue }, key: string, scope: 'webhook' | 'caller'): Promise<RunView> {
      const principal = principalOf(caller);
      const keyScope: KeyScope = scope === 'webhook' ? { kind: 'webhook' } : { kind: 'account', accountId: principal.accountId, keyId: principal.keyId };
      return startIdempotent((runId) => api.start(caller, workflowId, trigger, { runId, matches: sameCall(trigger) }), workflowId, keyScope, key, () => deps.now().getTime());
    },

    /**
     * Start many runs at once, each as `start` would with `readYourWrites: false` and a derived run id (what triggers
     * do), answered in order, each fulfilled or rejected as its `start` would be. The same guarantees (a taken id
     * answers its run; the depth limit; queued over maxConcurrentRuns, in batch order) at a fraction of the cost: no
     * read of the run stream before its append (`no_stream` is the check), the appends of a pass share one transaction
     * and one fsync, and the runs are driven only once every start of the batch is durable, so the steps of the first
     * runs do not hold back the starts of the others (10,000 schedules due in the same second).
     */
    async startMany(requests: readonly StartRequest[]): Promise<PromiseSettledResult<RunView>[]> {
      if (active) await recovered;
      // Not (or no longer) the lease holder: each start is handed over queued, as a single start is.
      if (!active) return Promise.allSettled(requests.map((r) => api.start(r.caller, r.workflowId, r.trigger, { ...r.options, readYourWrites: false })));
      const results: PromiseSettledResult<RunView>[] = new Array(requests.length);
      const toDrive: { runId: string; known: Known }[] = [];
      const durables: Promise<void>[] = [];
      const fail = (index: number, reason: unknown) => void (results[index] = { status: 'rejected', reason });
      for (let from = 0; from < requests.length; from += START_PASS) {
        const decided: ({ index: number; definition: WorkflowDefinition; data: StartRunData; actor: Actor; owner: string } | null)[] = [];
        await Promise.all(
          requests.slice(from, from + START_PASS).map(async (request, offset) => {
            const index = from + offset;
            const { caller, workflowId, trigger, options } = request;
            try {
              const { principal, workflow } = await startable(caller, workflowId, trigger, options.runId);
              const data = startData(options.runId, workflow, trigger, options, principal);
              const actor = { actor: principal.accountId, correlationId: caller.requestId };
              // Past a chain's limits: refused one by one, as start does (rare, and logged each).
              const refusal = chainRefusal(data);
              if (refusal) return void (results[index] = { status: 'fulfilled', value: await refuseRun(workflow.definition, data, actor, refusal) });
              // By position, not by arrival: starts of one workflow queue in batch order.
              decided[offset] = { index, definition: workflow.definition, data, actor, owner: workflow.accountId };
            } catch (error) {
              fail(index, error);
            }
          }),
        );
        const items = decided.filter((item) => item != null);
        const outcomes = await beginPass(items);
        await Promise.all(
          outcomes.map(async (outcome, i) => {
            const { index, data, definition, actor } = items[i]!;
            // A trigger's firing past the account's maximum: recorded as a failed run (the skipped firing shows), not queued.
            if (outcome.ok === 'refused') {
              try {
                results[index] = { status: 'fulfilled', value: await refuseRun(definition, data, actor, outcome.error) };
              } catch (error) {
                if (!(error instanceof ConflictError)) return fail(index, error);
                try {
                  results[index] = { status: 'fulfilled', value: await existingRun(data.runId, data.workflowId, error) };
                } catch (taken) {
                  fail(index, taken);
                }
              }
              return;
            }
            if (outcome.ok) {
              durables.push(outcome.durable);
              if (!outcome.queued) toDrive.push({ runId: data.runId, known: outcome.known });
              return void (results[index] = { status: 'fulfilled', value: viewOfState(outcome.known.state, null) });
            }
            if (!(outcome.error instanceof WrongExpectedVersionError)) return fail(index, outcome.error);
            try {
              results[index] = { status: 'fulfilled', value: await existingRun(data.runId, data.workflowId, new ConflictError(`Run ${data.runId} has already started`)) };
            } catch (error) {
              fail(index, error);
            }
          }),
        );
      }
      // Durable before any is answered (a fired due time is a recorded one) or driven.
      const stored = await Promise.allSettled(durables);
      const lost = stored.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (lost) {
        // The store could not make the batch durable: nothing of it is promised (the store refuses every append from here on).
        for (let index = 0; index < results.length; index++) if (results[index]?.status === 'fulfilled') fail(index, lost.reason);
        return results;
      }
      waitingToDrive.push(...toDrive);
      driveWaiting();
      return results;
    },

    /**
     * The run once it has ended, or as it is after `timeoutMs` (a synchronous webhook waits on it). Read from the
     * run's stream, so it does not wait on the read models; woken by this process's executor finishing the run,
     * polling otherwise (a run another process drives, or one waiting for a retry after an executor failure).
     * `signal` (the caller went away) ends the wait early; the run goes on.
     */
    async waitForEnd(runId: string, timeoutMs: number, signal?: AbortSignal): Promise<RunView> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const read = await readRun(runId);
        if (read === null) throw new NotFoundError('WorkflowRun', runId);
        const { view } = read;
        const remaining = until - Date.now();
        if (view.status !== 'running' && view.status !== 'queued') {
          // Read-your-writes: whoever is answered with the run's end may query it next (workflowRun reads the read
          // model), so the answer waits until the read models hold that end. They apply only durable events, so this
          // also waits for the end's fsync (the executor records a running run's steps at commit only); and so does
          // this process's executor, which returns once the end is durable.
          await driving.get(runId)?.done;
          await deps.runner.waitFor(read.position, Math.max(remaining, 1_000));
          return view;
        }
        if (remaining <= 0 || signal?.aborted) return view;
        const run = driving.get(runId);
        await new Promise<void>((resolve) => {
          const done = () => {
            timer.clear();
            signal?.removeEventListener('abort', done);
            resolve();
          };
          // A wait on a run with a 30-day timeout is past setTimeout's 24.8 days: it would poll every millisecond.
          const timer = setLongTimeout(done, run ? remaining : Math.min(remaining, 250));
          signal?.addEventListener('abort', done, { once: true });
          void run?.done.then(done);
        });
      }
    },

    /**
     * Cancel a running run: recorded at once; a step in flight is aborted and ends FAILED (CANCELLED), its outcome not
     * recorded. What its call is charged (the tokens it streamed) is added to the run's cost once it settles (StepCharged).
     */
    async cancel(caller: Caller, runId: string): Promise<RunView> {
      const principal = principalOf(caller);
      const started = await requireRun(caller, runId);
      const definition = await deps.workflows.definitionAt(started.workflowId, started.version);
      if (definition === null) throw new NotFoundError('WorkflowRun', runId);
      const at = deps.now().toISOString();
      const reason = `Cancelled by ${principal.accountId}`;
      const { state } = await deps.execute(runStream(runId), runDecider(definition, runLimits), { type: 'CancelRun', data: { reason, at } }, { actor: principal.accountId, correlationId: caller.requestId });
      const run = driving.get(runId);
      run?.controller.abort(new Error(reason));
      run?.wake?.();
      dequeue(started.workflowId, runId);
      return viewOfState(state, { at, error: { code: 'CANCELLED', message: reason } });
    },

    /**
     * Retry a failed run: a new run of the same pinned version with the same trigger, whose steps before the failed
     * one are carried over from it (their outputs reused: not run again, not charged again), going on from the failed
     * step. It counts against the workflow's concurrent runs like any start (it may queue) and has its own budget.
     * Only a failed run can be retried (CONFLICT otherwise); retrying it again answers the same retry.
     */
    async retry(caller: Caller, runId: string): Promise<RunView> {
      const principal = principalOf(caller);
      const started = await requireRun(caller, runId);
      const workflow = await deps.workflows.get(started.workflowId);
      if (workflow.status !== 'enabled') throw new ConflictError(`Workflow ${started.workflowId} is ${workflow.status}: enable it to retry its runs`, { status: workflow.status });
      const definition = await deps.workflows.definitionAt(started.workflowId, started.version);
      if (definition === null) throw new NotFoundError('WorkflowRun', runId);
      const failed = foldEvents({ initialState, evolve }, (await deps.eventStore.readStream(runStream(runId))) as RecordedEvent<RunEvent>[]);
      if (failed.status === 'none') throw new NotFoundError('WorkflowRun', runId);
      const carried = carryOver(failed, definition);
      const retryId = retryRunId(runId);
      const data = { runId: retryId, workflowId: started.workflowId, version: started.version, trigger: failed.trigger, retryOf: runId, carried, ...startingKey(principal, workflow.accountId), at: deps.now().toISOString() };
      try {
        return await begin(definition, data, { actor: principal.accountId, correlationId: caller.requestId }, true, workflow.accountId, 'refuse');
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        // Retried before: that retry is the answer.
        const existing = await viewOfStream(retryId);
        if (existing === null) throw error;
        return existing;
      }
    },

    /**
     * Policy: whether the caller may see (and so cancel or retry) the run; another account's run, and another key's for
     * a restricted key, is as a missing one.
     */
    canSee: (caller: Caller, runId: string): Promise<boolean> =>
      requireRun(caller, runId).then(
        () => true,
        (error: unknown) => {
          if (error instanceof NotFoundError || error instanceof UnauthenticatedError) return false;
          throw error;
        },
      ),

    /** One run; outputs and inputs too large for the read model are read from the run's stream. */
    async get(caller: Caller, runId: string): Promise<RunView> {
      await requireRun(caller, runId);
      // As of the run's last event in the log: a client that saw the run end on its progress subscription (which
      // follows the log) reads it ended here too, though the read models apply the log in batches (up to ~50 ms).
      const [last] = await deps.eventStore.readStream(runStream(runId), { direction: 'backwards', maxCount: 1 });
      let doc = await queries.byId(runId);
      // `_pos`: the position of the last event the runner applied to the document (projections/runner.ts).
      if (last && ((doc as { _pos?: number } | null)?._pos ?? 0) < last.position && (await deps.runner.waitFor(last.position, 5_000))) doc = await queries.byId(runId);
      if (!doc) throw new NotFoundError('WorkflowRun', runId);
      const view = viewOfDoc(doc);
      if (!doc.outputOmitted && !doc.steps.some((step) => step.outputOmitted || step.inputOmitted === true)) return view;
      const outputs = new Map<string, JsonValue>();
      const inputs = new Map<string, JsonValue>();
      let output: JsonValue = view.output;
      for (const event of (await deps.eventStore.readStream(runStream(runId))) as RecordedEvent<RunEvent>[]) {
        if (event.type === 'StepSucceeded') outputs.set(event.data.key, event.data.output);
        if ((event.type === 'StepSucceeded' || event.type === 'StepFailed') && event.data.input !== undefined) inputs.set(event.data.key, event.data.input);
        if (event.type === 'RunSucceeded') output = event.data.output;
      }
      return {
        ...view,
        output,
        steps: view.steps.map((step) => ({ ...step, output: outputs.has(step.key) ? (outputs.get(step.key) ?? null) : step.output, input: inputs.get(step.key) ?? step.input })),
      };
    },

    /** One page of a workflow's runs in the order they began, a restricted key's own only (page from seqConnection). */
    async list(caller: Caller, workflowId: string, status: RunStatus | null, page: Parameters<ReturnType<typeof workflowRunQueries>['pageForWorkflow']>[3]): Promise<(RunView & { seq: number })[]> {
      await requireWorkflow(caller, workflowId);
      return (await queries.pageForWorkflow(workflowId, status, visibleKey(principalOf(caller)), page)).map((doc) => ({ ...viewOfDoc(doc), seq: doc.seq }));
    },

    /** The run's stored progress so far, then live progress with model tokens, until its end (subscription). */
    async follow(caller: Caller, runId: string): Promise<AsyncIterableIterator<RunProgressItem | ProgressFailure>> {
      await requireRun(caller, runId);
      return progress.follow(runId);
    },

    /** The starts and ends of a workflow's runs from now on, a restricted key's own only (subscription). */
    async followWorkflow(caller: Caller, workflowId: string): Promise<AsyncIterableIterator<RunStatusChange | ProgressFailure>> {
      await requireWorkflow(caller, workflowId);
      return progress.followWorkflow(workflowId, visibleKey(principalOf(caller)));
    },

    /**
     * Take over the runs (the workflows lease was taken; see engine.ts): resume every run that has not ended, rebuild
     * the queue, and follow the runs other processes queue from here on. Starts here wait for it. The read model is
     * brought up to the log's head first, so a run started or queued just before a crash or a handover is not
     * missed; the follower starts at that head, so one queued after it is not missed either.
     */
    async resumeAll(): Promise<number> {
      if (stopping || active) return 0;
      active = true;
      const head = await deps.eventStore.headPosition();
      if (!(await deps.runner.waitFor(head))) deps.logger.warn({ head, position: deps.runner.position }, 'workflow runs: the read models lag; runs started last may resume only on the next start');
      let unfinished: Awaited<ReturnType<typeof queries.unfinished>>;
      try {
        unfinished = await queries.unfinished();
        for (const { _id, workflowId } of unfinished.running) {
          slotsOf(workflowId).active.add(_id);
          holders.set(_id, workflowId);
        }
        for (const { _id, workflowId } of unfinished.queued) enqueue(workflowId, _id);
        // Whose they are, for the account cap (folded workflows answer without a read).
        await Promise.all([...slots.keys()].map(async (workflowId) => ((owner) => owner !== null && noteOwner(workflowId, owner))(await deps.workflows.ownerOf(workflowId))));
        // From the head the read model was brought to: what it already had is deduplicated (enqueue, release).
        runEvents = followEvents(deps.eventStore, { categories: [RUN_CATEGORY], eventTypes: FOLLOWED_RUN_EVENTS }, onRunEvent, { name: 'workflow run queue', logger: deps.logger, after: head });
        await runEvents.start();
      } catch (error) {
        await halt();
        throw error;
      }
      markRecovered();
      const { running, queued } = unfinished;
      for (const { _id } of running) drive(_id);
      for (const workflowId of new Set(queued.map((run) => run.workflowId))) admit(workflowId);
      if (running.length + queued.length > 0) deps.logger.info({ runs: running.length, queued: queued.length }, 'workflow runs: resuming the runs a stop interrupted');
      return running.length + queued.length;
    },

    /**
     * Stop driving and admitting runs (the workflows lease is lost): steps in flight are abandoned unrecorded and run
     * again, with the same idempotency keys, by the next holder. Starts from now on are handed over queued.
     */
    pause: (): Promise<void> => halt(),

    /**
     * A graceful stop's first part (before `pause`): no step starts and no queued run is admitted any more, and the
     * steps in flight get until `cut` aborts (the shutdown grace period's end, or the lease lost) to finish; each that
     * does is recorded as usual. Resolves once none is in flight, or when `cut` aborts: `pause` then stops the rest,
     * unrecorded, and they run again at the next start as after a crash (same attempt, same idempotency key).
     */
    async drain(cut: AbortLike): Promise<void> {
      if (!active || draining) return;
      draining = true;
      // Retry backoffs and delay steps waiting: they end now (the run is resumed at the next start).
      for (const run of driving.values()) run.wake?.();
      const over = new Promise<void>((resolve) => (cut.aborted ? resolve() : cut.addEventListener('abort', () => resolve(), { once: true })));
      if (driving.size > 0) deps.logger.info({ steps: driving.size }, 'workflow runs: the steps in flight may finish; no new step starts');
      while (driving.size > 0 && !cut.aborted) await Promise.race([Promise.all([...driving.values()].map((run) => run.done)), over]);
      if (driving.size > 0) deps.logger.warn({ steps: driving.size }, 'workflow runs: the shutdown grace period is over: the steps still running are stopped, to run again at the next start');
    },

    /** Whether this process drives runs (holds the workflows lease and has taken the runs over). */
    get active(): boolean {
      return active;
    },

    /** Stop driving runs (on shutdown): steps in flight are abandoned unrecorded and run again on the next start. */
    async stop(): Promise<void> {
      stopping = true;
      progress.stop();
      await halt();
    },
  };
  return api;
};

export type RunsApi = ReturnType<typeof createRunsApi>;
