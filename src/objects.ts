import { ValidationError } from './errors.js';

/**
 * `{ ...base, ...extra }` for code that runs on every request.
 *
 * On Node 20's V8 (11.3) an object literal that starts with a spread and then adds a key the spread object lacks
 * (`{ ...attempt, countsAgainstUptime }`) takes a slow path: ~1.4 µs against ~0.2-0.3 µs for `Object.assign` onto a
 * fresh object (measured in isolation, 14 keys), and what it allocates survives young collections. On the gateway's
 * hot path that promoted ~4 KB of garbage per request into the old generation, which then needed a major GC every
 * ~10 s at 1,000 req/s (bench/README.md, issue 15, stop 23). Node 24's V8 (13.6) has no such path: there the spread
 * takes ~0.04-0.08 µs and `Object.assign` ~0.3, so each engine gets its faster form. Later keys win, as with spread;
 * own enumerable keys only. An own `__proto__` key (JSON.parse makes one from untrusted text) stays a data key, as
 * spread keeps it: `Object.assign` would call the prototype setter instead, so such objects take the spread.
 */
const spreadIsFast = Number(process.versions.v8.split('.')[0]) >= 13;

export const extend: <A extends object, B extends object>(base: A, extra: B) => Omit<A, keyof B> & B = spreadIsFast
  ? (base, extra) => ({ ...base, ...extra })
  : (base, extra) => (Object.hasOwn(base, '__proto__') || Object.hasOwn(extra, '__proto__') ? { ...base, ...extra } : Object.assign({}, base, extra));

/**
 * How deeply untrusted JSON may nest: JSON.parse accepts far more than the recursive walks after it (JSON.stringify,
 * structured clone, the stores' serialisers) can take before the stack overflows (~2,000-3,000 levels), so every JSON
 * that comes in (REST bodies, GraphQL's JSON values) is held to this. OpenAI's structured outputs allow 10 levels of
 * nesting; 64 is well past any schema, workflow definition or table entry a person writes.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` (parsed JSON) nests objects and arrays deeper than `max`. Iterative: any depth is safe to ask about. */
export const nestsDeeperThan = (value: unknown, max: number): boolean => {
  if (typeof value !== 'object' || value === null) return false;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const node = stack.pop() as object;
    const depth = depths.pop()!;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) {
        stack.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
};

/**
 * Numbers JSON can hold, at any depth of `value` (parsed JSON), else a VALIDATION error (`not_finite`) naming the first
 * place, `${root}.a.list[2]`, in the words "Invalid <what> at <place>". JSON.parse reads `1e999` as Infinity, which
 * every store and JSON.stringify would turn into null (an expression would read null), as zod's z.number() refuses it
 * in settings and chat parameters. `-0` and numbers too small for a double (`1e-400`) are the 0 they parse to: nothing
 * after JSON.parse tells `1e-400` from `0`. Iterative, in document order: any depth is safe to ask about.
 */
export const checkFiniteNumbers = (value: unknown, what: string, root: string): void => {
  const stack: { value: unknown; path: string }[] = [{ value, path: root }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (typeof node.value === 'number') {
      if (!Number.isFinite(node.value)) throw new ValidationError(`Invalid ${what} at ${node.path}: not a finite number (JSON cannot hold it)`, { reason: 'not_finite', path: node.path });
      continue;
    }
    if (typeof node.value !== 'object' || node.value === null) continue;
    // Pushed last to first, so the first child is looked at first.
    if (Array.isArray(node.value)) {
      for (let index = node.value.length - 1; index >= 0; index--) stack.push({ value: node.value[index], path: `${node.path}[${index}]` });
      continue;
    }
    const entries = Object.entries(node.value);
    for (let index = entries.length - 1; index >= 0; index--) {
      const [key, inner] = entries[index]!;
      stack.push({ value: inner, path: node.path === '' ? key : `${node.path}.${key}` });
    }
  }
};
