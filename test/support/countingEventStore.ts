import type { EventStore } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';
import { wrapSubscriptions } from './wrapSubscriptions.js';

/** One event a subscription on the request thread delivered, and whether that subscription asked for its type by name. */
export interface Delivery {
  readonly stream: string;
  readonly type: string;
  readonly byType: boolean;
}

/** Shared through globalThis: the app loads this module by URL, which may be a different instance than the test's. */
const REGISTRY = Symbol.for('switchyard.test.countingEventStore');
const registry = (): Map<string, Delivery[]> => {
  const global = globalThis as { [REGISTRY]?: Map<string, Delivery[]> };
  return (global[REGISTRY] ??= new Map());
};

/** What the request thread's subscriptions of the app over this data directory delivered so far. */
export const deliveries = (dataDir: string): readonly Delivery[] => registry().get(dataDir) ?? [];

const counting = (store: EventStore, dataDir: string): EventStore =>
  wrapSubscriptions(store, async function* (messages, options) {
    const named = new Set(options?.filter?.eventTypes ?? []);
    const log = registry().get(dataDir) ?? [];
    registry().set(dataDir, log);
    for await (const message of messages) {
      if (message.kind === 'events') for (const event of message.events) log.push({ stream: event.stream, type: event.type, byType: named.has(event.type) });
      yield message;
    }
  });

/**
 * For startSwitchyard's `eventStoreWrapper`: records every event the request thread's subscriptions are delivered
 * (the storage thread's, the read models', are not counted).
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }) => (thread === 'request' ? counting(store, dataDir) : store);
