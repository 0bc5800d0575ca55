import { describe, expect, it } from 'vitest';
import { checkFiniteNumbers, extend, MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/objects.js';

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

describe('nestsDeeperThan', () => {
  const nest = (depth: number, leaf: unknown = 1): unknown => {
    let value = leaf;
    for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
    return value;
  };

  it('counts objects and arrays alike, the outermost as level 1; scalars nest nowhere', () => {
    expect(nestsDeeperThan(nest(64), 64)).toBe(false);
    expect(nestsDeeperThan(nest(65), 64)).toBe(true);
    expect(nestsDeeperThan({ a: [1, 2, { b: 'x' }], c: null }, 2)).toBe(true);
    expect(nestsDeeperThan({ a: [1, 2, { b: 'x' }], c: null }, 3)).toBe(false);
    for (const scalar of [null, 1, 'x', true]) expect(nestsDeeperThan(scalar, 0)).toBe(false);
  });

  it('finds a deep branch beside shallow ones, and walks a million levels without overflowing the stack', () => {
    expect(nestsDeeperThan({ shallow: [1], deep: { x: [nest(70)] } }, MAX_JSON_DEPTH)).toBe(true);
    const text = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    expect(nestsDeeperThan(JSON.parse(text), MAX_JSON_DEPTH)).toBe(true);
  });
});

describe('checkFiniteNumbers', () => {
  const placeOf = (value: unknown, root = 'x'): unknown => {
    try {
      checkFiniteNumbers(value, 'thing', root);
      return null;
    } catch (error) {
      return (error as { code: string; metadata: unknown; message: string }).metadata;
    }
  };

  it('names the first non-finite number in document order, at any depth', () => {
    expect(placeOf(JSON.parse('{"a":1,"b":{"c":[0,1e999]},"d":-1e999}'))).toEqual({ reason: 'not_finite', path: 'x.b.c[1]' });
    expect(placeOf(JSON.parse('{"body":{"n":-1e400}}'), '')).toEqual({ reason: 'not_finite', path: 'body.n' });
    expect(placeOf(Infinity)).toEqual({ reason: 'not_finite', path: 'x' });
    let deep: unknown = NaN;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(placeOf(deep)).toMatchObject({ reason: 'not_finite' });
  });

  it('takes finite numbers, -0, underflow and everything else', () => {
    expect(placeOf(JSON.parse('{"a":1.5e308,"b":-0,"c":1e-400,"d":[null,"1e999",true,{}]}'))).toBeNull();
  });
});
