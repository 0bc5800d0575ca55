import { z } from 'zod';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../../objects.js';
import { formatPath } from '../definition.js';
import { StepError } from './step.js';

/** A step's evaluated input against its schema; a bad one fails the step for good, naming each bad field (`input.model`). */
export const parseInput = <S extends z.ZodType>(schema: S, input: unknown): z.infer<S> => {
  // Before zod, whose JSON schemas (and every walk after them: storing, emitting) recurse once per level.
  if (nestsDeeperThan(input, MAX_JSON_DEPTH)) throw new StepError('INVALID_INPUT', `Invalid step input: input nests more than ${MAX_JSON_DEPTH} levels deep`, false);
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${formatPath(['input', ...issue.path])}: ${issue.message}`);
  throw new StepError('INVALID_INPUT', `Invalid step input: ${problems.join('; ')}`, false);
};

/**
 * The params of a rule over several fields of a step's input (`give prompt or messages`), for zod's `refine`: the
 * rule runs whenever the fields it reads are valid, even when another field is not (zod would skip it), and its
 * issue, at the first field it reads, names them all (`params.reads`), so saving (stepInputs.ts) applies it when they
 * are literal and leaves it to run time when an expression gives one of them. A rule reads whether its fields are
 * given and what they are at the top, never inside an object or array of one: such a value is given even when it
 * holds expressions.
 */
export const readsFields = <S extends z.ZodRawShape>(shape: S, reads: readonly [keyof S & string, ...(keyof S & string)[]], error: string) => {
  const picked = z.object(Object.fromEntries(reads.map((field) => [field, shape[field]!])));
  return { error, path: [reads[0]], params: { reads }, when: (payload: z.core.ParsePayload) => picked.safeParse(payload.value).success };
};
