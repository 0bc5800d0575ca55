/**
 * OpenRouter's router metadata over real HTTP, with the official openai SDK and fake upstreams: `X-OpenRouter-Metadata:
 * enabled` (case ignored; also the experimental header's name) adds `openrouter_metadata` to a whole answer and to a
 * stream's final usage chunk: what was asked, the strategy, every endpoint and the one selected, each attempt (a
 * failed one with its error), and the pipeline stages that changed the call. Any other value, or none, adds nothing.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wholeAnswer, type FakeProvider } from '../support/fakeProviders.js';
import { readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let cheap: FakeProvider;
let dear: FakeProvider;
let user: Account;
let client: OpenAI;
const ON = { 'X-OpenRouter-Metadata': 'Enabled' };

type Metadata = {
  requested: string;
  strategy: string;
  summary: string;
  attempt: number;
  attempts: { attempt: number; provider: string; status: string; error?: { code: string; status: number; message: string } }[];
  is_byok: boolean;
  region: null;
  endpoints: { total: number; available: { model: string; provider: string; selected: boolean }[] };
  pipeline: { type: string }[];
  generation_time?: number;
};
/** What a provider's 5xx may say of its insides. */
const INTERNALS = 'pg at 10.9.8.7:5432 user=svc password=hunter2 failed';
const metadataOf = (body: unknown) => (body as { openrouter_metadata?: Metadata }).openrouter_metadata;

beforeAll(async () => {
  h = await startGatewayHarness();
  cheap = await h.fakeEndpoint({ protocol: 'openai', slug: 'cheapo', model: 'rm/chat', prices: { prompt: 100, completion: 100 } });
  dear = await h.fakeEndpoint({ protocol: 'openai', slug: 'pricey', model: 'rm/chat', prices: { prompt: 900, completion: 900 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'other', model: 'rm/backup', prices: { prompt: 100, completion: 100 }, reuse: dear });
  user = await h.openAccount({ name: 'curious', credits: 1_000_000_000 });
  client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await h.stop();
});

describe('router metadata', () => {
  it('describes the route of a whole answer: the endpoints, the one selected and its attempt', async () => {
    const completion = await client.chat.completions.create({ model: 'rm/chat', messages: [{ role: 'user', content: 'hi' }] }, { headers: ON });
    const metadata = metadataOf(completion)!;
    expect(metadata).toMatchObject({ requested: 'rm/chat', strategy: 'direct', attempt: 1, is_byok: false, region: null, pipeline: [] });
    expect(metadata.endpoints).toEqual({
      total: 2,
      available: [
        { model: 'rm/chat', provider: 'cheapo', endpoint: 'rm/chat@cheapo', is_byok: false, selected: true },
        { model: 'rm/chat', provider: 'pricey', endpoint: 'rm/chat@pricey', is_byok: false, selected: false },
      ],
    });
    expect(metadata.attempts).toEqual([expect.objectContaining({ attempt: 1, provider: 'cheapo', status: 'success' })]);
    expect(metadata.summary).toBe('available=2, selected=cheapo');
    expect(metadata.generation_time).toBeGreaterThanOrEqual(0);
  });

  it('shows a failed attempt with its error, and a fallback model as the fallback strategy', async () => {
    cheap.script({ status: 503 });
    const res = await h.chat(user.key, { model: 'rm/chat', messages: [{ role: 'user', content: 'hi' }] }, { 'x-openrouter-experimental-metadata': 'enabled' });
    const metadata = metadataOf(await res.json())!;
    expect(metadata.strategy).toBe('direct');
    expect(metadata.attempt).toBe(2);
    expect(metadata.attempts.map((a) => [a.provider, a.status, a.error?.status])).toEqual([
      ['cheapo', 'error', 503],
      ['pricey', 'success', undefined],
    ]);
    expect(metadata.summary).toBe('available=2, selected=pricey, attempts=2');

    cheap.script({ status: 400 });
    const fallback = await h.chat(user.key, { model: 'rm/chat', models: ['rm/backup'], messages: [{ role: 'user', content: 'hi' }], provider: { only: ['cheapo', 'other'] } }, ON);
    const viaBackup = metadataOf(await fallback.json())!;
    expect(viaBackup).toMatchObject({ requested: 'rm/chat', strategy: 'fallback' });
    expect(viaBackup.endpoints.available.find((e) => e.selected)!.model).toBe('rm/backup');
  });

  it('an answer its provider ended with an error mid-generation: the endpoint that answered is selected, its attempt shows the error', async () => {
    cheap.script({ body: wholeAnswer('partial', 'error', { code: 502, message: INTERNALS }) });
    const res = await h.chat(user.key, { model: 'rm/chat', messages: [{ role: 'user', content: 'hi' }] }, ON);
    const body = await res.text();
    const metadata = metadataOf(JSON.parse(body))!;
    expect(metadata.summary).toBe('available=2, selected=cheapo');
    expect(metadata.endpoints.available.find((e) => e.selected)!.provider).toBe('cheapo');
    expect(metadata.attempts.map((a) => [a.provider, a.status, a.error?.status])).toEqual([['cheapo', 'error', 502]]);
    expect(metadata.generation_time).toBeGreaterThanOrEqual(0);
    // A 5xx's own words stay hidden here as in the error itself: they can leak the provider's internals.
    expect(metadata.attempts[0]!.error).toMatchObject({ code: 'server_error', message: 'cheapo 502 server_error' });
    expect(body).not.toContain('hunter2');
  });

  it("a 5xx before any token, tried elsewhere: its attempt shows the code and status, not the provider's words; a 4xx's words are shown", async () => {
    cheap.script({ status: 500, body: { error: { message: INTERNALS, type: 'server_error' } } });
    const res = await h.chat(user.key, { model: 'rm/chat', messages: [{ role: 'user', content: 'hi' }] }, ON);
    const body = await res.text();
    expect(metadataOf(JSON.parse(body))!.attempts.map((a) => [a.provider, a.status, a.error])).toEqual([
      ['cheapo', 'error', { code: 'server_error', status: 500, message: 'cheapo 500 server_error' }],
      ['pricey', 'success', undefined],
    ]);
    expect(body).not.toContain('hunter2');
    cheap.script({ status: 404, body: { error: { message: 'no such model here', type: 'invalid_request_error' } } });
    const refused = metadataOf(await (await h.chat(user.key, { model: 'rm/chat', messages: [{ role: 'user', content: 'hi' }] }, ON)).json())!;
    expect(refused.attempts[0]!.error).toMatchObject({ status: 404, message: expect.stringContaining('no such model here') });
  });

  it('names a requested variant chain as asked and its route as direct, not a fallback to the bare model', async () => {
    const completion = await client.chat.completions.create({ model: 'rm/chat:nitro:floor', messages: [{ role: 'user', content: 'hi' }] }, { headers: ON });
    expect(completion.model).toBe('rm/chat');
    expect(metadataOf(completion)).toMatchObject({ requested: 'rm/chat:nitro:floor', strategy: 'direct' });
  });

  it('rides on a stream’s final usage chunk only, and names the pipeline stages that changed the call', async () => {
    const long = Array.from({ length: 200 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${i} ${'x'.repeat(400)}` }));
    const res = await h.chat(user.key, { model: 'rm/chat', messages: long, stream: true, plugins: [{ id: 'context-compression' }] }, ON);
    const { events } = await readSseResponse(res);
    const carrying = events.filter((e) => e.openrouter_metadata !== undefined);
    expect(carrying).toHaveLength(1);
    expect(carrying[0]).toBe(events.at(-1));
    expect(carrying[0].usage).toBeDefined();
    expect(carrying[0].openrouter_metadata.pipeline).toEqual([expect.objectContaining({ type: 'context-compression', engine: 'middle-out', selected: true })]);

    cheap.script({ text: '```json\n{"a": 1,}\n```' });
    const healed = await h.chat(user.key, { model: 'rm/chat', messages: [{ role: 'user', content: 'json' }], response_format: { type: 'json_object' }, plugins: [{ id: 'response-healing' }] }, ON);
    expect(metadataOf(await healed.json())!.pipeline).toEqual([{ type: 'response-healing', repaired: true }]);
  });

  it('rides on the Messages and Responses skins too: their whole answers, message_stop and response.completed', async () => {
    const post = (path: string, body: Record<string, unknown>) =>
      fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}`, ...ON }, body: JSON.stringify(body) });
    const message = { model: 'rm/chat', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] };
    expect(metadataOf(await (await post('/api/v1/messages', message)).json())).toMatchObject({ requested: 'rm/chat', attempt: 1 });
    const streamed = await (await post('/api/v1/messages', { ...message, stream: true })).text();
    const stop = streamed.split('\n\n').find((block) => block.startsWith('event: message_stop'))!;
    expect(metadataOf(JSON.parse(stop.split('data: ')[1]!))).toMatchObject({ requested: 'rm/chat' });

    const response = { model: 'rm/chat', input: 'hi' };
    expect(metadataOf(await (await post('/api/v1/responses', response)).json())).toMatchObject({ requested: 'rm/chat' });
    const events = (await (await post('/api/v1/responses', { ...response, stream: true })).text()).split('\n\n').filter(Boolean);
    const completed = events.find((block) => block.startsWith('event: response.completed'))!;
    expect(metadataOf((JSON.parse(completed.split('data: ')[1]!) as { response: unknown }).response)).toMatchObject({ requested: 'rm/chat' });
    expect(events.filter((block) => block.includes('openrouter_metadata'))).toHaveLength(1);
  });

  it('adds nothing without the header or with any value but enabled', async () => {
    for (const headers of [{}, { 'X-OpenRouter-Metadata': 'yes' }, { 'X-OpenRouter-Metadata': 'disabled' }] as Record<string, string>[]) {
      const res = await h.chat(user.key, { model: 'rm/chat', messages: [{ role: 'user', content: 'hi' }] }, headers);
      expect(metadataOf(await res.json())).toBeUndefined();
    }
  });
});
