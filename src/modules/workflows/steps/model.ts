/**
 * `action.model`: one model call through the gateway, by the generations module's `send` (GraphQL's sendPrompt
 * path), billed to the workflow's account. Its generation id is derived from the step's idempotency key, and the
 * answer's text is kept in the generation's record, so an attempt run again after a crash first looks the id up
 * (`recall`) and never calls, nor charges, twice:
 * - recorded as completed: the kept answer is the step's output (nothing is called or charged again); one its provider
 *   ended with an error mid-generation is that error, as live (`outcomeOf`);
 * - recorded as failed: that failure is the attempt's;
 * - recorded as cancelled: the call was cut before the attempt could end (the server stopped, its grace period over;
 *   a cancel of the run or a step timeout is recorded on the run before the attempt could be resumed): it was charged
 *   for what it generated, that charge is the attempt's, and the call is made again under the next derived id;
 * - not recorded, and the ledger never held a reservation for it: the call had not started; it is made now;
 * - not recorded, its reservation released or expired: the call died with the process, uncharged; it is made again
 *   under the next derived id (`{key}#1`, `#2`, …: an id's reservation is never made twice);
 * - not recorded but settled (charged, its record lost), or still reserved after a wait: the step fails for good
 *   rather than risk a second charge.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, DomainError } from '../../../errors.js';
import { GatewayError } from '../../../gateway/gatewayErrors.js';
import { hasRole } from '../../auth/principal.js';
import type { GenerationsApi, RecalledGeneration, SentPrompt } from '../../generations/generation.api.js';
import { parseInput, readsFields } from './parseInput.js';
import { StepError, type StepRunner } from './step.js';

/** `newId`'s shape (`run_` + 9 base-36 time characters + 16 hex): the run's start time, to order its generations by. */
const TIME_ORDERED_ID = /^[a-z]+_([0-9a-z]{9})[0-9a-f]{16}$/;

/**
 * A step attempt's generation id, deterministic and safe in a stream name: `gen-` + the run's time part + 16 hex of
 * the key's SHA-256, the shape of `newGenerationId`, so an account's generations still sort (roughly: by the run's
 * start) by id. A run id of another shape gives `gen-w` + 32 hex.
 */
export const stepGenerationId = (runId: string, idempotencyKey: string): string => {
  const hash = createHash('sha256').update(idempotencyKey).digest('hex');
  const time = TIME_ORDERED_ID.exec(runId)?.[1];
  return time === undefined ? `gen-w${hash.slice(0, 32)}` : `gen-${time}${hash.slice(0, 16)}`;
};

const message = z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(1_000_000) });

const modelFields = {
  model: z.string().min(1).max(200).optional(),
  models: z.array(z.string().min(1).max(200)).min(1).max(10).optional(),
  prompt: z.string().max(1_000_000).optional(),
  messages: z.array(message).min(1).max(500).optional(),
  system: z.string().max(1_000_000).optional(),
  maxTokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  responseFormat: z.record(z.string(), z.unknown()).optional(),
};

export const modelInput = z
  .strictObject(modelFields)
  .refine((i) => i.model !== undefined || i.models !== undefined, readsFields(modelFields, ['model', 'models'], 'give model or models'))
  .refine((i) => (i.prompt === undefined) !== (i.messages === undefined), readsFields(modelFields, ['prompt', 'messages'], 'give prompt or messages (one of them)'));

/**
 * The gateway's error as the run decider needs it: retry what the gateway calls retryable, never a 402; `cost` is what
 * the failed call was charged all the same (it counts against the run's budget).
 */
const stepErrorOf = (error: unknown, cost: number): unknown => {
  if (!(error instanceof DomainError)) return cost > 0 ? new StepError('STEP_FAILED', error instanceof Error ? error.message : String(error), true, cost) : error;
  if (error.status === 402) {
    const budget = error.metadata['limit_source'] === 'budget';
    return new StepError(budget ? 'BUDGET_EXCEEDED' : error.code, error.message, false, cost);
  }
  const said = error.metadata['retryable'];
  const retryable = typeof said === 'boolean' ? said : error.status >= 500 || error.status === 429;
  return new StepError(error.code, error.message, retryable, cost);
};

type GatewayErrorType = ConstructorParameters<typeof GatewayError>[1];

/** Calls of one attempt re-made after crashes that left them unanswered and uncharged, at most. */
const MAX_REMADE_CALLS = 3;
/** How long a resumed attempt waits for the record of a call whose reservation is open or settled. */
const RECORD_WAIT_MS = 2_000;

/** The generation id of an attempt's n-th call: the first is the attempt's own, a call made again gets the next. */
const callGenerationId = (runId: string, idempotencyKey: string, n: number): string => stepGenerationId(runId, n === 0 ? idempotencyKey : `${idempotencyKey}#${n}`);

/**
 * The step's outcome for an answer, its cost what its attempt was charged: the answer's call and the calls of it a stop
 * cut before. An answer its provider ended with an error mid-generation (or with finish reason "error") is no answer for a step: the step fails with
 * that error as the same call failing before any token would (retried as the gateway says, under the step's `retry`),
 * and the partial answer's charge is the attempt's.
 */
const outcomeOf = (sent: SentPrompt, cutCharges: number) => {
  if (sent.error !== null) throw stepErrorOf(sent.error, cutCharges + sent.cost);
  // A finish reason that only maps to "error" (Gemini's MALFORMED_FUNCTION_CALL, one unknown here) blames no endpoint,
  // but the answer is not whole either: the step fails, retried under its `retry` (another try may well succeed).
  if (sent.finishReason === 'error') {
    throw new StepError('PROVIDER_ERROR', `The model's answer ended with finish reason "error" (its record, generation ${sent.generationId}, has the provider's own reason): it is not a whole answer`, true, cutCharges + sent.cost);
  }
  const output = { text: sent.completion, model: sent.model, provider: sent.provider, finishReason: sent.finishReason, usage: sent.usage, cost: sent.cost, generationId: sent.generationId };
  return { output, cost: sent.cost + cutCharges };
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export const actionModel =
  (generations: Pick<GenerationsApi, 'send' | 'recall'>): StepRunner =>
  async (input, context) => {
    const i = parseInput(modelInput, input);
    const { accountId } = context.principal;
    // A model call is an end user's capability (REST and GraphQL ask the same): an account whose role user was revoked
    // spends nothing through its workflows either.
    if (!hasRole(context.principal, 'user')) {
      throw new StepError('FORBIDDEN', "The workflow's account does not have the role user, which a model call needs (an admin grants roles: grantRole)", false);
    }

    /**
     * What became of this id, waiting a little while its reservation is open or settled without a record: a call
     * that just ended has its settlement and its record appended side by side, after its answer.
     */
    const recall = async (generationId: string): Promise<RecalledGeneration> => {
      const until = Date.now() + RECORD_WAIT_MS;
      for (;;) {
        const recalled = await generations.recall(accountId, generationId);
        const pending = recalled.kind === 'unrecorded' && (recalled.reservation === 'open' || recalled.reservation === 'settled');
        if (!pending || Date.now() >= until || context.signal.aborted) return recalled;
        await sleep(100, context.signal);
      }
    };

    /** What this call was charged: from its record, else from its settled reservation (0: refused, or released uncharged). */
    const chargeOf = async (generationId: string): Promise<number> => {
      const recalled = await generations.recall(accountId, generationId);
      return recalled.kind === 'unrecorded' ? recalled.charged : recalled.cost;
    };

    /** What the attempt's earlier calls, cut by a stop, were charged: the attempt's cost includes it. */
    let cutCharges = 0;
    let generationId = callGenerationId(context.runId, context.idempotencyKey, 0);
    for (let n = 0; ; generationId = callGenerationId(context.runId, context.idempotencyKey, ++n)) {
      const recalled = await recall(generationId);
      // A recorded end of this attempt's call that the run has not recorded (the attempt had not ended): its charge is the attempt's.
      if (recalled.kind === 'completed') {
        if (recalled.answer) return outcomeOf(recalled.answer, cutCharges);
        throw new StepError('ANSWER_NOT_KEPT', `This attempt's model call (generation ${generationId}) completed, but its answer was not kept; it is not run, nor charged, twice`, false, cutCharges + recalled.cost);
      }
      if (recalled.kind === 'failed') {
        const said = recalled.retryable === undefined ? {} : { retryable: recalled.retryable };
        throw stepErrorOf(new GatewayError(recalled.status, recalled.errorType as GatewayErrorType, `${recalled.message} (generation ${generationId})`, said), cutCharges + recalled.cost);
      }
      if (recalled.kind === 'cancelled') {
        // Cut before the attempt ended (the server stopped), charged for what it generated: that charge is the
        // attempt's, and the call is made again as after a crash.
        cutCharges += recalled.cost;
      } else {
        const { reservation } = recalled;
        if (reservation === 'none') break;
        if (reservation === 'settled') {
          throw new StepError('ANSWER_LOST', `This attempt's model call (generation ${generationId}) was charged, but the server stopped before its answer was recorded; it is not run, nor charged, again`, false, cutCharges + recalled.charged);
        }
        if (reservation === 'open') {
          throw new StepError('GENERATION_IN_FLIGHT', `This attempt's model call (generation ${generationId}) still holds its reservation (another process may still be running it); it is not run twice`, false, cutCharges);
        }
      }
      // Cut, released or expired: that call ended with no answer; make it again under the next id (an id's reservation
      // is never made twice).
      if (n + 1 > MAX_REMADE_CALLS) {
        throw new StepError('CALL_INTERRUPTED', `This attempt's model call was interrupted ${n + 1} times without an answer (last generation ${generationId}); giving up`, false, cutCharges);
      }
    }

    // A new call spends under the run's key (a recalled answer above was paid for already): a key revoked, disabled
    // or expired since the run began spends nothing more, as the key's own calls would be refused.
    if (context.keyRefused) {
      throw new StepError(
        'UNAUTHENTICATED',
        `The API key this run spends under (the key that started it, or whose write or call triggered it) is refused: ${context.keyRefused.message}; the model is not called (retryWorkflowRun with a key of the account runs it under that key)`,
        false,
        cutCharges,
      );
    }
    const system = i.system === undefined ? [] : [{ role: 'system', content: i.system }];
    const messages = i.messages ?? (i.system === undefined ? undefined : [{ role: 'user', content: i.prompt! }]);
    const { onProgress } = context;
    let sent: SentPrompt;
    try {
      sent = await generations.send(
        context.principal,
        {
          ...(i.model !== undefined && { model: i.model }),
          ...(i.models !== undefined && { models: i.models }),
          ...(messages ? { messages: [...system, ...messages] } : { prompt: i.prompt! }),
          ...(i.maxTokens !== undefined && { maxTokens: i.maxTokens }),
          ...(i.temperature !== undefined && { temperature: i.temperature }),
          ...(i.responseFormat !== undefined && { responseFormat: i.responseFormat }),
        },
        `${context.runId}.${context.stepKey}`,
        {
          generationId,
          maxReserved: Math.max(0, context.budgetLeft - cutCharges),
          signal: context.signal,
          workflow: { workflowId: context.workflowId, runId: context.runId },
          keepCompletion: true,
          ...(onProgress && { onToken: (content: string) => onProgress({ type: 'token', content }) }),
        },
      );
    } catch (error) {
      // The ledger holds (or held) a reservation under this id: a call of this attempt made meanwhile elsewhere.
      if (error instanceof ConflictError) {
        throw new StepError('GENERATION_EXISTS', `This attempt's model call (generation ${generationId}) is being made elsewhere; it is not run, nor charged, twice`, false, cutCharges);
      }
      // A call that failed or was aborted after its admission is charged for what it generated; `send` returns only
      // once a workflow call's charge and record are appended, so its record says what (none: nothing was charged).
      // (A failure to read it keeps the call's own error: the attempt is then recorded without its charge.)
      const cost = cutCharges + (await chargeOf(generationId).catch(() => 0));
      if (context.signal.aborted) throw new StepError('CANCELLED', 'The model call was aborted: the run was cancelled or the step timed out', false, cost);
      throw stepErrorOf(error, cost);
    }
    return outcomeOf(sent, cutCharges);
  };
