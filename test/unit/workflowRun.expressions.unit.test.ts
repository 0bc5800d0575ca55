import { describe, expect, it } from 'vitest';
import { evaluateExpression, evaluateStepInput, type ExpressionScope } from '../../src/modules/workflows/run.expressions.js';
import { StepError } from '../../src/modules/workflows/steps/step.js';

const scope: ExpressionScope = { trigger: { body: { name: 'Ada', n: 2 } }, steps: { pick: { first: { id: 'm/1' } } }, run: { id: 'run_1' }, workflow: { id: 'wf_1', version: 3 } };

const failure = async (promise: Promise<unknown>): Promise<StepError> => {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StepError);
  return error as StepError;
};

describe("a step's input", () => {
  it('replaces every string starting with = by its value, at any depth, and keeps literals as they are', async () => {
    const input = { model: '=steps.pick.first.id', nested: { list: ['=trigger.body.n * 21', 'plain', 7, null, true] }, text: 'no = at the start', version: '=workflow.version' };
    expect(await evaluateStepInput(input, scope, 'steps.x.input')).toEqual({ model: 'm/1', nested: { list: [42, 'plain', 7, null, true] }, text: 'no = at the start', version: 3 });
  });

  it('answers nothing found as null, and refuses a value that is no JSON (a function) with a clear error', async () => {
    expect(await evaluateStepInput({ missing: '=trigger.nothing' }, scope, 'in')).toEqual({ missing: null });
    const error = await failure(evaluateStepInput({ fn: '=function($x) { $x }' }, scope, 'in'));
    expect(error).toMatchObject({ code: 'EXPRESSION_FAILED', retryable: false });
    expect(error.message).toMatch(/^in\.fn: the value is not JSON/);
  });

  it('keeps a __proto__ key as data, never as a prototype', async () => {
    const input = JSON.parse('{"__proto__": {"polluted": "=trigger.body.name"}}') as Record<string, unknown>;
    const out = (await evaluateStepInput(input as never, scope, 'in')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ polluted: 'Ada' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('bounded evaluation', () => {
  it('stops an expression that runs past its time with EXPRESSION_TIMEOUT, naming where it was', async () => {
    const error = await failure(evaluateExpression('=($f := function($x) { $f($x + 1) }; $f(0))', scope, 'steps.spin.input.expression', { timeoutMs: 50, maxDepth: 500, maxSequence: 1000, maxOutputBytes: 1024 }));
    expect(error).toMatchObject({ code: 'EXPRESSION_TIMEOUT', retryable: false });
    expect(error.message).toBe('steps.spin.input.expression: the expression ran longer than 50 ms and was stopped');
  });

  it('stops runaway recursion with EXPRESSION_TOO_DEEP', async () => {
    const error = await failure(evaluateExpression('=($f := function($x) { 1 + $f($x) }; $f(0))', scope, 'e'));
    expect(error.code).toBe('EXPRESSION_TOO_DEEP');
  });

  it('refuses a value or a sequence over the limits with EXPRESSION_TOO_LARGE', async () => {
    const limits = { timeoutMs: 1_000, maxDepth: 500, maxSequence: 1_000, maxOutputBytes: 1_024 };
    expect((await failure(evaluateExpression('=$join($map([1..700], function($v) { "xyz" }), "")', scope, 'e', limits))).message).toBe('e: the value is 2102 bytes, over the limit of 1024');
    expect((await failure(evaluateExpression('=[1..5000]', scope, 'e', limits))).code).toBe('EXPRESSION_TOO_LARGE');
    // Each expression fits, the whole input does not.
    expect((await failure(evaluateStepInput({ a: '=$pad("", 600, "x")', b: '=$pad("", 600, "x")' }, scope, 'in', limits))).code).toBe('EXPRESSION_TOO_LARGE');
  });

  it("refuses $pad past the output limit before building it: jsonata's own aborted the process at 150 million", async () => {
    const error = await failure(evaluateExpression('=$length($pad("", 150000000, "x"))', scope, 'steps.t.input.expression'));
    expect(error).toMatchObject({ code: 'EXPRESSION_TOO_LARGE', retryable: false });
    expect(error.message).toBe('steps.t.input.expression: $pad to 150000000 characters is over the limit of 1048576');
    // Within the limit it pads as jsonata does: right for a positive width, left for a negative one, in code points.
    expect(await evaluateExpression('=$pad("ab", 5)', scope, 'e')).toBe('ab   ');
    expect(await evaluateExpression('=$pad("ab", -5, "#")', scope, 'e')).toBe('###ab');
    expect(await evaluateExpression('=$pad("😀", 4, "xy")', scope, 'e')).toBe('😀xyx');
    expect(await evaluateExpression('=$pad("abcdef", 3)', scope, 'e')).toBe('abcdef');
  });

  it('refuses a string over 16 Mi characters when it is made: $split of a doubled one into characters aborted the process', async () => {
    const error = await failure(evaluateExpression('=$count($split($reduce([1..28], function($a, $b) { $a & $a }, "x"), ""))', scope, 'steps.t.input.expression'));
    expect(error).toMatchObject({ code: 'EXPRESSION_TOO_LARGE', retryable: false });
    expect(error.message).toBe('steps.t.input.expression: the expression made a string of 33554432 characters, over the limit of 16777216');
    expect(await evaluateExpression('=$length($reduce([1..24], function($a, $b) { $a & $a }, "x"))', scope, 'e')).toBe(2 ** 24);
  });

  it("refuses a $fromMillis picture width over 1,000 before formatting: jsonata's aborted the process at 200 million", async () => {
    for (const picture of ['[Y٠,200000000]', '[Y,*-200000000]', '[M, 1 - 0x7fffffff]', '[[Y]] [D,1001]']) {
      const error = await failure(evaluateExpression(`=$fromMillis(0, ${JSON.stringify(picture)})`, scope, 'steps.t.input.expression'));
      expect(error, picture).toMatchObject({ code: 'EXPRESSION_TOO_LARGE', message: expect.stringMatching(/^steps\.t\.input\.expression: a \$fromMillis picture width of \d+ is over the limit of 1000$/) });
    }
    // Otherwise it is jsonata's own.
    expect(await evaluateExpression('=$fromMillis(1e12, "[Y0001]-[M01]-[D01] [H01]:[m01] [Y,2-2] [MNn,3-3] [[x]] [D,1000]")', scope, 'e')).toMatch(/^2001-09-09 01:46 01 Sep \[x\] 0{998}09$/);
    expect(await evaluateExpression('=$fromMillis(0)', scope, 'e')).toBe('1970-01-01T00:00:00.000Z');
    expect(await evaluateExpression('=$fromMillis(0, "[H01]:[m01]", "+0130")', scope, 'e')).toBe('01:30');
  });

  it('answers a catastrophically backtracking regex, and refuses backreferences and lookarounds', async () => {
    expect(await evaluateExpression('=$contains("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", /(a+)+$/)', scope, 'e')).toBe(false);
    for (const [pattern, reason] of [
      ['/(a*)*\\1$/', /back-references/],
      ['/a(?=a)/', /lookahead and lookbehind/],
      ['/.*.*.*.*.*.*.*.*.*.*.*.*(?=x)/', /lookahead and lookbehind/],
      ['/(?<!b)a/', /lookahead and lookbehind/],
      ['/(?<x>a)\\k<x>/', /back-references/],
      ['/((((a+)+)+)+)+/', /nested this deep/],
    ] as const) {
      const error = await failure(evaluateExpression(`=$match("aa", ${pattern})`, scope, 'e'));
      expect(error.message, pattern).toMatch(/is not allowed in workflows/);
      expect(error.message, pattern).toMatch(reason);
    }
  });

  it('runs a case-insensitive regex on the linear engine too: /.*.*x/i against 20,000 a\'s answers (it backtracked for minutes)', async () => {
    const long = { ...scope, trigger: { text: 'a'.repeat(20_000) } };
    expect(await evaluateExpression('=$contains(trigger.text, /.*.*x/i)', long, 'e')).toBe(false);
    expect(await evaluateExpression('=$match("Hello HELLO hello", /hel+o/i).match', scope, 'e')).toEqual(['Hello', 'HELLO', 'hello']);
    expect(await evaluateExpression('=$replace("Straße STRASSE", /STRAẞE/i, "x")', scope, 'e')).toBe('Straße STRASSE');
  });

  it('reports a dynamic error with its jsonata code', async () => {
    const error = await failure(evaluateExpression('="a" + 1', scope, 'steps.x.input.y'));
    expect(error).toMatchObject({ code: 'EXPRESSION_FAILED', retryable: false });
    expect(error.message).toMatch(/^steps\.x\.input\.y: T2001 /);
  });
});
