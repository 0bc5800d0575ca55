import type { EventStore, SubscribeOptions, SubscriptionMessage } from '../../src/eventStore/eventStore.js';
import { delegatingEventStore } from '../../src/eventStore/delegatingEventStore.js';

/**
 * `store` with each subscription's messages passed through `through` (given the subscription's options); every other
 * call goes to `store` unchanged. The test wrappers (counting, flaky) differ only in `through`.
 */
export const wrapSubscriptions = (
  store: EventStore,
  through: (messages: AsyncIterable<SubscriptionMessage>, options: SubscribeOptions | undefined) => AsyncGenerator<SubscriptionMessage>,
): EventStore =>
  delegatingEventStore(store, {
    subscribeToAll(options) {
      const inner = store.subscribeToAll(options);
      return { close: () => inner.close(), [Symbol.asyncIterator]: () => through(inner, options) };
    },
  });
