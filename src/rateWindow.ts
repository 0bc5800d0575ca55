/**
 * When each key's (an account's, a client address's) last `limit` admissions within `windowMs` were taken, in this
 * process's memory. A slot is taken before the work it admits is written (so concurrent requests, aliases of one
 * document included, cannot all pass the check) and given back if that write fails.
 */
export const createRateWindow = (limit: number, windowMs: number) => {
  const taken = new Map<string, number[]>();
  let sweptAt = Number.NEGATIVE_INFINITY;
  return {
    /**
     * Takes `count` slots at `at`, all or none; or, when fewer are free, the milliseconds until enough are (never, for
     * more than `limit`: then until the whole window is free).
     */
    take(key: string, at: number, count = 1): { taken: true } | { taken: false; retryAfterMs: number } {
      const recent = (taken.get(key) ?? []).filter((t) => t > at - windowMs);
      taken.set(key, recent);
      if (recent.length + count > limit) {
        const frees = recent[Math.min(recent.length + count - limit, recent.length) - 1];
        return { taken: false, retryAfterMs: Math.max((frees ?? at) + windowMs - at, 1) };
      }
      for (let i = 0; i < count; i++) recent.push(at);
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
