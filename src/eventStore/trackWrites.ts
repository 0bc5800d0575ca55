import type { WriteHealth } from '../storage/writeHealth.js';
import { delegatingEventStore } from './delegatingEventStore.js';
import type { EventStore } from './eventStore.js';

/**
 * `store` whose appends' outcomes feed `writes`, and whose health says so: a store every append of which is refused
 * (a full disk, a read-only file system) is not ok on /health until an append succeeds again, though its `SELECT 1`
 * still answers. Any adapter (embedded, EventStoreDB); the only cost per append is settling its promise once more.
 */
export const trackWrites = (store: EventStore, writes: WriteHealth): EventStore =>
  delegatingEventStore(store, {
    append: (stream, events, options) =>
      store.append(stream, events, options).then(
        (result) => {
          writes.succeeded();
          return result;
        },
        (error: unknown) => {
          writes.failed(error);
          throw error;
        },
      ),
    async health() {
      const health = await store.health();
      const failure = writes.failure();
      return failure === null ? health : { ...health, ok: false, detail: `${health.detail ?? store.kind}: the last write failed (${failure.message})`, lastWriteFailure: failure };
    },
  });
