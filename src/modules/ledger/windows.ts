import type { LimitReset } from '../apiKeys/apiKey.events.js';

/**
 * Spending windows of a key, all in UTC: a day, a week starting on Monday, a calendar month. A window is named by
 * a number that grows with time (days since the epoch for a day or a week's Monday, year × 12 + month for a
 * month): this runs twice per generation, so it avoids building dates and strings.
 */
const DAY = 86_400_000;
type Reset = Exclude<LimitReset, 'never'>;

let cachedDay = Number.NaN;
let cachedMonth = 0;
const monthOf = (day: number): number => {
  if (day !== cachedDay) {
    const d = new Date(day * DAY);
    cachedDay = day;
    cachedMonth = d.getUTCFullYear() * 12 + d.getUTCMonth();
  }
  return cachedMonth;
};

export const windowId = (reset: Reset, ms: number): number => {
  const day = Math.floor(ms / DAY);
  if (reset === 'daily') return day;
  // 1970-01-01 was a Thursday: (day + 3) % 7 is the number of days since Monday.
  if (reset === 'weekly') return day - ((day + 3) % 7);
  return monthOf(day);
};

/** When the window containing `ms` ends (the next one starts). */
export const windowEnd = (reset: Reset, ms: number): number => {
  const id = windowId(reset, ms);
  if (reset === 'daily') return (id + 1) * DAY;
  if (reset === 'weekly') return (id + 7) * DAY;
  return Date.UTC(Math.floor((id + 1) / 12), (id + 1) % 12, 1);
};

interface Bucket {
  id: number;
  amount: number;
}

/** A key's spending (reserved + charged) per window. Amounts count in the window of the reservation's time. */
export interface KeyWindows {
  lifetime: number;
  daily: Bucket;
  weekly: Bucket;
  monthly: Bucket;
}

const RESETS = ['daily', 'weekly', 'monthly'] as const;

export const emptyWindows = (): KeyWindows => ({ lifetime: 0, daily: { id: -1, amount: 0 }, weekly: { id: -1, amount: 0 }, monthly: { id: -1, amount: 0 } });

export const addToWindows = (windows: KeyWindows, amount: number, atMs: number): void => {
  windows.lifetime += amount;
  for (const reset of RESETS) {
    const id = windowId(reset, atMs);
    const bucket = windows[reset];
    if (id === bucket.id) bucket.amount += amount;
    else if (id > bucket.id) {
      bucket.id = id;
      bucket.amount = amount;
    }
    // A change dated in an earlier window than the current one no longer counts against any current window.
  }
};

/** Spending in the window that contains `nowMs`. */
export const usageIn = (windows: KeyWindows, reset: LimitReset, nowMs: number): number => {
  if (reset === 'never') return windows.lifetime;
  const bucket = windows[reset];
  return bucket.id === windowId(reset, nowMs) ? bucket.amount : 0;
};
