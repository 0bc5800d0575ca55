/**
 * An `Idempotency-Key` on the REST model routes, over real HTTP against fake upstreams: one generation per key and
 * account, so a retried call is never charged twice (reliability.md T-IDEM-1: the same key sent 20 times at once makes
 * one provider call and one charge; the others are 409s naming the generation that holds the key). A key that charged
 * nothing (refused, or every provider failed) may be sent again; another account's keys are its own; a malformed key
 * is a 400 that claims nothing. Chat (the official `openai` SDK, whole and streamed), completions, Responses, Messages
 * and embeddings all take it, and GraphQL sendPrompt / startGeneration as `idempotencyKey`.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'idem/model';
const PRICES = { prompt: 1_000, completion: 2_000 };
const USAGE = { promptTokens: 10, completionTokens: 5 };
/** What one call costs at PRICES with USAGE, in nano-dollars. */
const ONE_CALL = 10 * 1_000 + 5 * 2_000;
const MESSAGES = [{ role: 'user' as const, content: 'hello' }];

let h: GatewayHarness;
let upstream: FakeProvider;

const post = (path: string, key: string, body: unknown, idempotencyKey?: string) =>
  fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(idempotencyKey !== undefined && { 'idempotency-key': idempotencyKey }) },
    body: JSON.stringify(body),
  });
const chat = (who: Account, idempotencyKey?: string, body: Record<string, unknown> = {}) => post('/api/v1/chat/completions', who.key, { model: MODEL, messages: MESSAGES, ...body }, idempotencyKey);
const holderOf = async (res: Response) => {
  expect(res.status).toBe(409);
  const { error } = (await res.json()) as { error: { message: string; metadata: { generation_id: string; error_type: string } } };
  expect(error.message).toMatch(/^This Idempotency-Key was used for generation gen-/);
  return error.metadata.generation_id;
};

beforeAll(async () => {
  h = await startGatewayHarness();
  upstream = await h.fakeEndpoint({ protocol: 'openai', slug: 'idem', model: MODEL, prices: PRICES });
  upstream.setDefault({ text: 'once', usage: USAGE });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'idem-emb', model: 'openai/text-embedding-3-small', prices: { prompt: 20, completion: 0 }, maxOutput: 1 });
});
afterAll(async () => {
  await h.stop();
});

describe('an Idempotency-Key on chat', () => {
  it('sent 20 times at once: one provider call, one charge, 19 answers of 409 naming the generation that holds it', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    upstream.setDefault({ text: 'once', usage: USAGE, latencyMs: 300 });
    const before = upstream.requests.length;
    const answers = await Promise.all(Array.from({ length: 20 }, () => chat(user, 'retry-me-1')));
    upstream.setDefault({ text: 'once', usage: USAGE });
    const served = answers.filter((r) => r.status === 200);
    expect(served).toHaveLength(1);
    const { id } = (await served[0]!.json()) as { id: string };
    const refused = answers.filter((r) => r.status !== 200);
    expect(await Promise.all(refused.map(holderOf))).toEqual(Array(19).fill(id));
    expect(upstream.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);

    // Later, with the same body or another, through the official SDK: still that generation's, never charged again.
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const again = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'something else' }] }, { headers: { 'Idempotency-Key': 'retry-me-1' } }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(again).toBeInstanceOf(OpenAI.ConflictError);
    expect((again as InstanceType<typeof OpenAI.ConflictError>).error).toMatchObject({ metadata: { generation_id: id } });
    expect(await h.generation(user.key, id)).toMatchObject({ id, total_cost: ONE_CALL / 1e9 });
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('streamed: the first call streams, a second with the key is a 409 before any stream', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true }, { headers: { 'Idempotency-Key': 'stream-1' } });
    let id = '';
    for await (const chunk of stream) id = chunk.id;
    expect(await holderOf(await chat(user, 'stream-1', { stream: true }))).toBe(id);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('is each account’s own: another account sending the same key is served', async () => {
    const [a, b] = [await h.openAccount({ credits: 1_000_000_000 }), await h.openAccount({ credits: 1_000_000_000 })];
    expect((await chat(a, 'shared-name')).status).toBe(200);
    expect((await chat(b, 'shared-name')).status).toBe(200);
    expect(await holderOf(await chat(a, 'shared-name'))).toMatch(/^gen-/);
  });

  it('is given back when the call charged nothing: refused for credits, or every provider failed; then it serves', async () => {
    const poor = await h.openAccount({});
    const refused = await chat(poor, 'after-top-up');
    expect(refused.status).toBe(402);
    await h.grant(poor.accountId, 1_000_000_000);
    expect((await chat(poor, 'after-top-up')).status).toBe(200);

    const user = await h.openAccount({ credits: 1_000_000_000 });
    upstream.setDefault({ status: 500 });
    const failed = await chat(user, 'after-outage');
    upstream.setDefault({ text: 'once', usage: USAGE });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect((await chat(user, 'after-outage')).status).toBe(200);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('refuses a malformed key with a 400 naming the header, claiming nothing', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    for (const key of ['has space', 'x'.repeat(256), 'café']) {
      const res = await chat(user, key);
      expect(res.status, key).toBe(400);
      expect(((await res.json()) as { error: { message: string; metadata: { header: string } } }).error).toMatchObject({
        message: 'An Idempotency-Key must be 1 to 255 printable ASCII characters',
        metadata: { header: 'idempotency-key' },
      });
    }
    // A body the parser refuses claims nothing either: the key then serves.
    expect((await chat(user, 'valid-after-400', { temperature: 9 })).status).toBe(400);
    expect((await chat(user, 'valid-after-400')).status).toBe(200);
  });
});

describe('the other model routes take it too', () => {
  it('completions, Responses, Messages and embeddings: a second call with the key is a 409 naming the first generation', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const calls: [string, unknown][] = [
      ['/api/v1/completions', { model: MODEL, prompt: 'hello' }],
      ['/api/v1/responses', { model: MODEL, input: 'hello' }],
      ['/api/v1/messages', { model: MODEL, max_tokens: 50, messages: MESSAGES }],
      ['/api/v1/embeddings', { model: 'openai/text-embedding-3-small', input: 'hello' }],
    ];
    for (const [path, body] of calls) {
      const first = await post(path, user.key, body, `key-${path}`);
      expect(first.status, path).toBe(200);
      const id = first.headers.get('x-generation-id');
      const second = await post(path, user.key, body, `key-${path}`);
      expect(second.status, path).toBe(409);
      expect(JSON.stringify(await second.json()), path).toContain(id!);
    }
  });
});

describe('GraphQL sendPrompt and startGeneration take it as idempotencyKey', () => {
  const SEND = `mutation ($input: PromptInput!, $key: String) { r: sendPrompt(input: $input, idempotencyKey: $key) {
    __typename ... on SendPromptResult { generationId cost } ... on DomainError { code message details } } }`;
  const START = `mutation ($input: PromptInput!, $key: String) { r: startGeneration(input: $input, idempotencyKey: $key) {
    __typename ... on StartedGeneration { generationId } ... on DomainError { code message details } } }`;
  const input = { model: MODEL, messages: [{ role: 'USER', content: 'hello' }] };

  it('a second call with the key, by either mutation, is a CONFLICT naming the first generation; charged once', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const first = (await h.gqlOk(SEND, { input, key: 'gql-1' }, user.key)).r;
    expect(first).toMatchObject({ __typename: 'SendPromptResult', generationId: expect.stringMatching(/^gen-/) });
    for (const mutation of [SEND, START]) {
      const again = (await h.gqlOk(mutation, { input, key: 'gql-1' }, user.key)).r;
      expect(again).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', details: { generation_id: first.generationId } });
    }
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
    // REST sees the same key as held: one key space per account.
    expect(await holderOf(await chat(user, 'gql-1'))).toBe(first.generationId);
    // A malformed key is a VALIDATION naming the argument, and starts nothing.
    expect((await h.gqlOk(START, { input, key: 'no spaces please' }, user.key)).r).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { field: 'idempotencyKey' } });
  });
});
