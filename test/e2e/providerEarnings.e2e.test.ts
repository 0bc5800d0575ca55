/**
 * A provider's earnings (GraphQL `providerTraffic.earnings`) are what the ledger charged for its service, exactly:
 * over real HTTP, calls to one provider's endpoint whole, streamed, streamed and cut after some tokens (charged for
 * what was sent, recorded as failed), cut after a retry on the same endpoint (charged once), refused (nothing), and
 * served with an account's own key (BYOK: the account paid the provider on that key; Switchyard's fee is not the
 * provider's). The rows' earnings add up to the ledger's settlements on the provider's shared key, to the nano-dollar.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { ledgerStream, type ReservationSettled } from '../../src/modules/ledger/ledger.events.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { readModelsCaughtUp } from '../support/eventually.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'earn/chat';
const PROVIDER = 'earn-up';
const PRICES = { prompt: 1_001, completion: 3_007 };
const USAGE = { promptTokens: 13, completionTokens: 7 };
const messages = [{ role: 'user', content: 'count' }];
/** What the upstream answers (a scripted answer replaces it whole, so cuts carry it too). */
const ANSWER = { text: 'alpha beta gamma delta epsilon zeta eta theta iota kappa', usage: USAGE };

let h: GatewayHarness;
let fake: FakeProvider;
let payer: Account;
let own: Account;

const settlements = async (...accounts: Account[]): Promise<ReservationSettled['data'][]> => {
  const out: ReservationSettled['data'][] = [];
  for (const { accountId } of accounts) {
    const events = (await h.running.core.eventStore.readStream(ledgerStream(accountId))) as unknown as RecordedEvent<ReservationSettled>[];
    for (const e of events) if (e.type === 'ReservationSettled') out.push(e.data);
  }
  return out;
};

const streamed = async (who: Account) => {
  const res = await h.chat(who.key, { model: MODEL, messages, max_tokens: 50, stream: true });
  expect(res.status).toBe(200);
  return readSseResponse(res);
};

beforeAll(async () => {
  h = await startGatewayHarness();
  // Takes any key: the account's own (BYOK) as well as the provider's shared one.
  fake = await startFakeProvider('openai');
  h.fakes.push(fake);
  await h.fakeEndpoint({ protocol: 'openai', slug: PROVIDER, model: MODEL, prices: PRICES, reuse: fake });
  fake.setDefault(ANSWER);
  expect((await h.gql('mutation { setProviderByok(provider: "earn-up", allowed: true) { ... on Provider { byok } } }', {}, ADMIN_KEY)).body.data.setProviderByok).toEqual({ byok: true });
  payer = await h.openAccount({ credits: 1_000_000_000 });
  own = await h.openAccount({ credits: 1_000_000_000 });
  const set = await h.gql('mutation { setByokKey(provider: "earn-up", apiKey: "sk-own-key-of-the-account-0001") { __typename } }', {}, own.key);
  expect(set.body.data.setByokKey.__typename).toBe('Account');

  // Whole, and streamed to the end.
  expect((await h.chat(payer.key, { model: MODEL, messages, max_tokens: 50 })).status).toBe(200);
  expect((await streamed(payer)).done).toBe(true);
  // Cut after some tokens: charged for what was sent, recorded as failed.
  fake.script({ ...ANSWER, cutAfterChunks: 3 });
  const cut = await streamed(payer);
  expect(cut.done).toBe(false);
  // A 503, retried on the same endpoint, then cut: one charge, on the second attempt.
  fake.script({ status: 503 });
  fake.script({ ...ANSWER, cutAfterChunks: 4 });
  expect((await streamed(payer)).done).toBe(false);
  // A 503, retried, then whole.
  fake.script({ status: 503 });
  expect((await h.chat(payer.key, { model: MODEL, messages, max_tokens: 50 })).status).toBe(200);
  // Refused upstream: nothing charged.
  fake.script({ status: 400 });
  expect((await h.chat(payer.key, { model: MODEL, messages, max_tokens: 50 })).status).toBe(400);
  // On the account's own key: the fee is Switchyard's.
  expect((await h.chat(own.key, { model: MODEL, messages, max_tokens: 50 })).status).toBe(200);
  await h.running.core.gateway.idle();
  await readModelsCaughtUp(h.running.core);
});
afterAll(async () => {
  await h?.stop();
});

describe("a provider's earnings", () => {
  it('are what the ledger charged for its calls on its shared key: cut streams included, BYOK fees not', async () => {
    const settled = (await settlements(payer, own)).filter((s) => s.usage?.provider === PROVIDER);
    const shared = settled.filter((s) => s.byok === undefined);
    const byok = settled.filter((s) => s.byok !== undefined);
    // 5 charged calls on the shared key (2 of them cut streams, charged less than a whole answer) and 1 BYOK fee.
    expect(shared).toHaveLength(5);
    expect(shared.filter((s) => s.actual < USAGE.promptTokens * PRICES.prompt + USAGE.completionTokens * PRICES.completion)).toHaveLength(2);
    expect(byok).toHaveLength(1);
    expect(byok[0]!.actual).toBeGreaterThan(0);
    const charged = shared.reduce((sum, s) => sum + s.actual, 0);
    expect(shared.every((s) => s.actual === s.charged)).toBe(true);

    const rows = (await h.gqlOk(`{ providerTraffic(provider: "${PROVIDER}") { endpointId day requests errors served earnings } }`)).providerTraffic;
    expect(rows).toEqual([{ endpointId: `${MODEL}@${PROVIDER}`, day: new Date().toISOString().slice(0, 10), requests: expect.any(Number), errors: expect.any(Number), served: expect.any(Number), earnings: charged }]);
    // The attempts are counted as before: 8 calls, 2 of them retried after a 503; the 503s, the 400 and the 2 cuts failed.
    expect(rows[0]).toMatchObject({ requests: 9, errors: 5, served: 4 });
  });
});
