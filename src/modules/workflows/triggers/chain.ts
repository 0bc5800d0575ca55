/**
 * Chains of runs triggering each other (an error workflow, an emitted event, a table entry a step wrote, a model call
 * a run made): a run a trigger starts because of another run gets that run's depth + 1 and its chain's first run, and
 * runs.start refuses a run past MAX_CHAIN_DEPTH, or past MAX_RUNS_PER_CHAIN of one chain (a run emitting four events
 * that each start a run doing the same made 1,365 runs in 4 s under the depth limit alone). One rule for every
 * trigger, so no set of workflows can feed each other forever, nor fan out without bound.
 *
 * The same cause gives the run its key. A run spends under the API key that caused it, as a run a key starts directly
 * does (RunIdentity.keyId: its model calls count against that key's limit and usage): the key the source event records
 * as its author (an entry written over GraphQL or REST, a key's model call, the settlement of that call), else the key
 * of the run that caused the event (an entry a step wrote, an emitted event, a failed run, a run's model call). Both
 * are read from the event log, so a trigger replaying events after a restart starts the same key's runs. Neither (a
 * schedule, a webhook, an admin's grant or refund, a key created or revoked): no key, the account's balance and the
 * workflow's budget bound the run.
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

/** What a run a trigger starts takes from the cause of its source event. */
export interface Cause {
  readonly place: ChainPlace;
  /** The API key of the account the run spends under, or null (no key caused it). */
  readonly keyId: string | null;
}

/** What places a run in a chain: the event log (the causing run's first event) and who owns a workflow. */
export interface ChainDeps {
  readonly eventStore: EventStore;
  readonly ownerOf: (workflowId: string) => Promise<string | null>;
}

/**
 * The cause of a run of `accountId` started because of an event: `run`, the run the server recorded as its cause (null
 * when none), and `key`, the key the event records as its author (null when none). Only a run of the same account
 * places it in a chain or gives it a key: another account's run (or one that does not exist) answers depth 0 and no
 * key, so a cause naming another account's run neither counts in its chain nor tells that it exists.
 */
export const causeOf = async (deps: ChainDeps, source: { readonly run?: string | null; readonly key?: string | null }, accountId: string): Promise<Cause> => {
  const key = source.key ?? null;
  const { run } = source;
  if (run === null || run === undefined || !RUN_ID.test(run)) return { place: { depth: 0 }, keyId: key };
  const [first] = (await deps.eventStore.readStream(runStream(run), { maxCount: 1 })) as RecordedEvent<RunEvent>[];
  if (first?.type !== 'RunStarted' && first?.type !== 'RunQueued') return { place: { depth: 0 }, keyId: key };
  if ((await deps.ownerOf(first.data.workflowId)) !== accountId) return { place: { depth: 0 }, keyId: key };
  return { place: { depth: (first.data.depth ?? 0) + 1, chain: first.data.chain ?? run }, keyId: key ?? first.data.keyId ?? null };
};
