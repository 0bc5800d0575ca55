import type { z } from 'zod';
import { formatPath } from '../definition.js';
import { StepError } from './step.js';

/** A step's evaluated input against its schema; a bad one fails the step for good, naming each bad field (`input.model`). */
export const parseInput = <S extends z.ZodType>(schema: S, input: unknown): z.infer<S> => {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${formatPath(['input', ...issue.path])}: ${issue.message}`);
  throw new StepError('INVALID_INPUT', `Invalid step input: ${problems.join('; ')}`, false);
};
