import { existsSync, readFileSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { EventStore, RecordedEvent, SubscriptionMessage } from '../../src/eventStore/eventStore.js';
import type { WrapEventStore } from '../../src/eventStore/eventStoreWrapper.js';

/** The flag file naming a step (its key) whose next StepSucceeded append fails once (see wrapEventStore). */
export const failStepOutcomeOnceFlag = (dataDir: string) => join(dataDir, 'fail-step-outcome-once');

/** Stored id → the id the append asked for (the copies written again, as EventStoreDB would with `any`). */
const asked = new Map<string, string>();
const asAsked = <E extends RecordedEvent>(event: E): E => {
  const id = asked.get(event.id);
  return id === undefined ? event : { ...event, id };
};

/**
 * For startSwitchyard's `eventStoreWrapper` (the request thread's store, where the executor appends and the event
 * triggers read), two faults:
 * - EventStoreDB's `any`: its id check for an append with `expectedRevision: 'any'` is a bounded in-memory cache (lost
 *   on a restart or a leader change, rolled over by traffic), so an append of ids already in the stream can be written
 *   again, with the same ids, at the next revisions. The embedded store refuses a repeated id everywhere, so such an
 *   append is written here under fresh ids, and every read and subscription shows them with the ids asked for.
 * - While the flag file names a step, its next StepSucceeded append to a `run-` stream throws (an unreachable store)
 *   and removes the flag: the executor reads the run again and runs the step again as the same attempt.
 */
export const wrapEventStore: WrapEventStore = (store, { dataDir, thread }): EventStore => {
  if (thread !== 'request') return store;
  return {
    kind: store.kind,
    async append(stream, events, options) {
      const flag = failStepOutcomeOnceFlag(dataDir);
      if (stream.startsWith('run-') && existsSync(flag)) {
        const key = readFileSync(flag, 'utf8').trim();
        if (events.some((e) => e.type === 'StepSucceeded' && (e.data as { key?: unknown }).key === key)) {
          rmSync(flag);
          throw new Error('injected: the event store is unreachable');
        }
      }
      if ((options?.expectedRevision ?? 'any') === 'any' && events.some((e) => e.id !== undefined)) {
        const stored = new Set((await store.readStream(stream)).map((e) => asAsked(e).id));
        if (events.some((e) => e.id !== undefined && stored.has(e.id))) {
          const copies = events.map((e) => {
            if (e.id === undefined) return e;
            const id = randomUUID();
            asked.set(id, e.id);
            return { ...e, id };
          });
          return store.append(stream, copies, options);
        }
      }
      return store.append(stream, events, options);
    },
    readStream: async (stream, options) => (await store.readStream(stream, options)).map(asAsked),
    readAll: async (options) => (await store.readAll(options)).map(asAsked),
    subscribeToAll(options) {
      const inner = store.subscribeToAll(options);
      return {
        close: () => inner.close(),
        async *[Symbol.asyncIterator](): AsyncGenerator<SubscriptionMessage> {
          for await (const message of inner) yield message.kind === 'events' ? { kind: 'events', events: message.events.map(asAsked) } : message;
        },
      };
    },
    headPosition: () => store.headPosition(),
    health: () => store.health(),
    close: () => store.close(),
    ...(store.hurry && { hurry: () => store.hurry!() }),
  };
};
