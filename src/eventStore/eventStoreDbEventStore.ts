/**
 * The EventStoreDB adapter (@eventstore/db-client 6.x over gRPC).
 *
 * Positions are $all commit positions as numbers. For events appended outside explicit transactions (the only
 * kind this adapter writes) EventStoreDB's commit and prepare positions are equal, so a checkpoint resumes from
 * `{ commit: p, prepare: p }`. Reading `$all` from a position includes the event at it, so `readAll` drops
 * positions <= `after`; subscriptions start strictly after it.
 *
 * System events (types starting with `$`) are never returned from `readAll` or subscriptions. `readStream` on a
 * missing stream returns `[]`. Idempotent retries rely on the server's own event-id idempotency.
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
  StreamNotFoundError,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  eventTypeFilter,
  excludeSystemEvents,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type AppendExpectedRevision,
  type Filter,
  type JSONType,
  type Position,
  type ReadPosition,
  type StreamingRead,
} from '@eventstore/db-client';
import { randomUUID } from 'node:crypto';
import { UnavailableError, WrongExpectedVersionError } from '../errors.js';
import type {
  AllFilter,
  EventMetadata,
  EventStore,
  ExpectedRevision,
  RecordedEvent,
  Subscription,
  SubscriptionMessage,
} from './eventStore.js';
import { ALREADY_DURABLE, matchesFilter } from './eventStore.js';

type EsdbRecorded = NonNullable<AllStreamResolvedEvent['event']>;
type EsdbRecordedInStream = { streamId: string; id: string; revision: bigint; type: string; created: Date; data: unknown; metadata: unknown; position?: Position };

const READ_PAGE = 1000;

const toExpected = (expected: ExpectedRevision): AppendExpectedRevision =>
  expected === 'no_stream' ? NO_STREAM : expected === 'any' ? ANY : expected === 'stream_exists' ? STREAM_EXISTS : BigInt(expected);

const positionOf = (event: EsdbRecordedInStream, commitPosition?: bigint): number =>
  Number(event.position?.commit ?? commitPosition ?? -1n);

const toRecorded = (event: EsdbRecordedInStream, commitPosition?: bigint): RecordedEvent => {
  const recordedAt = event.created.toISOString();
  const metadata = event.metadata && typeof event.metadata === 'object' && !(event.metadata instanceof Uint8Array) ? (event.metadata as EventMetadata) : {};
  return {
    id: event.id,
    stream: event.streamId,
    revision: Number(event.revision),
    position: positionOf(event, commitPosition),
    type: event.type,
    data: event.data instanceof Uint8Array ? JSON.parse(Buffer.from(event.data).toString('utf8')) : event.data,
    metadata: { ...metadata, at: metadata.at ?? recordedAt },
    recordedAt,
  };
};

const fromPosition = (after: number | undefined): ReadPosition =>
  after === undefined || after <= 0 ? START : { commit: BigInt(after), prepare: BigInt(after) };

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The server-side filter: stream-name prefixes for categories, else an exact event-type regex, else no `$` events. */
const serverFilter = (filter: AllFilter | undefined, checkpointReached: (position: Position) => void): Filter => {
  const onCheckpoint = { checkpointReached: (_: unknown, position: Position) => checkpointReached(position) };
  if (filter?.categories && filter.categories.length > 0) {
    return streamNameFilter({ prefixes: filter.categories.map((category) => `${category}-`), ...onCheckpoint });
  }
  if (filter?.eventTypes && filter.eventTypes.length > 0) {
    return eventTypeFilter({ regex: `^(?:${filter.eventTypes.map(escapeRegex).join('|')})$`, ...onCheckpoint });
  }
  return excludeSystemEvents(onCheckpoint);
};

const mapError = (error: unknown, stream?: string, expected?: ExpectedRevision): unknown => {
  if (error instanceof EsdbWrongExpectedVersionError && stream !== undefined && expected !== undefined) {
    const actual = error.actualVersion === NO_STREAM ? 'no_stream' : Number(error.actualVersion);
    return new WrongExpectedVersionError(stream, expected, actual);
  }
  if (error instanceof Error && 'type' in error && (error.type === 'unavailable' || error.type === 'deadline-exceeded')) {
    return new UnavailableError(`EventStoreDB: ${error.message}`);
  }
  return error;
};

/** Consumes a read fully (an unconsumed read emits an unhandled 'error'); a missing stream reads as empty. */
const collect = async <T>(read: StreamingRead<T>): Promise<T[]> => {
  const out: T[] = [];
  try {
    for await (const item of read) out.push(item);
  } catch (error) {
    if (error instanceof StreamNotFoundError) return [];
    throw mapError(error);
  }
  return out;
};

const redact = (connectionString: string) => connectionString.replace(/\/\/[^@/]*@/, '//***@');

export const openEventStoreDb = (connectionString: string): EventStore => {
  const client = EventStoreDBClient.connectionString(connectionString);
  const subscriptions = new Set<Subscription>();

  const headPosition = async (): Promise<number> => {
    const [last] = await collect(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
    return Number(last?.event?.position.commit ?? last?.commitPosition ?? 0n);
  };

  const store: EventStore = {
    kind: 'eventstoredb',

    async append(stream, events, { expectedRevision = 'any' } = {}) {
      const data = events.map((event) =>
        jsonEvent({
          id: event.id ?? randomUUID(),
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
        direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
        fromRevision: fromRevision === undefined ? (direction === 'forwards' ? START : END) : BigInt(fromRevision),
        ...(maxCount === undefined ? {} : { maxCount }),
      });
      const resolved = await collect(read);
      return resolved.flatMap((r) => (r.event ? [toRecorded(r.event, r.commitPosition)] : []));
    },

    async readAll({ after, maxCount = Number.MAX_SAFE_INTEGER, filter } = {}) {
      // The client's readAll has no server-side filter: page through $all and filter here.
      const out: RecordedEvent[] = [];
      let from = fromPosition(after);
      let lastSeen = after ?? -1;
      while (out.length < maxCount) {
        const page = await collect(client.readAll({ direction: FORWARDS, fromPosition: from, maxCount: READ_PAGE }));
        for (const { event } of page) {
          if (!event) continue;
          const position = Number(event.position.commit);
          if (position <= lastSeen) continue;
          lastSeen = position;
          if (event.type.startsWith('$') || !matchesFilter({ stream: event.streamId, type: event.type }, filter)) continue;
          out.push(toRecorded(event));
          if (out.length === maxCount) break;
        }
        if (page.length < READ_PAGE) break;
        const last = page[page.length - 1]?.event;
        if (!last) break;
        from = last.position;
      }
      return out;
    },

    subscribeToAll({ after, filter, batchSize = 1000 } = {}) {
      type Item = { kind: 'event'; event: RecordedEvent } | { kind: 'caughtUp'; position: number } | { kind: 'error'; error: unknown } | { kind: 'end' };
      const queue: Item[] = [];
      let wake: (() => void) | undefined;
      let closed = false;
      let caughtUpSent = false;
      let cursor = after ?? 0;
      let headAtStart: number | undefined;
      // 'caughtUp' and checkpoints are emitted as the client transforms a message, while earlier events may still
      // sit in its readable buffer: a marker is queued only after those buffered events have been received.
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
        enqueue({ kind: 'caughtUp', position: cursor });
      };
      // Servers before 23.10 send no 'caughtUp': fall back to reaching the head position read at start.
      const checkHead = () => {
        if (headAtStart !== undefined && cursor >= headAtStart) markCaughtUp();
      };

      const esdb: AllStreamSubscription = client.subscribeToAll({
        fromPosition: fromPosition(after),
        filter: serverFilter(filter, (position) =>
          afterBuffered(() => {
            cursor = Math.max(cursor, Number(position.commit));
            checkHead();
          }),
        ),
      });
      esdb.on('data', ({ event, commitPosition }: AllStreamResolvedEvent) => {
        received++;
        if (event) {
          const position = Number(event.position.commit);
          if (position > cursor) {
            cursor = position;
            if (!event.type.startsWith('$') && matchesFilter({ stream: event.streamId, type: event.type }, filter)) {
              enqueue({ kind: 'event', event: toRecorded(event as EsdbRecorded, commitPosition) });
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
            if (item.kind === 'end') return;
            if (item.kind === 'error') throw item.error;
            if (item.kind === 'caughtUp') {
              queue.shift();
              yield { kind: 'caughtUp', position: item.position };
              continue;
            }
            const events: RecordedEvent[] = [];
            while (events.length < batchSize && queue[0]?.kind === 'event') events.push((queue.shift() as { event: RecordedEvent }).event);
            if (queue.length <= batchSize) esdb.resume();
            yield { kind: 'events', events };
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
    },

    headPosition,

    async health() {
      const detail = redact(connectionString);
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
