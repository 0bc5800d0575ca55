/**
 * Input & output logging over real HTTP (OpenRouter's `GET /api/v1/generation/content`): off by default; an account
 * turns it on with GraphQL `setContentLogging`, and then each generation's messages and answer (streamed or not, cut,
 * failed, through the official openai SDK and the legacy completions route) are readable by that account alone, right
 * after the answer, until it deletes them or the retention passes (through restarts of the same data directory).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_FILE } from '../../src/contentStore/sqliteContentStore.js';
import { ADMIN_KEY, startHarness } from '../support/appHarness.js';
import { contentOf, GATEWAY_TEST_ENV, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import { eventually } from '../support/eventually.js';
import type { FakeProvider } from '../support/fakeProviders.js';

let h: GatewayHarness;
let fake: FakeProvider;
let user: Account;
let other: Account;
let client: OpenAI;

const PRICES = { prompt: 1000, completion: 4000 };
const MODEL = 'logco/chat';

beforeAll(async () => {
  h = await startGatewayHarness();
  fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'logco', model: MODEL, prices: PRICES });
  user = await h.openAccount({ name: 'logger', credits: 1_000_000_000 });
  other = await h.openAccount({ name: 'neighbour', credits: 1_000_000_000 });
  client = new OpenAI({ apiKey: user.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await h.stop();
});

const contentRes = (id: string, key: string) => fetch(`${h.url}/api/v1/generation/content?id=${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${key}` } });
const content = async (id: string, key = user.key) => {
  const res = await contentRes(id, key);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { input: { messages: unknown[] }; output: { completion: string | null; reasoning: string | null } } }).data;
};
const setLogging = async (enabled: boolean, key = user.key, accountId?: string) =>
  h.gql(
    'mutation ($accountId: ID, $enabled: Boolean!) { setContentLogging(accountId: $accountId, enabled: $enabled) { ... on Account { id contentLogging } ... on DomainError { code message } } }',
    { enabled, ...(accountId !== undefined && { accountId }) },
    key,
  );

describe('input & output logging', () => {
  it('is off by default: nothing is stored, and the generation’s record is there as always', async () => {
    const { body } = await h.gql('{ me { contentLogging } }', {}, user.key);
    expect(body.data.me.contentLogging).toBe(false);
    const completion = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'not kept' }] });
    await h.running.core.gateway.idle();
    const res = await contentRes(completion.id, user.key);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(completion.id);
    expect((await fetch(`${h.url}/api/v1/generation?id=${completion.id}`, { headers: { authorization: `Bearer ${user.key}` } })).status).toBe(200);
  });

  it('keeps a whole answer and its reasoning once turned on, readable right after the answer', async () => {
    const { body } = await setLogging(true);
    expect(body.data.setContentLogging).toEqual({ id: user.accountId, contentLogging: true });
    fake.script({ text: 'Forty-two.', reasoning: 'Deep thought took a while.' });
    const messages = [
      { role: 'system' as const, content: 'Answer briefly.' },
      { role: 'user' as const, content: 'What is the answer? “ünïcode” 🚀' },
    ];
    const completion = await client.chat.completions.create({ model: MODEL, messages });
    // No wait for the gateway's background work: the read waits for the content being stored.
    const data = await content(completion.id);
    expect(data.input.messages).toEqual(messages);
    expect(data.output).toEqual({ completion: 'Forty-two.', reasoning: 'Deep thought took a while.' });
    const gql = await h.gql('query ($id: ID!) { generation(id: $id) { content { messages completion reasoning } } }', { id: completion.id }, user.key);
    expect(gql.body.data.generation.content).toEqual({ messages, completion: 'Forty-two.', reasoning: 'Deep thought took a while.' });
  });

  it('keeps a streamed answer as the client received it, and a prompt as the user message it became', async () => {
    fake.script({ text: 'one two three four', reasoning: 'counting' });
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'count' }], stream: true });
    let text = '';
    let id = '';
    for await (const chunk of stream) {
      id = chunk.id;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('one two three four');
    expect((await content(id)).output).toEqual({ completion: text, reasoning: 'counting' });

    const legacy = await fetch(`${h.url}/api/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time' }),
    });
    expect(legacy.status).toBe(200);
    const legacyId = ((await legacy.json()) as { id: string }).id;
    expect((await content(legacyId)).input.messages).toEqual([{ role: 'user', content: 'Once upon a time' }]);
  });

  it('keeps the part of a cut stream the client got, and the input of a call that failed', async () => {
    fake.script({ text: 'alpha beta gamma delta epsilon', cutAfterChunks: 3 });
    const res = await h.chat(user.key, { model: MODEL, messages: [{ role: 'user', content: 'cut me' }], stream: true });
    const sse = await readSseResponse(res);
    const id = res.headers.get('x-generation-id')!;
    const received = contentOf(sse.events);
    expect(received.length).toBeGreaterThan(0);
    expect(received).not.toBe('alpha beta gamma delta epsilon');
    expect((await content(id)).output.completion).toBe(received);

    fake.script({ status: 400 });
    const failed = await h.chat(user.key, { model: MODEL, messages: [{ role: 'user', content: 'refused upstream' }] });
    expect(failed.status).toBe(400);
    const failedId = failed.headers.get('x-generation-id')!;
    const data = await content(failedId);
    expect(data.input.messages).toEqual([{ role: 'user', content: 'refused upstream' }]);
    expect(data.output).toEqual({ completion: null, reasoning: null });
  });

  it('shows it to its account alone: another user and an admin get a 404 and a null, and another user cannot change the setting', async () => {
    const completion = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'private' }] });
    await content(completion.id);
    // In a list: each generation's content (one store query for the page), null for the one made before logging.
    await h.running.core.gateway.idle();
    const page = await h.gql('{ generations(first: 50) { edges { node { id content { messages } } } } }', {}, user.key);
    const contents = new Map((page.body.data.generations.edges as { node: { id: string; content: { messages: unknown[] } | null } }[]).map((e) => [e.node.id, e.node.content]));
    expect(contents.get(completion.id)).toEqual({ messages: [{ role: 'user', content: 'private' }] });
    expect([...contents.values()].filter((c) => c === null)).toHaveLength(1);
    for (const key of [other.key, ADMIN_KEY]) {
      expect((await contentRes(completion.id, key)).status).toBe(404);
    }
    const asAdmin = await h.gql('query ($id: ID!) { generation(id: $id) { id content { completion } } }', { id: completion.id }, ADMIN_KEY);
    expect(asAdmin.body.data.generation).toEqual({ id: completion.id, content: null });
    // Another account's setting is as unknown to a caller as a missing account, and stays as it was.
    const foreign = await setLogging(false, other.key, user.accountId);
    expect(foreign.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await h.gql('{ me { contentLogging } }', {}, user.key)).body.data.me.contentLogging).toBe(true);
    const missingId = await fetch(`${h.url}/api/v1/generation/content`, { headers: { authorization: `Bearer ${user.key}` } });
    expect(missingId.status).toBe(400);
    expect((await fetch(`${h.url}/api/v1/generation/content?id=${completion.id}`)).status).toBe(401);
  });

  it("shows a restricted key (a spending limit) its own calls' content only: another key's answers as a missing id does", async () => {
    const owner = await h.openAccount({ name: 'content-owner', credits: 1_000_000_000 });
    expect((await setLogging(true, owner.key)).body.data.setContentLogging.contentLogging).toBe(true);
    const created = await h.gqlOk('mutation { createApiKey(name: "tiny", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, owner.key);
    const limited = created.createApiKey.secret as string;
    const ownerCall = await new OpenAI({ apiKey: owner.key, baseURL: `${h.url}/api/v1`, maxRetries: 0 }).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'my medical question' }] });
    const ownCall = await new OpenAI({ apiKey: limited, baseURL: `${h.url}/api/v1`, maxRetries: 0 }).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'the app asks' }] });
    await h.running.core.gateway.idle();
    // The owner's full key reads both; the limited key its own, right after its answer.
    expect((await content(ownerCall.id, owner.key)).input.messages).toEqual([{ role: 'user', content: 'my medical question' }]);
    expect((await content(ownCall.id, owner.key)).input.messages).toEqual([{ role: 'user', content: 'the app asks' }]);
    expect((await content(ownCall.id, limited)).input.messages).toEqual([{ role: 'user', content: 'the app asks' }]);
    // The owner's call is as unknown to it as an id that never was (the same status and words, but for the id).
    const missingId = 'gen-0000000000-aaaaaaaaaaaaaaaaaaaa';
    const foreign = await contentRes(ownerCall.id, limited);
    const missing = await contentRes(missingId, limited);
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    /** The answer with its id and request id left out. */
    const shape = async (res: Response, id: string) => (await res.text()).replaceAll(id, '<id>').replace(/"request_id":"[^"]*"/, '');
    expect(await shape(foreign, ownerCall.id)).toBe(await shape(missing, missingId));
  });

  it('refuses an anonymous caller everything, and writes nothing', async () => {
    const head = await h.running.core.eventStore.headPosition();
    const switchOff = await setLogging(false, null as unknown as string, user.accountId);
    expect(switchOff.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const wipe = await h.gql('mutation ($id: ID) { deleteGenerationContent(accountId: $id) }', { id: user.accountId }, null);
    expect(wipe.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
    expect((await h.gql('{ me { contentLogging } }', {}, user.key)).body.data.me.contentLogging).toBe(true);
  });

  it('deletes what was stored on request, and stores nothing once turned off', async () => {
    const kept = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'delete me' }] });
    await content(kept.id);
    const { body } = await h.gql('mutation { deleteGenerationContent }', {}, user.key);
    expect(body.errors).toBeUndefined();
    expect(body.data.deleteGenerationContent).toBeGreaterThanOrEqual(1);
    expect((await contentRes(kept.id, user.key)).status).toBe(404);
    // The record and its charge stay.
    expect((await fetch(`${h.url}/api/v1/generation?id=${kept.id}`, { headers: { authorization: `Bearer ${user.key}` } })).status).toBe(200);

    expect((await setLogging(false)).body.data.setContentLogging.contentLogging).toBe(false);
    const after = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'off again' }] });
    await h.running.core.gateway.idle();
    expect((await contentRes(after.id, user.key)).status).toBe(404);
  });
});

describe('calls in flight when logging is turned off or the content deleted', () => {
  /** A promise the fake upstream holds its answers on until `release()`. */
  const holding = () => {
    let release!: () => void;
    const until = new Promise<void>((resolve) => (release = resolve));
    return { until, release };
  };
  /** A whole and a streamed chat of the account, both at the upstream (held there) when this returns. */
  const inFlight = async (who: Account, hold: Promise<void>, headers: Record<string, string> = {}) => {
    const before = fake.requests.length;
    fake.script({ text: 'the held answer', holdUntil: hold });
    fake.script({ text: 'the held stream', holdUntil: hold });
    const calls = [
      h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'in flight, whole' }] }, headers),
      h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'in flight, streamed' }], stream: true }),
    ];
    await eventually('both calls at the upstream', () => fake.requests.length >= before + 2);
    return calls;
  };
  /** The calls' answers, read whole, and their generation ids, once the gateway's work after them is done. */
  const ended = async (calls: Promise<Response>[]) => {
    const ids: string[] = [];
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body.startsWith('data:') ? contentOf(body.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)))) : body).toMatch(/the held (answer|stream)/);
      ids.push(res.headers.get('x-generation-id')!);
    }
    await h.running.core.gateway.idle();
    return ids;
  };
  /** What the content store's file holds for these generations: contents and Idempotency-Key answers. */
  const storedRows = (ids: readonly string[]) => {
    const db = new Database(join(h.dataDir, CONTENT_FILE), { readonly: true, fileMustExist: true });
    try {
      const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE generation_id IN (SELECT value FROM json_each(?))`).get(JSON.stringify(ids)) as { n: number }).n;
      return { content: count('content'), replay: count('replay') };
    } finally {
      db.close();
    }
  };
  const graphqlContent = async (id: string, key: string) => (await h.gql('query ($id: ID!) { generation(id: $id) { content { completion } } }', { id }, key)).body.data.generation.content;
  const expectNoContent = async (ids: readonly string[], who: Account) => {
    for (const id of ids) {
      expect((await contentRes(id, who.key)).status).toBe(404);
      expect(await graphqlContent(id, who.key)).toBeNull();
    }
    expect(storedRows(ids)).toEqual({ content: 0, replay: 0 });
  };
  const deleteAll = async (who: Account) => (await h.gqlOk('mutation { deleteGenerationContent }', {}, who.key)).deleteGenerationContent as number;

  it('stores nothing of the calls in flight once logging is off and the content deleted (QA s44 liveops #1), and keeps the calls made after logging is on again', async () => {
    const who = await h.openAccount({ name: 'in-flight', credits: 1_000_000_000 });
    expect((await setLogging(true, who.key)).body.data.setContentLogging.contentLogging).toBe(true);
    const older = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'an older call' }] });
    const olderId = older.headers.get('x-generation-id')!;
    expect((await content(olderId, who.key)).input.messages).toEqual([{ role: 'user', content: 'an older call' }]);

    const hold = holding();
    const calls = await inFlight(who, hold.until);
    expect((await setLogging(false, who.key)).body.data.setContentLogging.contentLogging).toBe(false);
    expect(await deleteAll(who)).toBe(1);
    hold.release();
    const ids = await ended(calls);
    await expectNoContent([olderId, ...ids], who);
    expect(await deleteAll(who)).toBe(0);

    // Logging on again: calls made from now on are kept, as before.
    expect((await setLogging(true, who.key)).body.data.setContentLogging.contentLogging).toBe(true);
    const later = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'a later call' }] });
    expect((await content(later.headers.get('x-generation-id')!, who.key)).input.messages).toEqual([{ role: 'user', content: 'a later call' }]);
  });

  it('stores nothing of the calls in flight once logging is turned off, and keeps what was stored before', async () => {
    const who = await h.openAccount({ name: 'switched-off', credits: 1_000_000_000 });
    expect((await setLogging(true, who.key)).body.data.setContentLogging.contentLogging).toBe(true);
    const older = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'kept' }] });
    const olderId = older.headers.get('x-generation-id')!;
    const hold = holding();
    const calls = await inFlight(who, hold.until);
    const offAt = Date.now();
    expect((await setLogging(false, who.key)).body.data.setContentLogging.contentLogging).toBe(false);
    // The store holds the account's cut, which another process sharing it (whose directory may lag) is refused by too.
    const db = new Database(join(h.dataDir, CONTENT_FILE), { readonly: true, fileMustExist: true });
    try {
      const cut = db.prepare('SELECT content_at FROM cut WHERE account_id = ?').get(who.accountId) as { content_at: string } | undefined;
      expect(Date.parse(cut?.content_at ?? '')).toBeGreaterThanOrEqual(offAt);
    } finally {
      db.close();
    }
    hold.release();
    const ids = await ended(calls);
    await expectNoContent(ids, who);
    expect((await content(olderId, who.key)).input.messages).toEqual([{ role: 'user', content: 'kept' }]);
  });

  it('stores nothing of the calls in flight when the content is deleted while logging stays on, and keeps the calls started after', async () => {
    const who = await h.openAccount({ name: 'wiped', credits: 1_000_000_000 });
    expect((await setLogging(true, who.key)).body.data.setContentLogging.contentLogging).toBe(true);
    const hold = holding();
    const calls = await inFlight(who, hold.until);
    expect(await deleteAll(who)).toBe(0);
    hold.release();
    const ids = await ended(calls);
    await expectNoContent(ids, who);
    const after = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'after the delete' }] });
    expect((await content(after.headers.get('x-generation-id')!, who.key)).input.messages).toEqual([{ role: 'user', content: 'after the delete' }]);
  });

  it('does not keep the Idempotency-Key answer of a call in flight when the content is deleted: its retry is the 409 of an answer not kept', async () => {
    const who = await h.openAccount({ name: 'idempotent', credits: 1_000_000_000 });
    const hold = holding();
    const calls = await inFlight(who, hold.until, { 'idempotency-key': 'deleted-while-running' });
    expect(await deleteAll(who)).toBe(0);
    hold.release();
    const ids = await ended(calls);
    expect(storedRows(ids)).toEqual({ content: 0, replay: 0 });
    const retry = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'in flight, whole' }] }, { 'idempotency-key': 'deleted-while-running' });
    expect(retry.status).toBe(409);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(await retry.text()).toContain(ids[0]!);

    // A call started after the delete keeps its answer for its retries.
    fake.script({ text: 'a later answer' });
    const later = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'later' }] }, { 'idempotency-key': 'after-the-delete' });
    expect(later.status).toBe(200);
    await later.text();
    const replayed = await h.chat(who.key, { model: MODEL, messages: [{ role: 'user', content: 'later' }] }, { 'idempotency-key': 'after-the-delete' });
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
  });
});

describe('retention', () => {
  it('keeps content through a restart and purges it once older than CONTENT_RETENTION_DAYS', async () => {
    const env = { ...GATEWAY_TEST_ENV, CONTENT_RETENTION_DAYS: '1' };
    let app = await startHarness(env);
    const dir = app.dataDir;
    const DAY = 86_400_000;
    const restart = async (daysLater: number) => {
      await app.stop({ keepData: true });
      app = await startHarness(env, dir, { now: () => new Date(Date.now() + daysLater * DAY) });
    };
    try {
      const opened = await app.gql('mutation { openAccount(name: "keeper") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }');
      const key = opened.body.data.openAccount.initialKey.secret as string;
      expect((await app.gql('mutation { setContentLogging(enabled: true) { ... on Account { contentLogging } } }', {}, key)).body.data.setContentLogging.contentLogging).toBe(true);
      const res = await fetch(`${app.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'remember me' }] }),
      });
      expect(res.status).toBe(200);
      const id = ((await res.json()) as { id: string }).id;
      const read = () => fetch(`${app.url}/api/v1/generation/content?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
      expect((await read()).status).toBe(200);

      await restart(0.5);
      const kept = await read();
      expect(kept.status).toBe(200);
      expect(((await kept.json()) as { data: { input: { messages: unknown[] } } }).data.input.messages).toEqual([{ role: 'user', content: 'remember me' }]);
      expect((await app.gql('{ me { contentLogging } }', {}, key)).body.data.me.contentLogging).toBe(true);

      await restart(2);
      expect((await read()).status).toBe(404);
    } finally {
      await app.stop();
      const { rmSync } = await import('node:fs');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
