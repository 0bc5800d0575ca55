import { ConflictError, DomainError, NotFoundError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { entryBytes, quotaBytes, TABLE_ENTRY_OVERHEAD_BYTES, type EntryData, type TableEvent } from './table.events.js';

/**
 * A table as decided. `entries` maps each live entry's id to its creation time, size and writer (EntryAdded.keyId):
 * enough to refuse an update of a missing entry (or, to a restricted key, of one it did not write), to count against
 * the limits, and to answer a repeated insert of the same id (a resumed workflow step) with no new event. Entry data is
 * not kept (it is in the events and the read model).
 */
export type TableState =
  | { readonly status: 'none' | 'dropped'; readonly name: string | null }
  | {
      readonly status: 'active';
      readonly tableId: string;
      readonly accountId: string;
      readonly name: string;
      readonly createdAt: string;
      /** Updated in place by evolve: the fold owns its state, and copying 100,000 ids per event would make loading quadratic. */
      readonly entries: Map<string, { readonly createdAt: string; readonly bytes: number; readonly keyId: string | null }>;
      /** The live entries' bytes as JSON (see entryBytes). */
      readonly bytes: number;
    };

export type LiveTableState = Extract<TableState, { status: 'active' }>;

type Ref = { readonly accountId: string; readonly table: string; readonly at: string };
/**
 * The account's storage quota as the command sees it: its limit, and what its other live tables count (quotaBytes: their
 * JSON and each entry's overhead, from the read model, so a soft bound across tables; within this table it is exact).
 * `bytes`: the entry's JSON.
 */
type Quota = { readonly quota: { readonly maxBytes: number; readonly otherTables: number }; readonly bytes: number };
/**
 * A restricted key's change (`onlyKey`, its id): it may touch only the entries it wrote; any other is, to it, a missing
 * one (the same NOT_FOUND). Absent: every entry of the table (a full key, a workflow's step).
 */
type OnlyKey = { readonly onlyKey?: string };

export type TableCommand =
  | { readonly type: 'CreateTable'; readonly data: Ref & { readonly tableId: string } }
  | { readonly type: 'DropTable'; readonly data: Ref }
  | { readonly type: 'InsertEntry'; readonly data: Ref & Quota & { readonly entryId: string; readonly entry: EntryData; readonly maxEntries: number; readonly keyId?: string } }
  | { readonly type: 'UpdateEntry'; readonly data: Ref & Quota & OnlyKey & { readonly entryId: string; readonly entry: EntryData } }
  | { readonly type: 'DeleteEntry'; readonly data: Ref & OnlyKey & { readonly entryId: string } };

export class TableFullError extends DomainError {
  constructor(table: string, max: number) {
    super('CONFLICT', `Table ${table} is full: it holds the maximum of ${max} entries; delete some first`, 409, { reason: 'table_full', table, limit: max });
  }
}

/** The account's table entries would pass TABLE_MAX_BYTES_PER_ACCOUNT. */
export class TableStorageQuotaError extends DomainError {
  /**
   * `used` and `size` as the quota counts them: JSON and TABLE_ENTRY_OVERHEAD_BYTES an entry; `growth`, what the
   * write adds to `used` (a new entry: its size; an update: its JSON's growth, the entry already counted).
   */
  constructor(used: number, size: number, growth: number, max: number) {
    const what = growth === size ? `this entry of ${size} bytes` : `growing this entry by ${growth} bytes (to ${size} as counted)`;
    super(
      'CONFLICT',
      `The account's table entries count ${used} bytes (their JSON and ${TABLE_ENTRY_OVERHEAD_BYTES} bytes an entry for storing it); ${what} would pass its quota of ${max} bytes (TABLE_MAX_BYTES_PER_ACCOUNT): delete entries or drop a table first`,
      409,
      { reason: 'table_storage_quota', limit: max, used, size, growth },
    );
  }
}

/**
 * The table's bytes of JSON once an entry of `bytes` is added (`before` null) or replaces one of `before` bytes: refused
 * when that grows what the account counts past its quota (a new entry adds its overhead too). Shrinking is always
 * allowed, so an account over its quota (lowered since, or counted with the overhead since) can make room.
 */
const grownWithin = (live: LiveTableState, quota: Quota['quota'], bytes: number, before: number | null): number => {
  const growth = before === null ? quotaBytes(bytes, 1) : bytes - before;
  const used = quota.otherTables + quotaBytes(live.bytes, live.entries.size);
  if (growth > 0 && used + growth > quota.maxBytes) throw new TableStorageQuotaError(used, quotaBytes(bytes, 1), growth, quota.maxBytes);
  return live.bytes - (before ?? 0) + bytes;
};

/** An entry event's size: recorded with it, or measured (events from before the quota). */
const sizeOf = (data: { readonly bytes?: number; readonly entry: EntryData }): number => data.bytes ?? entryBytes(data.entry);

const requireTable = (state: TableState, table: string): LiveTableState => {
  if (state.status !== 'active') throw new NotFoundError('Table', table);
  return state;
};

const requireEntry = (state: TableState, table: string, entryId: string, onlyKey: string | undefined): LiveTableState => {
  const live = requireTable(state, table);
  const entry = live.entries.get(entryId);
  if (!entry || (onlyKey !== undefined && entry.keyId !== onlyKey)) throw new NotFoundError('Entry', entryId);
  return live;
};

export const tableDecider: Decider<TableState, TableCommand, TableEvent> = {
  initialState: () => ({ status: 'none', name: null }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'TableCreated': {
        const { tableId, accountId, table, at } = event.data;
        return { status: 'active', tableId, accountId, name: table, createdAt: at, entries: new Map(), bytes: 0 };
      }
      case 'TableDropped':
        return { status: 'dropped', name: event.data.table };
      case 'EntryAdded': {
        if (state.status !== 'active' || state.tableId !== event.data.tableId) return state;
        const bytes = sizeOf(event.data);
        const before = state.entries.get(event.data.entryId)?.bytes ?? 0;
        state.entries.set(event.data.entryId, { createdAt: event.data.at, bytes, keyId: event.data.keyId ?? null });
        return { ...state, bytes: state.bytes - before + bytes };
      }
      case 'EntryUpdated': {
        const current = state.status === 'active' && state.tableId === event.data.tableId ? state.entries.get(event.data.entryId) : undefined;
        if (state.status !== 'active' || !current) return state;
        const bytes = sizeOf(event.data);
        state.entries.set(event.data.entryId, { ...current, bytes });
        return { ...state, bytes: state.bytes - current.bytes + bytes };
      }
      case 'EntryRemoved': {
        const current = state.status === 'active' && state.tableId === event.data.tableId ? state.entries.get(event.data.entryId) : undefined;
        if (state.status !== 'active' || !current) return state;
        state.entries.delete(event.data.entryId);
        return { ...state, bytes: state.bytes - current.bytes };
      }
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'CreateTable': {
        const { tableId, accountId, table, at } = command.data;
        if (state.status === 'active') throw new ConflictError(`Table ${table} already exists`, { reason: 'table_exists', table });
        return [{ type: 'TableCreated', data: { tableId, accountId, table, at } }];
      }
      case 'DropTable': {
        const live = requireTable(state, command.data.table);
        return [{ type: 'TableDropped', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, at: command.data.at } }];
      }
      case 'InsertEntry': {
        const live = requireTable(state, command.data.table);
        const { entryId, entry, maxEntries, quota, bytes, keyId, at } = command.data;
        // The same id again (a resumed step's derived id) is the insert already done.
        if (live.entries.has(entryId)) return [];
        if (live.entries.size >= maxEntries) throw new TableFullError(live.name, maxEntries);
        const tableBytes = grownWithin(live, quota, bytes, null);
        return [{ type: 'EntryAdded', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, entryId, entry, bytes, tableBytes, ...(keyId !== undefined && { keyId }), at } }];
      }
      case 'UpdateEntry': {
        const { entryId, entry, quota, bytes, at } = command.data;
        const live = requireEntry(state, command.data.table, entryId, command.data.onlyKey);
        const current = live.entries.get(entryId)!;
        const tableBytes = grownWithin(live, quota, bytes, current.bytes);
        return [{ type: 'EntryUpdated', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, entryId, entry, bytes, tableBytes, createdAt: current.createdAt, at } }];
      }
      case 'DeleteEntry': {
        const { entryId, at } = command.data;
        const live = requireEntry(state, command.data.table, entryId, command.data.onlyKey);
        const tableBytes = live.bytes - live.entries.get(entryId)!.bytes;
        return [{ type: 'EntryRemoved', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, entryId, tableBytes, at } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
