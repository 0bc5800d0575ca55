import { describe, expect, it } from 'vitest';
import { extend } from '../../src/objects.js';

describe('extend', () => {
  it('is { ...base, ...extra }: later keys win, in the same key order, and neither input changes', () => {
    const base = { a: 1, b: 2 };
    const out = extend(base, { b: 3, c: 4 });
    expect(out).toEqual({ a: 1, b: 3, c: 4 });
    expect(Object.keys(out)).toEqual(['a', 'b', 'c']);
    expect(JSON.stringify(out)).toBe(JSON.stringify({ ...base, ...{ b: 3, c: 4 } }));
    expect(base).toEqual({ a: 1, b: 2 });
    expect(out).not.toBe(base);
  });

  it('copies own enumerable keys only', () => {
    const base = Object.create({ inherited: true }) as Record<string, unknown>;
    base.own = 1;
    Object.defineProperty(base, 'hidden', { value: 2, enumerable: false });
    expect(extend(base, { x: 3 })).toEqual({ own: 1, x: 3 });
  });

  it('keeps a __proto__ key from untrusted JSON as data, never as the prototype', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as object;
    const out = extend(hostile, { b: 2 }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(out.polluted).toBeUndefined();
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.parse(JSON.stringify(out))).toEqual(JSON.parse('{"__proto__": {"polluted": true}, "a": 1, "b": 2}'));
    const asExtra = extend({ a: 1 }, hostile) as Record<string, unknown>;
    expect(Object.getPrototypeOf(asExtra)).toBe(Object.prototype);
    expect(asExtra.polluted).toBeUndefined();
  });
});
