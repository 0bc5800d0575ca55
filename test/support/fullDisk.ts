import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/** The flag file that makes the event log's disk full (see wrapEventStore). */
export const diskFullFlag = (dataDir: string) => join(dataDir, 'disk-full');

/** The streams whose appends were refused, one a line, in the data directory. */
const refusedLog = (dataDir: string) => join(dataDir, 'disk-full.refused');
export const refusedAppends = (dataDir: string): string[] => (existsSync(refusedLog(dataDir)) ? readFileSync(refusedLog(dataDir), 'utf8').split('\n').filter(Boolean) : []);

/** What better-sqlite3 throws when a write meets ENOSPC: a SqliteError with code SQLITE_FULL. */
export const sqliteFull = () => Object.assign(new Error('database or disk is full'), { name: 'SqliteError', code: 'SQLITE_FULL' });

/**
 * For startSwitchyard's `eventStoreWrapper`: while the flag file exists in the data directory, every append to the
 * event log (on the request thread) fails as on a full disk, before anything is written (its stream is noted, see
 * refusedAppends); reads go on.
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }): EventStore =>
  thread === 'storage'
    ? store
    : delegatingEventStore(store, {
        append(stream, events, options) {
          if (!existsSync(diskFullFlag(dataDir))) return store.append(stream, events, options);
          appendFileSync(refusedLog(dataDir), `${stream}\n`);
          return Promise.reject(sqliteFull());
        },
      });
