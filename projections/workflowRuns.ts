import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { Filter, ReadStore, SortSpec } from '../src/readStore/readStore.js';
import type { RunStatus, StepStatus } from '../src/modules/workflows/run.decider.js';
import { CANCELLED_STEP_ERROR, RUN_CATEGORY, type RunError, type RunEvent } from '../src/modules/workflows/run.events.js';
import { defineProjection } from './projection.js';

export interface RunStepDoc {
  readonly key: string;
  readonly status: StepStatus;
  /** Attempts started (0 for a skipped step). */
  readonly attempts: number;
  /**
   * JSON text: outputs are free-form objects whose keys a document store may not accept as field names. Null when
   * larger than OUTPUT_KEPT_BYTES (`outputOmitted`): a run's outputs (up to 1 MiB a step) would outgrow a document;
   * the run's stream has them all.
   */
  readonly output: string | null;
  readonly outputOmitted: boolean;
  /** The last attempt's input (its expressions evaluated), as JSON text like `output`; null before an outcome. */
  readonly input?: string | null;
  readonly inputOmitted?: boolean;
  readonly error: RunError | null;
  /** Nano-dollars charged by all its attempts (a charge that landed after the run's end included). */
  readonly cost: number;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  /** The run whose outcome of this step a retry reused (not run again), or null. */
  readonly carriedFrom: string | null;
  /** When a waiting delay step wakes; null once it woke (or for any other step). Absent in documents from before delays. */
  readonly wakingAt?: string | null;
}

export type WorkflowRunDoc = {
  _id: string;
  workflowId: string;
  version: number;
  status: RunStatus;
  steps: RunStepDoc[];
  /** As a step's output (null when omitted for its size). */
  output: string | null;
  outputOmitted: boolean;
  error: RunError | null;
  /** The step the run failed or was filtered on. */
  endStep: string | null;
  /** Nano-dollars charged by the run's steps: each attempt's charge, a late one (StepCharged) included. */
  cost: number;
  /** When the run was admitted; while it is queued, when it was queued. */
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  /** When the run was queued for a slot (null if it started at once). */
  queuedAt: string | null;
  /** The global position of its RunQueued event: the queue's order, FIFO per workflow (null if never queued). */
  queuePosition: number | null;
  /** The failed run this one retries, or null. */
  retryOf: string | null;
  /** Runs before this one in a chain of runs triggering each other (0: started by a person, a webhook, a schedule…). */
  depth: number;
  /**
   * The API key that started or caused the run (RunIdentity.keyId), or null (a webhook, a schedule, the bootstrap
   * admin key…): a restricted key lists only its own runs.
   */
  keyId: string | null;
  /**
   * The log position of the run's first event (RunQueued or RunStarted): lists are in this order, the order runs
   * began in, since triggered runs' ids are derived (hashes) and do not sort by time.
   */
  seq: number;
};

export const WORKFLOW_RUNS = 'workflowRuns';

const json = (value: unknown): string => JSON.stringify(value ?? null);

/** Bytes of JSON an output may have to be kept in the read model. */
export const OUTPUT_KEPT_BYTES = 16 * 1024;
const fits = (text: string): boolean =>
  // UTF-16 length bounds the UTF-8 bytes from below; the exact count only for the ones near the limit.
  text.length <= OUTPUT_KEPT_BYTES / 3 || Buffer.byteLength(text, 'utf8') <= OUTPUT_KEPT_BYTES;
const kept = (value: unknown): { output: string | null; outputOmitted: boolean } => {
  const text = json(value);
  return fits(text) ? { output: text, outputOmitted: false } : { output: null, outputOmitted: true };
};
/** An attempt's input as kept: absent from the event (too large, or never evaluated) is null, not omitted. */
const keptInput = (value: unknown): { input: string | null; inputOmitted: boolean } => {
  if (value === undefined) return { input: null, inputOmitted: false };
  const text = json(value);
  return fits(text) ? { input: text, inputOmitted: false } : { input: null, inputOmitted: true };
};

const withStep = (doc: WorkflowRunDoc, key: string, change: (step: RunStepDoc) => RunStepDoc): WorkflowRunDoc => {
  const index = doc.steps.findIndex((step) => step.key === key);
  const current: RunStepDoc = index >= 0 ? doc.steps[index]! : { key, status: 'running', attempts: 0, output: null, outputOmitted: false, error: null, cost: 0, startedAt: null, endedAt: null, carriedFrom: null, wakingAt: null };
  const steps = [...doc.steps];
  if (index >= 0) steps[index] = change(current);
  else steps.push(change(current));
  return { ...doc, steps };
};

/** As the run decider (closeInFlight): no step stays in flight once the run has ended, failed or cancelled. */
const closeInFlight = (doc: WorkflowRunDoc, error: RunError, at: string): WorkflowRunDoc => ({
  ...doc,
  steps: doc.steps.map((step) => (step.status === 'running' || step.status === 'waiting' ? { ...step, status: 'failed' as const, error, endedAt: at, wakingAt: null } : step)),
});

const ended = (doc: WorkflowRunDoc, status: RunStatus, at: string, extra: Partial<WorkflowRunDoc> = {}): WorkflowRunDoc => ({
  ...doc,
  ...extra,
  status,
  endedAt: at,
  durationMs: Math.max(0, Date.parse(at) - Date.parse(doc.startedAt)),
});

export const workflowRunsProjection = defineProjection<WorkflowRunDoc>({
  name: 'workflowRuns',
  // 2: queued runs, retries and carried-over steps. 3: steps' inputs, and the run's depth. 4: seq (start order).
  // 5: a cancel ends the step in flight (FAILED, CANCELLED); late charges (StepCharged). 6: keyId (whose run it is).
  // 7: a failure (a timeout) ends the step in flight too, with the run's error.
  version: 7,
  collection: WORKFLOW_RUNS,
  // One document per run: it grows with traffic.
  onDisk: true,
  filter: { categories: [RUN_CATEGORY] },
  indexes: [{ keys: { workflowId: 1 } }, { keys: { workflowId: 1, seq: 1 } }, { keys: { status: 1 } }, { keys: { queuePosition: 1 } }],
  documentId: (event) => event.stream.slice(RUN_CATEGORY.length + 1),
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<RunEvent>;
    if (event.type === 'RunStarted' && doc?.status === 'queued') return { ...doc, status: 'running', startedAt: event.data.at };
    if (event.type === 'RunStarted' || event.type === 'RunQueued') {
      const { runId, workflowId, version, retryOf, depth, keyId, at } = event.data;
      const queued = event.type === 'RunQueued';
      return {
        _id: runId,
        workflowId,
        version,
        status: queued ? 'queued' : 'running',
        steps: [],
        output: null,
        outputOmitted: false,
        error: null,
        endStep: null,
        cost: 0,
        startedAt: at,
        endedAt: null,
        durationMs: null,
        queuedAt: queued ? at : null,
        queuePosition: queued ? recorded.position : null,
        retryOf: retryOf ?? null,
        seq: recorded.position,
        depth: depth ?? 0,
        keyId: keyId ?? null,
      };
    }
    if (!doc) return null;
    switch (event.type) {
      case 'StepCarriedOver': {
        const { key, fromRun, output, skipped, at } = event.data;
        const outcome = skipped === null ? { status: 'succeeded' as const, ...kept(output) } : { status: 'skipped' as const };
        return withStep(doc, key, (step) => ({ ...step, ...outcome, attempts: 0, startedAt: at, endedAt: at, carriedFrom: fromRun }));
      }
      case 'StepStarted': {
        const { key, attempt, at } = event.data;
        return withStep(doc, key, (step) => ({ ...step, status: 'running', attempts: attempt, error: null, startedAt: step.startedAt ?? at, endedAt: null }));
      }
      case 'StepWaiting': {
        const { key, until } = event.data;
        return withStep(doc, key, (step) => ({ ...step, status: 'waiting', wakingAt: until }));
      }
      case 'StepSucceeded': {
        const { key, output, cost, input, at } = event.data;
        const outcome = { status: 'succeeded' as const, ...kept(output), ...keptInput(input), error: null };
        return { ...withStep(doc, key, (step) => ({ ...step, ...outcome, cost: step.cost + cost, endedAt: at, wakingAt: null })), cost: doc.cost + cost };
      }
      case 'StepFailed': {
        const { key, error, cost, input, at } = event.data;
        return { ...withStep(doc, key, (step) => ({ ...step, status: 'failed', ...keptInput(input), error, cost: step.cost + cost, endedAt: at, wakingAt: null })), cost: doc.cost + cost };
      }
      case 'StepSkipped': {
        const { key, at } = event.data;
        return withStep(doc, key, (step) => ({ ...step, status: 'skipped', startedAt: at, endedAt: at }));
      }
      case 'RunSucceeded':
        return ended(doc, 'succeeded', event.data.at, kept(event.data.output));
      case 'RunFailed': {
        const { at, error } = event.data;
        return ended(closeInFlight(doc, error, at), 'failed', at, { error, endStep: event.data.step });
      }
      case 'RunCancelled': {
        const { at } = event.data;
        return ended(closeInFlight(doc, CANCELLED_STEP_ERROR, at), 'cancelled', at, { error: { code: 'CANCELLED', message: event.data.reason } });
      }
      case 'StepCharged': {
        const { key, cost } = event.data;
        return { ...withStep(doc, key, (step) => ({ ...step, cost: step.cost + cost })), cost: doc.cost + cost };
      }
      case 'RunFiltered':
        return ended(doc, 'filtered', event.data.at, { endStep: event.data.step });
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const workflowRunQueries = (store: ReadStore) => {
  const runs = store.collection<WorkflowRunDoc>(WORKFLOW_RUNS);
  return {
    byId: (runId: string) => runs.findOne({ _id: runId }),
    /**
     * One page of a workflow's runs, optionally of one status, and only those of one API key when `keyId` is given (a
     * restricted key's own: filter and sort from seqConnection).
     */
    pageForWorkflow: (workflowId: string, status: RunStatus | null, keyId: string | undefined, page: { filter: Filter; sort: SortSpec; limit: number }) =>
      runs.find({ ...page.filter, workflowId, ...(keyId !== undefined && { keyId }), ...(status !== null && { status }) }, { sort: page.sort, limit: page.limit }),
    /** Runs not yet ended (to resume or admit after a restart); queued ones in queue order. */
    unfinished: async () => ({
      running: (await runs.find({ status: 'running' })).map(({ _id, workflowId }) => ({ _id, workflowId })),
      queued: (await runs.find({ status: 'queued' }, { sort: { queuePosition: 1 } })).map(({ _id, workflowId }) => ({ _id, workflowId })),
    }),
  };
};
