import { z } from 'zod';

/** A UTC day as `YYYY-MM-DD`, from a time in milliseconds. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * Whether `text` is a day of the calendar written `YYYY-MM-DD`: the form alone is not enough (`2025-13-45`, and
 * `2025-02-30`, which Date.parse rolls over into March, are no days).
 */
export const isCalendarDay = (text: string): boolean => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && utcDay(ms) === text;
};

/** The argument of every query that takes a day (usage, traffic, workflow usage). */
export const calendarDayArg = z.string().refine(isCalendarDay, 'must be a day, YYYY-MM-DD');
