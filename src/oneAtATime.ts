/**
 * Runs work one at a time per key, in the order it was asked for: a key's next piece of work starts once the one
 * before it has ended (fulfilled or not). Its place in line is taken when it is asked for (synchronously), and work
 * with nothing before it starts at once. A key is held only while work for it is waiting or running, so the map
 * stays as small as what is in flight.
 */
export const oneAtATime = () => {
  const tails = new Map<string, Promise<void>>();
  return async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const before = tails.get(key);
    const running = before === undefined ? work() : before.then(work);
    const tail = running.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    try {
      return await running;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
};
export type OneAtATime = ReturnType<typeof oneAtATime>;
