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

/** A cron's fields as written with seconds first, each with the values it takes (as the user counts them). */
const FIELDS = [
  { name: 'second', min: 0, max: 59, note: '' },
  { name: 'minute', min: 0, max: 59, note: '' },
  { name: 'hour', min: 0, max: 23, note: '' },
  { name: 'day of month', min: 1, max: 31, note: '' },
  { name: 'month', min: 1, max: 12, note: '' },
  { name: 'day of week', min: 0, max: 7, note: ' (0 and 7 are Sunday)' },
] as const;

/**
 * The first number of a field outside its range, said in the user's terms: croner counts days of month and months
 * from 0 in its messages (`0 0 32 * *` is its "Invalid value for day: 31", `0 0 * 0 *` its "month: -1"). Each item
 * of a list is a value or a range (`a-b`, maybe stepped: `/n` is no value); `15W`, `5#2` are read as 15 and 5;
 * names (`JAN`, `MON`), `L` and `*` are left to croner.
 */
const outOfRange = (pattern: string): string | null => {
  const parts = pattern.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) return null;
  const fields = parts.length === 6 ? FIELDS : FIELDS.slice(1);
  for (const [index, part] of parts.entries()) {
    const field = fields[index]!;
    for (const item of part.split(',')) {
      // A step after a single value (`0/5`) is croner's to refuse: it takes steps only after `*` or a range.
      const values = /^(\d+)(?:(?:W|#\d+)?|-(\d+)(?:\/\d+)?)$/i.exec(item);
      if (values === null) continue;
      for (const text of values.slice(1, 3)) {
        if (text === undefined) continue;
        const value = Number(text);
        if (value < field.min || value > field.max) return `${field.name} ${text} is out of range ${field.min}-${field.max}${field.note}`;
      }
    }
  }
  return null;
};

/** croner's part names (its messages count days of month and months from 0). */
const CRONER_PARTS: Record<string, { name: string; offset: number }> = {
  second: { name: 'second', offset: 0 },
  minute: { name: 'minute', offset: 0 },
  hour: { name: 'hour', offset: 0 },
  day: { name: 'day of month', offset: 1 },
  nearestWeekdays: { name: 'day of month', offset: 1 },
  month: { name: 'month', offset: 1 },
  dayOfWeek: { name: 'day of week', offset: 0 },
};

/** How many fields a cron has, said against the rule (5, or 6 with seconds first). */
const fieldCount = (count: number): string =>
  count === 0 ? 'it is empty' : `it has ${count} field${count === 1 ? '' : 's'}${count === 7 ? ' (a year field is not taken)' : ''}`;

/** croner's message in the user's terms: a field by its name (croner numbers them from 0, seconds first), values as written. */
const describe = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error))
    .replace(/^CronPattern: /, '')
    // Its count allows 7 (years), which its 5-or-6-parts mode (ours) then refuses in its own terms.
    .replace(/^invalid configuration format \('(.*)'\), exactly five, six, or seven space separated parts are required\.$/s, (_whole, pattern: string) =>
      fieldCount(pattern.trim() === '' ? 0 : pattern.trim().split(/\s+/).length),
    )
    .replace(/^mode '5-or-6-parts' requires exactly 5 or 6 parts, but pattern '.*' has (\d+) parts\.$/s, (_whole, count: string) => fieldCount(Number(count)))
    .replace(/^configuration entry (\w+) \(\) is empty, check for trailing spaces\.$/, (whole, part: string) => {
      const known = CRONER_PARTS[part];
      return known === undefined ? whole : `the ${known.name} field has an empty item in its list (two commas together, or one at its start or end)`;
    })
    .replace(/^nth weekday out of range, should be 1-5 or L\. Value: (.*), Type: \w+$/, (_whole, value: string) =>
      `in the day of week field, #${value} is out of range: #n (the nth such weekday of the month) is 1-5, or L for the last`,
    )
    .replace(/^configuration entry (\d) \((.*)\) contains illegal characters\.$/, (whole, entry: string, token: string) => {
      const field = FIELDS[Number(entry)];
      return field === undefined ? whole : `the ${field.name} field ${JSON.stringify(token)} has characters a cron does not take`;
    })
    .replace(/^configuration entry (\d) \((.*)\) is empty.*$/, (whole, entry: string) => {
      const field = FIELDS[Number(entry)];
      return field === undefined ? whole : `the ${field.name} field is empty`;
    })
    .replace(/^Invalid value for (\w+): (-?\d+)$/, (whole, part: string, value: string) => {
      const known = CRONER_PARTS[part];
      return known === undefined ? whole : `${known.name} ${Number(value) + known.offset} is out of range`;
    });

/** A compiled schedule, or the problem with it. `from` is where "it never fires" is looked for (now, usually). */
export const compileSchedule = (spec: ScheduleSpec, from: Date = new Date()): { ok: true; cron: Cron } | { ok: false; problem: ScheduleProblem } => {
  if (!isKnownTimeZone(spec.timezone)) {
    return { ok: false, problem: { field: 'timezone', message: `unknown time zone ${JSON.stringify(spec.timezone)}: use an IANA name such as "Europe/Paris" or "UTC"` } };
  }
  const range = outOfRange(spec.cron);
  if (range !== null) return { ok: false, problem: { field: 'cron', message: `not a cron expression (5 fields, or 6 with seconds first): ${range}` } };
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
