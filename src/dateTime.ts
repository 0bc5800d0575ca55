import { isCalendarDay } from './calendarDay.js';

/**
 * RFC 3339's date-time (ISO 8601's profile for the internet): a day, a time to the second (any fraction, to the
 * nanosecond) and a zone, `Z` or `±hh:mm`. Date.parse alone takes far more (`2/1/2031`, `Feb 30 2031`) and reads a
 * time without a zone in the server's own zone (its `TZ`), so the same text would name another instant on another
 * host; it also rolls a day past the month's end into the next (`2031-02-31` is March 3). The form and the day are
 * checked first. RFC 3339 lets the T and the Z be written in lower case.
 */
const RFC3339_DATE_TIME = /^(\d{4}-\d{2}-\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** What every date-time input must be, for error messages (the GraphQL DateTime scalar, REST `expires_at`, workflow `until`). */
export const DATE_TIME_RULE = 'an RFC 3339 date-time with a zone (Z or ±hh:mm) on a day of the calendar, e.g. 2026-11-25T10:00:00Z';

/** The instant (epoch ms) of an RFC 3339 date-time with a zone on a day of the calendar; null for anything else. */
export const parseDateTime = (value: unknown): number | null => {
  if (typeof value !== 'string') return null;
  const text = value.toUpperCase();
  const day = RFC3339_DATE_TIME.exec(text)?.[1];
  if (day === undefined || !isCalendarDay(day)) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
};
