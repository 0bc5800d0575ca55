import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { UnauthenticatedError } from '../../errors.js';
import type { AuthDirectory } from '../../modules/auth/authDirectory.js';
import type { GraphQLContext } from '../context.js';

type Outcome = { kind: 'step'; step: IteratorResult<ExecutionResult> } | { kind: 'refused'; error: UnauthenticatedError } | { kind: 'closed' };

/**
 * Pass `source` through until `watch` reports the key refused; then yield one UNAUTHENTICATED error and end.
 * A hand-written iterator rather than an async generator: `return()` must end it at once, even while it waits for
 * the next event (a generator would queue the return behind that wait).
 */
export const untilRefused = (
  source: AsyncIterable<ExecutionResult>,
  watch: (onRefused: (error: UnauthenticatedError) => void) => () => void,
): AsyncIterableIterator<ExecutionResult> => {
  const inner = source[Symbol.asyncIterator]();
  let stop: (outcome: Outcome) => void = () => undefined;
  const stopped = new Promise<Outcome>((resolve) => (stop = resolve));
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    unwatch();
    stop({ kind: 'closed' });
    // Not awaited: a source may only notice its return at its next event.
    Promise.resolve(inner.return?.()).catch(() => undefined);
  };
  const unwatch = watch((error) => stop({ kind: 'refused', error }));

  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      if (finished) return { done: true, value: undefined };
      // `stopped` first: once the key is refused, not one more event goes out.
      const outcome = await Promise.race([stopped, inner.next().then((step): Outcome => ({ kind: 'step', step }))]).catch((error: unknown) => {
        finish();
        throw error;
      });
      switch (outcome.kind) {
        case 'step':
          if (outcome.step.done) finish();
          return outcome.step;
        case 'refused':
          finish();
          return {
            done: false,
            value: { errors: [new GraphQLError(outcome.error.message, { extensions: { code: outcome.error.code } })] },
          };
        case 'closed':
          return { done: true, value: undefined };
        default: {
          const _never: never = outcome;
          return _never;
        }
      }
    },
    async return() {
      finish();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
};

const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/**
 * Every subscription lives only while the key it was started with is accepted: when that key is revoked, disabled
 * or expires, its stream ends with an UNAUTHENTICATED error (over graphql-ws and over SSE alike). One-shot
 * operations need no watch: each is authenticated when it runs.
 */
export const endWhenKeyRefused = (directory: Pick<AuthDirectory, 'watch'>): Plugin<GraphQLContext> => ({
  onSubscribe: () => ({
    onSubscribeResult: ({ args, result, setResult }) => {
      const { principal } = args.contextValue;
      if (principal && isAsyncIterable(result)) setResult(untilRefused(result, (onRefused) => directory.watch(principal, onRefused)));
    },
  }),
});
