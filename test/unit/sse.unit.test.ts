import { describe, expect, it } from 'vitest';
import { createSseDecoder, readSse, SSE_DONE, sseComment, sseData, SseTooLargeError, type SseMessage } from '../../src/gateway/sse.js';

const encoder = new TextEncoder();

function decodeIn(pieces: Uint8Array[], onComment?: (text: string) => void): SseMessage[] {
  const decoder = createSseDecoder(onComment ? { onComment } : {});
  const out: SseMessage[] = [];
  for (const piece of pieces) out.push(...decoder.push(piece));
  out.push(...decoder.end());
  return out;
}

// Every feature at once: event names, ids, comments, multi-line data, CRLF/CR/LF, multi-byte UTF-8 (2, 3, 4 bytes).
const SAMPLE =
  ': keep-alive\n' +
  'event: message_start\r\n' +
  'id: 1\r\n' +
  'data: {"text":"héllo 世界 👋"}\r\n' +
  '\r\n' +
  'data: first line\r' +
  'data:second line\r' +
  'data\r' +
  '\r' +
  ':another comment\n' +
  'retry: 1000\n' +
  'unknown-field: ignored\n' +
  'data: last 🚀\n' +
  '\n';

const EXPECTED: SseMessage[] = [
  { event: 'message_start', id: '1', data: '{"text":"héllo 世界 👋"}' },
  { id: '1', data: 'first line\nsecond line\n' },
  { id: '1', data: 'last 🚀' },
];

describe('SSE reader', () => {
  it('parses events, ids, multi-line data and every line ending', () => {
    const comments: string[] = [];
    expect(decodeIn([encoder.encode(SAMPLE)], (c) => comments.push(c))).toEqual(EXPECTED);
    expect(comments).toEqual(['keep-alive', 'another comment']);
  });

  it('gives the same messages whichever byte the input is split at', () => {
    const bytes = encoder.encode(SAMPLE);
    for (let at = 0; at <= bytes.length; at++) {
      expect(decodeIn([bytes.subarray(0, at), bytes.subarray(at)]), `split at byte ${at}`).toEqual(EXPECTED);
    }
  });

  it('gives the same messages when fed one byte at a time', () => {
    const bytes = encoder.encode(SAMPLE);
    const singles = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    expect(decodeIn(singles)).toEqual(EXPECTED);
  });

  it('treats a CRLF split across reads as one line break, not an empty line', () => {
    const messages = decodeIn([encoder.encode('data: a\r'), encoder.encode('\ndata: b\r\n\r\n')]);
    expect(messages).toEqual([{ data: 'a\nb' }]);
  });

  it('removes exactly one space after the colon', () => {
    expect(decodeIn([encoder.encode('data:x\n\ndata:  two\n\n')])).toEqual([{ data: 'x' }, { data: ' two' }]);
  });

  it('dispatches nothing for an event without data, and resets the event name after each dispatch', () => {
    const messages = decodeIn([encoder.encode('event: ping\n\nevent: a\ndata: 1\n\ndata: 2\n\n')]);
    expect(messages).toEqual([{ event: 'a', data: '1' }, { data: '2' }]);
  });

  it('discards an event that the stream ends before terminating', () => {
    expect(decodeIn([encoder.encode('data: complete\n\ndata: {"partial":')])).toEqual([{ data: 'complete' }]);
  });

  it('strips a leading byte-order mark and ignores ids containing NUL', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('id: 7\ndata: a\n\nid: x\0y\ndata: b\n\n')]);
    expect(decodeIn([bytes])).toEqual([{ id: '7', data: 'a' }, { id: '7', data: 'b' }]);
  });

  it('reassembles a multi-megabyte line delivered in small reads', () => {
    const big = 'x'.repeat(2_000_000);
    const bytes = encoder.encode(`data: ${big}\n\n`);
    const reads: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += 64) reads.push(bytes.subarray(at, at + 64));
    const [message] = decodeIn(reads);
    expect(message?.data.length).toBe(big.length);
  });

  it('bounds an event: a line that never ends, many data lines, or a comment over the limit throws, whatever the reads', () => {
    const limit = 1_000;
    const feed = (text: string, step: number) => {
      const decoder = createSseDecoder({ maxEventChars: limit });
      const bytes = encoder.encode(text);
      const out: SseMessage[] = [];
      for (let at = 0; at < bytes.length; at += step) out.push(...decoder.push(bytes.subarray(at, at + step)));
      return out;
    };
    for (const step of [7, 64, 100_000]) {
      expect(() => feed(`data: ${'x'.repeat(limit + 1)}`, step)).toThrow(SseTooLargeError);
      expect(() => feed('data: 0123456789\n'.repeat(101), step)).toThrow(SseTooLargeError);
      expect(() => feed(`: ${'k'.repeat(limit + 1)}`, step)).toThrow(SseTooLargeError);
      // At the limit, and event after event under it, nothing is refused: the count starts again at each event.
      expect(feed(`data: ${'x'.repeat(limit - 6)}\n\n`, step)).toHaveLength(1);
      expect(feed(`data: ${'y'.repeat(900)}\n\n`.repeat(5), step)).toHaveLength(5);
    }
  });

  it('reads a web ReadableStream and cancels it when the consumer stops early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('data: one\n\ndata: t'));
        controller.enqueue(encoder.encode('wo\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    const seen: string[] = [];
    for await (const message of readSse(stream)) {
      seen.push(message.data);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['one', 'two']);
    expect(cancelled).toBe(true);
  });

  it('reads any async iterable of bytes and reports comments', async () => {
    async function* body(): AsyncGenerator<Uint8Array> {
      yield encoder.encode(': OPENROUTER PROCESSING\n\n');
      yield encoder.encode('data: [DONE]\n\n');
    }
    const comments: string[] = [];
    const messages: SseMessage[] = [];
    for await (const message of readSse(body(), { onComment: (c) => comments.push(c) })) messages.push(message);
    expect(messages).toEqual([{ data: '[DONE]' }]);
    expect(comments).toEqual(['OPENROUTER PROCESSING']);
  });
});

describe('SSE writer', () => {
  it('frames JSON as one data event and comments as comment lines', () => {
    expect(sseData({ a: 'b\nc' })).toBe('data: {"a":"b\\nc"}\n\n');
    expect(sseComment('OPENROUTER PROCESSING')).toBe(': OPENROUTER PROCESSING\n\n');
    expect(sseComment('two\nlines')).toBe(': two\n: lines\n\n');
    expect(SSE_DONE).toBe('data: [DONE]\n\n');
  });

  it('round-trips through the reader', () => {
    const payloads = [{ x: 1 }, { text: 'line1\nline2 ✓' }];
    const comments: string[] = [];
    const wire = sseComment('ping') + payloads.map(sseData).join('') + SSE_DONE;
    const messages = decodeIn([encoder.encode(wire)], (c) => comments.push(c));
    expect(messages.map((m) => m.data)).toEqual([...payloads.map((p) => JSON.stringify(p)), '[DONE]']);
    expect(comments).toEqual(['ping']);
  });
});
