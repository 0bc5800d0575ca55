/**
 * The embedded EventStore adapter: one SQLite file (better-sqlite3, WAL mode).
 *
 * Positions are SQLite row ids. Writers are serialised by SQLite (`BEGIN IMMEDIATE`; concurrent appends share one
 * transaction, see group commit below) and
 * a new row id is always max(row id) + 1, so positions grow in commit order: once a reader sees position P, every
 * position below P is committed too. Subscriptions rely on this to never skip an event.
 *
 * Several processes may open the same file: appends stay correct (the expected-revision check and the insert run
 * under the write lock), and subscribers notice other processes' appends by polling the head position.
 *
 * `readStream` on a stream that does not exist returns `[]` (no error), as the EventStoreDB adapter does.
 * Appending an empty list only checks the expected revision and returns the stream's current revision (-1 when
 * the stream does not exist) and the position of its last event (0 when none).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConflictError, UnavailableError, WrongExpectedVersionError } from '../errors.js';
import type {
  AllFilter,
  AppendResult,
  Durability,
  EventMetadata,
  EventStore,
  ExpectedRevision,
  NewEvent,
  RecordedEvent,
  Subscription,
  SubscriptionMessage,
} from './eventStore.js';
import { startBackgroundCheckpointer } from '../sqlite/backgroundCheckpointer.js';
import { ensurePrivateDatabaseFile, ensurePrivateDir } from '../sqlite/privateFiles.js';
import { ALREADY_DURABLE, streamCategory } from './eventStore.js';

export interface SqliteEventStoreOptions {
  readonly dir: string;
  /** File name inside `dir`. Default `events.db`. */
  readonly file?: string;
  /**
   * `full` (default): an append is acknowledged only once the WAL bytes holding it are on disk, so it survives a
   * power loss. The connection itself commits with SQLite's NORMAL (no fsync inside the commit, which would block
   * the event loop); the WAL is fsynced on libuv's thread pool, one fsync covering every commit made since the last
   * one started (group commit), and each append resolves when the fsync covering it is done.
   * `normal`: acknowledged at commit; the WAL is fsynced only at checkpoints. Acknowledged appends survive a process
   * crash (kill -9), but those since the last checkpoint may be lost on power loss.
   */
  readonly synchronous?: 'full' | 'normal';
  /**
   * A reader connection (the storage thread's): its subscriptions, `readAll` and head read only up to this position.
   * The storage thread passes the request thread's durable position, so no read model is built from an event a power
   * loss could still take back. A connection given this never appends and runs no fsyncs of its own.
   */
  readonly visibleUpTo?: () => number;
  /** How often live subscribers look for appends made by other processes. Default 50 ms. */
  readonly pollIntervalMs?: number;
  /** How long an append waits for another process's write lock before failing. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /**
   * Run WAL checkpoints on a background thread (default true). A second connection to the same file in this process
   * (the storage thread's) passes false: one checkpointer per file is enough.
   */
  readonly backgroundCheckpoints?: boolean;
  /**
   * SQLite page cache of this connection in MiB. Default 16. Appends touch only the right edges of the table and its
   * indexes (event ids, generation ids and positions are time-ordered), so a small cache holds what they need; every
   * page an append writes enters the cache, so a larger one only filled with pages nobody reads again (64 MiB cost
   * ~40 MiB more RSS in the gateway bench, for the same CPU per request).
   */
  readonly cacheMiB?: number;
}

/** The embedded store, plus hooks to tie two connections of one process together without polling. */
export interface SqliteEventStore extends EventStore {
  /**
   * Hear the head position after this connection's appends are acknowledged: at each commit with `normal`, at each
   * completed fsync with `full` (the position is then durable).
   */
  onAppended(listener: (position: number) => void): void;
  /** Counters for the benchmarks and the power-loss tests. */
  writeStats(): WriteStats;
  /** Another connection in this process appended: wake the subscribers to look for the new events. */
  notifyAppended(): void;
}

export interface WriteStats {
  /** SQLite transactions committed by this connection's appends. */
  readonly commits: number;
  /** fsyncs of the WAL made by this store off the event loop (`full` only; SQLite's own at checkpoints not counted). */
  readonly syncs: number;
  /** The WAL's size when the last completed fsync started: every byte below it is on disk. */
  readonly syncedWalBytes: number;
  /** The highest position acknowledged to callers (durable with `full`). */
  readonly acknowledgedPosition: number;
}

interface EventRow {
  position: number;
  id: string;
  stream: string;
  revision: number;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position    INTEGER PRIMARY KEY,
  id          TEXT    NOT NULL,
  stream      TEXT    NOT NULL,
  category    TEXT    NOT NULL,
  revision    INTEGER NOT NULL,
  type        TEXT    NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id);
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_revision ON events (stream, revision);
CREATE INDEX IF NOT EXISTS events_category_position ON events (category, position);
-- Filters by event type alone are rare (a projection names its categories); they scan by position instead of
-- every append paying for one more index.
DROP INDEX IF EXISTS events_type_position;
`;

const COLUMNS = 'position, id, stream, revision, type, data, metadata, recorded_at';

/** Metadata is stored as given; `at` defaults to the recorded time when read, which saves a copy per row. */
const toRecorded = (row: EventRow): RecordedEvent => {
  const metadata = JSON.parse(row.metadata) as { at?: string };
  metadata.at ??= row.recorded_at;
  return {
    id: row.id,
    stream: row.stream,
    revision: row.revision,
    position: row.position,
    type: row.type,
    data: JSON.parse(row.data) as unknown,
    metadata: metadata as EventMetadata,
    recordedAt: row.recorded_at,
  };
};

/**
 * A random UUID whose first 48 bits are the time in ms (the UUIDv7 layout). Ids generated in one append share a
 * prefix, so they land on the same pages of the unique id index instead of dirtying one random page per event:
 * that halves the bytes written per batched append.
 */
const timeOrderedUuid = (): string => {
  const time = Date.now().toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
};

/** The categories and event types a commit wrote (or the commits one fsync covers): which subscribers to wake. */
interface WrittenKinds {
  readonly categories: Set<string>;
  readonly types: Set<string>;
}
const newWritten = (): WrittenKinds => ({ categories: new Set(), types: new Set() });

const sqliteCode = (error: unknown): string | undefined => (error instanceof Database.SqliteError ? error.code : undefined);

export const openSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore => {
  ensurePrivateDir(options.dir);
  const file = join(options.dir, options.file ?? 'events.db');
  ensurePrivateDatabaseFile(file);
  const pollIntervalMs = options.pollIntervalMs ?? 50;

  const db = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
  db.pragma('journal_mode = WAL');
  const reader = options.visibleUpTo !== undefined;
  const durable = options.synchronous !== 'normal' && !reader;
  // Never FULL: that fsyncs inside every commit, on the event loop (better-sqlite3 is synchronous); measured at
  // ~0.3-2.5 ms per commit on this project's VM, several commits per request. `full` makes commits durable with its
  // own fsyncs off the event loop instead (see `sync` below). NORMAL still fsyncs the WAL before every checkpoint
  // copies it into the database file, so a checkpoint never makes anything durable out of order.
  db.pragma('synchronous = NORMAL');
  db.pragma(`cache_size = -${(options.cacheMiB ?? 16) * 1024}`);
  db.pragma('temp_store = MEMORY');
  // Checkpoints run in a worker thread (see backgroundCheckpointer.ts), never inside an append on the event loop.
  db.pragma('wal_autocheckpoint = 0');
  const checkpointer = options.backgroundCheckpoints === false ? null : startBackgroundCheckpointer(file);
  db.pragma('journal_size_limit = 67108864');
  db.exec(SCHEMA);

  const selectHead = db.prepare<[], { head: number | null }>('SELECT max(position) AS head FROM events');
  const selectStreamHead = db.prepare<[string], { revision: number; position: number }>(
    'SELECT revision, position FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1',
  );
  const selectById = db.prepare<[string], { stream: string; revision: number; position: number }>(
    'SELECT stream, revision, position FROM events WHERE id = ?',
  );
  const insert = db.prepare<[string, string, string, number, string, string, string, string]>(
    'INSERT INTO events (id, stream, category, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const readForwards = db.prepare<[string, number, number], EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`,
  );
  const readBackwards = db.prepare<[string, number, number], EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`,
  );

  /**
   * Filtered reads drive one indexed range query per category (or per event type when no categories are given)
   * and merge by position: a single `category IN (...) ORDER BY position` would sort the whole range.
   */
  const allStatements = new Map<string, Database.Statement<unknown[], EventRow>>();
  const allStatement = (driver: 'category' | 'type' | undefined, typeCount: number | undefined) => {
    const key = `${driver}:${typeCount}`;
    let statement = allStatements.get(key);
    if (!statement) {
      const where = ['position > ?', 'position <= ?'];
      if (driver) where.push(`${driver} = ?`);
      if (typeCount !== undefined) where.push(`type IN (${Array.from({ length: typeCount }, () => '?').join(', ')})`);
      statement = db.prepare<unknown[], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY position LIMIT ?`,
      );
      allStatements.set(key, statement);
    }
    return statement;
  };
  /**
   * A short range read by position alone, the filter tested on each row: live subscribers read a few new events per
   * wake-up, and one range scan costs less than one indexed query per category (five for the event triggers).
   */
  const tailStatements = new Map<string, Database.Statement<unknown[], EventRow>>();
  const tailStatement = (categoryCount: number, typeCount: number) => {
    const key = `${categoryCount}:${typeCount}`;
    let statement = tailStatements.get(key);
    if (!statement) {
      const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');
      const where = ['position > ?', 'position <= ?'];
      // The unary + keeps SQLite on the position range instead of the category index.
      if (categoryCount > 0) where.push(`+category IN (${marks(categoryCount)})`);
      if (typeCount > 0) where.push(`type IN (${marks(typeCount)})`);
      statement = db.prepare<unknown[], EventRow>(`SELECT ${COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY position LIMIT ?`);
      tailStatements.set(key, statement);
    }
    return statement;
  };
  /** Up to this many positions, a filtered read scans the range (see tailStatement). */
  const TAIL_SCAN = 256;
  const selectAll = (after: number, upTo: number, limit: number, filter: AllFilter | undefined): RecordedEvent[] => {
    const categories = filter?.categories;
    const types = filter?.eventTypes;
    if (!categories && !types) return allStatement(undefined, undefined).all(after, upTo, limit).map(toRecorded);
    // An empty list matches nothing.
    if (categories?.length === 0 || types?.length === 0) return [];
    if (upTo - after <= TAIL_SCAN) {
      return tailStatement(categories?.length ?? 0, types?.length ?? 0)
        .all(after, upTo, ...(categories ?? []), ...(types ?? []), limit)
        .map(toRecorded);
    }
    const driver = categories ? 'category' : 'type';
    const keys = [...new Set(categories ?? types)];
    const otherTypes = categories ? types : undefined;
    const statement = allStatement(driver, otherTypes?.length);
    const rows = keys.flatMap((key) => statement.all(after, upTo, key, ...(otherTypes ?? []), limit));
    if (keys.length > 1) {
      rows.sort((a, b) => a.position - b.position);
      if (limit >= 0 && rows.length > limit) rows.length = limit;
    }
    return rows.map(toRecorded);
  };

  const head = (): number => selectHead.get()?.head ?? 0;

  /**
   * Durability for `full`: the WAL is fsynced on libuv's thread pool (fs.fdatasync on a descriptor of our own for
   * the -wal file; on Linux an fsync covers the file's bytes whoever wrote them). One fsync is in flight at a time;
   * commits made meanwhile wait for the next one, so under load one fsync covers many commits. What a commit
   * wrote is in the file when the commit returns, so an fsync started after it covers it: `sync` notes the head
   * and the WAL's size before it starts, and once it is done everything up to that head is durable.
   */
  const walFd = durable ? openSync(`${file}-wal`, constants.O_RDWR | constants.O_CREAT, 0o600) : -1;
  // What an earlier run left in the WAL (a kill -9 leaves it in the page cache only) is made durable before it is
  // served: an fsync at open, on the event loop once, before any request.
  if (durable) fdatasyncSync(walFd);
  /** With `full`: every position up to this is on disk. With `normal`: the head at the last commit. */
  let acknowledged = head();
  let syncing = false;
  let closedFd = false;
  let syncedWalBytes = durable ? fstatSync(walFd).size : 0;
  let commits = 0;
  let syncs = 0;
  /** Set when an fsync failed: what the WAL holds on disk is then unknown, and every later append is refused. */
  let syncFailure: Error | undefined;
  type AwaitingSync = { position: number; resolve: () => void; reject: (error: unknown) => void };
  /**
   * Categories and event types committed since the last fsync started (`full`): the fsync that covers them wakes only
   * the subscribers filtering for them. Waking every subscriber at every fsync (several hundred a second under load) made each one
   * query its categories for nothing.
   */
  let writtenSinceSync = newWritten();
  let awaitingSync: AwaitingSync[] = [];
  /** Subscriptions and the head never show more than was acknowledged (in `full`: more than is on disk). */
  const visibleHead = (): number => Math.min(head(), reader ? options.visibleUpTo!() : durable ? acknowledged : Number.MAX_SAFE_INTEGER);

  const sync = () => {
    if (syncing || closedFd) return;
    syncing = true;
    const covers = head();
    const walBytes = fstatSync(walFd).size;
    const written = writtenSinceSync;
    writtenSinceSync = newWritten();
    fdatasync(walFd, (error) => {
      syncing = false;
      // Closed meanwhile: close() made the WAL durable itself and answered every waiting append.
      if (closedFd) return;
      syncs += 1;
      const waiting = awaitingSync;
      if (error) {
        // After a failed fsync the kernel may have dropped the dirty pages: nothing since the last good fsync can be
        // promised, now or by a retry. Refuse everything from here on; a restart reopens from what is on disk.
        syncFailure = new UnavailableError(`The event store could not write its log to disk (${error.code ?? error.message}); restart the server`);
        awaitingSync = [];
        for (const a of waiting) a.reject(syncFailure);
        return;
      }
      syncedWalBytes = walBytes;
      const previous = acknowledged;
      acknowledged = Math.max(acknowledged, covers);
      awaitingSync = waiting.filter((a) => a.position > acknowledged);
      for (const a of waiting) if (a.position <= acknowledged) a.resolve();
      if (acknowledged > previous) {
        wakeUpTo(acknowledged, written);
        for (const listener of appendedListeners) listener(acknowledged);
      }
      // Appends made in reaction to these acknowledgements are committed in this turn, as after a commit (see
      // followUp); then the next fsync covers them and whatever was committed while this one ran.
      following = true;
      queueMicrotask(() => followUp(FOLLOW_UP_HOPS, 1));
    });
  };

  type Written = Omit<AppendResult, 'durable'> & { written: boolean };
  /** One append, inside the group's transaction: checks the expected revision, then inserts. */
  const appendInTx = (stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Written => {
    // A retry of an append that already succeeded: every id is already in this stream.
    const firstId = events[0]?.id;
    if (firstId !== undefined && selectById.get(firstId)) {
      const found = events.map((event) => (event.id === undefined ? undefined : selectById.get(event.id)));
      if (found.every((row) => row?.stream === stream)) {
        const rows = found as { revision: number; position: number }[];
        return {
          nextExpectedRevision: Math.max(...rows.map((row) => row.revision)),
          position: Math.max(...rows.map((row) => row.position)),
          written: false,
        };
      }
      throw new ConflictError(`Append to ${stream} reuses event ids that already exist`, { stream });
    }

    const current = selectStreamHead.get(stream);
    const currentRevision = current?.revision ?? -1;
    const actual = current ? current.revision : 'no_stream';
    const ok =
      expected === 'any' ||
      (expected === 'no_stream' && !current) ||
      (expected === 'stream_exists' && current !== undefined) ||
      expected === currentRevision;
    if (!ok) throw new WrongExpectedVersionError(stream, expected, actual);

    const category = streamCategory(stream);
    const recordedAt = new Date().toISOString();
    let position = current?.position ?? 0;
    events.forEach((event, i) => {
      const info = insert.run(
        event.id ?? timeOrderedUuid(),
        stream,
        category,
        currentRevision + 1 + i,
        event.type,
        JSON.stringify(event.data ?? null),
        event.metadata ? JSON.stringify(event.metadata) : '{}',
        recordedAt,
      );
      position = Number(info.lastInsertRowid);
    });
    return { nextExpectedRevision: currentRevision + events.length, position, written: events.length > 0 };
  };
  /** The same in a savepoint of its own, for appends whose inserts can fail part-way (see groupTx). */
  const appendInSavepoint = db.transaction(appendInTx);

  // Live subscribers park here until the head moves past the position they have read up to.
  /** `categories`, `types`: the subscriber's filter (null: every event concerns it). */
  type Waiter = { after: number; categories: ReadonlySet<string> | null; types: ReadonlySet<string> | null; wake: () => void };
  const waiters = new Set<Waiter>();
  let pollTimer: NodeJS.Timeout | undefined;
  /**
   * Wake the subscribers behind `position`; given the categories and event types just written, only those whose
   * filter may match one of them (a reservation's commit does not wake the event triggers, which skip its type).
   */
  const wakeUpTo = (position: number, written?: WrittenKinds) => {
    for (const waiter of waiters) {
      if (waiter.after >= position) continue;
      if (written && waiter.categories && ![...written.categories].some((c) => waiter.categories!.has(c))) continue;
      if (written && waiter.types && ![...written.types].some((t) => waiter.types!.has(t))) continue;
      waiter.wake();
    }
  };
  // Polling runs only while someone waits: it is how appends by other processes reach this process.
  const poll = () => {
    if (waiters.size === 0 || closed) {
      clearInterval(pollTimer);
      pollTimer = undefined;
      return;
    }
    if (durable && head() > acknowledged) sync();
    wakeUpTo(visibleHead());
  };
  const waitForHeadAbove = (after: number, categories: ReadonlySet<string> | null, types: ReadonlySet<string> | null, signal: { closed: boolean; wake?: () => void }) =>
    new Promise<void>((resolve) => {
      if (signal.closed || visibleHead() > after) return resolve();
      const waiter: Waiter = {
        after,
        categories,
        types,
        wake: () => {
          waiters.delete(waiter);
          signal.wake = undefined;
          resolve();
        },
      };
      signal.wake = waiter.wake;
      waiters.add(waiter);
      if (!pollTimer) {
        pollTimer = setInterval(poll, pollIntervalMs);
        pollTimer.unref();
      }
    });

  /**
   * Group commit: appends made while the event loop is busy are written in one transaction (an append whose inserts
   * can fail part-way in a savepoint of its own, so it does not affect the others). With `normal` every append is
   * acknowledged at that commit; with `full` once an fsync after it is done (see `sync`), so appends committed while
   * an fsync runs share the next one. An append costs one event-loop turn, plus the fsync's wait off the loop.
   */
  type PendingAppend = {
    stream: string;
    events: readonly NewEvent[];
    expectedRevision: ExpectedRevision;
    durability: Durability;
    resolve: (result: AppendResult) => void;
    reject: (error: unknown) => void;
  };
  let pending: PendingAppend[] = [];
  /**
   * Only caller-chosen event ids can make an insert fail after others went in (an id already used): such appends run
   * in a savepoint of their own, so their failure undoes only them. Any other append fails, if at all, on its
   * expected revision before it writes anything, and needs no savepoint (two statements fewer per append); an
   * unexpected SQLite error inside one aborts the whole group, whose appends are then all rejected.
   */
  const groupTx = db.transaction((batch: PendingAppend[]) =>
    batch.map((p): { ok: Written } | { error: unknown } => {
      const callerIds = p.events.some((event) => event.id !== undefined);
      try {
        return { ok: (callerIds ? appendInSavepoint : appendInTx)(p.stream, p.events, p.expectedRevision) };
      } catch (error) {
        if (callerIds || error instanceof WrongExpectedVersionError) return { error };
        throw error;
      }
    }),
  );
  const translate = (error: unknown, stream: string): unknown => {
    const code = sqliteCode(error);
    if (code === 'SQLITE_CONSTRAINT_UNIQUE') return new ConflictError(`Append to ${stream} reuses event ids that already exist`, { stream });
    // Another process held the write lock for longer than the busy timeout.
    if (code === 'SQLITE_BUSY') return new UnavailableError('The event store is busy', { stream });
    return error;
  };
  /**
   * After a commit, appends made by the promise jobs it set off (a ledger writer deciding its next batch on the
   * result) are committed once more at the end of those jobs, in the same turn, instead of waiting a whole turn of
   * the event loop: under load a turn is several milliseconds, and a hot account's writer paid one per batch.
   */
  const FOLLOW_UP_HOPS = 8;
  /** Follow-ups in a row: bounded, so a writer that keeps reacting to its own commits cannot hold the turn. */
  const MAX_FOLLOW_UPS = 4;
  let following = false;
  const followUp = (hops: number, depth: number) => {
    if (hops > 0) return queueMicrotask(() => followUp(hops - 1, depth));
    following = false;
    if (pending.length > 0) flush(depth);
    else if (awaitingSync.length > 0) sync();
  };
  /** `depth`: how many follow-up commits precede this one in the current turn. */
  const flush = (depth = 0) => {
    // A follow-up committed what the scheduled flush was for: no empty transaction (it would take the write lock).
    if (pending.length === 0) return;
    if (depth < MAX_FOLLOW_UPS) {
      following = true;
      queueMicrotask(() => followUp(FOLLOW_UP_HOPS, depth + 1));
    }
    const batch = pending;
    pending = [];
    if (closed) {
      for (const p of batch) p.reject(new UnavailableError('The event store is closed'));
      return;
    }
    if (syncFailure) {
      for (const p of batch) p.reject(syncFailure);
      return;
    }
    let results: ReturnType<typeof groupTx>;
    try {
      results = groupTx.immediate(batch);
    } catch (error) {
      for (const p of batch) p.reject(translate(error, p.stream));
      return;
    }
    commits += 1;
    let highest = 0;
    const written = newWritten();
    results.forEach((result, i) => {
      const p = batch[i]!;
      // A refusal promises nothing about the disk: answered at once.
      if ('error' in result) return p.reject(translate(result.error, p.stream));
      if (result.ok.written) {
        highest = Math.max(highest, result.ok.position);
        written.categories.add(streamCategory(p.stream));
        for (const event of p.events) written.types.add(event.type);
      }
      const committed = { nextExpectedRevision: result.ok.nextExpectedRevision, position: result.ok.position };
      // With `normal` the store promises nothing beyond the commit: durable at once.
      if (!durable) return p.resolve({ ...committed, durable: ALREADY_DURABLE });
      // With `full`, a retry that found its events already written waits for them to be on disk too.
      if (p.durability === 'durable') {
        return void awaitingSync.push({ position: committed.position, resolve: () => p.resolve({ ...committed, durable: ALREADY_DURABLE }), reject: p.reject });
      }
      // `commit`: answered now; its durability resolves with the fsync that covers it, like a `durable` append.
      const durableOnDisk = new Promise<void>((resolve, reject) => awaitingSync.push({ position: committed.position, resolve, reject }));
      // A caller that does not wait for durability must not turn a failed fsync into an unhandled rejection.
      durableOnDisk.catch(() => undefined);
      p.resolve({ ...committed, durable: durableOnDisk });
    });
    if (durable) {
      for (const category of written.categories) writtenSinceSync.categories.add(category);
      for (const type of written.types) writtenSinceSync.types.add(type);
      if (awaitingSync.length > 0) sync();
    } else if (highest > 0) {
      acknowledged = Math.max(acknowledged, highest);
      wakeUpTo(highest, written);
      for (const listener of appendedListeners) listener(highest);
    }
  };
  const appendedListeners: ((position: number) => void)[] = [];

  const subscriptions = new Set<Subscription>();
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new UnavailableError('The event store is closed');
    if (syncFailure) throw syncFailure;
  };

  const store: SqliteEventStore = {
    kind: 'embedded',
    onAppended: (listener) => void appendedListeners.push(listener),
    notifyAppended: () => wakeUpTo(visibleHead()),
    writeStats: () => ({ commits, syncs, syncedWalBytes, acknowledgedPosition: acknowledged }),

    append(stream, events, { expectedRevision = 'any', durability = 'durable' } = {}) {
      assertOpen();
      return new Promise<AppendResult>((resolve, reject) => {
        pending.push({ stream, events, expectedRevision, durability, resolve, reject });
        if (pending.length === 1 && !following) setImmediate(() => flush());
      });
    },

    async readStream(stream, { direction = 'forwards', fromRevision, maxCount = -1 } = {}) {
      assertOpen();
      const rows =
        direction === 'forwards'
          ? readForwards.all(stream, fromRevision ?? 0, maxCount)
          : readBackwards.all(stream, fromRevision ?? Number.MAX_SAFE_INTEGER, maxCount);
      return rows.map(toRecorded);
    },

    async readAll({ after = 0, maxCount = -1, filter } = {}) {
      assertOpen();
      return selectAll(after, visibleHead(), maxCount, filter);
    },

    subscribeToAll({ after = 0, filter, batchSize: requestedBatchSize = 1000 } = {}) {
      const batchSize = Math.max(1, requestedBatchSize);
      const categories = filter?.categories ? new Set(filter.categories) : null;
      const types = filter?.eventTypes ? new Set(filter.eventTypes) : null;
      const signal: { closed: boolean; wake?: () => void } = { closed: false };
      const isClosed = () => signal.closed || closed;

      async function* run(): AsyncGenerator<SubscriptionMessage> {
        let cursor = after;
        let caughtUp = false;
        try {
          while (!isClosed()) {
            // Reading the head first, then only rows up to it, lets the cursor jump past filtered-out events.
            const upTo = visibleHead();
            const events = upTo > cursor ? selectAll(cursor, upTo, batchSize, filter) : [];
            const full = events.length === batchSize;
            cursor = full ? events[events.length - 1]!.position : Math.max(cursor, upTo);
            if (events.length > 0) yield { kind: 'events', events };
            if (full || isClosed()) continue;
            if (!caughtUp) {
              caughtUp = true;
              yield { kind: 'caughtUp', position: cursor };
              continue;
            }
            await waitForHeadAbove(cursor, categories, types, signal);
          }
        } finally {
          subscriptions.delete(subscription);
        }
      }

      let iterator: AsyncGenerator<SubscriptionMessage> | undefined;
      const subscription: Subscription = {
        [Symbol.asyncIterator]: () => (iterator ??= run()),
        async close() {
          signal.closed = true;
          signal.wake?.();
          subscriptions.delete(subscription);
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    async headPosition() {
      assertOpen();
      return visibleHead();
    },

    async health() {
      if (closed) return { ok: false, kind: 'embedded', detail: `${file} (closed)` };
      try {
        db.prepare('SELECT 1').get();
        return { ok: true, kind: 'embedded', detail: file, writes: { commits, syncs } };
      } catch (error) {
        return { ok: false, kind: 'embedded', detail: `${file}: ${(error as Error).message}` };
      }
    },

    async close() {
      if (closed) return;
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      // Appends already accepted are written before the file closes.
      if (pending.length > 0) flush(MAX_FOLLOW_UPS);
      closed = true;
      if (durable) {
        // The appends still waiting for an fsync get it now, before the file closes.
        const waiting = awaitingSync;
        awaitingSync = [];
        try {
          fdatasyncSync(walFd);
          for (const a of waiting) a.resolve();
        } catch (error) {
          for (const a of waiting) a.reject(error);
        }
        closedFd = true;
        closeSync(walFd);
      }
      clearInterval(pollTimer);
      pollTimer = undefined;
      await checkpointer?.stop();
      db.close();
    },
  };
  return store;
};
