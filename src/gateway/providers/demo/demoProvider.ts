/**
 * The built-in demo model: in-process, free, offline and deterministic. It answers with a short explanation that
 * quotes the prompt, streamed token by token (about four characters each, the gateway's own estimate), so the
 * whole gateway (routing, streaming, billing, generation records) runs with no network.
 */
import { contentText } from '../common.js';
import type { ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage } from '../../types.js';
import type { ResponseMeta, StreamOutcome } from '../adapter.js';
import type { AbortLike } from '../../../cancellation.js';

export const DEMO_SUPPORTED_PARAMETERS: readonly string[] = ['max_tokens', 'temperature', 'top_p', 'stop', 'seed'];

export const estimateTokens = (chars: number): number => Math.ceil(chars / 4);

const lastUserText = (req: ChatRequest): string => {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const message = req.messages[i]!;
    if (message.role === 'user') return contentText(message.content);
  }
  return '';
};

const promptChars = (req: ChatRequest): number => {
  let chars = 0;
  for (const message of req.messages) chars += contentText(message.content ?? null).length + 4;
  return chars;
};

/** The answer for a request: the same request always gets the same words. */
export const demoAnswer = (req: ChatRequest): string => {
  const asked = lastUserText(req).replace(/\s+/g, ' ').trim();
  // Cut between code points: half a surrogate pair is not text, and strict JSON decoders reject it.
  const quoted = asked.length > 160 ? `${asked.slice(0, /[\uD800-\uDBFF]/.test(asked[156]!) ? 156 : 157)}...` : asked;
  return [
    quoted ? `You said: "${quoted}".` : 'Hello!',
    "This answer comes from Switchyard's built-in demo model, which runs offline inside the gateway.",
    'Your request was authenticated, routed, streamed, billed and recorded as events exactly as a call to a real provider would be.',
    'Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY and ask for a model such as openai/gpt-4o-mini to get real answers.',
  ].join(' ');
};

/**
 * Token-sized pieces (at most four visible code points, never half a surrogate pair, with the whitespace before
 * them) that join back to the text: one per streamed chunk and one per billed token, so usage, max_tokens and the
 * chars / 4 estimate agree.
 */
const pieces = (text: string): string[] => text.match(/\s*\S{1,4}/gu) ?? [];

interface Plan {
  readonly pieces: readonly string[];
  readonly finish: FinishReason;
  readonly usage: Usage;
}

/** The answer up to (not including) the first of the request's stop sequences it contains, as a model stops. */
const untilStop = (text: string, stop: ChatRequest['stop']): string => {
  let end = text.length;
  for (const sequence of typeof stop === 'string' ? [stop] : (stop ?? [])) {
    const at = sequence === '' ? -1 : text.indexOf(sequence);
    if (at !== -1 && at < end) end = at;
  }
  return text.slice(0, end);
};

const plan = (req: ChatRequest): Plan => {
  const all = pieces(untilStop(demoAnswer(req), req.stop));
  const limit = req.max_tokens ?? req.max_completion_tokens;
  // Each piece is about one token; a max_tokens budget cuts the answer, as a real model would.
  const kept = limit !== undefined && limit < all.length ? all.slice(0, Math.max(0, limit)) : all;
  const prompt = estimateTokens(promptChars(req));
  const completion = kept.length;
  return {
    pieces: kept,
    finish: kept.length < all.length ? 'length' : 'stop',
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
};

export const demoComplete = (req: ChatRequest, meta: Required<ResponseMeta>): ChatResponse => {
  const p = plan(req);
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message: { role: 'assistant', content: p.pieces.join('') }, finish_reason: p.finish, native_finish_reason: p.finish }],
    usage: p.usage,
  };
};

const sleep = (ms: number, signal: AbortLike) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** A streamed answer: the role chunk, one chunk per token (`tokenDelayMs` apart), then the finish chunk. */
export const demoStream = (req: ChatRequest, meta: Required<ResponseMeta>, tokenDelayMs: number, signal: AbortLike) => {
  const p = plan(req);
  let done = false;
  const chunk = (delta: ChatChunk['choices'][number]['delta'], finish: FinishReason | null = null): ChatChunk[] => [
    { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices: [{ index: 0, delta, finish_reason: finish, ...(finish && { native_finish_reason: finish }) }] },
  ];
  async function* chunks(): AsyncGenerator<ChatChunk[]> {
    yield chunk({ role: 'assistant', content: '' });
    for (const [i, content] of p.pieces.entries()) {
      if (i > 0 && tokenDelayMs > 0) await sleep(tokenDelayMs, signal);
      else if (signal.aborted) throw signal.reason;
      yield chunk({ content });
    }
    yield chunk({}, p.finish);
    done = true;
  }
  return {
    chunks: chunks(),
    finish: (): StreamOutcome => (done ? { done, usage: p.usage, finishReason: p.finish, nativeFinishReason: p.finish } : { done }),
  };
};
