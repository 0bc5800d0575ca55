/**
 * A conversation's calls, grouped as OpenRouter's logs group sessions: the `session_id` a client sends (in the body,
 * through the official `openai` SDK, or as the `x-session-id` header) is recorded on each generation, shown in
 * `GET /api/v1/generation` as `session_id` and on GraphQL's `Generation.sessionId`, and `generations(filter:
 * {sessionId})` lists that conversation's calls, the caller's only. A call that names none records none.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user' as const, content: 'hello' }];
const MODEL = 'sess/model';

let h: GatewayHarness;
let user: Account;
let other: Account;

const sessionOf = async (key: string, id: string) => ((await h.generation(key, id)) as { session_id: string | null }).session_id;
const listed = async (key: string, sessionId: string): Promise<{ id: string; sessionId: string }[]> =>
  (await h.gqlOk('query ($s: String!) { generations(first: 50, filter: { sessionId: $s }) { edges { node { id sessionId } } } }', { s: sessionId }, key)).generations.edges.map(
    (e: { node: { id: string; sessionId: string } }) => e.node,
  );

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 1_000_000_000 });
  other = await h.openAccount({ credits: 1_000_000_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'sess', model: MODEL, prices: { prompt: 10, completion: 10 } });
});
afterAll(async () => {
  await h.stop();
});

describe("a conversation's calls", () => {
  it('record the session id sent in the body or the x-session-id header, and list by it on GraphQL', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
    const first = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, session_id: 'conv-42' } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const streamed = await client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true, session_id: 'conv-42' } as OpenAI.ChatCompletionCreateParamsStreaming);
    let streamedId = '';
    for await (const chunk of streamed) streamedId = chunk.id;
    const byHeader = await h.chat(user.key, { model: MODEL, messages: MESSAGES }, { 'x-session-id': 'conv-7' });
    expect(byHeader.status).toBe(200);
    const headerId = ((await byHeader.json()) as { id: string }).id;
    const none = await client.chat.completions.create({ model: MODEL, messages: MESSAGES });
    // Another account's call in a session of the same name.
    const theirs = await h.chat(other.key, { model: MODEL, messages: MESSAGES, session_id: 'conv-42' });
    expect(theirs.status).toBe(200);
    const theirId = ((await theirs.json()) as { id: string }).id;

    expect(await sessionOf(user.key, first.id)).toBe('conv-42');
    expect(await sessionOf(user.key, streamedId)).toBe('conv-42');
    expect(await sessionOf(user.key, headerId)).toBe('conv-7');
    expect(await sessionOf(user.key, none.id)).toBeNull();

    expect((await listed(user.key, 'conv-42')).map((g) => g.id).sort()).toEqual([first.id, streamedId].sort());
    expect(await listed(user.key, 'conv-7')).toEqual([{ id: headerId, sessionId: 'conv-7' }]);
    expect(await listed(user.key, 'conv-nobody')).toEqual([]);
    expect(await listed(other.key, 'conv-42')).toEqual([{ id: theirId, sessionId: 'conv-42' }]);
  });

  it('refuses a session id over 256 characters (400), recording nothing', async () => {
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, session_id: 's'.repeat(257) });
    expect(res.status).toBe(400);
    expect(await listed(user.key, 's'.repeat(257))).toEqual([]);
  });
});
