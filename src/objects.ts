/**
 * `{ ...base, ...extra }` for code that runs on every request.
 *
 * On Node 20's V8 an object literal that starts with a spread and then adds a key the spread object lacks
 * (`{ ...attempt, countsAgainstUptime }`) takes a slow path: ~1.4 µs against ~0.2 µs for this (measured in isolation,
 * 14 keys), and what it allocates survives young collections. On the gateway's hot path that promoted ~4 KB of garbage
 * per request into the old generation, which then needed a major GC every ~10 s at 1,000 req/s (bench/README.md,
 * issue 15, stop 23). A literal that starts with a spread and only overrides keys the object has is fast, and so is
 * one that starts with a plain key. Later keys win, as with spread; own enumerable keys only. An own `__proto__` key
 * (JSON.parse makes one from untrusted text) stays a data key, as spread keeps it: `Object.assign` would call the
 * prototype setter instead, so such objects take the spread.
 */
export const extend = <A extends object, B extends object>(base: A, extra: B): Omit<A, keyof B> & B =>
  Object.hasOwn(base, '__proto__') || Object.hasOwn(extra, '__proto__') ? { ...base, ...extra } : Object.assign({}, base, extra);
