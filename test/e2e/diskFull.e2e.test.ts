/**
 * A full disk (QA s42 dos #4), through the event log's appends failing as better-sqlite3's do on ENOSPC (SQLITE_FULL;
 * test/support/fullDisk.ts), over real HTTP:
 * - a table insert is a 507 saying the disk is full (REST) and a typed UNAVAILABLE (GraphQL), not a 500 "Internal
 *   error"; once space is back it goes through;
 * - a call answered at the moment the disk filled is charged once space is back: its settlement, which failed, is
 *   tried again (the reservation holds the money meanwhile) instead of being dropped until a restart expired it;
 * - (QA s44 disk #4) /health says the event store is not ok (disk_full) while its appends are refused, not only through
 *   the projections' lag; a paid call's 503 says why (`metadata.reason: disk_full`); the fault is logged once as it
 *   begins and once as it ends, not as two stacks per refused call.
 * - the ledger's sweep meeting a refused append is no unhandled rejection (QA s44 disk #1: the process exited 1);
 * - a charged call whose record the disk refused is recorded once space is back, once (QA s44 disk #2).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { createLogger } from '../../src/logger.js';
import { ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { eventually } from '../support/eventually.js';
import { generationStream } from '../../src/modules/generations/generation.events.js';
import { ambiguousAppendsFlag, diskFullFlag, refusedAppends } from '../support/fullDisk.js';
import { contentOf, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'test/df-paid';
const PRICES = { prompt: 1_000, completion: 3_000 };
const USAGE = { promptTokens: 11, completionTokens: 5 };
const COST = USAGE.promptTokens * PRICES.prompt + USAGE.completionTokens * PRICES.completion;
const ERROR = '... on DomainError { code message }';

/** Every line the server logged at info or above. */
const logged: { level: number; msg: string; err?: { stack?: string } }[] = [];
let h: GatewayHarness;
let user: Account;
let designer: Account;
/** Fill the disk: for every append, or for the streams named `prefix…` only. */
const fill = (prefix = '') => writeFileSync(diskFullFlag(h.dataDir), prefix);
const free = () => rmSync(diskFullFlag(h.dataDir), { force: true });
const recordEvents = (generationId: string) => h.running.core.eventStore.readStream(generationStream(generationId));
const ask = (stream: boolean) => h.chat(user.key, { model: MODEL, stream, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 });
const idOf = async (res: Response): Promise<string> => {
  expect(res.status).toBe(200);
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const { events, done } = await readSseResponse(res);
    expect(done).toBe(true);
    expect(contentOf(events)).toBe('one two three four');
    return (events[0] as { id: string }).id;
  }
  return ((await res.json()) as { id: string }).id;
};
/** The unhandled rejections of this process while `body` runs (Node would exit 1 on one, as the server did). */
const unhandledDuring = async (body: () => Promise<void>): Promise<unknown[]> => {
  const unhandled: unknown[] = [];
  const note = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', note);
  try {
    await body();
    // A rejection is reported after the microtasks of its turn: one more turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('unhandledRejection', note);
  }
  return unhandled;
};
const ledgerEvents = async (accountId: string) => (await h.running.core.eventStore.readStream(ledgerStream(accountId))) as unknown as RecordedEvent<LedgerEvent>[];

beforeAll(async () => {
  // The ledger's sweep (every minute in production) every 5 ms: it reads each busy account, as it does under traffic.
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logged.push(JSON.parse(line) as (typeof logged)[number]);
      done();
    },
  });
  h = await startGatewayHarness({}, { eventStoreWrapper: new URL('../support/fullDisk.ts', import.meta.url).href, ledgerSweepMs: 5, logger: createLogger('info', sink) });
  user = await h.openAccount({ credits: 1_000_000_000 });
  designer = await h.openAccount({ roles: ['user', 'designer'] });
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'df-fake', model: MODEL, prices: PRICES });
  fake.setDefault({ text: 'one two three four', usage: USAGE, slowTokenMs: 100 });
});
afterEach(() => {
  free();
  rmSync(ambiguousAppendsFlag(h.dataDir), { force: true });
});
afterAll(async () => {
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

  it('shows on /health as the event store not ok (disk_full) until a write succeeds, answers paid calls 503 with reason disk_full, and logs it once, not a stack per call', async () => {
    const health = async () => (await (await fetch(`${h.url}/health`)).json()) as { status: string; eventStore: { ok: boolean; lastWriteFailure?: Record<string, unknown> } };
    expect((await health()).eventStore.ok).toBe(true);
    const from = logged.length;
    fill();
    const calls = 6;
    for (let i = 0; i < calls; i += 1) {
      const res = await h.chat(user.key, { model: MODEL, stream: i % 2 === 1, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      const body = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
      expect(body.error).toMatchObject({ code: 503, message: expect.stringMatching(/disk is full/), metadata: { reason: 'disk_full' } });
    }
    // Every append is refused, and /health says so of the event store itself (not only through the projections' lag).
    const during = await health();
    expect(during.status).toBe('degraded');
    expect(during.eventStore).toMatchObject({ ok: false, lastWriteFailure: { reason: 'disk_full', refused: expect.any(Number) } });
    expect(during.eventStore.lastWriteFailure!.refused).toBeGreaterThanOrEqual(calls);
    // One error line (the first refused write), not two stacks per refused call.
    const faultLines = logged.slice(from).filter((line) => line.level >= 50);
    expect(faultLines.map((line) => line.msg), JSON.stringify(faultLines.map((l) => l.msg))).toHaveLength(1);
    expect(faultLines[0]!.msg).toMatch(/disk is full/);

    free();
    const res = await h.chat(user.key, { model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 });
    expect(res.status).toBe(200);
    await res.text();
    const after = await eventually('the event store ok again', async () => {
      const now = await health();
      return now.eventStore.ok ? now : null;
    });
    expect(after.eventStore.lastWriteFailure).toBeUndefined();
    // The recovery is logged once with the count of refused writes.
    const recovered = logged.slice(from).filter((line) => /writes succeed again/.test(line.msg));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ refused: expect.any(Number) });
  });

  it('survives settlements refused while the ledger sweeps (no unhandled rejection) and charges every 200 once when space is back', async () => {
    const before = await h.settledBalance(user.accountId);
    const ids: string[] = [];
    const unhandled = await unhandledDuring(async () => {
      // Answered (their reservations are written) before the disk fills; their settlements then fail and are tried
      // again, each held a moment for the account's next reservation, which the sweep's read of the account joins.
      const calls = await Promise.all([ask(true), ask(true), ask(true), ask(true)]);
      expect(calls.map((res) => res.status)).toEqual([200, 200, 200, 200]);
      fill();
      // A call while the disk is full is refused: its reservation cannot be written.
      expect((await ask(false)).status).toBe(503);
      ids.push(...(await Promise.all(calls.map(idOf))));
      await eventually('the settlements to have been refused, tried again and refused', () => refusedAppends(h.dataDir).filter((stream) => stream === ledgerStream(user.accountId)).length >= 12);
      free();
      await eventually('every settlement, tried again', async () => {
        const settled = (await ledgerEvents(user.accountId)).filter((e) => e.type === 'ReservationSettled' && ids.includes(e.data.generationId));
        return settled.length === ids.length;
      });
    });
    expect(unhandled).toEqual([]);
    const settlements = (await ledgerEvents(user.accountId)).filter((e) => e.type === 'ReservationSettled' && ids.includes(e.data.generationId));
    expect(settlements.map((e) => (e.data as { generationId: string }).generationId).sort()).toEqual([...ids].sort());
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(ids.length * COST);
    expect(after.reserved).toBe(0);
    // The server still answers.
    expect(await idOf(await ask(false))).toMatch(/^gen-/);
  });

  it('records a charged call whose record the disk refused once space is back, exactly once', async () => {
    const before = await h.settledBalance(user.accountId);
    // Room for the ledger's appends, none for the records: the calls are charged, their records refused.
    fill('generation-');
    const ids = await Promise.all([ask(true), ask(false), ask(true)].map(async (res) => idOf(await res)));
    await eventually('each record to have been refused and tried again', () => {
      const refused = refusedAppends(h.dataDir);
      return ids.every((id) => refused.filter((stream) => stream === generationStream(id)).length >= 2);
    });
    const settled = (await ledgerEvents(user.accountId)).filter((e) => e.type === 'ReservationSettled' && ids.includes(e.data.generationId));
    expect(settled).toHaveLength(ids.length);
    for (const id of ids) expect(await recordEvents(id)).toEqual([]);

    free();
    for (const id of ids) {
      const events = await eventually(`the record of ${id}`, async () => {
        const recorded = await recordEvents(id);
        return recorded.length > 0 && recorded;
      });
      expect(events.filter((e) => e.type === 'GenerationRequested')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'GenerationCompleted')).toHaveLength(1);
      expect(await h.generation(user.key, id)).toMatchObject({ id, total_cost: COST / 1e9 });
    }
    expect((await h.settledBalance(user.accountId)).settled - before.settled).toBe(ids.length * COST);
  });

  it('takes a record whose append was written but answered as failed for written: retried, not written twice', async () => {
    writeFileSync(ambiguousAppendsFlag(h.dataDir), 'generation-');
    const id = await idOf(await ask(false));
    const events = await eventually('the record', async () => {
      const recorded = await recordEvents(id);
      return recorded.length > 0 && recorded;
    });
    rmSync(ambiguousAppendsFlag(h.dataDir), { force: true });
    expect(events.filter((e) => e.type === 'GenerationRequested')).toHaveLength(1);
    expect(await h.generation(user.key, id)).toMatchObject({ id, total_cost: COST / 1e9 });
  });
});
