/**
 * `new Date(ms).toISOString()`, remembered for the last millisecond asked. V8 formats a date through a slow generic
 * path (about 1% of the request thread, with a handful of timestamps per chat completion), and the times one request
 * stamps its events and their metadata with mostly fall in the same millisecond. Throws for an invalid time, as
 * `toISOString` does.
 */
let lastMs = Number.NaN;
let lastIso = '';

export const isoTime = (ms: number): string => {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
};
