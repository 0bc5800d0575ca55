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
  streamed: boolean;
  apiType: string;
  usageSource: string | null;
  error: unknown;
  attempts: unknown;
  workflowId: string | null;
  keyId: string | null;
  app: { url: string | null; title: string | null } | null;
  usage: { promptTokens: number; completionTokens: number; reasoningTokens: number; cachedTokens: number } | null;
}

const DETAIL = `query Generation($id: ID!) { generation(id: $id) {
  id createdAt finishedAt model provider status cost reserved latencyMs generationTimeMs finishReason
  requestedModels streamed apiType usageSource error attempts workflowId keyId app { url title }
  usage { promptTokens completionTokens reasoningTokens cachedTokens }
} }`;

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
              ['Key', g.keyId ? keyName(g.keyId) : 'admin key'],
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
              ['Through', `${g.apiType}${g.streamed ? ', streamed' : ''}${g.workflowId ? `, workflow ${g.workflowId}` : ''}`],
              ['App', g.app ? [g.app.title, g.app.url].filter(Boolean).join(' · ') : '—', 'detail-app'],
            ]}
          />
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
