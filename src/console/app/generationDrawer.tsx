import { useEffect, useRef } from 'preact/hooks';
import { gql } from './api.js';
import { formatInt, formatTime, formatUsd } from './money.js';
import { Figures, Notice, useLoad } from './ui.js';

interface Detail {
  id: string;
  createdAt: string;
  finishedAt: string | null;
  model: string | null;
  provider: string | null;
  status: string;
  cost: number;
  reserved: number;
  latencyMs: number | null;
  generationTimeMs: number | null;
  finishReason: string | null;
  requestedModels: string[];
  /** Null when UNRECORDED (charged, record lost). */
  streamed: boolean | null;
  apiType: string | null;
  usageSource: string | null;
  error: unknown;
  attempts: unknown;
  workflowId: string | null;
  keyId: string | null;
  app: { url: string | null; title: string | null } | null;
  sessionId: string | null;
  usage: { promptTokens: number; completionTokens: number; reasoningTokens: number; cachedTokens: number } | null;
  content: { messages: unknown; completion: string | null; reasoning: string | null } | null;
}

const DETAIL = `query Generation($id: ID!) { generation(id: $id) {
  id createdAt finishedAt model provider status cost reserved latencyMs generationTimeMs finishReason
  requestedModels streamed apiType usageSource error attempts workflowId keyId app { url title } sessionId
  usage { promptTokens completionTokens reasoningTokens cachedTokens }
  content { messages completion reasoning }
} }`;

/** A message's text: a string, or the text parts of a list (other parts named by their type). */
const textOf = (content: unknown): string => {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content == null ? '' : JSON.stringify(content);
  return content.map((part: { type?: string; text?: string }) => (part.type === 'text' ? (part.text ?? '') : `[${part.type ?? 'part'}]`)).join('\n');
};

/** What the generation was sent and answered, when its account kept it (input & output logging). */
const Content = ({ content }: { content: NonNullable<Detail['content']> }) => (
  <>
    <h3>Prompt</h3>
    <ol class="messages" aria-label="Messages sent">
      {(Array.isArray(content.messages) ? (content.messages as { role?: string; content?: unknown }[]) : []).map((message, i) => (
        <li key={i}>
          <span class="badge">{message.role ?? '?'}</span>
          <pre class="small">{textOf(message.content)}</pre>
        </li>
      ))}
    </ol>
    {content.reasoning && (
      <>
        <h3>Reasoning</h3>
        <pre class="small">{content.reasoning}</pre>
      </>
    )}
    <h3>Completion</h3>
    {content.completion === null ? <p class="muted">Nothing was generated.</p> : <pre class="small" data-testid="detail-completion">{content.completion}</pre>}
  </>
);

/** One generation in a modal drawer (the native <dialog>: focus kept inside, Escape closes). */
export const GenerationDrawer = ({ id, keyName, onClose }: { id: string; keyName: (id: string) => string; onClose: () => void }) => {
  const dialog = useRef<HTMLDialogElement>(null);
  const { value, error } = useLoad(() => gql<{ generation: Detail | null }>(DETAIL, { id }), [id]);
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
  }, []);
  const g = value?.generation;
  return (
    <dialog ref={dialog} class="drawer" aria-labelledby="drawer-title" onClose={onClose}>
      <div class="card-head">
        <h2 id="drawer-title">Generation</h2>
        <button type="button" onClick={() => dialog.current?.close()} autoFocus>
          Close
        </button>
      </div>
      <p class="mono small">{id}</p>
      {error && <Notice kind="error">{error}</Notice>}
      {value && !g && <Notice kind="error">No such generation.</Notice>}
      {g && (
        <>
          <Figures
            items={[
              ['Status', g.status.toLowerCase(), 'detail-status'],
              ['Model', g.model ?? '—'],
              ['Provider', g.provider ?? '—'],
              ['Requested', g.requestedModels.join(', ') || '—'],
              ['Key', g.keyId ? keyName(g.keyId) : g.workflowId ? `none (workflow ${g.workflowId})` : 'admin key'],
              ['Cost', formatUsd(g.cost), 'detail-cost'],
              ['Held while running', formatUsd(g.reserved)],
              ['Tokens in', g.usage ? formatInt(g.usage.promptTokens) : '—'],
              ['Tokens out', g.usage ? formatInt(g.usage.completionTokens) : '—'],
              ['Reasoning tokens', g.usage ? formatInt(g.usage.reasoningTokens) : '—'],
              ['Cached tokens', g.usage ? formatInt(g.usage.cachedTokens) : '—'],
              ['Usage from', g.usageSource ?? '—'],
              ['Latency to first token', g.latencyMs === null ? '—' : `${formatInt(g.latencyMs)} ms`],
              ['Generation time', g.generationTimeMs === null ? '—' : `${formatInt(g.generationTimeMs)} ms`],
              ['Finish', g.finishReason ?? '—'],
              ['Started', formatTime(g.createdAt)],
              ['Finished', g.finishedAt ? formatTime(g.finishedAt) : '—'],
              ['Through', `${g.apiType ?? 'unknown (charged, record lost)'}${g.streamed ? ', streamed' : ''}${g.workflowId ? `, workflow ${g.workflowId}` : ''}`],
              ['App', g.app ? [g.app.title, g.app.url].filter(Boolean).join(' · ') : '—', 'detail-app'],
              ['Session', g.sessionId ?? '—', 'detail-session'],
            ]}
          />
          {g.content ? <Content content={g.content} /> : <p class="muted small">The prompt and answer were not kept: input &amp; output logging was off for this generation (turn it on under Recent generations).</p>}
          {g.error != null && (
            <>
              <h3>Error</h3>
              <pre class="mono small">{JSON.stringify(g.error, null, 2)}</pre>
            </>
          )}
          <h3>Attempts</h3>
          <pre class="mono small">{JSON.stringify(g.attempts, null, 2)}</pre>
        </>
      )}
    </dialog>
  );
};
