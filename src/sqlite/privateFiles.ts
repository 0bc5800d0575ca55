import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataFileError, describeStorageFailure, storageFailureOf } from '../errors.js';

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

/**
 * Create the folder (and any missing parents) 0700, or narrow an existing one to 0700. One this user cannot list,
 * enter and write (another user's: root's after an image that ran as root) fails here with EACCES, not later on a
 * file in it.
 */
export const ensurePrivateDir = (dir: string): void => {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  narrow(dir, PRIVATE_DIR_MODE);
  accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
};

/** The user Switchyard runs as, with its uid where there is one. */
export const runningUser = (): string => {
  const uid = process.getuid?.();
  return uid === undefined ? 'the user Switchyard runs as' : `the user Switchyard runs as (uid ${uid})`;
};

/** Whose DATA_DIR and its files must be, and the `chown` that makes them so: what an operator does about a permission. */
export const ownershipAdvice = (dir: string): string => {
  const uid = process.getuid?.();
  return uid === undefined ? `must belong to ${runningUser()}` : `must belong to ${runningUser()}: chown -R ${uid} ${dir}`;
};

/**
 * Why this user may not have `dir` (DATA_DIR) when it is not there to see: the folder above it that is in the way, as
 * one line saying what to do. Null when `dir` can be seen (it is then the folder itself that is not this user's).
 * The nearest folder above it that exists: one this user may not enter (no x) hides it, one it may not write cannot
 * hold it.
 */
export const missingDataDirAdvice = (dir: string): string | null => {
  const path = resolve(dir);
  try {
    statSync(path);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EACCES') return null;
  }
  let parent = dirname(path);
  while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent);
  const uid = process.getuid?.();
  try {
    accessSync(parent, constants.X_OK);
  } catch {
    return (
      `cannot be reached: ${runningUser()} may not enter ${parent} (permission denied). ` +
      `Let that user enter ${parent} (x permission) and own DATA_DIR${uid === undefined ? '' : ` (chown -R ${uid})`}, or set DATA_DIR to a folder it can reach`
    );
  }
  return (
    `does not exist and cannot be created in ${parent}: permission denied. ` +
    `Create it owned by ${runningUser()}${uid === undefined ? '' : `: mkdir -p ${path} && chown ${uid} ${path}`}; or let that user write to ${parent}`
  );
};

/**
 * A failure to open, create or write `file` (in DATA_DIR) at start, when it is the machine's storage (see
 * storageFailureOf), as one line naming the file, what is wrong and what to do; null for anything else. SQLite's
 * "unable to open database file" (SQLITE_CANTOPEN) names no file and no cause: a file this user may not read or write
 * is said to be that.
 */
export const dataFileError = (file: string, error: unknown, doing: 'opened' | 'created' | 'written' = 'opened'): DataFileError | null => {
  let failure = storageFailureOf(error);
  if (failure === null) return null;
  const dir = dirname(file);
  if (failure === 'cannot_open' || failure === 'read_only') {
    for (const path of [file, `${file}-wal`, `${file}-shm`]) {
      if (!existsSync(path)) continue;
      try {
        accessSync(path, constants.R_OK | constants.W_OK);
      } catch {
        failure = 'permission_denied';
        break;
      }
    }
  }
  const detail = (error as Error).message;
  const message =
    failure === 'permission_denied'
      ? `${file} cannot be ${doing}: permission denied. DATA_DIR and every file in it ${ownershipAdvice(dir)}`
      : failure === 'read_only'
        ? `${file} cannot be written: the file system is read-only. Mount DATA_DIR (${dir}) read-write`
        : failure === 'disk_full'
          ? `${file} cannot be ${doing}: ${describeStorageFailure(failure)}. Free space on the disk of DATA_DIR (${dir})`
          : failure === 'io_error'
            ? `${file} cannot be ${doing}: ${describeStorageFailure(failure)} (${detail}). Check the disk of DATA_DIR (${dir}); restore the file from a backup if it is damaged`
            : `${file} cannot be opened (${detail}): it must be a file, and DATA_DIR and every file in it ${ownershipAdvice(dir)}`;
  return new DataFileError(file, failure, message);
};

/**
 * Runs `open` (SQLite opening `file`, a first statement, a read or write of a file of DATA_DIR at start): a failure of
 * the machine's storage as a DataFileError.
 */
export const openingDataFile = <T>(file: string, open: () => T, doing: 'opened' | 'created' | 'written' = 'opened'): T => {
  try {
    return open();
  } catch (error) {
    throw dataFileError(file, error, doing) ?? error;
  }
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
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw dataFileError(file, error, 'created') ?? error;
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    const path = `${file}${suffix}`;
    narrow(path, PRIVATE_FILE_MODE);
    // Another user's file (root's, after an image that ran as root) is said to be that here: SQLite would fail on it
    // with "unable to open database file", naming neither, or open it read-only and fail at the first write.
    if (suffix !== '-journal' && existsSync(path)) {
      for (const [mode, doing] of [[constants.R_OK, 'opened'], [constants.W_OK, 'written']] as const) {
        try {
          accessSync(path, mode);
        } catch (error) {
          throw dataFileError(path, error, doing) ?? error;
        }
      }
    }
  }
};
