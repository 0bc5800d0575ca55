/**
 * Payload details OpenRouter clients read, over real HTTP against fake upstreams of each protocol (what they receive
 * is recorded) and the real `openai` SDK: the full usage object.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

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
