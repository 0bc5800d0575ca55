/**
 * The ledger's promises of the reliability catalogue (shared/reference/reliability.md §6, T-LEDGER-1..3) through the
 * started app: concurrent POST /api/v1/chat/completions against a fake upstream, then the balance (GraphQL), the
 * billing audit and the account's ledger stream folded from its first event. (The same races at the ledger
 * service, across ledger instances and OS processes on one store: ledgerConcurrency, ledgerProcesses.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { available, ledgerDecider } from '../../src/modules/ledger/ledger.decider.js';
import { ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { readModelsCaughtUp } from '../support/eventually.js';
import type { FakeProvider, Script } from '../support/fakeProviders.js';
import { costOf, promptBound, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 1_000, completion: 2_000 };
const BACKUP_PRICES = { prompt: 1_500, completion: 3_000 };
const MESSAGES = [{ role: 'user', content: 'Race for the last credits of this account' }];
const MAX_TOKENS = 100;
const PROMPT = promptBound(MESSAGES);
/** The worst case of one request: what the gateway reserves, and what a provider reporting usage = c charges. */
const C = costOf(PRICES, PROMPT, MAX_TOKENS);

let h: GatewayHarness;
let primary: FakeProvider;

beforeAll(async () => {
  h = await startGatewayHarness();
  primary = await h.fakeEndpoint({ protocol: 'openai', slug: 'race-primary', model: 'test/race', prices: PRICES });
});
afterAll(async () => {
  await h.stop();
});

const BALANCE = `query ($id: ID!) { balance(accountId: $id) { available reserved settled granted purchased refunded openReservations } }`;
const AUDIT = `query ($id: ID!) { billingAudit(accountId: $id) { ok differences { model field expected actual } } }`;

/** Everything settled and projected: the balance read model, the audit, and the ledger stream folded from its start. */
const books = async (h: GatewayHarness, accountId: string) => {
  await h.running.core.gateway.idle();
  await readModelsCaughtUp(h.running.core);
  const balance = (await h.gqlOk(BALANCE, { id: accountId })).balance as Record<string, number>;
  const audit = (await h.gqlOk(AUDIT, { id: accountId })).billingAudit as { ok: boolean; differences: unknown[] };
  const events = await h.running.core.eventStore.readStream(ledgerStream(accountId));
  const folded = foldEvents(ledgerDecider, events as unknown as LedgerEvent[]);
  return { balance, audit, folded };
};

/** A fresh account and key (no history: its first requests are the race), funded with `credits`. */

/** `n` requests released together (all built before any is awaited), half of them streamed. */
const race = (account: Account, n: number) =>
  Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const stream = i % 2 === 1;
      const res = await h.chat(account.key, { model: 'test/race', messages: MESSAGES, max_tokens: MAX_TOKENS, stream });
      // A streamed answer is read to its end (its charge is settled after it), a refusal's body too.
      if (stream && res.status === 200) await readSseResponse(res);
      else await res.text();
      return { status: res.status, generationId: res.headers.get('x-generation-id') };
    }),
  );

describe('T-LEDGER-1/2: 200 concurrent requests against a fresh account funded for exactly 10 worst cases', () => {
  it('exactly 10 succeed and 190 get 402; Σ settled = B, available 0, no reservation left open', async () => {
    const account = await h.openAccount({ credits: 10 * C });
    primary.setDefault({ usage: { promptTokens: PROMPT, completionTokens: MAX_TOKENS } });
    const results = await race(account, 200);
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 402)).toHaveLength(190);
    const { balance, audit, folded } = await books(h, account.accountId);
    expect(balance).toMatchObject({ settled: 10 * C, available: 0, reserved: 0, openReservations: 0 });
    expect(audit).toEqual({ ok: true, differences: [] });
    expect(available(folded)).toBe(0);
    expect(folded.reservations.size).toBe(0);
  });

  it('with random usage in [0.1c, c]: Σ charged ≤ B, equal to what the generation records say, and available = B − Σ charged', async () => {
    const account = await h.openAccount({ credits: 10 * C });
    primary.setDefault({});
    const before = primary.requests.length;
    for (let i = 0; i < 200; i++) {
      const completionTokens = 10 + Math.floor(Math.random() * (MAX_TOKENS - 9));
      primary.script({ usage: { promptTokens: PROMPT, completionTokens } });
    }
    const results = await race(account, 200);
    const served = results.filter((r) => r.status === 200);
    // Each admitted on its worst case: at least 10; more when settlements below it freed credits meanwhile.
    expect(served.length).toBeGreaterThanOrEqual(10);
    expect(results.every((r) => r.status === 200 || r.status === 402)).toBe(true);
    const { balance, audit, folded } = await books(h, account.accountId);
    let recorded = 0;
    for (const { generationId } of served) recorded += ((await h.generation(account.key, generationId!)) as { switchyard: { cost_nanodollars: number } }).switchyard.cost_nanodollars;
    expect(balance.settled).toBe(recorded);
    expect(balance.settled).toBeLessThanOrEqual(10 * C);
    expect(balance).toMatchObject({ available: 10 * C - balance.settled!, reserved: 0, openReservations: 0 });
    expect(audit.ok).toBe(true);
    expect(available(folded)).toBe(10 * C - balance.settled!);
    expect(folded.reservations.size).toBe(0);
    // Every request the provider served was charged: no call answered for free.
    expect(primary.requests.length - before).toBe(served.length);
    primary.setDefault({});
  });
});

describe('T-LEDGER-3: no reservation leaks after a mix of every way a call ends', () => {
  let chaos: GatewayHarness;
  let first: FakeProvider;
  let second: FakeProvider;
  beforeAll(async () => {
    // Short timeouts, so that the hangs end (in a fallback) within the test.
    chaos = await startGatewayHarness({ GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '1500', GATEWAY_STREAM_IDLE_TIMEOUT_MS: '1500' });
    first = await chaos.fakeEndpoint({ protocol: 'openai', slug: 'chaos-primary', model: 'test/chaos', prices: PRICES });
    second = await chaos.fakeEndpoint({ protocol: 'openai', slug: 'chaos-backup', model: 'test/chaos', prices: BACKUP_PRICES });
  });
  afterAll(async () => {
    await chaos.stop();
  });

  it('success, 5xx before the first byte and the fallback switch, hangs, cuts mid-stream and at a byte, upstream 400s, over-reported usage, clients that leave mid-stream: afterwards reserved 0 and available = credits − Σ settled', async () => {
    const credits = 1_000 * C;
    const account = await chaos.openAccount({ credits });
    const faults: Script[] = [
      {},
      { status: 500 },
      { status: 503, headers: { 'retry-after': '0' } },
      { reset: true },
      { hang: true },
      { cutAfterChunks: 3 },
      { cutAtByte: 700 },
      { errorAfterChunks: 2 },
      { status: 400 },
      { slowTokenMs: 30 },
      { malformedJson: true },
      { usage: { promptTokens: 10 * PROMPT, completionTokens: 10 * MAX_TOKENS } },
    ];
    second.setDefault({ usage: { promptTokens: PROMPT, completionTokens: 20 } });
    const N = 96;
    for (let i = 0; i < N; i++) first.script(faults[i % faults.length]!);
    const outcomes = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const stream = i % 2 === 0;
        // Every third streamed client leaves after its first bytes.
        const leaves = stream && i % 3 === 0;
        const client = new AbortController();
        const res = await fetch(`${chaos.url}/api/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${account.key}` },
          body: JSON.stringify({ model: 'test/chaos', messages: MESSAGES, max_tokens: MAX_TOKENS, stream }),
          signal: client.signal,
        });
        if (leaves) {
          await res.body!.getReader().read();
          client.abort();
          return 'left';
        }
        await res.text();
        return res.status;
      }),
    );
    // Each kind of ending happened: answers, refusals of the upstream's 400, clients gone.
    expect(outcomes).toContain(200);
    expect(outcomes).toContain(400);
    expect(outcomes).toContain('left');
    const { balance, audit, folded } = await books(chaos, account.accountId);
    expect(balance).toMatchObject({ reserved: 0, openReservations: 0, purchased: 0, refunded: 0, granted: credits });
    expect(balance.settled).toBeGreaterThan(0);
    expect(balance.available).toBe(credits - balance.settled!);
    expect(audit).toEqual({ ok: true, differences: [] });
    expect(folded.reservations.size).toBe(0);
    expect(available(folded)).toBe(balance.available);
  });
});
