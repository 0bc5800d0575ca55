import { describe, expect, it } from 'vitest';
import { createRateWindow } from '../../src/rateWindow.js';

describe('rate window', () => {
  it('takes several slots all or none, and says when enough are free', () => {
    const window = createRateWindow(5, 1_000);
    expect(window.take('a', 0, 2)).toEqual({ taken: true });
    expect(window.take('a', 100, 2)).toEqual({ taken: true });
    // 1 left: 3 need the first two taken (at 0) to expire, at 1,000.
    expect(window.take('a', 200, 3)).toEqual({ taken: false, retryAfterMs: 800 });
    // Refused whole: the one left is still there.
    expect(window.take('a', 200, 1)).toEqual({ taken: true });
    // Full: 2 more need the slots of 0 (at 1,000); 3 more those of 100 too (at 1,100).
    expect(window.take('a', 300, 2)).toEqual({ taken: false, retryAfterMs: 700 });
    expect(window.take('a', 300, 3)).toEqual({ taken: false, retryAfterMs: 800 });
    expect(window.take('b', 300, 5)).toEqual({ taken: true });
    expect(window.take('a', 1_000, 2)).toEqual({ taken: true });
  });

  it('gives a slot back', () => {
    const window = createRateWindow(1, 1_000);
    expect(window.take('a', 10)).toEqual({ taken: true });
    expect(window.take('a', 20)).toEqual({ taken: false, retryAfterMs: 990 });
    window.giveBack('a', 10);
    expect(window.take('a', 20)).toEqual({ taken: true });
  });
});
