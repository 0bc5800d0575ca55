import { describe, expect, it } from 'vitest';
import { oneAtATime } from '../../src/oneAtATime.js';

/** A promise and its resolve, to hold work until the test lets it go. */
const held = () => {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
};

describe('oneAtATime', () => {
  it('runs one key’s work one at a time, in the order asked, other keys alongside; a failure does not stop the next', async () => {
    const run = oneAtATime();
    const log: string[] = [];
    const first = held();
    const a1 = run('a', async () => {
      log.push('a1 start');
      await first.promise;
      log.push('a1 end');
      throw new Error('a1 failed');
    });
    const a2 = run('a', async () => {
      log.push('a2');
      return 2;
    });
    const b1 = run('b', async () => {
      log.push('b1');
      return 'b';
    });
    expect(await b1).toBe('b');
    expect(log).toEqual(['a1 start', 'b1']);
    first.release();
    await expect(a1).rejects.toThrow('a1 failed');
    expect(await a2).toBe(2);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
    // Nothing in flight: the next work starts at once.
    await run('a', async () => log.push('a3'));
    expect(log.at(-1)).toBe('a3');
  });
});
