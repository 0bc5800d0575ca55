/**
 * Money is integer nano-dollars (1 USD = 1,000,000,000) everywhere. This module is the one place that turns it into
 * text for people or OpenRouter, and decimal text into it: on digits, never through floating point.
 */

/** Decimal places of a dollar that one nano-dollar is. */
const NANO_DIGITS = 9;
export const NANOS_PER_USD = 10 ** NANO_DIGITS;
export const NANOS_PER_CENT = NANOS_PER_USD / 100;
/** A price per million tokens is per token with 6 fewer decimals: $0.15 per million = 150 nano-dollars per token. */
const PER_MILLION_TOKENS_DIGITS = NANO_DIGITS - 6;

/**
 * Exact decimal dollars, no sign symbol: at least `minFractionDigits` decimals, trailing zeros beyond dropped.
 * 1234500000 → "1.2345"; 150 → "0.00000015"; with 2: 1000000000 → "1.00". OpenRouter's price strings use 0
 * ("0" for zero).
 */
export const usdDecimal = (nanos: number, minFractionDigits = 0): string => {
  if (!Number.isSafeInteger(nanos)) throw new RangeError(`not an exact amount of nano-dollars: ${nanos}`);
  const digits = String(Math.abs(nanos)).padStart(NANO_DIGITS + 1, '0');
  const whole = digits.slice(0, -NANO_DIGITS);
  const fraction = digits.slice(-NANO_DIGITS).replace(/0+$/, '').padEnd(minFractionDigits, '0');
  return `${nanos < 0 ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
};

/** Money for people, in every message: "$1.00", "$1,000,000.00", "$0.00003105", "-$2.50". */
export const formatUsd = (nanos: number): string => {
  const text = usdDecimal(Math.abs(nanos), 2);
  const point = text.indexOf('.');
  const grouped = text.slice(0, point).replace(/\B(?=(\d{3})+$)/g, ',') + text.slice(point);
  return `${nanos < 0 ? '-' : ''}$${grouped}`;
};

/** Dollars as a JSON number for OpenRouter-compatible fields (the exact integers are given alongside). */
export const toUsdNumber = (nanos: number): number => nanos / NANOS_PER_USD;

/**
 * A non-negative decimal number as an exact integer count of units of 10^-`decimals`: ("0.15", 3) → 150. Takes the
 * text of a JSON number too (String(n) may use an exponent: "1e-7"). Throws a RangeError saying what is wrong:
 * not a non-negative decimal, finer than one nano-dollar (the unit), or too large for an exact integer.
 */
export const parseDecimalUnits = (text: string, decimals: number, what: string): number => decimalUnits(text, decimals, what, 'exact');

/**
 * The largest integer count of units of 10^-`decimals` at most a non-negative decimal: ("0.0375", 3) → 37, ("1e99", 3)
 * → Number.MAX_SAFE_INTEGER. For a bound on amounts that are integers of that unit (catalog prices): an integer n is
 * ≤ the decimal exactly when n ≤ its floor, so a bound finer than the unit is applied exactly instead of refused, and
 * one beyond every exact integer bounds nothing. Computed on the digits, never through floating point. Throws a
 * RangeError only for what is not a non-negative decimal.
 */
export const parseDecimalUnitsAtMost = (text: string, decimals: number, what: string): number => decimalUnits(text, decimals, what, 'floor');

const decimalUnits = (text: string, decimals: number, what: string, finer: 'exact' | 'floor'): number => {
  const match = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) throw new RangeError(`${what}: ${JSON.stringify(text)} is not a non-negative decimal number`);
  const whole = match[1]!.replace(/^0+/, '');
  const digits = whole + (match[2] ?? '');
  if (/^0*$/.test(digits)) return 0;
  const tooLarge = (): number => {
    if (finer === 'floor') return Number.MAX_SAFE_INTEGER;
    throw new RangeError(`${what}: ${JSON.stringify(text)} is too large`);
  };
  // Digits before the unit's point: the written integer digits, moved by the exponent and the unit's scale.
  const integerDigits = whole.length + Number(match[3] ?? '0') + decimals;
  if (integerDigits > 16) return tooLarge();
  const rest = integerDigits <= 0 ? digits : digits.slice(integerDigits);
  if (finer === 'exact' && !/^0*$/.test(rest)) throw new RangeError(`${what}: ${JSON.stringify(text)} is finer than one nano-dollar`);
  // Dropping the digits past the unit is the floor, the number being non-negative.
  const integer = integerDigits <= 0 ? '0' : digits.slice(0, integerDigits).padEnd(integerDigits, '0');
  if (!Number.isSafeInteger(Number(integer))) return tooLarge();
  return Number(integer);
};

/** "0.15" USD per million tokens → 150 nano-dollars per token. */
export const usdPerMillionToNanoPerToken = (text: string, what = 'price'): number => parseDecimalUnits(text, PER_MILLION_TOKENS_DIGITS, what);

/** "0.001" USD → 1,000,000 nano-dollars. */
export const usdToNano = (text: string, what = 'price'): number => parseDecimalUnits(text, NANO_DIGITS, what);

/** A max price in USD per million tokens → the most nano-dollars per token it admits: "0.0375" → 37 (37.5 floored). */
export const usdPerMillionToMaxNanoPerToken = (text: string, what = 'price'): number => parseDecimalUnitsAtMost(text, PER_MILLION_TOKENS_DIGITS, what);

/** A max price in USD → the most nano-dollars it admits: "1e-12" → 0. */
export const usdToMaxNano = (text: string, what = 'price'): number => parseDecimalUnitsAtMost(text, NANO_DIGITS, what);
