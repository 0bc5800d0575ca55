import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { Filter, ReadStore, SortSpec } from '../src/readStore/readStore.js';
import { entryBytes, TABLE_CATEGORY, tableEventAsNow, type EntryData, type TableEvent } from '../src/modules/tables/table.events.js';
import { defineProjection } from './projection.js';

export type TableDoc = {
  _id: string;
  accountId: string;
  name: string;
  status: 'active' | 'dropped';
  entryCount: number;
  /**
   * Its live entries' bytes as JSON, for the account's storage quota: the decider's count, carried by each entry
   * event (tableBytes). Events from before the quota carry none: an added entry is measured, an update or removal
   * (whose former size the event does not tell) leaves the count as it was, until the table's next entry event.
   */
  bytes: number;
  createdAt: string;
  updatedAt: string;
};

/**
 * One entry. Its fields are under `data` (entry filters are rewritten onto it, entryFilter.ts), so an entry's
 * names never meet the document's own. Entries of a dropped table stay behind, unreachable: queries name the
 * table id, and a table created again under the same name has a new one.
 */
export type EntryDoc = {
  _id: string;
  tableId: string;
  accountId: string;
  /**
   * The API key that wrote it (EntryAdded.keyId, or for an older entry its event's metadata.keyId), or null (none: a
   * webhook's or schedule's run, the bootstrap admin key, an older entry whose event names no key). A restricted key
   * reads only its own; never shown.
   */
  keyId: string | null;
  data: EntryData;
  createdAt: string;
  updatedAt: string;
};

export const TABLES = 'tables';
export const TABLE_ENTRIES = 'table_entries';

const tableEvent = (event: RecordedEvent) => tableEventAsNow(event as RecordedEvent<TableEvent>);

export const tablesProjection = defineProjection<TableDoc>({
  name: 'tables',
  version: 2,
  collection: TABLES,
  filter: { categories: [TABLE_CATEGORY] },
  indexes: [{ keys: { accountId: 1 } }],
  documentId: (event) => tableEvent(event).data.tableId,
  evolve: (doc, recorded) => {
    const event = tableEvent(recorded);
    const updatedAt = event.data.at;
    switch (event.type) {
      case 'TableCreated':
        return { _id: event.data.tableId, accountId: event.data.accountId, name: event.data.table, status: 'active', entryCount: 0, bytes: 0, createdAt: updatedAt, updatedAt };
      case 'TableDropped':
        return doc && { ...doc, status: 'dropped', updatedAt };
      case 'EntryAdded':
        return doc && { ...doc, entryCount: doc.entryCount + 1, bytes: event.data.tableBytes ?? doc.bytes + (event.data.bytes ?? entryBytes(event.data.entry)), updatedAt };
      case 'EntryUpdated':
        return doc && { ...doc, bytes: event.data.tableBytes ?? doc.bytes, updatedAt };
      case 'EntryRemoved':
        return doc && { ...doc, entryCount: doc.entryCount - 1, bytes: event.data.tableBytes ?? doc.bytes, updatedAt };
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const tableEntriesProjection = defineProjection<EntryDoc>({
  name: 'tableEntries',
  // 2: keyId (the entry's writer, what a restricted key sees). 3: from the event's metadata for an entry written
  // before the data recorded it (tableEventAsNow).
  version: 3,
  collection: TABLE_ENTRIES,
  filter: { categories: [TABLE_CATEGORY], eventTypes: ['EntryAdded', 'EntryUpdated', 'EntryRemoved'] },
  // A restricted key's queries name its key (the embedded store takes the first index the filter's equalities fill).
  indexes: [{ keys: { tableId: 1, keyId: 1 } }, { keys: { tableId: 1 } }],
  documentId: (recorded) => {
    const event = tableEvent(recorded);
    return event.type === 'EntryAdded' || event.type === 'EntryUpdated' || event.type === 'EntryRemoved' ? event.data.entryId : null;
  },
  evolve: (doc, recorded) => {
    const event = tableEvent(recorded);
    switch (event.type) {
      case 'EntryAdded': {
        const { entryId, tableId, accountId, entry, keyId, at } = event.data;
        return { _id: entryId, tableId, accountId, keyId: keyId ?? null, data: entry, createdAt: at, updatedAt: at };
      }
      case 'EntryUpdated':
        return doc && { ...doc, data: event.data.entry, updatedAt: event.data.at };
      case 'EntryRemoved':
        return null;
      case 'TableCreated':
      case 'TableDropped':
        return doc;
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const tableQueries = (store: ReadStore) => {
  const tables = store.collection<TableDoc>(TABLES);
  const entries = store.collection<EntryDoc>(TABLE_ENTRIES);
  return {
    /** The account's live table of that name, if any. */
    byName: (accountId: string, name: string) => tables.findOne({ accountId, name, status: 'active' }),
    /** The account's live tables, by name. */
    forAccount: (accountId: string) => tables.find({ accountId, status: 'active' }, { sort: { name: 1 } }),
    countForAccount: (accountId: string) => tables.count({ accountId, status: 'active' }),
    /**
     * Entries of a table matching a checked, rewritten filter (entryFilter.ts: it never names `tableId` or `keyId`),
     * only those the API key `onlyKey` wrote when given (a restricted key's).
     */
    entries: (tableId: string, filter: Filter, options: { sort: SortSpec; skip: number; limit: number }, onlyKey?: string) =>
      entries.find({ ...filter, tableId, ...(onlyKey !== undefined && { keyId: onlyKey }) }, options),
    entry: (tableId: string, entryId: string) => entries.findOne({ _id: entryId, tableId }),
    /** How many entries of the table the API key wrote. */
    countWrittenBy: (tableId: string, keyId: string) => entries.count({ tableId, keyId }),
  };
};
