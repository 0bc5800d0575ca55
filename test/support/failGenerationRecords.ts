import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/** The flag file that makes the next generation record's append fail once (see wrapEventStore). */
export const failNextGenerationRecordFlag = (dataDir: string) => join(dataDir, 'fail-next-generation-record');

/**
 * For startSwitchyard's `eventStoreWrapper`: while the flag file exists, the next append to a `generation-` stream
 * throws (as a process killed between a call's settlement and its record leaves it: the charge in the ledger, no
 * record) and removes the flag.
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir }): EventStore =>
  delegatingEventStore(store, {
    append(stream, events, options) {
      const flag = failNextGenerationRecordFlag(dataDir);
      if (stream.startsWith('generation-') && existsSync(flag)) {
        rmSync(flag);
        return Promise.reject(new Error('injected: the process stopped before the record was appended'));
      }
      return store.append(stream, events, options);
    },
  });
