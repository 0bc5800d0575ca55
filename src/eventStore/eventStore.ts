/**
 * The EventStore port. Two adapters implement it: the embedded SQLite store (default) and EventStoreDB.
 *
 * Revisions and positions are plain numbers: a stream's first event has revision 0, and the global position is
 * a strictly increasing number (the SQLite row id, or EventStoreDB's commit position, which fits in 2^53 until
 * the log reaches 9 PB). Keeping them numbers keeps them JSON-safe in checkpoints and read models. Only the
 * embedded store's positions count events; EventStoreDB's are byte offsets, so a difference of positions is a
 * "how far behind" only in the embedded store (/health reports lag in events there alone).
 */
import type { WriteFailure } from '../storage/writeHealth.js';
import { UnreadableEventError } from '../errors.js';

export { UnreadableEventError };

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };

export interface EventMetadata {
  readonly correlationId?: string;
  /**
   * What caused it, recorded by the server itself, never a client's value (a correlation id may be the client's
   * X-Request-Id): for an entry a workflow step wrote, the step's run id (the entry trigger places the runs it starts
   * in that run's chain).
   */
  readonly causationId?: string;
  /** Who caused it: an account id, `system`, or `admin:bootstrap`. */
  readonly actor?: string;
  /**
   * The API key of the actor's account that caused it, where a trigger needs it (an entry written over GraphQL or
   * REST): the runs the entry starts spend under that key (workflows/triggers/chain.ts). Recorded by the server.
   */
  readonly keyId?: string;
  /** ISO timestamp of the decision (comes in with the command, so deciders stay pure). */
  readonly at?: string;
}

/** A domain event as deciders produce it: plain readonly data. */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
}

/**
 * An event to append. `id` is the caller's idempotency handle: a retried append with the same ids does not duplicate.
 * Every store answers the same append sent again at the same numbered expected revision (or `no_stream`), whose events
 * are already in the stream right after that revision (its first try committed though its answer was lost, or
 * committed late), as that first append: nothing is written, `nextExpectedRevision` is its last event's revision,
 * also once the stream went on after it. A stream that went on past that revision without those ids refuses it with
 * WrongExpectedVersionError, so a try still in flight can never be written there either. Ids found anywhere else differ
 * by store (the embedded store answers from where they are, EventStoreDB writes them again or refuses the append).
 */
export interface NewEvent<E extends DomainEvent = DomainEvent> {
  readonly id?: string;
  readonly type: E['type'];
  readonly data: E['data'];
  readonly metadata?: EventMetadata;
}

export interface RecordedEventEnvelope {
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly position: number;
  readonly metadata: EventMetadata;
  readonly recordedAt: string;
}

/** A stored event. Distributes over a union of event types, so `switch (event.type)` narrows `event.data`. */
export type RecordedEvent<E extends DomainEvent = DomainEvent> = E extends DomainEvent
  ? RecordedEventEnvelope & { readonly type: E['type']; readonly data: E['data'] }
  : never;

/** `no_stream`: the stream must not exist. `any`: no check. `stream_exists`: must exist. A number: the last revision must be exactly this. */
export type ExpectedRevision = 'no_stream' | 'any' | 'stream_exists' | number;

export interface AppendResult {
  /** Revision of the last event now in the stream (pass it as the next expected revision). */
  readonly nextExpectedRevision: number;
  /** Global position of the last appended event. */
  readonly position: number;
  /**
   * Resolves once the append is durable: it survives a power loss as far as the store's setting promises (the
   * embedded store with `EVENTSTORE_SYNC=normal` promises only a process crash, and resolves it at commit). Already
   * resolved when the append was acknowledged with `durability: 'durable'`. Rejects when the store could not make it
   * durable; nobody has to wait for it (a rejection nobody awaits is not an unhandled one).
   */
  readonly durable: Promise<void>;
}

/**
 * When an append's promise resolves.
 * - `durable` (default): once the append is durable (see AppendResult.durable).
 * - `commit`: once it is committed: `readStream` and every later append of this store see it and are ordered after
 *   it, but a power loss may still take it back, and then every append committed after it too (what survives is a
 *   prefix of the committed log, so an append that is durable makes every one committed before it durable).
 *   Subscriptions, `readAll` and `headPosition` show it only once it is durable. Use it for what nobody outside
 *   relies on before something durable follows it, and await `durable` before anything that must not be lost.
 *   EventStoreDB acknowledges only durable appends, so there both resolve together.
 */
export type Durability = 'durable' | 'commit';

export interface AppendOptions {
  readonly expectedRevision?: ExpectedRevision;
  readonly durability?: Durability;
  /**
   * `soon`: nobody waits for this append on a request's critical path (a settlement, a generation record written
   * after the answer went out). The embedded store may then hold it a few milliseconds for the next append someone
   * waits for, and send both to its writer together: one commit, one fsync. Its promise and `durable` resolve as for
   * any append, once it is written (and durable). Default `now`.
   */
  readonly urgency?: Urgency;
  /**
   * How long the store may wait before it starts the fsync that makes this append durable (the embedded store with
   * `full`), so that the appends committed meanwhile share it: for an append whose durability is awaited only later
   * (a reservation, before its provider's answer can be delivered). Someone who then finds it not yet durable calls
   * `hurry`. Default 0, or for a `soon` append the store's hold for those. Promises and `durable` resolve as always,
   * once it is written and durable.
   */
  readonly syncWithinMs?: number;
}

export type Urgency = 'now' | 'soon';

export interface ReadStreamOptions {
  readonly direction?: 'forwards' | 'backwards';
  /** Inclusive. Defaults to the start (forwards) or the end (backwards). */
  readonly fromRevision?: number;
  readonly maxCount?: number;
}

export interface AllFilter {
  /** Stream categories (the part of the stream name before the first `-`), e.g. `['account', 'apikey']`. */
  readonly categories?: readonly string[];
  /** Exact event types. */
  readonly eventTypes?: readonly string[];
}

export interface ReadAllOptions {
  /** Exclusive: events strictly after this position. Omit to start from the beginning. */
  readonly after?: number;
  readonly maxCount?: number;
  readonly filter?: AllFilter;
}

export interface SubscribeOptions {
  /** Exclusive checkpoint: deliver events strictly after it. Omit for the beginning. */
  readonly after?: number;
  readonly filter?: AllFilter;
  /** Largest batch delivered at once during catch-up. */
  readonly batchSize?: number;
}

/**
 * What a subscription yields: batches of events in position order, and once, after the historical events, a
 * `caughtUp` marker (live events follow). `position` in `caughtUp` is an event's position that consumers may store
 * as their cursor (`after`) and pass to `waitFor`: every event at or before it has been delivered or filtered out,
 * and no event after it has been. It is never past the last event the store has scanned, and never a position where
 * no event is yet (EventStoreDB's checkpoints name where the next event will be written: taken as a cursor, that
 * event would be skipped). It may be past the last delivered event when a filter skipped some (the embedded store),
 * or equal to it (EventStoreDB, whose filters run on the server).
 *
 * A subscription runs until closed: when the store drops it (a restart, a leader change, the network) the
 * iterator throws; consumers resubscribe from the last event they applied.
 */
export type SubscriptionMessage =
  | { readonly kind: 'events'; readonly events: readonly RecordedEvent[] }
  | { readonly kind: 'caughtUp'; readonly position: number };

export interface Subscription extends AsyncIterable<SubscriptionMessage> {
  close(): Promise<void>;
}

export interface StoreHealth {
  readonly ok: boolean;
  readonly kind: string;
  readonly detail?: string;
  /** The embedded store's commits and WAL fsyncs since start (for `npm run bench:gateway`'s per-request counts). */
  readonly writes?: { readonly commits: number; readonly syncs: number };
  /** An event the store failed to decode (UnreadableEventError): the store is not ok while it holds one. */
  readonly unreadableEvent?: UnreadableEventError['event'];
  /** Its last append failed for its storage (a full disk, a read-only file system, an I/O error): not ok until one succeeds. */
  readonly lastWriteFailure?: WriteFailure;
}

export interface EventStore {
  readonly kind: 'embedded' | 'eventstoredb';
  append(stream: string, events: readonly NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  subscribeToAll(options?: SubscribeOptions): Subscription;
  /** The position of the newest event in the store (0 when empty). */
  headPosition(): Promise<number>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
  /**
   * Someone waits now for an append this store was given to become durable (see AppendOptions.syncWithinMs): the
   * fsync covering every append made so far starts without waiting further. Absent where appends are acknowledged
   * only once durable (EventStoreDB).
   */
  hurry?(): void;
}

/**
 * The largest single append EventStoreDB accepts by default (its MaxAppendSize, 1 MiB). The EventStoreDB adapter
 * refuses a larger append before sending it; writers that batch (the ledger) split at this size, measured by
 * `appendBytes`. The embedded store has no such limit.
 */
export const MAX_APPEND_BYTES = 1024 * 1024;

/** An append's size as EventStoreDB counts it, near enough: each event's JSON data, metadata and type, in UTF-8 bytes. */
export const appendBytes = (events: readonly NewEvent[]): number => {
  let bytes = 0;
  for (const event of events) {
    bytes += Buffer.byteLength(JSON.stringify(event.data ?? null)) + Buffer.byteLength(JSON.stringify(event.metadata ?? {})) + Buffer.byteLength(event.type);
  }
  return bytes;
};

/** The `durable` of an append acknowledged as durable. */
export const ALREADY_DURABLE: Promise<void> = Promise.resolve();

export const streamCategory = (stream: string): string => {
  const dash = stream.indexOf('-');
  return dash === -1 ? stream : stream.slice(0, dash);
};

export const matchesFilter = (event: Pick<RecordedEvent, 'stream' | 'type'>, filter: AllFilter | undefined): boolean => {
  if (!filter) return true;
  if (filter.categories && !filter.categories.includes(streamCategory(event.stream))) return false;
  if (filter.eventTypes && !filter.eventTypes.includes(event.type)) return false;
  return true;
};

