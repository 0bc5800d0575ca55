/**
 * The embedded EventStore adapter: one SQLite file (better-sqlite3, WAL mode).
 *
 * Appends run on a writer thread of their own (sqliteWriter.ts): this connection, on the calling thread, only reads.
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
import { closeSync, constants, fdatasyncSync, fstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { asStorageError, ConflictError, UnavailableError, WrongExpectedVersionError } from '../errors.js';
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
  Urgency,
} from './eventStore.js';
import { startBackgroundCheckpointer } from '../sqlite/backgroundCheckpointer.js';
import { ensurePrivateDatabaseFile, ensurePrivateDir, openingDataFile } from '../sqlite/privateFiles.js';
import { ALREADY_DURABLE, streamCategory, UnreadableEventError } from './eventStore.js';
import { startWriter, type WireAppend, type WireFailure, type WireResult, type Writer, type WriterReply } from './sqliteWriter.js';

export interface SqliteEventStoreOptions {
  readonly dir: string;
  /** File name inside `dir`. Default `events.db`. */
  readonly file?: string;
  /**
   * `full` (default): an append is acknowledged only once the WAL bytes holding it are on disk, so it survives a
   * power loss. The writer thread commits with SQLite's NORMAL (no fsync inside the commit) and its sync thread fsyncs
   * the WAL after its commits, one fsync at a time covering every commit made since the last one started (group
   * commit); each append resolves when the fsync covering it is done.
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
  /**
   * Whether other processes may append to this file (default true): live subscribers then look for their appends
   * every `pollIntervalMs`. The server's embedded storage passes false: it holds DATA_DIR's lock, so every append is
   * its own, and each wakes the subscribers it concerns when acknowledged (the storage thread's reader connection is
   * told by `notifyAppended`). Polling anyway cost the request thread a head query and a read per follower 20 times a
   * second (~3% of its time at 500 requests/s).
   */
  readonly otherWriters?: boolean;
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
  /**
   * How long `soon` appends (see AppendOptions.urgency) wait in this process for an urgent append to go to the writer
   * with: one message, one commit and one fsync for both. Default 25 ms, the ledger's hold (its SOON_HOLD_MS says why).
   */
  readonly soonHoldMs?: number;
  /** Tests: each fsync of `full` starts this much later, as on a slow disk. Default 0. */
  readonly syncDelayMs?: number;
  /**
   * Power-loss tests: read the WAL's size before each fsync (`writeStats().syncedWalBytes`, where they cut it), and
   * never checkpoint on the writer thread (a rewind would leave the WAL's size where it was, naming no point). Off by
   * default, because the read is not free: on a file system with fine-grained timestamps (Linux 6.13+) a stat makes
   * the next write stamp the file's times anew, and the fsync after it then writes the inode too. In the gateway
   * bench at concurrency 1 (ext4) every fsync wrote the inode with it (0.29 of them without), and the fsync took
   * 260-350 µs p50 against 190-200 µs.
   */
  readonly measureWal?: boolean;
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
  /** With `measureWal`, the WAL's size when the last completed fsync started: every byte below it is on disk. */
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
 * A row whose data or metadata is not JSON (a damaged page, a hand edit): typed, naming the event, so that the
 * command that loads its stream answers 503 saying so, /health reports it, and the CLIs stop on it.
 */
const unreadableEvent = (row: EventRow, cause: unknown): UnreadableEventError =>
  new UnreadableEventError(
    { position: row.position, stream: row.stream, revision: row.revision, type: row.type },
    `${cause instanceof Error ? cause.message : String(cause)}; restore events.db from a backup`,
  );

/** The categories and event types a commit wrote (or the commits one fsync covers): which subscribers to wake. */
interface WrittenKinds {
  readonly categories: Set<string>;
  readonly types: Set<string>;
}
/**
 * The background checkpointer's pass (every 250 ms) copies the WAL into the database file off the writer thread; the
 * writer finishes a pass between its commits now and then, so that the WAL is rewound (see its checkpoint in
 * sqliteWriter.ts).
 */
const CHECKPOINT_INTERVAL_MS = 250;

const newWritten = (): WrittenKinds => ({ categories: new Set(), types: new Set() });

/** The event log's file in DATA_DIR. */
export const EVENTS_FILE = 'events.db';

export const openSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore => {
  ensurePrivateDir(options.dir);
  const file = join(options.dir, options.file ?? EVENTS_FILE);
  ensurePrivateDatabaseFile(file);
  const pollIntervalMs = options.pollIntervalMs ?? 50;
  const otherWriters = options.otherWriters ?? true;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const cacheMiB = options.cacheMiB ?? 16;

  // Its first write (the journal mode) too: a file or -wal SQLite cannot write fails the start naming it.
  const db = openingDataFile(file, () => {
    const opened = new Database(file, { timeout: busyTimeoutMs });
    opened.pragma('journal_mode = WAL');
    return opened;
  });
  /** The first event this store could not decode: /health reports it until the process restarts. */
  let unreadable: UnreadableEventError | null = null;
  const decode = (row: EventRow): RecordedEvent => {
    try {
      return toRecorded(row);
    } catch (cause) {
      const error = unreadableEvent(row, cause);
      unreadable ??= error;
      throw error;
    }
  };
  const reader = options.visibleUpTo !== undefined;
  const durable = options.synchronous !== 'normal' && !reader;
  // Never FULL: that fsyncs inside every commit. Appends commit on the writer thread (sqliteWriter.ts), with NORMAL;
  // `full` makes them durable with its sync thread's fsync after the commit. NORMAL still fsyncs the WAL before every
  // checkpoint copies it into the database file, so a checkpoint never makes anything durable out of order.
  db.pragma('synchronous = NORMAL');
  db.pragma(`cache_size = -${cacheMiB * 1024}`);
  db.pragma('temp_store = MEMORY');
  // Checkpoints run in a worker thread (see backgroundCheckpointer.ts), never inside an append.
  db.pragma('wal_autocheckpoint = 0');
  const checkpointPasses = options.backgroundCheckpoints === false ? null : new SharedArrayBuffer(8);
  const checkpointer = checkpointPasses && startBackgroundCheckpointer(file, { intervalMs: CHECKPOINT_INTERVAL_MS, passes: checkpointPasses });
  db.pragma('journal_size_limit = 67108864');
  db.exec(SCHEMA);

  const selectHead = db.prepare<[], { head: number | null }>('SELECT max(position) AS head FROM events');
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
    if (!categories && !types) return allStatement(undefined, undefined).all(after, upTo, limit).map(decode);
    // An empty list matches nothing.
    if (categories?.length === 0 || types?.length === 0) return [];
    if (upTo - after <= TAIL_SCAN) {
      return tailStatement(categories?.length ?? 0, types?.length ?? 0)
        .all(after, upTo, ...(categories ?? []), ...(types ?? []), limit)
        .map(decode);
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
    return rows.map(decode);
  };

  const head = (): number => selectHead.get()?.head ?? 0;

  // What an earlier run left in the WAL (a kill -9 leaves it in the page cache only) is made durable before it is
  // served: an fsync at open, once, before any request.
  let syncedWalBytes = 0;
  if (durable) {
    openingDataFile(`${file}-wal`, () => {
      const walFd = openSync(`${file}-wal`, constants.O_RDWR | constants.O_CREAT, 0o600);
      try {
        fdatasyncSync(walFd);
        if (options.measureWal) syncedWalBytes = fstatSync(walFd).size;
      } finally {
        closeSync(walFd);
      }
    });
  }
  /**
   * The highest committed position this connection knows of: its own commits as the writer reports them, and other
   * processes' at each poll (and each `headPosition` / `readAll`), instead of asking SQLite at every wake-up.
   */
  let knownHead = head();
  /** With `full`: every position up to this is on disk. With `normal`: the head at the last commit. */
  let acknowledged = knownHead;
  let commits = 0;
  let syncs = 0;
  /** Set when an fsync failed (or the writer thread ended): every later append is refused. */
  let syncFailure: Error | undefined;
  type AwaitingSync = { position: number; resolve: () => void; reject: (error: unknown) => void };
  let awaitingSync: AwaitingSync[] = [];
  /**
   * Categories and event types committed and not yet covered by an fsync's report (`full`), by the highest position of
   * their commit: the fsync that covers a commit wakes only the subscribers filtering for what it wrote. Waking every
   * subscriber at every fsync (several hundred a second under load) made each one query its categories for nothing.
   * Kept by position because an fsync covers only what was committed before it started: what came after waits for
   * the next one (clearing it all at each report lost the wake-up of commits made during the fsync).
   */
  let writtenUnsynced: { position: number; written: WrittenKinds }[] = [];
  /** Subscriptions and the head never show more than was acknowledged (in `full`: more than is on disk). */
  const visibleHead = (): number => (reader ? Math.min(head(), options.visibleUpTo!()) : durable ? acknowledged : knownHead);
  /** The same after asking SQLite for the head (another process may have appended). */
  const freshVisibleHead = (): number => {
    if (!reader) knownHead = Math.max(knownHead, head());
    return visibleHead();
  };

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
  let syncRequested = false;
  // Polling runs only while someone waits: it is how appends by other processes reach this process.
  const poll = () => {
    if (waiters.size === 0 || closed) {
      clearInterval(pollTimer);
      pollTimer = undefined;
      return;
    }
    const visible = freshVisibleHead();
    if (durable && knownHead > acknowledged && !syncRequested && writer && !syncFailure) {
      // Another process's commits: this process shows them once an fsync covers them.
      syncRequested = true;
      writer.send({ kind: 'sync' });
      hold();
    }
    wakeUpTo(visible);
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
      if (!pollTimer && otherWriters) {
        pollTimer = setInterval(poll, pollIntervalMs);
        pollTimer.unref();
      }
    });

  /**
   * Group commit: the appends made in one turn of the event loop go to the writer thread in one message, and the
   * writer commits every message waiting for it in one transaction. With `normal` every append is acknowledged at that
   * commit; with `full` once the sync thread's fsync after it is done, so appends committed while an fsync runs share the
   * next one.
   */
  type PendingAppend = {
    /** The append as the writer takes it, serialised when it was made (for a held `soon` append: after the answer). */
    wire: WireAppend;
    durability: Durability;
    /** When (ms since the epoch) the fsync covering it must start at the latest (AppendOptions.syncWithinMs). */
    syncBy: number;
    resolve: (result: AppendResult) => void;
    reject: (error: unknown) => void;
  };
  let pending: PendingAppend[] = [];
  const inFlight = new Map<number, PendingAppend[]>();
  let nextBatch = 1;
  let closing: (() => void) | undefined;
  let held = false;
  /** The writer thread keeps the process alive only while something waits for it. */
  const hold = () => {
    const wanted = inFlight.size > 0 || awaitingSync.length > 0 || syncRequested || closing !== undefined;
    if (wanted !== held && writer) writer.hold((held = wanted));
  };

  const translate = (failure: WireFailure, stream: string): Error => {
    switch (failure.kind) {
      case 'wrongVersion':
        return new WrongExpectedVersionError(stream, failure.expected, failure.actual);
      case 'conflict':
        return new ConflictError(`Append to ${stream} reuses event ids that already exist`, { stream });
      case 'busy':
        return new UnavailableError('The event store is busy', { stream });
      case 'error':
        return failure.code === undefined ? new Error(failure.message) : asStorageError(Object.assign(new Error(failure.message), { code: failure.code })) as Error;
      default: {
        const _never: never = failure;
        return new Error('unknown failure');
      }
    }
  };

  const failEverything = (error: Error) => {
    syncFailure ??= error;
    const waiting = awaitingSync;
    awaitingSync = [];
    for (const a of waiting) a.reject(error);
    for (const batch of inFlight.values()) for (const p of batch) p.reject(error);
    inFlight.clear();
    syncRequested = false;
  };

  const committed = (batch: PendingAppend[], results: readonly WireResult[]) => {
    let highest = 0;
    const written = newWritten();
    results.forEach((result, i) => {
      const p = batch[i]!;
      // A refusal promises nothing about the disk: answered at once.
      if ('error' in result) return p.reject(translate(result.error, p.wire.stream));
      if (result.ok.written) {
        highest = Math.max(highest, result.ok.position);
        written.categories.add(p.wire.category);
        for (const event of p.wire.events) written.types.add(event.type);
      }
      const { nextExpectedRevision, position } = result.ok;
      // Built whole rather than as `{ ...done, durable }` (see src/objects.ts).
      const done = (onDisk: Promise<void>): AppendResult => ({ nextExpectedRevision, position, durable: onDisk });
      // With `normal` the store promises nothing beyond the commit: durable at once.
      if (!durable) return p.resolve(done(ALREADY_DURABLE));
      // The sync thread's report can come before the writer's (two threads): an fsync already covered it.
      if (position <= acknowledged) return p.resolve(done(ALREADY_DURABLE));
      // With `full`, a retry that found its events already written waits for them to be on disk too.
      if (p.durability === 'durable') {
        return void awaitingSync.push({ position, resolve: () => p.resolve(done(ALREADY_DURABLE)), reject: p.reject });
      }
      // `commit`: answered now; its durability resolves with the fsync that covers it, like a `durable` append.
      const durableOnDisk = new Promise<void>((resolve, reject) => awaitingSync.push({ position, resolve, reject }));
      // A caller that does not wait for durability must not turn a failed fsync into an unhandled rejection.
      durableOnDisk.catch(() => undefined);
      p.resolve(done(durableOnDisk));
    });
    if (durable && highest > acknowledged) {
      writtenUnsynced.push({ position: highest, written });
    } else if (durable && highest > 0) {
      // Already on disk (the fsync's report came first): its subscribers are woken now; the listeners heard the head.
      wakeUpTo(acknowledged, written);
    } else if (highest > 0) {
      acknowledged = Math.max(acknowledged, highest);
      wakeUpTo(highest, written);
      for (const listener of appendedListeners) listener(highest);
    }
  };

  const onReply = (reply: WriterReply) => {
    switch (reply.kind) {
      case 'committed': {
        const batch = inFlight.get(reply.id);
        inFlight.delete(reply.id);
        commits = reply.commits;
        knownHead = Math.max(knownHead, reply.head);
        if (batch) committed(batch, reply.results);
        break;
      }
      case 'failed': {
        const batch = inFlight.get(reply.id);
        inFlight.delete(reply.id);
        for (const p of batch ?? []) p.reject(translate(reply.error, p.wire.stream));
        break;
      }
      case 'durable': {
        syncs = reply.syncs;
        syncedWalBytes = reply.walBytes;
        syncRequested = false;
        knownHead = Math.max(knownHead, reply.position);
        const previous = acknowledged;
        acknowledged = Math.max(acknowledged, reply.position);
        const written = newWritten();
        const unsynced = writtenUnsynced;
        writtenUnsynced = [];
        for (const entry of unsynced) {
          if (entry.position > acknowledged) writtenUnsynced.push(entry);
          else {
            for (const category of entry.written.categories) written.categories.add(category);
            for (const type of entry.written.types) written.types.add(type);
          }
        }
        const waiting = awaitingSync;
        awaitingSync = waiting.filter((a) => a.position > acknowledged);
        for (const a of waiting) if (a.position <= acknowledged) a.resolve();
        if (acknowledged > previous) {
          wakeUpTo(acknowledged, written);
          for (const listener of appendedListeners) listener(acknowledged);
        }
        break;
      }
      case 'syncFailed':
        failEverything(new UnavailableError(reply.message));
        break;
      case 'closed':
        closing?.();
        break;
      default: {
        const _never: never = reply;
      }
    }
    hold();
  };
  const writer: Writer | null = reader
    ? null
    : startWriter({ file, durable, busyTimeoutMs, cacheMiB, checkpointPasses, syncDelayMs: options.syncDelayMs ?? 0, measureWal: options.measureWal ?? false }, onReply, (error) => {
        failEverything(new UnavailableError(`The event store's writer stopped (${error.message}); restart the server`));
        closing?.();
        hold();
      });

  const serialise = (stream: string, events: readonly NewEvent[], expected: ExpectedRevision): WireAppend => ({
    stream,
    category: streamCategory(stream),
    expected,
    callerIds: events.some((event) => event.id !== undefined),
    events: events.map((event) => ({
      id: event.id ?? null,
      type: event.type,
      data: JSON.stringify(event.data ?? null),
      metadata: event.metadata ? JSON.stringify(event.metadata) : '{}',
    })),
  });

  /**
   * When the appends waiting in `pending` go to the writer. An append someone waits for (a reservation, before its
   * answer can go out) goes once the code that made it yields: the writer commits it while this thread goes on (builds
   * the upstream request), instead of after the rest of the turn. One whose fsync may wait (`syncWithinMs`, a
   * reservation whose provider takes a while) may wait here three quarters of that, for the appends made meanwhile:
   * one message and one commit for all (the rest of the time is for the commit and the fsync). Appends written after the answer (`soon`) wait up to soonHoldMs for the next urgent one
   * (usually the next reservation) and go with it, else alone: one message, one commit and one fsync for both. An
   * urgent append sends everything waiting.
   */
  let flushQueued = false;
  const soonHoldMs = options.soonHoldMs ?? 25;
  /** Set while every waiting append may wait: the timer that sends them, and when. */
  let holdTimer: NodeJS.Timeout | undefined;
  let holdUntil = Number.POSITIVE_INFINITY;
  const flush = () => {
    flushQueued = false;
    clearTimeout(holdTimer);
    holdTimer = undefined;
    holdUntil = Number.POSITIVE_INFINITY;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    if (syncFailure || !writer) {
      for (const p of batch) p.reject(syncFailure ?? new UnavailableError('The event store is closed'));
      return;
    }
    const id = nextBatch++;
    inFlight.set(id, batch);
    let syncBy = batch[0]!.syncBy;
    for (const p of batch) syncBy = Math.min(syncBy, p.syncBy);
    writer.send({ kind: 'append', id, appends: batch.map((p) => p.wire), syncWithinMs: Math.max(0, syncBy - Date.now()) });
    hold();
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
    // The appends waiting to be sent go now.
    hurry: () => {
      if (pending.length > 0) flush();
      writer?.hurry(nextBatch - 1);
    },

    append(stream, events, { expectedRevision = 'any', durability = 'durable', urgency = 'now', syncWithinMs = urgency === 'soon' ? soonHoldMs : 0 } = {}) {
      assertOpen();
      // Data JSON cannot hold (a BigInt, a cycle) fails this append alone, at once.
      let wire: WireAppend;
      try {
        wire = serialise(stream, events, expectedRevision);
      } catch (error) {
        return Promise.reject(error);
      }
      const holdMs = urgency === 'soon' ? soonHoldMs : Math.floor((syncWithinMs * 3) / 4);
      const at = Date.now();
      // A `soon` append's fsync may wait syncWithinMs after it is sent; an urgent one's, after it was made.
      const syncBy = at + syncWithinMs + (urgency === 'soon' ? holdMs : 0);
      return new Promise<AppendResult>((resolve, reject) => {
        pending.push({ wire, durability, syncBy, resolve, reject });
        if (urgency === 'now' && holdMs <= 0) {
          if (!flushQueued) {
            flushQueued = true;
            queueMicrotask(flush);
          }
        } else if (!flushQueued && at + holdMs < holdUntil) {
          clearTimeout(holdTimer);
          holdUntil = at + holdMs;
          holdTimer = setTimeout(flush, holdMs);
        }
      });
    },

    async readStream(stream, { direction = 'forwards', fromRevision, maxCount = -1 } = {}) {
      assertOpen();
      const rows =
        direction === 'forwards'
          ? readForwards.all(stream, fromRevision ?? 0, maxCount)
          : readBackwards.all(stream, fromRevision ?? Number.MAX_SAFE_INTEGER, maxCount);
      return rows.map(decode);
    },

    async readAll({ after = 0, maxCount = -1, filter } = {}) {
      assertOpen();
      return selectAll(after, freshVisibleHead(), maxCount, filter);
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
            // Reading the head first, then only rows up to it, lets the cursor jump past filtered-out events. The
            // first read asks SQLite (another process may have appended); later ones are woken with the head.
            const upTo = caughtUp ? visibleHead() : freshVisibleHead();
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
      return freshVisibleHead();
    },

    async health() {
      if (closed) return { ok: false, kind: 'embedded', detail: `${file} (closed)` };
      if (syncFailure) return { ok: false, kind: 'embedded', detail: `${file}: ${syncFailure.message}` };
      if (unreadable) return { ok: false, kind: 'embedded', detail: `${file}: ${unreadable.message}`, unreadableEvent: unreadable.event };
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
      // Appends already accepted are written (and with `full` fsynced) before the file closes.
      flush();
      closed = true;
      if (writer) {
        await new Promise<void>((resolve) => {
          closing = resolve;
          hold();
          if (syncFailure) return resolve();
          writer.send({ kind: 'close' });
        });
        await writer.terminate();
        failEverything(new UnavailableError('The event store is closed'));
      }
      clearInterval(pollTimer);
      pollTimer = undefined;
      await checkpointer?.stop();
      db.close();
    },
  };
  return store;
};
