/**
 * One circuit breaker per endpoint, kept for the life of the process (never built per request). An endpoint whose
 * recent attempts keep failing is `open` for a cooldown: routing moves it behind the healthy ones (it is still tried
 * when nothing else is left, so an outage of every endpoint degrades to trying them, not to refusing everything).
 * After the cooldown it is `half-open`: routed normally again; the next success closes the breaker, the next failure
 * opens it for another cooldown. Failures are consecutive: any success resets the count.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface Breakers {
  state(endpointId: string, nowMs?: number): BreakerState;
  /** True when routing should put this endpoint last. */
  isOpen(endpointId: string, nowMs?: number): boolean;
  /** Milliseconds until an open breaker half-opens; 0 when it is not open. */
  cooldownLeftMs(endpointId: string, nowMs?: number): number;
  success(endpointId: string): void;
  failure(endpointId: string, nowMs?: number): void;
}

interface Entry {
  failures: number;
  openUntil: number;
}

export const createBreakers = (options: { failureThreshold: number; cooldownMs: number }): Breakers => {
  const entries = new Map<string, Entry>();
  const state = (id: string, nowMs = Date.now()): BreakerState => {
    const entry = entries.get(id);
    if (!entry || entry.openUntil === 0) return 'closed';
    return nowMs < entry.openUntil ? 'open' : 'half-open';
  };
  return {
    state,
    isOpen: (id, nowMs = Date.now()) => state(id, nowMs) === 'open',
    cooldownLeftMs: (id, nowMs = Date.now()) => Math.max(0, (entries.get(id)?.openUntil ?? 0) - nowMs),
    success(id) {
      entries.delete(id);
    },
    failure(id, nowMs = Date.now()) {
      let entry = entries.get(id);
      if (!entry) entries.set(id, (entry = { failures: 0, openUntil: 0 }));
      entry.failures += 1;
      if (entry.failures >= options.failureThreshold) entry.openUntil = nowMs + options.cooldownMs;
    },
  };
};
