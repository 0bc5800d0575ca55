/**
 * A call whose record is on its way is never listed as unrecorded. The generations read model makes an `unrecorded`
 * document from a call's settlement, which is appended before its record: in the normal flow the record follows in
 * a later batch and replaces it. Polled over real GraphQL during a burst of calls (chat, streamed and not, through the
 * real `openai` SDK, and embeddings), neither the account's newest generations nor the UNRECORDED filter ever shows
 * one of them as unrecorded, while a charge whose record really was lost (its append made to fail, as a process
 * killed between the two appends leaves it) is listed as UNRECORDED throughout.
 */
import { writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, readModelsCaughtUp } from '../support/eventually.js';
import { failNextGenerationRecordFlag } from '../support/failGenerationRecords.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'test/uif-paid';
const EMBED_MODEL = 'openai/text-embedding-3-small';
const PRICES = { prompt: 1_000, completion: 3_000 };
const CALLS = 95;
const AT_ONCE = 4;

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
let lost = '';

beforeAll(async () => {
  h = await startGatewayHarness({}, { eventStoreWrapper: new URL('../support/failGenerationRecords.ts', import.meta.url).href });
  user = await h.openAccount({ credits: 10_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 20_000 });
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'uif-fake', model: MODEL, prices: PRICES });
  fake.setDefault({ text: 'fine', usage: { promptTokens: 11, completionTokens: 5 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'uif-embed', model: EMBED_MODEL, prices: PRICES, maxOutput: 1 });

  writeFileSync(failNextGenerationRecordFlag(h.dataDir), '');
  lost = (await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'lost' }], max_tokens: 20 })).id;
  await h.running.core.gateway.idle();
  await readModelsCaughtUp(h.running.core);
});
afterAll(async () => {
  await h?.stop();
});

type Page = { generations: { edges: { node: { id: string; status: string } }[] } };

const NEWEST = '{ generations(first: 50, newestFirst: true) { edges { node { id status } } } }';
const UNRECORDED = '{ generations(first: 50, newestFirst: true, filter: { status: UNRECORDED }) { edges { node { id status } } } }';

/** A page of one: calls whose stubs come first (the newest) and whose records no longer match leave it to the next. */
const FIRST_UNRECORDED = '{ generations(first: 1, newestFirst: true, filter: { status: UNRECORDED }) { edges { node { id status } } pageInfo { hasNextPage } } }';

const page = async (query: string) => {
  const { status, body } = await h.gql(query, {}, user.key);
  expect(status, JSON.stringify(body)).toBe(200);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return (body.data as Page).generations.edges.map((e) => e.node);
};

/** One call of the burst: chat (streamed every other time) or, every fifth, embeddings. */
const call = async (i: number): Promise<string> => {
  if (i % 5 === 4) {
    await client.embeddings.create({ model: EMBED_MODEL, input: `text ${i}` });
    return '';
  }
  if (i % 2 === 0) return (await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `call ${i}` }], max_tokens: 20 })).id;
  let id = '';
  for await (const chunk of await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `call ${i}` }], max_tokens: 20, stream: true })) id = chunk.id;
  return id;
};

describe('generations listed while their records are on their way', () => {
  it('the newest generations and the UNRECORDED filter never show a call of a burst as UNRECORDED; the lost charge is UNRECORDED throughout', async () => {
    // Before the burst: the lost charge is the one unrecorded generation.
    expect(await page(UNRECORDED)).toEqual([{ id: lost, status: 'UNRECORDED' }]);
    expect(await page(NEWEST)).toContainEqual({ id: lost, status: 'UNRECORDED' });

    let done = false;
    let polls = 0;
    const listedUnrecorded = new Set<string>();
    const filtered = new Set<string>();
    const firstPages = new Set<string>();
    const poll = async () => {
      while (!done) {
        const [newest, unrecorded, first] = await Promise.all([page(NEWEST), page(UNRECORDED), h.gql(FIRST_UNRECORDED, {}, user.key)]);
        polls++;
        for (const node of newest) if (node.status === 'UNRECORDED' && node.id !== lost) listedUnrecorded.add(node.id);
        for (const node of unrecorded) filtered.add(`${node.id} ${node.status}`);
        firstPages.add(JSON.stringify(first.body));
      }
    };
    const pollers = [poll(), poll()];
    let next = 0;
    const worker = async () => {
      while (next < CALLS) await call(next++);
    };
    await Promise.all(Array.from({ length: AT_ONCE }, worker));
    done = true;
    await Promise.all(pollers);

    // Once everything is applied: every call of the burst completed, and the lost charge is still the one unrecorded.
    await h.running.core.gateway.idle();
    await readModelsCaughtUp(h.running.core);
    const all = await eventually('every call listed', async () => {
      const { body } = await h.gql('{ generations(first: 100) { edges { node { id status apiType } } } }', {}, user.key);
      const nodes = (body.data as { generations: { edges: { node: { id: string; status: string; apiType: string | null } }[] } }).generations.edges.map((e) => e.node);
      return nodes.length === CALLS + 1 && nodes;
    });
    // What was listed as unrecorded while the burst ran: none (named with the API each came through).
    const apiOf = new Map(all.map((n) => [n.id, n.apiType]));
    expect(polls).toBeGreaterThan(0);
    expect([...listedUnrecorded].map((id) => `${id} (${apiOf.get(id)})`)).toEqual([]);
    expect([...filtered].map((entry) => `${entry} (${apiOf.get(entry.split(' ')[0]!)})`)).toEqual([`${lost} UNRECORDED (null)`]);
    expect([...firstPages].map((body) => JSON.parse(body))).toEqual([{ data: { generations: { edges: [{ node: { id: lost, status: 'UNRECORDED' } }], pageInfo: { hasNextPage: false } } } }]);
    expect(all.filter((n) => n.status !== 'COMPLETED')).toEqual([{ id: lost, status: 'UNRECORDED', apiType: null }]);
    expect(all.filter((n) => n.apiType === 'embeddings')).toHaveLength(Math.floor(CALLS / 5));
    expect(await page(UNRECORDED)).toEqual([{ id: lost, status: 'UNRECORDED' }]);
  });
});
