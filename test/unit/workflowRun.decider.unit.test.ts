import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../src/errors.js';
import type { JsonValue } from '../../src/eventStore/eventStore.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { carryOver, DEFAULT_RUN_LIMITS, next, RUN_EVENT_BYTES, runDecider, type RunDefinition, type RunLimits } from '../../src/modules/workflows/run.decider.js';
import type { RunEvent } from '../../src/modules/workflows/run.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
/** The ISO time `seconds` after the run started. */
const at = (seconds: number): string => new Date(T0 + seconds * 1_000).toISOString();
const now = (seconds: number): number => T0 + seconds * 1_000;

const example: RunDefinition = {
  steps: [
    { key: 'pick', type: 'search.models' },
    { key: 'answer', type: 'action.model', retry: { attempts: 3, backoffMs: 1_000 } },
    { key: 'reply', type: 'action.respond' },
  ],
  settings: { timeoutSeconds: 120, budget: 50_000_000 },
};

const runStarted: RunEvent = { type: 'RunStarted', data: { runId: 'run_1', workflowId: 'wf_1', version: 2, trigger: { body: { question: 'why?' } }, at: at(0) } };
const started = (key: string, attempt: number, seconds: number): RunEvent => ({
  type: 'StepStarted',
  data: { key, attempt, idempotencyKey: `run_1.${key}.${attempt}`, at: at(seconds) },
});
/** Bytes of a value as JSON: what an outcome's event records it stores (`bytes`). */
const size = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');
const succeeded = (key: string, attempt: number, seconds: number, output: JsonValue = { ok: true }, cost = 0): RunEvent => ({
  type: 'StepSucceeded',
  data: { key, attempt, output, cost, bytes: size(output), at: at(seconds) },
});
const UPSTREAM_502 = { code: 'PROVIDER_ERROR', message: 'upstream 502' };
const failed = (key: string, attempt: number, seconds: number, retryAt: string | null, cost = 0): RunEvent => ({
  type: 'StepFailed',
  data: { key, attempt, error: UPSTREAM_502, cost, retryAt, bytes: size(UPSTREAM_502), at: at(seconds) },
});
const skipped = (key: string, reason: 'condition' | 'path', seconds: number): RunEvent => ({ type: 'StepSkipped', data: { key, reason, at: at(seconds) } });

const run = (definition: RunDefinition, limits: RunLimits = DEFAULT_RUN_LIMITS) => deciderSpec(runDecider(definition, limits));
const decider = runDecider(example);
const nextAfter = (events: readonly RunEvent[], seconds: number, definition: RunDefinition = example, limits: RunLimits = DEFAULT_RUN_LIMITS) =>
  next(foldEvents(decider, events), definition, now(seconds), limits);

/** What the run stores after `events` (RunState.stored). */
const storedAfter = (events: readonly RunEvent[], definition: RunDefinition = example): number => {
  const state = foldEvents(runDecider(definition), events);
  if (state.status === 'none') throw new Error('the run has not started');
  return state.stored;
};

const failStep = (key: string, attempt: number, seconds: number, retryable = true, cost = 0) =>
  ({ type: 'RecordStepFailed', data: { key, attempt, error: { code: 'PROVIDER_ERROR', message: 'upstream 502' }, retryable, cost, at: at(seconds) } }) as const;
const startStep = (key: string, attempt: number, seconds: number, estimatedCost = 0) =>
  ({ type: 'RecordStepStarted', data: { key, attempt, estimatedCost, at: at(seconds) } }) as const;
const succeedStep = (key: string, attempt: number, seconds: number, output: JsonValue = { ok: true }, cost = 0) =>
  ({ type: 'RecordStepSucceeded', data: { key, attempt, output, cost, at: at(seconds) } }) as const;

describe('run decider: the next step', () => {
  it('starts the run and then its first step, attempt 1, with a key derived from run, step and attempt', () => {
    run(example)([]).when({ type: 'StartRun', data: runStarted.data }).then([runStarted]);
    expect(nextAfter([], 0)).toEqual({ kind: 'idle', status: 'none' });
    expect(nextAfter([runStarted], 0)).toEqual({ kind: 'start', step: example.steps[0], attempt: 1, idempotencyKey: 'run_1.pick.1', deadline: now(120) });
    run(example)([runStarted]).when(startStep('pick', 1, 1)).then([started('pick', 1, 1)]);
  });

  it('runs steps in order: the second step only after the first succeeded', () => {
    run(example)([runStarted]).when(startStep('answer', 1, 1)).thenThrows(ConflictError, /Cannot start attempt 1 of step answer: the run is attempt 1 of step pick/);
    run(example)([runStarted, started('pick', 1, 1)]).when(startStep('answer', 1, 2)).thenThrows(ConflictError, /in flight/);
    expect(nextAfter([runStarted, started('pick', 1, 1), succeeded('pick', 1, 2)], 2)).toMatchObject({ kind: 'start', step: { key: 'answer' }, attempt: 1, idempotencyKey: 'run_1.answer.1' });
  });

  it('finishes as succeeded once every step is done, with the respond step\'s output as the run\'s output', () => {
    const done = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2), started('answer', 1, 3), succeeded('answer', 1, 4, { text: '42' }), started('reply', 1, 5), succeeded('reply', 1, 6, { answer: '42' })];
    expect(nextAfter(done, 6)).toEqual({ kind: 'finish', outcome: 'succeeded', output: { answer: '42' } });
    run(example)(done).when({ type: 'FinishRun', data: { at: at(7) } }).then([{ type: 'RunSucceeded', data: { output: { answer: '42' }, bytes: 15, at: at(7) } }]);
  });

  it('refuses to finish a run with work left', () => {
    run(example)([runStarted, started('pick', 1, 1)]).when({ type: 'FinishRun', data: { at: at(2) } }).thenThrows(ConflictError, /not done, next is re-running attempt 1 of step pick/);
  });
});

describe('run decider: retries and backoff', () => {
  const answering = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2), started('answer', 1, 3)];

  it('a failed step is retried with exponential backoff (1 s, then 2 s), then fails the run after its last attempt', () => {
    run(example)(answering).when(failStep('answer', 1, 4)).then([failed('answer', 1, 4, at(5))]);
    const second = [...answering, failed('answer', 1, 4, at(5)), started('answer', 2, 5)];
    run(example)(second).when(failStep('answer', 2, 6)).then([failed('answer', 2, 6, at(8))]);
    const third = [...second, failed('answer', 2, 6, at(8)), started('answer', 3, 8)];
    run(example)(third).when(failStep('answer', 3, 9)).then([failed('answer', 3, 9, null)]);
    const exhausted = [...third, failed('answer', 3, 9, null)];
    expect(nextAfter(exhausted, 9)).toEqual({ kind: 'finish', outcome: 'failed', error: { code: 'PROVIDER_ERROR', message: 'upstream 502' }, step: 'answer' });
    run(example)(exhausted)
      .when({ type: 'FinishRun', data: { at: at(10) } })
      .then([{ type: 'RunFailed', data: { error: { code: 'PROVIDER_ERROR', message: 'upstream 502' }, step: 'answer', at: at(10) } }]);
  });

  it('waits out the backoff, refuses an early retry, and starts the next attempt with its own key when due', () => {
    const backingOff = [...answering, failed('answer', 1, 4, at(5))];
    expect(nextAfter(backingOff, 4)).toEqual({ kind: 'wait', until: now(5), key: 'answer', attempt: 2 });
    run(example)(backingOff).when(startStep('answer', 2, 4)).thenThrows(ConflictError, /waiting until 2026-12-01T10:00:05.000Z for attempt 2 of step answer/);
    expect(nextAfter(backingOff, 5)).toMatchObject({ kind: 'start', attempt: 2, idempotencyKey: 'run_1.answer.2' });
    run(example)(backingOff).when(startStep('answer', 2, 5)).then([started('answer', 2, 5)]);
  });

  it('a failure marked not retryable fails the step at once, whatever its retry policy', () => {
    run(example)(answering).when(failStep('answer', 1, 4, false)).then([failed('answer', 1, 4, null)]);
  });

  it('a step without a retry policy is tried once', () => {
    run(example)([runStarted, started('pick', 1, 1)]).when(failStep('pick', 1, 2)).then([failed('pick', 1, 2, null)]);
  });

  it('never waits past the run\'s deadline: a retry due after it wakes the run at the deadline, which fails it', () => {
    const late = [...answering, failed('answer', 1, 4, at(500))];
    expect(nextAfter(late, 10)).toEqual({ kind: 'wait', until: now(120), key: 'answer', attempt: 2 });
    expect(nextAfter(late, 120)).toMatchObject({ kind: 'finish', outcome: 'failed', error: { code: 'RUN_TIMEOUT' }, step: 'answer' });
  });
});

describe('run decider: skips, branches and filters', () => {
  const conditional: RunDefinition = {
    steps: [
      { key: 'pick', type: 'search.models' },
      { key: 'answer', type: 'action.model', if: '=steps.pick.count > 0', retry: { attempts: 2 } },
      { key: 'reply', type: 'action.respond' },
    ],
    settings: { timeoutSeconds: 120, budget: 0 },
  };
  const picked = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2)];

  it('a step whose condition was false is skipped and the run moves on to the next step', () => {
    run(conditional)(picked).when({ type: 'SkipStep', data: { key: 'answer', reason: 'condition', at: at(3) } }).then([skipped('answer', 'condition', 3)]);
    expect(nextAfter([...picked, skipped('answer', 'condition', 3)], 3, conditional)).toMatchObject({ kind: 'start', step: { key: 'reply' }, attempt: 1 });
  });

  it('refuses a condition skip for a step without a condition, for a step not next, and for a retry', () => {
    run(conditional)([runStarted]).when({ type: 'SkipStep', data: { key: 'pick', reason: 'condition', at: at(1) } }).thenThrows(ConflictError, /step pick has no condition/);
    run(conditional)([runStarted]).when({ type: 'SkipStep', data: { key: 'answer', reason: 'condition', at: at(1) } }).thenThrows(ConflictError, /the run is attempt 1 of step pick/);
    const retrying = [...picked, started('answer', 1, 3), failed('answer', 1, 4, at(5))];
    run(conditional)(retrying).when({ type: 'SkipStep', data: { key: 'answer', reason: 'condition', at: at(6) } }).thenThrows(ConflictError, /Cannot skip step answer/);
  });

  const branching: RunDefinition = {
    steps: [
      { key: 'route', type: 'control.branch' },
      { key: 'cheap', type: 'action.model', path: 'cheap' },
      { key: 'dear', type: 'action.model', path: 'dear' },
      { key: 'reply', type: 'action.respond' },
    ],
    settings: { timeoutSeconds: 120, budget: 1_000 },
  };
  const routed = [runStarted, started('route', 1, 1), succeeded('route', 1, 2, { path: 'dear' })];

  it('a branch chooses a path: steps of other paths are skipped, steps of the chosen path and shared steps run', () => {
    expect(nextAfter(routed, 2, branching)).toEqual({ kind: 'skip', step: branching.steps[1], reason: 'path' });
    run(branching)(routed).when({ type: 'SkipStep', data: { key: 'cheap', reason: 'path', at: at(3) } }).then([skipped('cheap', 'path', 3)]);
    run(branching)(routed).when(startStep('cheap', 1, 3)).thenThrows(ConflictError, /skipping step cheap \(its path was not chosen\)/);
    const onPath = [...routed, skipped('cheap', 'path', 3)];
    expect(nextAfter(onPath, 3, branching)).toMatchObject({ kind: 'start', step: { key: 'dear' } });
    run(branching)(onPath).when({ type: 'SkipStep', data: { key: 'dear', reason: 'path', at: at(4) } }).thenThrows(ConflictError, /Cannot skip step dear \(path\)/);
    const afterPath = [...onPath, started('dear', 1, 4), succeeded('dear', 1, 5)];
    expect(nextAfter(afterPath, 5, branching)).toMatchObject({ kind: 'start', step: { key: 'reply' } });
  });

  it('a branch that chose no path skips every path step; a skipped branch chooses none', () => {
    const none = [runStarted, started('route', 1, 1), succeeded('route', 1, 2, { path: null })];
    expect(nextAfter(none, 2, branching)).toMatchObject({ kind: 'skip', step: { key: 'cheap' } });
    expect(nextAfter([...none, skipped('cheap', 'path', 3)], 3, branching)).toMatchObject({ kind: 'skip', step: { key: 'dear' } });
  });

  it('refuses a branch output that names no path', () => {
    run(branching)([runStarted, started('route', 1, 1)]).when(succeedStep('route', 1, 2, { chosen: 'dear' })).thenThrows(ValidationError, /branch step route must be \{ path: string \| null \}/);
  });

  const filtering: RunDefinition = {
    steps: [
      { key: 'only_long', type: 'control.filter' },
      { key: 'reply', type: 'action.respond' },
    ],
    settings: { timeoutSeconds: 120, budget: 0 },
  };

  it('a filter whose condition failed ends the run as filtered; one that held lets it go on', () => {
    const stopped = [runStarted, started('only_long', 1, 1), succeeded('only_long', 1, 2, { passed: false })];
    expect(nextAfter(stopped, 2, filtering)).toEqual({ kind: 'finish', outcome: 'filtered', step: 'only_long' });
    run(filtering)(stopped).when({ type: 'FinishRun', data: { at: at(3) } }).then([{ type: 'RunFiltered', data: { step: 'only_long', at: at(3) } }]);
    run(filtering)(stopped).when(startStep('reply', 1, 3)).thenThrows(ConflictError, /finishing the run as filtered/);
    const passed = [runStarted, started('only_long', 1, 1), succeeded('only_long', 1, 2, { passed: true })];
    expect(nextAfter(passed, 2, filtering)).toMatchObject({ kind: 'start', step: { key: 'reply' } });
  });

  it('refuses a filter output that is not { passed: boolean }', () => {
    run(filtering)([runStarted, started('only_long', 1, 1)]).when(succeedStep('only_long', 1, 2, { passed: 'no' })).thenThrows(ValidationError, /filter step only_long/);
  });
});

describe('run decider: budget and limits', () => {
  const budgeted: RunDefinition = {
    steps: [
      { key: 'first', type: 'action.model', retry: { attempts: 2 } },
      { key: 'second', type: 'action.model' },
    ],
    settings: { timeoutSeconds: 120, budget: 10_000 },
  };

  it('a step whose estimated cost exceeds what is left of the budget fails the run before the call', () => {
    const spent = [runStarted, started('first', 1, 1), succeeded('first', 1, 2, { text: 'a' }, 7_000)];
    run(budgeted)(spent)
      .when(startStep('second', 1, 3, 3_001))
      .then([
        {
          type: 'RunFailed',
          data: { error: { code: 'BUDGET_EXCEEDED', message: "Step second may cost up to 3001 nano-dollars, more than the 3000 left of the run's budget of 10000" }, step: 'second', at: at(3) },
        },
      ]);
    run(budgeted)(spent).when(startStep('second', 1, 3, 3_000)).then([started('second', 1, 3)]);
  });

  it('what a failed attempt charged counts against the budget of its retry', () => {
    const charged = [runStarted, started('first', 1, 1), failed('first', 1, 2, at(3), 9_000)];
    run(budgeted)(charged).when(startStep('first', 2, 3, 1_001)).then([expect.objectContaining({ type: 'RunFailed' }) as RunEvent]);
    run(budgeted)(charged).when(startStep('first', 2, 3, 1_000)).then([started('first', 2, 3)]);
  });

  it('refuses a negative or fractional cost with a clear error', () => {
    run(budgeted)([runStarted]).when(startStep('first', 1, 1, -1)).thenThrows(ValidationError, /estimatedCost must be a non-negative integer/);
    run(budgeted)([runStarted, started('first', 1, 1)]).when(succeedStep('first', 1, 2, {}, 0.5)).thenThrows(ValidationError, /cost must be a non-negative integer/);
  });

  it('fails the run once it has started its maximum of steps (retries do not count)', () => {
    const limits = { ...DEFAULT_RUN_LIMITS, maxStepsPerRun: 1 };
    const retried = [runStarted, started('first', 1, 1), failed('first', 1, 2, at(3))];
    expect(nextAfter(retried, 3, budgeted, limits)).toMatchObject({ kind: 'start', step: { key: 'first' }, attempt: 2 });
    const one = [...retried, started('first', 2, 3), succeeded('first', 2, 4)];
    expect(nextAfter(one, 4, budgeted, limits)).toEqual({
      kind: 'finish',
      outcome: 'failed',
      error: { code: 'STEP_LIMIT_REACHED', message: 'The run reached its limit of 1 steps before step second' },
      step: 'second',
    });
    run(budgeted, limits)(one).when(startStep('second', 1, 5)).thenThrows(ConflictError, /limit of 1 steps/);
  });

  it('refuses an output over the size limit: the step fails with a clear error and the output is not stored', () => {
    const limits = { ...DEFAULT_RUN_LIMITS, maxOutputBytes: 16 };
    const error = { code: 'OUTPUT_TOO_LARGE', message: 'Step first produced 25 bytes of output, over the limit of 16' };
    run(budgeted, limits)([runStarted, started('first', 1, 1)])
      .when(succeedStep('first', 1, 2, { text: 'ééééééé' }))
      .then([{ type: 'StepFailed', data: { key: 'first', attempt: 1, error, cost: 0, retryAt: null, bytes: size(error), at: at(2) } }]);
    run(budgeted, limits)([runStarted, started('first', 1, 1)]).when(succeedStep('first', 1, 2, { text: 'ok' })).then([succeeded('first', 1, 2, { text: 'ok' })]);
  });

  it('counts everything the run stores (trigger, outputs, errors, RUN_EVENT_BYTES an event): an output that would pass maxStateBytes fails its step', () => {
    const history = [runStarted, started('first', 1, 1), succeeded('first', 1, 2, { t: 'abcdefgh' }), started('second', 1, 3)];
    // The trigger {"body":{"question":"why?"}} is 28 bytes, the first output 16; four events.
    const before = 28 + 16 + 4 * RUN_EVENT_BYTES;
    expect(storedAfter(history)).toBe(before);
    // {"u":"ijklmnop"} (16 bytes) in one more event, and the run's end held: one byte short.
    const limits = { ...DEFAULT_RUN_LIMITS, maxStateBytes: before + 2 * RUN_EVENT_BYTES + 15 };
    const message = `Step second's output of 16 bytes would bring what the run stores (its trigger, outputs, inputs kept, errors and end, ${RUN_EVENT_BYTES} bytes an event) to ${before + 2 * RUN_EVENT_BYTES + 16} bytes, over the limit of ${limits.maxStateBytes}`;
    const error = { code: 'RUN_STATE_TOO_LARGE', message };
    run(budgeted, limits)(history)
      .when(succeedStep('second', 1, 4, { u: 'ijklmnop' }))
      .then([{ type: 'StepFailed', data: { key: 'second', attempt: 1, error, cost: 0, retryAt: null, bytes: size(error), at: at(4) } }]);
    run(budgeted, limits)(history).when(succeedStep('second', 1, 4, 'ijklmnopqrstu')).then([succeeded('second', 1, 4, 'ijklmnopqrstu')]);
    // Failures count too: a failed first attempt (its error) leaves less for what comes after.
    const retried = [runStarted, started('first', 1, 1), failed('first', 1, 2, at(3)), started('first', 2, 3)];
    expect(storedAfter(retried)).toBe(28 + size(UPSTREAM_502) + 4 * RUN_EVENT_BYTES);
  });

  it('holds the room for a run\'s answer, which its end stores again (RunSucceeded repeats the last action.respond output)', () => {
    const answering: RunDefinition = { steps: [{ key: 'reply', type: 'action.respond' }, { key: 'after', type: 'action.transform' }], settings: { timeoutSeconds: 120, budget: 0 } };
    const answer = { a: 'x'.repeat(100) }; // 108 bytes
    const head = [runStarted, started('reply', 1, 1)];
    const base = storedAfter(head);
    // The answer counts twice, with its event and the end's: 216 bytes and two events.
    const tight = { ...DEFAULT_RUN_LIMITS, maxStateBytes: base + 2 * RUN_EVENT_BYTES + 215 };
    run(answering, tight)(head).when(succeedStep('reply', 1, 2, answer)).then([expect.objectContaining({ type: 'StepFailed', data: expect.objectContaining({ error: expect.objectContaining({ code: 'RUN_STATE_TOO_LARGE' }) }) }) as never]);
    // The answer's event, the next step's start and outcome (1 byte), the end (the answer again).
    const room = { ...DEFAULT_RUN_LIMITS, maxStateBytes: base + (RUN_EVENT_BYTES + 108) + RUN_EVENT_BYTES + (RUN_EVENT_BYTES + 1) + (RUN_EVENT_BYTES + 108) };
    run(answering, room)(head).when(succeedStep('reply', 1, 2, answer)).then([succeeded('reply', 1, 2, answer)]);
    // A later step's output must leave room for the answer the end repeats: `1` (1 byte) fits, `12` does not.
    const later = [...head, succeeded('reply', 1, 2, answer), started('after', 1, 3)];
    run(answering, room)(later).when(succeedStep('after', 1, 4, 12)).then([expect.objectContaining({ type: 'StepFailed' }) as never]);
    run(answering, room)(later).when(succeedStep('after', 1, 4, 1)).then([succeeded('after', 1, 4, 1)]);
    const done = [...later, succeeded('after', 1, 4, 1)];
    run(answering, room)(done).when({ type: 'FinishRun', data: { at: at(5) } }).then([{ type: 'RunSucceeded', data: { output: answer, bytes: 108, at: at(5) } }]);
    expect(storedAfter([...done, { type: 'RunSucceeded', data: { output: answer, bytes: 108, at: at(5) } }], answering)).toBe(room.maxStateBytes);
  });

  it('measures events written before they recorded their size', () => {
    const recorded = [runStarted, started('first', 1, 1), succeeded('first', 1, 2, { t: 'abc' })];
    const old = [runStarted, started('first', 1, 1), { type: 'StepSucceeded', data: { key: 'first', attempt: 1, output: { t: 'abc' }, cost: 0, input: { q: 'a' }, at: at(2) } } as RunEvent];
    expect(storedAfter(old)).toBe(storedAfter(recorded) + size({ q: 'a' }));
  });

  it('counts an older event’s input as this version would have kept it: a run in flight at the upgrade whose steps kept 1 MiB inputs goes on (review s45 F5)', () => {
    const steps = Array.from({ length: 18 }, (_, i) => ({ key: `s${i}`, type: 'action.transform' as const }));
    const long: RunDefinition = { steps, settings: { timeoutSeconds: 120, budget: 0 } };
    /** A StepSucceeded as written before the limit counted everything: no `bytes`, its input kept up to 1 MiB. */
    const older = (key: string, seconds: number, input: JsonValue, output: JsonValue = { ok: true }): RunEvent => ({ type: 'StepSucceeded', data: { key, attempt: 1, output, cost: 0, input, at: at(seconds) } });
    const olderFailed = (key: string, seconds: number, input: JsonValue): RunEvent => ({ type: 'StepFailed', data: { key, attempt: 1, error: UPSTREAM_502, cost: 0, retryAt: at(seconds + 1), input, at: at(seconds) } });
    const big = { blob: 'x'.repeat(1024 * 1024 - 20) }; // 1,048,568 bytes: kept by the older rule (at most 1 MiB)
    const history = [runStarted, ...steps.slice(0, 17).flatMap((step, i) => [started(step.key, 1, i + 1), older(step.key, i + 1, big)]), started('s17', 1, 30)];
    // 17 inputs of 1 MiB were 17.8 MB measured whole (over 16 MiB): this version keeps none of them, so none counts.
    expect(storedAfter(history, long)).toBe(28 + 17 * size({ ok: true }) + 36 * RUN_EVENT_BYTES);
    run(long)(history).when(succeedStep('s17', 1, 31)).then([succeeded('s17', 1, 31)]);
    // A failure's input the same way.
    const failedFirst = [runStarted, started('s0', 1, 1), olderFailed('s0', 2, big)];
    expect(storedAfter(failedFirst, long)).toBe(28 + size(UPSTREAM_502) + 3 * RUN_EVENT_BYTES);

    // Up to maxKeptInputBytes (64 KiB) an input is kept now, so it counts; one byte more, not.
    const head = [runStarted, started('s0', 1, 1)];
    const kept = { k: 'k'.repeat(DEFAULT_RUN_LIMITS.maxKeptInputBytes - 8) };
    expect(size(kept)).toBe(DEFAULT_RUN_LIMITS.maxKeptInputBytes);
    expect(storedAfter([...head, older('s0', 2, kept)], long)).toBe(storedAfter([...head, succeeded('s0', 1, 2)], long) + size(kept));
    expect(storedAfter([...head, older('s0', 2, { k: `${kept.k}k` })], long)).toBe(storedAfter([...head, succeeded('s0', 1, 2)], long));

    // And only while it fits in what the run may still store (16 MiB), as this version keeps it.
    const output = 'o'.repeat(1_044_000); // 16 of them: 16.7 MB, under the older rule's 16 MiB of outputs
    const full = [runStarted, ...steps.slice(0, 16).flatMap((step, i) => [started(step.key, 1, i + 1), older(step.key, i + 1, null, output)]), started('s16', 1, 20)];
    const room = DEFAULT_RUN_LIMITS.maxStateBytes - storedAfter(full, long) - RUN_EVENT_BYTES - size('ok');
    expect(room).toBeGreaterThan(0);
    expect(room).toBeLessThan(DEFAULT_RUN_LIMITS.maxKeptInputBytes);
    const fits = 'f'.repeat(room - 2); // its JSON: exactly the room
    expect(storedAfter([...full, older('s16', 21, fits, 'ok')], long)).toBe(storedAfter(full, long) + RUN_EVENT_BYTES + size('ok') + room);
    expect(storedAfter([...full, older('s16', 21, `${fits}f`, 'ok')], long)).toBe(storedAfter(full, long) + RUN_EVENT_BYTES + size('ok'));
  });
});

describe('run decider: step inputs', () => {
  const transform: RunDefinition = { steps: [{ key: 'first', type: 'action.transform' }], settings: { timeoutSeconds: 120, budget: 0 } };
  const withInput = (input: unknown) => ({ type: 'RecordStepSucceeded' as const, data: { key: 'first', attempt: 1, output: 'ok', cost: 0, input: input as never, at: at(2) } });

  it('keeps an attempt’s evaluated input with its outcome up to maxKeptInputBytes, and counts it (the outcome is recorded either way)', () => {
    const limits = { ...DEFAULT_RUN_LIMITS, maxKeptInputBytes: 16 };
    run(transform, limits)([runStarted, started('first', 1, 1)])
      .when(withInput({ q: 'hi' }))
      .then([{ type: 'StepSucceeded', data: { key: 'first', attempt: 1, output: 'ok', cost: 0, input: { q: 'hi' }, bytes: 4 + 10, at: at(2) } }]);
    run(transform, limits)([runStarted, started('first', 1, 1)])
      .when(withInput({ q: 'a much longer question' }))
      .then([{ type: 'StepSucceeded', data: { key: 'first', attempt: 1, output: 'ok', cost: 0, bytes: 4, at: at(2) } }]);
    run(transform, limits)([runStarted, started('first', 1, 1)])
      .when({ type: 'RecordStepFailed', data: { key: 'first', attempt: 1, error: { code: 'X', message: 'x' }, retryable: false, cost: 0, input: { q: 'hi' }, at: at(2) } })
      .then([{ type: 'StepFailed', data: { key: 'first', attempt: 1, error: { code: 'X', message: 'x' }, cost: 0, retryAt: null, input: { q: 'hi' }, bytes: size({ code: 'X', message: 'x' }) + 10, at: at(2) } }]);
    expect(DEFAULT_RUN_LIMITS.maxKeptInputBytes).toBe(64 * 1024);
  });

  it('keeps an input only while it fits in what the run may still store: an input never fails its step', () => {
    const head = [runStarted, started('first', 1, 1)];
    const limits = { ...DEFAULT_RUN_LIMITS, maxStateBytes: storedAfter(head, transform) + 2 * RUN_EVENT_BYTES + 4 + 9 };
    run(transform, limits)(head)
      .when(withInput({ q: 'hi' }))
      .then([{ type: 'StepSucceeded', data: { key: 'first', attempt: 1, output: 'ok', cost: 0, bytes: 4, at: at(2) } }]);
    run(transform, limits)(head)
      .when(withInput({ q: 'h' }))
      .then([{ type: 'StepSucceeded', data: { key: 'first', attempt: 1, output: 'ok', cost: 0, input: { q: 'h' }, bytes: 4 + 9, at: at(2) } }]);
  });
});

describe('run decider: timeout', () => {
  const picked = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2)];

  it('fails the run once its deadline (start + timeoutSeconds) has passed and refuses to start more steps', () => {
    expect(nextAfter(picked, 119)).toMatchObject({ kind: 'start', step: { key: 'answer' } });
    expect(nextAfter(picked, 120)).toEqual({ kind: 'finish', outcome: 'failed', error: { code: 'RUN_TIMEOUT', message: 'The run passed its timeout of 120 s' }, step: 'answer' });
    run(example)(picked).when(startStep('answer', 1, 121)).thenThrows(ConflictError, /passed its timeout/);
    run(example)(picked)
      .when({ type: 'FinishRun', data: { at: at(121) } })
      .then([{ type: 'RunFailed', data: { error: { code: 'RUN_TIMEOUT', message: 'The run passed its timeout of 120 s' }, step: 'answer', at: at(121) } }]);
  });

  it('a run whose steps all finished is succeeded even when finished after the deadline (a late restart)', () => {
    const done = [...picked, started('answer', 1, 3), succeeded('answer', 1, 4), started('reply', 1, 5), succeeded('reply', 1, 6, { a: 1 })];
    expect(nextAfter(done, 9_999)).toEqual({ kind: 'finish', outcome: 'succeeded', output: { a: 1 } });
  });
});

describe('run decider: resume after a crash', () => {
  const inFlight = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2), started('answer', 1, 3), failed('answer', 1, 4, at(5)), started('answer', 2, 5)];

  it('a step that started and never finished runs again with the same attempt and idempotency key', () => {
    expect(nextAfter(inFlight, 60)).toEqual({ kind: 'resume', step: example.steps[1], attempt: 2, idempotencyKey: 'run_1.answer.2', deadline: now(120) });
    run(example)(inFlight).when(startStep('answer', 2, 60)).thenThrows(ConflictError, /Attempt 2 of step answer has already started/);
    run(example)(inFlight).when(succeedStep('answer', 2, 61)).then([succeeded('answer', 2, 61)]);
  });

  it('a step that succeeded never runs again', () => {
    const afterCrash = inFlight.slice(0, 3);
    expect(nextAfter(afterCrash, 60)).toMatchObject({ kind: 'start', step: { key: 'answer' }, attempt: 1 });
    run(example)(afterCrash).when(startStep('pick', 2, 60)).thenThrows(ConflictError, /Cannot start attempt 2 of step pick/);
    run(example)(afterCrash).when(succeedStep('pick', 1, 60)).thenThrows(ConflictError, /step pick has already succeeded/);
  });

  it('an in-flight step past the deadline is not run again: the run fails', () => {
    expect(nextAfter(inFlight, 200)).toMatchObject({ kind: 'finish', outcome: 'failed', error: { code: 'RUN_TIMEOUT' }, step: 'answer' });
  });
});

describe('run decider: cancel and refused transitions', () => {
  const ended: RunEvent = { type: 'RunCancelled', data: { reason: 'by the user', at: at(4) } };

  it('cancels a running run, also with a step in flight; the step\'s late outcome is then refused', () => {
    const inFlight = [runStarted, started('pick', 1, 1)];
    run(example)(inFlight).when({ type: 'CancelRun', data: { reason: 'by the user', at: at(4) } }).then([ended]);
    run(example)([...inFlight, ended]).when(succeedStep('pick', 1, 5)).thenThrows(ConflictError, /the run has already been cancelled/);
    expect(nextAfter([...inFlight, ended], 5)).toEqual({ kind: 'idle', status: 'cancelled' });
  });

  it('a cancel ends the step in flight as FAILED (CANCELLED); its call\'s late charge is recorded once and counts as spent', () => {
    const inFlight = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2, { ok: true }, 1_000), started('answer', 1, 3)];
    const state = foldEvents(decider, [...inFlight, ended]);
    expect(state).toMatchObject({ status: 'cancelled', spent: 1_000 });
    if (state.status === 'none') throw new Error('unreachable');
    expect(state.steps.get('answer')).toMatchObject({ status: 'failed', attempt: 1, error: { code: 'CANCELLED' }, retryAt: null, chargeOpen: true });
    expect(state.steps.get('pick')).toMatchObject({ status: 'succeeded', chargeOpen: false });

    const charged: RunEvent = { type: 'StepCharged', data: { key: 'answer', attempt: 1, cost: 23_000, at: at(5) } };
    const charge = (key: string, attempt: number, cost = 23_000) => ({ type: 'RecordStepCharge', data: { key, attempt, cost, at: at(5) } }) as const;
    run(example)([...inFlight, ended]).when(charge('answer', 1)).then([charged]);
    expect(foldEvents(decider, [...inFlight, ended, charged])).toMatchObject({ status: 'cancelled', spent: 24_000 });
    // Once: a repeat (a retried append) records nothing; a step that settled with its outcome has nothing late.
    run(example)([...inFlight, ended, charged]).when(charge('answer', 1)).then([]);
    run(example)([...inFlight, ended]).when(charge('pick', 1)).then([]);
    run(example)([...inFlight, ended]).when(charge('answer', 2)).thenThrows(ConflictError, /not the step's last attempt/);
    run(example)([...inFlight, ended]).when(charge('answer', 1, -5)).thenThrows(ValidationError, /cost must be a non-negative integer/);
    // Only on an ended run: a running run's charges come with its steps' outcomes.
    run(example)(inFlight).when(charge('answer', 1)).thenThrows(ConflictError, /the run is running/);
  });

  it('a failure recorded before its call settled (chargePending) is not retried, and its charge may follow the run\'s end', () => {
    const inFlight = [runStarted, started('pick', 1, 1), succeeded('pick', 1, 2), started('answer', 1, 3)];
    const timedOut = { type: 'RecordStepFailed', data: { key: 'answer', attempt: 1, error: { code: 'STEP_TIMEOUT', message: 'slow' }, retryable: true, cost: 0, chargePending: true, at: at(4) } } as const;
    const pending: RunEvent = { type: 'StepFailed', data: { key: 'answer', attempt: 1, error: { code: 'STEP_TIMEOUT', message: 'slow' }, cost: 0, retryAt: null, bytes: size({ code: 'STEP_TIMEOUT', message: 'slow' }), chargePending: true, at: at(4) } };
    run(example)(inFlight).when(timedOut).then([pending]);
    expect(nextAfter([...inFlight, pending], 5)).toMatchObject({ kind: 'finish', outcome: 'failed', error: { code: 'STEP_TIMEOUT' } });
    const failedRun: RunEvent = { type: 'RunFailed', data: { error: { code: 'STEP_TIMEOUT', message: 'slow' }, step: 'answer', at: at(5) } };
    run(example)([...inFlight, pending, failedRun])
      .when({ type: 'RecordStepCharge', data: { key: 'answer', attempt: 1, cost: 500, at: at(6) } })
      .then([{ type: 'StepCharged', data: { key: 'answer', attempt: 1, cost: 500, at: at(6) } }]);
  });

  it('refuses anything after the run ended', () => {
    const done: RunEvent[] = [runStarted, { type: 'RunFailed', data: { error: { code: 'X', message: 'x' }, step: null, at: at(1) } }];
    run(example)(done).when({ type: 'CancelRun', data: { reason: 'late', at: at(2) } }).thenThrows(ConflictError, /already failed/);
    run(example)(done).when(startStep('pick', 1, 2)).thenThrows(ConflictError, /already failed/);
    run(example)(done).when({ type: 'FinishRun', data: { at: at(2) } }).thenThrows(ConflictError, /already failed/);
    run(example)(done).when({ type: 'StartRun', data: runStarted.data }).thenThrows(ConflictError, /already started/);
  });

  it('refuses an outcome for a step that never started, or for another attempt than the one in flight', () => {
    run(example)([runStarted]).when(succeedStep('pick', 1, 1)).thenThrows(ConflictError, /step pick never started/);
    run(example)([runStarted, started('pick', 1, 1)]).when(failStep('pick', 2, 2)).thenThrows(ConflictError, /attempt 1 of step pick is in flight, not attempt 2/);
  });

  it('refuses steps before the run started, unknown steps and bad times with clear errors', () => {
    run(example)([]).when(startStep('pick', 1, 0)).thenThrows(ConflictError, /the run has not started/);
    run(example)([runStarted]).when(startStep('nope', 1, 1)).thenThrows(ValidationError, /Step nope is not in this workflow version/);
    run(example)([runStarted]).when({ type: 'RecordStepStarted', data: { key: 'pick', attempt: 1, estimatedCost: 0, at: 'yesterday' } }).thenThrows(ValidationError, /ISO timestamp/);
  });

  it('refuses a run without an id or a pinned version, and a step output that is not JSON', () => {
    run(example)([]).when({ type: 'StartRun', data: { ...runStarted.data, runId: '' } }).thenThrows(ValidationError, /A run needs an id/);
    run(example)([]).when({ type: 'StartRun', data: { ...runStarted.data, version: 0 } }).thenThrows(ValidationError, /pins a workflow version/);
    const cyclic: { [key: string]: JsonValue } = {};
    cyclic.self = cyclic;
    run(example)([runStarted, started('pick', 1, 1)]).when(succeedStep('pick', 1, 2, cyclic)).thenThrows(ValidationError, /The output of step pick is not JSON/);
  });

  it('keeps step keys apart from object properties (a step named constructor)', () => {
    const odd: RunDefinition = { steps: [{ key: 'constructor', type: 'action.transform' }], settings: { timeoutSeconds: 10, budget: 0 } };
    expect(next(foldEvents(decider, [runStarted]), odd, now(1))).toMatchObject({ kind: 'start', step: { key: 'constructor' }, attempt: 1 });
  });
});

describe('run decider: queued runs', () => {
  const queued: RunEvent = { type: 'RunQueued', data: runStarted.data };
  const admitted: RunEvent = { type: 'RunStarted', data: { ...runStarted.data, at: at(30) } };

  it('a queued run does nothing until admitted; admission starts it with the time of admission as its start', () => {
    run(example)([]).when({ type: 'QueueRun', data: runStarted.data }).then([queued]);
    expect(nextAfter([queued], 10)).toEqual({ kind: 'idle', status: 'queued' });
    run(example)([queued]).when(startStep('pick', 1, 10)).thenThrows(ConflictError, /not running|queued/);
    run(example)([queued]).when({ type: 'AdmitRun', data: { at: at(30) } }).then([admitted]);
    // The run's timeout counts from its admission, not from its queueing.
    expect(nextAfter([queued, admitted], 30)).toEqual({ kind: 'start', step: example.steps[0], attempt: 1, idempotencyKey: 'run_1.pick.1', deadline: now(150) });
  });

  it('admits only a queued run, once; a queued run can be cancelled and is then never admitted', () => {
    run(example)([runStarted]).when({ type: 'AdmitRun', data: { at: at(1) } }).thenThrows(ConflictError, /running, not queued/);
    run(example)([queued, admitted]).when({ type: 'AdmitRun', data: { at: at(31) } }).thenThrows(ConflictError, /running, not queued/);
    run(example)([]).when({ type: 'AdmitRun', data: { at: at(1) } }).thenThrows(ConflictError, /not there/);
    const cancelled: RunEvent = { type: 'RunCancelled', data: { reason: 'by the user', at: at(5) } };
    run(example)([queued]).when({ type: 'CancelRun', data: { reason: 'by the user', at: at(5) } }).then([cancelled]);
    run(example)([queued, cancelled]).when({ type: 'AdmitRun', data: { at: at(6) } }).thenThrows(ConflictError, /cancelled, not queued/);
    run(example)([queued]).when({ type: 'QueueRun', data: runStarted.data }).thenThrows(ConflictError, /already started/);
  });
});

describe('run decider: retrying a failed run', () => {
  const failedRun: RunEvent[] = [
    runStarted,
    started('pick', 1, 1),
    succeeded('pick', 1, 2, { first: { id: 'm' } }),
    started('answer', 1, 3),
    failed('answer', 1, 4, null),
    { type: 'RunFailed', data: { error: { code: 'PROVIDER_ERROR', message: 'upstream 502' }, step: 'answer', at: at(5) } },
  ];
  const retryStarted: RunEvent = { type: 'RunStarted', data: { ...runStarted.data, runId: 'run_2', retryOf: 'run_1', at: at(60) } };
  const carried: RunEvent = { type: 'StepCarriedOver', data: { key: 'pick', fromRun: 'run_1', output: { first: { id: 'm' } }, skipped: null, bytes: size({ first: { id: 'm' } }), at: at(60) } };

  it('carries over the steps before the failed one (outputs and skips), in order, and stops at the failed step', () => {
    expect(carryOver(foldEvents(decider, failedRun), example)).toEqual([{ key: 'pick', status: 'succeeded', output: { first: { id: 'm' } } }]);
    const skippedFirst = [runStarted, skipped('pick', 'path', 1), started('answer', 1, 2), failed('answer', 1, 3, null), failedRun[5]!];
    expect(carryOver(foldEvents(decider, skippedFirst), example)).toEqual([{ key: 'pick', status: 'skipped', reason: 'path' }]);
  });

  it('retries only a failed run', () => {
    expect(() => carryOver(foldEvents(decider, [runStarted]), example)).toThrow(/Only a failed run can be retried; this run is running/);
    expect(() => carryOver(foldEvents(decider, [runStarted, { type: 'RunCancelled', data: { reason: 'x', at: at(1) } }]), example)).toThrow(/was cancelled/);
    expect(() => carryOver(foldEvents(decider, [runStarted, { type: 'RunSucceeded', data: { output: null, at: at(1) } }]), example)).toThrow(/this run succeeded/);
  });

  it('the retry records the carried steps and goes on from the failed step with attempt 1 of its own key', () => {
    const data = { ...runStarted.data, runId: 'run_2', retryOf: 'run_1', at: at(60), carried: carryOver(foldEvents(decider, failedRun), example) };
    run(example)([]).when({ type: 'StartRun', data }).then([retryStarted, carried]);
    const state = foldEvents(decider, [retryStarted, carried]);
    expect(state.status === 'running' && state.steps.get('pick')).toMatchObject({ status: 'succeeded', attempt: 0, carriedFrom: 'run_1', output: { first: { id: 'm' } } });
    expect(next(state, example, now(60))).toMatchObject({ kind: 'start', step: { key: 'answer' }, attempt: 1, idempotencyKey: 'run_2.answer.1' });
    // Carried steps are not charged again.
    expect(state.status === 'running' && state.spent).toBe(0);
  });

  it('a queued retry records its carried steps when queued and keeps them when admitted', () => {
    const data = { ...runStarted.data, runId: 'run_2', retryOf: 'run_1', at: at(60), carried: [{ key: 'pick', status: 'succeeded' as const, output: { first: { id: 'm' } } }] };
    run(example)([]).when({ type: 'QueueRun', data }).then([{ type: 'RunQueued', data: retryStarted.data }, carried]);
    run(example)([{ type: 'RunQueued', data: retryStarted.data }, carried])
      .when({ type: 'AdmitRun', data: { at: at(90) } })
      .then([{ type: 'RunStarted', data: { ...retryStarted.data, at: at(90) } }]);
    const admitted = foldEvents(decider, [{ type: 'RunQueued', data: retryStarted.data }, carried, { type: 'RunStarted', data: { ...retryStarted.data, at: at(90) } }]);
    expect(next(admitted, example, now(90))).toMatchObject({ kind: 'start', step: { key: 'answer' } });
  });

  it('refuses carried steps that are not the definition’s first steps in order, or that are carried without a run to come from', () => {
    const base = { ...runStarted.data, runId: 'run_2', retryOf: 'run_1' };
    run(example)([]).when({ type: 'StartRun', data: { ...base, carried: [{ key: 'answer', status: 'succeeded', output: 1 }] } }).thenThrows(ValidationError, /Carried step answer is not step 1/);
    run(example)([]).when({ type: 'StartRun', data: { ...runStarted.data, carried: [{ key: 'pick', status: 'succeeded', output: 1 }] } }).thenThrows(ValidationError, /Only a retry carries steps over/);
  });
});

describe('run decider: next and decide agree', () => {
  const stepArb = (key: string) =>
    fc.record(
      {
        key: fc.constant(key),
        type: fc.constantFrom('action.transform', 'action.model', 'control.filter', 'control.branch', 'action.respond'),
        if: fc.constant('=true'),
        retry: fc.record({ attempts: fc.integer({ min: 1, max: 3 }), backoffMs: fc.integer({ min: 0, max: 3_000 }) }),
        path: fc.constantFrom('a', 'b'),
      },
      { requiredKeys: ['key', 'type'] },
    );
  const definitionArb: fc.Arbitrary<RunDefinition> = fc.record({
    steps: fc.integer({ min: 0, max: 6 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => stepArb(`s${i}`)))),
    settings: fc.record({ timeoutSeconds: fc.integer({ min: 1, max: 30 }), budget: fc.integer({ min: 0, max: 100 }) }),
  });

  it('an executor doing what next says (with failures, skips and crashes) is never refused, ends the run, never re-runs a succeeded step, never retries before the backoff and never overspends', () => {
    fc.assert(
      fc.property(definitionArb, fc.array(fc.nat(), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 3 }), (definition, script, maxStepsPerRun) => {
        const limits = { ...DEFAULT_RUN_LIMITS, maxStepsPerRun };
        const d = runDecider(definition, limits);
        let i = 0;
        const pick = (n: number): number => script[i++ % script.length]! % n;
        let t = T0;
        const events: RunEvent[] = [];
        const apply = (command: Parameters<typeof d.decide>[0]): readonly RunEvent[] => {
          const decided = d.decide(command, foldEvents(d, events));
          events.push(...decided);
          return decided;
        };
        const iso = () => new Date(t).toISOString();
        const outcome = (step: RunDefinition['steps'][number], attempt: number, estimate: number): void => {
          t += pick(3_000);
          const choice = pick(4);
          if (choice === 0) return; // a crash: the outcome is never recorded
          if (choice === 1) {
            apply({ type: 'RecordStepFailed', data: { key: step.key, attempt, error: { code: 'E', message: 'no' }, retryable: pick(2) === 0, cost: pick(estimate + 1), at: iso() } });
            return;
          }
          const output: JsonValue =
            step.type === 'control.filter' ? { passed: pick(3) > 0 } : step.type === 'control.branch' ? { path: ['a', 'b', null][pick(3)] ?? null } : { v: attempt };
          apply({ type: 'RecordStepSucceeded', data: { key: step.key, attempt, output, cost: pick(estimate + 1), at: iso() } });
        };

        apply({ type: 'StartRun', data: { runId: 'run_p', workflowId: 'wf', version: 1, trigger: null, at: iso() } });
        for (let round = 0; round < 1_000; round++) {
          t += 100;
          const action = next(foldEvents(d, events), definition, t, limits);
          if (action.kind === 'idle') break;
          switch (action.kind) {
            case 'start': {
              if (action.attempt === 1 && action.step.if !== undefined && pick(3) === 0) {
                apply({ type: 'SkipStep', data: { key: action.step.key, reason: 'condition', at: iso() } });
                break;
              }
              const estimate = pick(60);
              const decided = apply({ type: 'RecordStepStarted', data: { key: action.step.key, attempt: action.attempt, estimatedCost: estimate, at: iso() } });
              if (decided[0]?.type === 'StepStarted') outcome(action.step, action.attempt, estimate);
              break;
            }
            case 'resume': {
              const first = events.find((e) => e.type === 'StepStarted' && e.data.key === action.step.key && e.data.attempt === action.attempt);
              expect(first?.type === 'StepStarted' && first.data.idempotencyKey).toBe(action.idempotencyKey);
              outcome(action.step, action.attempt, 0);
              break;
            }
            case 'skip':
              apply({ type: 'SkipStep', data: { key: action.step.key, reason: 'path', at: iso() } });
              break;
            case 'wait':
              expect(action.until).toBeGreaterThan(t);
              t = action.until;
              break;
            case 'wake':
              apply({ type: 'WakeStep', data: { key: action.step.key, attempt: action.attempt, at: iso() } });
              break;
            case 'finish':
              apply({ type: 'FinishRun', data: { at: iso() } });
              break;
            default: {
              const _never: never = action;
              throw new Error(`unexpected ${JSON.stringify(_never)}`);
            }
          }
        }
        const ends = events.filter((e) => ['RunSucceeded', 'RunFailed', 'RunFiltered', 'RunCancelled'].includes(e.type));
        expect(ends).toHaveLength(1);
        expect(events.at(-1)).toBe(ends[0]);
        const starts = events.filter((e) => e.type === 'StepStarted').map((e) => (e.type === 'StepStarted' ? e.data.idempotencyKey : ''));
        expect(new Set(starts).size).toBe(starts.length);
        const succeededAt = new Map<string, number>();
        const dueAt = new Map<string, number>();
        events.forEach((e, index) => {
          if (e.type === 'StepSucceeded') succeededAt.set(e.data.key, index);
          if (e.type === 'StepFailed' && e.data.retryAt !== null) dueAt.set(e.data.key, Date.parse(e.data.retryAt));
          if (e.type === 'StepStarted') {
            expect(succeededAt.has(e.data.key)).toBe(false);
            // A retry never starts before its backoff is over.
            expect(Date.parse(e.data.at)).toBeGreaterThanOrEqual(dueAt.get(e.data.key) ?? 0);
          }
        });
        const spent = events.reduce((sum, e) => sum + (e.type === 'StepSucceeded' || e.type === 'StepFailed' ? e.data.cost : 0), 0);
        expect(spent).toBeLessThanOrEqual(definition.settings.budget);
        expect(new Set(starts.map((key) => key.split('.')[1])).size).toBeLessThanOrEqual(maxStepsPerRun);
      }),
      { numRuns: 300 },
    );
  });
});

describe('run decider: chains of runs (depth)', () => {
  const chained = { ...runStarted.data, depth: 3 };
  const error = { code: 'CHAIN_TOO_DEEP', message: 'Not started: too deep' };

  it('a refused run is recorded as started and failed at once, with no step run, and nothing may follow', () => {
    run(example)([])
      .when({ type: 'RefuseRun', data: { ...chained, error } })
      .then([{ type: 'RunStarted', data: chained }, { type: 'RunFailed', data: { error, step: null, at: at(0) } }]);
    const refused: RunEvent[] = [{ type: 'RunStarted', data: chained }, { type: 'RunFailed', data: { error, step: null, at: at(0) } }];
    expect(nextAfter(refused, 1)).toEqual({ kind: 'idle', status: 'failed' });
    run(example)(refused).when(startStep('pick', 1, 1)).thenThrows(ConflictError, /already failed/);
  });

  it('a queued run keeps its depth when admitted; a depth of 0 is not written; a negative one is refused', () => {
    const queued: RunEvent = { type: 'RunQueued', data: chained };
    run(example)([queued]).when({ type: 'AdmitRun', data: { at: at(5) } }).then([{ type: 'RunStarted', data: { ...chained, at: at(5) } }]);
    run(example)([]).when({ type: 'StartRun', data: { ...runStarted.data, depth: 0 } }).then([runStarted]);
    run(example)([]).when({ type: 'StartRun', data: { ...runStarted.data, depth: -1 } }).thenThrows(ValidationError, /depth/);
  });
});
