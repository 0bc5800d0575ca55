import type { StepResult, StepRunner } from './step.js';

/** The step's input object (the executor hands each step its evaluated `input`, a JSON object). */
const field = (input: unknown, name: string): unknown =>
  typeof input === 'object' && input !== null && !Array.isArray(input) && Object.hasOwn(input, name) ? (input as Record<string, unknown>)[name] : undefined;

const free = (output: unknown): StepResult => ({ output, cost: 0 });

/**
 * The steps that need nothing outside the run: a transform's value, the run's answer, a filter's verdict.
 * `control.branch` is left for the branch work of issue 12.
 */
export const controlSteps = {
  /** The value of its `expression` input (evaluated by the executor like every input); null when absent. */
  'action.transform': async (input) => free(field(input, 'expression') ?? null),
  /** Its whole input becomes the run's output (the run decider takes it from this step's output). */
  'action.respond': async (input) => free(input ?? null),
  /** `{passed}`: the run stops here as filtered unless the `condition` input is truthy. */
  'control.filter': async (input) => free({ passed: Boolean(field(input, 'condition')) }),
} satisfies Record<string, StepRunner>;
