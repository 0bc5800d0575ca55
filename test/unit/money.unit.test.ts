import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import { GatewayError } from '../../src/gateway/gatewayErrors.js';
import { billUsage, worstCaseCost } from '../../src/gateway/pricing.js';
import type { Usage } from '../../src/gateway/types.js';
import { formatUsd, parseDecimalUnits, parseDecimalUnitsAtMost, usdDecimal, usdPerMillionToNanoPerToken, usdToNano } from '../../src/modules/ledger/money.js';
import { computeFee } from '../../src/modules/ledger/payments.js';
import { prices } from '../support/catalogFixture.js';

const USD = 1_000_000_000;

describe('money conversions are exact', () => {
  it('USD per million tokens → integer nano-dollars per token', () => {
    expect(usdPerMillionToNanoPerToken('0.15')).toBe(150);
    expect(usdPerMillionToNanoPerToken('10.00')).toBe(10_000);
    expect(usdPerMillionToNanoPerToken('0.075')).toBe(75);
    expect(usdPerMillionToNanoPerToken('0')).toBe(0);
    expect(() => usdPerMillionToNanoPerToken('0.0375')).toThrow(/finer than one nano-dollar/);
    expect(() => usdPerMillionToNanoPerToken('-1')).toThrow();
    expect(usdToNano('0.001')).toBe(1_000_000);
  });

  it('nano-dollars → OpenRouter USD strings (one formatter)', () => {
    expect(usdDecimal(150)).toBe('0.00000015');
    expect(usdDecimal(0)).toBe('0');
    expect(usdDecimal(1_500_000_000)).toBe('1.5');
    expect(usdDecimal(12_000_000_001)).toBe('12.000000001');
  });
});

describe('one USD formatter', () => {
  it('prints dollars for people with cents, grouping and every nano-dollar', () => {
    expect(formatUsd(USD)).toBe('$1.00');
    expect(formatUsd(31_050)).toBe('$0.00003105');
    expect(formatUsd(1_000_000 * USD)).toBe('$1,000,000.00');
    expect(formatUsd(-2_500_000_000)).toBe('-$2.50');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(1_234_567_890_123)).toBe('$1,234.567890123');
  });
  it('prints OpenRouter price strings ("0" for zero, no trailing zeros)', () => {
    expect(usdDecimal(0)).toBe('0');
    expect(usdDecimal(150)).toBe('0.00000015');
    expect(usdDecimal(1_500_000_000)).toBe('1.5');
  });
  it('round-trips every safe amount exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (nanos) => {
        expect(parseDecimalUnits(usdDecimal(nanos), 9, 'x')).toBe(nanos);
      }),
    );
  });
});

describe('decimal text to nano-dollars without floating point', () => {
  it('parses plain and exponent forms exactly (the text String(n) gives for a JSON number)', () => {
    expect(parseDecimalUnits('0.29', 3, 'x')).toBe(290);
    expect(parseDecimalUnits('1.005', 3, 'x')).toBe(1005);
    expect(parseDecimalUnits(String(1e-7), 9, 'x')).toBe(100);
    expect(parseDecimalUnits(String(2.5e-7), 9, 'x')).toBe(250);
    expect(parseDecimalUnits('1e3', 3, 'x')).toBe(1_000_000);
    expect(parseDecimalUnits('000.500', 3, 'x')).toBe(500);
    expect(parseDecimalUnits('0e999999999', 3, 'x')).toBe(0);
  });
  it('refuses negatives, NaN, text, too fine and too large values', () => {
    expect(() => parseDecimalUnits('-1', 3, 'x')).toThrow(/not a non-negative decimal/);
    expect(() => parseDecimalUnits('NaN', 3, 'x')).toThrow(/not a non-negative decimal/);
    expect(() => parseDecimalUnits('0x10', 3, 'x')).toThrow(/not a non-negative decimal/);
    expect(() => parseDecimalUnits('0.0005', 3, 'x')).toThrow(/finer than one nano-dollar/);
    expect(() => parseDecimalUnits('1e-10', 9, 'x')).toThrow(/finer than one nano-dollar/);
    expect(() => parseDecimalUnits('1e999999999', 3, 'x')).toThrow(/too large/);
    expect(() => parseDecimalUnits('9007199254740.992', 3, 'x')).toThrow(/too large/);
  });
  it('computes the purchase fee in integers, exact at the largest amounts (rounded up to a whole cent)', () => {
    // 999,999.99 USD × 5.5%: amount × basis points is above 2^53, where a float product is off.
    const cent = 10_000_000n;
    const exact = (amount: number) => Number((((BigInt(amount) * 550n + 9_999n) / 10_000n + cent - 1n) / cent) * cent);
    const amount = 999_999_990_000_000;
    expect(computeFee(amount)).toBe(exact(amount));
    expect(computeFee(amount + 1)).toBe(exact(amount + 1));
    expect(computeFee(amount) % Number(cent)).toBe(0);
  });
});

describe('a decimal bound as the most whole units it admits (floored, on the digits)', () => {
  it('floors what is finer than the unit, exactly, and admits exactly the integers at most the decimal', () => {
    expect(parseDecimalUnitsAtMost('0.0375', 3, 'x')).toBe(37);
    expect(parseDecimalUnitsAtMost('0.0005', 3, 'x')).toBe(0);
    expect(parseDecimalUnitsAtMost('1e-12', 9, 'x')).toBe(0);
    expect(parseDecimalUnitsAtMost('2.9999999', 3, 'x')).toBe(2999);
    // Exact where floating point is not: 0.3 × 1000 is 299.99999999999994, 1.005 × 1000 is 1004.9999999999999.
    expect(parseDecimalUnitsAtMost(String(0.3), 3, 'x')).toBe(300);
    expect(parseDecimalUnitsAtMost(String(1.005), 3, 'x')).toBe(1005);
    expect(parseDecimalUnitsAtMost(String(2.5e-7), 9, 'x')).toBe(250);
    expect(parseDecimalUnitsAtMost('0.29', 3, 'x')).toBe(290);
  });
  it('bounds nothing beyond every exact integer, and still refuses what is not a non-negative number', () => {
    expect(parseDecimalUnitsAtMost('1e999999999', 3, 'x')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseDecimalUnitsAtMost('9007199254740.992', 3, 'x')).toBe(Number.MAX_SAFE_INTEGER);
    for (const text of ['-1', 'NaN', 'Infinity', '0x10', '', 'abc']) expect(() => parseDecimalUnitsAtMost(text, 3, 'x')).toThrow(/not a non-negative decimal/);
  });
  it('agrees with exact rational arithmetic: an integer price p is admitted iff p ≤ the decimal', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 10 ** 9 }), (mantissa, scale, price) => {
        // The bound is mantissa × 10^-scale USD per million tokens; the price p nano-dollars per token is p × 10^-3 of it.
        const text = scale === 0 ? String(mantissa) : `${mantissa / 10n ** BigInt(scale)}.${String(mantissa % 10n ** BigInt(scale)).padStart(scale, '0')}`;
        const admitted = price <= parseDecimalUnitsAtMost(text, 3, 'x');
        expect(admitted).toBe(BigInt(price) * 10n ** BigInt(scale) <= mantissa * 1000n);
      }),
    );
  });
});

describe('provider.max_price', () => {
  const maxPrice = (value: unknown) => parseChatBody({ model: 'a/b', messages: [{ role: 'user', content: 'hi' }], provider: { max_price: value } }).provider?.maxPrice;
  const refusal = (value: unknown): GatewayError => {
    try {
      maxPrice(value);
    } catch (error) {
      if (error instanceof GatewayError) return error;
      throw error;
    }
    throw new Error('expected a refusal');
  };
  it('is parsed from the decimal value exactly (1.005 per million tokens is 1005 nano-dollars per token, not 1004)', () => {
    expect(maxPrice({ prompt: 1.005, completion: 0.29, request: 0.000000029 })).toEqual({ prompt: 1005, completion: 290, request: 29 });
    expect(maxPrice({ prompt: '0.5', request: 1e-7 })).toEqual({ prompt: 500, request: 100 });
  });
  it('takes a bound finer than a nano-dollar as the most whole nano-dollars it admits (a bound, not an amount)', () => {
    expect(maxPrice({ prompt: 0.0375, completion: '0.0001', request: 1e-12 })).toEqual({ prompt: 37, completion: 0, request: 0 });
    expect(maxPrice({ prompt: 1e30 })).toEqual({ prompt: Number.MAX_SAFE_INTEGER });
  });
  it('refuses negative and non-numeric values with a 400 naming the field', () => {
    for (const [value, message] of [
      [{ prompt: -1 }, /not a non-negative decimal/],
      [{ completion: 'abc' }, /not a non-negative decimal/],
      [{ request: '-0.01' }, /not a non-negative decimal/],
      [{ prompt: 'NaN' }, /not a non-negative decimal/],
      [{ prompt: true }, /must be a non-negative number/],
      [{ prompt: null, completion: {} }, /must be a non-negative number/],
    ] as const) {
      const error = refusal(value);
      expect(error.status).toBe(400);
      expect(error.message).toMatch(message);
      expect(error.metadata.param).toMatch(/^provider\.max_price\./);
    }
  });
});

describe('billing what a provider reports', () => {
  const p = prices({ prompt: 150, completion: 600, reasoning: 600, cacheRead: 75, cacheWrite: 190, request: 0 });
  const usage = (prompt: number, completion: number): Usage => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });

  it('caps an absurd completion count at max_tokens and the charge at the reservation, and says so', () => {
    const reserved = worstCaseCost(21, 50, p);
    const billing = billUsage(usage(21, 1_000_000_000), p, { promptTokens: 32_768, completionTokens: 50, cost: reserved });
    expect(billing.usage).toMatchObject({ prompt_tokens: 21, completion_tokens: 50 });
    expect(billing.breakdown.total).toBe(21 * 150 + 50 * 600);
    expect(billing.breakdown.total).toBeLessThanOrEqual(reserved);
    expect(billing).toMatchObject({ overReported: true, reported: { completion: 1_000_000_000 }, billed: { completion: 50 }, reportedCost: 21 * 150 + 1_000_000_000 * 600 });
  });
  it('bills an honest report as reported', () => {
    const billing = billUsage(usage(21, 40), p, { promptTokens: 32_768, completionTokens: 50, cost: worstCaseCost(21, 50, p) });
    expect(billing).toMatchObject({ overReported: false, breakdown: { total: 21 * 150 + 40 * 600 } });
  });

  const count = fc.oneof(fc.nat({ max: 5_000 }), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(-5, 0.5, 1e300, Number.NaN, Number.POSITIVE_INFINITY));
  const price = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 }));
  it('property: billed ≤ reserved and every billed count ≤ its cap, for random prices, max_tokens and reports', () => {
    fc.assert(
      fc.property(
        fc.record({ prompt: price, completion: price, reasoning: price, cacheRead: price, cacheWrite: price, request: fc.integer({ min: 0, max: 1_000_000 }) }),
        fc.record({ estimate: fc.nat({ max: 10_000 }), maxTokens: fc.integer({ min: 1, max: 100_000 }), context: fc.integer({ min: 1, max: 1_000_000 }) }),
        fc.record({ prompt: count, completion: count, cached: fc.option(count), cacheWrite: fc.option(count), reasoning: fc.option(count) }),
        (endpointPrices, request, report) => {
          const reported: Usage = { ...usage(report.prompt, report.completion) };
          if (report.cached !== null) reported.prompt_tokens_details = { cached_tokens: report.cached, ...(report.cacheWrite !== null && { cache_write_tokens: report.cacheWrite }) };
          if (report.reasoning !== null) reported.completion_tokens_details = { reasoning_tokens: report.reasoning };
          const reserved = worstCaseCost(request.estimate, request.maxTokens, prices(endpointPrices));
          const b = billUsage(reported, prices(endpointPrices), { promptTokens: request.context, completionTokens: request.maxTokens, cost: reserved });
          const { total, ...parts } = b.breakdown;
          expect(total).toBeLessThanOrEqual(reserved);
          expect(Number.isSafeInteger(total) && total >= 0).toBe(true);
          expect(Object.values(parts).reduce((a, n) => a + n, 0)).toBe(total);
          for (const n of Object.values(parts)) expect(n).toBeGreaterThanOrEqual(0);
          expect(b.usage.prompt_tokens).toBeLessThanOrEqual(request.context);
          expect(b.usage.completion_tokens).toBeLessThanOrEqual(request.maxTokens);
          expect((b.usage.prompt_tokens_details?.cached_tokens ?? 0) + (b.usage.prompt_tokens_details?.cache_write_tokens ?? 0)).toBeLessThanOrEqual(b.usage.prompt_tokens);
          expect(b.usage.completion_tokens_details?.reasoning_tokens ?? 0).toBeLessThanOrEqual(b.usage.completion_tokens);
          for (const n of Object.values(b.billed)) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
          // Anything cut is flagged: billed equals reported exactly when nothing was over-reported.
          if (!b.overReported) expect(b.billed).toEqual(b.reported);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
