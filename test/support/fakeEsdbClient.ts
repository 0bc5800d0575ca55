/**
 * An in-memory stand-in for the part of @eventstore/db-client's EventStoreDBClient the adapter uses (EsdbClient),
 * behaving as the server and client do where the adapter's correctness depends on it:
 * - positions are byte offsets (each event takes EVENT_BYTES), so "head - position" is not a count of events;
 * - a subscription starts strictly after its position, a forwards read of $all includes the event at it;
 * - a catch-up reads pages of 32 events and, with a filter, sends a checkpoint after each page at the position
 *   where the next record will be (at the end of the log: where the next event will be written), then `caughtUp`
 *   (servers from 23.10; `sendsCaughtUp: false` plays an older one);
 * - the subscription is a Readable in object mode (PassThrough) whose 'caughtUp' and checkpoints can be emitted
 *   while events are still in its buffer, and whose errors are emitted as 'error' followed by the end of the stream;
 * - appends are idempotent by event id (at a numbered revision or NO_STREAM, the ids must be the events right after
 *   it, as the server checks; with ANY or STREAM_EXISTS anywhere in the stream), check the expected revision, and
 *   events must have UUID ids.
 */
import { PassThrough } from 'node:stream';
import {
  ANY,
  BACKWARDS,
  END,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  WrongExpectedVersionError,
  type AppendExpectedRevision,
  type Direction,
  type EventData,
  type Filter,
  type Position,
  type ReadPosition,
  type ReadRevision,
} from '@eventstore/db-client';
import type { EsdbClient, EsdbEvent, EsdbResolved, EsdbSubscription } from '../../src/eventStore/eventStoreDbEventStore.js';

export const EVENT_BYTES = 137;
const PAGE = 32;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An error of the client's shape: its `type` is the client's ErrorType. */
export const clientError = (type: string, message = type): Error => Object.assign(new Error(message), { type });

class FakeSubscription extends PassThrough implements EsdbSubscription {
  unsubscribed = false;
  constructor(private readonly onUnsubscribe: () => void) {
    super({ objectMode: true });
  }
  async unsubscribe(): Promise<void> {
    this.unsubscribed = true;
    this.onUnsubscribe();
    this.end();
  }
}

interface Live {
  readonly sub: FakeSubscription;
  readonly matches: (event: EsdbEvent) => boolean;
  /** Events appended while the subscription was still catching up, sent once it is live. */
  readonly pending: EsdbEvent[];
  live: boolean;
}

export const createFakeEsdbClient = (options: { sendsCaughtUp?: boolean } = {}) => {
  const log: EsdbEvent[] = [];
  const live = new Set<Live>();
  const appendErrors: Error[] = [];
  const calls = {
    appends: [] as { stream: string; events: EventData[]; expectedRevision: AppendExpectedRevision }[],
    subscribeToAll: [] as { fromPosition: ReadPosition; filter: Filter }[],
    readAll: [] as { direction: Direction; fromPosition: ReadPosition; maxCount: number }[],
    readStream: [] as { stream: string; requiresLeader: boolean | undefined }[],
  };
  let nextPosition = 1000n;
  let dropDuringCatchUpAfter: { events: number; error: Error } | undefined;

  const matcher = (filter: Filter) => (event: EsdbEvent) => {
    const subject = filter.filterOn === 'streamName' ? event.streamId : event.type;
    if ('prefixes' in filter) return filter.prefixes.some((prefix) => subject.startsWith(prefix));
    return new RegExp(filter.regex).test(subject);
  };

  const write = (event: EsdbEvent) => {
    const position = { commit: nextPosition, prepare: nextPosition };
    nextPosition += BigInt(EVENT_BYTES);
    const recorded = { ...event, position };
    log.push(recorded);
    for (const entry of live) {
      if (!entry.matches(recorded)) continue;
      if (entry.live) entry.sub.write({ event: recorded, commitPosition: position.commit } satisfies EsdbResolved);
      else entry.pending.push(recorded);
    }
    return recorded;
  };

  const client: EsdbClient = {
    async appendToStream(stream, events, { expectedRevision }) {
      calls.appends.push({ stream, events, expectedRevision });
      const failure = appendErrors.shift();
      if (failure) throw failure;
      for (const event of events) if (!UUID.test(event.id)) throw clientError('invalid-argument', `event id ${event.id} is not a UUID`);
      const inStream = log.filter((e) => e.streamId === stream);
      // Idempotent by id, as the server is: the same ids again answer as the first append did.
      const numbered = typeof expectedRevision === 'bigint' || expectedRevision === NO_STREAM;
      const first = numbered ? Number(expectedRevision === NO_STREAM ? -1n : expectedRevision) + 1 : inStream.findIndex((e) => e.id === events[0]?.id);
      if (events.length > 0 && first !== -1 && events.every((event, i) => inStream[first + i]?.id === event.id)) {
        const last = inStream[first + events.length - 1]!;
        return { nextExpectedRevision: last.revision, position: last.position! };
      }
      const current = inStream.length === 0 ? NO_STREAM : BigInt(inStream.length - 1);
      const ok =
        expectedRevision === ANY ||
        (expectedRevision === NO_STREAM && current === NO_STREAM) ||
        (expectedRevision === STREAM_EXISTS && current !== NO_STREAM) ||
        (typeof expectedRevision === 'bigint' && current === expectedRevision);
      if (!ok) throw new WrongExpectedVersionError(undefined, { streamName: stream, expected: expectedRevision, current });
      let last!: EsdbEvent;
      events.forEach((event, i) => {
        last = write({
          streamId: stream,
          id: event.id,
          revision: BigInt(inStream.length + i),
          type: event.type,
          created: new Date('2026-01-01T00:00:00Z'),
          data: event.data,
          metadata: event.metadata,
        });
      });
      return { nextExpectedRevision: last.revision, position: last.position! };
    },

    readStream(stream: string, { direction, fromRevision, maxCount, requiresLeader }: { direction: Direction; fromRevision: ReadRevision; maxCount?: number; requiresLeader?: boolean }) {
      calls.readStream.push({ stream, requiresLeader });
      return (async function* () {
        let events = log.filter((e) => e.streamId === stream);
        if (events.length === 0) throw new StreamNotFoundError(undefined, stream);
        if (direction === BACKWARDS) events = events.reverse();
        if (fromRevision !== START && fromRevision !== END) {
          events = events.filter((e) => (direction === BACKWARDS ? e.revision <= fromRevision : e.revision >= fromRevision));
        }
        for (const event of events.slice(0, maxCount ?? events.length)) yield { event, commitPosition: event.position!.commit };
      })();
    },

    readAll({ direction, fromPosition, maxCount }) {
      calls.readAll.push({ direction, fromPosition, maxCount });
      return (async function* () {
        let events = direction === BACKWARDS ? [...log].reverse() : log;
        if (typeof fromPosition === 'object') {
          const from = fromPosition.commit;
          events = events.filter((e) => (direction === BACKWARDS ? e.position!.commit < from : e.position!.commit >= from));
        }
        for (const event of events.slice(0, maxCount)) yield { event, commitPosition: event.position!.commit };
      })();
    },

    subscribeToAll({ fromPosition, filter }) {
      calls.subscribeToAll.push({ fromPosition, filter });
      const entry: Live = { sub: new FakeSubscription(() => live.delete(entry)), matches: matcher(filter), pending: [], live: false };
      live.add(entry);
      const after = fromPosition === START ? -1n : fromPosition === END ? nextPosition : fromPosition.commit;
      const checkpoint = (commit: bigint) => void filter.checkpointReached?.(null as never, { commit, prepare: commit } satisfies Position);
      // The server answers after the call returns.
      setImmediate(() => {
        // What was appended before now is history, read below, not live.
        entry.pending.length = 0;
        const history = log.filter((e) => e.position!.commit > after);
        let sent = 0;
        for (let start = 0; start < history.length; start += PAGE) {
          const page = history.slice(start, start + PAGE);
          for (const event of page) {
            if (entry.sub.unsubscribed) return;
            if (dropDuringCatchUpAfter && sent === dropDuringCatchUpAfter.events) {
              const { error } = dropDuringCatchUpAfter;
              dropDuringCatchUpAfter = undefined;
              live.delete(entry);
              entry.sub.emit('error', error);
              entry.sub.end();
              return;
            }
            sent++;
            if (entry.matches(event)) entry.sub.write({ event, commitPosition: event.position!.commit } satisfies EsdbResolved);
          }
          // The position of the record after the page: at the end of the log, where the next event will be written.
          const next = history[start + PAGE]?.position!.commit ?? nextPosition;
          checkpoint(next);
        }
        if (history.length === 0) checkpoint(nextPosition);
        if (options.sendsCaughtUp !== false) entry.sub.emit('caughtUp');
        entry.live = true;
        for (const event of entry.pending.splice(0)) entry.sub.write({ event, commitPosition: event.position!.commit } satisfies EsdbResolved);
      });
      return entry.sub;
    },

    async dispose() {
      for (const entry of [...live]) await entry.sub.unsubscribe();
    },
  };

  return {
    client,
    calls,
    log,
    /** The position where the next event will be written. */
    nextPosition: () => Number(nextPosition),
    /** Another process appends (straight into the log, as the server would). */
    appendElsewhere(stream: string, type: string, data: unknown = {}, id = crypto.randomUUID()): number {
      const revision = BigInt(log.filter((e) => e.streamId === stream).length);
      return Number(write({ streamId: stream, id, revision, type, created: new Date('2026-01-01T00:00:00Z'), data, metadata: {} }).position!.commit);
    },
    /** A system event ($-typed), as the server writes (stats, scavenges). */
    appendSystem(): void {
      write({ streamId: '$stats-127.0.0.1:2113', id: crypto.randomUUID(), revision: 0n, type: '$statsCollected', created: new Date(), data: {}, metadata: {} });
    },
    failNextAppend(error: Error) {
      appendErrors.push(error);
    },
    /** Every open subscription fails as on a server restart or leader change: 'error', then the stream ends. */
    dropAll(error: Error = clientError('unavailable', '14 UNAVAILABLE: Connection dropped')) {
      for (const entry of [...live]) {
        live.delete(entry);
        entry.sub.emit('error', error);
        entry.sub.end();
      }
    },
    /** The next catch-up fails after sending this many events. */
    dropNextCatchUpAfter(events: number, error: Error = clientError('unavailable', '14 UNAVAILABLE: Connection dropped')) {
      dropDuringCatchUpAfter = { events, error };
    },
    openSubscriptions: () => live.size,
  };
};
