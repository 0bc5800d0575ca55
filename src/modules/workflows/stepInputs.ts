/**
 * What saving a definition checks of its steps' inputs, past its shape (definition.ts): each input against the schema
 * its step's runner parses it with, literal model ids against the catalog, and literal URLs against the outbound
 * policy's checks that need no DNS (names are resolved, and judged, at each call). So a step that can never run is
 * refused when saved, not at its first run (at 23:00, for a nightly schedule). An expression's value is known only
 * when the step runs: only problems that no value of the input's expressions could fix are reported, so a definition
 * that could run is never refused.
 */
import type { z } from 'zod';
import type { CatalogApi } from '../catalog/catalog.api.js';
import type { OutboundPolicy } from '../outbound/outboundPolicy.js';
import { PRESET_MARK } from '../presets/presetResolution.js';
import { formatPath, isExpression, type DefinitionIssue, type StepDefinition, type WorkflowDefinition } from './definition.js';
import { STEP_INPUT_SCHEMAS } from './steps/index.js';

export interface StepInputChecks {
  readonly catalog: Pick<CatalogApi, 'modelProblem'>;
  readonly outbound: Pick<OutboundPolicy, 'checkUrlStatically'>;
}

type Path = readonly PropertyKey[];

/** A string that is not an expression: its value is known when saved. */
const isLiteralString = (value: unknown): value is string => typeof value === 'string' && !isExpression(value);

const holdsExpression = (value: unknown): boolean => isExpression(value) || (typeof value === 'object' && value !== null && Object.values(value).some(holdsExpression));

/** The values a path goes through, from the whole value to the one it names (undefined past a missing field). */
const valuesAlong = (value: unknown, path: Path): unknown[] => {
  const along = [value];
  let current = value;
  for (const key of path) {
    current = typeof current === 'object' && current !== null && Object.hasOwn(current, key) ? (current as Record<PropertyKey, unknown>)[key] : undefined;
    along.push(current);
  }
  return along;
};

/**
 * Whether some value of the input's expressions could make a schema issue go away: an expression is the value the
 * issue names or one its path goes through; or the issue is a refinement or a union (checks that may read a whole
 * value, or several fields: "give prompt or messages") and an expression is in the value it names or in the object
 * holding it. An unknown key, a missing field, a literal of the wrong type or size stay wrong whatever the expressions
 * give.
 */
const expressionCouldFix = (input: unknown, issue: z.core.$ZodIssue): boolean => {
  const along = valuesAlong(input, issue.path);
  if (along.some(isExpression)) return true;
  if (issue.code !== 'custom' && issue.code !== 'invalid_union') return false;
  return holdsExpression(along.length > 1 ? along[along.length - 2] : input);
};

/** The model ids an action.model input names literally: `model` (its part before `@preset/`: the preset may name it) and each of `models`. */
const literalModels = (input: StepDefinition['input']): { path: Path; id: string }[] => {
  const { model, models } = input;
  const named = isLiteralString(model) ? [{ path: ['model'], id: model.split(PRESET_MARK)[0]! }] : [];
  const listed = Array.isArray(models) ? models.flatMap((id, index) => (isLiteralString(id) ? [{ path: ['models', index], id }] : [])) : [];
  return [...named, ...listed].filter(({ id }) => id !== '');
};

const URL_STEPS: ReadonlySet<string> = new Set(['action.http', 'search.http']);

const stepIssues = (step: StepDefinition, index: number, deps: StepInputChecks): DefinitionIssue[] => {
  const issue = (path: Path, message: string): DefinitionIssue => ({ path: formatPath(['steps', index, 'input', ...path]), message });
  const { input } = step;
  const parsed = STEP_INPUT_SCHEMAS[step.type]?.safeParse(input);
  const issues = parsed?.error?.issues.filter((found) => !expressionCouldFix(input, found)).map((found) => issue(found.path, found.message)) ?? [];
  if (step.type === 'action.model') {
    for (const { path, id } of literalModels(input)) {
      const problem = deps.catalog.modelProblem(id);
      if (problem !== null) issues.push(issue(path, problem));
    }
  }
  // A webhook answers {status, body} with that status: one no HTTP answer can have is a mistake (it went out as a 200
  // whose body was the whole object).
  if (step.type === 'action.respond' && Object.keys(input).every((key) => key === 'status' || key === 'body') && typeof input.status === 'number') {
    if (!Number.isInteger(input.status) || input.status < 200 || input.status > 599) issues.push(issue(['status'], 'status must be an HTTP status from 200 to 599'));
  }
  if (URL_STEPS.has(step.type) && isLiteralString(input.url)) {
    const refusal = deps.outbound.checkUrlStatically(input.url);
    if (refusal) issues.push(issue(['url'], refusal.message));
  }
  return issues;
};

/** Every problem of a definition's step inputs, each at its path (`steps[0].input.prompt`); none when it could run. */
export const checkStepInputs = (definition: WorkflowDefinition, deps: StepInputChecks): DefinitionIssue[] => definition.steps.flatMap((step, index) => stepIssues(step, index, deps));
