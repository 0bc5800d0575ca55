import { z } from 'zod';
import { parseInput } from './parseInput.js';
import type { StepResult, StepRunner } from './step.js';

/** The step's input object (the executor hands each step its evaluated `input`, a JSON object). */
const field = (input: unknown, name: string): unknown =>
  typeof input === 'object' && input !== null && !Array.isArray(input) && Object.hasOwn(input, name) ? (input as Record<string, unknown>)[name] : undefined;

const free = (output: unknown): StepResult => ({ output, cost: 0 });

/**
 * A branch's input once the executor evaluated it: each path's `if` is the condition's value (any JSON). The saved
 * shape was checked against definition.ts's branchInputSchema; this only guards what the runner reads.
 */
const branchInput = z.object({ paths: z.array(z.object({ name: z.string(), if: z.unknown() })), default: z.string().optional() });

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
} satisfies Record<string, StepRunner>;
