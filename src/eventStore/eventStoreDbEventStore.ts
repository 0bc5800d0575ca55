/**
 * The EventStoreDB adapter (@eventstore/db-client 6.x over gRPC).
 *
 * Positions are $all commit positions (byte offsets in the log, not event counts) as numbers. For events appended
 * outside explicit transactions (the only kind this adapter writes) commit and prepare positions are equal, so a
 * position resumes from `{ commit: p, prepare: p }`. Every position this adapter hands out is an *event's*
 * position: the server's checkpoints (filtered reads) and caught-up markers may name the position where the next
 * event will be written, so they are never used as a cursor or reported to consumers, who would skip that event.
 *
 * Filters run on the server (stream-name prefixes `category-`, an exact event-type regex, or "no `$` events"), so a
 * follower of two categories reads only those. The client's `readAll` takes no filter, so a filtered `readAll` is
 * a filtered subscription read up to the head. System events (types starting with `$`) are never returned.
 * `readStream` on a missing stream returns `[]`. A dropped subscription (server restart, leader change, network)
 * ends its iterator with an error, never a silent stop; consumers resubscribe from their last event.
 *
 * Appends: over MAX_APPEND_BYTES is refused before sending (AppendTooLargeError); not-leader, timeouts and
 * unavailability become StoreRetryableError (503 with Retry-After); a caller's event id becomes the event's UUID
 * (derived deterministically when it is not one), so a retried append is idempotent on the server.
 */
import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  eventTypeFilter,
  excludeSystemEvents,
  jsonEvent,
  streamNameFilter,
  type AppendExpectedRevision,
  type Direction,
  type EventData,
  type Filter,
  type JSONType,
  type Position,
  type ReadPosition,
  type ReadRevision,
} from '@eventstore/db-client';
import { createHash, randomUUID } from 'node:crypto';
import { AppendTooLargeError, StoreRetryableError, WrongExpectedVersionError } from '../errors.js';
import type {
  AllFilter,
  EventMetadata,
  EventStore,
  ExpectedRevision,
  NewEvent,
  RecordedEvent,
  Subscription,
  SubscriptionMessage,
} from './eventStore.js';
import { ALREADY_DURABLE, MAX_APPEND_BYTES, appendBytes, matchesFilter } from './eventStore.js';

/** An event as the client returns it (JSON and binary events alike). */
export interface EsdbEvent {
  readonly streamId: string;
  readonly id: string;
  readonly revision: bigint;
  readonly type: string;
  readonly created: Date;
  readonly data: unknown;
  readonly metadata: unknown;
  readonly position?: Position;
}
export interface EsdbResolved {
  readonly event?: EsdbEvent;
  readonly commitPosition?: bigint;
}

/** The part of the client's AllStreamSubscription (a Node Readable in object mode) the adapter uses. */
export interface EsdbSubscription {
  on(event: 'data', listener: (resolved: EsdbResolved) => void): unknown;
  on(event: 'caughtUp' | 'end', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  readonly readableLength: number;
  unsubscribe(): Promise<void>;
}

/** The part of EventStoreDBClient the adapter uses: production passes the real one, unit tests a fake. */
export interface EsdbClient {
  appendToStream(
    stream: string,
    events: EventData[],
    options: { expectedRevision: AppendExpectedRevision },
  ): Promise<{ nextExpectedRevision: bigint; position?: Position }>;
  readStream(stream: string, options: { direction: Direction; fromRevision: ReadRevision; maxCount?: number; requiresLeader?: boolean }): AsyncIterable<EsdbResolved>;
  readAll(options: { direction: Direction; fromPosition: ReadPosition; maxCount: number }): AsyncIterable<EsdbResolved>;
  subscribeToAll(options: { fromPosition: ReadPosition; filter: Filter }): EsdbSubscription;
  dispose(): Promise<void>;
}

const READ_PAGE = 1000;
const HEAD_PAGE = 32;
/** How long a client is told to wait after a retryable store failure (a leader election takes about a second). */
const RETRY_AFTER_MS = 1000;
/**
 * Checkpoints per server search window (32 events): the checkpoint is how a catch-up on a server older than 23.10
 * (which sends no caught-up message) sees that it passed the head through a stretch of other categories.
 */
const CHECKPOINT_INTERVAL = 1;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** EventStoreDB event ids are UUIDs: a caller's id that is not one maps to a name-based (v5-style) UUID of it. */
export const esdbEventId = (id: string): string => {
  if (UUID.test(id)) return id.toLowerCase();
  const hex = createHash('sha1').update(`switchyard-event-id\n${id}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

const toExpected = (expected: ExpectedRevision): AppendExpectedRevision =>
  expected === 'no_stream' ? NO_STREAM : expected === 'any' ? ANY : expected === 'stream_exists' ? STREAM_EXISTS : BigInt(expected);

const toRecorded = (event: EsdbEvent, commitPosition?: bigint): RecordedEvent => {
  const recordedAt = event.created.toISOString();
  const metadata = event.metadata && typeof event.metadata === 'object' && !(event.metadata instanceof Uint8Array) ? (event.metadata as EventMetadata) : {};
  return {
    id: event.id,
    stream: event.streamId,
    revision: Number(event.revision),
    position: Number(event.position?.commit ?? commitPosition ?? -1n),
    type: event.type,
    data: event.data instanceof Uint8Array ? JSON.parse(Buffer.from(event.data).toString('utf8')) : event.data,
    metadata: { ...metadata, at: metadata.at ?? recordedAt },
    recordedAt,
  };
};

const eventPosition = (event: EsdbEvent, commitPosition?: bigint): number => Number(event.position?.commit ?? commitPosition ?? -1n);

/** A subscription starts strictly after its position; a read of $all includes the event at it. */
const fromPosition = (after: number | undefined): ReadPosition =>
  after === undefined || after <= 0 ? START : { commit: BigInt(after), prepare: BigInt(after) };

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The server-side filter: stream-name prefixes for categories, else an exact event-type regex, else no `$` events. */
const serverFilter = (filter: AllFilter | undefined, checkpointReached: (position: Position) => void): Filter => {
  const options = { checkpointInterval: CHECKPOINT_INTERVAL, checkpointReached: (_: unknown, position: Position) => checkpointReached(position) };
  if (filter?.categories && filter.categories.length > 0) {
    return streamNameFilter({ prefixes: filter.categories.map((category) => `${category}-`), ...options });
  }
  if (filter?.eventTypes && filter.eventTypes.length > 0) {
    return eventTypeFilter({ regex: `^(?:${filter.eventTypes.map(escapeRegex).join('|')})$`, ...options });
  }
  return excludeSystemEvents(options);
};

const errorType = (error: unknown): string | undefined =>
  error instanceof Error && 'type' in error && typeof error.type === 'string' ? error.type : undefined;

/** The client's errors as domain errors: retryable (503 + Retry-After), a conflict, or too large; others as they are. */
const mapError = (error: unknown, stream?: string, expected?: ExpectedRevision): unknown => {
  if (error instanceof EsdbWrongExpectedVersionError && stream !== undefined && expected !== undefined) {
    const actual = error.actualVersion === NO_STREAM ? 'no_stream' : Number(error.actualVersion);
    return new WrongExpectedVersionError(stream, expected, actual);
  }
  const type = errorType(error);
  switch (type) {
    case 'not-leader':
    case 'timeout':
    case 'deadline-exceeded':
    case 'unavailable':
      return new StoreRetryableError(`EventStoreDB is unavailable for a moment (${type}): ${(error as Error).message}`, RETRY_AFTER_MS, { reason: type });
    case 'maximum-append-size-exceeded': {
      const limit = (error as { maxAppendSize?: number }).maxAppendSize;
      return new AppendTooLargeError(`EventStoreDB refused the append to ${stream ?? 'a stream'}: it is larger than the server's maximum append size${limit ? ` (${limit} bytes)` : ''}`, {
        ...(stream !== undefined && { stream }),
        ...(limit !== undefined && { limit }),
      });
    }
    default:
      return error;
  }
};

/** Consumes a read fully (an unconsumed read emits an unhandled 'error'); a missing stream reads as empty. */
const collect = async <T>(read: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  try {
    for await (const item of read) out.push(item);
  } catch (error) {
    if (errorType(error) === 'stream-not-found') return [];
    throw mapError(error);
  }
  return out;
};

const redact = (connectionString: string) => connectionString.replace(/\/\/[^@/]*@/, '//***@');

export const openEventStoreDb = (connectionString: string): EventStore =>
  createEventStoreDb(EventStoreDBClient.connectionString(connectionString), redact(connectionString));

/** The adapter over any client with EventStoreDBClient's interface (see EsdbClient). */
export const createEventStoreDb = (client: EsdbClient, detail: string): EventStore => {
  const subscriptions = new Set<Subscription>();

  /** The newest non-system event's position: the end of $all may hold system events no filtered read delivers. */
  const headPosition = async (): Promise<number> => {
    let from: ReadPosition = END;
    let before = Number.POSITIVE_INFINITY;
    for (;;) {
      const page: EsdbResolved[] = await collect(client.readAll({ direction: BACKWARDS, fromPosition: from, maxCount: HEAD_PAGE }));
      for (const { event, commitPosition } of page) {
        // A page read from an event's position may start with that event again.
        if (event && eventPosition(event, commitPosition) < before && !event.type.startsWith('$')) return eventPosition(event, commitPosition);
      }
      const last = page[page.length - 1]?.event;
      if (page.length < HEAD_PAGE || !last?.position) return 0;
      before = Number(last.position.commit);
      from = last.position;
    }
  };

  /**
   * The raw subscription: events the server filter passed, in order, at most once each, and once caught up the
   * `caughtUp` marker carrying the last *event* position seen (never a checkpoint's). Ends with an error when the
   * client reports one or the server ends the stream.
   */
  const subscribe = ({ after, filter, batchSize = 1000 }: { after?: number; filter?: AllFilter; batchSize?: number }): Subscription => {
    type Item = { kind: 'event'; event: RecordedEvent } | { kind: 'caughtUp'; position: number } | { kind: 'error'; error: unknown } | { kind: 'end' };
    const queue: Item[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    let caughtUpSent = false;
    /** The last event's position: the dedupe cursor and what `caughtUp` reports. */
    let lastEvent = after ?? 0;
    /** Everything before this was scanned by the server (a checkpoint): only for noticing the head, never a cursor. */
    let scannedBefore = 0;
    let headAtStart: number | undefined;
    // 'caughtUp' and checkpoints are emitted as the client transforms a message, while earlier events may still
    // sit in its readable buffer: a marker is acted on only after those buffered events have been received.
    let received = 0;
    const pendingMarkers: { afterReceived: number; run: () => void }[] = [];
    const enqueue = (item: Item) => {
      queue.push(item);
      if (queue.length > batchSize * 4) esdb.pause();
      wake?.();
    };
    const afterBuffered = (run: () => void) => {
      if (esdb.readableLength === 0) run();
      else pendingMarkers.push({ afterReceived: received + esdb.readableLength, run });
    };
    const markCaughtUp = () => {
      if (caughtUpSent) return;
      caughtUpSent = true;
      enqueue({ kind: 'caughtUp', position: lastEvent });
    };
    // Servers before 23.10 send no 'caughtUp': fall back to passing the newest event at start.
    const checkHead = () => {
      if (headAtStart !== undefined && (lastEvent >= headAtStart || scannedBefore > headAtStart)) markCaughtUp();
    };

    const esdb = client.subscribeToAll({
      fromPosition: fromPosition(after),
      filter: serverFilter(filter, (position) =>
        afterBuffered(() => {
          scannedBefore = Math.max(scannedBefore, Number(position.commit));
          checkHead();
        }),
      ),
    });
    esdb.on('data', ({ event, commitPosition }: EsdbResolved) => {
      received++;
      if (event) {
        const position = eventPosition(event, commitPosition);
        if (position > lastEvent) {
          lastEvent = position;
          // The server filtered already; this only narrows a filter with both categories and event types.
          if (!event.type.startsWith('$') && matchesFilter({ stream: event.streamId, type: event.type }, filter)) {
            enqueue({ kind: 'event', event: toRecorded(event, commitPosition) });
          }
        }
        checkHead();
      }
      while (pendingMarkers[0] && pendingMarkers[0].afterReceived <= received) pendingMarkers.shift()!.run();
    });
    esdb.on('caughtUp', () => afterBuffered(markCaughtUp));
    esdb.on('error', (error) => {
      if (!closed) enqueue({ kind: 'error', error: mapError(error) });
    });
    esdb.on('end', () => enqueue({ kind: 'end' }));
    headPosition().then(
      (head) => {
        headAtStart = head;
        checkHead();
      },
      () => undefined, // the fallback is best-effort; the subscription reports its own errors
    );

    async function* run(): AsyncGenerator<SubscriptionMessage> {
      try {
        while (!closed) {
          const item = queue[0];
          if (!item) {
            esdb.resume();
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          switch (item.kind) {
            case 'end':
              // The server ended a subscription that should run until closed: say so rather than end quietly.
              if (closed) return;
              throw new StoreRetryableError('The EventStoreDB subscription was ended by the server', RETRY_AFTER_MS, { reason: 'ended' });
            case 'error':
              throw item.error;
            case 'caughtUp':
              queue.shift();
              yield { kind: 'caughtUp', position: item.position };
              continue;
            case 'event': {
              const events: RecordedEvent[] = [];
              while (events.length < batchSize && queue[0]?.kind === 'event') events.push((queue.shift() as { event: RecordedEvent }).event);
              if (queue.length <= batchSize) esdb.resume();
              yield { kind: 'events', events };
              continue;
            }
          }
        }
      } finally {
        await subscription.close();
      }
    }

    let iterator: AsyncGenerator<SubscriptionMessage> | undefined;
    const subscription: Subscription = {
      [Symbol.asyncIterator]: () => (iterator ??= run()),
      async close() {
        if (closed) return;
        closed = true;
        subscriptions.delete(subscription);
        wake?.();
        await esdb.unsubscribe();
      },
    };
    subscriptions.add(subscription);
    return subscription;
  };

  /** A filtered read of $all, done on the server: a filtered subscription read until it has caught up. */
  const readFiltered = async (after: number, maxCount: number, filter: AllFilter): Promise<RecordedEvent[]> => {
    const out: RecordedEvent[] = [];
    const sub = subscribe({ after, filter, batchSize: Math.min(maxCount, READ_PAGE) });
    try {
      for await (const message of sub) {
        if (message.kind === 'caughtUp') break;
        for (const event of message.events) {
          out.push(event);
          if (out.length === maxCount) return out;
        }
      }
    } finally {
      await sub.close();
    }
    return out;
  };

  const store: EventStore = {
    kind: 'eventstoredb',

    async append(stream, events, { expectedRevision = 'any' } = {}) {
      const bytes = appendBytes(events);
      if (bytes > MAX_APPEND_BYTES) {
        throw new AppendTooLargeError(`An append of ${events.length} events (${bytes} bytes) to ${stream} is larger than EventStoreDB's maximum of ${MAX_APPEND_BYTES} bytes: split it`, {
          stream,
          bytes,
          limit: MAX_APPEND_BYTES,
        });
      }
      const data = events.map((event: NewEvent) =>
        jsonEvent({
          id: event.id === undefined ? randomUUID() : esdbEventId(event.id),
          type: event.type,
          data: (event.data ?? null) as JSONType,
          metadata: (event.metadata ?? {}) as JSONType,
        }),
      );
      try {
        const result = await client.appendToStream(stream, data, { expectedRevision: toExpected(expectedRevision) });
        // EventStoreDB acknowledges a write once it is durable: `commit` and `durable` appends resolve alike.
        return { nextExpectedRevision: Number(result.nextExpectedRevision), position: Number(result.position?.commit ?? -1n), durable: ALREADY_DURABLE };
      } catch (error) {
        throw mapError(error, stream, expectedRevision);
      }
    },

    async readStream(stream, { direction = 'forwards', fromRevision, maxCount } = {}) {
      const read = client.readStream(stream, {
        // A stream is read to decide a command on it (and the ledger's reload to learn whether its append landed): a
        // follower behind the leader would show a past state, whatever node the connection string prefers.
        requiresLeader: true,
        direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
        fromRevision: fromRevision === undefined ? (direction === 'forwards' ? START : END) : BigInt(fromRevision),
        ...(maxCount === undefined ? {} : { maxCount }),
      });
      const resolved = await collect(read);
      return resolved.flatMap((r) => (r.event ? [toRecorded(r.event, r.commitPosition)] : []));
    },

    async readAll({ after, maxCount = Number.MAX_SAFE_INTEGER, filter } = {}) {
      if (filter && ((filter.categories?.length ?? 0) > 0 || (filter.eventTypes?.length ?? 0) > 0)) return readFiltered(after ?? 0, maxCount, filter);
      // Unfiltered: page through $all, dropping system events.
      const out: RecordedEvent[] = [];
      let from = fromPosition(after);
      let lastSeen = after ?? -1;
      while (out.length < maxCount) {
        const page = await collect(client.readAll({ direction: FORWARDS, fromPosition: from, maxCount: READ_PAGE }));
        for (const { event, commitPosition } of page) {
          if (!event) continue;
          const position = eventPosition(event, commitPosition);
          if (position <= lastSeen) continue;
          lastSeen = position;
          if (event.type.startsWith('$') || !matchesFilter({ stream: event.streamId, type: event.type }, filter)) continue;
          out.push(toRecorded(event, commitPosition));
          if (out.length === maxCount) break;
        }
        if (page.length < READ_PAGE) break;
        const last = page[page.length - 1]?.event;
        if (!last?.position) break;
        from = last.position;
      }
      return out;
    },

    subscribeToAll: (options = {}) => subscribe(options),

    headPosition,

    async health() {
      try {
        await headPosition();
        return { ok: true, kind: 'eventstoredb', detail };
      } catch (error) {
        return { ok: false, kind: 'eventstoredb', detail: `${detail}: ${(error as Error).message}` };
      }
    },

    async close() {
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      await client.dispose();
    },
  };
  return store;
};
