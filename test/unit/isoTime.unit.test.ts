import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/isoTime.js';

describe('isoTime', () => {
  it('is toISOString of the millisecond asked, whether it repeats or alternates', () => {
    const times = [0, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_124, 1_700_000_000_123, -86_400_000, 8.64e15];
    for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('throws for an invalid time, as toISOString does, also right after a valid one', () => {
    isoTime(5);
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
    expect(isoTime(5)).toBe('1970-01-01T00:00:00.005Z');
  });
});
