/**
 * What Anthropic's and Gemini's protocols cannot carry is refused before any upstream call, a 400 that says what to
 * fix, charging nothing: a conversation with no user or assistant content (a system prompt alone, empty content) would
 * go out as `messages: []` / `contents: []`, which the providers refuse (and the router then counted as their failure);
 * a media URL either protocol would refuse (a `data:` URL that is not base64, a link that is not http(s)).
 * An OpenAI-protocol upstream takes a system prompt alone: it is not refused there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProtocol, FakeProvider } from '../support/fakeProviders.js';
import { readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 1000, completion: 2000 };
/** Seeded models that take images and files, served here by the fakes. */
const MEDIA_MODEL = { anthropic: 'anthropic/claude-3.5-sonnet', gemini: 'google/gemini-2.5-flash' } as const;

let h: GatewayHarness;
let user: Account;
const fakes: Partial<Record<FakeProtocol, FakeProvider>> = {};

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 10_000_000_000 });
  for (const protocol of ['openai', 'anthropic', 'gemini'] as const) {
    fakes[protocol] = await h.fakeEndpoint({ protocol, slug: `${protocol}-refusals`, model: `test/${protocol}-refusals`, prices: PRICES });
    if (protocol !== 'openai') await h.fakeEndpoint({ protocol, slug: `${protocol}-media`, model: MEDIA_MODEL[protocol], prices: PRICES, reuse: fakes[protocol] });
  }
});
afterAll(async () => {
  await h.stop();
});

/** Sends `body` (streamed or not) and expects a 400 whose message matches `message`, with no upstream call and no charge. */
const refused = async (protocol: FakeProtocol, body: Record<string, unknown>, message: RegExp, model = `test/${protocol}-refusals`) => {
  for (const stream of [false, true]) {
    const sent = fakes[protocol]!.requests.length;
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model, ...body, stream });
    const text = await res.text();
    expect(res.status, text).toBe(400);
    const error = (JSON.parse(text) as { error: { code: number; message: string; metadata: Record<string, unknown> } }).error;
    expect(error.code).toBe(400);
    expect(error.message).toMatch(message);
    expect(error.metadata).toMatchObject({ error_type: 'invalid_request', provider_name: expect.stringMatching(new RegExp(`^${protocol}-(refusals|media)$`)) });
    expect(fakes[protocol]!.requests.length).toBe(sent);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  }
};

describe.each(['anthropic', 'gemini'] as const)('%s: a conversation with nothing to answer', (protocol) => {
  const nothing = /messages: there is no user or assistant message with content to send/;

  it('a system prompt alone', async () => {
    await refused(protocol, { messages: [{ role: 'system', content: 'You are a test.' }] }, nothing);
  });

  it('a user message that is only "", or only empty text parts (with a system prompt)', async () => {
    await refused(protocol, { messages: [{ role: 'user', content: '' }] }, nothing);
    await refused(protocol, { messages: [{ role: 'system', content: 'You are a test.' }, { role: 'user', content: [{ type: 'text', text: '' }] }] }, nothing);
  });

  it('the refusal is not held against the endpoint: it answers the next conversation', async () => {
    await refused(protocol, { messages: [{ role: 'system', content: 'You are a test.' }] }, nothing);
    const res = await h.chat(user.key, { model: `test/${protocol}-refusals`, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { provider: string }).provider).toBe(`${protocol}-refusals`);
  });
});

describe('media URLs the protocol would refuse are a 400 naming the field', () => {
  const image = (url: string) => ({ messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url } }] }] });

  it('anthropic: a data: URL that is not base64 data, a link that is not http(s)', async () => {
    await refused('anthropic', image('data:image/png;base64'), /messages\[0\]\.content\[1\]\.image_url\.url is a data: URL that is not base64 data/, MEDIA_MODEL.anthropic);
    await refused('anthropic', image('file:///etc/passwd'), /messages\[0\]\.content\[1\]\.image_url\.url must be an http\(s\) URL or a base64 data: URL \(not file:\)/, MEDIA_MODEL.anthropic);
    await refused(
      'anthropic',
      { messages: [{ role: 'user', name: 'bob', content: [{ type: 'file', file: { filename: 'a.pdf', file_data: 'ftp://example.com/a.pdf' } }] }] },
      /messages\[0\]\.content\[0\]\.file\.file_data must be an http\(s\) URL or a base64 data: URL \(not ftp:\)/,
      MEDIA_MODEL.anthropic,
    );
  });

  it('gemini: a fileUri that is not http(s) (or gs://), a data: URL that is not base64 data', async () => {
    await refused('gemini', image('file:///etc/passwd'), /messages\[0\]\.content\[1\]\.image_url\.url must be an http\(s\) or gs:\/\/ URL or a base64 data: URL \(not file:\)/, MEDIA_MODEL.gemini);
    await refused('gemini', image('data:image/png;base64'), /messages\[0\]\.content\[1\]\.image_url\.url is a data: URL that is not base64 data/, MEDIA_MODEL.gemini);
    await refused(
      'gemini',
      { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: [{ type: 'file', file: { file_data: 'javascript:alert(1)' } }] }] },
      /messages\[2\]\.content\[0\]\.file\.file_data must be an http\(s\) or gs:\/\/ URL or a base64 data: URL \(not javascript:\)/,
      MEDIA_MODEL.gemini,
    );
  });

  it('http(s) links and base64 data URLs still go through', async () => {
    for (const protocol of ['anthropic', 'gemini'] as const) {
      for (const url of ['https://example.com/cat.png', 'data:image/png;base64,iVBORw0KGgo=']) {
        const res = await h.chat(user.key, { model: MEDIA_MODEL[protocol], ...image(url) });
        expect(res.status, `${protocol} ${url}`).toBe(200);
      }
    }
  });
});

describe('not refused where the protocol takes it', () => {
  it('an OpenAI-protocol upstream is sent a system prompt alone', async () => {
    const res = await h.chat(user.key, { model: 'test/openai-refusals', messages: [{ role: 'system', content: 'You are a test.' }], stream: true });
    expect(res.status).toBe(200);
    expect((await readSseResponse(res)).done).toBe(true);
    expect((fakes.openai!.requests.at(-1)!.body as { messages: unknown[] }).messages).toEqual([{ role: 'system', content: 'You are a test.' }]);
  });
});

describe("the Messages API (Anthropic's shape)", () => {
  it('a user message whose content is "" is a 400 invalid_request_error before the Anthropic upstream is called', async () => {
    const sent = fakes.anthropic!.requests.length;
    const res = await fetch(`${h.url}/api/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': user.key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'test/anthropic-refusals', max_tokens: 50, messages: [{ role: 'user', content: '' }] }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect(JSON.parse(text)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/no user or assistant message with content/) } });
    expect(fakes.anthropic!.requests.length).toBe(sent);
  });
});
