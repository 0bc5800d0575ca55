import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';

/**
 * DATA_DIR holds the event log, the read models and key material: readable by the server's own user only. Modes
 * are set at creation (so nothing is ever briefly world-readable) and again on files and folders an older version
 * made with the default umask.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Narrow `path` to `mode` when it exists and is ours: what another user owns (EPERM) we can only use as it is. */
const narrow = (path: string, mode: number) => {
  try {
    chmodSync(path, mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EPERM') throw error;
  }
};

/** Create the folder (and any missing parents) 0700, or narrow an existing one to 0700. */
export const ensurePrivateDir = (dir: string): void => {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  narrow(dir, PRIVATE_DIR_MODE);
};

/**
 * Create a SQLite database file 0600 before SQLite opens it, or narrow an existing one (and its journals) to 0600.
 * SQLite creates the -wal and -shm files with the database file's mode, so those follow.
 *
 * An existing file is never opened here: closing any descriptor of a file drops every POSIX lock the process holds on
 * it, SQLite's too, and the event log is opened by several connections of this process (the request, writer and
 * storage threads). A database whose locks were dropped looks unused to other processes: a `sqlite3` shell or backup
 * tool closing on it checkpointed and deleted the live WAL, and the next kill -9 lost commits already acknowledged.
 */
export const ensurePrivateDatabaseFile = (file: string): void => {
  try {
    closeSync(openSync(file, 'wx', PRIVATE_FILE_MODE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) narrow(`${file}${suffix}`, PRIVATE_FILE_MODE);
};
