import { describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../src/errors.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { next, runDecider, type RunDefinition } from '../../src/modules/workflows/run.decider.js';
import type { RunEvent } from '../../src/modules/workflows/run.events.js';
import { delayPlan, wakeUpTime } from '../../src/modules/workflows/steps/control.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number): string => new Date(T0 + seconds * 1_000).toISOString();
const now = (seconds: number): number => T0 + seconds * 1_000;

const definition: RunDefinition = {
  steps: [
    { key: 'wait', type: 'control.delay' },
    { key: 'reply', type: 'action.respond' },
  ],
  settings: { timeoutSeconds: 120, budget: 0 },
};
const decider = runDecider(definition);
const run = deciderSpec(decider);

const runStarted: RunEvent = { type: 'RunStarted', data: { runId: 'run_1', workflowId: 'wf_1', version: 1, trigger: null, at: at(0) } };
const started: RunEvent = { type: 'StepStarted', data: { key: 'wait', attempt: 1, idempotencyKey: 'run_1.wait.1', at: at(1) } };
const waiting: RunEvent = { type: 'StepWaiting', data: { key: 'wait', attempt: 1, until: at(61), at: at(1) } };
const nextAfter = (events: readonly RunEvent[], seconds: number) => next(foldEvents(decider, events), definition, now(seconds));

describe('run decider: control.delay', () => {
  it('given the delay step started, when its wake-up time is recorded, then it waits (StepWaiting with the time)', () => {
    run([runStarted, started]).when({ type: 'RecordStepWaiting', data: { key: 'wait', attempt: 1, until: at(61), at: at(1) } }).then([waiting]);
  });

  it('a waiting step makes the executor wait until its stored time, then wake it, also after a restart long after', () => {
    expect(nextAfter([runStarted, started, waiting], 30)).toEqual({ kind: 'wait', until: now(61), key: 'wait', attempt: 1 });
    expect(nextAfter([runStarted, started, waiting], 61)).toEqual({ kind: 'wake', step: definition.steps[0], attempt: 1, scheduledFor: now(61) });
    expect(nextAfter([runStarted, started, waiting], 100)).toMatchObject({ kind: 'wake', scheduledFor: now(61) });
  });

  it('when woken at its time, the step succeeds with {wokeAt, scheduledFor} and the run goes on', () => {
    const woke: RunEvent = { type: 'StepSucceeded', data: { key: 'wait', attempt: 1, output: { wokeAt: at(61.2), scheduledFor: at(61) }, cost: 0, at: at(61.2) } };
    run([runStarted, started, waiting]).when({ type: 'WakeStep', data: { key: 'wait', attempt: 1, at: at(61.2) } }).then([woke]);
    expect(nextAfter([runStarted, started, waiting, woke], 62)).toMatchObject({ kind: 'start', step: { key: 'reply' } });
  });

  it('refuses to wake a step before its time, twice, or one that does not wait', () => {
    run([runStarted, started, waiting]).when({ type: 'WakeStep', data: { key: 'wait', attempt: 1, at: at(60) } }).thenThrows(ConflictError, /Cannot wake attempt 1 of step wait: the run is waiting until/);
    run([runStarted, started]).when({ type: 'WakeStep', data: { key: 'wait', attempt: 1, at: at(70) } }).thenThrows(ConflictError, /re-running attempt 1 of step wait/);
  });

  it('fails the step at once (not retried) when the wake-up time is at or past the run deadline: the timeout counts delays', () => {
    const events = decider.decide({ type: 'RecordStepWaiting', data: { key: 'wait', attempt: 1, until: at(120), at: at(1) } }, foldEvents(decider, [runStarted, started]));
    expect(events).toMatchObject([{ type: 'StepFailed', data: { key: 'wait', retryAt: null, error: { code: 'DELAY_PAST_TIMEOUT', message: expect.stringMatching(/deadline 2026-12-01T10:02:00.000Z/) } } }]);
  });

  it('the run deadline still holds while a step waits (a restart past it fails the run as timed out)', () => {
    expect(nextAfter([runStarted, started, waiting], 121)).toMatchObject({ kind: 'finish', outcome: 'failed', error: { code: 'RUN_TIMEOUT' } });
  });

  it('a run that fails while a step waits or runs leaves neither in flight: FAILED with the run\'s error, no wake-up time', () => {
    const timeout = { code: 'RUN_TIMEOUT', message: 'The run passed its timeout of 120 s' };
    run([runStarted, started, waiting]).when({ type: 'FinishRun', data: { at: at(121) } }).then([{ type: 'RunFailed', data: { error: timeout, step: 'wait', at: at(121) } }]);
    const failed: RunEvent = { type: 'RunFailed', data: { error: timeout, step: 'wait', at: at(121) } };
    expect(foldEvents(decider, [runStarted, started, waiting, failed])).toMatchObject({ status: 'failed', steps: new Map([['wait', expect.objectContaining({ status: 'failed', error: timeout, wakeAt: null, chargeOpen: false })]]) });
    // A step running when the run failed may still have its call's charge recorded, once (as after a cancel).
    const running = foldEvents(decider, [runStarted, started, failed]);
    expect(running.status !== 'none' && running.steps.get('wait')).toMatchObject({ status: 'failed', error: timeout, chargeOpen: true });
    expect(decider.decide({ type: 'RecordStepCharge', data: { key: 'wait', attempt: 1, cost: 500, at: at(122) } }, running)).toEqual([{ type: 'StepCharged', data: { key: 'wait', attempt: 1, cost: 500, at: at(122) } }]);
  });

  it('only a delay step waits, and a delay step succeeds only by waking', () => {
    const other: RunDefinition = { ...definition, steps: [{ key: 'wait', type: 'action.http' }] };
    deciderSpec(runDecider(other))([runStarted, started]).when({ type: 'RecordStepWaiting', data: { key: 'wait', attempt: 1, until: at(5), at: at(1) } }).thenThrows(ValidationError, /only a control.delay step waits/);
    run([runStarted, started]).when({ type: 'RecordStepSucceeded', data: { key: 'wait', attempt: 1, output: { done: true }, cost: 0, at: at(2) } }).thenThrows(ValidationError, /succeeds by waking/);
    run([runStarted, started, waiting]).when({ type: 'RecordStepFailed', data: { key: 'wait', attempt: 1, error: { code: 'X', message: 'x' }, retryable: false, cost: 0, at: at(2) } }).thenThrows(ConflictError, /has already waiting/);
  });

  it('a cancel ends a waiting run', () => {
    run([runStarted, started, waiting]).when({ type: 'CancelRun', data: { reason: 'no', at: at(5) } }).then([{ type: 'RunCancelled', data: { reason: 'no', at: at(5) } }]);
  });
});

describe('control.delay input', () => {
  it('reads milliseconds, ISO-8601 durations and times', () => {
    expect(delayPlan({ for: 1500 })).toEqual({ forMs: 1500 });
    expect(delayPlan({ for: 'PT5M' })).toEqual({ forMs: 300_000 });
    expect(delayPlan({ for: 'P1DT2H0.5S' })).toEqual({ forMs: 93_600_500 });
    expect(delayPlan({ until: '2026-12-24T18:00:00+01:00' })).toEqual({ until: Date.parse('2026-12-24T17:00:00Z') });
    expect(wakeUpTime({ forMs: 1500 }, 1_000)).toBe(2_500);
    expect(wakeUpTime({ until: 42 }, 1_000)).toBe(42);
  });

  it.each([[{}], [{ for: 1, until: '2026-01-01T00:00:00Z' }], [{ for: -1 }], [{ for: 1.5 }], [{ for: 'P1M' }], [{ for: 'PT' }], [{ for: 'P31D' }], [{ until: 'tomorrow' }], [{ until: 12 }], [null]])(
    'refuses %j with INVALID_INPUT, not retried',
    (input) => {
      expect(() => delayPlan(input)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', retryable: false }));
    },
  );
});
