/** Money is integer nano-dollars (1 USD = 1,000,000,000): shown exactly, parsed exactly, never through a float. */
const NANO = 1_000_000_000;

/** "$12.50", "$0.000150": at least two decimals, more only when the amount has them. */
export const formatUsd = (nano: number): string => {
  const sign = nano < 0 ? '−' : '';
  // Whole nano-dollars only (a chart's tick can fall between two).
  const abs = Math.round(Math.abs(nano));
  const dollars = Math.floor(abs / NANO);
  const fraction = String(abs % NANO).padStart(9, '0').replace(/0+$/, '').padEnd(2, '0');
  return `${sign}$${dollars.toLocaleString('en-US')}.${fraction}`;
};

/** Dollars typed by a person ("10", "2.5", "0.000001") to nano-dollars; null when it is not such an amount. */
export const parseUsd = (text: string, maxDecimals = 9): number | null => {
  const match = new RegExp(`^\\s*\\$?(\\d{1,9})(?:\\.(\\d{0,${maxDecimals}}))?\\s*$`).exec(text);
  if (!match) return null;
  return Number(match[1]) * NANO + Number((match[2] ?? '').padEnd(9, '0'));
};

/**
 * A price in nano-dollars per token as dollars per million tokens: nano × 10⁶ / 10⁹ = nano / 1,000, so the decimal
 * point moves three places, in integers (BigInt): the product nano × 10⁶ passes 2⁵³ from $9,007 per million tokens,
 * where a float loses digits. `$0.15`, `$123,456,789,012.345`.
 */
export const formatPerMillion = (nanoPerToken: number): string => {
  const nano = BigInt(Math.round(nanoPerToken));
  const abs = nano < 0n ? -nano : nano;
  const fraction = String(abs % 1000n).padStart(3, '0').replace(/0+$/, '').padEnd(2, '0');
  return `${nano < 0n ? '−' : ''}$${(abs / 1000n).toLocaleString('en-US')}.${fraction}`;
};

/** The largest price the API's Money scalar carries, in nano-dollars per token (2^53 − 1): $9,007,199,254,740.991 per million tokens. */
export const MAX_PRICE = Number.MAX_SAFE_INTEGER;

/**
 * Dollars per million tokens typed by a person ("0.15", "2", "$123456789012.345") → integer nano-dollars per token,
 * or the sentence saying why not: at most 3 decimals (a nano-dollar per token is the ledger's unit), at most MAX_PRICE.
 * Exact, in integers: what formatPerMillion shows (without `$` and commas) reads back as the same price.
 */
export const parsePerMillion = (text: string, what: string): number | string => {
  const match = /^\s*\$?(\d+)(?:\.(\d*))?\s*$/.exec(text);
  if (!match) return `The ${what} price is dollars per million tokens, e.g. 0.15 or 2.`;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > 3) return `The ${what} price is finer than the ledger's unit (a nano-dollar per token): at most 3 decimals.`;
  const nano = BigInt(match[1] ?? '0') * 1000n + BigInt(fraction.padEnd(3, '0'));
  if (nano > BigInt(MAX_PRICE)) return `The ${what} price is at most ${formatPerMillion(MAX_PRICE)} per million tokens.`;
  return Number(nano);
};

/** A price as its field holds it to edit: formatPerMillion's digits, without `$` and thousands separators. */
export const perMillionInput = (nanoPerToken: number): string => formatPerMillion(nanoPerToken).replace(/[$,]/g, '');

/** The largest single amount the ledger takes (a purchase, a grant, a refund): the server's MAX_AMOUNT, $1,000,000. */
export const MAX_LEDGER_AMOUNT = 1_000_000 * NANO;
/** The largest amount the API's Money scalar carries (2^53 − 1 nano-dollars), to the cent below: $9,007,199.25. */
export const MAX_MONEY = 9_007_199_250_000_000;

export const formatInt = (n: number): string => n.toLocaleString('en-US');

export const formatTime = (iso: string): string => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
