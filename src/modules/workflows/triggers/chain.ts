/**
 * Chains of runs triggering each other (an error workflow, an emitted event, a table entry a step wrote, a model call
 * a run made): a run a trigger starts because of another run gets that run's depth + 1 and its chain's first run, and
 * runs.start refuses a run past MAX_CHAIN_DEPTH, or past MAX_RUNS_PER_CHAIN of one chain (a run emitting four events
 * that each start a run doing the same made 1,365 runs in 4 s under the depth limit alone). One rule for every
 * trigger, so no set of workflows can feed each other forever, nor fan out without bound.
 */
import type { EventStore, RecordedEvent } from '../../../eventStore/eventStore.js';
import { runStream, type RunEvent } from '../run.events.js';

const RUN_ID = /^run_[0-9a-z]{1,64}$/;

/** Where a run started because of another one stands in its chain: its depth, and the chain's first run. */
export interface ChainPlace {
  readonly depth: number;
  /** The id of the run that began the chain (absent: no run caused this one). */
  readonly chain?: string;
}

/** What places a run in a chain: the event log (the causing run's first event) and who owns a workflow. */
export interface ChainDeps {
  readonly eventStore: EventStore;
  readonly ownerOf: (workflowId: string) => Promise<string | null>;
}

/**
 * The place of a run of `accountId` started because of `causedBy` (a run id the server recorded, or null when no run
 * caused it). Only a run of the same account places it in a chain: another account's run (or one that does not exist)
 * answers depth 0, so a cause naming another account's run neither counts in its chain nor tells that it exists.
 */
export const chainAfter = async (deps: ChainDeps, causedBy: string | null | undefined, accountId: string): Promise<ChainPlace> => {
  if (causedBy === null || causedBy === undefined || !RUN_ID.test(causedBy)) return { depth: 0 };
  const [first] = (await deps.eventStore.readStream(runStream(causedBy), { maxCount: 1 })) as RecordedEvent<RunEvent>[];
  if (first?.type !== 'RunStarted' && first?.type !== 'RunQueued') return { depth: 0 };
  if ((await deps.ownerOf(first.data.workflowId)) !== accountId) return { depth: 0 };
  return { depth: (first.data.depth ?? 0) + 1, chain: first.data.chain ?? causedBy };
};
