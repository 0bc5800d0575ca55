import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnavailableError } from '../../src/errors.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/**
 * The flag file that makes the event log's disk full (see wrapEventStore). Empty, for every stream; else for the
 * streams whose names start with its content (`generation-`: a disk that has room for the ledger's small appends and
 * not for a generation's record, as a nearly full one may).
 */
export const diskFullFlag = (dataDir: string) => join(dataDir, 'disk-full');

/**
 * The flag file that makes appends to the streams whose names start with its content fail ambiguously: written, then
 * answered as unavailable (as an EventStoreDB append that timed out after its commit).
 */
export const ambiguousAppendsFlag = (dataDir: string) => join(dataDir, 'ambiguous-appends');

/** The streams whose appends were refused, one a line, in the data directory. */
const refusedLog = (dataDir: string) => join(dataDir, 'disk-full.refused');
export const refusedAppends = (dataDir: string): string[] => (existsSync(refusedLog(dataDir)) ? readFileSync(refusedLog(dataDir), 'utf8').split('\n').filter(Boolean) : []);

/** What better-sqlite3 throws when a write meets ENOSPC: a SqliteError with code SQLITE_FULL. */
export const sqliteFull = () => Object.assign(new Error('database or disk is full'), { name: 'SqliteError', code: 'SQLITE_FULL' });

/** The stream prefix a flag file names ('' for every stream), or null when it does not exist. */
const flagged = (file: string): string | null => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
};

/**
 * For startSwitchyard's `eventStoreWrapper`: while the disk-full flag file exists in the data directory, every append
 * to the event log (on the request thread) it names fails as on a full disk, before anything is written (its stream is
 * noted, see refusedAppends); reads go on. While the ambiguous flag exists, the appends it names are written and then
 * fail as unavailable.
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }): EventStore =>
  thread === 'storage'
    ? store
    : delegatingEventStore(store, {
        append(stream, events, options) {
          const full = flagged(diskFullFlag(dataDir));
          if (full !== null && stream.startsWith(full)) {
            appendFileSync(refusedLog(dataDir), `${stream}\n`);
            return Promise.reject(sqliteFull());
          }
          const ambiguous = flagged(ambiguousAppendsFlag(dataDir));
          if (ambiguous !== null && ambiguous !== '' && stream.startsWith(ambiguous)) {
            return store.append(stream, events, options).then(() => Promise.reject(new UnavailableError('injected: the append timed out after its commit')));
          }
          return store.append(stream, events, options);
        },
      });
