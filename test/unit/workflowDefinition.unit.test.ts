import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { checkDefinition, DEFINITION_LIMITS, parseDefinition, type DefinitionIssue } from '../../src/modules/workflows/definition.js';

/** The brief's example (issue 12): the definition every other case below breaks in one place. */
const example = (): { name: string; trigger: unknown; settings?: unknown; steps: Record<string, unknown>[] } =>
  JSON.parse(readFileSync(new URL('../fixtures/workflows/answerQuestions.json', import.meta.url), 'utf8'));

const issuesOf = (definition: unknown): DefinitionIssue[] => {
  const result = checkDefinition(definition);
  if (result.ok) throw new Error('expected the definition to be refused');
  return result.issues;
};

const withStep = (index: number, change: Record<string, unknown>) => {
  const definition = example();
  definition.steps[index] = { ...definition.steps[index], ...change };
  return definition;
};

const withInput = (index: number, input: Record<string, unknown>) => withStep(index, { input });

describe('workflow definition validation', () => {
  it("accepts the brief's example and fills in nothing it already says", () => {
    const result = checkDefinition(example());
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.definition.settings).toEqual({ maxConcurrentRuns: 10, timeoutSeconds: 120, budget: 50_000_000 });
      expect(result.definition.steps.map((s) => s.key)).toEqual(['pick', 'answer', 'reply']);
    }
  });

  it('fills in default settings when the definition has none', () => {
    const { settings: _settings, ...rest } = example();
    const result = checkDefinition(rest);
    expect(result.ok && result.definition.settings).toEqual({ maxConcurrentRuns: 10, timeoutSeconds: 300, budget: 100_000_000 });
  });

  it('holds action.transform to its one field: a misspelt or missing expression is named, not run as a transform to null', () => {
    const transform = (input: unknown) => ({ name: 'T', trigger: { type: 'manual' }, steps: [{ key: 't', type: 'action.transform', input }] });
    expect(issuesOf(transform({ value: '=trigger.x' }))).toEqual([{ path: 'steps[0].input', message: 'action.transform takes {"expression": …}, the value it computes' }]);
    expect(issuesOf(transform({ expression: '=trigger.x', value: 1 }))).toEqual([{ path: 'steps[0].input.value', message: 'action.transform takes only "expression", not "value"' }]);
    expect(issuesOf(transform('=trigger.x')).map((issue) => issue.path)).toEqual(['steps[0].input']);
    expect(checkDefinition(transform({ expression: '=trigger.x' })).ok).toBe(true);
    expect(checkDefinition(transform({ expression: 42 })).ok).toBe(true);
  });

  it('names an unknown step type at its path', () => {
    expect(issuesOf(withStep(1, { type: 'action.teleport' }))).toEqual([{ path: 'steps[1].type', message: expect.stringContaining('unknown step type "action.teleport"') }]);
  });

  it('names a duplicate step key at the second occurrence', () => {
    expect(issuesOf(withStep(2, { key: 'pick' }))).toContainEqual({ path: 'steps[2].key', message: 'duplicate step key "pick"' });
  });

  it.each(['Pick', '1pick', 'pick-me', 'pick me', ''])('refuses the step key %j', (key) => {
    expect(issuesOf(withStep(0, { key })).map((i) => i.path)).toContain('steps[0].key');
  });

  it('refuses a reference to a later step, at the field that holds it', () => {
    const issues = issuesOf(withInput(0, { sort: '=steps.answer.text' }));
    expect(issues).toEqual([{ path: 'steps[0].input.sort', message: 'expression references step "answer", which does not run before this one' }]);
  });

  it("refuses a step's reference to its own output (a cycle)", () => {
    expect(issuesOf(withInput(1, { model: '=steps.answer.model' }))).toEqual([
      { path: 'steps[1].input.model', message: 'expression references step "answer", which does not run before this one' },
    ]);
  });

  it('refuses a reference to an unknown step, deep inside an input', () => {
    const issues = issuesOf(withInput(2, { status: 200, body: { items: [1, { x: '=$count(steps.nope.items)' }] } }));
    expect(issues).toEqual([{ path: 'steps[2].input.body.items[1].x', message: 'expression references unknown step "nope"' }]);
  });

  it('sees later-step references through $$ and inside filters, and accepts names relative to a filtered item', () => {
    expect(issuesOf(withInput(0, { sort: '=trigger.items[$$.steps.reply.ok]' })).map((i) => i.path)).toEqual(['steps[0].input.sort']);
    expect(checkDefinition(withInput(1, { model: '=steps.pick.items[price < 10 and context > 1000].id', prompt: '=trigger.body.q' })).ok).toBe(true);
  });

  it('refuses an expression that reads anything but trigger, steps, run and workflow', () => {
    expect(issuesOf(withInput(1, { model: '=secrets.token' }))).toEqual([
      { path: 'steps[1].input.model', message: 'expression reads "secrets"; it may read only trigger, steps, run and workflow' },
    ]);
  });

  it('refuses an expression that does not compile, with the compiler message', () => {
    const issues = issuesOf(withInput(1, { model: '=steps.pick.first.(' }));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('steps[1].input.model');
    expect(issues[0]!.message).toMatch(/^expression does not compile: /);
  });

  it("checks a step's `if` like its inputs", () => {
    expect(issuesOf(withStep(0, { if: '=steps.reply.status = 200' }))).toEqual([
      { path: 'steps[0].if', message: 'expression references step "reply", which does not run before this one' },
    ]);
    expect(issuesOf(withStep(0, { if: 'true' })).map((i) => i.path)).toEqual(['steps[0].if']);
  });

  it('refuses an oversized definition as a whole', () => {
    const big = withInput(2, { status: 200, body: { padding: 'x'.repeat(DEFINITION_LIMITS.maxBytes) } });
    expect(issuesOf(big)).toEqual([{ path: '$', message: expect.stringMatching(/at most 65536 are allowed/) }]);
  });

  it('refuses a value nested too deep, at its path, without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const issues = issuesOf(withInput(0, { v: deep }));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toMatch(/^steps\[0\]\.input\.v(\[0\])+$/);
    expect(issues[0]!.message).toBe(`nested more than ${DEFINITION_LIMITS.maxDepth} levels deep`);
  });

  it('refuses a __proto__ key instead of silently losing it', () => {
    const definition = JSON.parse('{"name":"x","trigger":{"type":"manual"},"steps":[{"key":"a","type":"action.transform","input":{"body":{"__proto__":{"admin":true}}}}]}');
    expect(issuesOf(definition)).toEqual([{ path: 'steps[0].input.body.__proto__', message: 'the key __proto__ is not allowed' }]);
  });

  it('refuses an empty expression with the compiler message and position', () => {
    expect(issuesOf(withInput(0, { sort: '=' }))).toEqual([{ path: 'steps[0].input.sort', message: 'expression does not compile: Unexpected end of expression (at character 0)' }]);
  });

  it('refuses an expression too deeply nested to compile, with a clear message', () => {
    expect(issuesOf(withInput(0, { sort: `=${'('.repeat(5000)}1${')'.repeat(5000)}` }))).toEqual([
      { path: 'steps[0].input.sort', message: 'expression does not compile: it is nested too deeply' },
    ]);
  });

  it('refuses too many steps', () => {
    const definition = example();
    definition.steps = Array.from({ length: DEFINITION_LIMITS.maxSteps + 1 }, (_, i) => ({ key: `s${i}`, type: 'action.transform', input: { value: 1 } }));
    expect(issuesOf(definition)).toEqual([{ path: 'steps', message: `at most ${DEFINITION_LIMITS.maxSteps} steps` }]);
  });

  it('bounds the settings and names the bad one', () => {
    expect(issuesOf({ ...example(), settings: { maxConcurrentRuns: 0, timeoutSeconds: 120, budget: 1.5 } }).map((i) => i.path)).toEqual([
      'settings.maxConcurrentRuns',
      'settings.budget',
    ]);
    expect(issuesOf({ ...example(), settings: { timeoutSeconds: 86_400 } }).map((i) => i.path)).toEqual(['settings.timeoutSeconds']);
  });

  it('refuses a webhook trigger without a respond mode, and an unknown trigger', () => {
    expect(issuesOf({ ...example(), trigger: { type: 'webhook' } }).map((i) => i.path)).toEqual(['trigger.respond']);
    expect(issuesOf({ ...example(), trigger: { type: 'cron' } }).map((i) => i.path)).toEqual(['trigger.type']);
  });

  it('refuses unknown fields, bad retry and timeout, naming each', () => {
    const issues = issuesOf(withStep(1, { retry: { attempts: 0 }, timeoutSeconds: -1, color: 'red' }));
    expect(issues.map((i) => i.path).sort()).toEqual(['steps[1]', 'steps[1].retry.attempts', 'steps[1].timeoutSeconds']);
  });

  it('throws a ValidationError whose metadata names the first bad path and lists every issue', () => {
    try {
      parseDefinition(withStep(1, { type: 'nope' }));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).metadata).toMatchObject({ path: 'steps[1].type', issues: [{ path: 'steps[1].type' }] });
    }
  });
});

describe('control.branch definitions', () => {
  const branching = (branch: Record<string, unknown>, ...rest: Record<string, unknown>[]) => ({
    name: 'Branch',
    trigger: { type: 'manual' },
    steps: [
      { key: 'size', type: 'control.branch', input: branch },
      ...rest,
    ],
  });
  const valid = { paths: [{ name: 'short', if: '=$length(trigger.body.text) < 10' }, { name: 'empty', if: false }], default: 'long' };

  it('accepts named paths with conditions and a default, and steps that join them (the default too)', () => {
    const result = checkDefinition(
      branching(valid, { key: 'a', type: 'action.transform', path: 'short', input: { expression: '=1' } }, { key: 'b', type: 'action.transform', path: 'long', input: { expression: '=1' } }, { key: 'c', type: 'action.respond', input: {} }),
    );
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.definition.steps.map((s) => s.path)).toEqual([undefined, 'short', 'long', undefined]);
  });

  it('refuses a step path that no earlier branch declares, naming the step’s path field', () => {
    expect(issuesOf(branching(valid, { key: 'a', type: 'action.transform', path: 'medium', input: { expression: '=1' } }))).toEqual([
      { path: 'steps[1].path', message: '"medium" is not a path of an earlier control.branch step; known: short, empty, long' },
    ]);
    // A path of a later branch is not an earlier one.
    const later = { name: 'L', trigger: { type: 'manual' }, steps: [{ key: 'a', type: 'action.transform', path: 'short', input: { expression: '=1' } }, { key: 'size', type: 'control.branch', input: valid }] };
    expect(issuesOf(later)).toEqual([{ path: 'steps[0].path', message: '"short" is not a path of an earlier control.branch step (there is none before this step)' }]);
    expect(issuesOf(branching(valid, { key: 'a', type: 'action.transform', path: 'Bad-Name', input: { expression: '=1' } })).map((i) => i.path)).toEqual(['steps[1].path']);
  });

  it('refuses bad branch inputs at the path of the bad field', () => {
    expect(issuesOf(branching({ paths: [] })).map((i) => i.path)).toEqual(['steps[0].input.paths']);
    expect(issuesOf(branching({ paths: [{ name: 'a', if: 'yes' }] })).map((i) => i.path)).toEqual(['steps[0].input.paths[0].if']);
    expect(issuesOf(branching({ paths: [{ name: 'a', if: true }, { name: 'a', if: true }] }))).toEqual([{ path: 'steps[0].input.paths[1].name', message: 'duplicate path name "a"' }]);
    expect(issuesOf(branching({ paths: [{ name: 'a', if: true, extra: 1 }], otherwise: 'b' })).map((i) => i.path).sort()).toEqual(['steps[0].input', 'steps[0].input.paths[0]']);
    expect(issuesOf(branching({ paths: [{ name: 'a', if: '=steps.later.x' }] }, { key: 'later', type: 'action.transform', input: { expression: '=1' } }))).toEqual([
      { path: 'steps[0].input.paths[0].if', message: 'expression references step "later", which does not run before this one' },
    ]);
  });

  it('refuses a path name that two branches declare (a step’s path must name one)', () => {
    expect(issuesOf(branching(valid, { key: 'again', type: 'control.branch', input: { paths: [{ name: 'short', if: true }] } }))).toEqual([
      { path: 'steps[1].input', message: 'path "short" is already a path of branch step "size"; path names must be unique across branches' },
    ]);
  });
});
