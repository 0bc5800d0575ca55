/**
 * Billing at the edges of the gateway: OpenRouter's 402 (and the clamp that avoids a surprise one), key limits,
 * the free tier's 429 with Retry-After, and a client that disconnects mid-stream paying for what was generated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { costOf, promptBound, promptEstimate, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const CENT = 10_000_000;
const DEAR = { prompt: 1_000, completion: 100_000 }; // $1 / $100 per million tokens
const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];

let h: GatewayHarness;
let dear: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  dear = await h.fakeEndpoint({ protocol: 'openai', slug: 'dear', model: 'test/dear', prices: DEAR, maxOutput: 1_000 });
  const free = await h.fakeEndpoint({ protocol: 'openai', slug: 'freebies', model: 'test/freebie', prices: { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }, variants: ['free'] });
  free.setDefault({ usage: { promptTokens: 5, completionTokens: 5 } });
});
afterAll(async () => {
  await h.stop();
});

describe('402 when the worst case is not affordable', () => {
  let poor: Account;
  beforeAll(async () => {
    poor = await h.openAccount({ credits: CENT });
  });

  it("refuses with OpenRouter's message, the affordable token count and the limit's source, reserving nothing", async () => {
    const res = await h.chat(poor.key, { model: 'test/dear', messages: MESSAGES, max_tokens: 500 });
    expect(res.status).toBe(402);
    const { error } = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
    const affordable = Math.floor((CENT - promptBound(MESSAGES) * DEAR.prompt) / DEAR.completion);
    expect(error.code).toBe(402);
    expect(error.message).toContain(`This request requires more credits, or fewer max_tokens. You requested up to 500 tokens, but can only afford ${affordable}`);
    expect(error.metadata).toMatchObject({ error_type: 'payment_required', limit_source: 'credits', requested_tokens: 500, affordable_tokens: affordable });
    const balance = await h.settledBalance(poor.accountId);
    expect(balance).toMatchObject({ settled: 0, reserved: 0, available: CENT });
  });

  it('without max_tokens, clamps the output to what the credits pay for instead of refusing', async () => {
    dear.script({ usage: { promptTokens: 10, completionTokens: 20 } });
    const res = await h.chat(poor.key, { model: 'test/dear', messages: MESSAGES });
    expect(res.status).toBe(200);
    const affordable = Math.floor((CENT - promptBound(MESSAGES) * DEAR.prompt) / DEAR.completion);
    expect((dear.requests.at(-1)!.body as { max_tokens: number }).max_tokens).toBe(affordable);
    const balance = await h.settledBalance(poor.accountId);
    expect(balance.settled).toBe(costOf(DEAR, 10, 20));
    expect(balance.reserved).toBe(0);
  });

  it("a key's spending limit refuses with limit_source key_limit", async () => {
    const rich = await h.openAccount({ credits: 100 * CENT });
    const { body } = await h.gql(
      `mutation { createApiKey(name: "capped", limit: ${CENT}, limitReset: DAILY) { ... on CreatedApiKey { secret } ... on DomainError { message } } }`,
      {},
      rich.key,
    );
    const capped = body.data.createApiKey.secret as string;
    const res = await h.chat(capped, { model: 'test/dear', messages: MESSAGES, max_tokens: 500 });
    expect(res.status).toBe(402);
    const { error } = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
    expect(error.metadata).toMatchObject({ error_type: 'payment_required', limit_source: 'key_limit' });
    expect(error.message).toContain('You requested up to 500 tokens, but can only afford 99');
  });

  it('a key past its limit is told its limit is spent, on a free model too: not to lower max_tokens it can "afford" (QA s41 #6)', async () => {
    const rich = await h.openAccount({ credits: 100 * CENT });
    const { body } = await h.gql(
      `mutation { createApiKey(name: "small", limit: ${CENT}, limitReset: DAILY) { ... on CreatedApiKey { secret key { id } } ... on DomainError { message } } }`,
      {},
      rich.key,
    );
    const small = body.data.createApiKey.secret as string;
    dear.script({ usage: { promptTokens: 10, completionTokens: 20 } });
    expect((await h.chat(small, { model: 'test/dear', messages: MESSAGES, max_tokens: 50 })).status).toBe(200);
    await h.settledBalance(rich.accountId);
    const spent = costOf(DEAR, 10, 20);
    // The limit lowered below what the key spent: nothing is left, whatever a request costs.
    await h.gqlOk(`mutation ($id: ID!) { setApiKeyLimit(id: $id, limit: "${spent - 1_000}", limitReset: DAILY) { __typename } }`, { id: body.data.createApiKey.key.id }, rich.key);
    for (const model of ['test/freebie:free', 'test/dear']) {
      const res = await h.chat(small, { model, messages: MESSAGES, max_tokens: 5 });
      expect(res.status, model).toBe(402);
      const { error } = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
      expect(error.message, model).toBe(
        `This key's spending limit is used up: it has spent $0.00201 of its daily limit of $0.002009, so it is refused every request, free models included, until the limit resets or is raised. Raise this key's limit or wait for it to reset.`,
      );
      expect(error.message).not.toMatch(/max_tokens|afford/);
      expect(error.metadata, model).toMatchObject({ error_type: 'payment_required', limit_source: 'key_limit', requested_tokens: 5, affordable_tokens: 0, limit: spent - 1_000, used: spent, limit_reset: 'daily' });
    }
  });
});

describe('free models', () => {
  it('`:free` reserves nothing, and the 21st request in a minute is a 429 with Retry-After', async () => {
    const user = await h.openAccount();
    for (let i = 0; i < 20; i++) {
      const res = await h.chat(user.key, { model: 'test/freebie:free', messages: MESSAGES });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { model: string }).model).toBe('test/freebie:free');
    }
    const limited = await h.chat(user.key, { model: 'test/freebie:free', messages: MESSAGES });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const { error } = (await limited.json()) as { error: { metadata: Record<string, unknown> } };
    expect(error.metadata).toMatchObject({ error_type: 'rate_limit_exceeded', limit_source: 'free_tier_minute' });
    expect(await h.settledBalance(user.accountId)).toMatchObject({ settled: 0, reserved: 0 });
  });

  it('a model with only free endpoints must be asked for as :free', async () => {
    const user = await h.openAccount();
    const res = await h.chat(user.key, { model: 'test/freebie', messages: MESSAGES });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('ask for test/freebie:free');
  });
});

/** The generation's record: REST (OpenRouter's) and GraphQL. */
const recordOf = async (key: string, generationId: string) => {
  const rest = (await h.generation(key, generationId)) as { cancelled: boolean; tokens_prompt: number; tokens_completion: number; switchyard: { status: string; usage_source: string; cost_nanodollars: number } };
  const { body } = await h.gql('query ($id: ID!) { generation(id: $id) { status clientGone cost } }', { id: generationId }, key);
  return { rest, graphql: body.data.generation as { status: string; clientGone: boolean; cost: string } };
};

describe("a generation's record and its settlement", () => {
  it('the record is written after the settlement, never before: a crash between them leaves a charge without its record (ANSWER_LOST), never a record of a charge that was not made', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    for (const stream of [false, true]) {
      const res = await h.chat(user.key, { model: 'test/dear', messages: MESSAGES, max_tokens: 20, stream });
      const generationId = res.headers.get('x-generation-id')!;
      await res.text();
      await h.running.core.gateway.idle();
      const events = await h.running.core.eventStore.readAll();
      const settled = events.find((e) => e.type === 'ReservationSettled' && (e.data as { generationId?: string }).generationId === generationId);
      const recorded = events.find((e) => e.type === 'GenerationCompleted' && (e.data as { generationId?: string }).generationId === generationId);
      expect(settled, 'settled').toBeDefined();
      expect(recorded, 'recorded').toBeDefined();
      expect(recorded!.position, `stream: ${stream}`).toBeGreaterThan(settled!.position);
    }
  });
});

describe('a client that disconnects mid-stream', () => {
  it('aborts the upstream call and is charged for the prompt and the tokens it was sent', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    dear.script({ slowTokenMs: 300 });
    const res = await h.chat(user.key, { model: 'test/dear', messages: MESSAGES, stream: true, max_tokens: 100 });
    const generationId = res.headers.get('x-generation-id')!;
    const reader = res.body!.getReader();
    let text = '';
    let contentChunks = 0;
    const decoder = new TextDecoder();
    while (contentChunks < 2) {
      const { value } = await reader.read();
      for (const line of decoder.decode(value).split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const content = JSON.parse(line.slice(6)).choices?.[0]?.delta?.content;
        if (content) {
          text += content;
          contentChunks += 1;
        }
      }
    }
    // Closing the body closes the connection: the client is gone.
    await reader.cancel();
    expect(text).toBe('Echo: Say ');
    expect(await dear.requests.at(-1)!.outcome).toBe('aborted');
    const balance = await h.settledBalance(user.accountId);
    expect(balance.settled).toBe(costOf(DEAR, promptEstimate(MESSAGES), Math.ceil(text.length / 4)));
    expect(balance.reserved).toBe(0);
    const record = (await (await fetch(`${h.url}/api/v1/generation?id=${generationId}`, { headers: { authorization: `Bearer ${user.key}` } })).json()) as { data: any };
    expect(record.data).toMatchObject({ cancelled: true, streamed: true, tokens_completion: Math.ceil(text.length / 4) });
    expect(record.data.switchyard.usage_source).toBe('estimated');
  });
});

describe('a client that disconnects after the finish reason, before the usage chunk', () => {
  it("reads the provider's usage on to the end and charges it, not an estimate (the answer was whole)", async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    // OpenAI's usage chunk comes after the one with the finish reason: here 300 ms after it.
    dear.script({ slowTokenMs: 300, usage: { promptTokens: 10, completionTokens: 20 } });
    const res = await h.chat(user.key, { model: 'test/dear', messages: MESSAGES, stream: true, stream_options: { include_usage: true }, max_tokens: 100 });
    const generationId = res.headers.get('x-generation-id')!;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let finished = false;
    while (!finished) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before its finish reason');
      for (const line of decoder.decode(value).split('\n')) {
        if (line.startsWith('data: {') && JSON.parse(line.slice(6)).choices?.[0]?.finish_reason) finished = true;
      }
    }
    await reader.cancel();
    expect(await dear.requests.at(-1)!.outcome).toBe('completed');
    const balance = await h.settledBalance(user.accountId);
    expect(balance.settled).toBe(costOf(DEAR, 10, 20));
    const { rest } = await recordOf(user.key, generationId);
    expect(rest).toMatchObject({ tokens_prompt: 10, tokens_completion: 20, switchyard: { status: 'completed', usage_source: 'provider', cost_nanodollars: costOf(DEAR, 10, 20) } });
  });
});

describe('a client that disconnects from a non-streaming call', () => {
  it('lets the call finish and charges it in full, whatever the provider (OpenRouter bills non-streaming calls whole)', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    // The client leaves once the call reached the provider, which answers 2 s later: the gateway sees it gone first.
    dear.script({ latencyMs: 2_000, usage: { promptTokens: 10, completionTokens: 20 } });
    const reached = dear.requests.length + 1;
    const client = new AbortController();
    const call = fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'test/dear', messages: MESSAGES, max_tokens: 100 }),
      signal: client.signal,
    });
    void eventually('the call to reach the provider', () => dear.requests.length >= reached).then(() => client.abort());
    await expect(call).rejects.toThrow(/abort/i);
    expect(await dear.requests.at(-1)!.outcome).toBe('completed');
    expect(await h.settledBalance(user.accountId)).toMatchObject({ settled: costOf(DEAR, 10, 20), reserved: 0 });
    // Undelivered, and recorded so (QA s43 #3): completed and charged whole, with OpenRouter's `cancelled`.
    const { body } = await h.gql('{ generations(first: 5) { edges { node { id } } } }', {}, user.key);
    const [generationId] = (body.data.generations.edges as { node: { id: string } }[]).map((e) => e.node.id);
    const { rest, graphql } = await recordOf(user.key, generationId!);
    expect(rest).toMatchObject({ cancelled: true, streamed: false, tokens_completion: 20, switchyard: { status: 'completed', usage_source: 'provider', cost_nanodollars: costOf(DEAR, 10, 20) } });
    expect(graphql).toMatchObject({ status: 'COMPLETED', clientGone: true });
  });

  it('on Responses and Messages too: charged whole and recorded as undelivered', async () => {
    for (const [path, body] of [
      ['/api/v1/responses', { model: 'test/dear', input: 'Say hello to the gateway', max_output_tokens: 100 }],
      ['/api/v1/messages', { model: 'test/dear', messages: MESSAGES, max_tokens: 100 }],
    ] as const) {
      const user = await h.openAccount({ credits: 100 * CENT });
      dear.script({ latencyMs: 2_000, usage: { promptTokens: 10, completionTokens: 20 } });
      const reached = dear.requests.length + 1;
      const client = new AbortController();
      const call = fetch(`${h.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
        body: JSON.stringify(body),
        signal: client.signal,
      });
      void eventually('the call to reach the provider', () => dear.requests.length >= reached).then(() => client.abort());
      await expect(call, path).rejects.toThrow(/abort/i);
      expect(await dear.requests.at(-1)!.outcome, path).toBe('completed');
      expect(await h.settledBalance(user.accountId), path).toMatchObject({ settled: costOf(DEAR, 10, 20), reserved: 0 });
      const { body: list } = await h.gql('{ generations(first: 5) { edges { node { status clientGone } } } }', {}, user.key);
      expect(list.data.generations.edges, path).toEqual([{ node: { status: 'COMPLETED', clientGone: true } }]);
    }
  });

  it('one whose client waits for its answer is not marked cancelled', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    dear.script({ usage: { promptTokens: 10, completionTokens: 20 } });
    const res = await h.chat(user.key, { model: 'test/dear', messages: MESSAGES, max_tokens: 100 });
    expect(res.status).toBe(200);
    await res.text();
    const { rest, graphql } = await recordOf(user.key, res.headers.get('x-generation-id')!);
    expect(rest).toMatchObject({ cancelled: false, streamed: false, switchyard: { status: 'completed' } });
    expect(graphql).toMatchObject({ status: 'COMPLETED', clientGone: false });
  });
});

describe('a client that disconnects from a provider that cannot cancel', () => {
  const SET = `mutation ($provider: String!, $cancellable: Boolean!) {
    setProviderCancellation(provider: $provider, cancellable: $cancellable) { ... on Provider { slug cancellable } ... on DomainError { code message } } }`;
  const setCancellable = async (provider: string, cancellable: boolean, key: string) => (await h.gql(SET, { provider, cancellable }, key)).body;
  let stubborn: FakeProvider;
  let owner: Account;

  beforeAll(async () => {
    owner = await h.openAccount({ roles: ['provider'] });
    stubborn = await h.fakeEndpoint({ protocol: 'openai', slug: 'stubborn', model: 'stubborn/dear', prices: DEAR, maxOutput: 1_000, owner: owner.key });
  });

  it("is stated by the provider's owner or an admin, and by no other account", async () => {
    const providers = async () => (await (await fetch(`${h.url}/api/v1/providers`)).json()) as { data: { slug: string; cancellable: boolean }[] };
    // Cancellable until stated otherwise.
    expect((await providers()).data.find((p) => p.slug === 'stubborn')).toMatchObject({ cancellable: true });
    const other = await h.openAccount({ roles: ['provider'] });
    expect(await setCancellable('stubborn', false, other.key)).toEqual({ data: { setProviderCancellation: { code: 'FORBIDDEN', message: 'Provider stubborn belongs to another account' } } });
    const user = await h.openAccount();
    expect(JSON.stringify(await setCancellable('stubborn', false, user.key))).toMatch(/FORBIDDEN|Not authorized/);
    expect(await setCancellable('stubborn', false, owner.key)).toEqual({ data: { setProviderCancellation: { slug: 'stubborn', cancellable: false } } });
    expect(await setCancellable('stubborn', true, ADMIN_KEY)).toEqual({ data: { setProviderCancellation: { slug: 'stubborn', cancellable: true } } });
    expect(await setCancellable('stubborn', false, ADMIN_KEY)).toEqual({ data: { setProviderCancellation: { slug: 'stubborn', cancellable: false } } });
    expect((await setCancellable('no-such-provider', false, ADMIN_KEY)).data.setProviderCancellation).toMatchObject({ code: 'NOT_FOUND' });
    expect((await providers()).data.find((p) => p.slug === 'stubborn')).toMatchObject({ cancellable: false });
    const { body } = await h.gql('{ providers { slug cancellable } }', {});
    expect(body.data.providers).toContainEqual({ slug: 'stubborn', cancellable: false });
    // The seed says so of the providers OpenRouter lists as going on after a cancel; the others keep the default.
    expect(body.data.providers).toEqual(expect.arrayContaining([{ slug: 'groq', cancellable: false }, { slug: 'google-ai-studio', cancellable: false }, { slug: 'openai', cancellable: true }]));
  });

  it('mid-stream: reads the answer to its end and charges the full usage; the record says completed and cancelled', async () => {
    await setCancellable('stubborn', false, owner.key);
    const user = await h.openAccount({ credits: 100 * CENT });
    stubborn.script({ slowTokenMs: 200, usage: { promptTokens: 10, completionTokens: 20 } });
    const res = await h.chat(user.key, { model: 'stubborn/dear', messages: MESSAGES, stream: true, max_tokens: 100 });
    const generationId = res.headers.get('x-generation-id')!;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let contentChunks = 0;
    while (contentChunks < 2) {
      const { value } = await reader.read();
      for (const line of decoder.decode(value).split('\n')) if (line.startsWith('data: ') && JSON.parse(line.slice(6)).choices?.[0]?.delta?.content) contentChunks += 1;
    }
    await reader.cancel();
    // The upstream call was not aborted: the provider generated, and bills, the whole answer.
    expect(await stubborn.requests.at(-1)!.outcome).toBe('completed');
    const balance = await h.settledBalance(user.accountId);
    expect(balance.settled).toBe(costOf(DEAR, 10, 20));
    expect(balance.reserved).toBe(0);
    const { rest, graphql } = await recordOf(user.key, generationId);
    expect(rest).toMatchObject({ cancelled: true, tokens_prompt: 10, tokens_completion: 20, switchyard: { status: 'completed', usage_source: 'provider', cost_nanodollars: costOf(DEAR, 10, 20) } });
    expect(graphql).toMatchObject({ status: 'COMPLETED', clientGone: true });
  });

  it('before the first token: the call is made whole and charged all the same', async () => {
    await setCancellable('stubborn', false, owner.key);
    const user = await h.openAccount({ credits: 100 * CENT });
    stubborn.script({ latencyMs: 2_000, usage: { promptTokens: 10, completionTokens: 20 } });
    const reached = stubborn.requests.length + 1;
    const client = new AbortController();
    const call = fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: 'stubborn/dear', messages: MESSAGES, stream: true, max_tokens: 100 }),
      signal: client.signal,
    });
    // Headers wait for the first token: the client leaves with nothing, once the call reached the provider (which
    // answers 2 s later: the gateway sees the client gone first).
    void eventually('the call to reach the provider', () => stubborn.requests.length >= reached).then(() => client.abort());
    await expect(call).rejects.toThrow(/abort/i);
    expect(await stubborn.requests.at(-1)!.outcome).toBe('completed');
    const balance = await h.settledBalance(user.accountId);
    expect(balance).toMatchObject({ settled: costOf(DEAR, 10, 20), reserved: 0 });
    const { body } = await h.gql('{ generations(first: 5) { edges { node { id } } } }', {}, user.key);
    const [generationId] = (body.data.generations.edges as { node: { id: string } }[]).map((e) => e.node.id);
    const { rest, graphql } = await recordOf(user.key, generationId!);
    expect(rest).toMatchObject({ cancelled: true, tokens_completion: 20, switchyard: { status: 'completed', usage_source: 'provider' } });
    expect(graphql).toMatchObject({ status: 'COMPLETED', clientGone: true });
  });

  it('a stream its client reads to the end is not marked cancelled', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    stubborn.script({ usage: { promptTokens: 10, completionTokens: 20 } });
    const res = await h.chat(user.key, { model: 'stubborn/dear', messages: MESSAGES, stream: true, max_tokens: 100 });
    await res.text();
    const { rest, graphql } = await recordOf(user.key, res.headers.get('x-generation-id')!);
    expect(rest).toMatchObject({ cancelled: false, switchyard: { status: 'completed' } });
    expect(graphql).toMatchObject({ status: 'COMPLETED', clientGone: false });
  });
});

describe('the generation record right after the answer', () => {
  it('GET /api/v1/generation finds it at once, though its append waits for the next reservation and the read models gather', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    for (let i = 0; i < 5; i++) {
      dear.script({ usage: { promptTokens: 10, completionTokens: 20 } });
      const res = await h.chat(user.key, { model: 'test/dear', messages: MESSAGES });
      expect(res.status).toBe(200);
      const { id } = (await res.json()) as { id: string };
      // No wait of any kind: the client asks as soon as it has the answer, as OpenRouter's clients do for the cost.
      const record = await fetch(`${h.url}/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${user.key}` } });
      expect(record.status).toBe(200);
      const { data } = (await record.json()) as { data: Record<string, unknown> };
      expect(data).toMatchObject({ id, model: 'test/dear', tokens_prompt: 10, tokens_completion: 20, total_cost: costOf(DEAR, 10, 20) / 1e9 });
    }
    // A generation that does not exist is still a plain 404, without waiting for anything.
    const missing = await fetch(`${h.url}/api/v1/generation?id=gen-0000000000000000000000000`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(missing.status).toBe(404);
  });
});

describe("a provider's usage report that is not token counts", () => {
  it('negative counts are no report: the call is billed on estimates, never free, and the generation says so', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    const text = 'A perfectly ordinary answer of some length';
    for (const stream of [false, true]) {
      dear.script({ text, usage: { promptTokens: -50, completionTokens: -100 } });
      const res = await h.chat(user.key, { model: 'test/dear', messages: MESSAGES, stream });
      expect(res.status).toBe(200);
      await res.text();
    }
    const balance = await h.settledBalance(user.accountId);
    const each = costOf(DEAR, promptEstimate(MESSAGES), Math.ceil(text.length / 4));
    expect(each).toBeGreaterThan(0);
    expect(balance.settled).toBe(2 * each);
    expect(balance.reserved).toBe(0);
  });
});

describe('a price changed while a request is in flight', () => {
  it('bills the request at the prices it was admitted on; the next request pays the new ones', async () => {
    const user = await h.openAccount({ credits: 100 * CENT });
    const slow = await h.fakeEndpoint({ protocol: 'openai', slug: 'repricer', model: 'test/repriced', prices: DEAR, maxOutput: 100 });
    // In flight for 2 s from when the provider has it (admitted, then): the price changes meanwhile.
    slow.setDefault({ latencyMs: 2_000, usage: { promptTokens: 10, completionTokens: 10 } });
    const inFlight = h.chat(user.key, { model: 'test/repriced', messages: MESSAGES, max_tokens: 100 });
    await eventually('the request to reach the provider', () => slow.requests.length === 1);
    const raised = await h.gql(
      'mutation { changePrice(provider: "repricer", model: "test/repriced", prices: { prompt: 1000000, completion: 1000000 }) { __typename ... on DomainError { message } } }',
    );
    expect(raised.body.data.changePrice.__typename).not.toBe('DomainError');
    const res = await inFlight;
    expect(res.status).toBe(200);
    const { usage } = (await res.json()) as { usage: { cost: number } };
    expect(Math.round(usage.cost * 1e9)).toBe(costOf(DEAR, 10, 10));
    expect((await h.settledBalance(user.accountId)).settled).toBe(costOf(DEAR, 10, 10));
    slow.setDefault({ usage: { promptTokens: 10, completionTokens: 10 } });
    const after = await h.chat(user.key, { model: 'test/repriced', messages: MESSAGES, max_tokens: 100 });
    expect(after.status).toBe(200);
    expect((await h.settledBalance(user.accountId)).settled).toBe(costOf(DEAR, 10, 10) + costOf({ prompt: 1_000_000, completion: 1_000_000 }, 10, 10));
  });
});

describe("another endpoint's prices do not decide what a call may cost", () => {
  it('an absurdly priced fallback is dropped for a budget that cannot cover it, instead of refusing the affordable endpoint', async () => {
    const cheap = await h.fakeEndpoint({ protocol: 'openai', slug: 'fair', model: 'test/contested', prices: { prompt: 100, completion: 1_000 }, maxOutput: 100 });
    cheap.setDefault({ usage: { promptTokens: 10, completionTokens: 10 } });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'gouger', model: 'test/contested', prices: { prompt: Number.MAX_SAFE_INTEGER, completion: Number.MAX_SAFE_INTEGER }, maxOutput: 100 });
    const user = await h.openAccount({ credits: CENT });
    const res = await h.chat(user.key, { model: 'test/contested', messages: MESSAGES, max_tokens: 100 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { provider: string }).provider).toBe('fair');
    expect((await h.settledBalance(user.accountId)).settled).toBe(costOf({ prompt: 100, completion: 1_000 }, 10, 10));
    // Asked for by name, the dear one is a 402 (not a 400 of an inexact amount).
    const named = await h.chat(user.key, { model: 'test/contested', messages: MESSAGES, max_tokens: 100, provider: { order: ['gouger'], allow_fallbacks: false } });
    expect(named.status).toBe(402);
  });

  it('a zero-priced fallback does not put paid calls under the free tier', async () => {
    await h.fakeEndpoint({ protocol: 'openai', slug: 'paidfirst', model: 'test/mixed', prices: { prompt: 100, completion: 1_000 }, maxOutput: 100 });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'zerolast', model: 'test/mixed', prices: { prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }, maxOutput: 100 });
    const user = await h.openAccount({ credits: 100 * CENT });
    for (let i = 0; i < 22; i++) {
      const res = await h.chat(user.key, { model: 'test/mixed', messages: MESSAGES, max_tokens: 20, provider: { order: ['paidfirst'] } });
      expect(res.status, `call ${i + 1}`).toBe(200);
      await res.text();
    }
  });
});
