/**
 * An `Idempotency-Key` on the model routes, over real HTTP against fake upstreams, as reliability.md's T-IDEM-1 and
 * T-IDEM-2 (Stripe's semantics): one generation per Idempotency-Key and API key, never charged twice. The same key and request
 * sent 20 times at once makes one provider call and one charge, every other answer a 409 (in flight) or the stored
 * answer, byte for byte; a retry after the answer gets the stored bytes with `Idempotent-Replayed: true` (whole and
 * streamed, through the official `openai` SDK too, from a restarted process too), a 409 once its 24 hours are past; the
 * same key with another request is a 422 that charges and calls nothing, key order and whitespace aside. The stored
 * answer is sealed: its text is not in the content store's file. A key that charged nothing may be sent again;
 * another API key's are its own (of the same account too); a malformed key is a 400. Completions, Responses, Messages and embeddings take
 * it too, and GraphQL sendPrompt / startGeneration as `idempotencyKey` (a retry there is a CONFLICT naming the holder).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_FILE } from '../../src/contentStore/sqliteContentStore.js';
import { startHarness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';
import type { FakeProvider } from '../support/fakeProviders.js';
import { GATEWAY_TEST_ENV, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'idem/model';
const PRICES = { prompt: 1_000, completion: 2_000 };
const USAGE = { promptTokens: 10, completionTokens: 5 };
/** What one call costs at PRICES with USAGE, in nano-dollars. */
const ONE_CALL = 10 * 1_000 + 5 * 2_000;
const MESSAGES = [{ role: 'user' as const, content: 'hello' }];
/** The upstream's answer: looked for in the content store's file, where it must not be readable. */
const ANSWER = 'the-answer-kept-sealed-7f3a';

let h: GatewayHarness;
let upstream: FakeProvider;
let embeddings: FakeProvider;

const send = (path: string, key: string, body: string, idempotencyKey?: string) =>
  fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(idempotencyKey !== undefined && { 'idempotency-key': idempotencyKey }) },
    body,
  });
const post = (path: string, key: string, body: unknown, idempotencyKey?: string) => send(path, key, JSON.stringify(body), idempotencyKey);
const chat = (who: Account, idempotencyKey?: string, body: Record<string, unknown> = {}) => post('/api/v1/chat/completions', who.key, { model: MODEL, messages: MESSAGES, ...body }, idempotencyKey);

/** An answer as the client got it: status, the headers that matter, the body's bytes. */
const answerOf = async (res: Response) => ({
  status: res.status,
  contentType: res.headers.get('content-type'),
  generationId: res.headers.get('x-generation-id'),
  replayed: res.headers.get('idempotent-replayed'),
  body: Buffer.from(await res.arrayBuffer()),
});
/** A replay: the same answer as `first`, marked replayed. */
const expectReplayOf = (again: Awaited<ReturnType<typeof answerOf>>, first: Awaited<ReturnType<typeof answerOf>>) => {
  expect(again.replayed).toBe('true');
  expect({ ...again, replayed: null }).toEqual({ ...first, replayed: null });
};
const holderOf = async (res: Response) => {
  expect(res.status).toBe(409);
  const { error } = (await res.json()) as { error: { message: string; metadata: { generation_id: string; error_type: string } } };
  expect(error.message).toMatch(/^This Idempotency-Key was used for generation gen-/);
  return error.metadata.generation_id;
};
const reusedFor = async (res: Response) => {
  expect(res.status).toBe(422);
  const { error } = (await res.json()) as { error: { code: number; message: string; metadata: { generation_id: string; error_type: string } } };
  expect(error).toMatchObject({ code: 422, message: expect.stringMatching(/^This Idempotency-Key was used for another request \(generation gen-/), metadata: { error_type: 'unprocessable' } });
  return error.metadata.generation_id;
};

beforeAll(async () => {
  h = await startGatewayHarness();
  upstream = await h.fakeEndpoint({ protocol: 'openai', slug: 'idem', model: MODEL, prices: PRICES });
  upstream.setDefault({ text: ANSWER, usage: USAGE });
  embeddings = await h.fakeEndpoint({ protocol: 'openai', slug: 'idem-emb', model: 'openai/text-embedding-3-small', prices: { prompt: 20, completion: 0 }, maxOutput: 1 });
});
afterAll(async () => {
  await h.stop();
});

describe('T-IDEM-1: the same key and request', () => {
  it('sent 20 times at once: one provider call, one charge; each other answer a 409 or the first answer byte for byte', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    upstream.setDefault({ text: ANSWER, usage: USAGE, latencyMs: 300 });
    const before = upstream.requests.length;
    const answers = await Promise.all(Array.from({ length: 20 }, () => chat(user, 'retry-me-1').then(answerOf)));
    upstream.setDefault({ text: ANSWER, usage: USAGE });
    const served = answers.filter((a) => a.status === 200 && a.replayed === null);
    expect(served).toHaveLength(1);
    const first = served[0]!;
    const id = (JSON.parse(first.body.toString()) as { id: string }).id;
    expect(first.generationId).toBe(id);
    for (const other of answers.filter((a) => a !== first)) {
      if (other.status === 409) expect((JSON.parse(other.body.toString()) as { error: { metadata: { generation_id: string } } }).error.metadata.generation_id).toBe(id);
      else expectReplayOf(other, first);
    }
    expect(upstream.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);

    // After the answer: the same bytes, marked replayed (a header a browser app may read); no provider call, no charge.
    const retried = await chat(user, 'retry-me-1');
    expect(retried.headers.get('access-control-expose-headers')).toContain('idempotent-replayed');
    expectReplayOf(await answerOf(retried), first);
    // Through the official SDK: the same completion, and its response says it was replayed.
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const { data, response } = await client.chat.completions.create({ model: MODEL, messages: MESSAGES }, { headers: { 'Idempotency-Key': 'retry-me-1' } }).withResponse();
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(data).toEqual(JSON.parse(first.body.toString()));
    expect(data.choices[0]?.message.content).toBe(ANSWER);
    expect(upstream.requests.length - before).toBe(1);
    expect(await h.generation(user.key, id)).toMatchObject({ id, total_cost: ONE_CALL / 1e9 });
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('streamed: a retry gets the whole SSE transcript again, byte for byte (raw and through the SDK)', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = upstream.requests.length;
    const first = await answerOf(await chat(user, 'stream-1', { stream: true }));
    expect(first).toMatchObject({ status: 200, contentType: 'text/event-stream; charset=utf-8', replayed: null });
    expect(first.body.toString()).toContain(ANSWER.slice(0, 4));
    expect(first.body.toString().endsWith('data: [DONE]\n\n')).toBe(true);
    expectReplayOf(await answerOf(await chat(user, 'stream-1', { stream: true })), first);

    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const stream = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true }, { headers: { 'Idempotency-Key': 'stream-1' } });
    let text = '';
    const ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(ANSWER);
    expect([...ids]).toEqual([first.generationId]);
    expect(upstream.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('is each account’s own: another account sending the same key is served, not replayed', async () => {
    const [a, b] = [await h.openAccount({ credits: 1_000_000_000 }), await h.openAccount({ credits: 1_000_000_000 })];
    const first = await answerOf(await chat(a, 'shared-name'));
    const other = await answerOf(await chat(b, 'shared-name'));
    expect([first.status, other.status, other.replayed]).toEqual([200, 200, null]);
    expect(other.generationId).not.toBe(first.generationId);
    expectReplayOf(await answerOf(await chat(a, 'shared-name')), first);
  });

  it("is each API key's own: another key of the account sending the same key and request gets its own call, neither the first answer nor a 409/422, and cannot block the first key", async () => {
    const owner = await h.openAccount({ credits: 1_000_000_000 });
    const created = await h.gqlOk('mutation { createApiKey(name: "app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret key { id } } } }', {}, owner.key);
    const app: Account = { accountId: owner.accountId, key: created.createApiKey.secret as string, keyId: created.createApiKey.key.id as string };
    const before = upstream.requests.length;
    const first = await answerOf(await chat(owner, 'owners-key-9b1e'));
    expect(first.status).toBe(200);
    // The app's key knows the owner's Idempotency-Key and body: it is served its own call, not the owner's answer.
    const other = await answerOf(await chat(app, 'owners-key-9b1e'));
    expect([other.status, other.replayed]).toEqual([200, null]);
    expect(other.generationId).not.toBe(first.generationId);
    expect(upstream.requests.length - before).toBe(2);
    // Each key's retry is its own answer replayed; another body under the key is a 422 naming its own generation only.
    expectReplayOf(await answerOf(await chat(owner, 'owners-key-9b1e')), first);
    expectReplayOf(await answerOf(await chat(app, 'owners-key-9b1e')), other);
    expect(await reusedFor(await chat(app, 'owners-key-9b1e', { temperature: 0.7 }))).toBe(other.generationId);
    // A key the app's key claimed first does not hold up the owner's call under it (no 409, no 422).
    const squatted = await answerOf(await chat(app, 'owner-next-key', { temperature: 0.1 }));
    expect(squatted.status).toBe(200);
    const owners = await answerOf(await chat(owner, 'owner-next-key'));
    expect([owners.status, owners.replayed]).toEqual([200, null]);
    // GraphQL: the app's key sending the owner's key is its own prompt, not a CONFLICT naming the owner's generation.
    const SEND = `mutation ($input: PromptInput!, $key: String) { r: sendPrompt(input: $input, idempotencyKey: $key) { __typename ... on SendPromptResult { generationId } ... on DomainError { code details } } }`;
    const input = { model: MODEL, messages: [{ role: 'USER', content: 'hello' }] };
    const ownerPrompt = (await h.gqlOk(SEND, { input, key: 'gql-owner-3c' }, owner.key)).r;
    expect(ownerPrompt.__typename).toBe('SendPromptResult');
    const appPrompt = (await h.gqlOk(SEND, { input, key: 'gql-owner-3c' }, app.key)).r;
    expect(appPrompt).toMatchObject({ __typename: 'SendPromptResult', generationId: expect.not.stringMatching(ownerPrompt.generationId) });
  });
});

describe('T-IDEM-2: the same key with another request', () => {
  it('is a 422 naming the holder: no charge, no provider call; the same request with its keys reordered is a replay', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const first = await answerOf(await send('/api/v1/chat/completions', user.key, JSON.stringify({ model: MODEL, messages: MESSAGES, temperature: 0.5 }), 'order-1'));
    expect(first.status).toBe(200);
    const calls = upstream.requests.length;
    const settled = (await h.settledBalance(user.accountId)).settled;

    expect(await reusedFor(await chat(user, 'order-1', { temperature: 0.7 }))).toBe(first.generationId);
    expect(await reusedFor(await chat(user, 'order-1', { temperature: 0.5, stream: true }))).toBe(first.generationId);
    // Another route is another request too.
    expect(await reusedFor(await post('/api/v1/completions', user.key, { model: MODEL, prompt: 'hello', temperature: 0.5 }, 'order-1'))).toBe(first.generationId);
    // The SDK's typed error.
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const refused = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'something else' }] }, { headers: { 'Idempotency-Key': 'order-1' } }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect((refused as InstanceType<typeof OpenAI.UnprocessableEntityError>).error).toMatchObject({ metadata: { generation_id: first.generationId } });
    expect(upstream.requests.length).toBe(calls);
    expect((await h.settledBalance(user.accountId)).settled).toBe(settled);

    // Key order and whitespace are not the request: a replay, not a 422.
    const reordered = `{ "temperature": 0.5,\n  "messages": [ { "content": "hello", "role": "user" } ],\n  "model": "${MODEL}" }`;
    expectReplayOf(await answerOf(await send('/api/v1/chat/completions', user.key, reordered, 'order-1')), first);
    expect(upstream.requests.length).toBe(calls);
  });
});

describe('a key that charged nothing, or is malformed', () => {
  it('is given back when the call charged nothing: refused for credits, or every provider failed; then it serves', async () => {
    const poor = await h.openAccount({});
    const refused = await chat(poor, 'after-top-up');
    expect(refused.status).toBe(402);
    await h.grant(poor.accountId, 1_000_000_000);
    const served = await chat(poor, 'after-top-up');
    expect([served.status, served.headers.get('idempotent-replayed')]).toEqual([200, null]);

    const user = await h.openAccount({ credits: 1_000_000_000 });
    upstream.setDefault({ status: 500 });
    const failed = await chat(user, 'after-outage');
    upstream.setDefault({ text: ANSWER, usage: USAGE });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    // Given back: even another request may take the key now.
    expect((await chat(user, 'after-outage', { temperature: 0.1 })).status).toBe(200);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });

  it('refuses a malformed key with a 400 naming the header, claiming nothing', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    // Space is printable ASCII: the message says exactly what a key may hold, and what this one has.
    for (const [key, fault] of [['has space', 'this one has a space'], ['x'.repeat(256), 'this one has 256'], ['café', 'this one has U+00E9']]) {
      const res = await chat(user, key);
      expect(res.status, key).toBe(400);
      expect(((await res.json()) as { error: { message: string; metadata: { header: string } } }).error).toMatchObject({
        message: `An Idempotency-Key must be 1 to 255 visible ASCII characters: letters, digits and punctuation (! to ~), no spaces; ${fault}`,
        metadata: { header: 'idempotency-key' },
      });
    }
    // A body the parser refuses claims nothing either: the key then serves.
    expect((await chat(user, 'valid-after-400', { temperature: 9 })).status).toBe(400);
    expect((await chat(user, 'valid-after-400')).status).toBe(200);
  });
});

describe('the other model routes take it too', () => {
  it('completions, Responses, Messages and embeddings: a retry is the first answer replayed; another body a 422', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const calls: [string, Record<string, unknown>][] = [
      ['/api/v1/completions', { model: MODEL, prompt: 'hello' }],
      ['/api/v1/responses', { model: MODEL, input: 'hello' }],
      ['/api/v1/responses', { model: MODEL, input: 'hello', stream: true }],
      ['/api/v1/messages', { model: MODEL, max_tokens: 50, messages: MESSAGES }],
      ['/api/v1/embeddings', { model: 'openai/text-embedding-3-small', input: 'hello' }],
    ];
    for (const [path, body] of calls) {
      const key = `key-${path}-${String(body.stream ?? false)}`;
      const first = await answerOf(await post(path, user.key, body, key));
      expect(first.status, path).toBe(200);
      const before = upstream.requests.length;
      expectReplayOf(await answerOf(await post(path, user.key, body, key)), first);
      const other = await post(path, user.key, { ...body, user: 'someone-else' }, key);
      expect(other.status, path).toBe(422);
      expect(JSON.stringify(await other.json()), path).toContain(first.generationId!);
      expect(upstream.requests.length, path).toBe(before);
    }
  });
});

describe('GraphQL sendPrompt and startGeneration take it as idempotencyKey', () => {
  const SEND = `mutation ($input: PromptInput!, $key: String) { r: sendPrompt(input: $input, idempotencyKey: $key) {
    __typename ... on SendPromptResult { generationId cost } ... on DomainError { code message details } } }`;
  const START = `mutation ($input: PromptInput!, $key: String) { r: startGeneration(input: $input, idempotencyKey: $key) {
    __typename ... on StartedGeneration { generationId } ... on DomainError { code message details } } }`;
  const input = { model: MODEL, messages: [{ role: 'USER', content: 'hello' }] };

  it('a retry is a CONFLICT naming the first generation; another request under the key says so; charged once', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const first = (await h.gqlOk(SEND, { input, key: 'gql-1' }, user.key)).r;
    expect(first).toMatchObject({ __typename: 'SendPromptResult', generationId: expect.stringMatching(/^gen-/) });
    const retry = (await h.gqlOk(SEND, { input: { messages: input.messages, model: MODEL }, key: 'gql-1' }, user.key)).r;
    expect(retry).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringMatching(/^This Idempotency-Key was used for generation gen-/), details: { generation_id: first.generationId } });
    // Another input, or the other mutation, is another request.
    for (const [mutation, variables] of [[SEND, { input: { ...input, temperature: 0.2 } }], [START, { input }]] as const) {
      const again = (await h.gqlOk(mutation, { ...variables, key: 'gql-1' }, user.key)).r;
      expect(again).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringMatching(/^This Idempotency-Key was used for another request/), details: { generation_id: first.generationId } });
    }
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
    // REST shares the account's keys: there, a chat is another request than a sendPrompt.
    expect(await reusedFor(await chat(user, 'gql-1'))).toBe(first.generationId);
    // A malformed key is a VALIDATION naming the argument, and starts nothing.
    expect((await h.gqlOk(START, { input, key: 'no spaces please' }, user.key)).r).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { field: 'idempotencyKey' } });
  });
});

describe('the stored answer', () => {
  it('is sealed: its text and the key are not in the content store’s file, which holds it', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const first = await answerOf(await chat(user, 'sealed-key-0c41'));
    expect(first.body.toString()).toContain(ANSWER);
    expectReplayOf(await answerOf(await chat(user, 'sealed-key-0c41')), first);
    const db = new Database(join(h.dataDir, CONTENT_FILE), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT account_id, sealed FROM replay WHERE generation_id = ?').get(first.generationId) as { account_id: string; sealed: string };
      expect(row.account_id).toBe(user.accountId);
      // Encrypted, not only encoded.
      expect(Buffer.from(row.sealed, 'base64url').includes(ANSWER)).toBe(false);
    } finally {
      db.close();
    }
    const files = [CONTENT_FILE, `${CONTENT_FILE}-wal`].map((f) => join(h.dataDir, f)).filter((f) => existsSync(f));
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    expect(bytes.includes(first.generationId!)).toBe(true);
    expect(bytes.includes(ANSWER)).toBe(false);
    expect(bytes.includes('sealed-key-0c41')).toBe(false);
  });

  it('leaves in the event log only a fingerprint keyed by the account and key: two accounts sending the same request under the same key leave different ones', async () => {
    const [a, b] = [await h.openAccount({ credits: 1_000_000_000 }), await h.openAccount({ credits: 1_000_000_000 })];
    for (const who of [a, b]) expect((await chat(who, 'same-key-5e2d')).status).toBe(200);
    const db = new Database(join(h.dataDir, 'events.db'), { readonly: true, fileMustExist: true });
    try {
      const fingerprints = [a, b].map(
        (who) => (db.prepare("SELECT json_extract(data, '$.fingerprint') AS f FROM events WHERE type = 'IdempotencyKeyClaimed' AND json_extract(data, '$.accountId') = ?").get(who.accountId) as { f: string }).f,
      );
      expect(fingerprints[0]).toMatch(/^[0-9a-f]{64}$/);
      expect(fingerprints[1]).toMatch(/^[0-9a-f]{64}$/);
      expect(fingerprints[0]).not.toBe(fingerprints[1]);
    } finally {
      db.close();
    }
  });

  it('is replayed by another process sharing the stores, within 24 hours; after them, the retry is a 409 and the answer is purged', async () => {
    let app = await startHarness(GATEWAY_TEST_ENV);
    const dir = app.dataDir;
    const restart = async (hoursLater: number) => {
      await app.stop({ keepData: true });
      app = await startHarness(GATEWAY_TEST_ENV, dir, { now: () => new Date(Date.now() + hoursLater * 3_600_000) });
    };
    const replays = () => {
      const db = new Database(join(dir, CONTENT_FILE), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM replay').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    try {
      const opened = await app.gql('mutation { openAccount(name: "retrier") { ... on OpenAccountPayload { initialKey { secret } } } }');
      const key = opened.body.data.openAccount.initialKey.secret as string;
      const demo = () =>
        fetch(`${app.url}/api/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': 'across-restarts' },
          body: JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'remember me' }] }),
        });
      const first = await answerOf(await demo());
      expect(first.status).toBe(200);

      await restart(23);
      expectReplayOf(await answerOf(await demo()), first);

      await restart(25);
      const late = await demo();
      expect(late.status).toBe(409);
      expect(((await late.json()) as { error: { metadata: { generation_id: string } } }).error.metadata.generation_id).toBe(first.generationId);
      expect(replays()).toBe(0);
    } finally {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a retry after the client gave up waiting (QA s43 #2)', () => {
  // A call that does not stream runs to its end and is charged whole when its client leaves (OpenRouter bills them
  // whole): its answer is the one the retry paid for, and is kept for it.
  const SLOW = 'idem/slow';
  let slow: FakeProvider;
  beforeAll(async () => {
    slow = await h.fakeEndpoint({ protocol: 'openai', slug: 'idem-slow', model: SLOW, prices: PRICES });
    slow.setDefault({ text: ANSWER, usage: USAGE, latencyMs: 1_500 });
  });
  const generationsOf = async (who: Account) => {
    const { body } = await h.gql('{ generations(first: 5) { edges { node { id status clientGone } } } }', {}, who.key);
    return (body.data.generations.edges as { node: { id: string; status: string; clientGone: boolean } }[]).map((e) => e.node);
  };

  it('raw HTTP: the client leaves before the answer; a retry while it runs is a 409, and once it is charged the retry gets it', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = slow.requests.length;
    const left = new AbortController();
    const first = post('/api/v1/chat/completions', user.key, { model: SLOW, messages: MESSAGES }, 'left-early');
    const abandoned = fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.key}`, 'content-type': 'application/json', 'idempotency-key': 'gave-up' },
      body: JSON.stringify({ model: SLOW, messages: MESSAGES }),
      signal: left.signal,
    });
    await eventually('both calls to reach the provider', () => slow.requests.length - before >= 2);
    left.abort();
    await expect(abandoned).rejects.toThrow(/abort/i);
    // While it runs: the key is held (the answer is not there yet).
    const holder = await holderOf(await chat(user, 'gave-up', { model: SLOW }));
    expect((await first).status).toBe(200);
    expect((await h.settledBalance(user.accountId)).settled).toBe(2 * ONE_CALL);
    const again = await answerOf(await chat(user, 'gave-up', { model: SLOW }));
    expect(again).toMatchObject({ status: 200, replayed: 'true', generationId: holder, contentType: 'application/json; charset=utf-8' });
    const answer = JSON.parse(again.body.toString()) as { id: string; choices: { message: { content: string } }[]; usage: { cost: number } };
    expect(answer).toMatchObject({ id: holder, choices: [{ message: { content: ANSWER } }], usage: { cost: ONE_CALL / 1e9 } });
    // One call each, charged once each; the abandoned one recorded as undelivered (QA s43 #3), the other not.
    expect(slow.requests.length - before).toBe(2);
    expect((await h.settledBalance(user.accountId)).settled).toBe(2 * ONE_CALL);
    expect(await generationsOf(user)).toEqual(expect.arrayContaining([{ id: holder, status: 'COMPLETED', clientGone: true }, expect.objectContaining({ status: 'COMPLETED', clientGone: false })]));
  });

  it('the openai SDK: a timeout, then the same request and Idempotency-Key gets the answer, charged once', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = slow.requests.length;
    const body = { model: SLOW, messages: MESSAGES };
    const impatient = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 1_000 });
    await expect(impatient.chat.completions.create(body, { headers: { 'Idempotency-Key': 'sdk-timeout' } })).rejects.toThrow(OpenAI.APIConnectionTimeoutError);
    await h.settledBalance(user.accountId);
    const patient = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const { data, response } = await patient.chat.completions.create(body, { headers: { 'Idempotency-Key': 'sdk-timeout' } }).withResponse();
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(data.choices[0]?.message.content).toBe(ANSWER);
    expect(slow.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
    expect(await generationsOf(user)).toEqual([{ id: data.id, status: 'COMPLETED', clientGone: true }]);
  });

  it('embeddings too: the SDK times out, its retry gets the vectors, charged once', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = embeddings.requests.length;
    const body = { model: 'openai/text-embedding-3-small', input: 'hello', encoding_format: 'float' as const };
    const impatient = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 1_000 });
    embeddings.setDefault({ latencyMs: 1_500 });
    try {
      await expect(impatient.embeddings.create(body, { headers: { 'Idempotency-Key': 'sdk-embed' } })).rejects.toThrow(OpenAI.APIConnectionTimeoutError);
    } finally {
      embeddings.setDefault({});
    }
    // The call goes on without its client (the harness's wait for records does not see an embeddings call in flight).
    const settled = await eventually('the call to be charged', async () => (await h.settledBalance(user.accountId)).settled);
    const patient = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const { data, response } = await patient.embeddings.create(body, { headers: { 'Idempotency-Key': 'sdk-embed' } }).withResponse();
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(data.data[0]?.embedding.length).toBeGreaterThan(0);
    expect(embeddings.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(settled);
    expect(await generationsOf(user)).toEqual([{ id: response.headers.get('x-generation-id'), status: 'COMPLETED', clientGone: true }]);
  });

  it("the openai SDK's own retries (a timeout, then 409s while it runs): the last one gets the answer, charged once", async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const before = slow.requests.length;
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 6, timeout: 1_000 });
    const { data, response } = await client.chat.completions.create({ model: SLOW, messages: MESSAGES }, { headers: { 'Idempotency-Key': 'sdk-retries' } }).withResponse();
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(data.choices[0]?.message.content).toBe(ANSWER);
    expect(slow.requests.length - before).toBe(1);
    expect((await h.settledBalance(user.accountId)).settled).toBe(ONE_CALL);
  });
});

describe('an answer over 4 MiB', () => {
  it('is not kept: a retry is a 409 naming the generation, not another call', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    // An endpoint whose max output allows such an answer (a generation delivers at most ~32 characters per output token).
    const big = await h.fakeEndpoint({ protocol: 'openai', slug: 'idem-big', model: 'idem/big', prices: PRICES, contextLength: 400_000, maxOutput: 200_000 });
    big.setDefault({ text: 'y'.repeat(4 * 1024 * 1024 + 1), usage: USAGE });
    const first = await chat(user, 'too-large', { model: 'idem/big' });
    expect(first.status).toBe(200);
    expect((await first.arrayBuffer()).byteLength).toBeGreaterThan(4 * 1024 * 1024);
    const calls = big.requests.length;
    expect(await holderOf(await chat(user, 'too-large', { model: 'idem/big' }))).toBe(first.headers.get('x-generation-id'));
    expect(big.requests.length).toBe(calls);
  });
});

describe('a claim written before fingerprints', () => {
  it('is a 409 naming its generation, whatever the request', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    // The claim as the log held it before this change: no fingerprint.
    const stream = `idem-${createHash('sha256').update(`${user.accountId}\n${user.keyId}\nold-key`).digest('hex').slice(0, 40)}`;
    await h.running.core.eventStore.append(stream, [{ type: 'IdempotencyKeyClaimed', data: { accountId: user.accountId, generationId: 'gen-before', at: new Date().toISOString() } }], { expectedRevision: 'no_stream' });
    const calls = upstream.requests.length;
    expect(await holderOf(await chat(user, 'old-key'))).toBe('gen-before');
    expect(await holderOf(await chat(user, 'old-key', { temperature: 0.3 }))).toBe('gen-before');
    expect(upstream.requests.length).toBe(calls);
  });
});
