import { ConcurrentChangeError, WrongExpectedVersionError } from '../errors.js';
import { oneAtATime, type OneAtATime } from '../oneAtATime.js';
import { ALREADY_DURABLE, type DomainEvent, type Durability, type EventMetadata, type EventStore, type NewEvent, type RecordedEvent } from './eventStore.js';

/** A pure decision model for one aggregate: rebuild state from events, decide new events from a command. */
export interface Decider<State, Command, Event extends DomainEvent> {
  initialState(): State;
  evolve(state: State, event: Event): State;
  /** Returns the new events, or throws a DomainError. Must be pure: time and ids come in with the command. */
  decide(command: Command, state: State): readonly Event[];
}

export interface HandleOptions<Event extends DomainEvent> {
  readonly metadata?: EventMetadata;
  /** Deterministic event ids, so a retried command (same id) cannot append twice. */
  readonly eventId?: (event: Event, index: number) => string;
  /**
   * Conflicts retried before giving up (each retry waits a jittered, growing moment, then reloads and decides again);
   * CONFLICT_RETRIES unless set.
   */
  readonly maxRetries?: number;
  /** When the result is answered (see Durability); `durable` by default. */
  readonly durability?: Durability;
  /**
   * Work the command depends on, run in the stream's turn before it is loaded and decided: no other command on the
   * stream runs in this process between the two (across processes only the expected revision holds).
   */
  readonly first?: () => Promise<void>;
}

export interface HandleResult<State, Event extends DomainEvent> {
  readonly events: readonly Event[];
  readonly state: State;
  /** -1 when the stream does not exist (nothing appended and nothing there). */
  readonly revision: number;
  /** Global position of the last appended event, or null when the decision produced no events. */
  readonly position: number | null;
  /** Resolves once the appended events are durable (at once when nothing was appended, or they were awaited). */
  readonly durable: Promise<void>;
}

export const foldEvents = <State, Event extends DomainEvent>(
  decider: Pick<Decider<State, unknown, Event>, 'initialState' | 'evolve'>,
  events: readonly (Event | RecordedEvent<Event>)[],
): State => events.reduce<State>((state, event) => decider.evolve(state, { type: event.type, data: event.data } as Event), decider.initialState());

/**
 * Conflicts with another process's write to the same stream (several gateway processes on one EventStoreDB) retried
 * before the command is refused: each retry waits a random moment up to a bound that doubles from 5 ms to 250 ms (full
 * jitter, so writers that met once do not meet again), about 1 s in all at most.
 */
export const CONFLICT_RETRIES = 8;
const conflictWaitMs = (retry: number) => Math.random() * Math.min(250, 5 * 2 ** retry);

/**
 * After the `retry`-th conflict (from 0) with another process's write: the jittered wait before deciding again, or,
 * past `maxRetries`, the retryable CONFLICT the command ends with. One rule for every writer that appends at an expected
 * revision (handleCommand here, the tables' own writer).
 */
export const afterConflict = async (retry: number, maxRetries = CONFLICT_RETRIES): Promise<void> => {
  if (retry >= maxRetries) throw new ConcurrentChangeError(retry + 1);
  await new Promise((resolve) => setTimeout(resolve, conflictWaitMs(retry)));
};

/**
 * Per event store, the commands in flight per stream: within this process a stream's commands run one after another,
 * so they never conflict with each other (only another process's writes, or a module appending to the stream by
 * itself, can move the stream between the load and the append).
 */
const streamsInFlight = new WeakMap<EventStore, OneAtATime>();
const inFlightOn = (store: EventStore): OneAtATime => {
  let streams = streamsInFlight.get(store);
  if (streams === undefined) streamsInFlight.set(store, (streams = oneAtATime()));
  return streams;
};

/**
 * Load the stream, decide, append with the expected revision. Commands on one stream run one at a time in this
 * process; on a concurrent write from elsewhere (wrong expected version) wait a jittered moment, reload and decide
 * again, a bounded number of times, then refuse with a retryable CONFLICT (ConcurrentChangeError).
 */
export const handleCommand = <State, Command, Event extends DomainEvent>(
  store: EventStore,
  stream: string,
  decider: Decider<State, Command, Event>,
  command: Command,
  options: HandleOptions<Event> = {},
): Promise<HandleResult<State, Event>> =>
  inFlightOn(store)(stream, async () => {
    await options.first?.();
    return decideAndAppend(store, stream, decider, command, options);
  });

const decideAndAppend = async <State, Command, Event extends DomainEvent>(
  store: EventStore,
  stream: string,
  decider: Decider<State, Command, Event>,
  command: Command,
  options: HandleOptions<Event>,
): Promise<HandleResult<State, Event>> => {
  const maxRetries = options.maxRetries ?? CONFLICT_RETRIES;
  for (let attempt = 0; ; attempt++) {
    const history = await store.readStream(stream);
    const revision = history.length === 0 ? -1 : history[history.length - 1]!.revision;
    const state = foldEvents(decider, history as RecordedEvent<Event>[]);
    const events = decider.decide(command, state);
    if (events.length === 0) return { events, state, revision, position: null, durable: ALREADY_DURABLE };
    const toAppend: NewEvent[] = events.map((event, index) => ({
      id: options.eventId?.(event, index),
      type: event.type,
      data: event.data,
      metadata: options.metadata,
    }));
    try {
      const result = await store.append(stream, toAppend, { expectedRevision: revision === -1 ? 'no_stream' : revision, durability: options.durability ?? 'durable' });
      return {
        events,
        state: events.reduce(decider.evolve, state),
        revision: result.nextExpectedRevision,
        position: result.position,
        durable: result.durable,
      };
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      await afterConflict(attempt, maxRetries);
    }
  }
};
