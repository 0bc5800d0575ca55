/**
 * A full disk (QA s42 dos #4), through the event log's appends failing as better-sqlite3's do on ENOSPC (SQLITE_FULL;
 * test/support/fullDisk.ts), over real HTTP:
 * - a table insert is a 507 saying the disk is full (REST) and a typed UNAVAILABLE (GraphQL), not a 500 "Internal
 *   error"; once space is back it goes through;
 * - a call answered at the moment the disk filled is charged once space is back: its settlement, which failed, is
 *   tried again (the reservation holds the money meanwhile) instead of being dropped until a restart expired it.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { eventually } from '../support/eventually.js';
import { diskFullFlag, refusedAppends } from '../support/fullDisk.js';
import { contentOf, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'test/df-paid';
const PRICES = { prompt: 1_000, completion: 3_000 };
const USAGE = { promptTokens: 11, completionTokens: 5 };
const COST = USAGE.promptTokens * PRICES.prompt + USAGE.completionTokens * PRICES.completion;
const ERROR = '... on DomainError { code message }';

let h: GatewayHarness;
let user: Account;
let designer: Account;
const fill = () => writeFileSync(diskFullFlag(h.dataDir), '');
const free = () => rmSync(diskFullFlag(h.dataDir), { force: true });
const ledgerEvents = async (accountId: string) => (await h.running.core.eventStore.readStream(ledgerStream(accountId))) as unknown as RecordedEvent<LedgerEvent>[];

beforeAll(async () => {
  h = await startGatewayHarness({}, { eventStoreWrapper: new URL('../support/fullDisk.ts', import.meta.url).href });
  user = await h.openAccount({ credits: 1_000_000_000 });
  designer = await h.openAccount({ roles: ['user', 'designer'] });
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'df-fake', model: MODEL, prices: PRICES });
  fake.setDefault({ text: 'one two three four', usage: USAGE, slowTokenMs: 100 });
});
afterAll(async () => {
  free();
  await h?.stop();
});

describe('a full disk', () => {
  it('answers a table insert 507 "the disk is full" (REST) and a typed UNAVAILABLE (GraphQL); it goes through once space is back', async () => {
    expect((await h.gql(`mutation { createTable(name: "t") { __typename ${ERROR} } }`, {}, designer.key)).body.data.createTable).toEqual({ __typename: 'Table' });
    const post = () =>
      fetch(`${h.url}/api/v1/tables/t/entries`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${designer.key}` }, body: JSON.stringify({ text: 'hi' }) });
    fill();
    const res = await post();
    expect(res.status).toBe(507);
    const body = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
    expect(body.error).toMatchObject({ code: 507, message: expect.stringMatching(/disk is full/), metadata: { reason: 'disk_full', error_type: 'server' } });
    const gql = await h.gql(`mutation { insertEntry(table: "t", entry: { text: "hi" }) { __typename ${ERROR} } }`, {}, designer.key);
    const answer = gql.body.data?.insertEntry ?? gql.body.errors?.[0];
    expect(answer?.code ?? answer?.extensions?.code, JSON.stringify(gql.body)).toBe('UNAVAILABLE');
    expect(answer.message).toMatch(/disk is full/);

    free();
    expect((await post()).status).toBe(201);
  });

  it('charges a call answered as the disk filled once space is back: its failed settlement is tried again', async () => {
    const before = await h.settledBalance(user.accountId);
    const res = await h.chat(user.key, { model: MODEL, stream: true, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-generation-id');
    // The reservation is written (the answer is streaming): the disk fills now, before the settlement.
    fill();
    const { events, done } = await readSseResponse(res);
    expect(done).toBe(true);
    expect(contentOf(events)).toBe('one two three four');
    const generationId = id ?? (events[0] as { id: string }).id;

    // The settlement's append is refused while the disk is full (twice: it is tried again meanwhile).
    await eventually('the settlement to have been refused twice', () => refusedAppends(h.dataDir).filter((stream) => stream === ledgerStream(user.accountId)).length >= 2);
    expect((await ledgerEvents(user.accountId)).some((e) => e.type === 'ReservationSettled' && e.data.generationId === generationId)).toBe(false);

    free();
    const settled = await eventually('the settlement, tried again', async () =>
      (await ledgerEvents(user.accountId)).find((e) => e.type === 'ReservationSettled' && e.data.generationId === generationId),
    );
    expect(settled.data).toMatchObject({ actual: COST, charged: COST, late: false });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(COST);
    expect(after.reserved).toBe(0);
    // Its record follows the settlement: the generation is found with its cost.
    expect(await h.generation(user.key, generationId)).toMatchObject({ id: generationId, total_cost: COST / 1e9 });
  });
});
