import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentFailedError } from '../../src/errors.js';
import { builtInPaymentProcessor, type PaymentProcessor, type PaymentRequest } from '../../src/modules/ledger/payments.js';
import { startHarness, type Harness } from '../support/appHarness.js';

const USD = 1_000_000_000;
let h: Harness;

/**
 * A processor as a real one behaves behind the payment port, counting what it takes: one payment per idempotency key
 * (the same key and request again answers that payment), a changed request under a used key refused (Stripe's 400),
 * and a moment's wait per charge, as a network call has, so concurrent purchases overlap.
 */
const countingProcessor = () => {
  const inner = builtInPaymentProcessor();
  const payments = new Map<string, { request: PaymentRequest; paymentRef: string }>();
  const calls: PaymentRequest[] = [];
  const processor: PaymentProcessor = {
    name: 'counting',
    fee: inner.fee,
    async charge(request) {
      calls.push(request);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const key = `${request.accountId}\n${request.idempotencyKey}`;
      const earlier = payments.get(key);
      if (earlier) {
        const same = earlier.request.amount === request.amount && earlier.request.fee === request.fee && earlier.request.paymentMethod === request.paymentMethod;
        if (!same) throw new PaymentFailedError('Keys for idempotent requests can only be used with the same parameters they were first used with');
        return { paymentRef: earlier.paymentRef };
      }
      const { paymentRef } = await inner.charge(request);
      payments.set(key, { request, paymentRef });
      return { paymentRef };
    },
  };
  return {
    processor,
    calls,
    /** What the customers paid (amount + fee), per account. */
    taken: (accountId: string) => [...payments.values()].filter((p) => p.request.accountId === accountId).reduce((sum, p) => sum + p.request.amount + p.request.fee, 0),
  };
};
const payments = countingProcessor();

const openUser = async (name: string) => {
  const { body } = await h.gql(`mutation($n: String!) { openAccount(name: $n) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { n: name });
  const p = body.data.openAccount;
  return { id: p.account.id as string, key: p.initialKey.secret as string };
};
const PURCHASE = `mutation($amount: Money!, $pm: String!, $idem: String) {
  purchaseCredits(amount: $amount, paymentMethod: $pm, idempotencyKey: $idem) {
    __typename
    ... on Purchase { paymentRef amount fee total balance { purchased fees } }
    ... on DomainError { code message details }
  }
}`;
const purchase = async (key: string, amount: number, idem: string, pm = 'pm_card_visa') => (await h.gql(PURCHASE, { amount, pm, idem }, key)).body.data.purchaseCredits;
const balance = async (key: string) => (await h.gql('{ balance { purchased granted fees } }', {}, key)).body.data.balance;

beforeAll(async () => {
  h = await startHarness({}, undefined, { payments: payments.processor });
});
afterAll(async () => {
  await h.stop();
});

describe('a purchase is charged only once the ledger holds room for it', () => {
  it('six concurrent $600 purchases with room for one under the credits cap: one charged and credited, five refused before any charge', async () => {
    const user = await openUser('Near the cap');
    const grant = await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: ${999_000 * USD}, reason: "big") { __typename } }`, { id: user.id });
    expect(grant.body.data.grantCredits.__typename).toBe('Balance');
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => purchase(user.key, 600 * USD, `cap-${i}`)));
    const bought = results.filter((r) => r.__typename === 'Purchase');
    expect(bought).toHaveLength(1);
    expect(results.filter((r) => r.code === 'VALIDATION')).toHaveLength(5);
    for (const refused of results.filter((r) => r.code === 'VALIDATION')) expect(refused.message).toMatch(/above the limit of \$1,000,000\.00/);
    expect(payments.calls.filter((c) => c.accountId === user.id)).toHaveLength(1);
    expect(payments.taken(user.id)).toBe(bought[0].total);
    expect(await balance(user.key)).toEqual({ purchased: 600 * USD, granted: 999_000 * USD, fees: bought[0].fee });
  });

  it('a declined card takes nothing, credits nothing and gives the room under the cap back', async () => {
    const user = await openUser('Declined');
    await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: ${999_000 * USD}, reason: "big") { __typename } }`, { id: user.id });
    expect(await purchase(user.key, 1_000 * USD, 'd-1', 'pm_card_declined')).toMatchObject({ code: 'PAYMENT_FAILED' });
    expect(await purchase(user.key, 1_000 * USD, 'd-2')).toMatchObject({ __typename: 'Purchase', amount: 1_000 * USD });
    expect(await balance(user.key)).toMatchObject({ purchased: 1_000 * USD });
  });
});

describe('a purchase idempotency key names one purchase', () => {
  it('the same key with another amount or payment method is a CONFLICT before the processor is asked; the same request answers the recorded purchase', async () => {
    const user = await openUser('Retrier');
    const first = await purchase(user.key, USD, 'pk1');
    expect(first).toMatchObject({ __typename: 'Purchase', amount: USD, fee: 0.8 * USD, total: 1.8 * USD });
    const callsBefore = payments.calls.length;
    const other = await purchase(user.key, 2 * USD, 'pk1');
    expect(other).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringMatching(/idempotency key was used for another purchase/i) });
    expect(await purchase(user.key, USD, 'pk1', 'pm_card_mastercard')).toMatchObject({ code: 'CONFLICT' });
    expect(payments.calls.length).toBe(callsBefore);
    const again = await purchase(user.key, USD, 'pk1');
    expect(again).toEqual({ ...first, balance: again.balance });
    expect(await balance(user.key)).toMatchObject({ purchased: USD, fees: 0.8 * USD });
    expect(payments.taken(user.id)).toBe(1.8 * USD);
  });

  it('ten concurrent purchases under one key, five of $1.00 and five of $1.01: one purchase, answered to its own amount, the others CONFLICT', async () => {
    const user = await openUser('Racer');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => purchase(user.key, i % 2 === 0 ? USD : 1.01 * USD, 'one-key')));
    const bought = results.filter((r) => r.__typename === 'Purchase');
    const amount = bought[0].amount;
    expect(bought).toHaveLength(5);
    for (const p of bought) expect(p).toMatchObject({ amount, paymentRef: bought[0].paymentRef, fee: 0.8 * USD });
    expect(results.filter((r) => r.code === 'CONFLICT')).toHaveLength(5);
    expect(await balance(user.key)).toMatchObject({ purchased: amount });
    expect(payments.taken(user.id)).toBe(amount + 0.8 * USD);
    expect(payments.calls.filter((c) => c.accountId === user.id && c.amount !== amount)).toEqual([]);
  });
});

describe('purchaseFee quotes only what purchaseCredits accepts', () => {
  it('refuses a nano-dollar, a sub-cent amount and 2^53 - 1 with the VALIDATION a purchase gives, and quotes a whole-cent amount', async () => {
    const user = await openUser('Quoter');
    const fee = async (amount: number) => (await h.gql('query($a: Money!) { purchaseFee(amount: $a) }', { a: amount }, user.key)).body;
    for (const [amount, message] of [
      [1, /whole number of cents/],
      [10_000_001, /whole number of cents/],
      [Number.MAX_SAFE_INTEGER, /at most \$1,000,000\.00/],
    ] as const) {
      const quoted = await fee(amount);
      const bought = await purchase(user.key, amount, `quote-${amount}`);
      expect(quoted.errors?.[0]).toMatchObject({ message: bought.message, extensions: { code: 'VALIDATION' } });
      expect(bought.message).toMatch(message);
    }
    expect((await fee(10 * USD)).data.purchaseFee).toBe(0.8 * USD);
    expect((await fee(1_000_000 * USD)).data.purchaseFee).toBe(55_000 * USD);
  });
});
