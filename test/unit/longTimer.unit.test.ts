import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMEOUT_MS, setLongTimeout } from '../../src/longTimer.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('setLongTimeout', () => {
  it('waits 30 days (past the 2^31 - 1 ms setTimeout holds) in parts, firing once at the end, and can be cleared', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const thirtyDays = 30 * 86_400_000;
    const fired = vi.fn();
    setLongTimeout(fired, thirtyDays);
    vi.advanceTimersByTime(MAX_TIMEOUT_MS);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(thirtyDays - MAX_TIMEOUT_MS - 1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(thirtyDays);
    expect(fired).toHaveBeenCalledTimes(1);

    const cleared = vi.fn();
    const timer = setLongTimeout(cleared, thirtyDays);
    vi.advanceTimersByTime(MAX_TIMEOUT_MS + 1);
    timer.clear();
    vi.advanceTimersByTime(thirtyDays);
    expect(cleared).not.toHaveBeenCalled();
  });
});
