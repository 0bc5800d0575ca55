/**
 * Due times of a `schedule` trigger, computed with croner in the trigger's IANA time zone. Pure (the caller passes
 * the time), so the scheduler and the definition's validation share one reading of a cron expression.
 *
 * Cron expressions have 5 fields (minute precision) or 6 (a leading seconds field); 7 (years) are refused. A cron's
 * finest resolution is one second; a workflow's schedule must also keep WORKFLOW_MIN_SCHEDULE_SECONDS between due times
 * (shortestInterval, checked when saved: workflow.api.ts).
 *
 * Daylight-saving time (croner's rules, pinned by test/unit/workflowSchedule.unit.test.ts): a fixed-time schedule
 * (`30 2 * * *`) whose time falls in the spring-forward gap fires at the first valid time after it (03:00), and
 * fires once when the time occurs twice in the autumn; an interval schedule (`*\/30 * 2 * * *`) skips the times in
 * the gap and runs on both occurrences of a repeated time (distinct instants, so distinct run ids).
 */
import { Cron } from 'croner';

export interface ScheduleSpec {
  readonly cron: string;
  readonly timezone: string;
}

/** Why a schedule cannot be used, with the field to blame (`cron` or `timezone`). */
export interface ScheduleProblem {
  readonly field: 'cron' | 'timezone';
  readonly message: string;
}

/** A time zone the runtime knows (IANA name, as Intl reads it). */
export const isKnownTimeZone = (timezone: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error)).replace(/^CronPattern: /, '');

/** A compiled schedule, or the problem with it. `from` is where "it never fires" is looked for (now, usually). */
export const compileSchedule = (spec: ScheduleSpec, from: Date = new Date()): { ok: true; cron: Cron } | { ok: false; problem: ScheduleProblem } => {
  if (!isKnownTimeZone(spec.timezone)) {
    return { ok: false, problem: { field: 'timezone', message: `unknown time zone ${JSON.stringify(spec.timezone)}: use an IANA name such as "Europe/Paris" or "UTC"` } };
  }
  let cron: Cron;
  try {
    cron = new Cron(spec.cron, { timezone: spec.timezone, paused: true, mode: '5-or-6-parts' });
  } catch (error) {
    return { ok: false, problem: { field: 'cron', message: `not a cron expression (5 fields, or 6 with seconds first): ${describe(error)}` } };
  }
  let first: Date | null;
  try {
    first = cron.nextRun(from);
  } catch (error) {
    return { ok: false, problem: { field: 'timezone', message: describe(error) } };
  }
  if (first === null) return { ok: false, problem: { field: 'cron', message: 'the expression never fires (no date matches it)' } };
  return { ok: true, cron };
};

/** The first due time strictly after `after`, or null when there is none. */
export const nextDue = (cron: Cron, after: number): number | null => cron.nextRun(new Date(after))?.getTime() ?? null;

/** The latest due time at or before `at` (an instant exactly at `at` included), or null when there is none. */
export const latestDue = (cron: Cron, at: number): number | null => {
  // previousRuns counts a run earlier in the same second as the reference: 1 ms past `at` includes `at` itself.
  const [latest] = cron.previousRuns(1, new Date(at + 1));
  return latest === undefined ? null : latest.getTime();
};

/** Due times a schedule's shortest interval is looked for in (from now): enough for every pattern a cron repeats. */
const INTERVAL_SAMPLE = 100;

/** The shortest time between two of a schedule's next due times (ms), or null when it fires at most once. */
export const shortestInterval = (cron: Cron, from: Date): number | null => {
  const due = cron.nextRuns(INTERVAL_SAMPLE, from).map((time) => time.getTime());
  let shortest: number | null = null;
  for (let i = 1; i < due.length; i++) shortest = Math.min(shortest ?? Infinity, due[i]! - due[i - 1]!);
  return shortest;
};
