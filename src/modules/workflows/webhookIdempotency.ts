/**
 * A webhook's Idempotency-Key dedupes for 24 hours: the same key within 24 h of the run it started answers that run;
 * later, it starts a new one. Durable without a table: the key names a chain of run ids (derived from the workflow,
 * the key and the chain's index), and the run stream's `no_stream` start decides who takes an id, across concurrent
 * calls and restarts. A call walks the chain: a run of the key still in its window is answered, an expired one sends
 * it to the next id, the first id without a run is started. Pure but for the `start` it is handed.
 */
import { createHash } from 'node:crypto';

export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1_000;
/** A key reused once a day for this many years still finds its place; beyond, something is wrong with the clock. */
const MAX_CHAIN = 100_000;

/**
 * The `index`-th run id of a key. Index 0 is the id the webhook has always derived, so runs started before the
 * window existed are still found.
 */
export const idempotentRunId = (workflowId: string, key: string, index: number): string =>
  `run_${createHash('sha256')
    .update(index === 0 ? `${workflowId}\n${key}` : `${workflowId}\n${key}\n${index}`)
    .digest('hex')
    .slice(0, 40)}`;

/** Whether a run started at `startedAt` still answers for its key at `nowMs`. */
export const withinIdempotencyWindow = (startedAt: string, nowMs: number): boolean => nowMs - Date.parse(startedAt) < IDEMPOTENCY_WINDOW_MS;

/**
 * The run a call with this key answers: `start(runId)` starts the run under that id, or answers the run already
 * there (as the runs API's `start` does with a given id).
 */
export const startIdempotent = async <R extends { readonly startedAt: string }>(
  start: (runId: string) => Promise<R>,
  workflowId: string,
  key: string,
  now: () => number,
): Promise<R> => {
  for (let index = 0; index < MAX_CHAIN; index++) {
    const run = await start(idempotentRunId(workflowId, key, index));
    if (withinIdempotencyWindow(run.startedAt, now())) return run;
  }
  throw new Error(`Idempotency-Key chain of workflow ${workflowId} is over ${MAX_CHAIN} runs long`);
};
