import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/** The flag file that makes the next append of a step's outcome to a run stream fail once (see wrapEventStore). */
export const failNextStepOutcomeFlag = (dataDir: string) => join(dataDir, 'fail-next-step-outcome');

/**
 * For startSwitchyard's `eventStoreWrapper`: while the flag file exists, the next append of StepSucceeded or
 * StepFailed to a `run-` stream throws (as an unreachable store would) and removes the flag.
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir }): EventStore =>
  delegatingEventStore(store, {
    append(stream, events, options) {
      const flag = failNextStepOutcomeFlag(dataDir);
      if (stream.startsWith('run-') && events.some((e) => e.type === 'StepSucceeded' || e.type === 'StepFailed') && existsSync(flag)) {
        rmSync(flag);
        return Promise.reject(new Error('injected: the event store is unreachable'));
      }
      return store.append(stream, events, options);
    },
  });
