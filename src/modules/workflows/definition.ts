/**
 * A workflow's definition: the JSON a designer saves, validated with zod when saved. Every error names the path of
 * the bad field (`steps[1].input.model`). Expressions (strings starting with `=`) must compile with JSONata and may
 * reference only `trigger`, `run`, `workflow` and earlier steps (`steps.<key>`). Saving checks step inputs further,
 * against the catalog and the outbound policy too (stepInputs.ts).
 */
import jsonata from 'jsonata';
import { Query } from 'mingo';
import { z } from 'zod';
import { DATE_TIME_RULE, parseDateTime } from '../../dateTime.js';
import { DomainError, ValidationError } from '../../errors.js';
import { linearRegex } from '../../linearRegex.js';
import { entryFilter, payloadFilter } from '../tables/entryFilter.js';
import { TABLE_NAME } from '../tables/table.events.js';
import { compileSchedule } from './triggers/cron.js';

export const STEP_TYPES = [
  'search.models',
  'search.http',
  'action.model',
  'action.transform',
  'action.http',
  'action.respond',
  'control.filter',
  'control.branch',
  'search.entries',
  'action.storeEntry',
  'action.upsertEntry',
  'action.emit',
  'action.githubComment',
  'control.delay',
] as const;
export type StepType = (typeof STEP_TYPES)[number];

/** Bounds of a definition, so one workflow cannot make saving, storing or running it expensive. */
export const DEFINITION_LIMITS = {
  /** Bytes of the definition as JSON. */
  maxBytes: 64 * 1024,
  maxSteps: 50,
  maxConcurrentRuns: 100,
  maxTimeoutSeconds: 3600,
  /**
   * A run's timeout counts its delays (it is a wall-clock deadline), so a workflow with a `control.delay` step may
   * set `settings.timeoutSeconds` up to 30 days; others stay at maxTimeoutSeconds.
   */
  maxDelayedTimeoutSeconds: 30 * 24 * 3600,
  /** Nano-dollars: 1,000 USD per run. */
  maxBudget: 1_000_000_000_000,
  maxRetryAttempts: 10,
  maxBackoffMs: 300_000,
  /** Nesting of arrays and objects: deeper values would exhaust the stack of every recursive reader. */
  maxDepth: 32,
} as const;

/** What an expression may name at its root (besides `steps`, checked step by step). */
const ROOTS: ReadonlySet<string> = new Set(['trigger', 'steps', 'run', 'workflow']);

const STEP_KEY = /^[a-z][a-z0-9_]*$/;

export const isExpression = (value: unknown): value is string => typeof value === 'string' && value.startsWith('=');

const jsonValue = z.json();

const expression = z.string().refine(isExpression, 'must be an expression (a string starting with "=")');

const PATH_NAME = /^[a-z][a-z0-9_]*$/;
const pathName = z.string().regex(PATH_NAME, 'must match ^[a-z][a-z0-9_]*$').max(64);

/** Paths a branch may name: enough for any sane fan-out, bounded so a branch stays cheap to evaluate. */
export const MAX_BRANCH_PATHS = 20;

/**
 * A `control.branch` step's input: named paths, each with a condition (an expression, or a literal boolean); the
 * first path whose condition holds is chosen, else `default` (a name of its own), else none. Steps join a path with
 * their `path` field.
 */
export const branchInputSchema = z
  .strictObject({
    paths: z
      .array(z.strictObject({ name: pathName, if: z.union([expression, z.boolean()]) }))
      .min(1, 'a branch needs at least one path')
      .max(MAX_BRANCH_PATHS, `at most ${MAX_BRANCH_PATHS} paths`),
    default: pathName.optional(),
  })
  .superRefine((input, ctx) => {
    const seen = new Set<string>();
    input.paths.forEach((path, index) => {
      if (seen.has(path.name)) ctx.addIssue({ code: 'custom', path: ['paths', index, 'name'], message: `duplicate path name "${path.name}"` });
      seen.add(path.name);
    });
  });

/** Milliseconds of an ISO-8601 duration of weeks, days, hours, minutes and seconds (`PT5M`, `P1DT2H`, `PT0.5S`). */
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
export const durationMs = (text: string): number | null => {
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) return null;
  const [weeks = 0, days = 0, hours = 0, minutes = 0, seconds = 0] = match.slice(1).map((part) => (part === undefined ? 0 : Number(part)));
  return Math.round((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1_000);
};

/** The longest delay: a run's timeout counts its delays, and no run may last longer than maxDelayedTimeoutSeconds. */
export const MAX_DELAY_MS = DEFINITION_LIMITS.maxDelayedTimeoutSeconds * 1_000;

const delayFor = z.union([
  z.int().min(0, 'must be a number of milliseconds ≥ 0').max(MAX_DELAY_MS, `must be at most ${MAX_DELAY_MS} ms (30 days)`),
  z.string().superRefine((text, ctx) => {
    if (isExpression(text)) return;
    const ms = durationMs(text);
    if (ms === null) ctx.addIssue({ code: 'custom', message: 'must be milliseconds, an ISO-8601 duration of weeks to seconds ("PT5M", "P1DT2H"; no years or months), or an expression' });
    else if (ms > MAX_DELAY_MS) ctx.addIssue({ code: 'custom', message: `must be at most 30 days (${MAX_DELAY_MS} ms)` });
  }),
]);
// The one date-time rule (src/dateTime.ts): a time without a zone would wait until another instant on a host in another zone.
const delayUntil = z.string().refine((text) => isExpression(text) || parseDateTime(text) !== null, `must be an ISO-8601 time: ${DATE_TIME_RULE}; or an expression`);

/**
 * A `control.delay` step's input: wait `for` a duration (milliseconds, or an ISO-8601 duration such as `"PT5M"`) or
 * `until` a time (an RFC 3339 date-time with a zone, as the API's DateTime; one in the past does not wait). Either may be an expression. The wake-up time is stored in
 * the run, so a restart wakes it on time; it must fall before the run's deadline (settings.timeoutSeconds counts
 * delays), or the step fails with DELAY_PAST_TIMEOUT.
 */
export const delayInputSchema = z.union([z.strictObject({ for: delayFor }), z.strictObject({ until: delayUntil })], {
  error: 'must be { "for": <ms> | "PT5M" } or { "until": "<ISO time>" }',
});

const stepSchema = z.strictObject({
  key: z.string().regex(STEP_KEY, 'must match ^[a-z][a-z0-9_]*$ (lowercase letters, digits and _, starting with a letter)').max(64),
  type: z.enum(STEP_TYPES, { error: (issue) => `unknown step type ${JSON.stringify(issue.input)}; known: ${STEP_TYPES.join(', ')}` }),
  input: z.record(z.string(), jsonValue).default({}),
  /** Skip the step unless this expression is true. */
  if: expression.optional(),
  retry: z
    .strictObject({
      attempts: z.int().min(1).max(DEFINITION_LIMITS.maxRetryAttempts),
      /** The wait before the first retry; each further retry waits twice as long. */
      backoffMs: z.int().min(0).max(DEFINITION_LIMITS.maxBackoffMs).default(1000),
    })
    .optional(),
  timeoutSeconds: z.int().min(1).max(DEFINITION_LIMITS.maxTimeoutSeconds).optional(),
  /** The branch path this step belongs to: it runs only if an earlier `control.branch` step chose it. */
  path: pathName.optional(),
});

/**
 * `entry`: a run per new (`on: "insert"`, the default) or updated (`"update"`) entry of one of the account's
 * tables, optionally only those matching `filter` (MongoDB query language over the entry's fields, as `entries`
 * takes). The run's `trigger.entry` is the entry: its fields at the top level, plus `id`, `createdAt`, `updatedAt`.
 */
const entryTrigger = z.strictObject({
  type: z.literal('entry'),
  table: z.string().regex(TABLE_NAME, 'must be a table name: lowercase letters, digits and _, starting with a letter'),
  on: z.enum(['insert', 'update']).default('insert'),
  filter: z
    .record(z.string(), jsonValue)
    .optional()
    .superRefine((filter, ctx) => {
      try {
        entryFilter(filter);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
      }
    }),
});

/** The platform events an `event` trigger can name (triggers/events.ts builds each one's payload). */
export const PLATFORM_EVENTS = ['generation.completed', 'generation.failed', 'balance.below', 'apiKey.created', 'apiKey.revoked', 'workflowRun.failed'] as const;
export type PlatformEventName = (typeof PLATFORM_EVENTS)[number];
/** A custom event (action.emit): `custom.` then a name of lowercase letters, digits, `_`, `-` and `.`. */
export const CUSTOM_EVENT = /^custom\.[a-z][a-z0-9_.-]{0,63}$/;
export const isEventName = (name: string): name is PlatformEventName | `custom.${string}` => (PLATFORM_EVENTS as readonly string[]).includes(name) || CUSTOM_EVENT.test(name);

/**
 * A MongoDB-style match over an event's payload (the read store's query language, run with mingo), held to the
 * checks of a table filter: only data operators, bounded size and nesting, no regex that backtracks for ever, no
 * field path through a prototype.
 */
const eventFilter = z.record(z.string(), jsonValue).superRefine((filter, ctx) => {
  try {
    new Query(payloadFilter(filter), { scriptEnabled: false });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `filter is not a valid MongoDB-style match: ${error instanceof Error ? error.message : String(error)}` });
  }
});

/**
 * `{"type":"event","event":"generation.completed","filter":{"model":"demo/echo"}}`: runs on each such event of the
 * workflow's account whose payload matches the filter; `balance.below` needs `threshold` (nano-dollars) and fires when
 * the balance falls from at or above it to below it.
 */
const eventTriggerSchema = z
  .strictObject({
    type: z.literal('event'),
    event: z.string().refine(isEventName, { error: (issue) => `unknown event ${JSON.stringify(issue.input)}; known: ${PLATFORM_EVENTS.join(', ')}, or custom.<name> (lowercase letters, digits, _ - .)` }),
    filter: eventFilter.optional(),
    threshold: z.int().min(0).max(DEFINITION_LIMITS.maxBudget).optional(),
  })
  .superRefine((trigger, ctx) => {
    if (trigger.event === 'balance.below' && trigger.threshold === undefined) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'balance.below needs a threshold (nano-dollars)' });
    if (trigger.event !== 'balance.below' && trigger.threshold !== undefined) ctx.addIssue({ code: 'custom', path: ['threshold'], message: 'threshold applies to balance.below only' });
  });

/** Workflow ids are ours (`wf_…`). */
export const WORKFLOW_ID = /^wf_[0-9a-z]{1,64}$/;

/**
 * `schedule`: one run per due time of a cron expression (5 fields, or 6 with seconds first) in an IANA time zone.
 * `catchUp` is what a start does about due times missed while the server was down: "one" runs the latest of them
 * once, "none" skips them. The run's trigger is `{ scheduledAt, firedAt }`.
 */
const scheduleTriggerSchema = z
  .strictObject({
    type: z.literal('schedule'),
    cron: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    timezone: z.string().min(1).max(100).default('UTC'),
    catchUp: z.enum(['one', 'none']).default('one'),
  })
  .superRefine((trigger, ctx) => {
    const compiled = compileSchedule(trigger);
    if (!compiled.ok) ctx.addIssue({ code: 'custom', path: [compiled.problem.field], message: compiled.problem.message });
  });

const definitionSchema = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
  trigger: z.discriminatedUnion(
    'type',
    [
      z.strictObject({ type: z.literal('manual') }),
      z.strictObject({ type: z.literal('webhook'), respond: z.enum(['sync', 'async']) }),
      entryTrigger,
      eventTriggerSchema,
      scheduleTriggerSchema,
    ],
    {
      error:
        'must be a trigger: { "type": "manual" }, { "type": "webhook", "respond": "sync" | "async" }, { "type": "entry", "table": "<name>", … }, { "type": "event", "event": "<event name>", … } or { "type": "schedule", "cron": "0 9 * * 1-5", "timezone": "Europe/Paris" }',
    },
  ),
  settings: z
    .strictObject({
      maxConcurrentRuns: z.int().min(1).max(DEFINITION_LIMITS.maxConcurrentRuns).default(10),
      /** Seconds from the run's start to its deadline, delays included (over maxTimeoutSeconds only with a control.delay step). */
      timeoutSeconds: z.int().min(1).max(DEFINITION_LIMITS.maxDelayedTimeoutSeconds).default(300),
      /** Nano-dollars a run may spend on model calls. */
      budget: z.int().min(0).max(DEFINITION_LIMITS.maxBudget).default(100_000_000),
      /** The workflow (of the same account; checked when saved) to run when one of this workflow's runs fails. */
      errorWorkflow: z.string().regex(WORKFLOW_ID, 'must be a workflow id (wf_…)').optional(),
    })
    .prefault({}),
  steps: z.array(stepSchema).min(1, 'a workflow needs at least one step').max(DEFINITION_LIMITS.maxSteps, `at most ${DEFINITION_LIMITS.maxSteps} steps`),
});

export type WorkflowDefinition = z.output<typeof definitionSchema>;
export type StepDefinition = WorkflowDefinition['steps'][number];
export type WorkflowTrigger = WorkflowDefinition['trigger'];

export interface DefinitionIssue {
  /** The bad field, e.g. `steps[1].input.model`; `$` for the whole definition. */
  readonly path: string;
  readonly message: string;
}

/** `['steps', 1, 'input', 'model']` → `steps[1].input.model`. */
export const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out === '' ? String(part) : `${out}.${String(part)}`), '') || '$';

type AstNode = { readonly type?: string; readonly value?: unknown; readonly steps?: readonly AstNode[]; readonly [key: string]: unknown };

const isNode = (value: unknown): value is AstNode => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Keys of an AST node whose expressions run against the current item, not the root (filters, sort terms, lambda bodies). */
const RELATIVE_KEYS: ReadonlySet<string> = new Set(['stages', 'predicate', 'group', 'terms', 'body']);

/**
 * The names an expression reads from the root: the first name of each path evaluated against the root, plus the
 * step key after `steps`. Paths under a filter or after a path's first step run against another context and read
 * nothing from the root, except through `$$` (the root, anywhere).
 */
const rootReferences = (ast: unknown): { root: string; step?: string | undefined; bad?: string }[] => {
  const found: { root: string; step?: string | undefined; bad?: string }[] = [];
  const fromRootPath = (steps: readonly AstNode[]) => {
    const first = steps[0];
    if (!first || first.type !== 'name' || typeof first.value !== 'string') return;
    if (first.value !== 'steps') return found.push({ root: first.value });
    const key = steps[1];
    if (key?.type === 'name' && typeof key.value === 'string' && !first['stages']) return found.push({ root: 'steps', step: key.value });
    found.push({ root: 'steps', bad: 'must name a step: steps.<key>' });
  };
  const walk = (node: unknown, rooted: boolean): void => {
    if (Array.isArray(node)) return node.forEach((child) => walk(child, rooted));
    if (!isNode(node)) return;
    if (node.type === 'path' && node.steps) {
      const [first, ...rest] = node.steps;
      // `$$` is the root anywhere; `$` is the root only where the context is.
      if (first?.type === 'variable' && (first.value === '$' || (first.value === '' && rooted))) fromRootPath(rest);
      else if (rooted) fromRootPath(node.steps);
      node.steps.forEach((step, index) => walk(step, rooted && index === 0 && step.type !== 'name'));
      return;
    }
    for (const [key, child] of Object.entries(node)) walk(child, rooted && !RELATIVE_KEYS.has(key));
  };
  walk(ast, true);
  return found;
};

/** The regular expressions (`/…/flags`) of an expression's AST: run.expressions runs each through linearRegex. */
const regexesIn = (ast: unknown): RegExp[] => {
  const found: RegExp[] = [];
  const walk = (node: unknown): void => {
    if (node instanceof RegExp) return void found.push(node);
    if (Array.isArray(node)) return node.forEach(walk);
    if (isNode(node)) Object.values(node).forEach(walk);
  };
  walk(ast);
  return found;
};

/** Compile an expression (without its `=`) and check what it reads; the issues found, each at `path`. */
const checkExpression = (source: string, path: string, earlier: ReadonlySet<string>, all: ReadonlySet<string>): DefinitionIssue[] => {
  let ast: unknown;
  try {
    ast = jsonata(source.slice(1)).ast();
  } catch (error) {
    if (error instanceof RangeError) return [{ path, message: 'expression does not compile: it is nested too deeply' }];
    // JSONata throws plain objects ({ code, message, position }), not Errors.
    const { message, position } = typeof error === 'object' && error !== null ? (error as { message?: unknown; position?: unknown }) : {};
    const where = typeof position === 'number' ? ` (at character ${position})` : '';
    return [{ path, message: `expression does not compile: ${typeof message === 'string' ? message : String(error)}${where}` }];
  }
  const issues: DefinitionIssue[] = [];
  for (const regex of regexesIn(ast)) {
    const linear = linearRegex(regex.source, regex.flags, { allowNestedQuantifiers: true });
    if (!linear.ok) issues.push({ path, message: `expression's regular expression /${regex.source}/ is not allowed: ${linear.problem} (it could run for ever)` });
  }
  for (const ref of rootReferences(ast)) {
    if (ref.bad) issues.push({ path, message: `expression ${ref.bad}` });
    else if (!ROOTS.has(ref.root)) issues.push({ path, message: `expression reads "${ref.root}"; it may read only trigger, steps, run and workflow` });
    else if (ref.step === undefined) continue;
    else if (!all.has(ref.step)) issues.push({ path, message: `expression references unknown step "${ref.step}"` });
    else if (!earlier.has(ref.step)) issues.push({ path, message: `expression references step "${ref.step}", which does not run before this one` });
  }
  return issues;
};

/** Every expression in a step's input, at any depth, with its path. */
const expressionsIn = (value: unknown, path: string): { path: string; source: string }[] => {
  if (isExpression(value)) return [{ path, source: value }];
  if (Array.isArray(value)) return value.flatMap((item, index) => expressionsIn(item, `${path}[${index}]`));
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([key, item]) => expressionsIn(item, `${path}.${key}`));
  return [];
};

/** The names of the paths a branch step's input declares (its default included), and its input's issues at their paths. */
const branchPaths = (input: unknown, index: number): { names: string[]; issues: DefinitionIssue[] } => {
  const parsed = branchInputSchema.safeParse(input);
  if (!parsed.success) return { names: [], issues: parsed.error.issues.map((issue) => ({ path: formatPath(['steps', index, 'input', ...issue.path]), message: issue.message })) };
  const names = parsed.data.paths.map((path) => path.name);
  const { default: fallback } = parsed.data;
  return { names: fallback === undefined || names.includes(fallback) ? names : [...names, fallback], issues: [] };
};

/**
 * The checks zod cannot make field by field: unique keys, expressions that compile and read only what exists before,
 * branch inputs, and `path` fields that name a path of an earlier branch (path names are unique across the
 * workflow's branches, so a step's `path` names exactly one).
 */
const crossChecks = (definition: WorkflowDefinition): DefinitionIssue[] => {
  const issues: DefinitionIssue[] = [];
  const all = new Set(definition.steps.map((step) => step.key));
  const earlier = new Set<string>();
  /** Path name → the branch step that declares it. */
  const paths = new Map<string, string>();
  definition.steps.forEach((step, index) => {
    const at = `steps[${index}]`;
    if (earlier.has(step.key)) issues.push({ path: `${at}.key`, message: `duplicate step key "${step.key}"` });
    if (step.path !== undefined && !paths.has(step.path)) {
      const known = [...paths.keys()];
      issues.push({ path: `${at}.path`, message: `"${step.path}" is not a path of an earlier control.branch step${known.length > 0 ? `; known: ${known.join(', ')}` : ' (there is none before this step)'}` });
    }
    if (step.type === 'control.branch') {
      const branch = branchPaths(step.input, index);
      issues.push(...branch.issues);
      for (const name of branch.names) {
        const owner = paths.get(name);
        if (owner !== undefined) issues.push({ path: `${at}.input`, message: `path "${name}" is already a path of branch step "${owner}"; path names must be unique across branches` });
        else paths.set(name, step.key);
      }
    }
    if (step.type === 'action.transform') {
      // Its one field: anything else (`value`, a typo) would run, quietly, as a transform to null.
      const input = step.input;
      if (typeof input !== 'object' || input === null || Array.isArray(input) || !('expression' in input)) {
        issues.push({ path: `${at}.input`, message: 'action.transform takes {"expression": …}, the value it computes' });
      } else {
        const extra = Object.keys(input).find((key) => key !== 'expression');
        if (extra !== undefined) issues.push({ path: `${at}.input.${extra}`, message: `action.transform takes only "expression", not "${extra}"` });
      }
    }
    if (step.type === 'control.delay') {
      const parsed = delayInputSchema.safeParse(step.input);
      if (!parsed.success) issues.push(...parsed.error.issues.map((issue) => ({ path: formatPath(['steps', index, 'input', ...issue.path]), message: issue.message })));
      else if ('for' in parsed.data) {
        // The run's deadline counts delays from its start, so a literal wait as long as the timeout can never wake
        // before it: every run would fail this step with DELAY_PAST_TIMEOUT.
        const wait = parsed.data.for;
        const ms = typeof wait === 'number' ? wait : isExpression(wait) ? null : durationMs(wait);
        const { timeoutSeconds } = definition.settings;
        if (ms !== null && ms >= timeoutSeconds * 1_000) {
          issues.push({
            path: `${at}.input.for`,
            message: `step ${step.key} waits ${ms / 1_000} s, at or past the run's timeout (settings.timeoutSeconds ${timeoutSeconds} counts delays): it could never wake before the deadline; raise the timeout or shorten the delay`,
          });
        }
      }
    }
    const expressions = [...(step.if === undefined ? [] : [{ path: `${at}.if`, source: step.if }]), ...expressionsIn(step.input, `${at}.input`)];
    for (const { path, source } of expressions) issues.push(...checkExpression(source, path, earlier, all));
    earlier.add(step.key);
  });
  const { timeoutSeconds } = definition.settings;
  if (timeoutSeconds > DEFINITION_LIMITS.maxTimeoutSeconds && !definition.steps.some((step) => step.type === 'control.delay')) {
    issues.push({
      path: 'settings.timeoutSeconds',
      message: `must be at most ${DEFINITION_LIMITS.maxTimeoutSeconds}; only a workflow with a control.delay step may wait longer (up to ${DEFINITION_LIMITS.maxDelayedTimeoutSeconds})`,
    });
  }
  return issues;
};

/**
 * The first value nested deeper than the limit, found without recursion (so a deep value cannot overflow the stack
 * here), or a `__proto__` key (a parser copying it would set a prototype instead of keeping the field).
 */
const structureIssue = (input: unknown): DefinitionIssue | null => {
  const pending: { value: unknown; depth: number; path: string }[] = [{ value: input, depth: 0, path: '' }];
  while (pending.length > 0) {
    const { value, depth, path } = pending.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= DEFINITION_LIMITS.maxDepth) return { path: path || '$', message: `nested more than ${DEFINITION_LIMITS.maxDepth} levels deep` };
    if (Array.isArray(value)) value.forEach((item, index) => pending.push({ value: item, depth: depth + 1, path: `${path}[${index}]` }));
    else {
      for (const [key, item] of Object.entries(value)) {
        const at = path === '' ? key : `${path}.${key}`;
        if (key === '__proto__') return { path: at, message: 'the key __proto__ is not allowed' };
        pending.push({ value: item, depth: depth + 1, path: at });
      }
    }
  }
  return null;
};

/** Validate a definition: the parsed definition (with defaults filled in), or every issue found, each with its path. */
export const checkDefinition = (input: unknown): { ok: true; definition: WorkflowDefinition } | { ok: false; issues: DefinitionIssue[] } => {
  const structure = structureIssue(input);
  if (structure) return { ok: false, issues: [structure] };
  const json = JSON.stringify(input) ?? '';
  const bytes = Buffer.byteLength(json);
  if (bytes > DEFINITION_LIMITS.maxBytes) {
    return { ok: false, issues: [{ path: '$', message: `the definition is ${bytes} bytes; at most ${DEFINITION_LIMITS.maxBytes} are allowed` }] };
  }
  const parsed = definitionSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })) };
  const issues = crossChecks(parsed.data);
  return issues.length > 0 ? { ok: false, issues } : { ok: true, definition: parsed.data };
};

/** The error a definition with these issues is refused with: its metadata names the first bad field's `path` and lists every issue. */
export const invalidDefinition = (issues: readonly DefinitionIssue[]): ValidationError =>
  new ValidationError(`Invalid workflow definition: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, {
    path: issues[0]?.path ?? '$',
    issues,
  });

/** Validate a definition or throw its invalidDefinition error. */
export const parseDefinition = (input: unknown): WorkflowDefinition => {
  const result = checkDefinition(input);
  if (result.ok) return result.definition;
  throw invalidDefinition(result.issues);
};
