/**
 * The fake upstreams over real HTTP, driven through the matching adapter (build → fetch → parse) and, for OpenAI,
 * through the official SDK. This proves the fakes speak each wire protocol well enough for gateway tests.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderAdapter, StreamOutcome } from '../../src/gateway/providers/adapter.js';
import { anthropicAdapter } from '../../src/gateway/providers/anthropic/index.js';
import { geminiAdapter } from '../../src/gateway/providers/gemini/index.js';
import { openaiAdapter } from '../../src/gateway/providers/openai/index.js';
import { readSse } from '../../src/gateway/sse.js';
import { ProviderError, type ChatChunk, type ChatRequest, type ChatResponse } from '../../src/gateway/types.js';
import { startFakeProvider, type FakeProtocol, type FakeProvider } from '../support/fakeProviders.js';
import { assemble } from '../support/providerFixtures.js';

const ADAPTERS: Record<FakeProtocol, ProviderAdapter> = { openai: openaiAdapter, anthropic: anthropicAdapter, gemini: geminiAdapter };
const API_KEY = 'test-key';

function chatRequest(over: Partial<ChatRequest> = {}): ChatRequest {
  return {
    model: 'vendor/fake-model',
    messages: [
      { role: 'system', content: 'You are a test.' },
      { role: 'user', content: 'Say hello to the gateway' },
    ],
    ...over,
  };
}

async function send(adapter: ProviderAdapter, fake: FakeProvider, req: ChatRequest, signal?: AbortSignal): Promise<Response> {
  const upstream = adapter.buildRequest(req, { baseUrl: fake.baseUrl, upstreamModel: 'fake-model', apiKey: API_KEY });
  const res = await fetch(upstream.url, { method: upstream.method, headers: upstream.headers, body: upstream.body, ...(signal && { signal }) });
  if (!res.ok) throw adapter.mapError(res.status, res.headers, await res.text(), Date.now());
  return res;
}

async function complete(adapter: ProviderAdapter, fake: FakeProvider, req: ChatRequest): Promise<ChatResponse> {
  const res = await send(adapter, fake, req);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return adapter.parseResponse(res.status, json);
}

interface Streamed {
  chunks: ChatChunk[];
  outcome: StreamOutcome;
  error?: unknown;
}

async function stream(adapter: ProviderAdapter, fake: FakeProvider, req: ChatRequest): Promise<Streamed> {
  const res = await send(adapter, fake, { ...req, stream: true });
  const parser = adapter.createStreamParser();
  const chunks: ChatChunk[] = [];
  if (!res.body) throw new Error('no body');
  try {
    for await (const message of readSse(res.body)) chunks.push(...parser.push(message));
  } catch (error) {
    return { chunks, outcome: parser.finish(), error };
  }
  return { chunks, outcome: parser.finish() };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe.each(['openai', 'anthropic', 'gemini'] as const)('fake %s provider over HTTP', (protocol) => {
  const adapter = ADAPTERS[protocol];
  let fake: FakeProvider;

  beforeAll(async () => {
    fake = await startFakeProvider(protocol, { apiKey: API_KEY });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('answers a completion with an echo and usage estimated from the prompt, and records the request', async () => {
    const before = fake.requests.length;
    const response = await complete(adapter, fake, chatRequest());
    expect(response.choices[0]?.message.content).toBe('Echo: Say hello to the gateway');
    expect(response.choices[0]?.finish_reason).toBe('stop');
    // "You are a test." + "Say hello to the gateway" = 39 characters → ceil(39 / 4).
    expect(response.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 8, total_tokens: 18 });
    const received = fake.requests[before];
    expect(received?.method).toBe('POST');
    expect(received?.stream).toBe(false);
    expect(JSON.stringify(received?.body)).toContain('Say hello to the gateway');
    expect(await received?.outcome).toBe('completed');
  });

  it('streams the same answer in several chunks with a final usage', async () => {
    const { chunks, outcome, error } = await stream(adapter, fake, chatRequest());
    expect(error).toBeUndefined();
    expect(chunks.length).toBeGreaterThan(3);
    expect(assemble(chunks)).toMatchObject({ content: 'Echo: Say hello to the gateway', finishReasons: ['stop'] });
    expect(outcome).toMatchObject({ done: true, finishReason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 8 } });
    expect(fake.requests[fake.requests.length - 1]?.stream).toBe(true);
  });

  it('streams a scripted tool call, and can leave usage out', async () => {
    fake.script({ toolCall: { name: 'get_weather', arguments: { city: 'Paris', days: 3 } }, usage: 'omit' });
    const { chunks, outcome } = await stream(adapter, fake, chatRequest());
    const [call] = assemble(chunks).toolCalls;
    expect(call?.name).toBe('get_weather');
    expect(JSON.parse(call?.arguments ?? '')).toEqual({ city: 'Paris', days: 3 });
    expect(outcome).toMatchObject({ done: true, finishReason: 'tool_calls' });
    expect(outcome.usage).toBeUndefined();
  });

  it('returns a scripted 429 whose Retry-After reaches the ProviderError', async () => {
    fake.script({ status: 429, headers: { 'retry-after': '2' } });
    const error = await rejection(complete(adapter, fake, chatRequest()));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryable: true, retryAfterMs: 2000 });
  });

  it('returns scripted 5xx errors in the protocol shape', async () => {
    fake.script({ status: 503 });
    expect(await rejection(complete(adapter, fake, chatRequest()))).toMatchObject({ code: 'overloaded', retryable: true, upstreamMessage: 'Scripted 503' });
    fake.script({ status: 500 });
    expect(await rejection(stream(adapter, fake, chatRequest()))).toMatchObject({ code: 'server_error', retryable: true });
  });

  it('rejects a wrong API key with the protocol’s auth error', async () => {
    const upstream = adapter.buildRequest(chatRequest(), { baseUrl: fake.baseUrl, upstreamModel: 'fake-model', apiKey: 'wrong' });
    const res = await fetch(upstream.url, { method: 'POST', headers: upstream.headers, body: upstream.body });
    expect(adapter.mapError(res.status, res.headers, await res.text())).toMatchObject({ code: 'auth', retryable: false });
  });

  it('cuts a stream after N chunks: the client sees a network error and no end marker', async () => {
    fake.script({ cutAfterChunks: 2 });
    const { chunks, outcome, error } = await stream(adapter, fake, chatRequest());
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ProviderError);
    expect(chunks.length).toBeGreaterThan(0);
    expect(outcome.done).toBe(false);
    expect(outcome.finishReason).toBeUndefined();
    expect(await fake.requests[fake.requests.length - 1]?.outcome).toBe('reset');
  });

  it('sends an in-stream error event after N chunks', async () => {
    fake.script({ errorAfterChunks: 2 });
    const { outcome, error } = await stream(adapter, fake, chatRequest());
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ retryable: true });
    expect(outcome.done).toBe(false);
  });

  it('sends malformed JSON bodies and chunks', async () => {
    fake.script({ malformedJson: true });
    expect(await rejection(complete(adapter, fake, chatRequest()))).toMatchObject({ code: 'malformed_response' });
    fake.script({ malformedJson: true });
    expect((await stream(adapter, fake, chatRequest())).error).toMatchObject({ code: 'malformed_response' });
  });

  it('resets the connection without answering', async () => {
    fake.script({ reset: true });
    expect(await rejection(complete(adapter, fake, chatRequest()))).toBeInstanceOf(TypeError);
    expect(await fake.requests[fake.requests.length - 1]?.outcome).toBe('reset');
  });

  it('hangs until the client gives up, and records the abort', async () => {
    fake.script({ hang: true });
    const error = await rejection(send(adapter, fake, chatRequest(), AbortSignal.timeout(150)));
    expect(error).toMatchObject({ name: 'TimeoutError' });
    const received = fake.requests[fake.requests.length - 1];
    expect(await received?.outcome).toBe('aborted');
    expect(received?.clientAborted).toBe(true);
  });

  it('observes a client that aborts mid-stream', async () => {
    fake.script({ slowTokenMs: 30, text: 'one two three four five six seven eight' });
    const controller = new AbortController();
    const res = await send(adapter, fake, chatRequest({ stream: true }), controller.signal);
    const parser = adapter.createStreamParser();
    let received = 0;
    const error = await rejection(
      (async () => {
        for await (const message of readSse(res.body ?? new ReadableStream())) {
          received += parser.push(message).length;
          if (received >= 2) controller.abort();
        }
      })(),
    );
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(await fake.requests[fake.requests.length - 1]?.outcome).toBe('aborted');
  });

  it('waits the scripted latency before answering', async () => {
    fake.script({ latencyMs: 120, text: 'late' });
    const started = performance.now();
    const response = await complete(adapter, fake, chatRequest());
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    expect(response.choices[0]?.message.content).toBe('late');
  });

  it('serves the default script when the queue is empty', async () => {
    fake.setDefault({ text: 'default answer', usage: { promptTokens: 100, completionTokens: 5, cachedTokens: 40, reasoningTokens: 2 } });
    try {
      const response = await complete(adapter, fake, chatRequest());
      expect(response.choices[0]?.message.content).toBe('default answer');
      expect(response.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 40 } });
    } finally {
      fake.setDefault({});
    }
  });
});

describe('the official openai SDK against the fake OpenAI provider', () => {
  let fake: FakeProvider;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeProvider('openai', { models: ['fake-a', 'fake-b'] });
    client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'sk-local', maxRetries: 0, timeout: 5000 });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('creates a completion', async () => {
    const completion = await client.chat.completions.create({ model: 'fake-a', messages: [{ role: 'user', content: 'ping' }] });
    expect(completion.choices[0]?.message.content).toBe('Echo: ping');
    expect(completion.usage?.total_tokens).toBe(completion.usage ? completion.usage.prompt_tokens + completion.usage.completion_tokens : -1);
    expect(fake.requests[fake.requests.length - 1]?.headers.authorization).toBe('Bearer sk-local');
  });

  it('streams with include_usage', async () => {
    const events = await client.chat.completions.create({
      model: 'fake-a',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let totalTokens = 0;
    for await (const chunk of events) {
      text += chunk.choices[0]?.delta.content ?? '';
      totalTokens = chunk.usage?.total_tokens ?? totalTokens;
    }
    expect(text).toBe('Echo: stream please');
    expect(totalTokens).toBeGreaterThan(0);
  });

  it('lists models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['fake-a', 'fake-b']);
  });

  it('surfaces a scripted 429 as the SDK rate-limit error', async () => {
    fake.script({ status: 429, headers: { 'retry-after': '1' } });
    const error = await rejection(client.chat.completions.create({ model: 'fake-a', messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
  });
});
