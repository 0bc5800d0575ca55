/**
 * The embedded event store's writer thread: every append of a connection (its inserts and the commit) runs here, off
 * the request thread; with `full`, the fsync of the WAL runs on a sync thread of its own (below).
 *
 * Why (issue 15): better-sqlite3 is synchronous, and a commit writes its WAL frames with one system call per frame
 * header and page. On the request thread that cost 150-250 µs of its time per commit (measured in the gateway
 * bench's CPU profile: ~20% of the request thread's busy time at 400-1,500 req/s, two commits per request at low
 * rates), which the gateway's answer never needed to wait for: a reservation's upstream call starts at its admission
 * in memory, and only the delivery waits for the reservation to be durable. A round trip to this thread costs the
 * request thread one message each way per batch of appends.
 *
 * Group commit: the request thread sends every append of one turn in one message; this thread commits every message
 * waiting in its port in one transaction (draining the port first), with `full` asks the sync thread for an fsync
 * covering the head it committed, then answers each. Appends committed during an fsync share the next one. Between
 * groups it sleeps on shared memory the request thread bumps after each message (see the loop at its end).
 *
 * The sync thread (`full`): one fsync of the WAL at a time, through a file descriptor of its own, covering every
 * commit made before it started; it reports each to the request thread itself (`durable`), so a commit costs this
 * thread no wake-up for its fsync. It waits on shared memory (`Atomics.wait`), not on libuv's thread pool, where the
 * fsyncs ran before: (1) the pool is shared with DNS lookups of provider and workflow URLs (hostile ones can take
 * seconds each) and other file work, and four such jobs stopped every fsync, so every answer under `full` waited for
 * them; (2) each fsync woke pool threads about three times (their shared mutex and condition variable) plus this
 * thread once more for the completion, at 130-190 µs of CPU per wake-up on the bench VM (bench/wakeup.bench.ts).
 *
 * It keeps the request thread's CPU priority (the storage thread and the checkpointers lower theirs): every reservation
 * waits for it, so a busy neighbour must not starve it. Tried at nice 10: p99 35 / 56 ms against 40 / 75 ms at 1,200 /
 * 1,600 req/s in one probe each (within the noise), and the full suite under CI load then showed read-your-writes
 * waits running out.
 *
 * The bodies below run as the source of eval'd workers (as the checkpointer does): each must be self-contained, with
 * no reference to anything outside the function (the worker has only `require` and `workerData`).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** One append as the request thread sends it: the events already serialised. */
export interface WireAppend {
  readonly stream: string;
  readonly category: string;
  readonly expected: 'no_stream' | 'any' | 'stream_exists' | number;
  /** Caller-chosen ids: the append runs in a savepoint of its own (an id already used fails it alone). */
  readonly callerIds: boolean;
  readonly events: readonly { readonly id: string | null; readonly type: string; readonly data: string; readonly metadata: string }[];
}

export type WireFailure =
  | { readonly kind: 'wrongVersion'; readonly expected: string | number; readonly actual: number | 'no_stream' }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'busy' }
  | { readonly kind: 'error'; readonly message: string; readonly code?: string };

export interface WireOk {
  readonly nextExpectedRevision: number;
  readonly position: number;
  /** False when the append was a retry whose events were already there. */
  readonly written: boolean;
}

export type WireResult = { readonly ok: WireOk } | { readonly error: WireFailure };

export type WriterRequest =
  /** `syncWithinMs`: how long the fsync covering these appends may wait (`full`; see the sync thread). */
  | { readonly kind: 'append'; readonly id: number; readonly appends: readonly WireAppend[]; readonly syncWithinMs: number }
  | { readonly kind: 'sync' }
  | { readonly kind: 'close' };

export type WriterReply =
  | { readonly kind: 'committed'; readonly id: number; readonly results: readonly WireResult[]; readonly head: number; readonly commits: number }
  /** The whole transaction failed (no append of it was written). */
  | { readonly kind: 'failed'; readonly id: number; readonly error: WireFailure }
  /** From the sync thread: every position up to `position` is on disk (`full`). */
  | { readonly kind: 'durable'; readonly position: number; readonly walBytes: number; readonly syncs: number }
  | { readonly kind: 'syncFailed'; readonly message: string }
  | { readonly kind: 'closed' };

/**
 * The memory the writer, the sync thread and the request thread share (`full`). Int32 slots: REQUESTED (bumped by
 * each request for an fsync), STOP, FAILED, SLEEP (never notified: the tests' slow disk), WAKE (bumped to cut a
 * deferred fsync's wait short). From byte 24, BigInt64 slots: COVERS, the head the next fsync must cover (stored
 * before REQUESTED moves); DEADLINE, when (ms since the epoch) the next fsync must start at the latest; HANDLED, the
 * last append message the writer has handled (stored with COVERS); HURRY, the last append message someone waits to
 * see durable now (the request thread's `hurry`).
 */
const REQUESTED = 0;
const STOP = 1;
const FAILED = 2;
const SLEEP = 3;
const WAKE = 4;
const BIG_OFFSET = 24;
const COVERS = 0;
const DEADLINE = 1;
const HANDLED = 2;
const HURRY = 3;
const CONTROL_BYTES = BIG_OFFSET + 4 * 8;
/** No deadline (DEADLINE's value while nothing waits for an fsync). */
const NEVER = 2n ** 62n;

interface WriterData {
  readonly file: string;
  readonly driver: string;
  /** `full`: the memory shared with the sync thread. */
  readonly control: SharedArrayBuffer | null;
  readonly busyTimeoutMs: number;
  readonly cacheMiB: number;
  /** The background checkpointer's pass counter and WAL frames (see startBackgroundCheckpointer), or null when the file has none. */
  readonly checkpointPasses: SharedArrayBuffer | null;
  /** One Int32 the request thread bumps after each message it sends; the thread sleeps on it (see writerThread). */
  readonly inbox: SharedArrayBuffer;
  /** Power-loss tests (SqliteEventStoreOptions.measureWal): the thread never checkpoints. */
  readonly measureWal: boolean;
}

interface SyncData {
  readonly wal: string;
  readonly control: SharedArrayBuffer;
  /** Each fsync starts this much later (tests: a slow disk). */
  readonly delayMs: number;
  /** Read the WAL's size before each fsync (power-loss tests; see SqliteEventStoreOptions.measureWal). */
  readonly measureWal: boolean;
}

/** The worker's body (see the module comment: self-contained). */
function writerThread(require: NodeJS.Require, REQUESTED: number, FAILED: number, WAKE: number, BIG_OFFSET: number, COVERS: number, DEADLINE: number, HANDLED: number): void {
  const { workerData, parentPort, receiveMessageOnPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { randomUUID } = require('node:crypto') as typeof import('node:crypto');
  const data = workerData as WriterData;
  const Database = require(data.driver) as typeof import('better-sqlite3');
  const port = parentPort!;
  const post = (reply: WriterReply) => port.postMessage(reply);

  const db = new Database(data.file, { timeout: data.busyTimeoutMs });
  db.pragma('journal_mode = WAL');
  // Never FULL: `full` makes commits durable with the sync thread's fsync after them (one for many commits).
  db.pragma('synchronous = NORMAL');
  db.pragma(`cache_size = -${data.cacheMiB * 1024}`);
  db.pragma('temp_store = MEMORY');
  db.pragma('wal_autocheckpoint = 0');

  const selectHead = db.prepare<[], { head: number | null }>('SELECT max(position) AS head FROM events');
  const selectStreamHead = db.prepare<[string], { revision: number; position: number }>('SELECT revision, position FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1');
  const selectById = db.prepare<[string], { stream: string; revision: number; position: number }>('SELECT stream, revision, position FROM events WHERE id = ?');
  const insert = db.prepare<[string, string, string, number, string, string, string, string]>(
    'INSERT INTO events (id, stream, category, revision, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const head = () => selectHead.get()?.head ?? 0;

  /**
   * A random UUID whose first 48 bits are the time in ms (the UUIDv7 layout): ids of one commit share a prefix and
   * land on the same pages of the unique id index instead of dirtying one random page per event.
   */
  const timeOrderedUuid = (): string => {
    const time = Date.now().toString(16).padStart(12, '0');
    return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
  };

  class Refused extends Error {
    constructor(readonly failure: WireFailure) {
      super(failure.kind);
    }
  }
  const failureOf = (error: unknown): WireFailure => {
    if (error instanceof Refused) return error.failure;
    const code = error instanceof Database.SqliteError ? error.code : undefined;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE') return { kind: 'conflict' };
    // Another process held the write lock for longer than the busy timeout.
    if (code === 'SQLITE_BUSY') return { kind: 'busy' };
    // The code too: SQLITE_FULL (a full disk) is answered as such (StorageFullError), not as an internal error.
    return { kind: 'error', message: error instanceof Error ? error.message : String(error), ...(code !== undefined && { code }) };
  };

  /** One append, inside the group's transaction: checks the expected revision, then inserts. */
  const appendInTx = (append: WireAppend): WireOk => {
    const { stream, events, expected } = append;
    // A retry of an append that already succeeded: every id is already in this stream.
    const firstId = events[0]?.id;
    if (firstId != null && selectById.get(firstId)) {
      const found = events.map((event) => (event.id === null ? undefined : selectById.get(event.id)));
      if (found.every((row) => row?.stream === stream)) {
        const rows = found as { revision: number; position: number }[];
        return { nextExpectedRevision: Math.max(...rows.map((row) => row.revision)), position: Math.max(...rows.map((row) => row.position)), written: false };
      }
      throw new Refused({ kind: 'conflict' });
    }
    const current = selectStreamHead.get(stream);
    const currentRevision = current?.revision ?? -1;
    const ok =
      expected === 'any' || (expected === 'no_stream' && !current) || (expected === 'stream_exists' && current !== undefined) || expected === currentRevision;
    if (!ok) throw new Refused({ kind: 'wrongVersion', expected, actual: current ? current.revision : 'no_stream' });
    const recordedAt = new Date().toISOString();
    let position = current?.position ?? 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const info = insert.run(event.id ?? timeOrderedUuid(), stream, append.category, currentRevision + 1 + i, event.type, event.data, event.metadata, recordedAt);
      position = Number(info.lastInsertRowid);
    }
    return { nextExpectedRevision: currentRevision + events.length, position, written: events.length > 0 };
  };
  /** The same in a savepoint of its own, for appends whose inserts can fail part-way. */
  const appendInSavepoint = db.transaction(appendInTx);
  /**
   * Every waiting batch in one transaction. Only caller-chosen ids can make an insert fail after others went in: such
   * appends run in a savepoint of their own; any other append fails, if at all, on its expected revision before it
   * writes anything. An unexpected SQLite error aborts the whole transaction, whose batches are then all refused.
   */
  const groupTx = db.transaction((batches: readonly WireAppend[][]) =>
    batches.map((appends) =>
      appends.map((append): WireResult => {
        try {
          return { ok: (append.callerIds ? appendInSavepoint : appendInTx)(append) };
        } catch (error) {
          if (append.callerIds || error instanceof Refused) return { error: failureOf(error) };
          throw error;
        }
      }),
    ),
  );

  const control = data.control === null ? null : new Int32Array(data.control, 0, BIG_OFFSET / 4);
  const big = data.control === null ? null : new BigInt64Array(data.control, BIG_OFFSET, 4);
  let commits = 0;
  /**
   * An fsync covering every commit up to `at`, the log's head (another process's too: an fsync covers the file's
   * bytes), starting within `withinMs`.
   */
  let handled = 0;
  const requestSync = (at: number, withinMs: number) => {
    if (!control || !big) return;
    Atomics.store(big, HANDLED, BigInt(handled));
    Atomics.store(big, COVERS, BigInt(at));
    // The earliest deadline wins; a sync thread waiting for a later one is woken to wait less.
    const deadline = BigInt(Date.now() + withinMs);
    for (let current = Atomics.load(big, DEADLINE); deadline < current; current = Atomics.load(big, DEADLINE)) {
      if (Atomics.compareExchange(big, DEADLINE, current, deadline) === current) {
        Atomics.add(control, WAKE, 1);
        Atomics.notify(control, WAKE, 1);
        break;
      }
    }
    Atomics.add(control, REQUESTED, 1);
    Atomics.notify(control, REQUESTED, 1);
  };
  /** After a failed fsync nothing since the last good one can be promised: every later append is refused. */
  const syncFailed = () => control !== null && Atomics.load(control, FAILED) === 1;

  /**
   * The WAL is only rewound to its start (and then overwritten in place) by a write that finds every frame in it
   * checkpointed. Under continuous appends the background checkpointer never catches up with this thread: each of its
   * passes ends behind frames appended meanwhile, so the WAL grew without end (45 MB/s at concurrency 1 in the gateway
   * bench, 500 MB in 15 s) and every fsync also had to journal the file's new size. So this thread, the only writer,
   * checkpoints too, between its own commits: no frame is appended during its pass, so the pass ends with every frame
   * copied (unless a reader still holds an older snapshot) and the next commit rewinds the WAL.
   * No commit can be made during its pass, so it makes few and short ones: once the WAL holds REWIND_FRAMES (16 MiB),
   * right after one of the background checkpointer's passes (every 250 ms), so it copies only what was committed
   * during that pass; and every 5 s whatever the size (or with no background checkpointer, every 250 ms). Timed on
   * its own every 250 ms, as it was, it mostly came first, copied a quarter second of frames itself and fsynced the
   * database file for them: in the gateway bench at 200 req/s (`full`, a slow spell of the disk), 98 passes in 16 s,
   * 4.3-4.4 ms p50, up to 29-37 ms; now 5-6 passes, 3.1 ms p50, up to 7.5-8.3 ms, with the WAL's own fsyncs no slower.
   */
  const CHECKPOINT_MS = 250;
  const REWIND_FRAMES = 4096;
  const CHECKPOINT_MAX_MS = 5_000;
  let lastCheckpoint = Date.now();
  let checkpointDue = false;
  const backgroundPasses = data.checkpointPasses === null ? null : new Int32Array(data.checkpointPasses);
  let backgroundPassesSeen = 0;
  const checkpointWanted = () => {
    // The power-loss tests' store (measureWal) has no checkpoints: its WAL only grows, so a size names a point in it
    // (a rewind would leave the file's size where it was while new frames overwrite its start).
    if (data.measureWal) return false;
    const since = Date.now() - lastCheckpoint;
    if (backgroundPasses === null) return since >= CHECKPOINT_MS;
    if (since >= CHECKPOINT_MAX_MS) return true;
    return Atomics.load(backgroundPasses, 0) !== backgroundPassesSeen && Atomics.load(backgroundPasses, 1) >= REWIND_FRAMES;
  };
  const checkpoint = () => {
    checkpointDue = false;
    lastCheckpoint = Date.now();
    if (backgroundPasses) backgroundPassesSeen = Atomics.load(backgroundPasses, 0);
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy (the background checkpointer holds the lock) or closing: the next pass catches up.
    }
  };

  /** Every message that was waiting, as one group; true once closed. */
  const handle = (requests: readonly WriterRequest[]): boolean => {
    const appends = requests.filter((r): r is Extract<WriterRequest, { kind: 'append' }> => r.kind === 'append');
    let committed = false;
    let withinMs = Number.MAX_SAFE_INTEGER;
    for (const r of appends) {
      handled = Math.max(handled, r.id);
      withinMs = Math.min(withinMs, r.syncWithinMs);
    }
    if (appends.length > 0) {
      if (syncFailed()) {
        const message = 'The event store could not write its log to disk; restart the server';
        for (const r of appends) post({ kind: 'failed', id: r.id, error: { kind: 'error', message } });
      } else {
        try {
          const results = groupTx.immediate(appends.map((r) => r.appends as WireAppend[]));
          commits += 1;
          committed = true;
          const at = head();
          // The fsync first: with `full` it is what the answers wait for, and it runs while the replies go out.
          requestSync(at, withinMs);
          appends.forEach((r, i) => post({ kind: 'committed', id: r.id, results: results[i]!, head: at, commits }));
        } catch (error) {
          const failure = failureOf(error);
          for (const r of appends) post({ kind: 'failed', id: r.id, error: failure });
        }
      }
    }
    // Another process's commits (a `sync`), or a failed group's messages, which a `hurry` may name: an fsync now.
    if (!committed && (appends.length > 0 || requests.some((r) => r.kind === 'sync'))) requestSync(head(), 0);
    if (requests.some((r) => r.kind === 'close')) {
      // Every commit is made and its fsync asked for; the request thread stops the sync thread after this reply.
      db.close();
      post({ kind: 'closed' });
      return true;
    }
    if (appends.length > 0 && checkpointWanted()) checkpointDue = true;
    return false;
  };

  /**
   * The thread sleeps on shared memory, not in its event loop: every reservation's answer waits for this hop, and a
   * message waking its loop (libuv's async handle, then Node's dispatch) took 92 µs p50 from the request thread's
   * send to the start of the commit, against 78 µs this way (the gateway bench at concurrency 1, `full`, timestamps
   * in every thread; the rest of the hop is the message's copy each way). A due checkpoint runs after the messages
   * that were waiting when it fell due.
   */
  const inbox = new Int32Array(data.inbox);
  for (;;) {
    const seen = Atomics.load(inbox, 0);
    const requests: WriterRequest[] = [];
    for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port)) requests.push(next.message as WriterRequest);
    if (requests.length > 0 && handle(requests)) {
      // Closed: parked until the request thread terminates it. A thread that ended on its own could have its 'exit'
      // seen before the replies it posted last (under load it was: a held append was failed after it had committed).
      for (;;) Atomics.wait(inbox, 0, Atomics.load(inbox, 0));
    }
    if (checkpointDue) checkpoint();
    else if (requests.length === 0) Atomics.wait(inbox, 0, seen);
  }
}

/**
 * The sync thread's body (self-contained, see the module comment). It sleeps in `Atomics.wait` until the writer
 * asks, fsyncs the WAL through its own descriptor (an fsync flushes the file's bytes whoever wrote them), and posts
 * the head that was committed before it started. Requests made meanwhile share the next fsync.
 *
 * An fsync may wait: each commit says how long its fsync may start after it (`syncWithinMs`: 0 for most; for a
 * reservation, what is left of its allowance after the request thread held it, see the gateway and
 * sqliteEventStore), and the thread waits until the
 * earliest such deadline, so that the commits made meanwhile share one fsync, unless someone waits to see an append
 * durable now (`hurry`: an answer is ready before its reservation is on disk) that the last fsync did not cover. An
 * append is acknowledged as durable only once the fsync covering it is done, as before; the wait only groups more
 * commits per fsync (at 400 requests/s on a 20 ms upstream, 0.34 fsyncs per request instead of one) and so wakes
 * threads less.
 * Its event loop never runs: `postMessage` needs none.
 */
function syncThread(require: NodeJS.Require, REQUESTED: number, STOP: number, FAILED: number, SLEEP: number, WAKE: number, BIG_OFFSET: number, COVERS: number, DEADLINE: number, HANDLED: number, HURRY: number, NEVER: bigint): void {
  const { workerData, parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const fs = require('node:fs') as typeof import('node:fs');
  const data = workerData as SyncData;
  const control = new Int32Array(data.control, 0, BIG_OFFSET / 4);
  const big = new BigInt64Array(data.control, BIG_OFFSET, 4);
  const post = (reply: WriterReply | { kind: 'stopped' }) => parentPort!.postMessage(reply);
  const fd = fs.openSync(data.wal, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  let done = 0;
  let syncs = 0;
  let failed = false;
  /** The last append message the last fsync covered. */
  let synced = 0n;
  for (;;) {
    const requested = Atomics.load(control, REQUESTED);
    if (requested !== done) {
      if (failed) {
        done = requested;
        continue;
      }
      // Wait for the deadline, unless someone waits for a message the last fsync did not cover, or the store stops.
      for (;;) {
        const wake = Atomics.load(control, WAKE);
        const left = Number(Atomics.load(big, DEADLINE) - BigInt(Date.now()));
        if (left <= 0 || Atomics.load(big, HURRY) > synced || Atomics.load(control, STOP) === 1) break;
        Atomics.wait(control, WAKE, wake, left);
      }
      done = Atomics.load(control, REQUESTED);
      // Commits from here on set the next deadline; those made before this fsync starts are covered by it.
      Atomics.store(big, DEADLINE, NEVER);
      // Read after the request: the writer stores the head (and the message count) before it asks.
      const covered = Atomics.load(big, HANDLED);
      const position = Number(Atomics.load(big, COVERS));
      if (data.delayMs > 0) Atomics.wait(control, SLEEP, 0, data.delayMs);
      try {
        const walBytes = data.measureWal ? fs.fstatSync(fd).size : 0;
        fs.fdatasyncSync(fd);
        syncs += 1;
        synced = covered;
        post({ kind: 'durable', position, walBytes, syncs });
      } catch (error) {
        // After a failed fsync the kernel may have dropped the dirty pages: nothing since the last good fsync can be
        // promised, now or by a retry. Everything from here on is refused; a restart reopens from what is on disk.
        failed = true;
        Atomics.store(control, FAILED, 1);
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        post({ kind: 'syncFailed', message: `The event store could not write its log to disk (${code}); restart the server` });
      }
      continue;
    }
    if (Atomics.load(control, STOP) === 1) break;
    Atomics.wait(control, REQUESTED, requested);
  }
  fs.closeSync(fd);
  post({ kind: 'stopped' });
}

const driver = createRequire(import.meta.url).resolve('better-sqlite3');
// tsx compiles with esbuild's keepNames, which wraps named functions in calls to a `__name` helper of the module:
// the eval'd copies get a harmless one.
const WRITER_SOURCE = `var __name = (target) => target;\n(${writerThread.toString()})(require, ${REQUESTED}, ${FAILED}, ${WAKE}, ${BIG_OFFSET}, ${COVERS}, ${DEADLINE}, ${HANDLED});`;
const SYNC_SOURCE = `var __name = (target) => target;\n(${syncThread.toString()})(require, ${REQUESTED}, ${STOP}, ${FAILED}, ${SLEEP}, ${WAKE}, ${BIG_OFFSET}, ${COVERS}, ${DEADLINE}, ${HANDLED}, ${HURRY}, ${NEVER}n);`;

export interface Writer {
  send(request: WriterRequest): void;
  /** Keep the process alive while replies are awaited (and let it exit when none are). */
  hold(held: boolean): void;
  /** `full`: someone waits to see append message `upTo` (and those before it) durable now: its fsync waits no more. */
  hurry(upTo: number): void;
  /** After the writer's `closed`: the sync thread makes a last fsync, reports it, and ends; then both threads go. */
  terminate(): Promise<void>;
}

/**
 * Start the writer thread of `file` (and with `durable` its sync thread); `onReply` hears the replies of both,
 * `onExit` an unexpected end of either.
 */
export const startWriter = (
  options: { file: string; durable: boolean; busyTimeoutMs: number; cacheMiB: number; checkpointPasses: SharedArrayBuffer | null; syncDelayMs: number; measureWal: boolean },
  onReply: (reply: WriterReply) => void,
  onExit: (error: Error) => void,
): Writer => {
  const control = options.durable ? new SharedArrayBuffer(CONTROL_BYTES) : null;
  const slots = control && new Int32Array(control, 0, BIG_OFFSET / 4);
  const big = control && new BigInt64Array(control, BIG_OFFSET, 4);
  big?.set([0n, NEVER, 0n, 0n]);
  const inboxBuffer = new SharedArrayBuffer(4);
  const inbox = new Int32Array(inboxBuffer);
  const workerData: WriterData = { file: options.file, driver, control, busyTimeoutMs: options.busyTimeoutMs, cacheMiB: options.cacheMiB, checkpointPasses: options.checkpointPasses, inbox: inboxBuffer, measureWal: options.measureWal };
  let ended = false;
  const watch = (worker: Worker, name: string) => {
    worker.unref();
    worker.on('error', (error) => {
      ended = true;
      onExit(error);
    });
    worker.on('exit', (code) => {
      if (!ended) onExit(new Error(`the event store's ${name} thread exited (code ${code})`));
      ended = true;
    });
    return worker;
  };
  const writer = watch(new Worker(WRITER_SOURCE, { eval: true, workerData }), 'writer');
  writer.on('message', onReply);
  let stopped: Promise<void> = Promise.resolve();
  const syncer = control && watch(new Worker(SYNC_SOURCE, { eval: true, workerData: { wal: `${options.file}-wal`, control, delayMs: options.syncDelayMs, measureWal: options.measureWal } satisfies SyncData }), 'sync');
  if (syncer) {
    stopped = new Promise<void>((resolve) => {
      syncer.on('message', (reply: WriterReply | { kind: 'stopped' }) => (reply.kind === 'stopped' ? resolve() : onReply(reply)));
      syncer.on('exit', () => resolve());
    });
  }
  return {
    send: (request) => {
      // The message first: the writer, once woken, finds it in its port.
      writer.postMessage(request);
      Atomics.add(inbox, 0, 1);
      Atomics.notify(inbox, 0);
    },
    hold: (held) => {
      for (const worker of [writer, syncer]) if (worker) held ? worker.ref() : worker.unref();
    },
    hurry: (upTo) => {
      if (!slots || !big || Atomics.load(big, HURRY) >= BigInt(upTo)) return;
      Atomics.store(big, HURRY, BigInt(upTo));
      Atomics.add(slots, WAKE, 1);
      Atomics.notify(slots, WAKE, 1);
    },
    terminate: async () => {
      ended = true;
      if (slots && syncer) {
        // STOP, and a request so that a sync thread just about to wait sees a change (one fsync more at close); a
        // deferred fsync starts at once.
        Atomics.store(slots, STOP, 1);
        Atomics.add(slots, REQUESTED, 1);
        Atomics.notify(slots, REQUESTED);
        Atomics.add(slots, WAKE, 1);
        Atomics.notify(slots, WAKE);
        syncer.ref();
        await stopped;
      }
      await Promise.all([writer.terminate(), syncer?.terminate()]);
    },
  };
};
