import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { wrapSubscriptions } from './wrapSubscriptions.js';

/**
 * An event store whose subscriptions break mid-stream whenever `shouldFail()` says so: the batch about to be
 * delivered is cut in half, the first half delivered, then the iteration throws (as a dropped connection would).
 */
export const flakySubscriptions = (store: EventStore, shouldFail: () => boolean): EventStore =>
  wrapSubscriptions(store, async function* (messages) {
    for await (const message of messages) {
      if (message.kind === 'events' && shouldFail()) {
        const half = message.events.slice(0, Math.floor(message.events.length / 2));
        if (half.length > 0) yield { kind: 'events', events: half };
        throw new Error('injected: the subscription broke mid-stream');
      }
      yield message;
    }
  });

/** The flag file that makes every subscription of an app started with this wrapper fail (see wrapEventStore). */
export const failSubscriptionsFlag = (dataDir: string) => join(dataDir, 'fail-subscriptions');

/**
 * For startSwitchyard's `eventStoreWrapper` (loaded on the request thread and on the storage thread alike): every
 * subscription fails mid-stream while the flag file exists in the data directory.
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir }) => flakySubscriptions(store, () => existsSync(failSubscriptionsFlag(dataDir)));
