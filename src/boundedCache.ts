/**
 * A function's results for recently seen keys, at most `max` of them (the oldest goes first): for values derived on
 * the request path from a small set of inputs (a key's digest, a parsed upstream URL). A throwing `compute` caches
 * nothing.
 */
export const boundedCache = <K, V>(max: number, compute: (key: K) => V): ((key: K) => V) => {
  const values = new Map<K, V>();
  return (key) => {
    let value = values.get(key);
    if (value === undefined) {
      value = compute(key);
      if (values.size >= max) values.delete(values.keys().next().value!);
      values.set(key, value);
    }
    return value;
  };
};
