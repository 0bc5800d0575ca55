import type { EventStore } from './eventStore.js';

/**
 * A test seam for fault injection: a module (by URL, so the storage thread can load it too) whose
 * `wrapEventStore` wraps the event store each consumer of the log reads through. Never set from configuration.
 */
export type WrapEventStore = (store: EventStore, where: { readonly dataDir: string; readonly thread: 'request' | 'storage' }) => EventStore;

export const loadEventStoreWrapper = async (url: string | undefined): Promise<WrapEventStore> => {
  if (url === undefined) return (store) => store;
  const loaded = (await import(url)) as { wrapEventStore?: WrapEventStore };
  if (typeof loaded.wrapEventStore !== 'function') throw new Error(`${url} does not export wrapEventStore`);
  return loaded.wrapEventStore;
};
