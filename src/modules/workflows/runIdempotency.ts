/**
 * An Idempotency-Key on a run's start (a webhook call, a manual run over REST or GraphQL) dedupes for 24 hours: the
 * same key within 24 h of the run it started answers that run (a retry of the same call: the same body), or is a
 * CONFLICT when sent with another body; later, it starts a new run. Durable without a table: the key names a chain
 * of run ids (derived from the workflow, whose key it is, the key and the chain's index), and the run stream's
 * `no_stream` start decides who takes an id, across concurrent calls and restarts. A call walks the chain: a run of
 * the key still in its window is answered, an expired one sends it to the next id, the first id without a run is
 * started. Pure but for the `start` it is handed.
 */
import { createHash } from 'node:crypto';
import type { JsonValue } from '../../eventStore/eventStore.js';

export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1_000;
/** A key reused once a day for this many years still finds its place; beyond, something is wrong with the clock. */
const MAX_CHAIN = 100_000;


/**
 * Whose keys a key is among: a webhook's callers share the workflow's keys (whoever holds its secret is one sender);
 * manual runs' keys are each API key's own (`keyId`; null: the bootstrap admin key, which is none of the store's, has
 * its account's), as model calls' Idempotency-Keys are (requestIdempotency.ts): another key of the account, an app's
 * say, sending the same key is never answered this key's run, nor told by a CONFLICT that the key was used, nor holds
 * up this key's call by claiming it first.
 */
export type KeyScope = { readonly kind: 'webhook' } | { readonly kind: 'account'; readonly accountId: string; readonly keyId: string | null };

/**
 * The `index`-th run id of a key. A webhook key's index 0 is the id the webhook has always derived, so runs started
 * before the window existed are still found; an account's keys hash a text no webhook key can (it does not start
 * with the workflow id), so the two never share an id, and an API key's a text with one line more than its account's
 * (a key, visible ASCII, holds no newline).
 */
export const idempotentRunId = (workflowId: string, scope: KeyScope, key: string, index: number): string => {
  const text =
    scope.kind === 'account'
      ? `manual\n${scope.accountId}\n${scope.keyId === null ? '' : `${scope.keyId}\n`}${workflowId}\n${key}\n${index}`
      : index === 0
        ? `${workflowId}\n${key}`
        : `${workflowId}\n${key}\n${index}`;
  return `run_${createHash('sha256').update(text).digest('hex').slice(0, 40)}`;
};

/** Whether a run started at `startedAt` still answers for its key at `nowMs`. */
const withinIdempotencyWindow = (startedAt: string, nowMs: number): boolean => nowMs - Date.parse(startedAt) < IDEMPOTENCY_WINDOW_MS;

/**
 * Whether a run's trigger came from a retry of this call: the same type and the same JSON body (a webhook's headers
 * may differ). A key sent again with another body is a mistake to report, not the earlier call's answer to give.
 */
export const sameCall =
  (trigger: { readonly type: string; readonly body: JsonValue }) =>
  (existing: JsonValue): boolean =>
    typeof existing === 'object' &&
    existing !== null &&
    !Array.isArray(existing) &&
    existing['type'] === trigger.type &&
    JSON.stringify(existing['body']) === JSON.stringify(trigger.body);

/**
 * The run a call with this key answers: `start(runId)` starts the run under that id, or answers the run already
 * there (as the runs API's `start` does with a given id).
 */
export const startIdempotent = async <R extends { readonly startedAt: string }>(
  start: (runId: string) => Promise<R>,
  workflowId: string,
  scope: KeyScope,
  key: string,
  now: () => number,
): Promise<R> => {
  for (let index = 0; index < MAX_CHAIN; index++) {
    const run = await start(idempotentRunId(workflowId, scope, key, index));
    if (withinIdempotencyWindow(run.startedAt, now())) return run;
  }
  throw new Error(`Idempotency-Key chain of workflow ${workflowId} is over ${MAX_CHAIN} runs long`);
};
