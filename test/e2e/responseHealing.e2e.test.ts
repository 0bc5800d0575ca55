/**
 * OpenRouter's response-healing plugin through the official openai SDK against a fake OpenAI upstream that answers
 * JSON badly: with the plugin and a JSON response_format, a whole answer is repaired; without either, or streamed,
 * the answer reaches the client exactly as the provider sent it. The charge is the same either way.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let fake: FakeProvider;
let user: Account;
let client: OpenAI;
const MODEL = 'healco/json';
const BROKEN = 'Here you go:\n```json\n{"name": "Alice", "tags": ["a", "b",], "age": 30\n```';

beforeAll(async () => {
  h = await startGatewayHarness();
  fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'healco', model: MODEL, prices: { prompt: 1000, completion: 4000 } });
  user = await h.openAccount({ name: 'healer', credits: 1_000_000_000 });
  client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await h.stop();
});

type Body = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & { plugins?: unknown[] };
const ask = (extra: Partial<Body>) =>
  client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Alice as JSON' }], ...extra } as Body);

describe('the response-healing plugin', () => {
  it('repairs a whole answer to a JSON request: the fence and prose dropped, the syntax mended; charged as sent', async () => {
    fake.script({ text: BROKEN });
    const healed = await ask({ response_format: { type: 'json_object' }, plugins: [{ id: 'response-healing' }] });
    expect(JSON.parse(healed.choices[0]!.message.content!)).toEqual({ name: 'Alice', tags: ['a', 'b'], age: 30 });

    fake.script({ text: BROKEN });
    const asSent = await ask({ response_format: { type: 'json_object' } });
    expect(asSent.choices[0]!.message.content).toBe(BROKEN);
    // The same tokens, the same price: healing is free.
    expect((healed.usage as { cost?: number }).cost).toBe((asSent.usage as { cost?: number }).cost);

    fake.script({ text: '{"name": "Alice",}' });
    const schema = await ask({
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: { type: 'object', properties: { name: { type: 'string' } } } } },
      plugins: [{ id: 'response-healing' }],
    });
    expect(JSON.parse(schema.choices[0]!.message.content!)).toEqual({ name: 'Alice' });
  });

  it('is asked for through GraphQL sendPrompt too (responseFormat and plugins), and a refused plugin is a typed error', async () => {
    fake.script({ text: BROKEN });
    const query = `mutation ($input: PromptInput!) { sendPrompt(input: $input) { __typename ... on SendPromptResult { completion } ... on DomainError { code message } } }`;
    const input = { model: MODEL, messages: [{ role: 'USER', content: 'Alice as JSON' }], responseFormat: { type: 'json_object' }, plugins: [{ id: 'response-healing' }] };
    const { body } = await h.gql(query, { input }, user.key);
    expect(body.errors).toBeUndefined();
    expect(JSON.parse(body.data.sendPrompt.completion)).toEqual({ name: 'Alice', tags: ['a', 'b'], age: 30 });
    const refused = await h.gql(query, { input: { ...input, plugins: [{ id: 'web' }] } }, user.key);
    expect(refused.body.data.sendPrompt).toMatchObject({ __typename: 'DomainError', message: expect.stringMatching(/web plugin/) });
  });

  it('leaves text answers, valid JSON, disabled plugins and streams as the provider sent them', async () => {
    fake.script({ text: BROKEN });
    expect((await ask({ plugins: [{ id: 'response-healing' }] })).choices[0]!.message.content).toBe(BROKEN);
    fake.script({ text: BROKEN });
    expect((await ask({ response_format: { type: 'json_object' }, plugins: [{ id: 'response-healing', enabled: false }] })).choices[0]!.message.content).toBe(BROKEN);
    fake.script({ text: '{ "already": "valid" }' });
    expect((await ask({ response_format: { type: 'json_object' }, plugins: [{ id: 'response-healing' }] })).choices[0]!.message.content).toBe('{ "already": "valid" }');
    fake.script({ text: 'I cannot do that.' });
    expect((await ask({ response_format: { type: 'json_object' }, plugins: [{ id: 'response-healing' }] })).choices[0]!.message.content).toBe('I cannot do that.');

    fake.script({ text: '{"streamed": true,}' });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'stream it' }],
      stream: true,
      response_format: { type: 'json_object' },
      plugins: [{ id: 'response-healing' }],
    } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('{"streamed": true,}');
  });
});
