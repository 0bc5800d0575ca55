/**
 * `action.model`: one model call through the gateway, by the generations module's `send` (GraphQL's sendPrompt
 * path), billed to the workflow's account. Its generation id is derived from the step's idempotency key, so an
 * attempt run again after a crash uses the same id: the ledger refuses a second reservation for it and the
 * generation's stream is appended with `no_stream`, so the account can never be charged twice for one attempt.
 * Such a repeat fails the step for good (GENERATION_EXISTS): the first call's answer was not kept, and calling
 * again under a new id could charge twice.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, DomainError } from '../../../errors.js';
import type { GenerationsApi } from '../../generations/generation.api.js';
import { parseInput } from './parseInput.js';
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

const modelInput = z
  .strictObject({
    model: z.string().min(1).max(200).optional(),
    models: z.array(z.string().min(1).max(200)).min(1).max(10).optional(),
    prompt: z.string().max(1_000_000).optional(),
    messages: z.array(message).min(1).max(500).optional(),
    system: z.string().max(1_000_000).optional(),
    maxTokens: z.number().int().positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    responseFormat: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((i) => i.model !== undefined || i.models !== undefined, { error: 'give model or models', path: ['model'] })
  .refine((i) => (i.prompt === undefined) !== (i.messages === undefined), { error: 'give prompt or messages (one of them)', path: ['prompt'] });

/** The gateway's error as the run decider needs it: retry what the gateway calls retryable, never a 402. */
const stepErrorOf = (error: unknown): unknown => {
  if (!(error instanceof DomainError)) return error;
  if (error.status === 402) {
    const budget = error.metadata['limit_source'] === 'budget';
    return new StepError(budget ? 'BUDGET_EXCEEDED' : error.code, error.message, false);
  }
  const said = error.metadata['retryable'];
  const retryable = typeof said === 'boolean' ? said : error.status >= 500 || error.status === 429;
  return new StepError(error.code, error.message, retryable);
};

export const actionModel =
  (generations: Pick<GenerationsApi, 'send' | 'recorded'>): StepRunner =>
  async (input, context) => {
    const i = parseInput(modelInput, input);
    const generationId = stepGenerationId(context.runId, context.idempotencyKey);
    const exists = () =>
      new StepError('GENERATION_EXISTS', `This attempt's model call (generation ${generationId}) already ran; it is not run, nor charged, twice`, false);
    if (await generations.recorded(generationId)) throw exists();
    const system = i.system === undefined ? [] : [{ role: 'system', content: i.system }];
    const messages = i.messages ?? (i.system === undefined ? undefined : [{ role: 'user', content: i.prompt! }]);
    const { onProgress } = context;
    try {
      const sent = await generations.send(
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
          maxReserved: context.budgetLeft,
          signal: context.signal,
          workflow: { workflowId: context.workflowId, runId: context.runId },
          ...(onProgress && { onToken: (content: string) => onProgress({ type: 'token', content }) }),
        },
      );
      return {
        output: { text: sent.completion, model: sent.model, provider: sent.provider, finishReason: sent.finishReason, usage: sent.usage, cost: sent.cost, generationId },
        cost: sent.cost,
      };
    } catch (error) {
      // The ledger already holds (or held) a reservation under this id: an earlier run of this attempt.
      if (error instanceof ConflictError) throw exists();
      if (context.signal.aborted) throw new StepError('CANCELLED', 'The model call was aborted: the run was cancelled or the step timed out', false);
      throw stepErrorOf(error);
    }
  };
