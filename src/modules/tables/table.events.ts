/**
 * The `table-{accountId}.{name}` stream: one named table of an account, with its entries. A dropped table's name
 * may be created again: the stream goes on, with a new table id (each entry event names the table id it belongs to,
 * so the read model tells the old entries from the new).
 */
import type { JsonValue, RecordedEvent } from '../../eventStore/eventStore.js';

export type EntryData = { readonly [key: string]: JsonValue };

type TableRef = { readonly tableId: string; readonly accountId: string; readonly table: string };
/**
 * Sizes, for the account's storage quota (TABLE_MAX_BYTES_PER_ACCOUNT): `bytes` is the entry's as JSON, `tableBytes`
 * the table's live entries' after the event. Absent from events written before the quota (read: entryBytes).
 */
type Sizes = { readonly bytes?: number; readonly tableBytes?: number };

export type TableCreated = { readonly type: 'TableCreated'; readonly data: TableRef & { readonly at: string } };
export type TableDropped = { readonly type: 'TableDropped'; readonly data: TableRef & { readonly at: string } };
/**
 * `keyId`: the API key that wrote the entry (over GraphQL or REST, the caller's; a workflow run's step, the key that
 * started or caused the run), which is all a restricted key sees of a table. Absent: none (a webhook's or a schedule's
 * run, the bootstrap admin key, or an entry written before writers were recorded whose event's metadata does not name
 * one either: see tableEventAsNow). An update keeps it.
 */
export type EntryAdded = {
  readonly type: 'EntryAdded';
  readonly data: TableRef & Sizes & { readonly entryId: string; readonly entry: EntryData; readonly keyId?: string; readonly at: string };
};
/** The whole new entry (an update replaces it), and when it was created, so an `entry` trigger needs nothing else. */
export type EntryUpdated = {
  readonly type: 'EntryUpdated';
  readonly data: TableRef & Sizes & { readonly entryId: string; readonly entry: EntryData; readonly createdAt: string; readonly at: string };
};
export type EntryRemoved = { readonly type: 'EntryRemoved'; readonly data: TableRef & Pick<Sizes, 'tableBytes'> & { readonly entryId: string; readonly at: string } };

export type TableEvent = TableCreated | TableDropped | EntryAdded | EntryUpdated | EntryRemoved;

/** Table names: what a stream name, a URL segment and a trigger can carry unescaped. */
export const TABLE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

export const TABLE_CATEGORY = 'table';
export const tableStream = (accountId: string, name: string): string => `${TABLE_CATEGORY}-${accountId}.${name}`;

/** An entry's size: bytes of its JSON (what the events record as `bytes`; the quota adds TABLE_ENTRY_OVERHEAD_BYTES). */
export const entryBytes = (entry: EntryData): number => Buffer.byteLength(JSON.stringify(entry), 'utf8');

/**
 * What storing one live entry takes beside its fields, counted against TABLE_MAX_BYTES_PER_ACCOUNT with its JSON: its
 * EntryAdded event (ids, table name, sizes, writer, time, metadata and index entries) and its read-model document. QA
 * s45 measured 1,082 bytes of disk for an empty entry `{}` (716 in events.db, 366 in readmodels.db), which counted 2.
 * Computed from the live entries' count, never recorded: entries written before it count it too.
 */
export const TABLE_ENTRY_OVERHEAD_BYTES = 1024;

/** What live entries holding `bytes` bytes of JSON count against the account's quota: their JSON and their overhead. */
export const quotaBytes = (bytes: number, entries: number): number => bytes + entries * TABLE_ENTRY_OVERHEAD_BYTES;

/**
 * A stored table event in today's shape, as every reader of the stream takes it (the decider's fold, the read models).
 * An EntryAdded written before entries recorded their writer in the data (fe10404) takes it from the event's metadata,
 * where writes over GraphQL and REST recorded the caller's key (`keyId`, since b2d5bba): the same key the data records
 * now, so an app's restricted key keeps its old entries. One naming neither (older still, or a step's, whose events
 * named no key then) has no writer: only full keys see it. Events in today's shape are returned as they are.
 */
export const tableEventAsNow = <E extends RecordedEvent<TableEvent>>(event: E): E => {
  if (event.type !== 'EntryAdded' || event.data.keyId !== undefined || event.metadata.keyId === undefined) return event;
  return { ...event, data: { ...event.data, keyId: event.metadata.keyId } };
};
