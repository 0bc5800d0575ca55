import { useEffect, useState } from 'preact/hooks';
import { DOMAIN_ERROR, gql, subscribe, unwrap, type ApiError, type Result } from '../api.js';
import { formatInt, formatTime, formatUsd } from '../money.js';
import { hashParts } from '../navigation.js';
import { Figures, messageOf, Name, Notice, Section, Table, useLoad } from '../ui.js';
import { WORKFLOWS, type RunStatus, type Workflow } from './workflows.js';

const STATUSES: readonly RunStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'FILTERED', 'CANCELLED'];
const ENDED: ReadonlySet<RunStatus> = new Set(['SUCCEEDED', 'FAILED', 'FILTERED', 'CANCELLED']);

interface RunError {
  code: string;
  message: string;
}
interface RunRow {
  id: string;
  status: RunStatus;
  version: number;
  startedAt: string;
  durationMs: number | null;
  cost: number;
  retryOf: string | null;
  error: RunError | null;
}
const RUNS = `query Runs($id: ID!, $status: WorkflowRunStatus, $before: String) {
  workflowRuns(workflowId: $id, status: $status, last: 20, before: $before) {
    edges { node { id status version startedAt durationMs cost retryOf error { code message } } }
    pageInfo { hasPreviousPage startCursor }
  }
}`;
const RUN_CHANGES = 'subscription RunChanges($id: ID!) { workflowRuns(workflowId: $id) { runId status } }';
const CANCEL = `mutation CancelRun($id: ID!) { r: cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { id status } ${DOMAIN_ERROR} } }`;
const RETRY = `mutation RetryRun($id: ID!) { r: retryWorkflowRun(id: $id) { __typename ... on WorkflowRun { id status } ${DOMAIN_ERROR} } }`;
const WORKFLOW_NAME = 'query WorkflowName($id: ID!) { workflow(id: $id) { id name } }';

const runHref = (workflowId: string, runId: string) => `#/runs/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}`;

export const formatMs = (ms: number): string => (ms < 1000 ? `${formatInt(Math.round(ms))} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);

const Badge = ({ status }: { status: string }) => <span class={`badge badge-${status.toLowerCase().replace(/ /g, "-")}`}>{status.toLowerCase()}</span>;

/** JSON, folded: one line of summary, the whole value when opened. */
const Json = ({ label, value, open = false }: { label: string; value: unknown; open?: boolean }) => (
  <details class="json" open={open}>
    <summary>{label}</summary>
    <pre class="mono">{JSON.stringify(value, null, 2)}</pre>
  </details>
);

/**
 * A workflow or run this key cannot see: the server answers NOT_FOUND alike for one that never existed and for another
 * account's, so the page says both, plainly, instead of a raw error beside a run that never connects.
 */
const NotFound = ({ what, id }: { what: 'workflow' | 'run'; id: string }) => (
  <>
    <h1>{what === 'run' ? 'Run not found' : 'Workflow not found'}</h1>
    <Notice kind="info">
      There is no {what} <span class="mono">{id}</span> on this account: the address is wrong, or the {what} belongs to another account.
    </Notice>
    <p>
      <a href="#/runs">See your runs</a>
    </p>
  </>
);

// ---- The list of a workflow's runs ----

const RunList = ({ workflowId }: { workflowId: string | undefined }) => {
  const workflows = useLoad(() => gql<{ workflows: { edges: { node: Workflow }[] } }>(WORKFLOWS));
  const all = workflows.value?.workflows.edges.map((e) => e.node) ?? [];
  const chosen = workflowId ?? all[0]?.id;
  const [status, setStatus] = useState<RunStatus | ''>('');
  const [before, setBefore] = useState<string | null>(null);
  const runs = useLoad(
    () => (chosen ? gql<{ workflowRuns: { edges: { node: RunRow }[]; pageInfo: { hasPreviousPage: boolean; startCursor: string | null } } }>(RUNS, { id: chosen, status: status || null, before }) : Promise.resolve(null)),
    [chosen, status, before],
  );
  // Runs starting and ending while the newest page is shown: read it again.
  useEffect(() => {
    if (!chosen || before !== null) return;
    return subscribe<unknown>(RUN_CHANGES, { id: chosen }, { next: () => runs.reload(), error: () => undefined });
  }, [chosen, before]);
  // Newest first by start: a retry's id is derived from the failed run's, so ids alone do not order them.
  const rows = (runs.value?.workflowRuns.edges.map((e) => e.node) ?? []).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  const page = runs.value?.workflowRuns.pageInfo;

  if (chosen && runs.code === 'NOT_FOUND') return <NotFound what="workflow" id={chosen} />;
  return (
    <>
      <h1>Runs</h1>
      <Section title="Runs of a workflow">
        {workflows.error && <Notice kind="error">{workflows.error}</Notice>}
        <div class="controls">
          <div>
            <label for="runs-workflow">Workflow</label>
            <select
              id="runs-workflow"
              value={chosen ?? ''}
              onChange={(e) => {
                setBefore(null);
                location.hash = `#/runs/${encodeURIComponent(e.currentTarget.value)}`;
              }}
            >
              {all.map((w) => (
                <option key={w.id} value={w.id}>
                  {w.name}
                </option>
              ))}
              {/* A deleted workflow's runs stay readable by its id. */}
              {chosen && workflows.value && !all.some((w) => w.id === chosen) && <option value={chosen}>{chosen} (deleted)</option>}
            </select>
          </div>
          <div>
            <label for="runs-status">Status</label>
            <select
              id="runs-status"
              value={status}
              onChange={(e) => {
                setBefore(null);
                setStatus(e.currentTarget.value as RunStatus | '');
              }}
            >
              <option value="">any</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
        </div>
        {workflows.value && all.length === 0 && (
          <p class="muted">
            No workflows yet: create one on the <a href="#/workflows">Workflows</a> page.
          </p>
        )}
        {runs.error && <Notice kind="error">{runs.error}</Notice>}
        {chosen && (
          <Table label="Runs" columns={['Run', 'Status', 'Started', ['Duration', 'num'], ['Cost', 'num'], ['Version', 'num'], 'Error']}>
            {rows.map((run) => (
              <tr key={run.id} data-run-id={run.id}>
                <th scope="row">
                  <a href={runHref(chosen, run.id)} class="mono" aria-label={`Open run ${run.id}`}>
                    {run.id}
                  </a>
                  {run.retryOf && <span class="muted small"> (retry)</span>}
                </th>
                <td>
                  <Badge status={run.status} />
                </td>
                <td>{formatTime(run.startedAt)}</td>
                <td class="num">{run.durationMs === null ? '—' : formatMs(run.durationMs)}</td>
                <td class="num">{formatUsd(run.cost)}</td>
                <td class="num">{run.version}</td>
                <td>{run.error ? `${run.error.code}: ${run.error.message}` : ''}</td>
              </tr>
            ))}
          </Table>
        )}
        {runs.value && rows.length === 0 && <p class="muted">No runs{status ? ` with status ${status.toLowerCase()}` : ''}.</p>}
        <div class="pager">
          {before !== null && (
            <button type="button" onClick={() => setBefore(null)}>
              Newest runs
            </button>
          )}
          {page?.hasPreviousPage && (
            <button type="button" onClick={() => setBefore(page.startCursor)}>
              Older runs
            </button>
          )}
        </div>
      </Section>
    </>
  );
};

// ---- One run, followed live ----

type StepStatus = 'RUNNING' | 'WAITING' | 'SUCCEEDED' | 'FAILED' | 'SKIPPED' | 'CARRIED_OVER';
interface StepView {
  key: string;
  status: StepStatus;
  attempts: number;
  startedAt: string | null;
  endedAt: string | null;
  output: unknown;
  error: RunError | null;
  cost: number;
  tokens: string;
  tokenChunks: number;
  wakingAt: string | null;
  retryAt: string | null;
  carriedFrom: string | null;
  skipped: string | null;
}
interface RunView {
  status: RunStatus | null;
  version: number | null;
  trigger: unknown;
  startedAt: string | null;
  endedAt: string | null;
  cost: number;
  output: unknown;
  error: RunError | null;
  failedStep: string | null;
  steps: StepView[];
}
const EMPTY: RunView = { status: null, version: null, trigger: null, startedAt: null, endedAt: null, cost: 0, output: null, error: null, failedStep: null, steps: [] };

type Progress =
  | { __typename: 'WorkflowRunQueuedEvent'; at: string; version: number; trigger: unknown }
  | { __typename: 'WorkflowRunStartedEvent'; at: string; version: number; trigger: unknown }
  | { __typename: 'WorkflowStepStartedEvent'; at: string; key: string; attempt: number }
  | { __typename: 'WorkflowStepWaitingEvent'; at: string; key: string; attempt: number; wakingAt: string }
  | { __typename: 'WorkflowStepSucceededEvent'; at: string; key: string; attempt: number; output: unknown; cost: number }
  | { __typename: 'WorkflowStepFailedEvent'; at: string; key: string; attempt: number; error: RunError | null; cost: number; retryAt: string | null }
  | { __typename: 'WorkflowStepSkippedEvent'; at: string; key: string; reason: string }
  | { __typename: 'WorkflowStepCarriedOverEvent'; at: string; key: string; fromRun: string; output: unknown; skipped: string | null }
  | { __typename: 'WorkflowStepTokenEvent'; key: string; attempt: number; content: string }
  | { __typename: 'WorkflowRunEndedEvent'; at: string; status: RunStatus; output: unknown; error: RunError | null; step: string | null; cost: number };

const PROGRESS = `subscription RunProgress($id: ID!) { workflowRun(id: $id) {
  __typename
  ... on WorkflowRunQueuedEvent { at version trigger }
  ... on WorkflowRunStartedEvent { at version trigger }
  ... on WorkflowStepStartedEvent { at key attempt }
  ... on WorkflowStepWaitingEvent { at key attempt wakingAt }
  ... on WorkflowStepSucceededEvent { at key attempt output cost }
  ... on WorkflowStepFailedEvent { at key attempt error { code message } cost retryAt }
  ... on WorkflowStepSkippedEvent { at key reason }
  ... on WorkflowStepCarriedOverEvent { at key fromRun output skipped }
  ... on WorkflowStepTokenEvent { key attempt content }
  ... on WorkflowRunEndedEvent { at status output error { code message } step cost }
} }`;

const answerText = (output: unknown): string | null =>
  typeof output === 'object' && output !== null && 'text' in output && typeof output.text === 'string' ? output.text : null;

const blankStep = (key: string): StepView => ({ key, status: 'RUNNING', attempts: 0, startedAt: null, endedAt: null, output: null, error: null, cost: 0, tokens: '', tokenChunks: 0, wakingAt: null, retryAt: null, carriedFrom: null, skipped: null });

/** The run as its events tell it so far. */
const apply = (run: RunView, event: Progress): RunView => {
  const step = (key: string, change: (s: StepView) => StepView): RunView => {
    const found = run.steps.some((s) => s.key === key);
    return { ...run, steps: found ? run.steps.map((s) => (s.key === key ? change(s) : s)) : [...run.steps, change(blankStep(key))] };
  };
  switch (event.__typename) {
    case 'WorkflowRunQueuedEvent':
      return { ...run, status: 'QUEUED', version: event.version, trigger: event.trigger, startedAt: event.at };
    case 'WorkflowRunStartedEvent':
      return { ...run, status: 'RUNNING', version: event.version, trigger: event.trigger, startedAt: run.startedAt ?? event.at };
    case 'WorkflowStepStartedEvent':
      return step(event.key, (s) => ({ ...s, status: 'RUNNING', attempts: event.attempt, startedAt: s.startedAt ?? event.at, retryAt: null, wakingAt: null, tokens: event.attempt > s.attempts ? '' : s.tokens }));
    case 'WorkflowStepWaitingEvent':
      return step(event.key, (s) => ({ ...s, status: 'WAITING', attempts: event.attempt, wakingAt: event.wakingAt }));
    case 'WorkflowStepSucceededEvent':
      // A model step's whole answer replaces what streamed: tokens from before the page followed the run were never seen.
      return step(event.key, (s) => ({ ...s, status: 'SUCCEEDED', attempts: event.attempt, endedAt: event.at, output: event.output, cost: s.cost + event.cost, error: null, wakingAt: null, tokens: answerText(event.output) ?? s.tokens }));
    case 'WorkflowStepFailedEvent':
      return step(event.key, (s) => ({ ...s, status: 'FAILED', attempts: event.attempt, endedAt: event.at, error: event.error, cost: s.cost + event.cost, retryAt: event.retryAt }));
    case 'WorkflowStepSkippedEvent':
      return step(event.key, (s) => ({ ...s, status: 'SKIPPED', skipped: event.reason, startedAt: event.at, endedAt: event.at }));
    case 'WorkflowStepCarriedOverEvent':
      return step(event.key, (s) => ({ ...s, status: 'CARRIED_OVER', carriedFrom: event.fromRun, output: event.output, skipped: event.skipped, startedAt: event.at, endedAt: event.at }));
    case 'WorkflowStepTokenEvent':
      return step(event.key, (s) => ({ ...s, tokens: s.tokens + event.content, tokenChunks: s.tokenChunks + 1 }));
    case 'WorkflowRunEndedEvent':
      return {
        ...run,
        status: event.status,
        endedAt: event.at,
        output: event.output,
        error: event.error,
        failedStep: event.step,
        cost: event.cost,
        // A step in flight when the run was cancelled never reports: it ends with the run.
        steps: run.steps.map((s) => (s.status === 'RUNNING' || s.status === 'WAITING' ? { ...s, status: 'FAILED', endedAt: event.at, error: s.error ?? event.error } : s)),
      };
    default: {
      const never: never = event;
      return never;
    }
  }
};

const between = (from: string | null, to: string | null): string => (from && to ? formatMs(Date.parse(to) - Date.parse(from)) : '—');

const StepCard = ({ step }: { step: StepView }) => (
  <li class={`step step-${step.status.toLowerCase()}`} data-step={step.key} aria-label={`Step ${step.key}: ${step.status.toLowerCase().replace('_', ' ')}`}>
    <div class="step-head">
      <strong class="mono">{step.key}</strong>
      <Badge status={step.status.replace('_', ' ')} />
      <span class="muted small">
        {step.attempts > 0 && `attempt ${step.attempts} · `}
        {step.endedAt ? between(step.startedAt, step.endedAt) : step.status === 'RUNNING' ? 'running…' : ''}
        {step.cost > 0 && ` · ${formatUsd(step.cost)}`}
      </span>
    </div>
    {step.status === 'WAITING' && step.wakingAt && (
      <p data-testid={`waking-${step.key}`}>
        Waiting; wakes at <time dateTime={step.wakingAt}>{new Date(step.wakingAt).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })}</time>.
      </p>
    )}
    {step.retryAt && step.status === 'FAILED' && <p class="small">Attempt {step.attempts} failed; the next is due at {formatTime(step.retryAt)}.</p>}
    {step.skipped && <p class="muted small">Skipped: {step.skipped === 'CONDITION' ? 'its condition was false' : 'its branch path was not chosen'}.</p>}
    {step.carriedFrom && (
      <p class="muted small">
        Reused from the failed run <span class="mono">{step.carriedFrom}</span> (not run or charged again).
      </p>
    )}
    {(step.tokens || step.tokenChunks > 0) && (
      <div class="tokens">
        {/* The chunks are counted only as they stream to this page: a step that ended before it was opened has none. */}
        <span class="muted small">Model output{step.status === 'RUNNING' ? `, streaming (${formatInt(step.tokenChunks)} ${step.tokenChunks === 1 ? 'chunk' : 'chunks'})` : ''}</span>
        <p data-testid={`tokens-${step.key}`} aria-live="polite">
          {step.tokens}
        </p>
      </div>
    )}
    {step.error && (
      <p class="notice notice-error" data-testid={`error-${step.key}`}>
        {step.error.code}: {step.error.message}
      </p>
    )}
    {step.output !== null && step.output !== undefined && <Json label="Output" value={step.output} />}
  </li>
);

const RunDetail = ({ workflowId, runId }: { workflowId: string; runId: string }) => {
  const workflow = useLoad(() => gql<{ workflow: { id: string; name: string } }>(WORKFLOW_NAME, { id: workflowId }), [workflowId]);
  const [run, setRun] = useState<RunView>(EMPTY);
  const [error, setError] = useState<ApiError | null>(null);
  const [following, setFollowing] = useState(0);
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // The subscription replays what is stored, then goes on live; following again starts from nothing.
  useEffect(() => {
    setRun(EMPTY);
    setError(null);
    return subscribe<{ workflowRun: Progress }>(PROGRESS, { id: runId }, { next: ({ workflowRun }) => setRun((r) => apply(r, workflowRun)), error: setError });
  }, [runId, following]);

  const act = async (query: string, then: (next: { id: string }) => void) => {
    setActionError(null);
    setBusy(true);
    try {
      then(unwrap((await gql<{ r: Result<{ id: string; status: RunStatus }> }>(query, { id: runId })).r));
    } catch (failure) {
      setActionError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  const live = run.status !== null && !ENDED.has(run.status);
  const name = workflow.value?.workflow.name ?? workflowId;
  if (error?.code === 'NOT_FOUND' || workflow.code === 'NOT_FOUND') return <NotFound what="run" id={runId} />;
  return (
    <>
      <p class="small">
        <a href={`#/runs/${encodeURIComponent(workflowId)}`}>← Runs of <Name text={name} />
        </a>
      </p>
      <h1>
        Run <span class="mono">{runId}</span>
      </h1>
      <Section
        title="Run"
        actions={
          <div class="form-actions">
            {live && (
              <button type="button" class="danger" disabled={busy} onClick={() => window.confirm('Cancel this run? A step in flight is aborted.') && act(CANCEL, () => undefined)}>
                Cancel run
              </button>
            )}
            {run.status === 'FAILED' && (
              <button type="button" class="primary" disabled={busy} onClick={() => act(RETRY, (next) => (location.hash = runHref(workflowId, next.id)))}>
                Retry from the failed step
              </button>
            )}
          </div>
        }
      >
        {error && (
          <Notice kind="error">
            {messageOf(error)}{' '}
            <button type="button" class="link" onClick={() => setFollowing((n) => n + 1)}>
              Follow again
            </button>
          </Notice>
        )}
        {actionError && <Notice kind="error">{actionError}</Notice>}
        <Figures
          aria-live="polite"
          items={[
            ['Workflow', name],
            ['Status', run.status ? <Badge status={run.status} /> : 'connecting…', 'run-status'],
            ['Version', run.version ?? '—'],
            ['Started', run.startedAt ? formatTime(run.startedAt) : '—'],
            ['Duration', run.endedAt ? between(run.startedAt, run.endedAt) : live ? 'running…' : '—'],
            ['Cost', formatUsd(run.cost), 'run-cost'],
          ]}
        />
        {run.error && (
          <Notice kind="error">
            {run.failedStep ? `Step ${run.failedStep}: ` : ''}
            {run.error.code}: {run.error.message}
          </Notice>
        )}
        {run.trigger !== null && <Json label="Input (trigger)" value={run.trigger} />}
        {run.status === 'SUCCEEDED' && <Json label="Output" value={run.output} open />}
      </Section>
      <Section title="Steps">
        {run.steps.length === 0 ? <p class="muted">{live ? 'No step has started yet.' : run.status ? 'No steps ran.' : 'Connecting…'}</p> : null}
        <ol class="steps" aria-label="Steps">
          {run.steps.map((step) => (
            <StepCard key={step.key} step={step} />
          ))}
        </ol>
      </Section>
    </>
  );
};

export const RunsPage = ({ hash }: { hash: string }) => {
  const [, workflowId, runId] = hashParts(hash) ?? [];
  return workflowId && runId ? <RunDetail workflowId={workflowId} runId={runId} /> : <RunList key={workflowId ?? ''} workflowId={workflowId || undefined} />;
};
