/**
 * The one SSE reader (WHATWG "server-sent events" parsing rules) and two tiny writer helpers.
 * Bytes may be split anywhere, including inside a UTF-8 sequence or between the CR and LF of a CRLF.
 */

export interface SseMessage {
  event?: string;
  data: string;
  id?: string;
}

export interface SseReadOptions {
  /** Called for every `:` comment line (keep-alives), without the colon and one leading space. */
  onComment?: (text: string) => void;
  /**
   * The most characters one event (or one line, a comment's too) may hold before it ends; more throws an
   * `SseTooLargeError`. A peer that never ends a line must not grow the reader's memory without bound.
   */
  maxEventChars?: number;
}

/** 8 Mi characters: far beyond any chunk of a chat completion stream (a whole tool call's arguments included). */
export const MAX_SSE_EVENT_CHARS = 8 * 1024 * 1024;

export class SseTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`an event of the stream is longer than ${limit} characters`);
    this.name = 'SseTooLargeError';
  }
}

export interface SseDecoder {
  push(bytes: Uint8Array): SseMessage[];
  /** End of input. Per the spec an event without its terminating blank line is discarded. */
  end(): SseMessage[];
}

const LF = 10;
const SPACE = 32;

export function createSseDecoder(options: SseReadOptions = {}): SseDecoder {
  // TextDecoder in streaming mode holds back incomplete UTF-8 sequences and strips a leading BOM.
  const utf8 = new TextDecoder('utf-8');
  // Pieces of the current, unterminated line: joined once the line ends, so long lines cost O(n).
  let pending: string[] = [];
  let skipLeadingLF = false;
  let dataLines: string[] = [];
  // Characters held for the current event: its data lines so far and the unterminated line.
  const maxEventChars = options.maxEventChars ?? MAX_SSE_EVENT_CHARS;
  let dataChars = 0;
  let pendingChars = 0;
  const hold = (chars: number): void => {
    if (dataChars + pendingChars + chars > maxEventChars) throw new SseTooLargeError(maxEventChars);
  };
  let eventType = '';
  let lastEventId: string | undefined;
  let out: SseMessage[] = [];

  const dispatch = (): void => {
    if (dataLines.length > 0) {
      const message: SseMessage = { data: dataLines.join('\n') };
      if (eventType !== '') message.event = eventType;
      if (lastEventId !== undefined && lastEventId !== '') message.id = lastEventId;
      out.push(message);
    }
    dataLines = [];
    dataChars = 0;
    eventType = '';
  };

  const processLine = (line: string): void => {
    if (line.length === 0) return dispatch();
    const colon = line.indexOf(':');
    if (colon === 0) {
      options.onComment?.(line.charCodeAt(1) === SPACE ? line.slice(2) : line.slice(1));
      return;
    }
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = '';
    if (colon !== -1) value = line.charCodeAt(colon + 1) === SPACE ? line.slice(colon + 2) : line.slice(colon + 1);
    switch (field) {
      case 'data':
        hold(value.length);
        dataLines.push(value);
        dataChars += value.length;
        break;
      case 'event':
        eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) lastEventId = value;
        break;
      default:
        // `retry` and unknown fields: nothing for a proxy to act on.
        break;
    }
  };

  const processText = (text: string): void => {
    let pos = 0;
    if (skipLeadingLF && text.length > 0) {
      if (text.charCodeAt(0) === LF) pos = 1;
      skipLeadingLF = false;
    }
    let nl = text.indexOf('\n', pos);
    let cr = text.indexOf('\r', pos);
    while (nl !== -1 || cr !== -1) {
      const end = nl === -1 ? cr : cr === -1 ? nl : Math.min(nl, cr);
      let next = end + 1;
      if (end === cr) {
        if (next < text.length) {
          if (text.charCodeAt(next) === LF) next += 1;
        } else {
          skipLeadingLF = true;
        }
      }
      const piece = text.slice(pos, end);
      if (pending.length > 0) {
        hold(piece.length);
        pending.push(piece);
        pendingChars = 0;
        processLine(pending.join(''));
        pending = [];
      } else {
        processLine(piece);
      }
      pos = next;
      if (nl !== -1 && nl < pos) nl = text.indexOf('\n', pos);
      if (cr !== -1 && cr < pos) cr = text.indexOf('\r', pos);
    }
    if (pos < text.length) {
      const rest = pos === 0 ? text : text.slice(pos);
      hold(rest.length);
      pending.push(rest);
      pendingChars += rest.length;
    }
  };

  const take = (): SseMessage[] => {
    const messages = out;
    out = [];
    return messages;
  };

  return {
    push(bytes) {
      processText(utf8.decode(bytes, { stream: true }));
      return take();
    },
    end() {
      processText(utf8.decode());
      pending = [];
      pendingChars = 0;
      dataLines = [];
      dataChars = 0;
      return take();
    },
  };
}

export type ByteSource = AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

/**
 * Parse a byte stream (a fetch `Response.body`, a Node stream, any async iterable) into SSE messages. Breaking out of
 * the loop cancels the source, which aborts the underlying HTTP request.
 */
export async function* readSse(source: ByteSource, options: SseReadOptions = {}): AsyncGenerator<SseMessage, void, undefined> {
  const decoder = createSseDecoder(options);
  for await (const bytes of iterate(source)) {
    for (const message of decoder.push(bytes)) yield message;
  }
  for (const message of decoder.end()) yield message;
}

async function* iterate(source: ByteSource): AsyncGenerator<Uint8Array, void, undefined> {
  if (Symbol.asyncIterator in source) {
    yield* source;
    return;
  }
  const reader = source.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function sseComment(text: string): string {
  return `${text
    .split(/\r\n|\r|\n/)
    .map((line) => `: ${line}`)
    .join('\n')}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';
