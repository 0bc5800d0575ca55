/**
 * Live progress of workflow runs, for the GraphQL subscriptions `workflowRun(id)` and `workflowRuns(workflowId)`.
 *
 * Stored progress (a run's events) comes from the event store's own subscription to the `run` category, one per
 * process and open only while someone follows: it sees every append in the log's order, whoever made it (the
 * executor, a cancel from another request, another server process), so a follower can never see a cancel before the
 * step outcome it raced with. Publishing from the executor instead would miss the appends made elsewhere and could
 * deliver two writers' events out of order. Model tokens are not stored: the executor hands them over in-process
 * (`token`), and each follower holds a token back until it has delivered that step attempt's StepStarted and drops
 * it once the attempt has an outcome, so tokens always sit between their step's start and its end.
 *
 * A late subscriber: the follower registers for live events first, the shared subscription's start position is
 * fixed, then the run's stream is read; live events at or below the last revision delivered are dropped (replayed
 * already) and one above the next expected revision makes it read the stream again from there. So there is no gap
 * and no duplicate. All of a follower's work runs in one queue, so replay and live items never interleave.
 */
import { UnavailableError } from '../../errors.js';
import type { EventStore, JsonValue, RecordedEvent, Subscription } from '../../eventStore/eventStore.js';
import type { Logger } from '../../logger.js';
import { evolve, initialState, type RunState, type RunStatus } from './run.decider.js';
import { RUN_CATEGORY, runStream, type RunError, type RunEvent, type RunIdentity, type SkipReason } from './run.events.js';

export type EndedRunStatus = Exclude<RunStatus, 'running'>;

/** What a follower of one run receives. Stored items carry their revision in the run's stream. */
export type RunProgressItem =
  | { readonly type: 'runQueued'; readonly runId: string; readonly revision: number; readonly at: string; readonly workflowId: string; readonly version: number; readonly trigger: JsonValue }
  | { readonly type: 'runStarted'; readonly runId: string; readonly revision: number; readonly at: string; readonly workflowId: string; readonly version: number; readonly trigger: JsonValue }
  | {
      readonly type: 'stepCarriedOver';
      readonly runId: string;
      readonly revision: number;
      readonly at: string;
      readonly key: string;
      readonly fromRun: string;
      readonly output: JsonValue;
      readonly skipped: SkipReason | null;
    }
  | { readonly type: 'stepStarted'; readonly runId: string; readonly revision: number; readonly at: string; readonly key: string; readonly attempt: number }
  /** A delay step waits: `wakingAt` is its stored wake-up time. */
  | { readonly type: 'stepWaiting'; readonly runId: string; readonly revision: number; readonly at: string; readonly key: string; readonly attempt: number; readonly wakingAt: string }
  | {
      readonly type: 'stepSucceeded';
      readonly runId: string;
      readonly revision: number;
      readonly at: string;
      readonly key: string;
      readonly attempt: number;
      readonly output: JsonValue;
      readonly cost: number;
      /** The attempt's evaluated input (null when not kept). */
      readonly input: JsonValue;
    }
  | {
      readonly type: 'stepFailed';
      readonly runId: string;
      readonly revision: number;
      readonly at: string;
      readonly key: string;
      readonly attempt: number;
      readonly error: RunError;
      readonly cost: number;
      readonly retryAt: string | null;
      readonly input: JsonValue;
    }
  | { readonly type: 'stepSkipped'; readonly runId: string; readonly revision: number; readonly at: string; readonly key: string; readonly reason: SkipReason }
  | { readonly type: 'token'; readonly runId: string; readonly key: string; readonly attempt: number; readonly content: string }
  | {
      readonly type: 'runEnded';
      readonly runId: string;
      readonly revision: number;
      readonly at: string;
      readonly status: EndedRunStatus;
      readonly output: JsonValue;
      readonly error: RunError | null;
      /** The step the run failed on or a filter stopped it at. */
      readonly step: string | null;
      /** Nano-dollars charged by the whole run. */
      readonly cost: number;
    };

/** What a follower of a workflow's runs receives: a run started or ended. */
export interface RunStatusChange {
  readonly runId: string;
  readonly workflowId: string;
  readonly status: RunStatus;
  readonly error: RunError | null;
  readonly at: string;
}

/** A follower's stream ends with this when the server cannot go on serving it; GraphQL answers it as an error. */
export interface ProgressFailure {
  readonly type: 'failure';
  readonly error: UnavailableError;
}

/**
 * Items a slow client may leave unread before its subscription is ended (tokens arrive fast): those waiting for its
 * reader and, for a run's follower, those waiting behind its replay.
 */
export const MAX_UNREAD_ITEMS = 10_000;
const fellBehind = () => new UnavailableError(`The subscription fell ${MAX_UNREAD_ITEMS} items behind: read faster, or subscribe again (stored progress is replayed)`);
/** Runs whose workflow is remembered from their RunStarted, so their end needs no read. */
const MAX_REMEMBERED_RUNS = 10_000;
/**
 * Stored events a replay reads at a time, and lets its reader take before it reads more: a run's events can be up to
 * about 2 MiB each (a step's kept input and its output), and a whole run tens of MiB.
 */
export const REPLAY_PAGE_EVENTS = 8;

/**
 * A pushed-to async iterator. `return()` (the client unsubscribed) ends it at once, even while `next()` waits, and
 * unregisters the follower: an async generator would queue the return behind a wait that may never end.
 */
const channel = <T>(onClose: () => void) => {
  const items: (T | ProgressFailure)[] = [];
  let head = 0;
  let ended = false;
  let closed = false;
  let wake: (() => void) | null = null;
  /** Those waiting for every item to be taken (`drained`). */
  let drainWaiters: (() => void)[] = [];
  const notify = () => {
    const waiting = wake;
    wake = null;
    waiting?.();
  };
  const drainedNow = () => {
    const waiting = drainWaiters;
    drainWaiters = [];
    for (const resolve of waiting) resolve();
  };
  const close = () => {
    if (closed) return;
    closed = true;
    onClose();
    notify();
    drainedNow();
  };
  const api = {
    get open() {
      return !ended && !closed;
    },
    /** Resolves once the reader has taken every item pushed so far, or the channel is closed or ended. */
    drained(): Promise<void> {
      if (head >= items.length || !api.open) return Promise.resolve();
      return new Promise<void>((resolve) => drainWaiters.push(resolve));
    },
    /** Items pushed that the reader has not taken yet. */
    get unread() {
      return items.length - head;
    },
    push(item: T) {
      if (!api.open) return;
      if (api.unread >= MAX_UNREAD_ITEMS) {
        api.fail(fellBehind());
        return;
      }
      items.push(item);
      notify();
    },
    end() {
      ended = true;
      notify();
      drainedNow();
    },
    fail(error: UnavailableError) {
      if (!api.open) return;
      items.push({ type: 'failure', error });
      api.end();
    },
    iterator: {
      async next(): Promise<IteratorResult<T | ProgressFailure>> {
        for (;;) {
          if (closed) return { done: true, value: undefined };
          if (head < items.length) {
            const value = items[head]!;
            items[head++] = undefined as never;
            if (head > 1024 && head * 2 > items.length) {
              items.splice(0, head);
              head = 0;
            }
            if (head >= items.length) drainedNow();
            return { done: false, value };
          }
          if (ended) {
            close();
            return { done: true, value: undefined };
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      async return(): Promise<IteratorResult<T | ProgressFailure>> {
        close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    } satisfies AsyncIterableIterator<T | ProgressFailure>,
  };
  return api;
};

const runIdOf = (stream: string): string => stream.slice(RUN_CATEGORY.length + 1);

/**
 * A stored run event as a progress item; `state` has the event applied (for the run's total cost at its end). Null for
 * a late charge (StepCharged), which comes after the run's end: the stream has completed by then.
 */
const itemOf = (event: RecordedEvent<RunEvent>, runId: string, state: RunState): RunProgressItem | null => {
  const base = { runId, revision: event.revision };
  const ended = (status: EndedRunStatus, at: string, more: { output?: JsonValue; error?: RunError; step?: string | null }): RunProgressItem => ({
    type: 'runEnded' as const,
    ...base,
    at,
    status,
    output: more.output ?? null,
    error: more.error ?? null,
    step: more.step ?? null,
    cost: state.status === 'none' ? 0 : state.spent,
  });
  switch (event.type) {
    case 'RunQueued':
      return { type: 'runQueued', ...base, at: event.data.at, workflowId: event.data.workflowId, version: event.data.version, trigger: event.data.trigger };
    case 'StepCarriedOver':
      return { type: 'stepCarriedOver', ...base, at: event.data.at, key: event.data.key, fromRun: event.data.fromRun, output: event.data.output, skipped: event.data.skipped };
    case 'RunStarted':
      return { type: 'runStarted', ...base, at: event.data.at, workflowId: event.data.workflowId, version: event.data.version, trigger: event.data.trigger };
    case 'StepStarted':
      return { type: 'stepStarted', ...base, at: event.data.at, key: event.data.key, attempt: event.data.attempt };
    case 'StepWaiting':
      return { type: 'stepWaiting', ...base, at: event.data.at, key: event.data.key, attempt: event.data.attempt, wakingAt: event.data.until };
    case 'StepSucceeded':
      return { type: 'stepSucceeded', ...base, at: event.data.at, key: event.data.key, attempt: event.data.attempt, output: event.data.output, cost: event.data.cost, input: event.data.input ?? null };
    case 'StepFailed':
      return { type: 'stepFailed', ...base, at: event.data.at, key: event.data.key, attempt: event.data.attempt, error: event.data.error, cost: event.data.cost, retryAt: event.data.retryAt, input: event.data.input ?? null };
    case 'StepSkipped':
      return { type: 'stepSkipped', ...base, at: event.data.at, key: event.data.key, reason: event.data.reason };
    case 'RunSucceeded':
      return ended('succeeded', event.data.at, { output: event.data.output });
    case 'RunFailed':
      return ended('failed', event.data.at, { error: event.data.error, step: event.data.step });
    case 'RunCancelled':
      return ended('cancelled', event.data.at, { error: { code: 'CANCELLED', message: event.data.reason } });
    case 'RunFiltered':
      return ended('filtered', event.data.at, { step: event.data.step });
    case 'StepCharged':
      return null;
    default: {
      const _never: never = event;
      return _never;
    }
  }
};

/** A run event as a workflow's status change: its start and its end; null for the events in between. */
const changeOf = (event: RecordedEvent<RunEvent>): Omit<RunStatusChange, 'workflowId'> | null => {
  const runId = runIdOf(event.stream);
  switch (event.type) {
    case 'RunQueued':
      return { runId, status: 'queued', error: null, at: event.data.at };
    case 'RunStarted':
      return { runId, status: 'running', error: null, at: event.data.at };
    case 'RunSucceeded':
      return { runId, status: 'succeeded', error: null, at: event.data.at };
    case 'RunFailed':
      return { runId, status: 'failed', error: event.data.error, at: event.data.at };
    case 'RunCancelled':
      return { runId, status: 'cancelled', error: { code: 'CANCELLED', message: event.data.reason }, at: event.data.at };
    case 'RunFiltered':
      return { runId, status: 'filtered', error: null, at: event.data.at };
    case 'StepCarriedOver':
    case 'StepStarted':
    case 'StepWaiting':
    case 'StepSucceeded':
    case 'StepFailed':
    case 'StepSkipped':
    case 'StepCharged':
      return null;
    default: {
      const _never: never = event;
      return _never;
    }
  }
};

/** Whose a run is: its workflow, and the API key that started or caused it (null: none did). */
interface RunOwner {
  readonly workflowId: string;
  readonly keyId: string | null;
}
const ownerOfIdentity = (identity: RunIdentity): RunOwner => ({ workflowId: identity.workflowId, keyId: identity.keyId ?? null });

interface Token {
  readonly key: string;
  readonly attempt: number;
  readonly content: string;
}

/** The one subscription to the log's run events. */
interface Shared {
  /** Resolves once the subscription's start position is fixed. */
  ready: Promise<void>;
  subscription: Subscription | null;
  closed: boolean;
}

interface RunFollower {
  event(event: RecordedEvent<RunEvent>): void;
  token(token: Token): void;
  fail(error: UnavailableError): void;
}
interface WorkflowFollower {
  /** Only the runs of this API key (RunIdentity.keyId: a restricted key's own), when set. */
  readonly onlyKey: string | undefined;
  change(change: RunStatusChange): void;
  fail(error: UnavailableError): void;
}

export const createRunProgress = (deps: { eventStore: EventStore; logger: Logger }) => {
  const runFollowers = new Map<string, Set<RunFollower>>();
  const workflowFollowers = new Map<string, Set<WorkflowFollower>>();
  /** runId → its workflow and key, from RunQueued and RunStarted events seen (insertion order: the oldest is forgotten first). */
  const runs = new Map<string, RunOwner>();
  let followers = 0;
  let shared: Shared | null = null;
  let stopped = false;
  /**
   * Pages of run streams being replayed, by run and first revision, while a follower still reads one: followers of a
   * run replaying it at the same time (a burst of subscribers) read and hold each page once, not once each.
   */
  const pages = new Map<string, { readonly events: Promise<RecordedEvent<RunEvent>[]>; readonly issued: number; holders: number }>();
  /** Orders followers' registrations and page reads (a read issued after a registration sees all it missed live). */
  let clock = 0;

  /**
   * The page of the run's stream from revision `from`, shared, for a follower registered at `registeredAt`; `release`
   * once it has been taken by the follower's reader. A full page never changes. A shorter one was the stream's end when
   * read: one issued before this follower registered may lack events appended in between that the follower's live
   * feed did not get either, so it is read again.
   */
  const readPage = async (runId: string, from: number, registeredAt: number): Promise<{ events: RecordedEvent<RunEvent>[]; release: () => void }> => {
    const key = `${runId}:${from}`;
    let page = pages.get(key);
    if (page === undefined) {
      const created = { events: deps.eventStore.readStream(runStream(runId), { fromRevision: from, maxCount: REPLAY_PAGE_EVENTS }) as Promise<RecordedEvent<RunEvent>[]>, issued: ++clock, holders: 0 };
      pages.set(key, created);
      created.events.catch(() => pages.get(key) === created && pages.delete(key));
      page = created;
    }
    const held = page;
    held.holders++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--held.holders === 0 && pages.get(key) === held) pages.delete(key);
    };
    let events: RecordedEvent<RunEvent>[];
    try {
      events = await held.events;
    } catch (error) {
      release();
      throw error;
    }
    if (events.length < REPLAY_PAGE_EVENTS && held.issued < registeredAt) {
      if (pages.get(key) === held) pages.delete(key);
      release();
      return readPage(runId, from, registeredAt);
    }
    return { events, release };
  };

  const ownerOf = async (runId: string): Promise<RunOwner | null> => {
    const known = runs.get(runId);
    if (known !== undefined) return known;
    const [first] = (await deps.eventStore.readStream(runStream(runId), { maxCount: 1 })) as RecordedEvent<RunEvent>[];
    return first?.type === 'RunStarted' || first?.type === 'RunQueued' ? ownerOfIdentity(first.data) : null;
  };

  const dispatch = async (event: RecordedEvent<RunEvent>): Promise<void> => {
    const runId = runIdOf(event.stream);
    for (const follower of runFollowers.get(runId) ?? []) follower.event(event);
    if (event.type === 'RunStarted' || event.type === 'RunQueued') {
      runs.set(runId, ownerOfIdentity(event.data));
      if (runs.size > MAX_REMEMBERED_RUNS) runs.delete(runs.keys().next().value!);
    }
    if (workflowFollowers.size === 0) return;
    const change = changeOf(event);
    if (change === null) return;
    const owner = await ownerOf(runId);
    if (change.status !== 'running' && change.status !== 'queued') runs.delete(runId);
    if (owner === null) return;
    const { workflowId, keyId } = owner;
    for (const follower of workflowFollowers.get(workflowId) ?? []) {
      if (follower.onlyKey === undefined || follower.onlyKey === keyId) follower.change({ ...change, workflowId });
    }
  };

  const failAll = (error: UnavailableError) => {
    for (const set of runFollowers.values()) for (const follower of set) follower.fail(error);
    for (const set of workflowFollowers.values()) for (const follower of set) follower.fail(error);
  };

  /** The one subscription to the log's run events, opened for the first follower; resolves once its start is fixed. */
  const ensureShared = (): Promise<void> => {
    if (shared) return shared.ready;
    const current: Shared = { ready: Promise.resolve(), subscription: null, closed: false };
    shared = current;
    current.ready = (async () => {
      const after = await deps.eventStore.headPosition();
      if (current.closed) return;
      const subscription = deps.eventStore.subscribeToAll({ after, filter: { categories: [RUN_CATEGORY] } });
      current.subscription = subscription;
      void (async () => {
        try {
          for await (const message of subscription) {
            if (current.closed) return;
            if (message.kind === 'events') for (const event of message.events) await dispatch(event as RecordedEvent<RunEvent>);
          }
        } catch (error) {
          if (current.closed) return;
          deps.logger.error({ err: error }, 'workflow run progress: the subscription to the event store failed; ending the progress subscriptions');
          if (shared === current) shared = null;
          current.closed = true;
          failAll(new UnavailableError('Run progress is unavailable for a moment: subscribe again'));
        }
      })();
    })();
    return current.ready;
  };

  const closeShared = () => {
    if (!shared) return;
    shared.closed = true;
    void shared.subscription?.close();
    shared = null;
  };

  const register = <F>(map: Map<string, Set<F>>, id: string, follower: F): (() => void) => {
    const set = map.get(id) ?? new Set<F>();
    map.set(id, set);
    set.add(follower);
    followers++;
    let registered = true;
    return () => {
      if (!registered) return;
      registered = false;
      set.delete(follower);
      if (set.size === 0) map.delete(id);
      if (--followers === 0) closeShared();
    };
  };

  return {
    /** A model step's token, as it arrives (in-process only, never stored: a late follower does not get past ones). */
    token(runId: string, key: string, attempt: number, content: string): void {
      for (const follower of runFollowers.get(runId) ?? []) follower.token({ key, attempt, content });
    },

    /**
     * Everything stored of the run so far, then its live progress (tokens included) until its end, after which the
     * stream completes. The caller has checked that the run exists and may be seen.
     */
    follow(runId: string): AsyncIterableIterator<RunProgressItem | ProgressFailure> {
      if (stopped) throw new UnavailableError('The server is stopping');
      let state: RunState = initialState();
      let last = -1;
      let pending: Token[] = [];
      let queue: Promise<void> = Promise.resolve();
      /** Tasks in `queue` not started yet: live events and tokens that arrived while a replay waits for the reader. */
      let queued = 0;
      const out = channel<RunProgressItem>(() => unregister());

      /** Tokens go out while their attempt runs, wait while its StepStarted is on its way, and are dropped after. */
      const flushTokens = () => {
        if (pending.length === 0 || state.status === 'none') return;
        const waiting: Token[] = [];
        for (const token of pending) {
          const step = state.steps.get(token.key);
          if (step === undefined || step.attempt < token.attempt) waiting.push(token);
          else if (state.status === 'running' && step.status === 'running' && step.attempt === token.attempt) out.push({ type: 'token', runId, ...token });
        }
        pending = waiting;
      };
      const deliver = (event: RecordedEvent<RunEvent>) => {
        last = event.revision;
        state = evolve(state, { type: event.type, data: event.data } as RunEvent);
        const item = itemOf(event, runId, state);
        if (item === null) return;
        out.push(item);
        if (item.type === 'runEnded') {
          out.end();
          unregister();
          return;
        }
        flushTokens();
      };
      const registeredAt = ++clock;
      /**
       * The stored events after the last one delivered, a page at a time: the next page is read once the reader has
       * taken this one, so a follower holds at most a page (a slow reader of a large run does not hold the run), and
       * followers of one run in step share their reads (readPage).
       */
      const catchUp = async () => {
        while (out.open) {
          const page = await readPage(runId, last + 1, registeredAt);
          try {
            for (const event of page.events) if (out.open && event.revision === last + 1) deliver(event);
            if (!out.open || page.events.length < REPLAY_PAGE_EVENTS) return;
            await out.drained();
          } finally {
            page.release();
          }
        }
      };
      const enqueue = (task: () => void | Promise<void>) => {
        // A replay waits in the queue for the reader to take each page: a reader that stopped would leave every live
        // token and event of the run queued behind it until its socket closes. Past the bound the follower is ended
        // (as when its reader falls that far behind what was pushed) and lets go of all it holds.
        if (queued + out.unread >= MAX_UNREAD_ITEMS) {
          out.fail(fellBehind());
          unregister();
          return;
        }
        queued++;
        queue = queue
          .then(() => {
            queued--;
            return out.open ? task() : undefined;
          })
          .catch((error: unknown) => {
            deps.logger.error({ err: error, runId }, 'workflow run progress: reading the run failed');
            out.fail(new UnavailableError('Reading the run failed: subscribe again'));
            unregister();
          });
      };
      const unregister = register<RunFollower>(runFollowers, runId, {
        event: (event) =>
          enqueue(async () => {
            if (event.revision <= last) return;
            if (event.revision === last + 1) deliver(event);
            else await catchUp();
          }),
        token: (token) =>
          enqueue(() => {
            if (pending.length >= MAX_UNREAD_ITEMS) return;
            pending.push(token);
            flushTokens();
          }),
        fail: (error) => {
          out.fail(error);
          unregister();
        },
      });
      // Registered first, then the live subscription's start is fixed, then the stream is read: nothing falls between.
      enqueue(async () => {
        await ensureShared();
        await catchUp();
      });
      return out.iterator;
    },

    /**
     * The starts and ends of a workflow's runs from now on (live only; the workflowRuns query lists earlier ones); only
     * those of the API key `onlyKey` (RunIdentity.keyId) when given.
     */
    followWorkflow(workflowId: string, onlyKey?: string): AsyncIterableIterator<RunStatusChange | ProgressFailure> {
      if (stopped) throw new UnavailableError('The server is stopping');
      const out = channel<RunStatusChange>(() => unregister());
      const unregister = register<WorkflowFollower>(workflowFollowers, workflowId, {
        onlyKey,
        change: (change) => out.push(change),
        fail: (error) => {
          out.fail(error);
          unregister();
        },
      });
      ensureShared().catch((error: unknown) => {
        deps.logger.error({ err: error, workflowId }, 'workflow run progress: could not subscribe to the event store');
        out.fail(new UnavailableError('Run progress is unavailable for a moment: subscribe again'));
        unregister();
      });
      return out.iterator;
    },

    /** On shutdown: end every follower and the store subscription. */
    stop(): void {
      stopped = true;
      failAll(new UnavailableError('The server is stopping'));
      closeShared();
    },
  };
};

export type RunProgress = ReturnType<typeof createRunProgress>;
