import type { UnauthenticatedError } from '../../../errors.js';
import type { Principal } from '../../auth/principal.js';

/**
 * What the run executor hands a step and what it gets back. One function per step type (`steps/<group>.ts`); the
 * executor evaluates the step's expressions first, so `input` is plain JSON, then appends the outcome through the
 * run decider. A step never appends events itself.
 */
export interface StepContext {
  readonly runId: string;
  readonly workflowId: string;
  readonly stepKey: string;
  readonly attempt: number;
  /** `{runId}.{stepKey}.{attempt}` (run.events.ts): the same after a crash, so side effects can be made idempotent (an HTTP call's own key, one per step: `stepCallKey`). */
  readonly idempotencyKey: string;
  /**
   * The workflow's account, as a principal (the run's model calls are billed to it), with the API key the run spends
   * under (RunIdentity.keyId: the key that started or caused it; null: none).
   */
  readonly principal: Principal;
  /**
   * Why that key is refused now (revoked, disabled, expired), or null: a model step then calls nothing and fails for
   * good, as a call with the key would be refused, and as a spent limit fails it (KEY_LIMIT_REACHED).
   */
  readonly keyRefused?: UnauthenticatedError | null;
  /** What is left of the run's budget, in nano-dollars. */
  readonly budgetLeft: number;
  /**
   * Aborted when the run is cancelled or the step times out. The executor then waits a little (ABORTED_STEP_SETTLE_MS)
   * for the runner to settle, so that what an aborted call was charged (StepError.cost) counts. Also aborted when this
   * process stops driving runs (the lease lost, a stop's grace period over): then nothing is recorded, and the attempt
   * runs again with the same idempotency key, so a runner must not take what that abort left for the attempt's outcome.
   */
  readonly signal: AbortSignal;
  /** Model steps report their tokens as they arrive (for the run's progress subscription). */
  readonly onProgress?: (event: { readonly type: 'token'; readonly content: string }) => void;
}

export interface StepResult {
  /** JSON-safe output, what later steps read as `steps.<key>`. */
  readonly output: unknown;
  /** Nano-dollars this step charged (a model call's cost), 0 otherwise. */
  readonly cost: number;
}

/**
 * A step failed: `retryable` decides whether the run decider may try it again; `cost` is what the attempt was charged
 * all the same (a model call cut by an error, a timeout or a cancel is charged for what it generated), in nano-dollars.
 */
export class StepError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly cost = 0,
  ) {
    super(message);
    this.name = 'StepError';
  }
}

export type StepRunner = (input: unknown, context: StepContext) => Promise<StepResult>;

/** Step runners by step type (definition.ts STEP_TYPES). */
export type StepRunners = Readonly<Record<string, StepRunner>>;
