import type { EventStore } from './eventStore.js';

/**
 * `store` with some of its calls replaced (trackWrites; the test wrappers loaded through `eventStoreWrapper`: a
 * failing append, a counted subscription...); every other call goes to `store` unchanged.
 */
export const delegatingEventStore = (store: EventStore, overrides: Partial<Pick<EventStore, 'append' | 'subscribeToAll' | 'hurry' | 'health'>>): EventStore => ({
  kind: store.kind,
  append: (stream, events, options) => store.append(stream, events, options),
  readStream: (stream, options) => store.readStream(stream, options),
  readAll: (options) => store.readAll(options),
  headPosition: () => store.headPosition(),
  health: () => store.health(),
  close: () => store.close(),
  subscribeToAll: (options) => store.subscribeToAll(options),
  ...(store.hurry && { hurry: () => store.hurry!() }),
  ...overrides,
});
