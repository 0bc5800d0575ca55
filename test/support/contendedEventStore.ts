import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/**
 * The file that makes "another process" (another gateway process on the same event log) rename an API key just before
 * this process appends to the key's stream, so that this process's append meets a revision it did not decide on. It
 * holds `<keyId> <count>`: that many appends to `apikey-<keyId>` are each preceded by one rename (`always`: every one).
 */
export const otherProcessRenamesKeyFile = (dataDir: string) => join(dataDir, 'other-process-renames-key');

/** How many renames "the other process" made so far (by key id), for the test's assertions. */
export const renamesByOtherProcess = (dataDir: string, keyId: string): number => {
  const file = join(dataDir, `other-process-renamed-${keyId}`);
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0;
};

/**
 * The file that makes appends to one stream slow (a busy disk, or a remote store): it holds `<stream> <ms>`, and each
 * append to that stream waits that long before it is written, so that commands sent at once all decide before the
 * first is written.
 */
export const slowAppendsFile = (dataDir: string) => join(dataDir, 'slow-appends');

/**
 * The file that makes "another process" append an event to any stream just before this process appends to it: JSON
 * `{stream, count, event}` (`count` a number or "always"; `event` a NewEvent, appended at any revision).
 */
export const otherProcessAppendsFile = (dataDir: string) => join(dataDir, 'other-process-appends');
type OtherAppends = { stream: string; count: number | 'always'; event: { type: string; data: unknown } };

/** For startSwitchyard's `eventStoreWrapper`: see otherProcessRenamesKeyFile, otherProcessAppendsFile and slowAppendsFile. */
export const wrapEventStore: WrapEventStore = (store, { dataDir }): EventStore =>
  delegatingEventStore(store, {
    async append(stream, events, options) {
      const slow = slowAppendsFile(dataDir);
      if (existsSync(slow)) {
        const [slowStream, ms] = readFileSync(slow, 'utf8').trim().split(' ') as [string, string];
        if (stream === slowStream) await new Promise((resolve) => setTimeout(resolve, Number(ms)));
      }
      const file = otherProcessRenamesKeyFile(dataDir);
      if (existsSync(file)) {
        const [keyId, count] = readFileSync(file, 'utf8').trim().split(' ') as [string, string];
        if (stream === `apikey-${keyId}` && count !== '0') {
          if (count !== 'always') writeFileSync(file, `${keyId} ${Number(count) - 1}`);
          const renamed = renamesByOtherProcess(dataDir, keyId) + 1;
          writeFileSync(join(dataDir, `other-process-renamed-${keyId}`), String(renamed));
          await store.append(stream, [{ type: 'ApiKeyRenamed', data: { keyId, name: `renamed elsewhere ${renamed}`, at: new Date().toISOString() } }], { expectedRevision: 'any' });
        }
      }
      const appends = otherProcessAppendsFile(dataDir);
      if (existsSync(appends)) {
        const other = JSON.parse(readFileSync(appends, 'utf8')) as OtherAppends;
        if (stream === other.stream && other.count !== 0) {
          if (other.count !== 'always') writeFileSync(appends, JSON.stringify({ ...other, count: other.count - 1 }));
          await store.append(stream, [other.event], { expectedRevision: 'any' });
        }
      }
      return store.append(stream, events, options);
    },
  });
