/**
 * An Idempotency-Key's answer on REST, as bytes: the recorder that captures what a call holding the key sends (status,
 * content type, generation id, the body exactly as written, a stream's whole SSE transcript), and the replay that
 * sends it again to a retry (requestIdempotency.ts decides when). Installed only on a request that sends a key.
 */
import type { ServerResponse } from 'node:http';
import { MAX_REPLAY_BYTES, type AnswerRecorder, type RecordedAnswer } from '../modules/generations/requestIdempotency.js';

/** The headers a replay repeats: how to read the body, and which generation it is. */
const KEPT_HEADERS = ['content-type', 'x-generation-id'] as const;

type End = ServerResponse['end'];
type Write = ServerResponse['write'];
type WriteHead = ServerResponse['writeHead'];

const bytesOf = (chunk: unknown, encoding: unknown): Buffer | null => {
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return null;
};

/**
 * Records what `res` sends. The answer is saved when the response ends whole, before its last bytes go out: once a
 * client has its answer, a retry finds it. Whole also when its client had left before it began: a call that does not
 * stream runs to its end and is charged whole all the same (wholeCall), and its retry is owed that answer (the case
 * Idempotency-Keys exist for: a client timeout, then a retry). Not saved: a response its client left while it was
 * being written (a stream cut), nor one whose body passed MAX_REPLAY_BYTES. `save` logs its own failure, which costs
 * only the replay (a retry then gets the 409).
 */
export const recordAnswer = (res: ServerResponse): AnswerRecorder => {
  let save: ((answer: RecordedAnswer) => Promise<void>) | null = null;
  const chunks: Buffer[] = [];
  let size = 0;
  /** Whether the client was still there when the first bytes were written: if it is gone at the end, it left mid-answer. */
  let begunConnected: boolean | null = null;
  const headers: Record<string, string> = {};
  const take = (chunk: unknown, encoding: unknown) => {
    const bytes = bytesOf(chunk, encoding);
    if (bytes === null || size > MAX_REPLAY_BYTES) return;
    size += bytes.length;
    if (size > MAX_REPLAY_BYTES) chunks.length = 0;
    else chunks.push(Buffer.from(bytes));
  };
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    begunConnected ??= !res.destroyed;
    const given = args.find((a, i) => i > 0 && a !== null && typeof a === 'object' && !Array.isArray(a)) as Record<string, unknown> | undefined;
    if (given) for (const [name, value] of Object.entries(given)) headers[name.toLowerCase()] = String(value);
    return writeHead(...args);
  }) as WriteHead;
  res.write = ((chunk: unknown, encoding?: unknown, ...rest: unknown[]) => {
    begunConnected ??= !res.destroyed;
    take(chunk, encoding);
    return write(chunk, encoding, ...rest);
  }) as Write;
  res.end = ((...args: unknown[]) => {
    begunConnected ??= !res.destroyed;
    if (typeof args[0] !== 'function') take(args[0], args[1]);
    if (save === null || size > MAX_REPLAY_BYTES || (begunConnected && res.destroyed)) return end(...args);
    const kept: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const value = res.getHeader(name) ?? headers[name];
      if (value !== undefined) kept[name] = String(value);
    }
    void save({ status: res.statusCode, headers: kept, body: Buffer.concat(chunks) })
      .catch(() => undefined)
      .then(() => end(...args));
    return res;
  }) as End;
  return {
    keep(saver) {
      save = saver;
    },
    drop() {
      save = null;
    },
  };
};

/**
 * A retry's answer: the stored one, thrown by the gateway instead of a new call and sent by the REST error writer
 * (sendError) as it was first sent, with `Idempotent-Replayed: true`.
 */
export class IdempotentReplay extends Error {
  constructor(readonly answer: RecordedAnswer) {
    super('an Idempotency-Key’s stored answer');
  }

  send(res: ServerResponse): void {
    res.writeHead(this.answer.status, { ...this.answer.headers, 'content-length': this.answer.body.length, 'idempotent-replayed': 'true' });
    res.end(this.answer.body);
  }
}
