import { balanceQueries } from '../../projections/balances.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

const USD = 1_000_000_000;
let h: Harness;
let user: { id: string; key: string };

const BALANCE_FIELDS = 'purchased granted refunded available fees openReservations';
const rest = async (path: string, key: string) => {
  const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  h = await startHarness();
  const { body } = await h.gql(`mutation { openAccount(name: "Held") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  user = { id: body.data.openAccount.account.id, key: body.data.openAccount.initialKey.secret };
});
afterAll(async () => {
  await h.running.core.runner.resume();
  await h.stop();
});

describe('ledger commands answer with what the ledger decided, not with the read model', () => {
  it('grantCredits, purchaseCredits and refundCredits answer with the new balance while the projections are held back; balance and /credits agree', async () => {
    await h.running.core.runner.pause();

    const granted = await h.gql(
      `mutation($id: ID!) { grantCredits(accountId: $id, amount: ${3 * USD}, reason: "welcome") { ... on Balance { ${BALANCE_FIELDS} } ... on DomainError { code message } } }`,
      { id: user.id },
    );
    expect(granted.body.data.grantCredits).toEqual({ purchased: 0, granted: 3 * USD, refunded: 0, available: 3 * USD, fees: 0, openReservations: 0 });

    const bought = await h.gql(
      `mutation { purchaseCredits(amount: ${10 * USD}, paymentMethod: "pm_card_visa", idempotencyKey: "held-1") { ... on Purchase { fee balance { ${BALANCE_FIELDS} } } } }`,
      {},
      user.key,
    );
    expect(bought.body.data.purchaseCredits).toEqual({ fee: 0.8 * USD, balance: { purchased: 10 * USD, granted: 3 * USD, refunded: 0, available: 13 * USD, fees: 0.8 * USD, openReservations: 0 } });

    const refunded = await h.gql(
      `mutation($id: ID!) { refundCredits(accountId: $id, amount: ${USD}, reason: "goodwill") { ... on Balance { ${BALANCE_FIELDS} } } }`,
      { id: user.id },
    );
    expect(refunded.body.data.refundCredits).toEqual({ purchased: 10 * USD, granted: 3 * USD, refunded: USD, available: 12 * USD, fees: 0.8 * USD, openReservations: 0 });

    // Both read paths answer from the ledger's own state: the same numbers, with the read models still held back.
    const balance = await h.gql(`{ balance { ${BALANCE_FIELDS} } }`, {}, user.key);
    expect(balance.body.data.balance).toEqual(refunded.body.data.refundCredits);
    const credits = await rest('/api/v1/credits', user.key);
    expect(credits.body.data).toMatchObject({ total_credits_nanos: 12 * USD, available_nanos: 12 * USD });
    // The read model has not seen any of it yet: the answers above did not come from it.
    expect(await balanceQueries(h.running.core.readStore).byIds([user.id])).toEqual([]);

    await h.running.core.runner.resume();
    expect(await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition(), 5_000)).toBe(true);
    const [doc] = await balanceQueries(h.running.core.readStore).byIds([user.id]);
    expect(doc).toMatchObject({ purchased: 10 * USD, granted: 3 * USD, refunded: USD, available: 12 * USD, fees: 0.8 * USD });
  });
});
