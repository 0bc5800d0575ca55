/**
 * The generation record's cache and media fields (`GET /api/v1/generation?id=`), over real HTTP with the official
 * `openai` SDK and a fake OpenAI upstream that reports `prompt_tokens_details.cached_tokens`: `cache_discount` (what
 * the cached prompt tokens saved against the prompt price, in USD as `total_cost`), `num_media_prompt`,
 * `num_input_audio_prompt` and `num_media_completion`. They come from the generation's events: folding its stream
 * gives them again, and events written before they were recorded read as null. GraphQL's Generation has them too.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generationsProjection, type GenerationDoc } from '../../projections/generations.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

/** A seeded model that takes images, files and audio, served here by a fake OpenAI-protocol upstream. */
const MEDIA_MODEL = 'google/gemini-2.5-flash';
/** Nano-dollars per token: cached prompt tokens cost a quarter of the prompt price. */
const CACHED = { prompt: 1_000, completion: 2_000, cacheRead: 250 };
/** Cache reads priced as prompt tokens (the default when an endpoint names no cache price). */
const PLAIN = { prompt: 1_000, completion: 2_000 };
const USAGE = { promptTokens: 1_000, completionTokens: 10, cachedTokens: 400 };
const PNG = 'data:image/png;base64,iVBORw0KGgo=';
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEA';
const PDF = 'data:application/pdf;base64,JVBERi0xLjQKJcfs';

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let cached: FakeProvider;
let plain: FakeProvider;

const mediaMessages = [
  { role: 'system' as const, content: 'Describe what you are given.' },
  {
    role: 'user' as const,
    content: [
      { type: 'text' as const, text: 'Here:' },
      { type: 'image_url' as const, image_url: { url: PNG } },
      { type: 'input_audio' as const, input_audio: { data: WAV, format: 'wav' as const } },
      { type: 'file' as const, file: { filename: 'memo.pdf', file_data: PDF } },
    ],
  },
  { role: 'assistant' as const, content: 'Seen.' },
  { role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: PNG } }] },
];

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 5_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  cached = await h.fakeEndpoint({ protocol: 'openai', slug: 'gr-cached', model: MEDIA_MODEL, prices: CACHED });
  plain = await h.fakeEndpoint({ protocol: 'openai', slug: 'gr-plain', model: 'test/gr-plain', prices: PLAIN });
  for (const fake of [cached, plain]) fake.setDefault({ usage: USAGE });
});
afterAll(async () => {
  await h.stop();
});

/** The generation's read-model document as folding its stored events gives it, after `edit` changes each event. */
const replayed = async (id: string, edit: (event: RecordedEvent) => RecordedEvent = (e) => e): Promise<GenerationDoc> => {
  const events = await h.running.core.eventStore.readStream(`generation-${id}`);
  return events.map(edit).reduce<GenerationDoc | null>((doc, event) => generationsProjection.evolve(doc, event) as GenerationDoc | null, null)!;
};

describe('cache_discount', () => {
  it('is what the cached prompt tokens saved against the prompt price, whole and streamed', async () => {
    // 400 cached tokens at 250 instead of 1,000 nano-dollars: 300,000 saved.
    const cost = (USAGE.promptTokens - USAGE.cachedTokens) * CACHED.prompt + USAGE.cachedTokens * CACHED.cacheRead + USAGE.completionTokens * CACHED.completion;
    const whole = await client.chat.completions.create({ model: MEDIA_MODEL, messages: [{ role: 'user', content: 'hello' }] });
    expect(whole.usage).toMatchObject({ prompt_tokens: 1_000, prompt_tokens_details: { cached_tokens: 400 } });
    const stream = await client.chat.completions.create({ model: MEDIA_MODEL, messages: [{ role: 'user', content: 'hello' }], stream: true });
    let streamedId = '';
    for await (const chunk of stream) streamedId = chunk.id;
    for (const id of [whole.id, streamedId]) {
      expect(await h.generation(user.key, id)).toMatchObject({
        provider_name: 'gr-cached',
        native_tokens_cached: 400,
        total_cost: cost / 1e9,
        cache_discount: 300_000 / 1e9,
        switchyard: { cost_nanodollars: cost, cache_discount_nanodollars: 300_000 },
      });
    }
  });

  it('is 0 when the endpoint prices cache reads as prompt tokens, or nothing was cached', async () => {
    const priced = await client.chat.completions.create({ model: 'test/gr-plain', messages: [{ role: 'user', content: 'hello' }] });
    expect(await h.generation(user.key, priced.id)).toMatchObject({ native_tokens_cached: 400, cache_discount: 0, switchyard: { cache_discount_nanodollars: 0 } });
    cached.script({ usage: { promptTokens: 1_000, completionTokens: 10 } });
    const uncached = await client.chat.completions.create({ model: MEDIA_MODEL, messages: [{ role: 'user', content: 'hello' }] });
    expect(await h.generation(user.key, uncached.id)).toMatchObject({ provider_name: 'gr-cached', native_tokens_cached: 0, cache_discount: 0 });
  });
});

describe('media counts', () => {
  it("count the prompt's images, audio and files, and no media in the answer", async () => {
    const completion = await client.chat.completions.create({ model: MEDIA_MODEL, messages: mediaMessages });
    expect(await h.generation(user.key, completion.id)).toMatchObject({ num_media_prompt: 4, num_input_audio_prompt: 1, num_media_completion: 0 });
    const text = await client.chat.completions.create({ model: 'test/gr-plain', messages: [{ role: 'user', content: 'hello' }] });
    expect(await h.generation(user.key, text.id)).toMatchObject({ num_media_prompt: 0, num_input_audio_prompt: 0, num_media_completion: 0 });
  });
});

describe("GraphQL's Generation", () => {
  const GENERATION = 'query ($id: ID!) { generation(id: $id) { cost cacheDiscount numMediaPrompt numInputAudioPrompt numMediaCompletion } }';
  const read = async (id: string) => (await h.gql(GENERATION, { id }, user.key)).body.data.generation;

  it('has the same cache discount (Money, exact nano-dollars) and media counts as the REST record', async () => {
    cached.script({ usage: USAGE });
    const completion = await client.chat.completions.create({ model: MEDIA_MODEL, messages: mediaMessages });
    const record = await h.generation(user.key, completion.id);
    expect(record).toMatchObject({ provider_name: 'gr-cached', cache_discount: 300_000 / 1e9, num_media_prompt: 4 });
    expect(await read(completion.id)).toEqual({ cost: record.switchyard.cost_nanodollars, cacheDiscount: 300_000, numMediaPrompt: 4, numInputAudioPrompt: 1, numMediaCompletion: 0 });
    const text = await client.chat.completions.create({ model: 'test/gr-plain', messages: [{ role: 'user', content: 'hello' }] });
    expect(await read(text.id)).toMatchObject({ cacheDiscount: 0, numMediaPrompt: 0, numInputAudioPrompt: 0, numMediaCompletion: 0 });
  });
});

describe('from the events', () => {
  it('folding the stream gives them again; events from before they were recorded give null', async () => {
    const completion = await client.chat.completions.create({ model: MEDIA_MODEL, messages: mediaMessages });
    const record = await h.generation(user.key, completion.id);
    expect(record).toMatchObject({ num_media_prompt: 4, cache_discount: 300_000 / 1e9 });
    expect(await replayed(completion.id)).toMatchObject({ promptMedia: { images: 2, files: 1, audio: 1 }, cacheDiscount: 300_000 });
    const old = await replayed(completion.id, (event) => {
      const { promptMedia: _media, cacheDiscount: _discount, ...data } = event.data as Record<string, unknown>;
      return { ...event, data };
    });
    expect(old).not.toHaveProperty('promptMedia');
    expect(old).not.toHaveProperty('cacheDiscount');
    expect(old).toMatchObject({ status: 'completed', cost: record.switchyard.cost_nanodollars });
  });
});
