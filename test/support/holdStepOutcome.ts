import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/** Holds the StepSucceeded of the step named in this file (its key), for a kill -9 between a step's work and its record. */
export const holdStepFlag = (dataDir: string) => join(dataDir, 'hold-step-outcome');
/** Written once the outcome is held: the step has done its work, its StepSucceeded is not (and will not be) appended. */
export const heldMarker = (dataDir: string) => join(dataDir, 'step-outcome-held');

/**
 * For startSwitchyard's `eventStoreWrapper` (the request thread's store, where the executor appends): while the flag
 * file names a step, the append of that step's StepSucceeded to a `run-` stream never completes (nothing written).
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }): EventStore => {
  if (thread !== 'request') return store;
  const flag = holdStepFlag(dataDir);
  return delegatingEventStore(store, {
    append(stream, events, options) {
      const key = stream.startsWith('run-') && existsSync(flag) ? readFileSync(flag, 'utf8').trim() : null;
      if (key !== null && events.some((e) => e.type === 'StepSucceeded' && (e.data as { key?: unknown }).key === key)) {
        writeFileSync(heldMarker(dataDir), key);
        return new Promise(() => undefined);
      }
      return store.append(stream, events, options);
    },
  });
};
