import { z } from 'zod';
import { durationMs, MAX_DELAY_MS } from '../definition.js';
import { parseInput } from './parseInput.js';
import { StepError, type StepResult, type StepRunner } from './step.js';

/** The step's input object (the executor hands each step its evaluated `input`, a JSON object). */
const field = (input: unknown, name: string): unknown =>
  typeof input === 'object' && input !== null && !Array.isArray(input) && Object.hasOwn(input, name) ? (input as Record<string, unknown>)[name] : undefined;

const free = (output: unknown): StepResult => ({ output, cost: 0 });

/**
 * A branch's input once the executor evaluated it: each path's `if` is the condition's value (any JSON). The saved
 * shape was checked against definition.ts's branchInputSchema; this only guards what the runner reads.
 */
const branchInput = z.object({ paths: z.array(z.object({ name: z.string(), if: z.unknown() })), default: z.string().optional() });

/** A delay's input once evaluated (an expression may have produced any value, so the saved checks are made again). */
const delayInput = z.union(
  [
    z.strictObject({
      for: z.union([
        z.number().int().min(0).max(MAX_DELAY_MS),
        z.string().transform((text, ctx) => durationMs(text) ?? (ctx.addIssue({ code: 'custom', message: 'must be an ISO-8601 duration such as "PT5M"' }), z.NEVER)),
      ]),
    }),
    z.strictObject({ until: z.string().refine((text) => /^\d{4}-\d{2}-\d{2}T/.test(text) && Number.isFinite(Date.parse(text)), 'must be an ISO-8601 time') }),
  ],
  { error: 'must be { "for": <ms> | "PT5M" } or { "until": "<ISO time>" }' },
);

/**
 * What a `control.delay` step's input asks: `{forMs}` (counted by the executor from now) or `{until}` (epoch ms).
 * The executor stores the wake-up time (RecordStepWaiting) instead of recording this as the step's output.
 */
export const delayPlan = (input: unknown): { readonly forMs: number } | { readonly until: number } => {
  const parsed = parseInput(delayInput, input);
  if ('until' in parsed) return { until: Date.parse(parsed.until) };
  if (parsed.for > MAX_DELAY_MS) throw new StepError('INVALID_INPUT', `Invalid step input: input.for: must be at most ${MAX_DELAY_MS} ms (30 days)`, false);
  return { forMs: parsed.for };
};

/** The steps that need nothing outside the run: a transform's value, the run's answer, a filter's or a branch's verdict. */
export const controlSteps = {
  /** The value of its `expression` input (evaluated by the executor like every input); null when absent. */
  'action.transform': async (input) => free(field(input, 'expression') ?? null),
  /** Its whole input becomes the run's output (the run decider takes it from this step's output). */
  'action.respond': async (input) => free(input ?? null),
  /** `{passed}`: the run stops here as filtered unless the `condition` input is truthy. */
  'control.filter': async (input) => free({ passed: Boolean(field(input, 'condition')) }),
  /** `{path}`: the first path whose condition is truthy (as a filter's), else the default, else null (no path). */
  'control.branch': async (input) => {
    const { paths, default: fallback } = parseInput(branchInput, input);
    return free({ path: paths.find((path) => Boolean(path.if))?.name ?? fallback ?? null });
  },
  /** Its plan (delayPlan): the executor turns it into a stored wake-up time; the step's output is `{wokeAt, scheduledFor}`. */
  'control.delay': async (input) => free(delayPlan(input)),
} satisfies Record<string, StepRunner>;
