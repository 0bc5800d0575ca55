/**
 * Custom events of an account (`action.emit`), in the `customevent-{accountId}` stream, for `event` triggers named
 * `custom.<name>` to match. Appended with an id derived from the emitting step's idempotency key, so an attempt run
 * again after a crash emits nothing new: the embedded store refuses a second event with the same id; EventStoreDB
 * checks ids for `expectedRevision: 'any'` only against a bounded cache of recent ones, and may write the event again
 * at the next revision, with the same id, which starts nothing new either: the event triggers name the runs of a
 * custom event by its id (triggers/events.ts eventRunId).
 */
import { createHash } from 'node:crypto';
import { ConflictError } from '../../errors.js';
import type { EventStore, JsonValue } from '../../eventStore/eventStore.js';

export type CustomEventEmitted = {
  readonly type: 'CustomEventEmitted';
  readonly data: {
    readonly accountId: string;
    /** `custom.<name>` (definition.ts CUSTOM_EVENT). */
    readonly name: string;
    readonly data: JsonValue;
    /** The run step that emitted it (its run's depth bounds the chain it starts). */
    readonly source: { readonly workflowId: string; readonly runId: string; readonly step: string } | null;
    readonly at: string;
  };
};

export const CUSTOM_EVENT_CATEGORY = 'customevent';
export const customEventStream = (accountId: string): string => `${CUSTOM_EVENT_CATEGORY}-${accountId}`;

/** A UUID-shaped id (EventStoreDB needs one) derived from the key: the same key gives the same event id. */
export const derivedEventId = (key: string): string => {
  const hex = createHash('sha256').update(`customevent\n${key}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

export const emitCustomEvent = async (
  eventStore: EventStore,
  input: { accountId: string; name: string; data: JsonValue; source: CustomEventEmitted['data']['source']; idempotencyKey: string; at: string },
): Promise<{ eventId: string }> => {
  const eventId = derivedEventId(input.idempotencyKey);
  const event: CustomEventEmitted = { type: 'CustomEventEmitted', data: { accountId: input.accountId, name: input.name, data: input.data, source: input.source, at: input.at } };
  try {
    await eventStore.append(customEventStream(input.accountId), [{ id: eventId, ...event, metadata: { actor: input.accountId, at: input.at, ...(input.source && { correlationId: input.source.runId }) } }], { expectedRevision: 'any' });
  } catch (error) {
    // The store answers a repeated append of the same ids as done; a conflict on ids means the same: emitted before.
    if (!(error instanceof ConflictError)) throw error;
  }
  return { eventId };
};
