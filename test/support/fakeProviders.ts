/**
 * Local fake upstreams speaking the real wire protocols (OpenAI chat completions, Anthropic Messages, Gemini
 * generateContent), scriptable per request so tests can inject latency, errors, resets, hangs and cut streams.
 * Answers are deterministic: an echo of the last user message, split word by word when streamed, with usage
 * estimated as ceil(chars / 4).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeProtocol = 'openai' | 'anthropic' | 'gemini';

export interface FakeToolCall {
  name: string;
  arguments: Record<string, unknown>;
  id?: string;
}

export interface FakeUsage {
  promptTokens?: number;
  completionTokens?: number;
  cachedTokens?: number;
  reasoningTokens?: number;
}

export interface Script {
  /** Delay before the response starts. */
  latencyMs?: number;
  /** Hold the response until this settles (after `latencyMs`): a call the test keeps in flight as long as it needs. */
  holdUntil?: Promise<unknown>;
  /** Answer with this status. ≥ 400 without `body` sends the protocol's own error body for that status. */
  status?: number;
  /** Response body (objects are JSON-encoded, strings sent verbatim). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Destroy the socket without answering. */
  reset?: boolean;
  /** Never answer (until the client gives up or the server closes). */
  hang?: boolean;
  /** Streaming: destroy the socket after this many SSE events. */
  cutAfterChunks?: number;
  /** Streaming: end the response cleanly after this many SSE events, as a whole answer ends (the rest never sent). */
  endAfterChunks?: number;
  /**
   * Streaming: after the protocol's end (OpenAI `[DONE]`, Anthropic `message_stop`, Gemini's finishReason chunk), more
   * of the answer: a content event with `text` and, with `completionTokens`, a usage report saying that many.
   */
  afterEnd?: { text: string; completionTokens?: number };
  /** Streaming: after the last event, keep the response open (until the client goes away) instead of ending it. */
  keepOpen?: boolean;
  /** Streaming: leave out the protocol's end marker (OpenAI `[DONE]`, Anthropic `message_stop`): end the response, or destroy the socket, in its place. */
  endMarker?: 'omit' | 'cut';
  /** Streaming (OpenAI): after this many events send a chunk with empty content every 50 ms, until the client goes away. */
  emptyDeltasAfter?: number;
  /** Streaming: after this many events send an SSE comment (`: OPENROUTER PROCESSING`) every 50 ms, until the client goes away. */
  commentsAfter?: number;
  /** Streaming: destroy the socket once this many bytes of the event stream went out, wherever that falls (toxiproxy's `limit_data`). */
  cutAtByte?: number;
  /** Streaming: after this many events start a `data:` line that never ends, 1 MiB a write, until the client goes away. */
  endlessLineAfter?: number;
  /** A body that never ends (with `status`, else 200 `application/json`), 1 MiB a write, until the client goes away. */
  endlessBody?: boolean;
  /** With `endlessBody`: stop writing after this many bytes (the body still never ends). */
  bodyBytes?: number;
  /** Write these bytes to the socket instead of an HTTP answer, then close it (a bare `HTTP/1.1 103 …`, garbage). */
  rawAnswer?: string;
  /** Streaming: after this many events send the protocol's in-stream error event and end. */
  errorAfterChunks?: number;
  /**
   * Streaming (OpenAI): after this many events the provider ends the answer with an error in the stream, HTTP still
   * 200. `openrouter`: OpenRouter's documented mid-stream error, one chunk with a top-level `error` and a choice with
   * finish_reason "error" (`delta: {content: ""}`), then the stream ends. `choice`: the error on the choice, as a whole
   * answer's `choices[0].error`, with finish_reason "error", then the usage chunk (when asked for) and `[DONE]`;
   * `sent` replaces the `{code, message, metadata}` object as the choice's `error` (a string, a number...).
   * `unfinished`: the error on the choice of the next text chunk, finish_reason null, its text kept, and then the
   * answer goes on and finishes as usual (`stop`, usage, `[DONE]`).
   */
  inBandError?: { afterChunks: number; shape: 'openrouter' | 'choice' | 'unfinished'; code: number; message: string; metadata?: Record<string, unknown>; sent?: unknown };
  /** An invalid JSON body, or (streaming) an invalid JSON event after the first one. */
  malformedJson?: boolean;
  /** Streaming: delay between SSE events. */
  slowTokenMs?: number;
  /**
   * Streaming (OpenAI), whatever max_tokens says: `chars` characters of content (`char` repeated, default "a"), in
   * chunks of `chunkChars` (4,000), as fast as the reader takes them (each write waits for `drain` once the socket's
   * buffer is full, `writeBlocked` meanwhile), then a finish, the usage and `[DONE]`. `sentBytes` counts what went out.
   * `field`: the delta's field that carries them (`content`; a `refusal`; `reasoning_details`, each chunk one
   * `reasoning.text` detail).
   */
  flood?: { chars: number; chunkChars?: number; char?: string; field?: 'content' | 'refusal' | 'reasoning_details' };
  text?: string;
  /** Override counts, or 'omit' to leave usage out (streaming). */
  usage?: FakeUsage | 'omit';
  /**
   * The protocol's usage object sent as it is, in place of the counted one (OpenAI and Anthropic `usage`, Gemini
   * `usageMetadata`): a whole answer's; streamed, the one on the event that ends the answer (OpenAI's usage chunk,
   * Anthropic's `message_delta`, whose `message_start` keeps its counted input and placeholder `output_tokens: 1`,
   * Gemini's last chunk). `null`: that body or event carries none.
   */
  wireUsage?: unknown;
  toolCall?: FakeToolCall;
  /**
   * OpenAI: reasoning sent as DeepSeek does, `reasoning_content` (a message field; a delta before the answer).
   * Anthropic: a `thinking` block before the answer, signed with `fakeSignature(reasoning)` (streamed as a
   * `thinking_delta` then a `signature_delta`).
   */
  reasoning?: string;
  /** Anthropic: the answer ended on this stop sequence (`stop_reason: "stop_sequence"`, `stop_sequence` naming it). */
  stopSequence?: string;
}

export type RequestOutcome = 'completed' | 'aborted' | 'reset';

export interface ReceivedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON, or the raw text when it was not JSON. */
  body: unknown;
  model?: string;
  stream: boolean;
  /** Set when the client closed the connection before the response finished. */
  clientAborted: boolean;
  /** When the request arrived (Date.now()). */
  receivedAt: number;
  /** `endlessBody`, `flood`: the bytes of the body written so far. */
  sentBytes: number;
  /** `flood`: a write is waiting for the reader (the gateway) to take what the socket holds. */
  writeBlocked: boolean;
  outcome: Promise<RequestOutcome>;
}

export interface FakeProviderOptions {
  /** When set, requests without this key get the protocol's authentication error. */
  apiKey?: string;
  /** Model ids for OpenAI's `GET /v1/models`. */
  models?: string[];
}

export interface FakeProvider {
  protocol: FakeProtocol;
  /** `http://127.0.0.1:port` */
  url: string;
  /** The URL an adapter target wants: with `/v1` (OpenAI, Anthropic) or `/v1beta` (Gemini). */
  baseUrl: string;
  requests: ReceivedRequest[];
  script(next: Script): void;
  setDefault(script: Script): void;
  close(): Promise<void>;
}

const CREATED = 1_700_000_000;
const VERSION_PREFIX: Record<FakeProtocol, string> = { openai: '/v1', anthropic: '/v1', gemini: '/v1beta' };

export async function startFakeProvider(protocol: FakeProtocol, options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const queue: Script[] = [];
  let defaultScript: Script = {};
  const requests: ReceivedRequest[] = [];
  let sequence = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://fake');
    const body = parseBody(rawBody);
    const route = routeOf(protocol, req.method ?? 'GET', url.pathname, body);
    const cutByUs = { value: false };
    const record: ReceivedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: flattenHeaders(req.headers),
      body,
      ...(route.model !== undefined && { model: route.model }),
      stream: route.stream,
      clientAborted: false,
      receivedAt: Date.now(),
      sentBytes: 0,
      writeBlocked: false,
      outcome: new Promise<RequestOutcome>((resolve) => {
        res.on('close', () => {
          if (res.writableFinished) return resolve('completed');
          if (cutByUs.value) return resolve('reset');
          record.clientAborted = true;
          resolve('aborted');
        });
      }),
    };
    requests.push(record);

    if (route.kind === 'models') {
      const ids = options.models ?? ['fake-model'];
      return sendJson(res, 200, {
        object: 'list',
        data: ids.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'fake' })),
      });
    }
    if (route.kind === 'embeddings') {
      const script = queue.shift() ?? defaultScript;
      if (script.latencyMs) await sleep(script.latencyMs);
      if (res.destroyed) return;
      if (script.endlessBody) return endlessBody(res, script, record);
      if (script.status !== undefined && script.status >= 400) return send(res, script.status, script.body ?? errorBody(protocol, script.status, `Scripted ${script.status}`));
      return sendJson(res, 200, embeddingsBody(protocol, body, script));
    }
    if (route.kind === 'unknown') return sendJson(res, 404, errorBody(protocol, 404, `No route for ${req.method} ${url.pathname}`));
    if (options.apiKey !== undefined && presentedKey(protocol, record) !== options.apiKey) {
      // Gemini reports a bad key as 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
      return protocol === 'gemini'
        ? sendJson(res, 400, geminiKeyError())
        : sendJson(res, 401, errorBody(protocol, 401, 'Invalid API key'));
    }

    const script = queue.shift() ?? defaultScript;
    if (script.latencyMs) await sleep(script.latencyMs);
    if (script.holdUntil) await script.holdUntil;
    if (res.destroyed) return;
    if (script.reset) {
      cutByUs.value = true;
      req.socket.destroy();
      return;
    }
    if (script.hang) return;
    if (script.endlessBody) return endlessBody(res, script, record);
    if (script.rawAnswer !== undefined) {
      cutByUs.value = true;
      req.socket.end(script.rawAnswer);
      return;
    }

    const headers = script.headers ?? {};
    if (script.status !== undefined && (script.status >= 400 || script.body !== undefined)) {
      const payload = script.body ?? errorBody(protocol, script.status, `Scripted ${script.status}`);
      return send(res, script.status, payload, headers);
    }
    if (script.body !== undefined) return send(res, 200, script.body, headers);
    const refused = protocol === 'anthropic' ? anthropicThinkingRefusal(body) : null;
    if (refused !== null) return sendJson(res, 400, errorBody(protocol, 400, refused));

    sequence += 1;
    const answer = answerFor(protocol, body, script, route.model ?? modelOf(body), sequence);
    if (!route.stream) {
      if (script.malformedJson) return send(res, 200, '{"id": "broken", "choices": [', headers);
      return sendJson(res, 200, completionBody(protocol, answer), headers);
    }

    if (script.flood) return flood(res, script.flood, answer, record);
    const events = streamEvents(protocol, answer, includeUsage(protocol, body, script));
    if (script.afterEnd) events.push(...eventsAfterEnd(protocol, answer, script.afterEnd));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers });
    res.flushHeaders();
    if (script.cutAtByte !== undefined) {
      const bytes = Buffer.from(events.join('')).subarray(0, script.cutAtByte);
      await new Promise<void>((resolve) => res.write(bytes, () => resolve()));
      cutByUs.value = true;
      res.socket?.destroy();
      return;
    }
    for (const [index, event] of events.entries()) {
      if (res.destroyed) return;
      if (script.endAfterChunks !== undefined && index >= script.endAfterChunks) return void res.end();
      if (script.cutAfterChunks !== undefined && index >= script.cutAfterChunks) {
        cutByUs.value = true;
        res.socket?.destroy();
        return;
      }
      if (script.errorAfterChunks !== undefined && index >= script.errorAfterChunks) {
        res.end(streamErrorEvent(protocol));
        return;
      }
      if (script.inBandError !== undefined && script.inBandError.shape !== 'unfinished' && index >= script.inBandError.afterChunks) {
        res.end(inBandErrorEvents(answer, script.inBandError, includeUsage(protocol, body, script)));
        return;
      }
      if (script.endMarker !== undefined && index === events.length - 1) {
        if (script.endMarker === 'omit') return void res.end();
        cutByUs.value = true;
        res.socket?.destroy();
        return;
      }
      if (script.emptyDeltasAfter !== undefined && index >= script.emptyDeltasAfter) {
        const empty = `data: ${JSON.stringify({ id: 'chatcmpl-empty', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [{ index: 0, delta: { content: '' }, finish_reason: null }] })}\n\n`;
        while (!res.destroyed) {
          res.write(empty);
          await sleep(50);
        }
        return;
      }
      if (script.commentsAfter !== undefined && index >= script.commentsAfter) {
        while (!res.destroyed) {
          res.write(': OPENROUTER PROCESSING\n\n');
          await sleep(50);
        }
        return;
      }
      if (script.endlessLineAfter !== undefined && index >= script.endlessLineAfter) {
        const mebibyte = 'a'.repeat(1024 * 1024);
        await new Promise<void>((resolve) => res.write('data: {"x":"', () => resolve()));
        while (!res.destroyed) {
          if (res.write(mebibyte)) continue;
          await drainedOrClosed(res);
        }
        return;
      }
      if (script.malformedJson && index === 1) {
        res.end(frame(protocol, '{"choices": [{"delta": '));
        return;
      }
      if (index > 0 && script.slowTokenMs) await sleep(script.slowTokenMs);
      if (res.destroyed) return;
      // Wait for each event to reach the socket, so a cut that follows really comes after it.
      const sent = script.inBandError?.shape === 'unfinished' && index === script.inBandError.afterChunks ? withChoiceError(event, script.inBandError) : event;
      await new Promise<void>((resolve) => res.write(sent, () => resolve()));
    }
    if (!script.keepOpen) res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    protocol,
    url,
    baseUrl: `${url}${VERSION_PREFIX[protocol]}`,
    requests,
    script: (next) => void queue.push(next),
    setDefault: (script) => {
      defaultScript = script;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Routing and request reading

interface Route {
  kind: 'chat' | 'models' | 'embeddings' | 'unknown';
  stream: boolean;
  model?: string;
}

function routeOf(protocol: FakeProtocol, method: string, path: string, body: unknown): Route {
  const streamFlag = isRecord(body) && body.stream === true;
  if (protocol === 'openai') {
    if (method === 'GET' && path === '/v1/models') return { kind: 'models', stream: false };
    if (method === 'POST' && path === '/v1/chat/completions') return { kind: 'chat', stream: streamFlag };
    if (method === 'POST' && path === '/v1/embeddings') return { kind: 'embeddings', stream: false };
  }
  if (protocol === 'gemini' && method === 'POST') {
    const match = /^\/v1beta\/models\/([^/:]+):batchEmbedContents$/.exec(path);
    if (match?.[1]) return { kind: 'embeddings', stream: false, model: decodeURIComponent(match[1]) };
  }
  if (protocol === 'anthropic' && method === 'POST' && path === '/v1/messages') return { kind: 'chat', stream: streamFlag };
  if (protocol === 'gemini' && method === 'POST') {
    const match = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path);
    if (match?.[1]) return { kind: 'chat', stream: match[2] === 'streamGenerateContent', model: decodeURIComponent(match[1]) };
  }
  return { kind: 'unknown', stream: false };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(raw: string): unknown {
  if (raw === '') return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function flattenHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function presentedKey(protocol: FakeProtocol, request: ReceivedRequest): string | undefined {
  if (protocol === 'openai') return request.headers.authorization?.replace(/^Bearer\s+/i, '');
  if (protocol === 'anthropic') return request.headers['x-api-key'];
  return request.headers['x-goog-api-key'] ?? request.query.key;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function modelOf(body: unknown): string {
  return isRecord(body) && typeof body.model === 'string' ? body.model : 'fake-model';
}

function includeUsage(protocol: FakeProtocol, body: unknown, script: Script): boolean {
  if (script.usage === 'omit') return false;
  if (protocol !== 'openai') return true;
  // Like OpenAI: the usage chunk is only sent when asked for.
  return isRecord(body) && isRecord(body.stream_options) && body.stream_options.include_usage === true;
}

// ---------------------------------------------------------------------------------------------------------------
// The answer

interface Answer {
  id: string;
  model: string;
  text: string;
  reasoning?: string;
  /** OpenAI: the request's `top_logprobs` when it asked for `logprobs`. */
  topLogprobs?: number;
  toolCall?: FakeToolCall & { id: string };
  stopSequence?: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** Script.wireUsage, when set. */
  wire?: { usage: unknown };
}

/** Characters of every `text`/`content`/`system` string in the request: the prompt the fake "reads". */
function promptChars(value: unknown, key = ''): number {
  if (typeof value === 'string') return ['text', 'content', 'system'].includes(key) ? value.length : 0;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + promptChars(item, key), 0);
  if (!isRecord(value)) return 0;
  return Object.entries(value).reduce((sum, [k, v]) => sum + promptChars(v, k), 0);
}

function lastUserText(protocol: FakeProtocol, body: unknown): string {
  if (!isRecord(body)) return '';
  const turns = protocol === 'gemini' ? body.contents : body.messages;
  if (!Array.isArray(turns)) return '';
  const users = turns.filter((t): t is Record<string, unknown> => isRecord(t) && (t.role === 'user' || t.role === undefined));
  const last = users[users.length - 1];
  if (!last) return '';
  const content = protocol === 'gemini' ? last.parts : last.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('');
}

function answerFor(protocol: FakeProtocol, body: unknown, script: Script, model: string, sequence: number): Answer {
  const asked = lastUserText(protocol, body).slice(0, 120);
  const text = script.text ?? (script.toolCall ? '' : asked ? `Echo: ${asked}` : 'Hello from the fake provider.');
  const usage = script.usage === 'omit' ? {} : (script.usage ?? {});
  const toolChars = script.toolCall ? script.toolCall.name.length + JSON.stringify(script.toolCall.arguments).length : 0;
  const prefix = { openai: 'chatcmpl-fake', anthropic: 'msg_fake', gemini: 'fake-response' }[protocol];
  const logprobs = isRecord(body) && body.logprobs === true;
  return {
    id: `${prefix}-${sequence}`,
    model,
    text,
    ...(script.reasoning !== undefined && { reasoning: script.reasoning }),
    ...(logprobs && { topLogprobs: isRecord(body) && typeof body.top_logprobs === 'number' ? body.top_logprobs : 0 }),
    ...(script.toolCall && { toolCall: { ...script.toolCall, id: script.toolCall.id ?? `call_fake_${sequence}` } }),
    ...(script.stopSequence !== undefined && { stopSequence: script.stopSequence }),
    promptTokens: usage.promptTokens ?? Math.ceil(promptChars(body) / 4),
    completionTokens: usage.completionTokens ?? Math.ceil((text.length + toolChars) / 4),
    cachedTokens: usage.cachedTokens ?? 0,
    reasoningTokens: usage.reasoningTokens ?? 0,
    ...(script.wireUsage !== undefined && { wire: { usage: script.wireUsage } }),
  };
}

/** `field: usage` as the answer sends it: the counted usage, or the scripted wire usage (none when that is null). */
function usageField(field: string, a: Answer, counted: () => unknown): Record<string, unknown> {
  if (a.wire === undefined) return { [field]: counted() };
  return a.wire.usage === null ? {} : { [field]: a.wire.usage };
}

/** OpenAI's logprobs for these tokens: deterministic values, `top` alternatives each. */
export function logprobsOf(tokens: string[], top: number, first = 0): unknown {
  return {
    content: tokens.map((token, at) => {
      const logprob = -(first + at + 1) / 8;
      return {
        token,
        logprob,
        bytes: [...Buffer.from(token)],
        top_logprobs: Array.from({ length: top }, (_, k) => ({ token: k === 0 ? token : `${token}~${k}`, logprob: logprob - k, bytes: null })),
      };
    }),
    refusal: null,
  };
}

/** Word-sized pieces that join back to exactly `text`. */
function pieces(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text === '' ? [] : [text]);
}

function argumentPieces(args: Record<string, unknown>): string[] {
  const json = JSON.stringify(args);
  const size = Math.max(1, Math.ceil(json.length / 3));
  const out: string[] = [];
  for (let at = 0; at < json.length; at += size) out.push(json.slice(at, at + size));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Embeddings: input i gets the vector [i + 1, len(text), dims…] (shortened to `dimensions`, default 4); usage is
// ceil(chars / 4) per input unless scripted.

export function fakeVector(index: number, text: string, dimensions = 4): number[] {
  return Array.from({ length: dimensions }, (_, k) => (k === 0 ? index + 1 : k === 1 ? text.length : k / 10));
}

function embeddingsBody(protocol: FakeProtocol, body: unknown, script: Script): unknown {
  const b = isRecord(body) ? body : {};
  if (protocol === 'gemini') {
    const requests = Array.isArray(b.requests) ? b.requests.filter(isRecord) : [];
    return {
      embeddings: requests.map((r, i) => {
        const parts = isRecord(r.content) && Array.isArray(r.content.parts) ? r.content.parts : [];
        const text = parts.map((p) => (isRecord(p) && typeof p.text === 'string' ? p.text : '')).join('');
        return { values: fakeVector(i, text, typeof r.outputDimensionality === 'number' ? r.outputDimensionality : 4) };
      }),
    };
  }
  const inputs = typeof b.input === 'string' ? [b.input] : Array.isArray(b.input) ? b.input.map(String) : [];
  const dims = typeof b.dimensions === 'number' ? b.dimensions : 4;
  const tokens = script.usage !== 'omit' && script.usage?.promptTokens !== undefined ? script.usage.promptTokens : inputs.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
  return {
    object: 'list',
    // Out of order on purpose: clients order by index.
    data: inputs.map((t, i) => ({ object: 'embedding', index: i, embedding: fakeVector(i, t, dims) })).reverse(),
    model: modelOf(body),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Non-streaming bodies

function completionBody(protocol: FakeProtocol, a: Answer): unknown {
  switch (protocol) {
    case 'openai':
      return {
        id: a.id,
        object: 'chat.completion',
        created: CREATED,
        model: a.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: a.text === '' && a.toolCall ? null : a.text,
              refusal: null,
              ...(a.reasoning !== undefined && { reasoning_content: a.reasoning }),
              ...(a.toolCall && {
                tool_calls: [
                  { id: a.toolCall.id, type: 'function', function: { name: a.toolCall.name, arguments: JSON.stringify(a.toolCall.arguments) } },
                ],
              }),
            },
            logprobs: a.topLogprobs === undefined ? null : logprobsOf(pieces(a.text), a.topLogprobs),
            finish_reason: a.toolCall ? 'tool_calls' : 'stop',
          },
        ],
        ...usageField('usage', a, () => openaiUsage(a)),
        system_fingerprint: 'fp_fake',
      };
    case 'anthropic':
      return {
        id: a.id,
        type: 'message',
        role: 'assistant',
        model: a.model,
        content: [
          ...(a.reasoning !== undefined ? [{ type: 'thinking', thinking: a.reasoning, signature: fakeSignature(a.reasoning) }] : []),
          ...(a.text !== '' ? [{ type: 'text', text: a.text }] : []),
          ...(a.toolCall ? [{ type: 'tool_use', id: a.toolCall.id, name: a.toolCall.name, input: a.toolCall.arguments }] : []),
        ],
        ...anthropicStop(a),
        ...usageField('usage', a, () => ({ ...anthropicInputUsage(a), output_tokens: a.completionTokens })),
      };
    case 'gemini':
      return {
        candidates: [{ content: { parts: geminiParts(a, a.text), role: 'model' }, finishReason: 'STOP', index: 0 }],
        ...usageField('usageMetadata', a, () => geminiUsage(a)),
        modelVersion: a.model,
        responseId: a.id,
      };
  }
}

function openaiUsage(a: Answer): unknown {
  return {
    prompt_tokens: a.promptTokens,
    completion_tokens: a.completionTokens,
    total_tokens: a.promptTokens + a.completionTokens,
    prompt_tokens_details: { cached_tokens: a.cachedTokens },
    completion_tokens_details: { reasoning_tokens: a.reasoningTokens },
  };
}

/** The signature the fake Anthropic gives a thinking block (deterministic, so a test can expect it back). */
export const fakeSignature = (thinking: string): string => `fakesig_${Buffer.from(thinking).toString('base64')}`;

/**
 * Anthropic's rule for tool use with extended thinking: while a tool loop runs (the last turn is the user's
 * tool_result), the assistant turn with its tool_use must start with its signed thinking block as the answer had it.
 * The real API refuses such a request with this 400 (and a thinking block without a signature, or with a forged one).
 */
function anthropicThinkingRefusal(body: unknown): string | null {
  if (!isRecord(body) || !isRecord(body.thinking) || body.thinking.type !== 'enabled' || !Array.isArray(body.messages)) return null;
  const blocks = (turn: unknown): Record<string, unknown>[] => (isRecord(turn) && Array.isArray(turn.content) ? turn.content.filter(isRecord) : []);
  const messages = body.messages as unknown[];
  const last = messages.at(-1);
  if (!isRecord(last) || last.role !== 'user' || !blocks(last).some((b) => b.type === 'tool_result')) return null;
  const assistant = messages.at(-2);
  if (!isRecord(assistant) || assistant.role !== 'assistant' || !blocks(assistant).some((b) => b.type === 'tool_use')) return null;
  const first = blocks(assistant)[0];
  if (first?.type !== 'thinking' && first?.type !== 'redacted_thinking') {
    return `messages.${messages.length - 2}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${String(first?.type)}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns.`;
  }
  for (const [i, block] of blocks(assistant).entries()) {
    if (block.type !== 'thinking') continue;
    const signature = block.signature;
    if (typeof signature !== 'string' || signature === '' || (signature.startsWith('fakesig_') && signature !== fakeSignature(String(block.thinking)))) {
      return `messages.${messages.length - 2}.content.${i}: Invalid \`signature\` in \`thinking\` block`;
    }
  }
  return null;
}

function anthropicStop(a: Answer): { stop_reason: string; stop_sequence: string | null } {
  if (a.toolCall) return { stop_reason: 'tool_use', stop_sequence: null };
  return a.stopSequence !== undefined ? { stop_reason: 'stop_sequence', stop_sequence: a.stopSequence } : { stop_reason: 'end_turn', stop_sequence: null };
}

function anthropicInputUsage(a: Answer): Record<string, number> {
  return {
    input_tokens: a.promptTokens - a.cachedTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: a.cachedTokens,
  };
}

function geminiUsage(a: Answer): unknown {
  // Gemini reports thinking apart from the answer: candidates + thoughts = completion.
  const candidates = a.completionTokens - a.reasoningTokens;
  return {
    promptTokenCount: a.promptTokens,
    candidatesTokenCount: candidates,
    totalTokenCount: a.promptTokens + a.completionTokens,
    ...(a.cachedTokens > 0 && { cachedContentTokenCount: a.cachedTokens }),
    ...(a.reasoningTokens > 0 && { thoughtsTokenCount: a.reasoningTokens }),
  };
}

function geminiParts(a: Answer, text: string): unknown[] {
  return [
    ...(text !== '' ? [{ text }] : []),
    ...(a.toolCall ? [{ functionCall: { name: a.toolCall.name, args: a.toolCall.arguments } }] : []),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

function frame(protocol: FakeProtocol, data: string, event?: string): string {
  // Gemini separates events with CRLF; keep that so clients are exercised on it.
  const eol = protocol === 'gemini' ? '\r\n' : '\n';
  return `${event ? `event: ${event}${eol}` : ''}data: ${data}${eol}${eol}`;
}

function streamEvents(protocol: FakeProtocol, a: Answer, withUsage: boolean): string[] {
  const textPieces = pieces(a.text);
  switch (protocol) {
    case 'openai': {
      const chunk = (delta: unknown, finish: string | null = null, logprobs: unknown = null): string =>
        frame(protocol, JSON.stringify({ id: a.id, object: 'chat.completion.chunk', created: CREATED, model: a.model, choices: [{ index: 0, delta, logprobs, finish_reason: finish }] }));
      const events = [
        chunk({ role: 'assistant', content: '' }),
        ...(a.reasoning !== undefined ? [chunk({ reasoning_content: a.reasoning })] : []),
        ...textPieces.map((content, i) => chunk({ content }, null, a.topLogprobs === undefined ? null : logprobsOf([content], a.topLogprobs, i))),
      ];
      if (a.toolCall) {
        events.push(chunk({ tool_calls: [{ index: 0, id: a.toolCall.id, type: 'function', function: { name: a.toolCall.name, arguments: '' } }] }));
        for (const args of argumentPieces(a.toolCall.arguments)) events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }));
      }
      events.push(chunk({}, a.toolCall ? 'tool_calls' : 'stop'));
      if (withUsage && a.wire?.usage !== null) {
        events.push(frame(protocol, JSON.stringify({ id: a.id, object: 'chat.completion.chunk', created: CREATED, model: a.model, choices: [], ...usageField('usage', a, () => openaiUsage(a)) })));
      }
      events.push(frame(protocol, '[DONE]'));
      return events;
    }
    case 'anthropic': {
      const event = (type: string, data: Record<string, unknown>): string => frame(protocol, JSON.stringify({ type, ...data }), type);
      const events = [
        event('message_start', {
          message: {
            id: a.id, type: 'message', role: 'assistant', model: a.model, content: [], stop_reason: null, stop_sequence: null,
            ...(withUsage && { usage: { ...anthropicInputUsage(a), output_tokens: 1 } }),
          },
        }),
      ];
      let index = 0;
      if (a.reasoning !== undefined) {
        events.push(
          event('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } }),
          event('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: a.reasoning } }),
          event('content_block_delta', { index, delta: { type: 'signature_delta', signature: fakeSignature(a.reasoning) } }),
          event('content_block_stop', { index }),
        );
        index += 1;
      }
      if (textPieces.length > 0) {
        events.push(event('content_block_start', { index, content_block: { type: 'text', text: '' } }), event('ping', {}));
        for (const text of textPieces) events.push(event('content_block_delta', { index, delta: { type: 'text_delta', text } }));
        events.push(event('content_block_stop', { index }));
        index += 1;
      }
      if (a.toolCall) {
        events.push(event('content_block_start', { index, content_block: { type: 'tool_use', id: a.toolCall.id, name: a.toolCall.name, input: {} } }));
        for (const partial_json of argumentPieces(a.toolCall.arguments)) {
          events.push(event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } }));
        }
        events.push(event('content_block_stop', { index }));
      }
      events.push(
        event('message_delta', {
          delta: anthropicStop(a),
          ...(withUsage && usageField('usage', a, () => ({ output_tokens: a.completionTokens }))),
        }),
        event('message_stop', {}),
      );
      return events;
    }
    case 'gemini': {
      const chunk = (parts: unknown[], last: boolean): string =>
        frame(protocol, JSON.stringify({
          candidates: [{ content: { parts, role: 'model' }, ...(last && { finishReason: 'STOP' }), index: 0 }],
          ...(last && withUsage && usageField('usageMetadata', a, () => geminiUsage(a))),
          modelVersion: a.model,
          responseId: a.id,
        }));
      const units: unknown[][] = textPieces.map((text) => [{ text }]);
      if (a.toolCall) units.push([{ functionCall: { name: a.toolCall.name, args: a.toolCall.arguments } }]);
      if (units.length === 0) units.push([{ text: '' }]);
      return units.map((parts, i) => chunk(parts, i === units.length - 1));
    }
  }
}

/** What a confused upstream sends after its stream's end: more text, and a usage report for it. */
function eventsAfterEnd(protocol: FakeProtocol, a: Answer, after: { text: string; completionTokens?: number }): string[] {
  const tokens = after.completionTokens;
  switch (protocol) {
    case 'openai': {
      const chunk = (choices: unknown[], usage?: unknown) =>
        frame(protocol, JSON.stringify({ id: a.id, object: 'chat.completion.chunk', created: CREATED, model: a.model, choices, ...(usage !== undefined && { usage }) }));
      return [
        chunk([{ index: 0, delta: { content: after.text }, finish_reason: null }]),
        ...(tokens !== undefined ? [chunk([], openaiUsage({ ...a, completionTokens: tokens }))] : []),
      ];
    }
    case 'anthropic': {
      const event = (type: string, data: Record<string, unknown>): string => frame(protocol, JSON.stringify({ type, ...data }), type);
      return [
        event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: after.text } }),
        ...(tokens !== undefined ? [event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: tokens } })] : []),
        event('message_stop', {}),
      ];
    }
    case 'gemini':
      return [
        frame(protocol, JSON.stringify({
          candidates: [{ content: { parts: [{ text: after.text }], role: 'model' }, index: 0 }],
          ...(tokens !== undefined && { usageMetadata: geminiUsage({ ...a, completionTokens: tokens, reasoningTokens: 0 }) }),
          modelVersion: a.model,
          responseId: a.id,
        })),
      ];
  }
}

function streamErrorEvent(protocol: FakeProtocol): string {
  switch (protocol) {
    case 'openai':
      return frame(protocol, JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }));
    case 'anthropic':
      return frame(protocol, JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }), 'error');
    case 'gemini':
      return frame(protocol, JSON.stringify({ error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } }));
  }
}

/** An OpenAI-protocol answer its provider ends with an error mid-generation (Script.inBandError). */
function inBandErrorEvents(a: Answer, e: NonNullable<Script['inBandError']>, withUsage: boolean): string {
  const error = { code: e.code, message: e.message, ...(e.metadata && { metadata: e.metadata }) };
  const base = { id: a.id, object: 'chat.completion.chunk', created: CREATED, model: a.model };
  if (e.shape === 'openrouter') {
    return frame('openai', JSON.stringify({ ...base, provider: 'FakeUpstream', error, choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }] }));
  }
  return (
    frame('openai', JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'error', error: 'sent' in e ? e.sent : error }] })) +
    (withUsage ? frame('openai', JSON.stringify({ ...base, choices: [], usage: openaiUsage(a) })) : '') +
    frame('openai', '[DONE]')
  );
}

/** An OpenAI chunk (`data: {…}`) with Script.inBandError's error on its choice, which has not finished. */
function withChoiceError(event: string, e: NonNullable<Script['inBandError']>): string {
  const chunk = JSON.parse(event.slice('data: '.length)) as { choices: Record<string, unknown>[] };
  const error = 'sent' in e ? e.sent : { code: e.code, message: e.message, ...(e.metadata && { metadata: e.metadata }) };
  return frame('openai', JSON.stringify({ ...chunk, choices: chunk.choices.map((c) => ({ ...c, error })) }));
}

// ---------------------------------------------------------------------------------------------------------------
// Errors and sending

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

const GEMINI_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function errorBody(protocol: FakeProtocol, status: number, message: string): unknown {
  switch (protocol) {
    case 'openai': {
      const [type, code] =
        status === 429 ? ['requests', 'rate_limit_exceeded'] : status >= 500 ? ['server_error', null] : status === 401 ? ['invalid_request_error', 'invalid_api_key'] : ['invalid_request_error', null];
      return { error: { message, type, param: null, code } };
    }
    case 'anthropic':
      return { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message } };
    case 'gemini':
      return { error: { code: status, message, status: GEMINI_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT') } };
  }
}

function geminiKeyError(): unknown {
  return {
    error: {
      code: 400,
      message: 'API key not valid. Please pass a valid API key.',
      status: 'INVALID_ARGUMENT',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' }],
    },
  };
}

/** Resolves once `res` can take more (drain) or the client went away (close). */
const drainedOrClosed = (res: ServerResponse): Promise<void> =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });

/** A JSON body that opens and never ends: 1 MiB a write, waiting for each drain, until the client goes away. */
async function flood(res: ServerResponse, options: NonNullable<Script['flood']>, a: Answer, record: ReceivedRequest): Promise<void> {
  const chunkChars = options.chunkChars ?? 4_000;
  const event = (delta: unknown, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: a.id, object: 'chat.completion.chunk', created: CREATED, model: a.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const delta = (text: string) =>
    options.field === 'reasoning_details' ? { reasoning_details: [{ type: 'reasoning.text', text }] } : { [options.field ?? 'content']: text };
  const full = event(delta((options.char ?? 'a').repeat(chunkChars)));
  const write = async (text: string) => {
    // As bytes: Node 24 may never emit 'drain' after a write of multi-byte text returned false (see src/gateway/skins/sseGeneration.ts).
    const bytes = Buffer.from(text);
    record.sentBytes += bytes.length;
    if (res.write(bytes)) return;
    record.writeBlocked = true;
    await drainedOrClosed(res);
    record.writeBlocked = false;
  };
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  await write(event({ role: 'assistant', content: '' }));
  for (let sent = 0; sent < options.chars && !res.destroyed; sent += chunkChars) {
    await write(options.chars - sent >= chunkChars ? full : event(delta((options.char ?? 'a').repeat(options.chars - sent))));
  }
  if (res.destroyed) return;
  const completion = Math.ceil(options.chars / 4);
  await write(event({}, 'stop'));
  await write(`data: ${JSON.stringify({ id: a.id, object: 'chat.completion.chunk', created: CREATED, model: a.model, choices: [], usage: { prompt_tokens: a.promptTokens, completion_tokens: completion, total_tokens: a.promptTokens + completion } })}\n\n`);
  res.end('data: [DONE]\n\n');
}

async function endlessBody(res: ServerResponse, script: Script, record: ReceivedRequest): Promise<void> {
  res.writeHead(script.status ?? 200, { 'content-type': 'application/json', ...script.headers });
  const mebibyte = 'a'.repeat(1024 * 1024);
  res.write('{"error":{"message":"');
  while (!res.destroyed && record.sentBytes < (script.bodyBytes ?? Infinity)) {
    record.sentBytes += mebibyte.length;
    if (res.write(mebibyte)) continue;
    await drainedOrClosed(res);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (typeof body === 'string') {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
    return;
  }
  sendJson(res, status, body, headers);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * An OpenAI-protocol whole answer (`chat.completion`) of one choice, for Script.body: `content`, its finish reason as
 * the provider names it, and an `error` on the choice when given (OpenRouter's error mid-generation); 11 prompt and 3
 * completion tokens.
 */
export const wholeAnswer = (content: string, finishReason: string, error?: unknown) => ({
  id: 'chatcmpl-whole',
  object: 'chat.completion',
  created: 1,
  model: 'fake-model',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason, ...(error !== undefined && { error }) }],
  usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
});
