import type { EventStore, SubscribeOptions, SubscriptionMessage } from '../../src/eventStore/eventStore.js';

/**
 * `store` with each subscription's messages passed through `through` (given the subscription's options); every other
 * call goes to `store` unchanged. The test wrappers (counting, flaky) differ only in `through`.
 */
export const wrapSubscriptions = (
  store: EventStore,
  through: (messages: AsyncIterable<SubscriptionMessage>, options: SubscribeOptions | undefined) => AsyncGenerator<SubscriptionMessage>,
): EventStore => ({
  kind: store.kind,
  append: (stream, events, options) => store.append(stream, events, options),
  readStream: (stream, options) => store.readStream(stream, options),
  readAll: (options) => store.readAll(options),
  headPosition: () => store.headPosition(),
  health: () => store.health(),
  close: () => store.close(),
  ...(store.hurry && { hurry: () => store.hurry!() }),
  subscribeToAll(options) {
    const inner = store.subscribeToAll(options);
    return { close: () => inner.close(), [Symbol.asyncIterator]: () => through(inner, options) };
  },
});
