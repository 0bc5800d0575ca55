import { ConflictError, DomainError, NotFoundError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { EntryData, TableEvent } from './table.events.js';

/**
 * A table as decided. `entries` maps each live entry's id to its creation time: enough to refuse an update of a
 * missing entry, to count against the limit, and to answer a repeated insert of the same id (a resumed workflow
 * step) with no new event. Entry data is not kept (it is in the events and the read model).
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
      readonly entries: Map<string, string>;
    };

export type LiveTableState = Extract<TableState, { status: 'active' }>;

type Ref = { readonly accountId: string; readonly table: string; readonly at: string };

export type TableCommand =
  | { readonly type: 'CreateTable'; readonly data: Ref & { readonly tableId: string } }
  | { readonly type: 'DropTable'; readonly data: Ref }
  | { readonly type: 'InsertEntry'; readonly data: Ref & { readonly entryId: string; readonly entry: EntryData; readonly maxEntries: number } }
  | { readonly type: 'UpdateEntry'; readonly data: Ref & { readonly entryId: string; readonly entry: EntryData } }
  | { readonly type: 'DeleteEntry'; readonly data: Ref & { readonly entryId: string } };

export class TableFullError extends DomainError {
  constructor(table: string, max: number) {
    super('CONFLICT', `Table ${table} is full: it holds the maximum of ${max} entries; delete some first`, 409, { reason: 'table_full', table, limit: max });
  }
}

const requireTable = (state: TableState, table: string): LiveTableState => {
  if (state.status !== 'active') throw new NotFoundError('Table', table);
  return state;
};

const requireEntry = (state: TableState, table: string, entryId: string): LiveTableState => {
  const live = requireTable(state, table);
  if (!live.entries.has(entryId)) throw new NotFoundError('Entry', entryId);
  return live;
};

export const tableDecider: Decider<TableState, TableCommand, TableEvent> = {
  initialState: () => ({ status: 'none', name: null }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'TableCreated': {
        const { tableId, accountId, table, at } = event.data;
        return { status: 'active', tableId, accountId, name: table, createdAt: at, entries: new Map() };
      }
      case 'TableDropped':
        return { status: 'dropped', name: event.data.table };
      case 'EntryAdded':
        if (state.status === 'active' && state.tableId === event.data.tableId) state.entries.set(event.data.entryId, event.data.at);
        return state;
      case 'EntryUpdated':
        return state;
      case 'EntryRemoved':
        if (state.status === 'active' && state.tableId === event.data.tableId) state.entries.delete(event.data.entryId);
        return state;
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
        const { entryId, entry, maxEntries, at } = command.data;
        // The same id again (a resumed step's derived id) is the insert already done.
        if (live.entries.has(entryId)) return [];
        if (live.entries.size >= maxEntries) throw new TableFullError(live.name, maxEntries);
        return [{ type: 'EntryAdded', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, entryId, entry, at } }];
      }
      case 'UpdateEntry': {
        const { entryId, entry, at } = command.data;
        const live = requireEntry(state, command.data.table, entryId);
        return [{ type: 'EntryUpdated', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, entryId, entry, createdAt: live.entries.get(entryId)!, at } }];
      }
      case 'DeleteEntry': {
        const { entryId, at } = command.data;
        const live = requireEntry(state, command.data.table, entryId);
        return [{ type: 'EntryRemoved', data: { tableId: live.tableId, accountId: live.accountId, table: live.name, entryId, at } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};
