/**
 * Chains of runs triggering each other (an error workflow, an emitted event, a table entry a step wrote, a model call
 * a run made): a run a trigger starts because of another run gets that run's depth + 1, and runs.start refuses a run
 * past MAX_CHAIN_DEPTH. One rule for every trigger, so no pair of workflows can feed each other forever.
 */
import type { EventStore, RecordedEvent } from '../../../eventStore/eventStore.js';
import { runStream, type RunEvent } from '../run.events.js';

const RUN_ID = /^run_[0-9a-z]{1,64}$/;

/** The depth of a run started because of `causedBy` (a run id, or null when no run caused it). */
export const depthAfter = async (eventStore: EventStore, causedBy: string | null | undefined): Promise<number> => {
  if (causedBy === null || causedBy === undefined || !RUN_ID.test(causedBy)) return 0;
  const [first] = (await eventStore.readStream(runStream(causedBy), { maxCount: 1 })) as RecordedEvent<RunEvent>[];
  return first?.type === 'RunStarted' || first?.type === 'RunQueued' ? (first.data.depth ?? 0) + 1 : 0;
};
