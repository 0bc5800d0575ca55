import { describe, expect, it } from 'vitest';
import { cleanKey } from '../../src/console/app/api.js';
import { formatPerMillion, formatUsd, MAX_PRICE, parsePerMillion, parseUsd, perMillionInput } from '../../src/console/app/money.js';
import { pageFromHash, pagesFor } from '../../src/console/app/navigation.js';

describe('the console shows and reads money exactly, in nano-dollars', () => {
  it('formats with at least two decimals and every significant one', () => {
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(12_500_000_000)).toBe('$12.50');
    expect(formatUsd(150_000)).toBe('$0.00015');
    expect(formatUsd(1)).toBe('$0.000000001');
    expect(formatUsd(-2_000_000_001)).toBe('−$2.000000001');
    expect(formatUsd(1_234_567_000_000_000)).toBe('$1,234,567.00');
  });

  it('parses dollars without a float round trip, and refuses what is not an amount', () => {
    expect(parseUsd('12.50')).toBe(12_500_000_000);
    expect(parseUsd('$0.000000001')).toBe(1);
    expect(parseUsd('0.29')).toBe(290_000_000); // 0.29 * 1e9 is 289999999.99999997 as a float
    expect(parseUsd('10', 2)).toBe(10_000_000_000);
    for (const bad of ['', 'abc', '1.2.3', '-5', '1e3', '0.001']) expect(parseUsd(bad, 2), bad).toBeNull();
  });
});

describe('the console shows and reads per-million prices exactly, past 2^53 nano-dollars per million', () => {
  it('moves the decimal point of nano-dollars per token three places, in integers', () => {
    expect(formatPerMillion(150)).toBe('$0.15');
    expect(formatPerMillion(2_000)).toBe('$2.00');
    expect(formatPerMillion(1)).toBe('$0.001');
    expect(formatPerMillion(123_456_789_012_345)).toBe('$123,456,789,012.345'); // × 10⁶ as a float: …012.34499584
    expect(formatPerMillion(MAX_PRICE)).toBe('$9,007,199,254,740.991'); // as a float: …740.990951424
  });

  it('reads back what it shows, refusing a finer or larger price with its reason', () => {
    for (const nano of [0, 1, 150, 2_000, 123_456_789_012_345, MAX_PRICE]) expect(parsePerMillion(perMillionInput(nano), 'prompt'), String(nano)).toBe(nano);
    expect(parsePerMillion('$0.150000', 'prompt')).toBe(150);
    expect(parsePerMillion('0.0001', 'prompt')).toMatch(/at most 3 decimals/);
    expect(parsePerMillion('9007199254740.992', 'completion')).toBe('The completion price is at most $9,007,199,254,740.991 per million tokens.');
    for (const bad of ['', 'abc', '-1', '1e3', '1,5']) expect(parsePerMillion(bad, 'prompt'), bad).toMatch(/dollars per million tokens/);
  });
});

describe('the console reads a pasted key as the server does', () => {
  it('drops invisible characters and whitespace around it, and refuses a character no key has, naming it', () => {
    const key = 'sk-sy-v1-abc123';
    expect(cleanKey(`${key}\u200B`)).toBe(key);
    expect(cleanKey(`\uFEFF ${key}\u200E\n`)).toBe(key);
    expect(() => cleanKey(`sk-sy-v1-ab\u00e9c`)).toThrow('This key holds a character no API key has (U+00E9, at position 12)');
  });
});

describe('the console shows the pages of the key’s roles', () => {
  it('gives users the user pages, designers and providers theirs, everyone the models, and admins every page', () => {
    expect(pagesFor(['USER']).map((p) => p.id)).toEqual(['activity', 'keys', 'credits', 'playground', 'models']);
    expect(pagesFor(['PROVIDER']).map((p) => p.id)).toEqual(['provider', 'models']);
    expect(pagesFor(['DESIGNER']).map((p) => p.id)).toEqual(['workflows', 'runs', 'models']);
    expect(pagesFor(['ADMIN']).map((p) => p.id)).toEqual(['activity', 'keys', 'credits', 'playground', 'workflows', 'runs', 'provider', 'admin', 'models']);
    // An account without roles reads its own records and the public catalog.
    expect(pagesFor([]).map((p) => p.id)).toEqual(['activity', 'credits', 'models']);
  });

  it('opens the page the address names when allowed, else the first allowed page', () => {
    expect(pageFromHash('#/credits', ['USER'])?.id).toBe('credits');
    expect(pageFromHash('#/nowhere', ['USER'])?.id).toBe('activity');
    expect(pageFromHash('#/keys', ['PROVIDER'])?.id).toBe('provider');
    expect(pageFromHash('#/keys', ['DESIGNER'])?.id).toBe('workflows');
    expect(pageFromHash('#/admin', ['USER', 'PROVIDER'])?.id).toBe('activity');
    expect(pageFromHash('#/admin', ['ADMIN'])?.id).toBe('admin');
  });
});
