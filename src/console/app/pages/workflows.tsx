import type { ComponentChildren } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, DOMAIN_ERROR, gql, unwrap, type Result } from '../api.js';
import { jsonSpans, lineColumn, locate, type Span } from '../jsonLocate.js';
import { formatTime } from '../money.js';
import { messageOf, Name, Notice, Section, Table, useLoad } from '../ui.js';

export type WorkflowStatus = 'ENABLED' | 'DISABLED' | 'DELETED';
export type RunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'FILTERED' | 'CANCELLED';

export interface Workflow {
  id: string;
  name: string;
  status: WorkflowStatus;
  version: number;
  definition: { trigger?: { type?: string } } & Record<string, unknown>;
  webhookUrl: string | null;
  hasWebhookSecret: boolean;
  webhookSignatures: boolean;
  updatedAt: string;
}
interface LastRun {
  id: string;
  status: RunStatus;
  startedAt: string;
}

const WF_FIELDS = 'id name status version definition webhookUrl hasWebhookSecret webhookSignatures updatedAt';
export const WORKFLOWS = `query Workflows { workflows(first: 100) { edges { node { ${WF_FIELDS} } } pageInfo { hasNextPage } } }`;
const CREATE = `mutation CreateWorkflow($d: JSON!) { r: createWorkflow(definition: $d) { __typename ... on Workflow { ${WF_FIELDS} } ${DOMAIN_ERROR} } }`;
const UPDATE = `mutation UpdateWorkflow($id: ID!, $d: JSON!) { r: updateWorkflow(id: $id, definition: $d) { __typename ... on Workflow { ${WF_FIELDS} } ${DOMAIN_ERROR} } }`;
const command = (name: string) => `mutation ${name[0]?.toUpperCase()}${name.slice(1)}($id: ID!) { r: ${name}(id: $id) { __typename ... on Workflow { ${WF_FIELDS} } ${DOMAIN_ERROR} } }`;
const ENABLE = command('enableWorkflow');
const DISABLE = command('disableWorkflow');
const DELETE = command('deleteWorkflow');
const RUN = `mutation RunWorkflow($id: ID!, $input: JSON) { r: runWorkflow(id: $id, input: $input) { __typename ... on WorkflowRun { id status } ${DOMAIN_ERROR} } }`;
const ROTATE = `mutation RotateWebhookSecret($id: ID!) { r: rotateWebhookSecret(id: $id) { __typename ... on WebhookSecret { secret workflow { ${WF_FIELDS} } } ${DOMAIN_ERROR} } }`;

/** The server refuses more than 30 aliases in one query: the last runs are asked for 25 workflows at a time. */
const lastRuns = async (ids: readonly string[]): Promise<Map<string, LastRun>> => {
  const found = new Map<string, LastRun>();
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += 25) chunks.push(ids.slice(i, i + 25));
  await Promise.all(
    chunks.map(async (chunk) => {
      const query = `query LastRuns(${chunk.map((_, i) => `$w${i}: ID!`).join(', ')}) { ${chunk.map((_, i) => `r${i}: workflowRuns(workflowId: $w${i}, last: 1) { edges { node { id status startedAt } } }`).join(' ')} }`;
      const data = await gql<Record<string, { edges: { node: LastRun }[] }>>(query, Object.fromEntries(chunk.map((id, i) => [`w${i}`, id])));
      chunk.forEach((id, i) => {
        const run = data[`r${i}`]?.edges[0]?.node;
        if (run) found.set(id, run);
      });
    }),
  );
  return found;
};

const TEMPLATE = `{
  "name": "Answer a question",
  "trigger": { "type": "manual" },
  "steps": [
    { "key": "answer", "type": "action.model", "input": { "model": "switchyard/demo", "prompt": "=trigger.body.question", "maxTokens": 100 } },
    { "key": "reply", "type": "action.respond", "input": { "answer": "=steps.answer.text" } }
  ]
}`;

/** A problem with the text, at a path (from the server) or an offset (JSON syntax), with the span it covers. */
interface Issue {
  readonly path: string;
  readonly message: string;
  readonly span: Span | null;
}

const issuesOf = (details: unknown, text: string): Issue[] | null => {
  if (typeof details !== 'object' || details === null || !('issues' in details) || !Array.isArray(details.issues)) return null;
  const spans = jsonSpans(text) ?? new Map<string, Span>();
  return (details.issues as unknown[]).flatMap((issue) => {
    if (typeof issue !== 'object' || issue === null) return [];
    const { path, message } = issue as { path?: unknown; message?: unknown };
    const at = typeof path === 'string' ? path : '$';
    return [{ path: at, message: typeof message === 'string' ? message : 'is invalid', span: locate(spans, at) }];
  });
};

/** JSON.parse's complaint, placed: Chromium and Node name the offset ("… at position 42"). */
const syntaxIssue = (text: string, error: unknown): Issue => {
  const message = error instanceof Error ? error.message : String(error);
  const offset = Number(/position (\d+)/.exec(message)?.[1] ?? NaN);
  const start = Number.isFinite(offset) ? Math.min(offset, Math.max(text.length - 1, 0)) : 0;
  return { path: 'JSON', message: message.replace(/^JSON\.parse: /, ''), span: { start, end: Math.min(start + 1, text.length) } };
};

/** The text with each issue's span marked: drawn behind the (transparent) textarea, scrolled with it. */
const Marked = ({ text, spans }: { text: string; spans: readonly Span[] }) => {
  const parts: ComponentChildren[] = [];
  let at = 0;
  // Nested spans (an object and a field in it) are drawn as their outermost, once.
  const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
  for (const span of sorted) {
    if (span.start < at) continue;
    parts.push(text.slice(at, span.start), <mark key={span.start}>{text.slice(span.start, Math.max(span.end, span.start + 1))}</mark>);
    at = Math.max(span.end, span.start + 1);
  }
  parts.push(text.slice(at), '\n');
  return <>{parts}</>;
};

const DefinitionEditor = ({ workflow, onSaved, onCancel }: { workflow: Workflow | null; onSaved: (saved: Workflow) => void; onCancel: () => void }) => {
  const [text, setText] = useState(workflow ? JSON.stringify(workflow.definition, null, 2) : TEMPLATE);
  const [issues, setIssues] = useState<Issue[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const backdrop = useRef<HTMLPreElement>(null);
  const id = workflow?.id ?? 'new';

  const show = (span: Span | null) => {
    const element = area.current;
    if (!element || !span) return;
    element.focus();
    element.setSelectionRange(span.start, span.end);
  };
  const save = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setSaved(null);
    let definition: unknown;
    try {
      definition = JSON.parse(text);
    } catch (failure) {
      return setIssues([syntaxIssue(text, failure)]);
    }
    setBusy(true);
    try {
      const { r } = await gql<{ r: Result<Workflow> }>(workflow ? UPDATE : CREATE, workflow ? { id: workflow.id, d: definition } : { d: definition });
      const done = unwrap(r);
      setIssues([]);
      setSaved(workflow ? `Saved as version ${done.version}.` : `Created ${done.name}.`);
      onSaved(done);
    } catch (failure) {
      const placed = failure instanceof ApiError ? issuesOf(failure.details, text) : null;
      if (placed && placed.length > 0) setIssues(placed);
      else setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  const sync = () => {
    if (backdrop.current && area.current) {
      backdrop.current.scrollTop = area.current.scrollTop;
      backdrop.current.scrollLeft = area.current.scrollLeft;
    }
  };
  const spans = issues.flatMap((issue) => (issue.span ? [issue.span] : []));
  return (
    <form onSubmit={save} aria-label={workflow ? `Edit ${workflow.name}` : 'New workflow'}>
      <label for={`definition-${id}`}>Definition (JSON{workflow ? `; saving makes version ${workflow.version + 1}` : ''})</label>
      <div class="code-editor">
        <pre class="code-backdrop mono" aria-hidden="true" ref={backdrop}>
          <Marked text={text} spans={spans} />
        </pre>
        <textarea
          id={`definition-${id}`}
          ref={area}
          class="code-input mono"
          rows={18}
          wrap="off"
          spellcheck={false}
          value={text}
          aria-invalid={issues.length > 0}
          aria-describedby={issues.length > 0 ? `issues-${id}` : undefined}
          onInput={(e) => {
            setText(e.currentTarget.value);
            // The marks point into the old text: they go until the next save says where the problems are.
            if (issues.length > 0) setIssues([]);
          }}
          onScroll={sync}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void save(e);
          }}
        />
      </div>
      {issues.length > 0 && (
        <div role="alert" class="issues" id={`issues-${id}`}>
          <p>
            The definition has {issues.length === 1 ? 'a problem' : `${issues.length} problems`}; each is marked in the text.
          </p>
          <ul aria-label="Problems in the definition">
            {issues.map((issue, i) => {
              const where = issue.span ? lineColumn(text, issue.span.start) : null;
              return (
                <li key={i} data-path={issue.path}>
                  <button type="button" class="link mono" onClick={() => show(issue.span)} aria-label={`Show ${issue.path} in the definition`}>
                    {issue.path}
                  </button>
                  {where && <span class="muted small"> (line {where.line}, column {where.column})</span>}: {issue.message}
                </li>
              );
            })}
          </ul>
        </div>
      )}
      {error && <Notice kind="error">{error}</Notice>}
      {saved && <Notice kind="ok">{saved}</Notice>}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy}>
          {workflow ? 'Save new version' : 'Create workflow'}
        </button>
        <button type="button" onClick={onCancel}>
          Close
        </button>
      </div>
    </form>
  );
};

const RunNow = ({ workflow }: { workflow: Workflow }) => {
  const [input, setInput] = useState('{\n  "question": "What is a switchyard?"\n}');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (event: Event) => {
    event.preventDefault();
    setError(null);
    let body: unknown = null;
    if (input.trim()) {
      try {
        body = JSON.parse(input);
      } catch (failure) {
        return setError(`The input is not JSON: ${messageOf(failure)}`);
      }
    }
    setBusy(true);
    try {
      const started = unwrap((await gql<{ r: Result<{ id: string }> }>(RUN, { id: workflow.id, input: body })).r);
      location.hash = `#/runs/${encodeURIComponent(workflow.id)}/${encodeURIComponent(started.id)}`;
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={run} aria-label={`Run ${workflow.name} now`}>
      <label for={`input-${workflow.id}`}>Input (JSON, read as trigger.body; empty for null)</label>
      <textarea id={`input-${workflow.id}`} class="mono" rows={4} spellcheck={false} value={input} onInput={(e) => setInput(e.currentTarget.value)} />
      {error && <Notice kind="error">{error}</Notice>}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy || workflow.status !== 'ENABLED'}>
          Run now
        </button>
        {workflow.status !== 'ENABLED' && <span class="muted small">Enable the workflow to run it.</span>}
      </div>
    </form>
  );
};

const Webhook = ({ workflow, onRotated }: { workflow: Workflow; onRotated: (w: Workflow) => void }) => {
  const [secret, setSecret] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!workflow.webhookUrl) return <p class="muted">Its trigger is {workflow.definition.trigger?.type ?? 'not a webhook'}: it has no webhook. Use a {'{ "type": "webhook", "respond": "sync" }'} trigger for one.</p>;
  const url = `${location.origin}${workflow.webhookUrl}`;
  const rotate = async () => {
    if (workflow.hasWebhookSecret && !window.confirm(`Rotate the webhook secret of ${workflow.name}? Callers using the current one will be refused.`)) return;
    setError(null);
    setNote(null);
    try {
      const rotated = unwrap((await gql<{ r: Result<{ secret: string; workflow: Workflow }> }>(ROTATE, { id: workflow.id })).r);
      setSecret(rotated.secret);
      onRotated(rotated.workflow);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const copy = (text: string) =>
    navigator.clipboard.writeText(text).then(
      () => setNote('Copied to the clipboard.'),
      () => setNote('The browser refused the clipboard: select the text and copy it by hand.'),
    );
  return (
    <div>
      <label for={`hook-${workflow.id}`}>Webhook URL (POST)</label>
      <div class="secret-row">
        <input id={`hook-${workflow.id}`} class="mono" readOnly value={url} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={() => copy(url)} aria-label="Copy the webhook URL">
          Copy
        </button>
      </div>
      <p class="muted small">
        {workflow.hasWebhookSecret
          ? `Callers send the secret in x-switchyard-webhook-secret${workflow.webhookSignatures ? ', or sign the body (x-switchyard-signature)' : ''}.`
          : 'The webhook refuses every call until a secret is rotated in.'}
      </p>
      {secret ? (
        <div class="secret" role="region" aria-label="New webhook secret">
          <p>Copy the new secret now: it is shown only this once. The previous one no longer works.</p>
          <div class="secret-row">
            <input aria-label="New webhook secret" readOnly value={secret} onFocus={(e) => e.currentTarget.select()} class="mono" data-testid="webhook-secret" />
            <button type="button" onClick={() => copy(secret)} aria-label="Copy the webhook secret">
              Copy
            </button>
            <button type="button" onClick={() => (setSecret(null), setNote(null))}>
              Done
            </button>
          </div>
        </div>
      ) : (
        <button type="button" onClick={rotate}>
          {workflow.hasWebhookSecret ? 'Rotate secret' : 'Create secret'}
        </button>
      )}
      {note && <Notice kind="info">{note}</Notice>}
      {error && <Notice kind="error">{error}</Notice>}
    </div>
  );
};

export const WorkflowsPage = () => {
  const list = useLoad(async () => {
    const { workflows } = await gql<{ workflows: { edges: { node: Workflow }[]; pageInfo: { hasNextPage: boolean } } }>(WORKFLOWS);
    const nodes = workflows.edges.map((e) => e.node);
    return { workflows: nodes, more: workflows.pageInfo.hasNextPage, runs: await lastRuns(nodes.map((w) => w.id)) };
  });
  const [open, setOpen] = useState<string | 'new' | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const workflows = list.value?.workflows ?? [];
  const current = useMemo(() => workflows.find((w) => w.id === open) ?? null, [workflows, open]);

  const act = async (query: string, workflow: Workflow, confirmText?: string) => {
    if (confirmText && !window.confirm(confirmText)) return;
    setActionError(null);
    try {
      unwrap((await gql<{ r: Result<Workflow> }>(query, { id: workflow.id })).r);
      if (query === DELETE && open === workflow.id) setOpen(null);
      list.reload();
    } catch (failure) {
      setActionError(messageOf(failure));
    }
  };

  return (
    <>
      <h1>Workflows</h1>
      <Section
        title="Your workflows"
        actions={
          <button type="button" class="primary" onClick={() => setOpen('new')} disabled={open === 'new'}>
            New workflow
          </button>
        }
      >
        {list.error && <Notice kind="error">{list.error}</Notice>}
        {actionError && <Notice kind="error">{actionError}</Notice>}
        <Table label="Your workflows" columns={['Name', 'Status', 'Trigger', ['Version', 'num'], 'Last run', 'Actions']}>
          {workflows.map((w) => {
            const last = list.value?.runs.get(w.id);
            return (
              <tr key={w.id} data-workflow-id={w.id} aria-selected={open === w.id}>
                <th scope="row">
                  <Name text={w.name} />
                </th>
                <td>
                  <span class={`badge badge-${w.status.toLowerCase()}`}>{w.status.toLowerCase()}</span>
                </td>
                <td>{w.definition.trigger?.type ?? '—'}</td>
                <td class="num">{w.version}</td>
                <td>
                  {last ? (
                    <a href={`#/runs/${encodeURIComponent(w.id)}/${encodeURIComponent(last.id)}`} aria-label={`Last run of ${w.name}: ${last.status.toLowerCase()}`}>
                      <span class={`badge badge-${last.status.toLowerCase()}`}>{last.status.toLowerCase()}</span> {formatTime(last.startedAt)}
                    </a>
                  ) : (
                    <span class="muted">never run</span>
                  )}
                </td>
                <td class="actions">
                  <button type="button" onClick={() => (setOpen(w.id), setCreated(null))} aria-label={`Open ${w.name}`}>
                    Open
                  </button>
                  <a href={`#/runs/${encodeURIComponent(w.id)}`} aria-label={`Runs of ${w.name}`}>
                    Runs
                  </a>{' '}
                  {w.status === 'ENABLED' ? (
                    <button type="button" onClick={() => act(DISABLE, w)} aria-label={`Disable ${w.name}`}>
                      Disable
                    </button>
                  ) : (
                    <button type="button" onClick={() => act(ENABLE, w)} aria-label={`Enable ${w.name}`}>
                      Enable
                    </button>
                  )}
                  <button type="button" class="danger" onClick={() => act(DELETE, w, `Delete ${w.name} for good? Its runs stay readable, but it will never run again.`)} aria-label={`Delete ${w.name}`}>
                    Delete
                  </button>
                </td>
              </tr>
            );
          })}
        </Table>
        {list.value && workflows.length === 0 && <p class="muted">No workflows yet: start one with New workflow.</p>}
        {list.value?.more && <p class="muted small">Showing the first {workflows.length}; the GraphQL API (workflows) lists the rest.</p>}
      </Section>
      {open === 'new' && (
        <Section title="New workflow">
          <DefinitionEditor
            workflow={null}
            onCancel={() => setOpen(null)}
            onSaved={(saved) => {
              setOpen(saved.id);
              setCreated(saved.id);
              list.reload();
            }}
          />
        </Section>
      )}
      {current && (
        <>
          <Section
            title={`${current.name} · version ${current.version}`}
            heading={
              <>
                <Name text={current.name} /> · version {current.version}
              </>
            }
          >
            {created === current.id && <Notice kind="ok">
                Created <Name text={current.name} /> (version 1, enabled).
              </Notice>}
            <DefinitionEditor key={current.id} workflow={current} onCancel={() => setOpen(null)} onSaved={() => list.reload()} />
          </Section>
          <div class="split">
            <Section title="Run now">
              <RunNow key={current.id} workflow={current} />
            </Section>
            <Section title="Webhook">
              <Webhook key={current.id} workflow={current} onRotated={() => list.reload()} />
            </Section>
          </div>
        </>
      )}
    </>
  );
};
