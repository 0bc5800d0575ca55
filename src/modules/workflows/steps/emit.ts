/**
 * `action.emit`: append a custom event of the workflow's account (`{"event": "custom.<name>", "data": …}`), which
 * `event` triggers naming it match. Idempotent per attempt: the event's id derives from the step's idempotency key,
 * so an attempt run again after a crash does not emit twice (or, on EventStoreDB, may write the same event again, which
 * starts no second run: see customEvents.ts).
 */
import { z } from 'zod';
import type { EventStore, JsonValue } from '../../../eventStore/eventStore.js';
import { emitCustomEvent } from '../customEvents.js';
import { CUSTOM_EVENT } from '../definition.js';
import { parseInput } from './parseInput.js';
import type { StepRunner } from './step.js';

/** Bytes of an emitted event's data as JSON (the run that it starts gets it as its trigger). */
export const MAX_EMIT_BYTES = 64 * 1024;

export const emitInput = z.strictObject({
  event: z.string().regex(CUSTOM_EVENT, 'must be custom.<name> (lowercase letters, digits, _ - .)'),
  data: z
    .json()
    .default(null)
    .refine((data) => Buffer.byteLength(JSON.stringify(data)) <= MAX_EMIT_BYTES, `must be at most ${MAX_EMIT_BYTES} bytes as JSON`),
});

export const actionEmit =
  (deps: { eventStore: EventStore; now: () => Date }): StepRunner =>
  async (input, context) => {
    const { event, data } = parseInput(emitInput, input);
    const { eventId } = await emitCustomEvent(deps.eventStore, {
      accountId: context.principal.accountId,
      name: event,
      data: data as JsonValue,
      source: { workflowId: context.workflowId, runId: context.runId, step: context.stepKey },
      idempotencyKey: context.idempotencyKey,
      at: deps.now().toISOString(),
    });
    return { output: { event, eventId }, cost: 0 };
  };
