import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { parseDefinition } from '../../src/modules/workflows/definition.js';
import { compileSchedule, latestDue, nextDue } from '../../src/modules/workflows/triggers/cron.js';
import { scheduledRunId } from '../../src/modules/workflows/triggers/schedule.js';

const cron = (expression: string, timezone = 'UTC') => {
  const compiled = compileSchedule({ cron: expression, timezone });
  if (!compiled.ok) throw new Error(compiled.problem.message);
  return compiled.cron;
};
const t = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('schedule due times', () => {
  it('weekdays at nine in Paris: the next due time is 08:00 UTC in winter, 07:00 UTC in summer, skipping the weekend', () => {
    const weekdays = cron('0 9 * * 1-5', 'Europe/Paris');
    // Friday 2026-12-04 10:00 UTC → Monday 2026-12-07 09:00 Paris (CET, UTC+1).
    expect(iso(nextDue(weekdays, t('2026-12-04T10:00:00Z')))).toBe('2026-12-07T08:00:00.000Z');
    expect(iso(nextDue(weekdays, t('2026-06-01T06:00:00Z')))).toBe('2026-06-01T07:00:00.000Z');
  });

  it('next is strictly after, latest is at or before (an instant exactly on a due time is due)', () => {
    const seconds = cron('* * * * * *');
    expect(iso(nextDue(seconds, t('2026-01-01T00:00:05.000Z')))).toBe('2026-01-01T00:00:06.000Z');
    expect(iso(latestDue(seconds, t('2026-01-01T00:00:05.000Z')))).toBe('2026-01-01T00:00:05.000Z');
    expect(iso(latestDue(seconds, t('2026-01-01T00:00:05.999Z')))).toBe('2026-01-01T00:00:05.000Z');
    expect(iso(latestDue(cron('0 9 * * 1-5', 'Europe/Paris'), t('2026-12-07T07:59:59Z')))).toBe('2026-12-04T08:00:00.000Z');
  });

  it('DST in Paris: 02:30 on the spring-forward day (which does not exist) fires at 03:00 CEST; on the autumn day (which happens twice) it fires once', () => {
    const early = cron('30 2 * * *', 'Europe/Paris');
    expect(iso(nextDue(early, t('2026-03-28T12:00:00Z')))).toBe('2026-03-29T01:00:00.000Z');
    expect(iso(nextDue(early, t('2026-03-29T01:00:00Z')))).toBe('2026-03-30T00:30:00.000Z');
    expect(iso(nextDue(early, t('2026-10-24T12:00:00Z')))).toBe('2026-10-25T00:30:00.000Z');
    expect(iso(nextDue(early, t('2026-10-25T00:30:00Z')))).toBe('2026-10-26T01:30:00.000Z');
  });

  it('the run id of a due time is the same every time it is derived, and differs per workflow and per due time', () => {
    expect(scheduledRunId('wf_1', t('2026-01-01T09:00:00Z'))).toBe(scheduledRunId('wf_1', t('2026-01-01T09:00:00Z')));
    expect(scheduledRunId('wf_1', t('2026-01-01T09:00:00Z'))).not.toBe(scheduledRunId('wf_2', t('2026-01-01T09:00:00Z')));
    expect(scheduledRunId('wf_1', t('2026-01-01T09:00:00Z'))).not.toBe(scheduledRunId('wf_1', t('2026-01-01T09:00:01Z')));
    expect(scheduledRunId('wf_1', 0)).toMatch(/^run_[0-9a-f]{40}$/);
  });
});

describe('schedule trigger in a definition', () => {
  const definition = (trigger: Record<string, unknown>) => ({ name: 'S', trigger: { type: 'schedule', ...trigger }, steps: [{ key: 'x', type: 'action.transform', input: { expression: '=1' } }] });
  const pathOf = (trigger: Record<string, unknown>) => {
    try {
      parseDefinition(definition(trigger));
    } catch (error) {
      if (error instanceof ValidationError) return error.metadata?.path;
      throw error;
    }
    return null;
  };

  it('fills in the time zone (UTC) and catch-up ("one")', () => {
    expect(parseDefinition(definition({ cron: '*/5 * * * *' })).trigger).toEqual({ type: 'schedule', cron: '*/5 * * * *', timezone: 'UTC', catchUp: 'one' });
  });

  it('names the bad field', () => {
    expect(pathOf({ cron: 'nope' })).toBe('trigger.cron');
    expect(pathOf({ cron: '' })).toBe('trigger.cron');
    expect(pathOf({ cron: '* * * * * * *' })).toBe('trigger.cron');
    expect(pathOf({ cron: '0 9 * * *', timezone: 'Europe/Atlantis' })).toBe('trigger.timezone');
    expect(pathOf({ cron: '0 9 * * *', catchUp: 'all' })).toBe('trigger.catchUp');
    expect(pathOf({ cron: '0 9 * * *', every: 5 })).toBe('trigger');
    expect(pathOf({ cron: '* * * * * *' })).toBeNull();
  });
});
