/**
 * OpenRouter's `debug: {echo_upstream_body: true}` over real HTTP: a streamed answer starts with one chunk per provider
 * tried (no choices, `debug.echo_upstream_body`: the body exactly as the fake upstream received it, in that provider's
 * own protocol, never its key), read with the official openai SDK too, and on the Responses API as response.debug
 * events; a whole answer ignores the option; a malformed
 * option is a 400.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let openai: FakeProvider;
let claude: FakeProvider;
let user: Account;
const PRICES = { prompt: 100, completion: 100 };
const messages = [{ role: 'user', content: 'echo me' }];

beforeAll(async () => {
  h = await startGatewayHarness();
  openai = await h.fakeEndpoint({ protocol: 'openai', slug: 'oai', model: 'dbg/one', prices: PRICES });
  claude = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'anth', model: 'dbg/two', prices: PRICES });
  user = await h.openAccount({ name: 'debugger', credits: 1_000_000_000 });
});
afterAll(async () => {
  await h.stop();
});

describe('debug.echo_upstream_body', () => {
  it('starts a stream with the body each provider tried was sent, in its own protocol', async () => {
    openai.script({ status: 503 });
    const res = await h.chat(user.key, { model: 'dbg/one', models: ['dbg/two'], messages, max_tokens: 50, stream: true, debug: { echo_upstream_body: true } });
    expect(res.status).toBe(200);
    const { events, done } = await readSseResponse(res);
    expect(done).toBe(true);
    const [first, second, ...rest] = events;
    expect(first).toMatchObject({ object: 'chat.completion.chunk', model: 'dbg/one', choices: [] });
    expect(first.debug.echo_upstream_body).toEqual(openai.requests.at(-1)!.body);
    expect(second).toMatchObject({ model: 'dbg/two', choices: [] });
    expect(second.debug.echo_upstream_body).toEqual(claude.requests.at(-1)!.body);
    expect(second.debug.echo_upstream_body).toMatchObject({ max_tokens: 50, messages: [{ role: 'user' }], stream: true });
    expect(JSON.stringify(events)).not.toContain(FAKE_API_KEY);
    // Then the answer as always, without debug.
    expect(rest.filter((e) => e.debug !== undefined)).toEqual([]);
    expect(rest.some((e) => e.choices?.[0]?.delta?.content)).toBe(true);
  });

  it('reaches the openai SDK as a first chunk without choices; a whole answer and a request without it carry none', async () => {
    const client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'dbg/one', messages: [{ role: 'user', content: 'hi' }], stream: true, debug: { echo_upstream_body: true } } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
    const chunks: (OpenAI.Chat.ChatCompletionChunk & { debug?: { echo_upstream_body: { model: string } } })[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.choices).toEqual([]);
    expect(chunks[0]!.debug!.echo_upstream_body.model).toBe('fake-model');

    const whole = await h.chat(user.key, { model: 'dbg/one', messages, debug: { echo_upstream_body: true } });
    expect(whole.status).toBe(200);
    expect(JSON.stringify(await whole.json())).not.toContain('echo_upstream_body');
    const plain = await readSseResponse(await h.chat(user.key, { model: 'dbg/one', messages, stream: true }));
    expect(plain.events.filter((e) => e.debug !== undefined)).toEqual([]);
  });

  it('arrives on the Responses API as response.debug events before the answer', async () => {
    const res = await fetch(`${h.url}/api/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'dbg/one', input: 'echo me too', stream: true, debug: { echo_upstream_body: true } }),
    });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split('\n\n')
      .filter((block) => block.startsWith('event: '))
      .map((block) => ({ type: block.slice(7, block.indexOf('\n')), data: JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { debug?: { echo_upstream_body: unknown } } }));
    const debug = events.filter((e) => e.type === 'response.debug');
    expect(debug).toHaveLength(1);
    expect(debug[0]!.data.debug!.echo_upstream_body).toEqual(openai.requests.at(-1)!.body);
    expect(events.findIndex((e) => e.type === 'response.debug')).toBeLessThan(events.findIndex((e) => e.type === 'response.output_text.delta'));
  });

  it('refuses a malformed debug option with a 400', async () => {
    for (const debug of ['yes', { echo_upstream_body: 'true' }]) {
      const res = await h.chat(user.key, { model: 'dbg/one', messages, stream: true, debug });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/debug/);
    }
  });
});
