import { createHash } from 'node:crypto';
import { tableQueries, type EntryDoc, type TableDoc } from '../../../projections/tables.js';
import type { ProjectionRunner } from '../../../projections/runner.js';
import { ConflictError, DomainError, ForbiddenError, NotFoundError, UnauthenticatedError, ValidationError, WrongExpectedVersionError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { afterConflict } from '../../eventStore/handleCommand.js';
import { newId } from '../../ids.js';
import { checkFiniteNumbers } from '../../objects.js';
import { oneAtATime } from '../../oneAtATime.js';
import type { Logger } from '../../logger.js';
import type { ReadStore } from '../../readStore/readStore.js';
import { onlyOwnKey, type Caller, type Principal } from '../auth/principal.js';
import { entryFilter, entrySort, PROTOTYPE_NAMES, RESERVED_ENTRY_FIELDS } from './entryFilter.js';
import { tableDecider, type TableCommand, type TableState } from './table.decider.js';
import { entryBytes, quotaBytes, TABLE_NAME, tableEventAsNow, tableStream, type EntryData, type TableEvent } from './table.events.js';

export interface TableLimits {
  /** Bytes of one entry as JSON. */
  readonly maxEntryBytes: number;
  readonly maxEntries: number;
  readonly maxTablesPerAccount: number;
  /**
   * What all of an account's live entries, across its tables, may count: their JSON and TABLE_ENTRY_OVERHEAD_BYTES each
   * (what storing an entry takes), so what its tables take of the disk.
   */
  readonly maxBytesPerAccount: number;
}

export const DEFAULT_TABLE_LIMITS: TableLimits = { maxEntryBytes: 64 * 1024, maxEntries: 100_000, maxTablesPerAccount: 100, maxBytesPerAccount: 256 * 1024 * 1024 };

/** An entry as the API answers it: its id, its fields, and when it was created and last changed. */
export interface EntryView {
  readonly id: string;
  readonly data: EntryData;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface TableView {
  readonly id: string;
  readonly name: string;
  readonly entryCount: number;
  readonly createdAt: string;
}

/** Who acts on an account's tables: a caller of the account, or a workflow run of it (steps). */
export interface TableActor {
  readonly accountId: string;
  readonly actor: string;
  /** The request's id (a client may choose it: X-Request-Id), or the run's for a step. */
  readonly correlationId: string;
  /**
   * The run whose step writes (set by the table steps only): recorded as the events' causationId, from which the
   * entry trigger places the runs the entry starts in that run's chain. Never from a client.
   */
  readonly causedByRun?: string;
  /**
   * The API key that writes: the caller's (over GraphQL or REST), or for a step the key that started or caused its run
   * (none for a webhook's or a schedule's run). Recorded as the events' keyId, so the runs the entry starts spend under
   * that key, as runs the key starts do, and as the writer of the entries it inserts (EntryAdded.keyId).
   */
  readonly keyId?: string;
  /**
   * A restricted key's id (Principal.restricted): it updates and deletes only the entries it wrote; another is, to it,
   * a missing one. Never set for a step (a run acts on the workflow's whole table).
   */
  readonly onlyKey?: string;
}

const ENTRY_ID = /^ent_[0-9a-z]{1,64}$/;
const MAX_ENTRY_DEPTH = 32;
const MAX_KEY_LENGTH = 128;

export const entryView = (doc: EntryDoc): EntryView => ({ id: doc._id, data: doc.data, createdAt: doc.createdAt, updatedAt: doc.updatedAt });
const tableView = (doc: TableDoc): TableView => ({ id: doc._id, name: doc.name, entryCount: doc.entryCount, createdAt: doc.createdAt });

/** An entry id derived from a step's idempotency key: the same key inserts the same entry, once. */
export const derivedEntryId = (idempotencyKey: string): string => `ent_${createHash('sha256').update(`entry\n${idempotencyKey}`).digest('hex').slice(0, 32)}`;

const checkName = (name: string): void => {
  if (!TABLE_NAME.test(name)) {
    throw new ValidationError(`Invalid table name ${JSON.stringify(name.slice(0, 80))}: 1 to 63 characters, lowercase letters, digits and _, starting with a letter`, { reason: 'bad_table_name', field: 'table' });
  }
};

const checkEntryId = (entryId: string): void => {
  if (!ENTRY_ID.test(entryId)) throw new NotFoundError('Entry', entryId.slice(0, 80));
};

const NOT_PROTOTYPE_NAMES = `none of ${[...PROTOTYPE_NAMES].join(', ')}`;

/**
 * What an entry holds as it is stored and read back: field names a document store accepts and filters can name (no `$`
 * start, no dots, not empty, bounded, not a prototype's name, which reads would drop and filters refuse). Its numbers
 * are held to what JSON can hold by checkFiniteNumbers (`1e999` would be stored as null; -0 equals 0 in every filter and sort).
 */
const checkValue = (value: unknown, path: string, depth: number): void => {
  if (depth > MAX_ENTRY_DEPTH) throw new ValidationError(`Invalid entry at ${path}: nested deeper than ${MAX_ENTRY_DEPTH} levels`, { reason: 'too_deep', path });
  if (Array.isArray(value)) return value.forEach((item, index) => checkValue(item, `${path}[${index}]`, depth + 1));
  if (typeof value !== 'object' || value === null) return;
  for (const [key, inner] of Object.entries(value)) {
    if (key === '' || key.length > MAX_KEY_LENGTH || key.startsWith('$') || key.includes('.') || key.includes('\0') || PROTOTYPE_NAMES.has(key)) {
      throw new ValidationError(`Invalid entry field name ${JSON.stringify(key.slice(0, 80))} at ${path}: 1 to ${MAX_KEY_LENGTH} characters, no dots, not starting with $, ${NOT_PROTOTYPE_NAMES}`, {
        reason: 'bad_field_name',
        path,
      });
    }
    checkValue(inner, `${path}.${key}`, depth + 1);
  }
};

/** The entry a caller sent, checked: a JSON object within the size limit, with field names filters can reach and finite numbers. */
export const checkEntry = (entry: unknown, maxBytes: number): { data: EntryData; bytes: number } => {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ValidationError('An entry is a JSON object, e.g. {"text": "hello"}', { reason: 'not_an_object', field: 'entry' });
  const bytes = entryBytes(entry as EntryData);
  if (bytes > maxBytes) throw new DomainError('PAYLOAD_TOO_LARGE', `The entry is ${bytes} bytes as JSON, over the limit of ${maxBytes}`, 413, { reason: 'entry_too_large', limit: maxBytes, size: bytes });
  for (const key of Object.keys(entry)) {
    if (RESERVED_ENTRY_FIELDS.has(key)) throw new ValidationError(`Entry field "${key}" is the platform's (${[...RESERVED_ENTRY_FIELDS].join(', ')} are kept for every entry): rename it`, { reason: 'reserved_field', path: key });
  }
  checkValue(entry, 'entry', 0);
  checkFiniteNumbers(entry, 'entry', 'entry');
  return { data: entry as EntryData, bytes };
};

/** Workflows a refusal to drop a table names (the rest are counted). */
const NAMED_WORKFLOWS = 3;

const tableInUse = (table: string, workflows: readonly { id: string; name: string }[]): ConflictError => {
  const shown = workflows.slice(0, NAMED_WORKFLOWS);
  const listed = shown.map(({ id, name }) => `${JSON.stringify(name.slice(0, 80))} (${id})`).join(', ');
  const more = workflows.length > shown.length ? ` and ${workflows.length - shown.length} more` : '';
  const count = workflows.length === 1 ? 'a workflow' : `${workflows.length} workflows`;
  return new ConflictError(`Table ${table} is named by ${count} of the account, ${listed}${more}, whose runs would fail without it: change or delete ${workflows.length === 1 ? 'it' : 'them'} first`, {
    reason: 'table_in_use',
    table,
    workflows: shown,
    count: workflows.length,
  });
};

const principalOf = (caller: Caller): Principal => {
  if (!caller.principal) throw new UnauthenticatedError();
  return caller.principal;
};
const actorOf = (caller: Caller): TableActor => {
  const principal = principalOf(caller);
  const onlyKey = onlyOwnKey(principal);
  return {
    accountId: principal.accountId,
    actor: principal.accountId,
    correlationId: caller.requestId,
    ...(principal.keyId !== null && { keyId: principal.keyId }),
    ...(onlyKey !== undefined && { onlyKey }),
  };
};

/** Cached write-side states kept (the most recently used tables). */
const CACHED_TABLES = 1000;

/**
 * The tables module: an account's named collections of JSON entries. Roles: every member of the account (and its
 * API keys, and its workflows' steps) reads and writes entries; designers and admins create and drop tables. The
 * caller always acts on its own account's tables: another account's table is, to it, a missing one. A restricted key
 * reads, counts, updates and deletes only the entries it wrote (or its runs stored); another is, to it, a missing one.
 */
export const createTablesApi = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  runner: Pick<ProjectionRunner, 'waitFor'>;
  logger: Logger;
  now: () => Date;
  limits?: Partial<TableLimits>;
  /** The account's workflows naming the table literally (WorkflowsApi.namingTable): a table they name is not dropped. */
  workflowsNaming: (accountId: string, table: string) => Promise<readonly { id: string; name: string }[]>;
  /**
   * The account's turn shared with its saves of workflows naming tables (WorkflowsApi.tableTurn): a drop holds it from
   * its check until the read model holds the drop, so a save and a drop racing never both pass.
   */
  tableTurn: <T>(accountId: string, work: () => Promise<T>) => Promise<T>;
}) => {
  const limits: TableLimits = { ...DEFAULT_TABLE_LIMITS, ...deps.limits };
  const queries = tableQueries(deps.readStore);
  const at = () => deps.now().toISOString();

  /**
   * A table's decided state, kept between commands and brought up to date from its stream before each (another
   * process may have written): loading a full table's stream for every insert would make filling it quadratic.
   */
  const cache = new Map<string, { state: TableState; revision: number }>();
  /** Commands on one table run one at a time in this process (the cached state is updated in place). */
  const oneAtATimePerTable = oneAtATime();

  const catchUp = async (stream: string) => {
    let cached = cache.get(stream);
    if (cached) cache.delete(stream);
    else cached = { state: tableDecider.initialState(), revision: -1 };
    const newer = (await deps.eventStore.readStream(stream, { fromRevision: cached.revision + 1 })) as RecordedEvent<TableEvent>[];
    for (const event of newer) {
      cached.state = tableDecider.evolve(cached.state, tableEventAsNow(event));
      cached.revision = event.revision;
    }
    // Most recently used last, so the oldest goes first.
    cache.set(stream, cached);
    if (cache.size > CACHED_TABLES) cache.delete(cache.keys().next().value!);
    return cached;
  };

  const decideOnce = async (stream: string, command: TableCommand, actor: TableActor) => {
    for (let attempt = 0; ; attempt++) {
      const cached = await catchUp(stream);
      const events = tableDecider.decide(command, cached.state);
      if (events.length === 0) return { events, state: cached.state, position: null, durable: Promise.resolve() };
      try {
        // At commit: the next command on this table decides on it at once; the caller's answer waits for the fsync
        // and the read models outside the table's lock (execute), so a busy table's writes share fsyncs.
        const metadata = {
          actor: actor.actor,
          correlationId: actor.correlationId,
          ...(actor.causedByRun !== undefined && { causationId: actor.causedByRun }),
          ...(actor.keyId !== undefined && { keyId: actor.keyId }),
          at: command.data.at,
        };
        const result = await deps.eventStore.append(
          stream,
          events.map((event) => ({ type: event.type, data: event.data, metadata })),
          { expectedRevision: cached.revision === -1 ? 'no_stream' : cached.revision, durability: 'commit' },
        );
        for (const event of events) cached.state = tableDecider.evolve(cached.state, event);
        cached.revision = result.nextExpectedRevision;
        return { events, state: cached.state, position: result.position, durable: result.durable };
      } catch (error) {
        // Another process wrote first: catch up and decide again, as handleCommand does (then a retryable CONFLICT).
        if (!(error instanceof WrongExpectedVersionError)) {
          cache.delete(stream);
          throw error;
        }
        try {
          await afterConflict(attempt);
        } catch (refusal) {
          cache.delete(stream);
          throw refusal;
        }
      }
    }
  };

  const execute = (command: TableCommand, actor: TableActor) => {
    const stream = tableStream(command.data.accountId, command.data.table);
    return oneAtATimePerTable(stream, () => decideOnce(stream, command, actor)).then(async ({ events, state, position, durable }) => {
      await durable;
      // Read your writes: the caller's next query sees what it just wrote.
      if (position !== null && !(await deps.runner.waitFor(position))) deps.logger.warn({ stream, position }, 'read side is lagging behind a table command');
      return { events, state };
    });
  };

  const requireDesigner = (caller: Caller) => {
    const principal = principalOf(caller);
    if (!principal.roles.has('designer') && !principal.roles.has('admin')) throw new ForbiddenError('Only designers and admins create and drop tables; any member of the account may write entries');
  };

  /** The live table of the account by name, from the read model. */
  const tableOf = async (accountId: string, name: string): Promise<TableDoc> => {
    checkName(name);
    const doc = await queries.byName(accountId, name);
    if (!doc) throw new NotFoundError('Table', name);
    return doc;
  };

  /** The entry an insert or update decided, as the read model now shows it (the command waited for it). */
  const decidedEntry = async (accountId: string, table: string, entryId: string): Promise<EntryView> => {
    const doc = await queries.entry((await tableOf(accountId, table))._id, entryId);
    if (!doc) throw new NotFoundError('Entry', entryId);
    return entryView(doc);
  };

  /**
   * The account's quota as an insert or update into `table` sees it: what its other live tables count (their JSON and
   * each entry's overhead), from the read model (as TABLE_MAX_PER_ACCOUNT is counted): requests racing on several tables of one account may pass it by
   * what they raced with; within one table the decider counts exactly.
   */
  const quotaFor = async (accountId: string, table: string) => {
    let otherTables = 0;
    for (const doc of await queries.forAccount(accountId)) if (doc.name !== table) otherTables += quotaBytes(doc.bytes, doc.entryCount);
    return { maxBytes: limits.maxBytesPerAccount, otherTables };
  };

  /** Find-or-create runs one at a time per table (apart from the table's commands: its insert is one of them). */
  const oneUpsertAtATimePerTable = oneAtATime();

  const owned = {
    /** Insert an entry (`entryId`: a derived id, so a repeated insert is answered with the entry it made). */
    async insert(actor: TableActor, table: string, entry: unknown, entryId: string = newId('ent')): Promise<EntryView> {
      checkName(table);
      const { data, bytes } = checkEntry(entry, limits.maxEntryBytes);
      const quota = await quotaFor(actor.accountId, table);
      const now = at();
      const { events } = await execute(
        { type: 'InsertEntry', data: { accountId: actor.accountId, table, at: now, entryId, entry: data, bytes, quota, maxEntries: limits.maxEntries, ...(actor.keyId !== undefined && { keyId: actor.keyId }) } },
        actor,
      );
      if (events.length === 0) return decidedEntry(actor.accountId, table, entryId);
      return { id: entryId, data, createdAt: now, updatedAt: now };
    },
    /** Replace an entry's fields. */
    async update(actor: TableActor, table: string, entryId: string, entry: unknown): Promise<EntryView> {
      checkName(table);
      checkEntryId(entryId);
      const { data, bytes } = checkEntry(entry, limits.maxEntryBytes);
      const quota = await quotaFor(actor.accountId, table);
      const now = at();
      const { events } = await execute({ type: 'UpdateEntry', data: { accountId: actor.accountId, table, at: now, entryId, entry: data, bytes, quota, ...(actor.onlyKey !== undefined && { onlyKey: actor.onlyKey }) } }, actor);
      const [updated] = events;
      if (updated?.type !== 'EntryUpdated') throw new Error('an entry update decided no update');
      return { id: entryId, data, createdAt: updated.data.createdAt, updatedAt: now };
    },
    async delete(actor: TableActor, table: string, entryId: string): Promise<{ id: string }> {
      checkName(table);
      checkEntryId(entryId);
      await execute({ type: 'DeleteEntry', data: { accountId: actor.accountId, table, at: at(), entryId, ...(actor.onlyKey !== undefined && { onlyKey: actor.onlyKey }) } }, actor);
      return { id: entryId };
    },
    /**
     * Entries of the account's table matching `filter` (over the entry's fields), sorted, from `skip`, at most `limit`;
     * only those the API key `onlyKey` wrote when given (a restricted key's: steps see the whole table).
     */
    async find(accountId: string, table: string, query: { filter?: unknown; sort?: unknown; skip?: number; limit: number }, onlyKey?: string): Promise<EntryView[]> {
      const filter = entryFilter(query.filter);
      const sort = entrySort(query.sort);
      const { _id: id } = await tableOf(accountId, table);
      return (await queries.entries(id, filter, { sort, skip: query.skip ?? 0, limit: query.limit }, onlyKey)).map(entryView);
    },
    /**
     * Find-or-create: the first entry matching `match`, or a new one (`entryId`, derived, so a repeated attempt finds
     * the entry it made). One at a time per table in this process, so two at once cannot both create: each insert
     * returns only once the read models hold it, and the next find runs after. (Steps run only on the holder of the `workflows` lease, so this covers every process; two holders never overlap while the lease works.)
     */
    upsert(actor: TableActor, table: string, match: unknown, entry: unknown, entryId: string): Promise<{ entry: EntryView; created: boolean }> {
      checkName(table);
      return oneUpsertAtATimePerTable(tableStream(actor.accountId, table), async () => {
        const [found] = await owned.find(actor.accountId, table, { filter: match, limit: 1 });
        if (found) return { entry: found, created: false };
        return { entry: await owned.insert(actor, table, entry, entryId), created: true };
      });
    },
  };

  return {
    limits,
    /** Create a table of the caller's account (designers and admins). */
    async createTable(caller: Caller, name: string): Promise<TableView> {
      requireDesigner(caller);
      checkName(name);
      const actor = actorOf(caller);
      // From the read model: two creates racing at the limit may both pass, which a soft limit tolerates.
      const count = await queries.countForAccount(actor.accountId);
      if (count >= limits.maxTablesPerAccount) {
        throw new ConflictError(`The account has the maximum of ${limits.maxTablesPerAccount} tables; drop one first`, { reason: 'too_many_tables', limit: limits.maxTablesPerAccount });
      }
      const tableId = newId('tbl');
      const now = at();
      await execute({ type: 'CreateTable', data: { accountId: actor.accountId, table: name, at: now, tableId } }, actor);
      return { id: tableId, name, entryCount: 0, createdAt: now };
    },
    /**
     * Drop a table and its entries (designers and admins); its name may be used again. Not while a workflow of the
     * account names it literally (saving one that names a missing table is refused): its runs would fail NOT_FOUND, so
     * CONFLICT names the first few, to change or delete first. Exact within a process (the drop and those saves take
     * the account's turn, each until the read models hold it); soft across processes, as the table limit.
     */
    async dropTable(caller: Caller, name: string): Promise<{ id: string; name: string }> {
      requireDesigner(caller);
      checkName(name);
      const actor = actorOf(caller);
      return deps.tableTurn(actor.accountId, async () => {
        const naming = await deps.workflowsNaming(actor.accountId, name);
        // A missing table is NOT_FOUND (the decider's), even if a workflow saved before that check names it.
        if (naming.length > 0 && (await queries.byName(actor.accountId, name))) throw tableInUse(name, naming);
        const { events } = await execute({ type: 'DropTable', data: { accountId: actor.accountId, table: name, at: at() } }, actor);
        const [dropped] = events;
        if (dropped?.type !== 'TableDropped') throw new Error('a table drop decided no drop');
        return { id: dropped.data.tableId, name };
      });
    },
    insertEntry: (caller: Caller, table: string, entry: unknown) => owned.insert(actorOf(caller), table, entry),
    updateEntry: (caller: Caller, table: string, entryId: string, entry: unknown) => owned.update(actorOf(caller), table, entryId, entry),
    deleteEntry: (caller: Caller, table: string, entryId: string) => owned.delete(actorOf(caller), table, entryId),
    /**
     * The tables of an account (the caller's own; admins may name another). A restricted key's counts are of the entries
     * it wrote.
     */
    async tables(principal: Principal, accountId: string): Promise<TableView[]> {
      const docs = await queries.forAccount(accountId);
      const onlyKey = onlyOwnKey(principal);
      if (onlyKey === undefined) return docs.map(tableView);
      return Promise.all(docs.map(async (doc) => ({ ...tableView(doc), entryCount: await queries.countWrittenBy(doc._id, onlyKey) })));
    },
    /** Entries of a table of an account (the caller's own; admins may name another): a restricted key's, those it wrote. */
    entries: (principal: Principal, accountId: string, table: string, query: { filter?: unknown; sort?: unknown; skip?: number; limit: number }): Promise<EntryView[]> =>
      owned.find(accountId, table, query, onlyOwnKey(principal)),
    /** What workflow steps call: the workflow owner's tables, written as its runs. */
    owned,
  };
};

export type TablesApi = ReturnType<typeof createTablesApi>;
