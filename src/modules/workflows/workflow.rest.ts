/**
 * Workflow REST routes: the webhook trigger (authenticated by the workflow's own secret, sent as is or as an HMAC
 * signature of the body) and manual runs with an API key. Thin: authenticate, read the body, start the run through the runs API, shape the answer. Failures are thrown
 * as DomainErrors and written by the one REST error writer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DomainError } from '../../errors.js';
import type { JsonValue } from '../../eventStore/eventStore.js';
import { parseJsonBody, readRequestBody, requirePrincipal, sendJson, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { WriteBudget } from '../auth/writeBudget.js';
import type { Caller } from '../auth/principal.js';
import type { RunsApi, RunView } from './run.api.js';
import type { WebhookProof, WorkflowsApi } from './workflow.api.js';
import { checkIdempotencyKey } from '../../idempotencyKey.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from './webhookSignature.js';

export const WEBHOOK_SECRET_HEADER = 'x-switchyard-webhook-secret';
/** Request headers a run's trigger may see: none that carries a credential. */
const TRIGGER_HEADERS = ['content-type', 'user-agent', 'x-request-id', 'x-github-event', 'x-github-delivery'] as const;

const headerOf = (req: IncomingMessage, name: string): string | null => {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
};

/** The Idempotency-Key header, if sent (400 when it is not one). */
const idempotencyKeyOf = (req: IncomingMessage): string | null => {
  const key = headerOf(req, 'idempotency-key');
  return key === null ? null : checkIdempotencyKey(key, { header: 'idempotency-key' });
};

/** A signature, when sent, is what authenticates the call; otherwise the secret header (or nothing). */
const proofOf = (req: IncomingMessage, body: Buffer): WebhookProof => {
  const signature = headerOf(req, SIGNATURE_HEADER);
  const secret = headerOf(req, WEBHOOK_SECRET_HEADER);
  // One proof: a wrong secret beside a right signature must not pass unnoticed.
  if (signature !== null && secret !== null) {
    throw new DomainError('BAD_REQUEST', `Send the webhook secret (${WEBHOOK_SECRET_HEADER}) or a signature (${SIGNATURE_HEADER}), not both`, 400);
  }
  if (signature !== null) return { kind: 'signature', signature, timestamp: headerOf(req, TIMESTAMP_HEADER), body };
  return secret === null ? { kind: 'none' } : { kind: 'secret', secret };
};

/** A JSON body (400 when malformed; when empty, 400 unless `emptyIsNull`). */
const parseBody = (raw: Buffer, emptyIsNull: boolean): JsonValue => parseJsonBody(raw, { emptyIsNull }) as JsonValue;

const runJson = (run: RunView) => ({ id: run.id, workflow_id: run.workflowId, version: run.version, status: run.status, started_at: run.startedAt });

/** `{status, body}` from `action.respond` is the HTTP answer; any other output is a 200 with the output. */
const respondShape = (output: JsonValue): { status: number; body: JsonValue } => {
  if (output !== null && typeof output === 'object' && !Array.isArray(output) && Object.keys(output).every((k) => k === 'status' || k === 'body')) {
    const status = output['status'];
    if (typeof status === 'number' && Number.isInteger(status) && status >= 200 && status <= 599) return { status, body: output['body'] ?? null };
  }
  return { status: 200, body: output };
};

const runErrorJson = (status: number, run: RunView, requestId: string) => ({
  error: {
    code: status,
    message: run.error?.message ?? `Workflow run ${run.id} ${run.status}`,
    metadata: { error_type: 'workflow_run_failed', run_id: run.id, run_status: run.status, run_error_code: run.error?.code ?? null, request_id: requestId },
  },
});

/** A synchronous webhook's answer from the run as it ended (or as it is when the wait ran out). */
const sendRunAnswer = (res: ServerResponse, run: RunView, requestId: string): void => {
  switch (run.status) {
    case 'succeeded': {
      const { status, body } = respondShape(run.output);
      if (status === 204 || status === 304) {
        res.writeHead(status, { 'x-switchyard-run-id': run.id }).end();
        return;
      }
      sendJson(res, status, body, { 'x-switchyard-run-id': run.id });
      return;
    }
    case 'filtered':
      res.writeHead(204, { 'x-switchyard-run-id': run.id }).end();
      return;
    case 'failed':
      sendJson(res, 502, runErrorJson(502, run, requestId), { 'x-switchyard-run-id': run.id });
      return;
    case 'cancelled':
      sendJson(res, 409, runErrorJson(409, run, requestId), { 'x-switchyard-run-id': run.id });
      return;
    case 'queued':
    case 'running':
      // The wait ran out (the run outlives the request): the caller can follow the run by its id.
      sendJson(res, 202, { id: run.id, status: run.status }, { 'x-switchyard-run-id': run.id });
      return;
    default: {
      const _never: never = run.status;
      throw new Error(`unknown run status ${String(_never)}`);
    }
  }
};

export const workflowRoutes = (deps: {
  workflows: WorkflowsApi;
  runs: RunsApi;
  directory: Pick<AuthDirectory, 'authenticate'>;
  maxBodyBytes: number;
  /**
   * A run started with a key takes one of its account's writes (WRITES_PER_MINUTE), as GraphQL's runWorkflow does; a
   * webhook's, one of its workflow's.
   */
  writes: WriteBudget;
}): Route[] => [
  {
    method: 'POST',
    path: '/api/v1/workflows/:id/webhook',
    handler: async ({ req, res, params, requestId }) => {
      const workflowId = params['id']!;
      // Bounded first, like on every route (413 before anything else); parsed only for a caller with the secret. A
      // signature is over these raw bytes, exactly as sent.
      const raw = await readRequestBody(req, deps.maxBodyBytes);
      const proof = proofOf(req, raw);
      const workflow = await deps.workflows.webhookTarget(workflowId, proof);
      // Only a sender with the proof counts (anyone else is refused above and writes nothing).
      deps.writes.takeWebhookRun(workflowId);
      const idempotencyKey = idempotencyKeyOf(req);
      // Checked before the signature is claimed: a body refused here (400) writes nothing.
      const body = parseBody(raw, false);
      // A signed call goes by the key its signature was first used with (workflows.signedCallKey): the same signed bytes
      // sent again (a retry, or a replay by whoever captured them, within the 5 minutes its timestamp allows, with any
      // Idempotency-Key) answer the run the first one started. A sender re-signing a retry keeps its Idempotency-Key.
      // The claim only names the key: the run's start under it is what happens once, so a delivery refused (the
      // workflow disabled, the account's runs at their maximum, the store failing) starts its run when sent again.
      const dedupeKey = proof.kind === 'signature' ? await deps.workflows.signedCallKey(workflowId, proof.signature, idempotencyKey) : idempotencyKey;
      const headers: Record<string, string> = {};
      for (const name of TRIGGER_HEADERS) {
        const value = headerOf(req, name);
        if (value !== null) headers[name] = value;
      }
      // The secret proves the call is the owner's: the run starts as the owning account, as the executor runs it.
      const caller: Caller = { principal: { accountId: workflow.accountId, keyId: null, roles: new Set() }, requestId };
      const trigger = { type: 'webhook', body, headers };
      const run = dedupeKey === null ? await deps.runs.start(caller, workflowId, trigger) : await deps.runs.startOnce(caller, workflowId, trigger, dedupeKey, 'webhook');
      const respond = workflow.definition.trigger.type === 'webhook' ? workflow.definition.trigger.respond : 'async';
      switch (respond) {
        case 'async':
          sendJson(res, 202, { id: run.id, status: run.status }, { 'x-switchyard-run-id': run.id });
          return;
        case 'sync': {
          // A caller that hangs up stops the wait (not the run): nothing is left waiting on its behalf.
          const gone = new AbortController();
          res.once('close', () => gone.abort());
          const ended = await deps.runs.waitForEnd(run.id, workflow.definition.settings.timeoutSeconds * 1_000 + 1_000, gone.signal);
          if (!gone.signal.aborted) sendRunAnswer(res, ended, requestId);
          return;
        }
        default: {
          const _never: never = respond;
          throw new Error(`unknown respond mode ${String(_never)}`);
        }
      }
    },
  },
  {
    method: 'POST',
    path: '/api/v1/workflows/:id/runs',
    handler: async ({ req, res, params, requestId }) => {
      const principal = requirePrincipal(deps.directory, req);
      deps.writes.take(principal);
      const idempotencyKey = idempotencyKeyOf(req);
      // The body is the run's input; an empty one is no input.
      const input = parseBody(await readRequestBody(req, deps.maxBodyBytes), true);
      const caller = { principal, requestId };
      const trigger = { type: 'manual', body: input };
      const run = idempotencyKey === null ? await deps.runs.start(caller, params['id']!, trigger) : await deps.runs.startOnce(caller, params['id']!, trigger, idempotencyKey, 'caller');
      sendJson(res, 202, runJson(run));
    },
  },
];
