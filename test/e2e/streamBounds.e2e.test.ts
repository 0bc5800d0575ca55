/**
 * What a hostile or broken upstream, and a client that does not read, can make the server hold (QA s42 dos #1–3):
 * - one generation delivers at most maxOutputChars (32 characters a reserved output token, 1 Mi to 16 Mi): a provider
 *   that ignores max_tokens is cut there with `output_too_long`, on every path (a stream, a whole answer, GraphQL's
 *   live feed, content logging), billed as a cut stream within its reservation;
 * - a REST stream whose client stops reading stops reading its upstream (the fake's writes back up), on every skin,
 *   and at the call's deadline the client is taken for gone (cancelled, charged what it was sent; neither the idle
 *   timer nor the deadline is held against the provider);
 * - the live feeds of started generations keep at most GATEWAY_ANSWER_BUFFER_BYTES together, and a subscriber whose
 *   start is no longer kept is told so (TRUNCATED) instead of getting a partial replay silently.
 */
import http from 'node:http';
import net from 'node:net';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MIN_OUTPUT_CHARS } from '../../src/gateway/router.js';
import { eventually } from '../support/eventually.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { contentOf, costOf, promptBound, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 1, completion: 1 };
const MESSAGES = [{ role: 'user', content: 'hi' }];
const MiB = 1024 * 1024;

type Harness = GatewayHarness;

const liveEvents = async (h: Harness, key: string, id: string): Promise<any[]> => {
  const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` } });
  const events: any[] = [];
  try {
    for await (const event of client.iterate({ query: 'subscription ($id: ID!) { generation(id: $id) { type content skipped status error } }', variables: { id } })) {
      expect(event.errors).toBeUndefined();
      events.push(event.data!.generation);
    }
  } finally {
    await client.dispose();
  }
  return events;
};

const startGeneration = async (h: Harness, key: string, model: string): Promise<string> => {
  const data = await h.gqlOk(
    'mutation ($input: PromptInput!) { startGeneration(input: $input) { ... on StartedGeneration { generationId } ... on DomainError { message } } }',
    { input: { model, prompt: 'hi' } },
    key,
  );
  expect(data.startGeneration.generationId).toMatch(/^gen-/);
  return data.startGeneration.generationId as string;
};

const tokenText = (events: any[]) =>
  events
    .filter((e) => e.type === 'TOKEN')
    .map((e) => e.content)
    .join('');

describe('what one generation may deliver: about its max_tokens, not what the upstream sends', () => {
  let h: Harness;
  let user: Account;
  let fake: FakeProvider;
  // maxOutput 1,000 tokens: the floor applies, 1 Mi characters.
  const MODEL = 'flood/small';

  beforeAll(async () => {
    h = await startGatewayHarness();
    user = await h.openAccount({ credits: 1_000_000_000 });
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'flooder', model: MODEL, prices: PRICES, maxOutput: 1_000 });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('a stream past it is cut there: an error event naming output_too_long, the upstream closed, billed within the reservation', async () => {
    const before = await h.settledBalance(user.accountId);
    const first = fake.requests.length;
    fake.script({ flood: { chars: 64 * MiB } });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    const { events, done } = await readSseResponse(res);
    expect(done).toBe(false);
    const text = contentOf(events);
    expect(text.length).toBeGreaterThan(0);
    expect(text.length).toBeLessThanOrEqual(MIN_OUTPUT_CHARS);
    const terminal = events.at(-1);
    expect(terminal.choices[0].finish_reason).toBe('error');
    expect(terminal.error.message).toBe(`flooder sent more output than max_tokens allows for ${MODEL} (HTTP 502, server): the answer passed ${MIN_OUTPUT_CHARS} characters, more than 1000 tokens can hold`);
    // The gateway closed the upstream: nowhere near the 64 MiB it would have sent.
    expect(await fake.requests[first]!.outcome).toBe('aborted');
    expect(fake.requests[first]!.sentBytes).toBeLessThan(32 * MiB);
    expect(fake.requests.length - first).toBe(1);
    const after = await h.settledBalance(user.accountId);
    expect(after.reserved).toBe(0);
    // Billed as a cut stream: estimated from what was sent, held to max_tokens (the reservation's output).
    expect(after.settled - before.settled).toBe(costOf(PRICES, Math.ceil((2 + 16) / 4), 1_000));
    expect(after.settled - before.settled).toBeLessThanOrEqual(costOf(PRICES, promptBound(MESSAGES), 1_000));
  });

  it('a whole answer past it: a 502 naming output_too_long, asked once, nothing charged', async () => {
    const before = await h.settledBalance(user.accountId);
    const first = fake.requests.length;
    fake.script({ text: 'a'.repeat(MIN_OUTPUT_CHARS + 1) });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
    expect(body.error.message).toBe(`flooder sent more output than max_tokens allows for ${MODEL} (HTTP 502, server): the answer passed ${MIN_OUTPUT_CHARS} characters, more than 1000 tokens can hold`);
    expect(fake.requests.length - first).toBe(1);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it.each(['refusal', 'reasoning_details'] as const)('a stream of %s deltas is bounded as content is: cut with output_too_long, the upstream closed', async (field) => {
    const before = await h.settledBalance(user.accountId);
    const first = fake.requests.length;
    fake.script({ flood: { chars: 64 * MiB, field } });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    const { events, done, text } = await readSseResponse(res);
    expect(done).toBe(false);
    // About the bound's 1 Mi characters (and their chunks' JSON), not the 64 Mi the upstream had for it.
    expect(text.length).toBeGreaterThan(MIN_OUTPUT_CHARS / 2);
    expect(text.length).toBeLessThan(2 * MiB);
    const terminal = events.at(-1);
    expect(terminal.choices[0].finish_reason).toBe('error');
    expect(terminal.error.message).toBe(`flooder sent more output than max_tokens allows for ${MODEL} (HTTP 502, server): the answer passed ${MIN_OUTPUT_CHARS} characters, more than 1000 tokens can hold`);
    expect(await fake.requests[first]!.outcome).toBe('aborted');
    expect(fake.requests[first]!.sentBytes).toBeLessThan(32 * MiB);
    const after = await h.settledBalance(user.accountId);
    expect(after.reserved).toBe(0);
    expect(after.settled - before.settled).toBeLessThanOrEqual(costOf(PRICES, promptBound(MESSAGES), 1_000));
  });

  const wholeAnswer = (message: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    id: 'chatcmpl-whole',
    object: 'chat.completion',
    created: 1,
    model: 'upstream',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok', ...message }, finish_reason: 'stop', ...extra }],
    usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 },
  });
  const past = 'a'.repeat(MIN_OUTPUT_CHARS + 1);

  it.each([
    ['a refusal', wholeAnswer({ content: null, refusal: past })],
    ['reasoning_details', wholeAnswer({ reasoning_details: [{ type: 'reasoning.text', text: past }] })],
    ['logprobs it was not asked for', wholeAnswer({}, { logprobs: { content: [{ token: past, logprob: 0, bytes: [], top_logprobs: [] }] } })],
  ])('a whole answer with %s past it: a 502 naming output_too_long, nothing charged', async (_what, body) => {
    const before = await h.settledBalance(user.accountId);
    fake.script({ body });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES });
    expect(res.status).toBe(502);
    const { error } = (await res.json()) as { error: { message: string } };
    expect(error.message).toContain('sent more output than max_tokens allows');
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it('logprobs asked for are allowed for: top_logprobs 20 over 1,000 tokens is past 1 Mi characters and still delivered whole', async () => {
    const entry = (token: string) => ({ token, logprob: -0.123456789, bytes: [...Buffer.from(token)] });
    // 1,000 tokens of 4 characters, each with 20 alternatives: about 1.7 Mi characters of JSON.
    const content = Array.from({ length: 1_000 }, (_, i) => ({ ...entry(`t${String(i).padStart(3, '0')}`), top_logprobs: Array.from({ length: 20 }, (_, j) => entry(`a${j}`.padEnd(4, 'x'))) }));
    expect(JSON.stringify({ content }).length).toBeGreaterThan(MIN_OUTPUT_CHARS);
    fake.script({ body: wholeAnswer({}, { logprobs: { content } }) });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, logprobs: true, top_logprobs: 20 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { logprobs: { content: unknown[] } }[] };
    expect(body.choices[0]!.logprobs.content).toHaveLength(1_000);
  });

  it('content logging keeps what the client got, at most the bound; the cut is the provider’s output_too_long, not a connection failure', async () => {
    const { body } = await h.gql('mutation { setContentLogging(enabled: true) { ... on Account { contentLogging } } }', {}, user.key);
    expect(body.data.setContentLogging.contentLogging).toBe(true);
    fake.script({ flood: { chars: 64 * MiB } });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    const { events } = await readSseResponse(res);
    const id = res.headers.get('x-generation-id')!;
    const record = await h.generation(user.key, id);
    expect(record.finish_reason).toBe('error');
    expect(record.switchyard.attempts).toEqual([expect.objectContaining({ ok: false, errorCode: 'output_too_long' })]);
    expect(JSON.stringify(record)).not.toContain('connection failed');
    const stored = await fetch(`${h.url}/api/v1/generation/content?id=${id}`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(stored.status).toBe(200);
    const { data } = (await stored.json()) as { data: { output: { completion: string } } };
    expect(data.output.completion).toBe(contentOf(events));
    expect(data.output.completion.length).toBeLessThanOrEqual(MIN_OUTPUT_CHARS);
  });

  it('startGeneration: the feed ends FAILED with output_too_long, and a late subscriber replays at most the bound', async () => {
    fake.script({ flood: { chars: 64 * MiB } });
    const id = await startGeneration(h, user.key, MODEL);
    // Subscribed once it has ended: the whole replay comes from what the feed kept.
    await h.generation(user.key, id);
    const events = await liveEvents(h, user.key, id);
    const text = tokenText(events);
    expect(text.length).toBeGreaterThan(0);
    expect(text.length).toBeLessThanOrEqual(MIN_OUTPUT_CHARS);
    expect(events.some((e) => e.type === 'TRUNCATED')).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: 'DONE', status: 'FAILED', error: { type: 'server', message: expect.stringContaining('sent more output than max_tokens allows') } });
  });
});

/**
 * A streamed POST whose client reads the first bytes of the answer, then stops reading (and never closes); `drain`
 * reads on to the end of what the server sent, and resolves once its connection has closed, with what it read then.
 */
const stalledStream = (url: string, path: string, key: string, body: unknown) =>
  new Promise<{ status: number; generationId: string; drain(): Promise<string> }>((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } }, (res) => {
      const closed = new Promise<void>((done) => res.socket.once('close', () => done()));
      res.on('error', () => undefined);
      res.once('data', () => res.pause());
      const rest: Buffer[] = [];
      resolve({
        status: res.statusCode ?? 0,
        generationId: String(res.headers['x-generation-id']),
        drain: async () => {
          res.on('data', (data: Buffer) => rest.push(data));
          res.resume();
          await closed;
          return Buffer.concat(rest).toString('utf8');
        },
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });

describe('a client that does not read: the upstream is not read for it, and at the deadline it is taken for gone', () => {
  let h: Harness;
  let user: Account;
  let fake: FakeProvider;
  const MODEL = 'flood/big';
  // Within the output bound (16 Mi characters at 2,000,000 max output tokens), so nothing but the client stops it:
  // 3 bytes a character, 45 MiB on the wire, far beyond what the sockets' buffers hold.
  const FLOOD = 15 * MiB;

  beforeAll(async () => {
    h = await startGatewayHarness({
      GATEWAY_REQUEST_TIMEOUT_MS: '6000',
      GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '5000',
      // Shorter than the client's stall: the wait for it must not count as the provider's silence.
      GATEWAY_STREAM_IDLE_TIMEOUT_MS: '1000',
    });
    user = await h.openAccount({ credits: 1_000_000_000 });
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'firehose', model: MODEL, prices: PRICES, maxOutput: 2_000_000, contextLength: 4_000_000 });
  });
  afterAll(async () => {
    await h.stop();
  });

  const bodies: Record<string, unknown> = {
    '/api/v1/chat/completions': { model: MODEL, messages: MESSAGES, stream: true },
    '/api/v1/messages': { model: MODEL, max_tokens: 2_000_000, messages: MESSAGES, stream: true },
    '/api/v1/responses': { model: MODEL, input: 'hi', stream: true },
  };

  it.each(Object.keys(bodies))('%s: the upstream backs up, then the stream is cut as the client’s, charged within the reservation', async (path) => {
    const before = await h.settledBalance(user.accountId);
    const first = fake.requests.length;
    fake.script({ flood: { chars: FLOOD, char: '€' } });
    const stalled = await stalledStream(h.url, path, user.key, bodies[path]);
    expect(stalled.status).toBe(200);
    const upstream = await eventually('the fake upstream to be sent its request', () => fake.requests[first]);
    // Its writes wait for the gateway, which waits for the client.
    await eventually('the upstream’s writes to back up', () => upstream.writeBlocked);
    // At the call's deadline the client that never read again is taken for gone: the upstream's connection closed, most
    // of the flood never read; the client's closed too (it sees that once it reads again).
    expect(await upstream.outcome).toBe('aborted');
    expect(upstream.sentBytes).toBeLessThan((FLOOD * 3) / 2);
    // What the server could still write, it did: the stream ends with the route's error event (not a silent close).
    const rest = await stalled.drain();
    expect(rest).toContain('the client read nothing of the stream for 1000 ms');
    expect(rest).not.toContain('[DONE]');
    const record = await h.generation(user.key, stalled.generationId);
    // The client's doing: cancelled, not the provider's timeout (idle or deadline), nothing held against its endpoint.
    expect(record.switchyard).toMatchObject({ status: 'cancelled', error: null, usage_source: 'estimated' });
    expect(record.switchyard.attempts).toEqual([expect.objectContaining({ ok: true, errorCode: null })]);
    const after = await h.settledBalance(user.accountId);
    expect(after.reserved).toBe(0);
    expect(after.settled - before.settled).toBeGreaterThan(0);
    expect(after.settled - before.settled).toBeLessThanOrEqual(costOf(PRICES, promptBound(MESSAGES) + 64, 2_000_000));
  });
});

/**
 * A raw-socket client that reads all it is sent, steadily, at about `bytesPerSecond` (each read waits the time it
 * would take at that rate), until the server closes; the answer's status line and its body, de-chunked.
 */
const slowReader = (url: string, path: string, key: string, body: unknown, bytesPerSecond: number) =>
  new Promise<{ head: string; body: string }>((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const payload = JSON.stringify(body);
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
      );
    });
    const parts: Buffer[] = [];
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      socket.pause();
      setTimeout(() => socket.resume(), (data.length * 1000) / bytesPerSecond);
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(parts);
      const end = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, end).toString('latin1');
      // Transfer-Encoding: chunked; a chunk cut short keeps what came of it.
      const chunks: Buffer[] = [];
      let at = end + 4;
      for (;;) {
        const line = raw.indexOf('\r\n', at);
        if (line < 0) break;
        const size = parseInt(raw.subarray(at, line).toString('latin1'), 16);
        if (!(size > 0)) break;
        chunks.push(raw.subarray(line + 2, line + 2 + size));
        at = line + 2 + size + 2;
      }
      resolve({ head, body: Buffer.concat(chunks).toString('utf8') });
    });
  });

describe('a client that reads slowly but steadily is not cut at the deadline: it gets the whole answer', () => {
  let h: Harness;
  let user: Account;
  let fake: FakeProvider;
  const MODEL = 'flood/steady';
  // An honest answer (4 characters a delta, within its bound) of about 6 MB of SSE: far more than the sockets hold, and
  // longer than the call's deadline to read at 1 MB/s.
  const CHARS = 180_000;

  beforeAll(async () => {
    h = await startGatewayHarness({
      GATEWAY_REQUEST_TIMEOUT_MS: '2500',
      GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '2000',
      // The window a client must show progress in: the kernel tells of it only each time about a third of the
      // socket's send buffer was taken (up to ~1.4 MB), more than a second at this client's rate.
      GATEWAY_STREAM_IDLE_TIMEOUT_MS: '5000',
    });
    user = await h.openAccount({ credits: 1_000_000_000 });
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'steady', model: MODEL, prices: PRICES, maxOutput: 100_000, contextLength: 200_000 });
  });
  afterAll(async () => {
    await h.stop();
  });

  // Multi-byte text too: Node 24 lost the response's 'drain' for it (written as strings), so the stream waited for a
  // client that was reading, and cut it as gone at the deadline (src/gateway/skins/sseGeneration.ts).
  it.each([
    ['ASCII', 'a'],
    ['multi-byte', '€'],
  ])('%s text: past the deadline the upstream is read to its end and settled as completed; the client is delivered the rest and [DONE]', async (_text, char) => {
    const before = await h.settledBalance(user.accountId);
    const first = fake.requests.length;
    fake.script({ flood: { chars: CHARS, chunkChars: 4, char } });
    const { head, body } = await slowReader(h.url, '/api/v1/chat/completions', user.key, { model: MODEL, messages: MESSAGES, stream: true }, 1_000_000);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const generationId = /x-generation-id: (\S+)/i.exec(head)![1]!;
    const events = body
      .split('\n\n')
      .filter((block) => block.startsWith('data: '))
      .map((block) => block.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((data) => JSON.parse(data));
    expect(chunks.some((chunk) => chunk.error !== undefined)).toBe(false);
    expect(contentOf(chunks)).toBe(char.repeat(CHARS));
    expect(await fake.requests[first]!.outcome).toBe('completed');
    const record = await h.generation(user.key, generationId);
    expect(record.finish_reason).toBe('stop');
    expect(record.switchyard).toMatchObject({ status: 'completed', error: null, usage_source: 'provider' });
    const after = await h.settledBalance(user.accountId);
    expect(after.reserved).toBe(0);
    expect(after.settled - before.settled).toBe(costOf(PRICES, record.tokens_prompt, CHARS / 4));
  });
});

describe('the live feeds keep at most GATEWAY_ANSWER_BUFFER_BYTES together', () => {
  let h: Harness;
  let user: Account;
  let fake: FakeProvider;
  const MODEL = 'flood/feed';
  // Two of these fill more than the 1 MiB budget (2 bytes a character).
  const CHARS = 300_000;

  beforeAll(async () => {
    h = await startGatewayHarness({ GATEWAY_ANSWER_BUFFER_BYTES: String(MiB) });
    user = await h.openAccount({ credits: 1_000_000_000 });
    fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'feeder', model: MODEL, prices: PRICES, maxOutput: 100_000, contextLength: 200_000 });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('a feed that ended gives its tokens up first: a late subscriber is told how much it misses (TRUNCATED), then gets the end', async () => {
    fake.script({ flood: { chars: CHARS } });
    const early = await startGeneration(h, user.key, MODEL);
    const whole = await liveEvents(h, user.key, early);
    expect(tokenText(whole)).toBe('a'.repeat(CHARS));
    expect(whole.at(-1)).toMatchObject({ type: 'DONE', status: 'COMPLETED' });

    fake.script({ flood: { chars: CHARS } });
    const later = await startGeneration(h, user.key, MODEL);
    const second = await liveEvents(h, user.key, later);
    expect(second.some((e) => e.type === 'TRUNCATED')).toBe(false);
    expect(tokenText(second)).toBe('a'.repeat(CHARS));

    const replay = await liveEvents(h, user.key, early);
    expect(replay.map((e) => e.type)).toEqual(['TRUNCATED', 'DONE']);
    expect(replay[0].skipped).toBe(CHARS);
    expect(replay[1]).toMatchObject({ type: 'DONE', status: 'COMPLETED' });
  });
});
