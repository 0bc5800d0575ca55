import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConflictError, IdempotencyKeyReusedError, InsufficientCreditsError, KeyLimitReachedError, NotFoundError, RateLimitedError, ValidationError } from '../../src/errors.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { available, ledgerDecider, type LedgerCommand, type LedgerState } from '../../src/modules/ledger/ledger.decider.js';
import type { LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { computeFee } from '../../src/modules/ledger/payments.js';
import { windowEnd, windowId } from '../../src/modules/ledger/windows.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const USD = 1_000_000_000;
const at = '2026-11-25T10:00:00.000Z';
const acc = 'acc_1';
const ledger = deciderSpec(ledgerDecider);
const noFreeLimits = { perMinute: null, perDay: null };
const purchased = (amount: number, paymentRef = 'pay_1'): LedgerEvent => ({ type: 'CreditsPurchased', data: { accountId: acc, amount, fee: computeFee(amount), paymentRef, at } });
const reserve = (generationId: string, amount: number, extra: Partial<Extract<LedgerCommand, { type: 'Reserve' }>['data']> = {}): LedgerCommand => ({
  type: 'Reserve',
  data: { accountId: acc, generationId, keyId: 'key_1', amount, free: false, keyLimit: null, freeTier: noFreeLimits, at, ...extra },
});
const reserved = (generationId: string, amount: number, when = at, free = false): LedgerEvent => ({
  type: 'CreditsReserved',
  data: { accountId: acc, generationId, keyId: 'key_1', amount, free, at: when },
});
const decide = (given: LedgerEvent[], command: LedgerCommand) => ledgerDecider.decide(command, foldEvents(ledgerDecider, given));

describe('purchases, grants and refunds', () => {
  it('records a purchase with its fee, once per payment reference', () => {
    ledger([]).when({ type: 'PurchaseCredits', data: { accountId: acc, amount: 10 * USD, fee: 0.8 * USD, paymentRef: 'pay_1', at } }).then([
      { type: 'CreditsPurchased', data: { accountId: acc, amount: 10 * USD, fee: 0.8 * USD, paymentRef: 'pay_1', at } },
    ]);
    ledger([purchased(10 * USD)]).when({ type: 'PurchaseCredits', data: { accountId: acc, amount: 10 * USD, fee: 0.8 * USD, paymentRef: 'pay_1', at } }).then([]);
  });
  it('refuses zero, negative, fractional, sub-cent and huge amounts', () => {
    for (const amount of [0, -USD, 1.5, USD + 1, 2_000_000 * USD]) {
      ledger([]).when({ type: 'PurchaseCredits', data: { accountId: acc, amount, fee: 0, paymentRef: 'p', at } }).thenThrows(ValidationError);
    }
    ledger([]).when({ type: 'GrantCredits', data: { accountId: acc, amount: 0, reason: 'x', grantedBy: 'acc_root', at } }).thenThrows(ValidationError);
  });
  it('computes the fee as 5.5% with a $0.80 minimum, rounded up to a whole cent (what a card can be charged)', () => {
    expect(computeFee(10 * USD)).toBe(0.8 * USD);
    expect(computeFee(100 * USD)).toBe(5.5 * USD);
    // $14.55 × 5.5% = $0.80025 → $0.81; $100.01 → $5.50055 → $5.51.
    expect(computeFee(14_550_000_000)).toBe(810_000_000);
    expect(computeFee(100_010_000_000)).toBe(5_510_000_000);
    expect(computeFee(123_456_780)).toBe(0.8 * USD);
    // $20.00000002 × 5.5% (past 2^53 if multiplied whole) = $1.1000000011 → $1.11.
    expect(computeFee(1_000_000_001 * 20)).toBe(1_110_000_000);
    for (const amount of [1_000_000_000, 33_330_000_000, 999_999_990_000_000]) expect(computeFee(amount) % 10_000_000).toBe(0);
  });
  it('refunds at most what was purchased and is still available', () => {
    const grant: LedgerEvent = { type: 'CreditsGranted', data: { accountId: acc, amount: 50 * USD, reason: 'promo', grantedBy: 'acc_root', at } };
    const refund = (amount: number): LedgerCommand => ({ type: 'RefundCredits', data: { accountId: acc, amount, reason: 'r', refundedBy: 'acc_root', at } });
    ledger([purchased(10 * USD), grant]).when(refund(11 * USD)).thenThrows(ConflictError, /exceeds what was purchased/);
    ledger([purchased(10 * USD), reserved('g1', 8 * USD)]).when(refund(5 * USD)).thenThrows(ConflictError, /exceeds the available balance/);
    expect(decide([purchased(10 * USD)], refund(10 * USD))).toHaveLength(1);
  });
  it('one key is one grant or refund: the same amount again records nothing (also past the cap or what is refundable), another is refused', () => {
    const grant = (amount: number, grantKey?: string): LedgerCommand => ({ type: 'GrantCredits', data: { accountId: acc, amount, reason: 'promo', grantedBy: 'acc_root', ...(grantKey && { grantKey }), at }, creditsCap: 10 * USD });
    const refund = (amount: number, refundKey?: string): LedgerCommand => ({ type: 'RefundCredits', data: { accountId: acc, amount, reason: 'r', refundedBy: 'acc_root', ...(refundKey && { refundKey }), at } });
    const granted = decide([], grant(10 * USD, 'k1'));
    expect(granted).toEqual([{ type: 'CreditsGranted', data: { accountId: acc, amount: 10 * USD, reason: 'promo', grantedBy: 'acc_root', grantKey: 'k1', at } }]);
    ledger(granted).when(grant(10 * USD, 'k1')).then([]);
    ledger(granted).when(grant(5 * USD, 'k1')).thenThrows(IdempotencyKeyReusedError, /another grant \(\$10\.00\)/);
    // Unkeyed, or another key: a new grant (here past the cap).
    ledger(granted).when(grant(USD)).thenThrows(ValidationError, /above the limit/);
    const refunded = [purchased(10 * USD), ...decide([purchased(10 * USD)], refund(10 * USD, 'k1'))];
    expect(refunded[1]).toMatchObject({ type: 'CreditsRefunded', data: { refundKey: 'k1' } });
    ledger(refunded).when(refund(10 * USD, 'k1')).then([]);
    ledger(refunded).when(refund(USD, 'k1')).thenThrows(IdempotencyKeyReusedError, /another refund/);
    ledger(refunded).when(refund(10 * USD, 'k2')).thenThrows(ConflictError, /exceeds what was purchased/);
    // The keys of grants and refunds are apart: a refund's key is no grant's (decided as a new grant, here past the cap).
    ledger(refunded).when(grant(USD, 'k1')).thenThrows(ValidationError, /above the limit/);
  });
});

describe('purchases hold their room under the credits cap while they are paid', () => {
  const cap = 1_000 * USD;
  const grant = (amount: number): LedgerEvent => ({ type: 'CreditsGranted', data: { accountId: acc, amount, reason: 'r', grantedBy: 'acc_root', at } });
  const start = (purchaseKey: string, amount: number, method = 'm_visa'): LedgerCommand => ({
    type: 'StartPurchase',
    data: { accountId: acc, purchaseKey, amount, fee: computeFee(amount), method, at },
    creditsCap: cap,
  });
  const started = (purchaseKey: string, amount: number, method = 'm_visa'): LedgerEvent => ({ type: 'PurchaseStarted', data: { accountId: acc, purchaseKey, amount, fee: computeFee(amount), method, at } });
  const record = (purchaseKey: string, amount: number, paymentRef = `pay_${purchaseKey}`): LedgerCommand => ({
    type: 'PurchaseCredits',
    data: { accountId: acc, amount, fee: computeFee(amount), paymentRef, purchaseKey, at },
    creditsCap: cap,
  });
  const recorded = (purchaseKey: string, amount: number): LedgerEvent => ({ type: 'CreditsPurchased', data: { accountId: acc, amount, fee: computeFee(amount), paymentRef: `pay_${purchaseKey}`, purchaseKey, at } });
  const failed = (purchaseKey: string, amount: number): LedgerEvent => ({ type: 'PurchaseFailed', data: { accountId: acc, purchaseKey, amount, reason: 'declined', at } });

  it('a started purchase counts against the cap for the next purchase and grant, until it fails', () => {
    ledger([grant(400 * USD)]).when(start('a', 600 * USD)).then([started('a', 600 * USD)]);
    ledger([grant(400 * USD), started('a', 300 * USD)]).when(start('b', 301 * USD)).thenThrows(ValidationError, /\$300\.00 of purchases being paid/);
    ledger([grant(400 * USD), started('a', 300 * USD)]).when({ type: 'GrantCredits', data: { accountId: acc, amount: 301 * USD, reason: 'r', grantedBy: 'acc_root', at }, creditsCap: cap }).thenThrows(ValidationError);
    expect(decide([grant(400 * USD), started('a', 300 * USD), failed('a', 300 * USD)], start('b', 600 * USD))).toHaveLength(1);
  });
  it('recording a started purchase needs no room (it was held) and records it once', () => {
    // Granted to the cap after the purchase started would have been refused; recorded, the hold becomes the purchase.
    ledger([grant(400 * USD), started('a', 600 * USD)]).when(record('a', 600 * USD)).then([recorded('a', 600 * USD)]);
    ledger([grant(400 * USD), started('a', 600 * USD), recorded('a', 600 * USD)]).when(record('a', 600 * USD)).then([]);
    const state = foldEvents(ledgerDecider, [grant(400 * USD), started('a', 600 * USD), recorded('a', 600 * USD)]);
    expect({ purchased: state.purchased, held: state.held }).toEqual({ purchased: 600 * USD, held: 0 });
    ledger([]).when(record('nothing', 10 * USD)).thenThrows(ConflictError);
  });
  it('one key is one purchase: the same request again changes nothing, another amount or method is refused', () => {
    ledger([started('a', 10 * USD)]).when(start('a', 10 * USD)).then([]);
    ledger([started('a', 10 * USD), recorded('a', 10 * USD)]).when(start('a', 10 * USD)).then([]);
    ledger([started('a', 10 * USD), recorded('a', 10 * USD)]).when(start('a', 20 * USD)).thenThrows(IdempotencyKeyReusedError, /another purchase/);
    ledger([started('a', 10 * USD)]).when(start('a', 10 * USD, 'm_mastercard')).thenThrows(IdempotencyKeyReusedError, /another payment method/);
    // A refused payment gives the key back.
    ledger([started('a', 10 * USD), failed('a', 10 * USD)]).when(start('a', 20 * USD)).then([started('a', 20 * USD)]);
  });
  it('a refused payment gives its hold back once; a recorded purchase cannot fail', () => {
    const fail: LedgerCommand = { type: 'FailPurchase', data: { accountId: acc, purchaseKey: 'a', reason: 'declined', at } };
    ledger([started('a', 10 * USD)]).when(fail).then([failed('a', 10 * USD)]);
    ledger([started('a', 10 * USD), failed('a', 10 * USD)]).when(fail).then([]);
    ledger([started('a', 10 * USD), recorded('a', 10 * USD)]).when(fail).then([]);
  });
});

describe('reservations', () => {
  it('grants a reservation the balance covers and refuses one it does not (402)', () => {
    ledger([purchased(10 * USD)]).when(reserve('g1', 10 * USD)).then([reserved('g1', 10 * USD)]);
    ledger([purchased(10 * USD), reserved('g1', 6 * USD)]).when(reserve('g2', 5 * USD)).thenThrows(InsufficientCreditsError, /available balance is \$4/);
  });
  it('refuses a second reservation for the same generation', () => {
    ledger([purchased(10 * USD), reserved('g1', USD)]).when(reserve('g1', USD)).thenThrows(ConflictError);
  });
  it('enforces a key limit per daily, weekly (Monday) and monthly window, and for its lifetime', () => {
    const daily = { limit: 3 * USD, reset: 'daily' as const };
    const funded = [purchased(100 * USD)];
    ledger([...funded, reserved('g1', 2 * USD)]).when(reserve('g2', 2 * USD, { keyLimit: daily })).thenThrows(KeyLimitReachedError, /daily limit/);
    // Yesterday's spending does not count today.
    ledger([...funded, reserved('g1', 2 * USD, '2026-11-24T23:59:59.000Z')]).when(reserve('g2', 2 * USD, { keyLimit: daily })).then([reserved('g2', 2 * USD)]);
    // 2026-11-23 is a Monday: Sunday's spending is last week's, Monday's is this week's.
    const weekly = { limit: 3 * USD, reset: 'weekly' as const };
    ledger([...funded, reserved('g1', 2 * USD, '2026-11-22T12:00:00.000Z')]).when(reserve('g2', 2 * USD, { keyLimit: weekly })).then([reserved('g2', 2 * USD)]);
    ledger([...funded, reserved('g1', 2 * USD, '2026-11-23T00:00:00.000Z')]).when(reserve('g2', 2 * USD, { keyLimit: weekly })).thenThrows(KeyLimitReachedError);
    const lifetime = { limit: 3 * USD, reset: 'never' as const };
    ledger([...funded, reserved('g1', 2 * USD, '2020-01-01T00:00:00.000Z')]).when(reserve('g2', 2 * USD, { keyLimit: lifetime })).thenThrows(KeyLimitReachedError);
    // Another key of the account is not limited by this key's spending.
    ledger([...funded, reserved('g1', 2 * USD)]).when(reserve('g2', 2 * USD, { keyLimit: daily, keyId: 'key_2' })).then([
      { type: 'CreditsReserved', data: { accountId: acc, generationId: 'g2', keyId: 'key_2', amount: 2 * USD, free: false, at } },
    ]);
  });
  it('limits free-model requests per minute and per day, with the time to retry', () => {
    const tier = { perMinute: 2, perDay: 3 };
    const free = (id: string, when: string) => reserved(id, 0, when, true);
    const t0 = '2026-11-25T10:00:00.000Z';
    const error = (() => {
      try {
        decide([free('f1', t0), free('f2', '2026-11-25T10:00:30.000Z')], reserve('f3', 0, { free: true, freeTier: tier, at: '2026-11-25T10:00:40.000Z' }));
      } catch (e) {
        return e as RateLimitedError;
      }
    })();
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error!.retryAfterMs).toBe(20_000);
    // A minute later the minute window has room, but the day is used up after three.
    const day = [free('f1', t0), free('f2', '2026-11-25T10:00:30.000Z'), free('f3', '2026-11-25T10:02:00.000Z')];
    const dayError = (() => {
      try {
        decide(day, reserve('f4', 0, { free: true, freeTier: tier, at: '2026-11-25T12:00:00.000Z' }));
      } catch (e) {
        return e as RateLimitedError;
      }
    })();
    expect(dayError).toBeInstanceOf(RateLimitedError);
    expect(dayError!.retryAfterMs).toBe(12 * 3600_000);
    // The next UTC day starts afresh.
    expect(decide(day, reserve('f4', 0, { free: true, freeTier: tier, at: '2026-11-26T00:00:01.000Z' }))).toHaveLength(1);
  });
  it('blocks every request, free ones too, while the balance is negative', () => {
    // A negative balance cannot arise from the ledger's own operations; seed one through a settled overdraft event.
    const overdraft: LedgerEvent = {
      type: 'ReservationSettled',
      data: { accountId: acc, generationId: 'g0', keyId: null, reserved: 0, actual: USD, charged: USD, uncollected: 0, usage: null, late: true, reservedAt: at, at },
    };
    ledger([overdraft]).when(reserve('f1', 0, { free: true })).thenThrows(InsufficientCreditsError, /negative/);
  });
});

describe('settlement', () => {
  const funded = [purchased(10 * USD), reserved('g1', 2 * USD)];
  const settle = (actual: number, generationId = 'g1'): LedgerCommand => ({ type: 'Settle', data: { accountId: acc, generationId, actual, usage: null, at } });
  it('settles the actual cost and releases the rest of the reservation', () => {
    const [event] = decide(funded, settle(USD));
    expect(event).toMatchObject({ type: 'ReservationSettled', data: { reserved: 2 * USD, actual: USD, charged: USD, uncollected: 0 } });
    const state = foldEvents(ledgerDecider, [...funded, event!]);
    expect(available(state)).toBe(9 * USD);
    expect(state.reserved).toBe(0);
  });
  it('settles exactly once: the same amount again is a no-op, a different one is refused', () => {
    const [event] = decide(funded, settle(USD));
    ledger([...funded, event!]).when(settle(USD)).then([]);
    ledger([...funded, event!]).when(settle(USD + 1)).thenThrows(ConflictError, /already settled/);
  });
  it('never charges more than the reservation: an overrun is recorded as uncollected, not taken from the balance', () => {
    const [inBudget] = decide(funded, settle(2 * USD));
    expect(inBudget).toMatchObject({ data: { charged: 2 * USD, uncollected: 0 } });
    const [beyond] = decide(funded, settle(5 * USD));
    expect(beyond).toMatchObject({ data: { actual: 5 * USD, reserved: 2 * USD, charged: 2 * USD, uncollected: 3 * USD } });
    expect(available(foldEvents(ledgerDecider, [...funded, beyond!]))).toBe(8 * USD);
  });
  it('refuses to settle an unknown reservation', () => {
    ledger(funded).when(settle(USD, 'nope')).thenThrows(NotFoundError);
  });
  it('releases idempotently, and a released reservation cannot be settled', () => {
    const release: LedgerCommand = { type: 'Release', data: { accountId: acc, generationId: 'g1', reason: 'provider error', at } };
    const [released] = decide(funded, release);
    expect(released).toMatchObject({ type: 'ReservationReleased', data: { reserved: 2 * USD } });
    ledger([...funded, released!]).when(release).then([]);
    ledger([...funded, released!]).when(settle(USD)).thenThrows(ConflictError, /released/);
  });
  it('settles late after expiry, charging what the balance allows at that time, never more than was reserved', () => {
    const [expired] = decide(funded, { type: 'Expire', data: { accountId: acc, generationId: 'g1', at } });
    const [late] = decide([...funded, expired!], settle(USD));
    expect(late).toMatchObject({ type: 'ReservationSettled', data: { reserved: 0, charged: USD, late: true } });
    const [lateOverrun] = decide([...funded, expired!], settle(7 * USD));
    expect(lateOverrun).toMatchObject({ type: 'ReservationSettled', data: { actual: 7 * USD, charged: 2 * USD, uncollected: 5 * USD, late: true } });
  });
});

describe('money in messages', () => {
  it('prints dollars with cents ("$11.00", not "$11.")', () => {
    const refund = (amount: number): LedgerCommand => ({ type: 'RefundCredits', data: { accountId: acc, amount, reason: 'r', refundedBy: 'acc_root', at } });
    ledger([purchased(10 * USD)]).when(refund(11 * USD)).thenThrows(ConflictError, /^A refund of \$11\.00 exceeds what was purchased and not yet refunded \(\$10\.00\)$/);
    ledger([purchased(USD)]).when(reserve('g1', 2 * USD + 31_050)).thenThrows(InsufficientCreditsError, /up to \$2\.00003105, but the available balance is \$1\.00$/);
  });
});

describe('the credits cap', () => {
  const purchase = (amount: number, paymentRef: string): LedgerCommand => ({ type: 'PurchaseCredits', data: { accountId: acc, amount, fee: 0, paymentRef, at }, creditsCap: 100 * USD });
  const grant = (amount: number): LedgerCommand => ({ type: 'GrantCredits', data: { accountId: acc, amount, reason: 'r', grantedBy: 'acc_root', at }, creditsCap: 100 * USD });
  it('refuses a purchase or a grant that would take lifetime purchased + granted beyond the cap (VALIDATION)', () => {
    expect(decide([purchased(60 * USD)], grant(40 * USD))).toHaveLength(1);
    ledger([purchased(60 * USD)]).when(grant(40 * USD + 1)).thenThrows(ValidationError, /would bring this account's credits \(purchased \+ granted\) to \$100\.000000001, above the limit of \$100\.00 per account/);
    ledger([purchased(60 * USD)]).when(purchase(41 * USD, 'pay_2')).thenThrows(ValidationError, /above the limit of \$100\.00/);
    // Spending or refunding does not make room: the counters themselves must stay exact.
    const refunded: LedgerEvent = { type: 'CreditsRefunded', data: { accountId: acc, amount: 60 * USD, reason: 'r', refundedBy: 'acc_root', at } };
    ledger([purchased(60 * USD), refunded]).when(purchase(41 * USD, 'pay_2')).thenThrows(ValidationError);
  });
  it('defaults to $1,000,000 per account', () => {
    const big = (paymentRef: string): LedgerCommand => ({ type: 'PurchaseCredits', data: { accountId: acc, amount: 1_000_000 * USD, fee: 0, paymentRef, at } });
    ledger([purchased(1_000_000 * USD)]).when(big('pay_2')).thenThrows(ValidationError, /above the limit of \$1,000,000\.00 per account/);
  });
  it('a repeated purchase (same payment reference) is still a no-op at the cap', () => {
    ledger([purchased(100 * USD)]).when(purchase(100 * USD, 'pay_1')).then([]);
  });
});

describe('windows', () => {
  it('starts weeks on Monday and months on the 1st, in UTC', () => {
    const day = (iso: string) => Date.parse(iso) / 86_400_000;
    expect(windowId('weekly', Date.parse('2026-11-29T23:59:59Z'))).toBe(day('2026-11-23T00:00:00Z'));
    expect(windowId('weekly', Date.parse('2026-11-30T00:00:00Z'))).toBe(day('2026-11-30T00:00:00Z'));
    expect(windowId('weekly', Date.parse('2026-11-23T00:00:00Z'))).toBe(day('2026-11-23T00:00:00Z'));
    expect(windowId('daily', Date.parse('2026-11-25T23:59:59.999Z'))).toBe(day('2026-11-25T00:00:00Z'));
    expect(windowId('monthly', Date.parse('2026-11-30T23:00:00Z'))).toBe(2026 * 12 + 10);
    expect(windowId('monthly', Date.parse('2026-12-01T00:00:00Z'))).toBe(2026 * 12 + 11);
    expect(new Date(windowEnd('weekly', Date.parse('2026-11-25T10:00:00Z'))).toISOString()).toBe('2026-11-30T00:00:00.000Z');
    expect(new Date(windowEnd('monthly', Date.parse('2026-12-31T10:00:00Z'))).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });
});

/** Random interleavings of every ledger operation keep the invariant, and folding the events gives the same state. */
describe('ledger properties', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('purchase' as const), cents: fc.integer({ min: 1, max: 5_000 }) }),
    fc.record({ kind: fc.constant('grant' as const), nanos: fc.integer({ min: 1, max: 20 * USD }) }),
    fc.record({ kind: fc.constant('refund' as const), cents: fc.integer({ min: 1, max: 5_000 }) }),
    fc.record({ kind: fc.constant('reserve' as const), nanos: fc.integer({ min: 0, max: 30 * USD }), free: fc.boolean(), key: fc.constantFrom('key_1', 'key_2', null) }),
    fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), nanos: fc.integer({ min: 0, max: 40 * USD }) }),
    fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('expire' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 3 * 86_400 }) }),
  );

  const summary = (s: LedgerState) => ({
    purchased: s.purchased,
    granted: s.granted,
    refunded: s.refunded,
    settled: s.settled,
    reserved: s.reserved,
    uncollected: s.uncollected,
    reservations: [...s.reservations].sort(),
    finalized: [...s.finalized].sort(),
    keys: [...s.keys].sort(),
    freeDay: s.freeDay,
    freeRecent: s.freeRecent,
  });

  it('purchased + granted − refunded − settled − reserved ≥ 0 after every step; fold(events) = state', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const state = ledgerDecider.initialState();
        const events: LedgerEvent[] = [];
        let clock = Date.parse('2026-11-23T00:00:00Z');
        let n = 0;
        const ids: string[] = [];
        for (const o of ops) {
          const when = new Date(clock).toISOString();
          const pick = (i: number) => ids[i % Math.max(1, ids.length)] ?? 'none';
          const command: LedgerCommand | null =
            o.kind === 'purchase'
              ? { type: 'PurchaseCredits', data: { accountId: acc, amount: o.cents * 10_000_000, fee: 0, paymentRef: `p${n++}`, at: when } }
              : o.kind === 'grant'
                ? { type: 'GrantCredits', data: { accountId: acc, amount: o.nanos, reason: 'r', grantedBy: 'a', at: when } }
                : o.kind === 'refund'
                  ? { type: 'RefundCredits', data: { accountId: acc, amount: o.cents * 10_000_000, reason: 'r', refundedBy: 'a', at: when } }
                  : o.kind === 'reserve'
                    ? {
                        type: 'Reserve',
                        data: { accountId: acc, generationId: `g${n++}`, keyId: o.key, amount: o.free ? 0 : o.nanos, free: o.free, keyLimit: { limit: 25 * USD, reset: 'daily' }, freeTier: { perMinute: 3, perDay: 10 }, at: when },
                      }
                    : o.kind === 'settle'
                      ? { type: 'Settle', data: { accountId: acc, generationId: pick(o.pick), actual: o.nanos, usage: null, at: when } }
                      : o.kind === 'release'
                        ? { type: 'Release', data: { accountId: acc, generationId: pick(o.pick), reason: 'x', at: when } }
                        : o.kind === 'expire'
                          ? { type: 'Expire', data: { accountId: acc, generationId: pick(o.pick), at: when } }
                          : null;
          if (!command) {
            clock += o.kind === 'advance' ? o.seconds * 1000 : 0;
            continue;
          }
          try {
            const produced = ledgerDecider.decide(command, state);
            for (const e of produced) ledgerDecider.evolve(state, e);
            events.push(...produced);
            if (command.type === 'Reserve' && produced.length) ids.push(command.data.generationId);
            for (const e of produced) if (e.type === 'ReservationSettled' && !e.data.late) expect(e.data.charged).toBeLessThanOrEqual(e.data.reserved);
          } catch (error) {
            // Refusals are typed domain errors, never anything else.
            expect((error as { code?: string }).code).toBeTypeOf('string');
          }
          expect(available(state)).toBeGreaterThanOrEqual(0);
          expect(state.reserved).toBe([...state.reservations.values()].reduce((sum, r) => sum + r.amount, 0));
        }
        expect(summary(foldEvents(ledgerDecider, events))).toEqual(summary(state));
      }),
      { numRuns: 300 },
    );
  });
});

describe('plans', () => {
  it('gives the free tier 20 a minute and 50 a day, 1,000 a day from $10 of lifetime purchases; pro lifts the daily cap', async () => {
    const { DEFAULT_PLANS, freeTierLimits, plansSchema } = await import('../../src/modules/ledger/plans.js');
    expect(freeTierLimits(DEFAULT_PLANS.free!, 0)).toEqual({ perMinute: 20, perDay: 50 });
    expect(freeTierLimits(DEFAULT_PLANS.free!, 10 * USD - 1)).toEqual({ perMinute: 20, perDay: 50 });
    expect(freeTierLimits(DEFAULT_PLANS.free!, 10 * USD)).toEqual({ perMinute: 20, perDay: 1000 });
    expect(freeTierLimits(DEFAULT_PLANS.pro!, 0)).toEqual({ perMinute: 200, perDay: null });
    expect(plansSchema.safeParse({ pro: DEFAULT_PLANS.pro }).success).toBe(false);
  });
});
