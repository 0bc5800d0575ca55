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

/** The largest single amount the ledger takes (a purchase, a grant, a refund): the server's MAX_AMOUNT, $1,000,000. */
export const MAX_LEDGER_AMOUNT = 1_000_000 * NANO;
/** The largest amount the API's Money scalar carries (2^53 − 1 nano-dollars), to the cent below: $9,007,199.25. */
export const MAX_MONEY = 9_007_199_250_000_000;

export const formatInt = (n: number): string => n.toLocaleString('en-US');

export const formatTime = (iso: string): string => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
