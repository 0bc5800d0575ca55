/**
 * OpenRouter's app attribution over real HTTP: HTTP-Referer, X-OpenRouter-Title (or X-Title) and
 * X-OpenRouter-Categories, sent by the official openai SDK and by plain clients, are recorded on the generation
 * (REST `origin` and `switchyard.app`, GraphQL `Generation.app`) on every REST model route; a header that cannot be one
 * is a 400 that charges nothing.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ name: 'app-maker', credits: 1_000_000_000 });
});
afterAll(async () => {
  await h.stop();
});

const record = (id: string): Promise<{ origin: string; switchyard: { app: unknown } }> => h.generation(user.key, id);

describe('app attribution', () => {
  it('records the app the openai SDK names on the generation, in REST and GraphQL', async () => {
    const client = new OpenAI({
      apiKey: user.key,
      baseURL: `${h.url}/api/v1`,
      defaultHeaders: { 'HTTP-Referer': 'https://notes.example/', 'X-Title': 'Notes', 'X-OpenRouter-Categories': 'Programming-App, cli-agent' },
    });
    const completion = await client.chat.completions.create({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hello' }] });
    const data = await record(completion.id);
    expect(data.origin).toBe('https://notes.example/');
    expect(data.switchyard.app).toEqual({ url: 'https://notes.example/', title: 'Notes', categories: ['programming-app', 'cli-agent'] });
    const { body } = await h.gql('query ($id: ID!) { generation(id: $id) { app { url title categories } } }', { id: completion.id }, user.key);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect(body.data.generation.app).toEqual({ url: 'https://notes.example/', title: 'Notes', categories: ['programming-app', 'cli-agent'] });

    // X-OpenRouter-Title wins over X-Title; embeddings are attributed too.
    const embedded = await client.embeddings.create({ model: 'switchyard/demo-embed', input: 'hi' }, { headers: { 'X-OpenRouter-Title': 'Notes Pro' } });
    const embedId = (embedded as unknown as { id: string }).id;
    expect((await record(embedId)).switchyard.app).toMatchObject({ title: 'Notes Pro' });
  });

  it('records it on the Messages and Responses routes, and nothing when no header names an app', async () => {
    const messages = await fetch(`${h.url}/api/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': user.key, 'x-title': 'Claude client' },
      body: JSON.stringify({ model: 'switchyard/demo', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(messages.status).toBe(200);
    expect((await record(messages.headers.get('x-generation-id')!)).switchyard.app).toEqual({ url: null, title: 'Claude client', categories: [] });
    const responses = await fetch(`${h.url}/api/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}`, 'http-referer': 'http://localhost:5173' },
      body: JSON.stringify({ model: 'switchyard/demo', input: 'hi' }),
    });
    expect(responses.status).toBe(200);
    expect((await record(responses.headers.get('x-generation-id')!)).origin).toBe('http://localhost:5173');
    const plain = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] });
    const data = await record(plain.headers.get('x-generation-id')!);
    expect(data.origin).toBe('');
    expect(data.switchyard.app).toBeNull();
  });

  it('groups the account’s usage by app: its title, else its URL, and `-` for calls of no named app (categories alone name none)', async () => {
    const fresh = await h.openAccount({ name: 'app-counter', credits: 1_000_000_000 });
    const send = (headers: Record<string, string>) => h.chat(fresh.key, { model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'hi' }] }, headers);
    for (const headers of [{ 'x-title': 'Notes' }, { 'x-title': 'Notes', 'http-referer': 'https://notes.example/' }, { 'http-referer': 'https://board.example/' }, {}, { 'x-openrouter-categories': 'cli-agent' }] as Record<string, string>[]) {
      expect((await send(headers)).status).toBe(200);
    }
    await h.settledBalance(fresh.accountId);
    const { body } = await h.gql('{ usage(groupBy: APP) { group requests cost } }', {}, fresh.key);
    expect(body.errors).toBeUndefined();
    expect(body.data.usage.map((r: { group: string; requests: number }) => [r.group, r.requests])).toEqual([
      ['-', 2],
      ['Notes', 2],
      ['https://board.example/', 1],
    ]);
  });

  it.each([
    [{ 'http-referer': 'notes app' }, 'HTTP-Referer must be the app’s http(s) URL'],
    [{ 'http-referer': 'javascript:alert(1)' }, 'HTTP-Referer must be the app’s http(s) URL'],
    [{ 'http-referer': `https://a.example/${'x'.repeat(520)}` }, 'HTTP-Referer must be the app’s http(s) URL, at most 512 characters'],
    [{ 'x-title': 'T'.repeat(129) }, 'X-OpenRouter-Title (X-Title) must be at most 128 characters'],
    [{ 'x-openrouter-categories': 'a,b,c' }, 'X-OpenRouter-Categories must be at most 2'],
    [{ 'x-openrouter-categories': 'no spaces allowed' }, 'X-OpenRouter-Categories must be at most 2'],
  ])('refuses %j with a 400 and charges nothing', async (headers, message) => {
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] }, headers);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(message);
    expect(await h.settledBalance(user.accountId)).toEqual(before);
  });
});
