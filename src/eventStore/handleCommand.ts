import { WrongExpectedVersionError } from '../errors.js';
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
  /** Conflicts retried before giving up (each retry reloads and decides again). */
  readonly maxRetries?: number;
  /** When the result is answered (see Durability); `durable` by default. */
  readonly durability?: Durability;
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
 * Load the stream, decide, append with the expected revision. On a concurrent write (wrong expected version)
 * reload and decide again, a bounded number of times.
 */
export const handleCommand = async <State, Command, Event extends DomainEvent>(
  store: EventStore,
  stream: string,
  decider: Decider<State, Command, Event>,
  command: Command,
  options: HandleOptions<Event> = {},
): Promise<HandleResult<State, Event>> => {
  const maxRetries = options.maxRetries ?? 3;
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
      if (error instanceof WrongExpectedVersionError && attempt < maxRetries) continue;
      throw error;
    }
  }
};
