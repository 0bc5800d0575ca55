import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../context.js';

/** Gives a taken slot back; calling it again does nothing. */
export type Release = () => void;

/**
 * What each account holds open in this process, at most `limit` at once: its subscriptions, over every socket and over
 * SSE alike (each one holds memory and is sent every change it follows; GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT), and its
 * graphql-ws sockets (GRAPHQL_MAX_SOCKETS_PER_ACCOUNT).
 */
export const createAccountSlots = (limit: number) => {
  const held = new Map<string, number>();
  return {
    limit,
    /** One of the account's slots, or null when all are taken. */
    take(accountId: string): Release | null {
      const count = held.get(accountId) ?? 0;
      if (count >= limit) return null;
      held.set(accountId, count + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (held.get(accountId) ?? 1) - 1;
        if (left === 0) held.delete(accountId);
        else held.set(accountId, left);
      };
    },
    /** The account's slots taken. */
    held: (accountId: string): number => held.get(accountId) ?? 0,
  };
};
export type AccountSlots = ReturnType<typeof createAccountSlots>;

/** The refusal of one subscription too many, over graphql-ws (an `error` message) and SSE alike. */
export const tooManySubscriptions = (limit: number): GraphQLError =>
  new GraphQLError(`Too many subscriptions for this account: at most ${limit} at once, across all its connections; complete some first`, {
    extensions: { code: 'RATE_LIMITED', reason: 'too_many_subscriptions', limit },
  });

/** How long subscriptions may deliver back to back before they let the event loop serve everything else. */
const SLICE_MS = 10;
let sliceStart = performance.now();
let turn: Promise<void> | null = null;

/**
 * Null while the current slice lasts; past it, a promise that resolves in the event loop's next check phase (after
 * the I/O that waited: other requests, /health, the store's answers), shared by every subscription that reaches it.
 * A subscriber that reads as fast as results come (graphql-ws awaits each send, whose callback comes on the next
 * tick while the kernel takes the bytes) would otherwise replay a whole feed or run, and N of them N of them, without
 * ever giving the loop back.
 */
const fairTurn = (): Promise<void> | null => {
  if (performance.now() - sliceStart < SLICE_MS) return null;
  return (turn ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      turn = null;
      sliceStart = performance.now();
      resolve();
    }),
  ));
};

const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/**
 * `source` that gives its slot back when it ends (done, failed or returned: the client completed, or its socket or
 * request closed), and takes turns with the rest of the process (fairTurn) before each result.
 */
const holding = (source: AsyncIterable<ExecutionResult>, release: Release): AsyncIterableIterator<ExecutionResult> => {
  const inner = source[Symbol.asyncIterator]();
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      try {
        await fairTurn();
        const step = await inner.next();
        if (step.done) release();
        return step;
      } catch (error) {
        release();
        throw error;
      }
    },
    async return(value?: unknown) {
      release();
      return (await inner.return?.(value)) ?? { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      release();
      if (inner.throw) return inner.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
};

/**
 * Every subscription of a caller with a key takes one of its account's slots until it ends; past them it is refused
 * with RATE_LIMITED (`too_many_subscriptions`). `taken(context)` is a slot the transport took already (graphql-ws
 * takes it before answering the `subscribe`, so that its refusal is an `error` message): it is adopted, not taken
 * twice. A subscription without a key is refused by its field's scopes and holds nothing.
 */
export const boundSubscriptions = (slots: AccountSlots, taken: (context: GraphQLContext) => Release | undefined): Plugin<GraphQLContext> => ({
  onSubscribe: ({ args, subscribeFn, setSubscribeFn, setResultAndStopExecution }) => {
    const context = args.contextValue;
    const principal = context.principal;
    if (!principal) return;
    const release = taken(context) ?? slots.take(principal.accountId);
    if (!release) {
      setResultAndStopExecution({ errors: [tooManySubscriptions(slots.limit)] });
      return;
    }
    setSubscribeFn(async (subscribeArgs) => {
      let result: Awaited<ReturnType<typeof subscribeFn>>;
      try {
        result = await subscribeFn(subscribeArgs);
      } catch (error) {
        release();
        throw error;
      }
      if (isAsyncIterable(result)) return holding(result, release);
      // Refused by its resolver (NOT_FOUND, FORBIDDEN): nothing is held.
      release();
      return result;
    });
  },
});
