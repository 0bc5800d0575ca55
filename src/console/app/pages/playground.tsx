import { useEffect, useRef, useState } from 'preact/hooks';
import { DOMAIN_ERROR, gql, subscribe, unwrap, type Result } from '../api.js';
import type { Me } from '../main.js';
import { formatInt, formatUsd } from '../money.js';
import { loadTextModels } from '../textModels.js';
import { Figures, messageOf, Notice, Section, useLoad } from '../ui.js';

interface Message {
  role: 'USER' | 'ASSISTANT';
  content: string;
}
interface Done {
  model: string | null;
  provider: string | null;
  cost: number | null;
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number; reasoningTokens: number } | null;
  error: unknown;
}
interface StreamEvent extends Done {
  type: 'TOKEN' | 'DONE';
  content: string | null;
}

/** Preselected when the catalog serves it: the built-in demo model answers without any provider's key. */
const DEFAULT_MODEL = 'switchyard/demo';

const START = `mutation Start($input: PromptInput!) { startGeneration(input: $input) { __typename ... on StartedGeneration { generationId } ${DOMAIN_ERROR} } }`;
const ATTEMPTS = 'query Attempts($id: ID!) { generation(id: $id) { attempts } }';
interface Attempt {
  attempt: number;
  endpointId: string;
  ok: boolean;
  errorCode: string | null;
  status: number | null;
}
const STREAM = 'subscription Stream($id: ID!) { generation(id: $id) { type content model provider cost finishReason error usage { promptTokens completionTokens reasoningTokens } } }';

/** A failed generation's reason in words: its message (the stream's error is `{ type, message }`), never raw JSON. */
const failureOf = (error: unknown): Error => {
  const message = (error as { message?: unknown } | null)?.message;
  const reason = typeof message === 'string' && message.trim() ? message.trim().replace(/\.$/, '') : 'no reason was given';
  return new Error(`The generation failed: ${reason}. Your message is back in the box to send again.`);
};

export const PlaygroundPage = (_props: { me: Me }) => {
  const models = useLoad(loadTextModels);
  // As chosen in the picker; until then the demo model, when the catalog serves it, else the first.
  const [chosen, setChosen] = useState<string | null>(null);
  const options = models.value?.models ?? [];
  const held = (id: string | null) => (id !== null && options.some((m) => m.id === id) ? id : null);
  // Only a model the picker holds is sent: the one shown is the one asked.
  const model = held(chosen) ?? held(DEFAULT_MODEL) ?? options[0]?.id ?? null;
  const [prompt, setPrompt] = useState('');
  const [history, setHistory] = useState<Message[]>([]);
  const [streaming, setStreaming] = useState<string | null>(null);
  const [done, setDone] = useState<Done | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The endpoints tried before the one that answered (fallbacks), read from the generation once it is done.
  const [attempts, setAttempts] = useState<Attempt[]>([]);
  const stop = useRef<(() => void) | null>(null);
  useEffect(() => () => stop.current?.(), []);

  const send = async (event: Event) => {
    event.preventDefault();
    const text = prompt.trim();
    if (!text || streaming !== null || model === null) return;
    const messages: Message[] = [...history, { role: 'USER', content: text }];
    setHistory(messages);
    setPrompt('');
    setDone(null);
    setError(null);
    setAttempts([]);
    // Refused, or failed (before or during its answer): the turn is taken back, so the next one does not send it as
    // context, and the prompt given back to edit and resend.
    const takeBack = (failure: unknown) => {
      setStreaming(null);
      setHistory(history);
      setPrompt(text);
      setError(messageOf(failure));
    };
    try {
      const { startGeneration } = await gql<{ startGeneration: Result<{ generationId: string }> }>(START, { input: { model, messages } });
      const { generationId } = unwrap(startGeneration);
      let answer = '';
      setStreaming('');
      stop.current = subscribe<{ generation: StreamEvent }>(STREAM, { id: generationId }, {
        next: ({ generation }) => {
          if (generation.type === 'TOKEN') {
            answer += generation.content ?? '';
            setStreaming(answer);
            return;
          }
          if (generation.error != null) return takeBack(failureOf(generation.error));
          setHistory((h) => [...h, { role: 'ASSISTANT', content: answer }]);
          setStreaming(null);
          setDone(generation);
          gql<{ generation: { attempts: Attempt[] } | null }>(ATTEMPTS, { id: generationId }).then(
            (result) => setAttempts(result.generation?.attempts ?? []),
            () => undefined, // the summary above stands without them
          );
        },
        error: takeBack,
      });
    } catch (failure) {
      takeBack(failure);
    }
  };

  return (
    <>
      <h1>Playground</h1>
      <Section
        title="Chat"
        actions={
          <button type="button" onClick={() => (setHistory([]), setDone(null), setError(null))} disabled={streaming !== null || history.length === 0}>
            New chat
          </button>
        }
      >
        <div class="controls">
          <div>
            <label for="pg-model">Model</label>
            <select id="pg-model" value={model ?? ''} onChange={(e) => setChosen(e.currentTarget.value)} disabled={options.length === 0}>
              {options.length === 0 && <option value="">{models.loading ? 'Loading the models…' : 'No model answers in text'}</option>}
              {options.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name} ({m.id})
                </option>
              ))}
            </select>
          </div>
        </div>
        {models.error && <Notice kind="error">{models.error}</Notice>}
        {models.value && !models.value.complete && <p class="muted small">The catalog holds more models than the picker lists ({formatInt(options.length)} shown).</p>}
        <ol class="chat" aria-label="Conversation">
          {history.map((m, i) => (
            <li key={i} class={`msg msg-${m.role.toLowerCase()}`}>
              <span class="who-said">{m.role === 'USER' ? 'You' : 'Model'}</span>
              <p>{m.content}</p>
            </li>
          ))}
          {streaming !== null && (
            <li class="msg msg-assistant" aria-live="polite" aria-busy="true">
              <span class="who-said">Model</span>
              <p data-testid="streaming">{streaming}</p>
            </li>
          )}
        </ol>
        {error && <Notice kind="error">{error}</Notice>}
        {done && (
          <Figures
            data-testid="generation-done"
            aria-live="polite"
            items={[
              ['Served by', `${done.model ?? '—'} on ${done.provider ?? '—'}`],
              ['Tokens in / out', done.usage ? `${formatInt(done.usage.promptTokens)} / ${formatInt(done.usage.completionTokens)}` : '—'],
              ['Cost', done.cost === null ? '—' : formatUsd(done.cost), 'generation-cost'],
              ['Finish', done.finishReason ?? '—'],
            ]}
          />
        )}
        {attempts.length > 1 && (
          <div aria-label="Fallbacks" role="region">
            <h3 class="small">Tried in order</h3>
            <ol class="attempts small">
              {attempts.map((a) => (
                <li key={a.attempt}>
                  <span class="mono">{a.endpointId}</span>: {a.ok ? 'answered' : `failed (${a.errorCode ?? 'error'}${a.status ? `, HTTP ${a.status}` : ''}), fell back`}
                </li>
              ))}
            </ol>
          </div>
        )}
        <form class="prompt" onSubmit={send}>
          <label for="pg-prompt">Message</label>
          <textarea
            id="pg-prompt"
            rows={3}
            value={prompt}
            onInput={(e) => setPrompt(e.currentTarget.value)}
            onKeyDown={(e) => {
              // Ctrl/Cmd+Enter sends, Enter alone is a new line.
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e);
            }}
            placeholder="Ask something (Ctrl+Enter to send)"
          />
          <button type="submit" class="primary" disabled={streaming !== null || !prompt.trim() || model === null}>
            Send
          </button>
        </form>
      </Section>
    </>
  );
};
