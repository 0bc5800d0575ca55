/**
 * What OpenAI-SDK and LangChain users send and read beyond plain chat, through fake upstreams of each protocol with
 * the real `openai` SDK: logprobs (answers and chunks), predicted outputs and `top_a`, `reasoning_effort`, `reasoning_content`, PDF and audio
 * parts, `GET /models/{id}`, and the X-RateLimit headers of the free tier's 429.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logprobsOf, type FakeProvider } from '../support/fakeProviders.js';
import { costOf, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let openai: FakeProvider;
let anthropic: FakeProvider;
let gemini: FakeProvider;
const PRICES = { prompt: 150, completion: 600 };
const USAGE = { promptTokens: 30, completionTokens: 7 };
const PDF = 'data:application/pdf;base64,JVBERi0xLjQKJcfs';
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEA';

type Body = Record<string, unknown>;
const lastBody = (fake: FakeProvider) => fake.requests.at(-1)!.body as Body;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'pt-openai', model: 'test/pt-openai', prices: PRICES });
  anthropic = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'pt-anthropic', model: 'test/pt-anthropic', prices: PRICES, maxOutput: 4000 });
  // Seeded models that take documents (Claude) and documents and audio (Gemini), served here by fake upstreams.
  await h.fakeEndpoint({ protocol: 'anthropic', slug: 'pt-claude', model: 'anthropic/claude-3.5-sonnet', prices: PRICES, reuse: anthropic });
  gemini = await h.fakeEndpoint({ protocol: 'gemini', slug: 'pt-gemini', model: 'google/gemini-2.5-flash', prices: PRICES });
  for (const fake of [openai, anthropic, gemini]) fake.setDefault({ usage: USAGE });
});
afterAll(async () => {
  await h.stop();
});

describe('logprobs', () => {
  it('come back on the choice from an OpenAI-protocol upstream, and the call is charged exactly', async () => {
    const before = await h.settledBalance(user.accountId);
    const completion = await client.chat.completions.create({ model: 'test/pt-openai', logprobs: true, top_logprobs: 2, messages: [{ role: 'user', content: 'two words' }] });
    expect(lastBody(openai)).toMatchObject({ logprobs: true, top_logprobs: 2 });
    expect(completion.choices[0]!.message.content).toBe('Echo: two words');
    expect(completion.choices[0]!.logprobs).toEqual(logprobsOf(['Echo: ', 'two ', 'words'], 2));
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRICES, 30, 7));
  });

  it('come back on each stream chunk', async () => {
    const stream = await client.chat.completions.create({ model: 'test/pt-openai', stream: true, logprobs: true, top_logprobs: 1, messages: [{ role: 'user', content: 'two words' }] });
    const tokens: unknown[] = [];
    for await (const chunk of stream) tokens.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect({ content: tokens, refusal: null }).toEqual(logprobsOf(['Echo: ', 'two ', 'words'], 1));
  });

  // The openai SDK's `Completion` type: {tokens, token_logprobs, top_logprobs (token → logprob), text_offset}.
  const COMPLETION_LOGPROBS = {
    tokens: ['Echo: ', 'two ', 'words'],
    token_logprobs: [-0.125, -0.25, -0.375],
    top_logprobs: [
      { 'Echo: ': -0.125, 'Echo: ~1': -1.125 },
      { 'two ': -0.25, 'two ~1': -1.25 },
      { words: -0.375, 'words~1': -1.375 },
    ],
    text_offset: [0, 6, 10],
  };

  it('come back on legacy completions in the Completions shape, with text offsets into the completion', async () => {
    const completion = await client.completions.create({ model: 'test/pt-openai', prompt: 'two words', logprobs: 2 });
    expect(lastBody(openai)).toMatchObject({ logprobs: true, top_logprobs: 2 });
    expect(completion.choices[0]!.text).toBe('Echo: two words');
    expect(completion.choices[0]!.logprobs).toEqual(COMPLETION_LOGPROBS);
    const { text, logprobs } = completion.choices[0]!;
    for (const [i, token] of logprobs!.tokens!.entries()) expect(text.startsWith(token, logprobs!.text_offset![i])).toBe(true);
  });

  it('come back on legacy completion stream chunks in the Completions shape, offsets counted from the start of the text', async () => {
    const stream = await client.completions.create({ model: 'test/pt-openai', prompt: 'two words', logprobs: 2, stream: true });
    const merged = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as unknown[], text_offset: [] as number[] };
    let text = '';
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      text += choice.text;
      const lp = choice.logprobs;
      if (lp == null) continue;
      merged.tokens.push(...lp.tokens!);
      merged.token_logprobs.push(...lp.token_logprobs!);
      merged.top_logprobs.push(...lp.top_logprobs!);
      merged.text_offset.push(...lp.text_offset!);
    }
    expect(text).toBe('Echo: two words');
    expect(merged).toEqual(COMPLETION_LOGPROBS);
  });

  it('are null on legacy completions when not asked for', async () => {
    const completion = await client.completions.create({ model: 'test/pt-openai', prompt: 'hi' });
    expect(completion.choices[0]!.logprobs).toBeNull();
  });

  it('are null when not asked for', async () => {
    const completion = await client.chat.completions.create({ model: 'test/pt-openai', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.logprobs).toBeNull();
  });

  it('are dropped for an Anthropic upstream, unless require_parameters refuses the endpoint', async () => {
    const completion = await client.chat.completions.create({ model: 'test/pt-anthropic', logprobs: true, messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]!.logprobs).toBeNull();
    expect(lastBody(anthropic)).not.toHaveProperty('logprobs');
    const strict = await h.chat(user.key, { model: 'test/pt-anthropic', logprobs: true, provider: { require_parameters: true }, messages: [{ role: 'user', content: 'hi' }] });
    expect(strict.status).toBe(404);
    const { error } = (await strict.json()) as { error: { message: string } };
    expect(error.message).toContain('logprobs');
  });
});

describe('max_completion_tokens and its deprecated alias max_tokens', () => {
  it('both sent and different is a 400 naming both, before any upstream is called', async () => {
    const calls = openai.requests.length;
    const error = await client.chat.completions
      .create({ model: 'test/pt-openai', max_completion_tokens: 5, max_tokens: 700, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const { status, message, error: body } = error as InstanceType<typeof OpenAI.BadRequestError> & { error: { metadata: { param: string } } };
    expect(status).toBe(400);
    expect(message).toContain('max_tokens (700)');
    expect(message).toContain('max_completion_tokens (5)');
    expect(body.metadata.param).toBe('max_tokens');
    expect(openai.requests.length).toBe(calls);
  });

  it('either alone, or both equal, is the answer limit the upstream gets', async () => {
    for (const limits of [{ max_completion_tokens: 5 }, { max_tokens: 6 }, { max_completion_tokens: 7, max_tokens: 7 }]) {
      const completion = await client.chat.completions.create({ model: 'test/pt-openai', ...limits, messages: [{ role: 'user', content: 'hi' }] });
      expect(completion.choices[0]!.message.content).toBe('Echo: hi');
      expect(lastBody(openai).max_tokens).toBe(limits.max_completion_tokens ?? limits.max_tokens);
    }
  });
});

describe('loosely typed fields are refused as their siblings are', () => {
  const refusal = async (body: Record<string, unknown>) => {
    const res = await h.chat(user.key, { model: 'test/pt-openai', messages: [{ role: 'user', content: 'hi' }], ...body });
    return { status: res.status, error: ((await res.json()) as { error: { message: string; metadata: { param: string } } }).error };
  };

  it('stream_options must be an object (its include_usage a boolean), before any upstream is called', async () => {
    const calls = openai.requests.length;
    expect(await refusal({ stream_options: 5 })).toMatchObject({ status: 400, error: { message: 'stream_options must be an object such as {"include_usage": true}', metadata: { param: 'stream_options' } } });
    expect(await refusal({ stream: true, stream_options: { include_usage: 'yes' } })).toMatchObject({ status: 400, error: { metadata: { param: 'stream_options.include_usage' } } });
    expect(openai.requests.length).toBe(calls);
    // The SDK's own stream_options still stream, with usage.
    const stream = await client.chat.completions.create({ model: 'test/pt-openai', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    let usage: unknown;
    for await (const chunk of stream) usage ??= chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: 30, completion_tokens: 7 });
  });

  it('an empty stop string is refused as an empty stop list is, with the same message', async () => {
    const calls = openai.requests.length;
    const single = await refusal({ stop: '' });
    const list = await refusal({ stop: [''] });
    expect(single).toMatchObject({ status: 400, error: { metadata: { param: 'stop' } } });
    expect(list).toMatchObject({ status: 400, error: { metadata: { param: 'stop' } } });
    expect(single.error.message).toBe(list.error.message);
    expect(openai.requests.length).toBe(calls);
    await client.chat.completions.create({ model: 'test/pt-openai', stop: 'END', messages: [{ role: 'user', content: 'hi' }] });
    expect(lastBody(openai).stop).toBe('END');
  });
});

describe('predicted outputs and top_a', () => {
  it('reach an OpenAI-protocol upstream as sent (the openai SDK’s prediction), and are dropped for Anthropic', async () => {
    const prediction = { type: 'content' as const, content: 'const x = 1;' };
    await client.chat.completions.create({ model: 'test/pt-openai', prediction, messages: [{ role: 'user', content: 'edit' }] });
    expect(lastBody(openai).prediction).toEqual(prediction);
    const parts = await h.chat(user.key, { model: 'test/pt-openai', top_a: 0.2, prediction: { type: 'content', content: [{ type: 'text', text: 'a' }] }, messages: [{ role: 'user', content: 'edit' }] });
    expect(parts.status).toBe(200);
    expect(lastBody(openai)).toMatchObject({ top_a: 0.2, prediction: { type: 'content', content: [{ type: 'text', text: 'a' }] } });
    await client.chat.completions.create({ model: 'test/pt-anthropic', prediction, messages: [{ role: 'user', content: 'edit' }] });
    expect(lastBody(anthropic)).not.toHaveProperty('prediction');
  });

  it('are refused with a 400 naming them when malformed', async () => {
    for (const [body, message] of [
      [{ top_a: 2 }, /top_a/],
      [{ prediction: { type: 'diff', content: 'x' } }, /prediction.type must be "content"/],
      [{ prediction: { type: 'content', content: 5 } }, /prediction.content must be a string/],
    ] as const) {
      const res = await h.chat(user.key, { model: 'test/pt-openai', messages: [{ role: 'user', content: 'x' }], ...body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
  });
});

describe('reasoning aliases', () => {
  it('top-level reasoning_effort reaches an OpenAI upstream as its reasoning_effort and Anthropic as a thinking budget', async () => {
    await client.chat.completions.create({ model: 'test/pt-openai', reasoning_effort: 'low', messages: [{ role: 'user', content: 'think' }] });
    expect(lastBody(openai).reasoning_effort).toBe('low');
    await client.chat.completions.create({ model: 'test/pt-anthropic', reasoning_effort: 'high', max_tokens: 2000, messages: [{ role: 'user', content: 'think' }] });
    // 80% of max_tokens for high, as OpenRouter maps efforts.
    expect(lastBody(anthropic).thinking).toEqual({ type: 'enabled', budget_tokens: 1600 });
  });

  it('reasoning.effort wins over reasoning_effort when both are sent', async () => {
    const res = await h.chat(user.key, { model: 'test/pt-openai', reasoning_effort: 'low', reasoning: { effort: 'high' }, messages: [{ role: 'user', content: 'think' }] });
    expect(res.status).toBe(200);
    expect(lastBody(openai).reasoning_effort).toBe('high');
  });

  it('refuses an unknown reasoning_effort with a 400 naming it', async () => {
    const res = await h.chat(user.key, { model: 'test/pt-openai', reasoning_effort: 'extreme', messages: [{ role: 'user', content: 'think' }] });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 400, metadata: { param: 'reasoning_effort' } } });
  });

  it('answers carry reasoning_content beside reasoning, in messages and in stream deltas', async () => {
    openai.script({ reasoning: 'Because.', usage: USAGE });
    const res = await h.chat(user.key, { model: 'test/pt-openai', messages: [{ role: 'user', content: 'why' }] });
    const body = (await res.json()) as { choices: { message: Body }[] };
    expect(body.choices[0]!.message).toMatchObject({ reasoning: 'Because.', reasoning_content: 'Because.', content: 'Echo: why' });

    openai.script({ reasoning: 'Streamed because.', usage: USAGE });
    const stream = await client.chat.completions.create({ model: 'test/pt-openai', stream: true, messages: [{ role: 'user', content: 'why' }] });
    let reasoning = '';
    for await (const chunk of stream) reasoning += (chunk.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    expect(reasoning).toBe('Streamed because.');
  });
});

describe('reasoning on, off and a budget reach an OpenAI-protocol upstream as its reasoning_effort', () => {
  const effortSent = async (body: Body, model = 'test/pt-openai'): Promise<unknown> => {
    const before = openai.requests.length;
    const res = await h.chat(user.key, { model, messages: [{ role: 'user', content: 'think' }], ...body });
    expect(res.status, JSON.stringify(body)).toBe(200);
    await res.text();
    expect(openai.requests.length).toBe(before + 1);
    return lastBody(openai).reasoning_effort;
  };

  it('reasoning.enabled: true, include_reasoning: true and :thinking ask for medium, the default effort', async () => {
    expect(await effortSent({ reasoning: { enabled: true } })).toBe('medium');
    expect(await effortSent({ reasoning: { enabled: true }, stream: true })).toBe('medium');
    expect(await effortSent({ include_reasoning: true })).toBe('medium');
    expect(await effortSent({ include_reasoning: true, reasoning: { exclude: false } })).toBe('medium');
    expect(await effortSent({}, 'test/pt-openai:thinking')).toBe('medium');
  });

  it('reasoning.max_tokens asks for the effort whose share of max_tokens is nearest (high 80%, medium 50%, low 20%)', async () => {
    expect(await effortSent({ max_tokens: 1000, reasoning: { max_tokens: 800 } })).toBe('high');
    expect(await effortSent({ max_tokens: 1000, reasoning: { max_tokens: 650 } })).toBe('high');
    expect(await effortSent({ max_tokens: 1000, reasoning: { max_tokens: 649 } })).toBe('medium');
    expect(await effortSent({ max_completion_tokens: 1000, reasoning: { max_tokens: 500, enabled: true } })).toBe('medium');
    expect(await effortSent({ max_tokens: 1000, reasoning: { max_tokens: 350 } })).toBe('medium');
    expect(await effortSent({ max_tokens: 1000, reasoning: { max_tokens: 349 } })).toBe('low');
    expect(await effortSent({ max_tokens: 1000, reasoning: { max_tokens: 100 }, stream: true })).toBe('low');
    // A budget beyond max_tokens is all of it; without max_tokens there is no share to measure: the default, medium.
    expect(await effortSent({ max_tokens: 100, reasoning: { max_tokens: 4000 } })).toBe('high');
    expect(await effortSent({ reasoning: { max_tokens: 4000 } })).toBe('medium');
  });

  it('an effort given wins; enabled: false, exclude alone and include_reasoning: false ask for none, as before', async () => {
    expect(await effortSent({ max_tokens: 1000, reasoning: { effort: 'low', max_tokens: 900, enabled: true } })).toBe('low');
    expect(await effortSent({ include_reasoning: true, reasoning_effort: 'high' })).toBe('high');
    expect(await effortSent({ reasoning: { effort: 'max' } })).toBe('xhigh');
    for (const off of [{}, { reasoning: { enabled: false } }, { reasoning: { enabled: false, max_tokens: 800 }, max_tokens: 1000 }, { reasoning: { enabled: false }, include_reasoning: true }, { reasoning: { exclude: true } }, { include_reasoning: false }]) {
      expect(await effortSent(off), JSON.stringify(off)).toBeUndefined();
    }
  });

  it('not to an endpoint that does not list reasoning among its supported parameters', async () => {
    await h.fakeEndpoint({ protocol: 'openai', slug: 'pt-noreason', model: 'test/pt-noreason', prices: PRICES, supportedParameters: ['max_tokens', 'temperature'], reuse: openai });
    expect(await effortSent({ reasoning: { enabled: true } }, 'test/pt-noreason')).toBeUndefined();
    expect(await effortSent({ include_reasoning: true, max_tokens: 100, reasoning: { max_tokens: 80 } }, 'test/pt-noreason')).toBeUndefined();
  });

  it('include_reasoning: true turns thinking on at Anthropic too (as reasoning.enabled: true: half of max_tokens)', async () => {
    await client.chat.completions.create({ model: 'test/pt-anthropic', max_tokens: 3000, messages: [{ role: 'user', content: 'think' }], include_reasoning: true } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(lastBody(anthropic).thinking).toEqual({ type: 'enabled', budget_tokens: 1500 });
  });
});

describe('reasoning left out (reasoning.exclude, include_reasoning: false)', () => {
  it('the model reasons and is billed for it, the answer carries no reasoning: in messages and in stream deltas', async () => {
    for (const ask of [{ reasoning: { effort: 'high', exclude: true } }, { include_reasoning: false }]) {
      openai.script({ reasoning: 'Hidden thoughts.', usage: USAGE });
      const res = await h.chat(user.key, { model: 'test/pt-openai', messages: [{ role: 'user', content: 'why' }], ...ask });
      const body = (await res.json()) as { choices: { message: Body }[] };
      expect(body.choices[0]!.message.content).toBe('Echo: why');
      expect(JSON.stringify(body)).not.toContain('Hidden thoughts');

      openai.script({ reasoning: 'Hidden streamed thoughts.', usage: USAGE });
      const streamed = await (await h.chat(user.key, { model: 'test/pt-openai', stream: true, messages: [{ role: 'user', content: 'why' }], ...ask })).text();
      expect(streamed).toContain('Echo');
      expect(streamed).not.toContain('Hidden');
      expect(streamed).not.toMatch(/"reasoning(_content|_details)?"/);
    }
    // Without it, the same script's reasoning is in the answer (the fake sends it).
    openai.script({ reasoning: 'Shown thoughts.', usage: USAGE });
    const shown = await (await h.chat(user.key, { model: 'test/pt-openai', messages: [{ role: 'user', content: 'why' }], include_reasoning: true })).json();
    expect(JSON.stringify(shown)).toContain('Shown thoughts.');
  });
});

describe('parameters an endpoint does not take', () => {
  it('are left out of its upstream request (as OpenRouter ignores them), max_tokens never', async () => {
    await h.fakeEndpoint({ protocol: 'openai', slug: 'pt-narrow', model: 'test/pt-narrow', prices: PRICES, supportedParameters: ['temperature'], reuse: openai });
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
    await client.chat.completions.create({
      model: 'test/pt-narrow',
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 0.5,
      max_tokens: 50,
      tools,
      tool_choice: 'auto',
      parallel_tool_calls: false,
      logprobs: true,
      top_logprobs: 2,
      seed: 7,
      response_format: { type: 'json_object' },
      // @ts-expect-error OpenRouter's sampling parameters, not in the openai SDK's types
      top_k: 5,
    });
    const sent = lastBody(openai);
    expect(sent).toMatchObject({ temperature: 0.5, max_tokens: 50 });
    for (const field of ['tools', 'tool_choice', 'parallel_tool_calls', 'logprobs', 'top_logprobs', 'seed', 'response_format', 'top_k']) expect(sent).not.toHaveProperty(field);

    // The same request to an endpoint that takes them all sends them all.
    await client.chat.completions.create({ model: 'test/pt-openai', messages: [{ role: 'user', content: 'hi' }], temperature: 0.5, max_tokens: 50, tools, tool_choice: 'auto', seed: 7 });
    expect(lastBody(openai)).toMatchObject({ temperature: 0.5, max_tokens: 50, tool_choice: 'auto', seed: 7, tools: [expect.objectContaining({ type: 'function' })] });
  });
});

describe('prompt_cache_key', () => {
  it("reaches an OpenAI upstream (its prompt-cache routing hint); Anthropic's protocol has no such field", async () => {
    await client.chat.completions.create({ model: 'test/pt-openai', messages: [{ role: 'user', content: 'hi' }], prompt_cache_key: 'conversation-7' });
    expect(lastBody(openai).prompt_cache_key).toBe('conversation-7');
    await client.chat.completions.create({ model: 'test/pt-anthropic', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], prompt_cache_key: 'conversation-7' });
    expect(lastBody(anthropic)).not.toHaveProperty('prompt_cache_key');
  });
});

describe('a message name for protocols without one', () => {
  it('is sent as "{name}: {content}" to Anthropic and Gemini, as OpenRouter does', async () => {
    const messages = [
      { role: 'user' as const, content: 'weather?', name: 'bob' },
      { role: 'assistant' as const, content: 'sunny', name: 'helper' },
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'thanks' }], name: 'bob' },
    ];
    await client.chat.completions.create({ model: 'test/pt-anthropic', max_tokens: 100, messages });
    expect(lastBody(anthropic).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'bob: weather?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'helper: sunny' }] },
      { role: 'user', content: [{ type: 'text', text: 'bob: thanks' }] },
    ]);
    await client.chat.completions.create({ model: 'google/gemini-2.5-flash', messages });
    expect((lastBody(gemini).contents as { parts: { text: string }[] }[]).map((c) => c.parts.map((p) => p.text).join(''))).toEqual(['bob: weather?', 'helper: sunny', 'bob: thanks']);
  });
});

describe('file and audio parts', () => {
  const filePart = { type: 'file', file: { filename: 'memo.pdf', file_data: PDF } } as const;
  const audioPart = { type: 'input_audio', input_audio: { data: WAV, format: 'wav' } } as const;

  it('a PDF goes to Anthropic as a document block', async () => {
    const before = await h.settledBalance(user.accountId);
    const completion = await client.chat.completions.create({ model: 'anthropic/claude-3.5-sonnet', messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise' }, filePart] }] });
    expect(completion.choices[0]!.message.content).toBe('Echo: Summarise');
    const messages = lastBody(anthropic).messages as { content: unknown[] }[];
    expect(messages[0]!.content).toEqual([
      { type: 'text', text: 'Summarise' },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQKJcfs' }, title: 'memo.pdf' },
    ]);
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(costOf(PRICES, 30, 7));
  });

  it('a PDF and an audio clip go to Gemini as inline data', async () => {
    await client.chat.completions.create({ model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: [{ type: 'text', text: 'Listen' }, filePart, audioPart] }] });
    const contents = lastBody(gemini).contents as { parts: unknown[] }[];
    expect(contents[0]!.parts).toEqual([
      { text: 'Listen' },
      { inlineData: { mimeType: 'application/pdf', data: 'JVBERi0xLjQKJcfs' } },
      { inlineData: { mimeType: 'audio/wav', data: WAV } },
    ]);
  });

  it('a PDF passes through to an OpenAI-protocol upstream unchanged', async () => {
    await h.fakeEndpoint({ protocol: 'openai', slug: 'pt-gpt', model: 'openai/gpt-4o', prices: PRICES, reuse: openai });
    await client.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'Read' }, filePart] }] });
    expect((lastBody(openai).messages as { content: unknown }[])[0]!.content).toEqual([{ type: 'text', text: 'Read' }, filePart]);
  });

  it("is refused with OpenRouter's 404 where no endpoint takes such input, before any upstream is called", async () => {
    const calls = anthropic.requests.length;
    const audio = await h.chat(user.key, { model: 'anthropic/claude-3.5-sonnet', messages: [{ role: 'user', content: [audioPart] }] });
    expect(audio.status).toBe(404);
    expect(await audio.json()).toMatchObject({
      error: { code: 404, message: 'No endpoints found that support audio input (anthropic/claude-3.5-sonnet takes text, image, file)', metadata: { error_type: 'not_found', param: 'messages', input_modalities: ['audio'] } },
    });
    const file = await h.chat(user.key, { model: 'test/pt-anthropic', messages: [{ role: 'user', content: [filePart] }] });
    expect(file.status).toBe(404);
    expect(((await file.json()) as { error: { message: string } }).error.message).toBe('No endpoints found that support file input (test/pt-anthropic takes text)');
    expect(anthropic.requests.length).toBe(calls);
  });

  it('a malformed part is a 400 naming its place', async () => {
    const res = await h.chat(user.key, { model: 'google/gemini-2.5-flash', messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { format: 'wav' } }] }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^messages\[0\]\.content\[0\] must be /);
  });
});

describe('GET /api/v1/models/{id}', () => {
  it('answers openai.models.retrieve (the slash encoded) with the model object', async () => {
    const model = await client.models.retrieve('test/pt-openai');
    expect(model).toMatchObject({ id: 'test/pt-openai', object: 'model', owned_by: 'test', pricing: { prompt: '0.00000015', completion: '0.0000006' } });
  });

  it('answers the unencoded path the same, and 404s an unknown model', async () => {
    const res = await fetch(`${h.url}/api/v1/models/test/pt-openai`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 'test/pt-openai', object: 'model' });
    await expect(client.models.retrieve('test/nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.models.retrieve('no-slash')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('platform rate limits', () => {
  it("the free tier's 429 carries X-RateLimit-Limit, -Remaining and -Reset", async () => {
    const free = await h.openAccount();
    const body = { model: 'switchyard/demo', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] };
    for (let i = 0; i < 20; i++) expect((await h.chat(free.key, body)).status).toBe(200);
    const startedAt = Date.now();
    const limited = await h.chat(free.key, body);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-ratelimit-limit')).toBe('20');
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(limited.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(startedAt);
    expect(reset).toBeLessThanOrEqual(startedAt + 61_000);
  });

  it("an upstream's 429 gets Retry-After but no X-RateLimit headers of ours", async () => {
    for (let i = 0; i < 5; i++) openai.script({ status: 429 });
    const res = await h.chat(user.key, { model: 'test/pt-openai', provider: { allow_fallbacks: false }, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(429);
    expect(res.headers.get('x-ratelimit-limit')).toBeNull();
  });
});
