import { NANOS_PER_USD } from './ledger.events.js';

/** Exact decimal dollars from nano-dollars, e.g. 1234500000 → "1.2345". */
export const formatUsd = (nanos: number): string => {
  const sign = nanos < 0 ? '-' : '';
  const abs = Math.abs(nanos);
  const whole = Math.floor(abs / NANOS_PER_USD);
  const fraction = String(abs % NANOS_PER_USD).padStart(9, '0').replace(/0+$/, '');
  return `${sign}${whole}${fraction.length < 2 ? `.${fraction.padEnd(2, '0')}` : `.${fraction}`}`;
};

/** Dollars as a JSON number for OpenRouter-compatible fields (exact integers are given alongside). */
export const toUsdNumber = (nanos: number): number => nanos / NANOS_PER_USD;
