import type { LimitReset } from '../apiKeys/apiKey.events.js';

/** Spending windows of a key, all in UTC: a day, a week starting on Monday, a calendar month. */
export const windowId = (reset: Exclude<LimitReset, 'never'>, ms: number): string => {
  const d = new Date(ms);
  if (reset === 'daily') return d.toISOString().slice(0, 10);
  if (reset === 'monthly') return d.toISOString().slice(0, 7);
  const daysSinceMonday = (d.getUTCDay() + 6) % 7;
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - daysSinceMonday)).toISOString().slice(0, 10);
};

/** When the window containing `ms` ends (the next one starts). */
export const windowEnd = (reset: Exclude<LimitReset, 'never'>, ms: number): number => {
  const d = new Date(ms);
  if (reset === 'daily') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  if (reset === 'monthly') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  const daysSinceMonday = (d.getUTCDay() + 6) % 7;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - daysSinceMonday + 7);
};

interface Bucket {
  id: string;
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

export const emptyWindows = (): KeyWindows => ({ lifetime: 0, daily: { id: '', amount: 0 }, weekly: { id: '', amount: 0 }, monthly: { id: '', amount: 0 } });

export const addToWindows = (windows: KeyWindows, amount: number, atMs: number): void => {
  windows.lifetime += amount;
  for (const reset of RESETS) {
    const id = windowId(reset, atMs);
    const bucket = windows[reset];
    if (id === bucket.id) bucket.amount += amount;
    else if (id > bucket.id) windows[reset] = { id, amount };
    // A change dated in an earlier window than the current one no longer counts against any current window.
  }
};

/** Spending in the window that contains `nowMs`. */
export const usageIn = (windows: KeyWindows, reset: LimitReset, nowMs: number): number => {
  if (reset === 'never') return windows.lifetime;
  const bucket = windows[reset];
  return bucket.id === windowId(reset, nowMs) ? bucket.amount : 0;
};
