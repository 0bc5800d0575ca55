/**
 * When each key's (an account's, a client address's) last `limit` admissions within `windowMs` were taken, in this
 * process's memory. A slot is taken before the work it admits is written (so concurrent requests, aliases of one
 * document included, cannot all pass the check) and given back if that write fails.
 */
export const createRateWindow = (limit: number, windowMs: number) => {
  const taken = new Map<string, number[]>();
  let sweptAt = Number.NEGATIVE_INFINITY;
  return {
    /** Takes a slot at `at`; or, when the window's are all taken, the milliseconds until the oldest frees. */
    take(key: string, at: number): { taken: true } | { taken: false; retryAfterMs: number } {
      const recent = (taken.get(key) ?? []).filter((t) => t > at - windowMs);
      taken.set(key, recent);
      if (recent.length >= limit) return { taken: false, retryAfterMs: Math.max(recent[0]! + windowMs - at, 1) };
      recent.push(at);
      // Keys that took nothing for a window are forgotten once many are held (looked for at most once a window's tenth).
      if (taken.size > 10_000 && at - sweptAt > windowMs / 10) {
        sweptAt = at;
        for (const [k, times] of taken) if (times.every((t) => t <= at - windowMs)) taken.delete(k);
      }
      return { taken: true };
    },
    giveBack(key: string, at: number): void {
      const recent = taken.get(key);
      const index = recent?.indexOf(at) ?? -1;
      if (index >= 0) recent!.splice(index, 1);
    },
  };
};
export type RateWindow = ReturnType<typeof createRateWindow>;
