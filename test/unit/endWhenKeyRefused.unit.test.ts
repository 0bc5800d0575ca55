import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { UnauthenticatedError } from '../../src/errors.js';
import { untilRefused } from '../../src/graphql/plugins/endWhenKeyRefused.js';

/** A controllable watch: `refuse` plays the directory reporting the key refused; `unwatched` counts unwatch calls. */
const watcher = () => {
  let onRefused: ((error: UnauthenticatedError) => void) | null = null;
  const state = { unwatched: 0 };
  return {
    state,
    watch: (listener: (error: UnauthenticatedError) => void) => {
      onRefused = listener;
      return () => void state.unwatched++;
    },
    refuse: (message: string) => onRefused?.(new UnauthenticatedError(message)),
  };
};

const events = (...values: number[]): AsyncIterable<ExecutionResult> =>
  (async function* () {
    for (const value of values) yield { data: { value } };
  })();

describe('untilRefused', () => {
  it('passes events through, and unwatches when the source ends', async () => {
    const w = watcher();
    const stream = untilRefused(events(1, 2), w.watch);
    const seen: unknown[] = [];
    for await (const result of stream) seen.push(result.data);
    expect(seen).toEqual([{ value: 1 }, { value: 2 }]);
    expect(w.state.unwatched).toBe(1);
  });

  it('once the key is refused, sends not one more event (even a ready one): one UNAUTHENTICATED error, then the end', async () => {
    const w = watcher();
    const stream = untilRefused(events(1, 2, 3), w.watch);
    expect((await stream.next()).value).toEqual({ data: { value: 1 } });
    w.refuse('API key has been revoked');
    const refused = await stream.next();
    expect(refused.done).toBe(false);
    expect(refused.value.errors?.map((e: { message: string; extensions: unknown }) => ({ message: e.message, extensions: e.extensions }))).toEqual([
      { message: 'API key has been revoked', extensions: { code: 'UNAUTHENTICATED' } },
    ]);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(w.state.unwatched).toBe(1);
  });

  it('ends at once on return(), even while waiting for an event that never comes (an idle subscription is freed)', async () => {
    const w = watcher();
    let sourceReturned = false;
    const idle: AsyncIterable<ExecutionResult> = {
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<ExecutionResult>>(() => undefined),
        return: async () => {
          sourceReturned = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const stream = untilRefused(idle, w.watch);
    const waiting = stream.next();
    expect(await stream.return!()).toEqual({ done: true, value: undefined });
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(sourceReturned).toBe(true);
    expect(w.state.unwatched).toBe(1);
  });
});
