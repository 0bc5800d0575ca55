import { z } from 'zod';
import { DATE_TIME_RULE, parseDateTime } from '../../../dateTime.js';
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

const invalid = (message: string) => new StepError('INVALID_INPUT', `Invalid step input: ${message}`, false);

/**
 * What a `control.delay` step's evaluated input asks (an expression may have produced any value, so the checks made
 * when saved are made again): `{forMs}`, counted by the executor from now, or `{until}` (epoch ms).
 */
export const delayPlan = (input: unknown): { readonly forMs: number } | { readonly until: number } => {
  const wait = field(input, 'for');
  const until = field(input, 'until');
  if ((wait === undefined) === (until === undefined)) throw invalid('input: give either "for" (milliseconds or an ISO-8601 duration such as "PT5M") or "until" (an ISO-8601 time with a zone)');
  if (until !== undefined) {
    const time = parseDateTime(until);
    if (time === null) throw invalid(`input.until: must be an ISO-8601 time: ${DATE_TIME_RULE}; got ${JSON.stringify(until)}`);
    return { until: time };
  }
  const forMs = typeof wait === 'number' ? wait : typeof wait === 'string' ? durationMs(wait) : null;
  if (forMs === null || !Number.isSafeInteger(forMs) || forMs < 0) throw invalid(`input.for: must be milliseconds (a whole number ≥ 0) or an ISO-8601 duration such as "PT5M", got ${JSON.stringify(wait)}`);
  if (forMs > MAX_DELAY_MS) throw invalid(`input.for: must be at most ${MAX_DELAY_MS} ms (30 days)`);
  return { forMs };
};

/** The wake-up time (epoch ms) of a delay step's plan (its runner's output), from `now`. */
export const wakeUpTime = (plan: unknown, now: number): number => {
  const forMs = field(plan, 'forMs');
  const until = field(plan, 'until');
  if (typeof forMs === 'number') return now + forMs;
  if (typeof until === 'number') return until;
  throw new StepError('BAD_STEP_OUTPUT', 'A delay step produced no plan', false);
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
