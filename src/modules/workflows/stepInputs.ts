/**
 * What saving a definition checks of its steps' inputs, past its shape (definition.ts): each input against the schema
 * its step's runner parses it with, literal model ids against the catalog, literal presets against the account's,
 * and literal URLs against the outbound policy's checks that need no DNS (names are resolved, and judged, at each
 * call). So a step that can never run is
 * refused when saved, not at its first run (at 23:00, for a nightly schedule). An expression's value is known only
 * when the step runs: only problems that no value of the input's expressions could fix are reported, so a definition
 * that could run is never refused.
 */
import type { z } from 'zod';
import { DomainError } from '../../errors.js';
import type { CatalogApi } from '../catalog/catalog.api.js';
import type { OutboundPolicy } from '../outbound/outboundPolicy.js';
import { PRESET_SLUG } from '../presets/preset.events.js';
import { PRESET_MARK, type PresetLookup } from '../presets/presetResolution.js';
import { entryFilter } from '../tables/entryFilter.js';
import { formatPath, isExpression, type DefinitionIssue, type StepDefinition, type WorkflowDefinition } from './definition.js';
import { STEP_INPUT_SCHEMAS } from './steps/index.js';

export interface StepInputChecks {
  readonly catalog: Pick<CatalogApi, 'modelProblem'>;
  readonly outbound: Pick<OutboundPolicy, 'checkUrlStatically'>;
  /** The presets a model step may name: its workflow account's. */
  readonly presets: PresetLookup;
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

/** The fields a rule over several fields of an object reads (steps/parseInput.ts readsFields), when the issue is one's. */
const fieldsRead = (issue: z.core.$ZodIssue): readonly string[] | null => {
  const reads: unknown = issue.code === 'custom' ? issue.params?.['reads'] : undefined;
  return Array.isArray(reads) && reads.every((field) => typeof field === 'string') ? reads : null;
};

/**
 * Whether some value of the input's expressions could make a schema issue go away: an expression is the value the
 * issue names or one its path goes through; or the issue is a rule over several fields (readsFields) and an
 * expression gives one of the fields it reads; or the issue is another refinement or a union (a check
 * that may read a whole value) and an expression is in the value it names. An unknown key, a missing field, a
 * literal of the wrong type or size, a rule over literal fields stay wrong whatever the expressions give.
 */
const expressionCouldFix = (input: unknown, issue: z.core.$ZodIssue): boolean => {
  const along = valuesAlong(input, issue.path);
  if (along.some(isExpression)) return true;
  const reads = fieldsRead(issue);
  if (reads !== null) {
    // The rule's issue is at the first field it reads: the object holding that field is the one it checks.
    const holder = along.length > 1 ? along[along.length - 2] : undefined;
    return reads.some((field) => isExpression(valuesAlong(holder, [field])[1]));
  }
  if (issue.code !== 'custom' && issue.code !== 'invalid_union') return false;
  return holdsExpression(along[along.length - 1]);
};

/**
 * What an action.model input names literally, each at its path: model ids (`model`, its part before `@preset/`
 * since that part overrides the preset's model, and each of `models`) and the preset of `model`.
 */
const literalNames = (input: StepDefinition['input']): { models: { path: Path; id: string }[]; presets: { path: Path; slug: string }[]; inModels: Path[] } => {
  const { model, models } = input;
  const named = isLiteralString(model) ? model.split(PRESET_MARK) : [];
  const listed = Array.isArray(models) ? models.flatMap((id, index) => (isLiteralString(id) ? [{ path: ['models', index], id }] : [])) : [];
  return {
    models: [...(named[0] === undefined ? [] : [{ path: ['model'], id: named[0] }]), ...listed.filter(({ id }) => !id.includes(PRESET_MARK))].filter(({ id }) => id !== ''),
    presets: named.length > 1 ? [{ path: ['model'], slug: named.slice(1).join(PRESET_MARK) }] : [],
    inModels: listed.filter(({ id }) => id.includes(PRESET_MARK)).map(({ path }) => path),
  };
};

/** Why a preset slug names no preset of the account (as a chat naming it would be refused), or null. */
const presetProblem = (slug: string, accountId: string | null, presets: PresetLookup): string | null => {
  if (!PRESET_SLUG.test(slug)) return `${JSON.stringify(slug.slice(0, 80))} is not a preset slug (1 to 64 lowercase letters, digits and -)`;
  return accountId !== null && presets.preset(accountId, slug) !== undefined ? null : `@preset/${slug} is not a preset of this account: create it first (createPreset)`;
};

const URL_STEPS: ReadonlySet<string> = new Set(['action.http', 'search.http']);

const stepIssues = (step: StepDefinition, index: number, accountId: string | null, deps: StepInputChecks): DefinitionIssue[] => {
  const issue = (path: Path, message: string): DefinitionIssue => ({ path: formatPath(['steps', index, 'input', ...path]), message });
  const { input } = step;
  const parsed = STEP_INPUT_SCHEMAS[step.type]?.safeParse(input);
  const issues = parsed?.error?.issues.filter((found) => !expressionCouldFix(input, found)).map((found) => issue(found.path, found.message)) ?? [];
  if (step.type === 'action.model') {
    const { models, presets, inModels } = literalNames(input);
    for (const { path, id } of models) {
      const problem = deps.catalog.modelProblem(id);
      if (problem !== null) issues.push(issue(path, problem));
    }
    for (const { path, slug } of presets) {
      const problem = presetProblem(slug, accountId, deps.presets);
      if (problem !== null) issues.push(issue(path, problem));
    }
    for (const path of inModels) issues.push(issue(path, 'a preset cannot be one of models: name it in model ("@preset/slug"); the preset may hold the models list'));
  }
  // A webhook answers {status, body} with that status: one no HTTP answer can have is a mistake (it went out as a 200
  // whose body was the whole object).
  if (step.type === 'action.respond' && Object.keys(input).every((key) => key === 'status' || key === 'body') && typeof input.status === 'number') {
    if (!Number.isInteger(input.status) || input.status < 200 || input.status > 599) issues.push(issue(['status'], 'status must be an HTTP status from 200 to 599'));
  }
  // A table filter written out is held to the checks `entries` makes when the step runs (a regex that could run for
  // ever, an operator that runs code): refused now, not at every run. One with an expression is checked when it runs.
  const filterField = step.type === 'search.entries' ? 'filter' : step.type === 'action.storeEntry' || step.type === 'action.upsertEntry' ? 'match' : null;
  const filter = filterField === null ? undefined : input[filterField];
  if (filterField !== null && typeof filter === 'object' && filter !== null && !holdsExpression(filter)) {
    try {
      entryFilter(filter);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      issues.push(issue([filterField], error.message));
    }
  }
  if (URL_STEPS.has(step.type) && isLiteralString(input.url)) {
    const refusal = deps.outbound.checkUrlStatically(input.url);
    if (refusal) issues.push(issue(['url'], refusal.message));
  }
  return issues;
};

/**
 * Every problem of a definition's step inputs, each at its path (`steps[0].input.prompt`); none when it could run.
 * `accountId` is the workflow's account, whose presets its model steps may name (null: none).
 */
export const checkStepInputs = (definition: WorkflowDefinition, accountId: string | null, deps: StepInputChecks): DefinitionIssue[] =>
  definition.steps.flatMap((step, index) => stepIssues(step, index, accountId, deps));
