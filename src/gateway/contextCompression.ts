/**
 * OpenRouter's context compression ("middle-out"): a conversation too long for an endpoint loses messages from its
 * middle, then, if one message alone is still too long, the middle of its text, until it fits; the start (the system
 * prompt, the task) and the end (the latest turns) are what a model needs most. Asked for with the
 * `context-compression` plugin (or legacy `transforms: ["middle-out"]`), refused with `enabled: false` (or
 * `transforms: []`), and on by default for endpoints whose context is at most 8,192 tokens.
 *
 * Any prompt is fitted, however far over the context: an endpoint the prompt fits gets it whole, one it does not gets
 * it compressed, and only what cannot be cut (system messages, tools, no text left to shorten) is refused (a 400). The
 * prompt is fitted into the context less room for the answer: `max_tokens`, else the endpoint's max output but at
 * most a quarter of its context. Anthropic's limit of 1,000 messages is met the same way (half from the start, half
 * from the end).
 *
 * An assistant message that called tools keeps the tool results that answer it (a provider refuses one without the
 * other); system and developer messages and the last user message are never dropped (their text may be shortened).
 */
import { messageTokens } from './chatRequest.js';
import type { ChatMessage, ContentPart } from './types.js';

export const COMPRESSED_BY_DEFAULT_UP_TO = 8_192;
/** Anthropic's Messages API refuses more messages than this. */
export const ANTHROPIC_MAX_MESSAGES = 1_000;
const MARKER = '\n[…]\n';
const CHARS_PER_TOKEN = 4;

/** Whether compression applies to an endpoint of this context length, as the request asked (null: the default). */
export const compressionApplies = (asked: boolean | null, contextLength: number): boolean => asked ?? contextLength <= COMPRESSED_BY_DEFAULT_UP_TO;

/** A message's text shortened by about `tokens` (as much as it can give) from its middle, or null when it has no text to give. */
const cutMiddle = (message: ChatMessage, tokens: number): ChatMessage | null => {
  const cut = (text: string): string | null => {
    // Some of each end always stays; a text with too little to give is left alone.
    const room = text.length - 2 * MARKER.length;
    if (room <= MARKER.length) return null;
    const drop = Math.min(tokens * CHARS_PER_TOKEN + MARKER.length, room);
    const keep = text.length - drop;
    const head = Math.ceil(keep / 2);
    return `${text.slice(0, head)}${MARKER}${text.slice(text.length - (keep - head))}`;
  };
  const { content } = message;
  if (typeof content === 'string') {
    const text = cut(content);
    return text === null ? null : ({ ...message, content: text } as ChatMessage);
  }
  if (!Array.isArray(content)) return null;
  // The longest text part is the one shortened.
  let longest = -1;
  content.forEach((part, i) => {
    if (part.type === 'text' && (longest < 0 || part.text.length > (content[longest] as { text: string }).text.length)) longest = i;
  });
  if (longest < 0) return null;
  const text = cut((content[longest] as { text: string }).text);
  if (text === null) return null;
  const parts: ContentPart[] = content.map((part, i) => (i === longest ? { type: 'text', text } : part));
  return { ...message, content: parts } as ChatMessage;
};

/**
 * The messages fitted into `budget` tokens (the messages' estimate, as `messageTokens` counts) and at most
 * `maxMessages`, or null when they cannot be: what is left is pinned or has no text to shorten. Linear in the
 * messages (and a sort of them when text must be shortened): a hostile body of tens of thousands of messages costs
 * milliseconds, not seconds.
 */
export const middleOut = (messages: readonly ChatMessage[], budget: number, maxMessages: number = Infinity): ChatMessage[] | null => {
  // Units that go or stay together: an assistant message with tool calls and the tool messages after it.
  const units: { messages: ChatMessage[]; tokens: number; dropped: boolean }[] = [];
  for (const m of messages) {
    const last = units.at(-1);
    if (m.role === 'tool' && last !== undefined && last.messages.some((u) => u.role === 'tool' || (u.role === 'assistant' && (u.tool_calls?.length ?? 0) > 0))) {
      last.messages.push(m);
      last.tokens += messageTokens(m);
    } else units.push({ messages: [m], tokens: messageTokens(m), dropped: false });
  }
  let tokens = units.reduce((n, u) => n + u.tokens, 0);
  let count = messages.length;
  // Drop from the middle outwards: the first and last units stay, and so do system and developer messages and the last
  // user message (the question, when an assistant prefill or a tool result ends the conversation). Removing the middle
  // one of those left, again and again, removes a block around the centre, one side then the other.
  let lastUser = units.length - 1;
  while (lastUser > 0 && units[lastUser]!.messages[0]!.role !== 'user') lastUser--;
  const droppable = units.filter((u, i) => i > 0 && i < units.length - 1 && i !== lastUser && u.messages[0]!.role !== 'system' && u.messages[0]!.role !== 'developer');
  let lo = Math.floor(droppable.length / 2);
  let hi = lo;
  while ((tokens > budget || count > maxMessages) && (lo > 0 || hi < droppable.length)) {
    const victim = droppable.length - hi > lo ? droppable[hi++]! : droppable[--lo]!;
    victim.dropped = true;
    tokens -= victim.tokens;
    count -= victim.messages.length;
  }
  if (count > maxMessages) return null;
  const out = units.flatMap((u) => (u.dropped ? [] : u.messages));
  if (tokens <= budget) return out;
  // Still too long: shorten the longest messages' text from its middle, the longest first, each as much as it can give.
  const order = out.map((m, i) => ({ i, t: messageTokens(m) })).sort((a, b) => b.t - a.t);
  for (const { i, t } of order) {
    const next = cutMiddle(out[i]!, Math.min(tokens - budget, t));
    if (next === null) continue;
    tokens += messageTokens(next) - t;
    out[i] = next;
    if (tokens <= budget) return out;
  }
  return null;
};
