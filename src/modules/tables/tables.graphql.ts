import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { ValidationError } from '../../errors.js';
import { builder } from '../../graphql/builder.js';
import { isOffsetCursor, MAX_PAGE_SIZE } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount } from '../../graphql/scopes.js';
import type { EntryView, TableView } from './tables.api.js';

export const TableRef = builder.objectRef<TableView>('Table').implement({
  description: "A named table of the account: JSON entries that workflows search, store into and are triggered by (`entry` trigger).",
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    entryCount: t.exposeInt('entryCount', { description: 'Its entries (to a restricted key, those it wrote: see `entries`).' }),
    createdAt: t.field({ type: 'DateTime', resolve: (table) => table.createdAt }),
  }),
});

export const EntryRef = builder.objectRef<EntryView>('Entry').implement({
  description: 'An entry of a table: a JSON object (`data`) with an id and its creation and last update times.',
  fields: (t) => ({
    id: t.exposeID('id'),
    data: t.field({ type: 'JSON', description: "The entry's own fields.", resolve: (entry) => entry.data }),
    createdAt: t.field({ type: 'DateTime', resolve: (entry) => entry.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (entry) => entry.updatedAt }),
  }),
});

/** Entries page forward only (`first`, `after`); a cursor is an edge's, as given. */
const checkEntryPage = (args: { first?: number | null; last?: number | null; before?: string | null; after?: string | null }) => {
  if ((args.last ?? null) !== null || (args.before ?? null) !== null) throw new ValidationError('entries pages forward: use first and after', { argument: args.last != null ? 'last' : 'before' });
  if (args.first != null && args.first < 0) throw new ValidationError(`first must be 0 or more (pages hold at most ${MAX_PAGE_SIZE} edges)`, { argument: 'first', value: args.first });
  if (args.after != null && !isOffsetCursor(args.after)) {
    throw new ValidationError("after is not a cursor of this list; pass an edge's cursor or pageInfo's endCursor", { argument: 'after' });
  }
};

const DroppedTableRef = builder.objectRef<{ id: string; name: string }>('DroppedTable').implement({
  fields: (t) => ({ id: t.exposeID('id', { description: 'The dropped table\'s id (a table created again under the name gets a new one).' }), name: t.exposeString('name') }),
});
const DeletedEntryRef = builder.objectRef<{ id: string }>('DeletedEntry').implement({ fields: (t) => ({ id: t.exposeID('id') }) });

builder.queryFields((t) => ({
  tables: t.withAuth(ownsAccountArg).field({
    type: [TableRef],
    description: "The caller's tables, by name (an admin may name another account).",
    args: { accountId: t.arg.id({ required: false }) },
    resolve: (_root, args, ctx) => ctx.tables.tables(ctx.principal, targetAccount(args.accountId, ctx)),
  }),
  entries: t.withAuth(ownsAccountArg).connection({
    type: EntryRef,
    description: [
      "Entries of one of the caller's tables (an admin may name another account), oldest first unless sorted.",
      'A restricted key (a spending limit, or issued to an app) sees only the entries it wrote and those the workflow runs',
      'it started or caused stored; updateEntry and deleteEntry answer NOT_FOUND for any other, as for a missing id.',
      'filter: MongoDB query language over the entry\'s own fields, e.g. {"text": "HELLO"}, {"score": {"$gte": 3}},',
      '{"$or": [{"tag": {"$in": ["a", "b"]}}, {"text": {"$regex": "^he", "$options": "i"}}]}; `id`, `createdAt` and',
      '`updatedAt` name the platform\'s fields. Operators that run code ($where, $function, $expr…) are refused, and',
      'so are filters nested deeper than 8, lists over 100 values and regular expressions that could run for ever',
      '(nested quantifiers, lookarounds, back-references; $options among i, m, s).',
      'sort: {"field": 1 | -1}, up to 3 fields; ties by creation.',
    ].join(' '),
    args: {
      table: t.arg.string({ required: true }),
      filter: t.arg({ type: 'JSON', required: false }),
      sort: t.arg({ type: 'JSON', required: false }),
      accountId: t.arg.id({ required: false }),
    },
    resolve: (_root, args, ctx) => {
      checkEntryPage(args);
      const accountId = targetAccount(args.accountId, ctx);
      return resolveOffsetConnection({ args, defaultSize: 20, maxSize: MAX_PAGE_SIZE }, ({ offset, limit }) =>
        ctx.tables.entries(ctx.principal, accountId, args.table, { filter: args.filter, sort: args.sort, skip: offset, limit }),
      );
    },
  }),
}));

builder.mutationFields((t) => ({
  createTable: t.withAuth({ authenticated: true }).field({
    type: TableRef,
    description: 'Create a table in the caller\'s account (designers and admins). Names: lowercase letters, digits and _, starting with a letter, up to 63.',
    errors: { directResult: true },
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.tables.createTable(ctx, args.name),
  }),
  dropTable: t.withAuth({ authenticated: true }).field({
    type: DroppedTableRef,
    description: "Drop a table and its entries (designers and admins); its name may be used again. A table a workflow of the account names literally (an entry trigger's, a table step's; enabled or not) is not dropped: CONFLICT (reason table_in_use) naming the first three, to change or delete first.",
    errors: { directResult: true },
    args: { name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.tables.dropTable(ctx, args.name),
  }),
  insertEntry: t.withAuth({ authenticated: true }).field({
    type: EntryRef,
    description: 'Add an entry (a JSON object, at most 64 KiB by default) to one of the caller\'s tables. Any member of the account may (a restricted key too: the entry is then its own, see `entries`).',
    errors: { directResult: true },
    args: { table: t.arg.string({ required: true }), entry: t.arg({ type: 'JSON', required: true }) },
    resolve: (_root, args, ctx) => ctx.tables.insertEntry(ctx, args.table, args.entry),
  }),
  updateEntry: t.withAuth({ authenticated: true }).field({
    type: EntryRef,
    // Fields naming an object by id refuse it at the top level (errors[].extensions.code), as every id field does.
    description: "Replace an entry's fields (a restricted key: only an entry it wrote; any other is NOT_FOUND, as a missing id). The entry stays its writer's.",
    args: { table: t.arg.string({ required: true }), id: t.arg.id({ required: true }), entry: t.arg({ type: 'JSON', required: true }) },
    resolve: (_root, args, ctx) => ctx.tables.updateEntry(ctx, args.table, String(args.id), args.entry),
  }),
  deleteEntry: t.withAuth({ authenticated: true }).field({
    type: DeletedEntryRef,
    description: 'Delete an entry (a restricted key: only an entry it wrote; any other is NOT_FOUND, as a missing id).',
    args: { table: t.arg.string({ required: true }), id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.tables.deleteEntry(ctx, args.table, String(args.id)),
  }),
}));
