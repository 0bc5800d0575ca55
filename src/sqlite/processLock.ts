import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DataFileError, UnavailableError } from '../errors.js';
import { dataFileError, ensurePrivateDatabaseFile, openingDataFile, PRIVATE_FILE_MODE } from './privateFiles.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The pid in the owner file, if it names one. One this user may not read (root's, after a run as root) is said so. */
const ownerIn = (file: string): number | null => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw dataFileError(file, error) ?? error;
  }
  const pid = Number(text.trim());
  return text.trim() !== '' && Number.isInteger(pid) && pid > 0 ? pid : null;
};

const inUse = (what: string, file: string, owner: number | null) =>
  new UnavailableError(`${what} is in use by ${owner === null ? 'another process' : `process ${owner}`}; stop it first (embedded mode serves one process)`, { lock: file });

/** How long a starter waits for the lock's file to be free of another starter's passing locks. */
const LOCK_WAIT_MS = 500;

/**
 * The connection that holds the exclusive lock on the SQLite file `path` (with the pid the last holder wrote there, 0
 * if none ever did), or null when another connection holds it. BEGIN EXCLUSIVE takes the lock at once, in SQLite's
 * normal locking mode, which lets go of every lock of an attempt that failed; EXCLUSIVE locking mode, set once the lock
 * is ours, keeps it past the COMMIT until the connection closes. (Set before, it made a starter refused the write lock
 * keep the read lock it had on the way, and that read lock kept the starter holding the write lock from finishing: two
 * starters in that window both waited out their timeouts and nobody got the lock, 1 round in ~40 under CI's load.)
 */
const lockDatabase = (path: string): { db: Database.Database; previous: number } | null => {
  for (let attempt = 0; ; attempt++) {
    let db: Database.Database | null = null;
    try {
      // A short wait, not none: starters racing each take and drop SQLite's intermediate locks, and without waiting
      // each could be refused by another's passing lock, leaving nobody the holder. The holder keeps its lock for
      // good, so the others are refused once this has passed.
      db = new Database(path, { timeout: LOCK_WAIT_MS });
      db.exec('BEGIN EXCLUSIVE');
      db.pragma('locking_mode = EXCLUSIVE');
      const previous = db.pragma('user_version', { simple: true }) as number;
      db.pragma(`user_version = ${process.pid}`);
      db.exec('COMMIT');
      return { db, previous };
    } catch (error) {
      db?.close();
      const code = (error as { code?: unknown }).code;
      if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return null;
      // Damaged past reading: then no one holds it (its lock would have refused us before any read). Emptied in place
      // (never replaced: every starter must lock the same file), once.
      if (attempt === 0 && typeof code === 'string' && /^SQLITE_(NOTADB|CORRUPT)/.test(code)) {
        openingDataFile(path, () => truncateSync(path, 0), 'written');
        continue;
      }
      throw dataFileError(path, error) ?? error;
    }
  }
};

/**
 * An exclusive lock for resources only one process may use (the embedded read store keeps its documents in memory, so
 * a second process would silently diverge): `file` names its owner's pid, `file.db` is the lock.
 *
 * The lock is the kernel's. `file.db` is a small SQLite database this process opens in EXCLUSIVE locking mode and
 * writes once: SQLite takes its exclusive POSIX lock and keeps it until the connection closes, and the kernel drops it
 * when the process dies, however it dies. So a crashed owner leaves nothing to take over: two processes starting at
 * once after a crash cannot both win (with the pid file alone, one could delete the lock the other had just written,
 * then write its own: both ran, 1 start in 30 in a test), and a dead owner's pid reused by another process does not
 * lock the folder out. The pid file only names the owner in a refusal and keeps an older version (which reads only it)
 * from starting beside this one; it is honoured only on a folder an older version ran on, while that version runs.
 *
 * `file.db` is never deleted (a starter that had opened it would lock the deleted file while the next locks a new
 * one), and only SQLite opens it (closing any descriptor of a file drops the process's POSIX locks on it; see
 * privateFiles.ts). Taken again in the process that holds it (another thread's store on the same folder), the lock is
 * shared, as the pid file had it: that release does nothing.
 */
export const acquireProcessLock = (file: string, what: string): { release(): void } => {
  const lockFile = `${file}.db`;
  ensurePrivateDatabaseFile(lockFile);
  const locked = lockDatabase(lockFile);
  if (locked === null) {
    // Held by another process: that is what to say, even when its pid file is not ours to read.
    let owner: number | null = null;
    try {
      owner = ownerIn(file);
    } catch (error) {
      if (!(error instanceof DataFileError)) throw error;
    }
    // The pid file names this process only while it holds the lock (a release clears it before letting go).
    if (owner === process.pid) return { release: () => undefined };
    // A holder that has not written its pid yet: the file still names the one before it, which may be gone.
    throw inUse(what, file, owner !== null && alive(owner) ? owner : null);
  }
  const { db } = locked;
  try {
    // Never locked before: the pid file, if any, is an older version's, whose process, while it runs, holds the folder
    // without knowing this lock. Once this lock has been used, the pid file only names (a crashed owner's pid, reused by
    // another process since, does not count).
    const legacy = locked.previous === 0 ? ownerIn(file) : null;
    if (legacy !== null && legacy !== process.pid && alive(legacy)) throw inUse(what, file, legacy);
    // Another user's pid file (root's, 0600, after a run as root), a full disk: one line naming it (main.ts), as for
    // the other files of DATA_DIR.
    openingDataFile(file, () => writeFileSync(file, String(process.pid), { mode: PRIVATE_FILE_MODE }), 'written');
  } catch (error) {
    db.close();
    throw error;
  }
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      // Cleared while the lock is still held: a pid file never names a process that has let go.
      try {
        writeFileSync(file, '');
      } finally {
        db.close();
      }
    },
  };
};
