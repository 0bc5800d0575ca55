/**
 * Payload details OpenRouter clients read, over real HTTP against fake upstreams of each protocol (what they receive
 * is recorded) and the real `openai` SDK: the full usage object; Anthropic's automatic prompt caching, beta headers and
 * fine-grained tool streaming; image parts routed only to models that take images.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { costOf, FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let openai: FakeProvider;
let anthropic: FakeProvider;
let gemini: FakeProvider;
const PRICES = { prompt: 150, completion: 600 };

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'orp-openai', model: 'test/orp-openai', prices: PRICES });
  anthropic = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'orp-anthropic', model: 'test/orp-anthropic', prices: PRICES });
  gemini = await h.fakeEndpoint({ protocol: 'gemini', slug: 'orp-gemini', model: 'test/orp-gemini', prices: PRICES });
});
afterAll(async () => {
  await h.stop();
});

type FullUsage = OpenAI.CompletionUsage & {
  prompt_tokens_details: Record<string, number>;
  completion_tokens_details: Record<string, number>;
  server_tool_use: { web_search_requests: number };
};
const usageOf = (completion: OpenAI.Chat.ChatCompletion) => completion.usage as FullUsage;
const hi = [{ role: 'user' as const, content: 'hi' }];

describe('the usage object', () => {
  it('lists every detail OpenRouter documents, 0 where the upstream reported none', async () => {
    for (const model of ['test/orp-openai', 'test/orp-anthropic', 'test/orp-gemini', 'switchyard/demo']) {
      const usage = usageOf(await client.chat.completions.create({ model, messages: hi }));
      expect(usage.prompt_tokens_details, model).toEqual({ cached_tokens: 0, cache_write_tokens: 0, audio_tokens: 0, video_tokens: 0 });
      expect(usage.completion_tokens_details, model).toEqual({ reasoning_tokens: 0, audio_tokens: 0, image_tokens: 0 });
      expect(usage.server_tool_use, model).toEqual({ web_search_requests: 0 });
    }
  });

  it("carries an OpenAI-protocol upstream's audio, video and image counts and web searches, whole and streamed", async () => {
    const upstreamUsage = {
      prompt_tokens: 50,
      completion_tokens: 20,
      total_tokens: 70,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 30, video_tokens: 5 },
      completion_tokens_details: { reasoning_tokens: 2, audio_tokens: 8, image_tokens: 4 },
      server_tool_use: { web_search_requests: 2 },
    };
    openai.script({
      body: { id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'fake-model', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: upstreamUsage },
    });
    const usage = usageOf(await client.chat.completions.create({ model: 'test/orp-openai', messages: hi }));
    expect(usage).toMatchObject({
      prompt_tokens: 50,
      completion_tokens: 20,
      prompt_tokens_details: { audio_tokens: 30, video_tokens: 5 },
      completion_tokens_details: { reasoning_tokens: 2, audio_tokens: 8, image_tokens: 4 },
      server_tool_use: { web_search_requests: 2 },
    });

    const chunk = (extra: Record<string, unknown>) => `data: ${JSON.stringify({ id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1, model: 'fake-model', ...extra })}\n\n`;
    openai.script({
      headers: { 'content-type': 'text/event-stream' },
      body:
        chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: 'ok' }, finish_reason: null }] }) +
        chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
        chunk({ choices: [], usage: upstreamUsage }) +
        'data: [DONE]\n\n',
    });
    const stream = await client.chat.completions.create({ model: 'test/orp-openai', stream: true, messages: hi });
    let streamed: FullUsage | undefined;
    for await (const c of stream) if (c.usage) streamed = c.usage as FullUsage;
    expect(streamed).toMatchObject({ prompt_tokens_details: { audio_tokens: 30, video_tokens: 5 }, completion_tokens_details: { audio_tokens: 8, image_tokens: 4 }, server_tool_use: { web_search_requests: 2 } });
  });

  it("carries Anthropic's server_tool_use.web_search_requests", async () => {
    anthropic.script({
      body: {
        id: 'msg_x',
        type: 'message',
        role: 'assistant',
        model: 'fake-model',
        content: [{ type: 'text', text: 'found it' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 40, output_tokens: 10, server_tool_use: { web_search_requests: 3 } },
      },
    });
    const usage = usageOf(await client.chat.completions.create({ model: 'test/orp-anthropic', messages: hi }));
    expect(usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 10, server_tool_use: { web_search_requests: 3 } });
  });

  it("carries Gemini's per-modality counts (promptTokensDetails, candidatesTokensDetails)", async () => {
    gemini.script({
      body: {
        candidates: [{ content: { role: 'model', parts: [{ text: 'heard it' }] }, finishReason: 'STOP' }],
        usageMetadata: {
          promptTokenCount: 60,
          candidatesTokenCount: 12,
          totalTokenCount: 72,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: 10 }, { modality: 'AUDIO', tokenCount: 40 }, { modality: 'VIDEO', tokenCount: 10 }],
          candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: 6 }, { modality: 'IMAGE', tokenCount: 6 }],
        },
      },
    });
    const usage = usageOf(await client.chat.completions.create({ model: 'test/orp-gemini', messages: hi }));
    expect(usage).toMatchObject({
      prompt_tokens: 60,
      completion_tokens: 12,
      prompt_tokens_details: { audio_tokens: 40, video_tokens: 10 },
      completion_tokens_details: { audio_tokens: 0, image_tokens: 6 },
    });
  });

  it('never shows a breakdown above its total, nor a negative one, whatever the upstream says', async () => {
    openai.script({
      body: {
        id: 'chatcmpl-y',
        object: 'chat.completion',
        created: 1,
        model: 'fake-model',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { audio_tokens: 1_000_000, video_tokens: -4 }, completion_tokens_details: { image_tokens: 99 } },
      },
    });
    const usage = usageOf(await client.chat.completions.create({ model: 'test/orp-openai', messages: hi }));
    expect(usage.prompt_tokens_details).toMatchObject({ audio_tokens: 10, video_tokens: 0 });
    expect(usage.completion_tokens_details).toMatchObject({ image_tokens: 5 });
  });
});

type Body = Record<string, unknown>;
const lastBody = (fake: FakeProvider) => fake.requests.at(-1)!.body as Body;
const lastHeaders = (fake: FakeProvider) => fake.requests.at(-1)!.headers;
const TOOLS = [{ type: 'function' as const, function: { name: 'lookup', description: 'Look it up', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

describe('Anthropic prompt caching, beta headers and tool streaming', () => {
  it('a top-level cache_control (automatic caching) reaches an Anthropic upstream, and no other', async () => {
    await client.chat.completions.create({ model: 'test/orp-anthropic', messages: hi, cache_control: { type: 'ephemeral', ttl: '1h' } } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(lastBody(anthropic).cache_control).toEqual({ type: 'ephemeral', ttl: '1h' });
    await client.chat.completions.create({ model: 'test/orp-anthropic', messages: hi, cache_control: { type: 'ephemeral' } } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(lastBody(anthropic).cache_control).toEqual({ type: 'ephemeral' });
    await client.chat.completions.create({ model: 'test/orp-openai', messages: hi, cache_control: { type: 'ephemeral' } } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(lastBody(openai)).not.toHaveProperty('cache_control');
    await client.chat.completions.create({ model: 'test/orp-anthropic', messages: hi });
    expect(lastBody(anthropic)).not.toHaveProperty('cache_control');
  });

  it('a malformed cache_control is a 400 naming it, before any upstream is called', async () => {
    const calls = anthropic.requests.length;
    for (const cacheControl of [{ type: 'persistent' }, { type: 'ephemeral', ttl: '1d' }, 'yes']) {
      const res = await h.chat(user.key, { model: 'test/orp-anthropic', messages: hi, cache_control: cacheControl });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 400, metadata: { error_type: 'invalid_request', param: expect.stringMatching(/^cache_control/) } } });
    }
    expect(anthropic.requests.length).toBe(calls);
  });

  it('x-anthropic-beta reaches an Anthropic upstream as anthropic-beta, merged with the provider’s own, and never another upstream', async () => {
    const beta = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, defaultHeaders: { 'x-anthropic-beta': 'interleaved-thinking-2025-05-14, structured-outputs-2025-11-13' } });
    await beta.chat.completions.create({ model: 'test/orp-anthropic', messages: hi });
    expect(lastHeaders(anthropic)['anthropic-beta']).toBe('interleaved-thinking-2025-05-14,structured-outputs-2025-11-13');
    expect(lastHeaders(anthropic)).not.toHaveProperty('x-anthropic-beta');

    // A provider an admin configured with its own anthropic-beta: one header, its flags first, each once.
    const registered = await h.gql(
      `mutation ($baseUrl: String!, $apiKey: String!, $headers: JSON) { registerProvider(slug: "orp-beta", name: "orp-beta", protocol: ANTHROPIC, baseUrl: $baseUrl, apiKey: $apiKey, headers: $headers) { ... on Provider { slug } ... on DomainError { message } } }`,
      { baseUrl: anthropic.baseUrl, apiKey: FAKE_API_KEY, headers: { 'Anthropic-Beta': 'context-1m-2025-08-07, interleaved-thinking-2025-05-14' } },
      ADMIN_KEY,
    );
    expect(registered.body.data.registerProvider).toEqual({ slug: 'orp-beta' });
    const published = await h.gql(
      `mutation { publishEndpoint(provider: "orp-beta", model: "test/orp-beta", upstreamModel: "fake-model", prices: {prompt: 150, completion: 600}, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { message } } }`,
      {},
      ADMIN_KEY,
    );
    expect(published.body.data.publishEndpoint).toEqual({ id: 'test/orp-beta@orp-beta' });
    await beta.chat.completions.create({ model: 'test/orp-beta', messages: hi });
    const headers = lastHeaders(anthropic);
    expect(headers['anthropic-beta']).toBe('context-1m-2025-08-07,interleaved-thinking-2025-05-14,structured-outputs-2025-11-13');
    // Without the request header, the provider's own flags go as configured.
    await client.chat.completions.create({ model: 'test/orp-beta', messages: hi });
    expect(lastHeaders(anthropic)['anthropic-beta']).toBe('context-1m-2025-08-07, interleaved-thinking-2025-05-14');

    await beta.chat.completions.create({ model: 'test/orp-openai', messages: hi });
    expect(lastHeaders(openai)).not.toHaveProperty('anthropic-beta');
    expect(lastHeaders(openai)).not.toHaveProperty('x-anthropic-beta');
  });

  it('an x-anthropic-beta that is not a list of beta names is a 400 naming the header, before any upstream is called', async () => {
    const calls = anthropic.requests.length;
    for (const value of ['bad flag', 'a,b;c', 'x'.repeat(101), Array.from({ length: 21 }, (_, i) => `beta-${i}`).join(',')]) {
      const res = await h.chat(user.key, { model: 'test/orp-anthropic', messages: hi }, { 'x-anthropic-beta': value });
      expect(res.status, value).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 400, message: expect.stringContaining('x-anthropic-beta must be a comma-separated list'), metadata: { error_type: 'invalid_request', param: 'x-anthropic-beta' } } });
    }
    expect(anthropic.requests.length).toBe(calls);
  });

  it('streaming with tools to Anthropic sets eager_input_streaming on each tool; a whole answer does not', async () => {
    const stream = await client.chat.completions.create({ model: 'test/orp-anthropic', stream: true, tools: TOOLS, messages: hi });
    for await (const _ of stream) void _;
    expect((lastBody(anthropic).tools as Body[]).map((t) => t.eager_input_streaming)).toEqual([true]);
    await client.chat.completions.create({ model: 'test/orp-anthropic', tools: TOOLS, messages: hi });
    expect(lastBody(anthropic).tools as Body[]).toEqual([{ name: 'lookup', description: 'Look it up', input_schema: TOOLS[0]!.function.parameters }]);
    const openaiStream = await client.chat.completions.create({ model: 'test/orp-openai', stream: true, tools: TOOLS, messages: hi });
    for await (const _ of openaiStream) void _;
    expect(lastBody(openai).tools).toEqual(TOOLS);
  });
});

describe('image parts', () => {
  const image = { type: 'image_url' as const, image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
  const withImage = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'What is this?' }, image] }];

  it("to a model that takes no images: OpenRouter's 404, before any upstream is called", async () => {
    const calls = openai.requests.length;
    const res = await h.chat(user.key, { model: 'test/orp-openai', messages: withImage });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({
      error: { code: 404, message: 'No endpoints found that support image input (test/orp-openai takes text)', metadata: { error_type: 'not_found', param: 'messages', input_modalities: ['image'], model: 'test/orp-openai' } },
    });
    await expect(client.chat.completions.create({ model: 'test/orp-openai', messages: withImage })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(openai.requests.length).toBe(calls);
  });

  it('go to a model published as taking images, and a models list falls back to it; its owner can change what a model takes', async () => {
    const published = await h.gql(
      `mutation { publishEndpoint(provider: "orp-openai", model: "test/orp-vision", upstreamModel: "fake-vision", prices: {prompt: 150, completion: 600}, contextLength: 16000, maxOutput: 1000, inputModalities: [IMAGE]) { ... on Endpoint { id } ... on DomainError { message } } }`,
      {},
      ADMIN_KEY,
    );
    expect(published.body.data.publishEndpoint).toEqual({ id: 'test/orp-vision@orp-openai' });
    const model = await client.models.retrieve('test/orp-vision');
    expect((model as unknown as { architecture: { input_modalities: string[] } }).architecture.input_modalities).toEqual(['text', 'image']);

    const answer = await client.chat.completions.create({ model: 'test/orp-openai', models: ['test/orp-vision'], messages: withImage } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(answer.model).toBe('test/orp-vision');
    expect((lastBody(openai).messages as { content: unknown }[])[0]!.content).toEqual(withImage[0]!.content);

    // The owner (here the admin) republishes test/orp-openai as taking images: now it is served there directly.
    const republished = await h.gql(
      `mutation { publishEndpoint(provider: "orp-openai", model: "test/orp-openai", upstreamModel: "fake-model", prices: {prompt: 150, completion: 600}, contextLength: 16000, maxOutput: 1000, inputModalities: [IMAGE]) { ... on Endpoint { id } ... on DomainError { message } } }`,
      {},
      ADMIN_KEY,
    );
    expect(republished.body.data.publishEndpoint).toEqual({ id: 'test/orp-openai@orp-openai' });
    const direct = await client.chat.completions.create({ model: 'test/orp-openai', messages: withImage });
    expect(direct.model).toBe('test/orp-openai');
  });
});

describe('messages as SDKs dump them', () => {
  // Python SDKs send every optional field of a message, null when unset (openai's ChatCompletionMessage.model_dump(),
  // LiteLLM's Message): a conversation replayed that way reads as if they were left out, as null top-level fields do.
  const messages = [
    { role: 'system', content: 'be brief', name: null },
    { role: 'user', content: 'look it up', name: null },
    {
      role: 'assistant',
      content: null,
      name: null,
      refusal: null,
      annotations: null,
      audio: null,
      function_call: null,
      reasoning: null,
      reasoning_details: null,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }],
    },
    { role: 'tool', tool_call_id: 'call_1', content: 'found', name: null },
    { role: 'assistant', content: 'It is found.', name: null, refusal: null, function_call: null, reasoning_details: null, tool_calls: null },
    { role: 'user', content: 'thanks', name: null },
  ] as unknown as OpenAI.Chat.ChatCompletionMessageParam[];

  it('null optional fields of a message read as absent, for OpenAI- and Anthropic-protocol upstreams', async () => {
    for (const [model, fake] of [['test/orp-openai', openai], ['test/orp-anthropic', anthropic]] as const) {
      const answer = await client.chat.completions.create({ model, messages });
      expect(answer.choices[0]!.message.content, model).toBe('Echo: thanks');
      const sent = lastBody(fake).messages as Record<string, unknown>[];
      const nulls = sent.flatMap((m, i) => Object.entries(m).filter(([, v]) => v === null).map(([k]) => `messages[${i}].${k}`));
      expect(nulls.filter((at) => !at.endsWith('.content')), model).toEqual([]);
    }
    const openaiSent = lastBody(openai).messages as Record<string, unknown>[];
    expect(openaiSent.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
    expect(openaiSent[2]!.tool_calls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }]);
    expect(Object.keys(openaiSent[4]!)).toEqual(['role', 'content']);
  });

  it('a field of the wrong type is still a 400 naming it', async () => {
    const res = await h.chat(user.key, { model: 'test/orp-openai', messages: [{ role: 'user', content: 'x', name: 5 }] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 400, message: 'messages[0].name must be a string', metadata: { error_type: 'invalid_request', param: 'messages[0].name' } } });
    const calls = await h.chat(user.key, { model: 'test/orp-openai', messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', tool_calls: 'none' }, { role: 'user', content: 'z' }] });
    expect(calls.status).toBe(400);
    expect(await calls.json()).toMatchObject({ error: { metadata: { param: 'messages[1].tool_calls' } } });
  });
});

describe('X-Generation-Id', () => {
  const post = (path: string, key: string, body: unknown) =>
    fetch(`${h.url}/api/v1/${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('names only a call that became a generation: none on a refusal (401, 400, 402), one that GET /generation finds on an answer or a failed call', async () => {
    const broke = await h.openAccount({ credits: 0 });
    const refusals = [
      await post('chat/completions', 'sk-or-v1-not-a-key', { model: 'test/orp-openai', messages: hi }),
      await post('chat/completions', user.key, { model: 'test/orp-openai', messages: 'not a list' }),
      await post('chat/completions', broke.key, { model: 'test/orp-openai', messages: hi }),
      await post('embeddings', user.key, { model: 'test/orp-openai' }),
      await post('responses', user.key, { model: 'test/orp-openai' }),
      await post('messages', user.key, { model: 'test/orp-openai', max_tokens: 'many' }),
    ];
    expect(refusals.map((res) => res.status)).toEqual([401, 400, 402, 400, 400, 400]);
    for (const res of refusals) expect(res.headers.get('x-generation-id')).toBeNull();

    const answered = await post('chat/completions', user.key, { model: 'test/orp-openai', messages: hi });
    expect(answered.status).toBe(200);
    // The upstream refuses the call (not retried): a failed generation, recorded.
    openai.script({ status: 400 });
    const failed = await post('chat/completions', user.key, { model: 'test/orp-openai', messages: hi });
    expect(failed.status).toBe(400);
    for (const res of [answered, failed]) {
      const id = res.headers.get('x-generation-id')!;
      expect(id).toMatch(/^gen-/);
      expect((await h.generation(user.key, id)).id).toBe(id);
    }
  });
});

describe('a whole answer its provider ended with an error mid-generation', () => {
  const partial = (error: Record<string, unknown>) => ({
    id: 'chatcmpl-p',
    object: 'chat.completion',
    created: 1,
    model: 'fake-model',
    choices: [{ index: 0, message: { role: 'assistant', content: 'partial' }, finish_reason: 'error', error }],
    usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
  });
  type ChoiceError = { code: number; message: string; metadata: Record<string, unknown> };
  const errorOf = (completion: OpenAI.Chat.ChatCompletion) => (completion.choices[0] as unknown as { error?: ChoiceError }).error;

  it("is a 200 with the partial content, finish_reason \"error\" and OpenRouter's choices[0].error, billed on the provider's usage", async () => {
    openai.script({ body: partial({ code: 502, message: 'died' }) });
    const { data, response } = await client.chat.completions.create({ model: 'test/orp-openai', messages: hi }).withResponse();
    expect(response.status).toBe(200);
    expect(data.choices[0]!.message.content).toBe('partial');
    expect(data.choices[0]!.finish_reason).toBe('error');
    // A 5xx upstream message is masked, as any provider error's; the code and type say what happened.
    expect(errorOf(data)).toMatchObject({ code: 502, metadata: { error_type: 'provider_unavailable', provider_name: 'orp-openai', provider_status: 502 } });
    expect(errorOf(data)!.message).toContain('HTTP 502');
    expect(data.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 3 });
    const record = await h.generation(user.key, response.headers.get('x-generation-id')!);
    expect(record).toMatchObject({ tokens_prompt: 11, tokens_completion: 3, switchyard: { usage_source: 'provider', error: { type: 'provider_unavailable', status: 502, message: errorOf(data)!.message } } });
  });

  it("shows a 4xx upstream message, with the provider key it quotes taken out; an answer with no error has none", async () => {
    openai.script({ body: partial({ code: 429, message: `rate limited on key ${FAKE_API_KEY}` }) });
    const failed = await client.chat.completions.create({ model: 'test/orp-openai', messages: hi });
    expect(errorOf(failed)).toMatchObject({ code: 429, metadata: { provider_status: 429 } });
    expect(errorOf(failed)!.message).toContain('rate limited on key');
    expect(errorOf(failed)!.message).not.toContain(FAKE_API_KEY);

    const fine = await client.chat.completions.create({ model: 'test/orp-openai', messages: hi });
    expect(fine.choices[0]!.finish_reason).toBe('stop');
    expect(errorOf(fine)).toBeUndefined();
  });
});

describe('a stream its provider ended with an error mid-generation', () => {
  const ask = [{ role: 'user' as const, content: 'Say hello to the gateway' }];
  type Chunk = { id: string; provider?: string; error?: { code: number; message: string; metadata: Record<string, unknown> }; choices: { delta: { content?: string }; finish_reason: string | null }[]; usage?: Record<string, unknown> };
  /** The stream over raw HTTP: its `data:` payloads ([DONE] as the string). */
  const streamed = async (key: string) => {
    const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'test/orp-openai', messages: ask, stream: true }) });
    const data = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    return { res, chunks: data.map((d) => (d === '[DONE]' ? d : (JSON.parse(d) as Chunk))) };
  };
  const textOf = (chunks: (Chunk | string)[]) => chunks.map((c) => (typeof c === 'string' ? '' : (c.choices[0]?.delta.content ?? ''))).join('');
  /** The SDK's stream: the text it gave before it threw, and what it threw. */
  const sdkStream = async (key: string) => {
    const own = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 });
    let text = '';
    const thrown = await (async () => {
      for await (const chunk of await own.chat.completions.create({ model: 'test/orp-openai', messages: ask, stream: true })) text += chunk.choices[0]?.delta.content ?? '';
    })().then(() => null, (e: unknown) => e);
    return { text, thrown };
  };

  it("ends with OpenRouter's error chunk carrying the provider's error (5xx masked), no [DONE], recorded and billed on the provider's usage", async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    const inBandError = { afterChunks: 3, shape: 'choice' as const, code: 502, message: 'upstream died mid-generation' };
    openai.script({ inBandError, usage: { promptTokens: 11, completionTokens: 3 } });
    const { res, chunks } = await streamed(payer.key);
    expect(res.status).toBe(200);
    const id = res.headers.get('x-generation-id')!;
    expect(textOf(chunks)).toBe('Echo: Say ');
    expect(chunks).not.toContain('[DONE]');
    // One chunk says the answer ended with an error, the last one, and it says which.
    const finishing = chunks.filter((c) => typeof c !== 'string' && c.choices.some((choice) => choice.finish_reason !== null));
    expect(finishing).toEqual([chunks.at(-1)]);
    const last = chunks.at(-1) as Chunk;
    expect(last).toMatchObject({
      id,
      object: 'chat.completion.chunk',
      provider: 'orp-openai',
      error: { code: 502, message: expect.stringContaining('HTTP 502'), metadata: { error_type: 'provider_unavailable', provider_name: 'orp-openai', provider_status: 502 } },
      choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
      usage: { prompt_tokens: 11, completion_tokens: 3 },
    });
    expect(last.error!.message).not.toContain('upstream died');
    expect(last.error!.metadata).not.toHaveProperty('provider_code');
    const record = await h.generation(payer.key, id);
    // Recorded as the same answer whole is (a completed answer that ended with finish_reason "error"), with that error.
    expect(record).toMatchObject({
      finish_reason: 'error',
      tokens_prompt: 11,
      tokens_completion: 3,
      switchyard: { status: 'completed', usage_source: 'provider', error: { type: 'provider_unavailable', status: 502, message: last.error!.message } },
    });
    expect((await h.settledBalance(payer.accountId)).settled).toBe(costOf(PRICES, 11, 3));

    // The SDK throws it after the partial text.
    openai.script({ inBandError, usage: { promptTokens: 11, completionTokens: 3 } });
    const { text, thrown } = await sdkStream(payer.key);
    expect(text).toBe('Echo: Say ');
    expect(thrown).toBeInstanceOf(OpenAI.APIError);
    expect((thrown as InstanceType<typeof OpenAI.APIError>).message).toContain('HTTP 502');
    expect((await h.settledBalance(payer.accountId)).settled).toBe(2 * costOf(PRICES, 11, 3));
  });

  it("shows a 4xx provider error's message and code, the provider key it quotes taken out", async () => {
    openai.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 429, message: `rate limited on key ${FAKE_API_KEY}` } });
    const { chunks } = await streamed(user.key);
    const last = chunks.at(-1) as Chunk;
    expect(last.error).toMatchObject({ code: 429, metadata: { error_type: 'rate_limit_exceeded', provider_status: 429, provider_code: '429' } });
    expect(last.error!.message).toContain('rate limited on key');
    expect(last.error!.message).not.toContain(FAKE_API_KEY);
  });

  it("OpenRouter's own mid-stream error chunk (top-level error) ends the same way, billed on an estimate of what was delivered", async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    openai.script({ inBandError: { afterChunks: 3, shape: 'openrouter', code: 502, message: 'Internal error', metadata: { error_type: 'server' } } });
    const { res, chunks } = await streamed(payer.key);
    expect(textOf(chunks)).toBe('Echo: Say ');
    expect(chunks).not.toContain('[DONE]');
    expect(chunks.at(-1)).toMatchObject({ error: { code: 502, message: expect.stringContaining('HTTP 502'), metadata: { provider_status: 502 } }, choices: [{ finish_reason: 'error' }] });
    const record = await h.generation(payer.key, res.headers.get('x-generation-id')!);
    expect(record).toMatchObject({ finish_reason: 'error', switchyard: { usage_source: 'estimated' } });
  });

  it('an error on a choice that has not finished ends nothing: its text is delivered and the answer finishes as the provider then finishes it', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    const inBandError = { afterChunks: 3, shape: 'unfinished' as const, code: 429, message: 'a warning, not an end' };
    openai.script({ inBandError, usage: { promptTokens: 11, completionTokens: 3 } });
    const { res, chunks } = await streamed(payer.key);
    expect(textOf(chunks)).toBe('Echo: Say hello to the gateway');
    expect(chunks.at(-1)).toBe('[DONE]');
    expect(chunks.some((c) => typeof c !== 'string' && c.error !== undefined)).toBe(false);
    const finishes = chunks.flatMap((c) => (typeof c === 'string' ? [] : c.choices.flatMap((choice) => (choice.finish_reason === null ? [] : [choice.finish_reason]))));
    expect(finishes).toEqual(['stop']);
    const record = await h.generation(payer.key, res.headers.get('x-generation-id')!);
    expect(record).toMatchObject({ finish_reason: 'stop', tokens_prompt: 11, tokens_completion: 3, switchyard: { status: 'completed', usage_source: 'provider' } });
    expect((await h.settledBalance(payer.accountId)).settled).toBe(costOf(PRICES, 11, 3));

    openai.script({ inBandError, usage: { promptTokens: 11, completionTokens: 3 } });
    expect(await sdkStream(payer.key)).toEqual({ text: 'Echo: Say hello to the gateway', thrown: null });
    expect((await h.settledBalance(payer.accountId)).settled).toBe(2 * costOf(PRICES, 11, 3));
  });

  it('a finish_reason "error" whose error is a string (its message) or another non-object ends with the error chunk as for an object', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    // A string is the error's message; without a code it is the provider's 502, its message masked as any 5xx's.
    for (const [sent, message] of [
      ['died mid-answer', 'HTTP 502'],
      [42, 'ended the answer with an error'],
    ] as const) {
      const inBandError = { afterChunks: 3, shape: 'choice' as const, code: 429, message: 'unused', sent };
      openai.script({ inBandError, usage: { promptTokens: 11, completionTokens: 3 } });
      const { res, chunks } = await streamed(payer.key);
      expect(textOf(chunks)).toBe('Echo: Say ');
      expect(chunks).not.toContain('[DONE]');
      const finishing = chunks.filter((c) => typeof c !== 'string' && c.choices.some((choice) => choice.finish_reason !== null));
      expect(finishing).toEqual([chunks.at(-1)]);
      expect(chunks.at(-1)).toMatchObject({ error: { metadata: { provider_name: 'orp-openai' } }, choices: [{ finish_reason: 'error' }], usage: { prompt_tokens: 11, completion_tokens: 3 } });
      const record = await h.generation(payer.key, res.headers.get('x-generation-id')!);
      expect(record).toMatchObject({ finish_reason: 'error', tokens_prompt: 11, tokens_completion: 3 });

      openai.script({ inBandError, usage: { promptTokens: 11, completionTokens: 3 } });
      const { text, thrown } = await sdkStream(payer.key);
      expect(text).toBe('Echo: Say ');
      expect(thrown).toBeInstanceOf(OpenAI.APIError);
      expect((thrown as InstanceType<typeof OpenAI.APIError>).message).toContain(message);
    }
    expect((await h.settledBalance(payer.accountId)).settled).toBe(4 * costOf(PRICES, 11, 3));
  });

  it('before any token is a failure like any other: the call goes on to a next try', async () => {
    const before = openai.requests.length;
    openai.script({ inBandError: { afterChunks: 1, shape: 'choice', code: 502, message: 'died at once' } });
    const { text, thrown } = await sdkStream(user.key);
    expect(thrown).toBeNull();
    expect(text).toBe('Echo: Say hello to the gateway');
    expect(openai.requests.length - before).toBe(2);
  });
});
