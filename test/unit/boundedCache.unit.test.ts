import { describe, expect, it } from 'vitest';
import { boundedCache } from '../../src/boundedCache.js';

describe('boundedCache', () => {
  it('computes a key once, keeps at most `max` keys (the oldest goes first), and caches nothing when compute throws', () => {
    const computed: string[] = [];
    const upper = boundedCache(2, (key: string) => {
      computed.push(key);
      if (key === 'bad') throw new Error('no');
      return key.toUpperCase();
    });
    expect([upper('a'), upper('b'), upper('a')]).toEqual(['A', 'B', 'A']);
    expect(computed).toEqual(['a', 'b']);
    upper('c'); // evicts a
    upper('b');
    upper('a');
    expect(computed).toEqual(['a', 'b', 'c', 'a']);
    expect(() => upper('bad')).toThrow('no');
    expect(() => upper('bad')).toThrow('no');
    expect(computed.filter((k) => k === 'bad')).toHaveLength(2);
  });
});
