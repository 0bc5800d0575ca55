import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/** Shared through globalThis: the app loads this module by URL, which may be a different instance than the test's. */
const REGISTRY = Symbol.for('switchyard.test.countingStreamReads');
const registry = (): Map<string, string[]> => {
  const global = globalThis as { [REGISTRY]?: Map<string, string[]> };
  return (global[REGISTRY] ??= new Map());
};

/** The streams the request thread read (readStream) in the app over this data directory so far, one entry a read. */
export const streamReads = (dataDir: string): readonly string[] => registry().get(dataDir) ?? [];

const counting = (store: EventStore, dataDir: string): EventStore => ({
  ...delegatingEventStore(store, {}),
  readStream: (stream, options) => {
    const log = registry().get(dataDir) ?? [];
    registry().set(dataDir, log);
    log.push(stream);
    return store.readStream(stream, options);
  },
});

/**
 * For startSwitchyard's `eventStoreWrapper`: records every readStream of the request thread's store (where the
 * executor and the triggers read; the storage thread's reads are not counted).
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }) => (thread === 'request' ? counting(store, dataDir) : store);
