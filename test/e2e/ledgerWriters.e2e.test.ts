import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { createLedgerService } from '../../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../../src/modules/ledger/payments.js';
import { openAccount } from '../support/ledgerFixture.js';

const USD = 1_000_000_000;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A ledger service over a fresh embedded store with `accounts` open accounts, on a clock the test moves. */
const openLedger = async (accounts: number, options: { maxWriters?: number; writerIdleMs?: number; reservationTtlMs?: number }) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-writers-'));
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
  const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
  await directory.start();
  const clock = { ms: Date.parse('2026-11-25T10:00:00Z') };
  const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent'), now: () => new Date(clock.ms), ...options });
  const ids = Array.from({ length: accounts }, (_, i) => `acc_w${i}`);
  let position = 0;
  for (const id of ids) position = await openAccount(eventStore, id);
  await directory.waitFor(position);
  closers.push(async () => {
    await ledger.stop();
    await directory.stop();
    await eventStore.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { ledger, ids, clock };
};

describe('ledger writers are bounded', () => {
  it('keeps at most maxWriters idle writers however many accounts are used, and an evicted account answers its exact balance again', async () => {
    const { ledger, ids } = await openLedger(300, { maxWriters: 25 });
    for (const [i, accountId] of ids.entries()) await ledger.grant({ accountId, amount: (i + 1) * USD, reason: 'x', actor: 't', correlationId: 't' });
    expect(ledger.writerCount).toBeLessThanOrEqual(25);
    // Every account is reloaded from its stream when used again: nothing was lost with its writer.
    for (const [i, accountId] of ids.entries()) expect((await ledger.balance(accountId)).available).toBe((i + 1) * USD);
    expect(ledger.writerCount).toBeLessThanOrEqual(25);
    // ... and decides on the reloaded state (the next grant adds to it).
    expect((await ledger.grant({ accountId: ids[0]!, amount: USD, reason: 'again', actor: 't', correlationId: 't' })).available).toBe(2 * USD);
  });

  it('never evicts a writer that holds an open reservation, so the sweep still finds and expires it', async () => {
    const { ledger, ids, clock } = await openLedger(40, { maxWriters: 5, reservationTtlMs: 60_000 });
    const [held, ...others] = ids as [string, ...string[]];
    await ledger.grant({ accountId: held, amount: 5 * USD, reason: 'x', actor: 't', correlationId: 't' });
    await ledger.reserve({ accountId: held, keyId: null, generationId: 'g-open', amount: 2 * USD, freeModel: false });
    for (const accountId of others) await ledger.grant({ accountId, amount: USD, reason: 'x', actor: 't', correlationId: 't' });
    expect(ledger.writerCount).toBeLessThanOrEqual(6);
    clock.ms += 61_000;
    expect(await ledger.sweep()).toBe(1);
    expect(await ledger.balance(held)).toMatchObject({ available: 5 * USD, reserved: 0, openReservations: 0 });
  });

  it('drops writers unused for writerIdleMs at the next sweep', async () => {
    const { ledger, ids, clock } = await openLedger(30, { writerIdleMs: 60_000 });
    for (const accountId of ids) await ledger.grant({ accountId, amount: USD, reason: 'x', actor: 't', correlationId: 't' });
    expect(ledger.writerCount).toBe(30);
    clock.ms += 30_000;
    await ledger.balance(ids[0]!); // used again: stays
    clock.ms += 31_000;
    await ledger.sweep();
    expect(ledger.writerCount).toBe(1);
    expect((await ledger.balance(ids[1]!)).available).toBe(USD);
  });
});

describe('ledger writers and durability', () => {
  it("appends an account's next batch once the previous one is committed, and answers each batch's callers (a reservation too) only once it is durable", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-writers-'));
    const inner = openSqliteEventStore({ dir, synchronous: 'normal' });
    // Ledger appends are committed for real; their durability is released by the test, as an fsync would.
    const held: { types: string[]; makeDurable: () => void }[] = [];
    const eventStore: EventStore = {
      ...inner,
      async append(stream, events, options) {
        const result = await inner.append(stream, events, options);
        if (!stream.startsWith('ledger-')) return result;
        let makeDurable!: () => void;
        const durable = new Promise<void>((resolve) => (makeDurable = resolve));
        held.push({ types: events.map((e) => e.type), makeDurable });
        if (options?.durability === 'commit') return { ...result, durable };
        await durable;
        return result;
      },
    };
    const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
    await directory.start();
    const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent') });
    closers.push(async () => {
      for (const h of held) h.makeDurable();
      await ledger.stop();
      await directory.stop();
      await inner.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await directory.waitFor(await openAccount(inner, 'acc_d1'));
    const appended = async (count: number) => {
      // The appends are committed on the event store's writer thread (which starts with the store): a round trip.
      for (const deadline = Date.now() + 10_000; held.length < count; ) {
        if (Date.now() > deadline) throw new Error(`only ${held.length} ledger appends were made, expected ${count}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const heard: string[] = [];

    const granted = ledger.grant({ accountId: 'acc_d1', amount: 5 * USD, reason: 'x', actor: 't', correlationId: 't' }).then(() => void heard.push('grant'));
    await appended(1);
    const reserved = ledger.reserve({ accountId: 'acc_d1', keyId: null, generationId: 'g-durable', amount: 2 * USD, freeModel: false }).then(() => void heard.push('reserve'));
    // The reservation's batch is appended while the grant's is not yet durable...
    await appended(2);
    expect(held.map((h) => h.types)).toEqual([['CreditsGranted'], ['CreditsReserved']]);
    // ... and neither caller has heard.
    await appended(2);
    expect(heard).toEqual([]);
    held[0]!.makeDurable();
    await granted;
    expect(heard).toEqual(['grant']);
    held[1]!.makeDurable();
    await reserved;
    expect(heard).toEqual(['grant', 'reserve']);
    expect(await ledger.balance('acc_d1')).toMatchObject({ available: 3 * USD, reserved: 2 * USD });
  });
});

describe('ledger writers and settlements', () => {
  /** A ledger over an embedded store that records each ledger append's event types. */
  const openRecorded = async (soonHoldMs?: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-writers-'));
    const inner = openSqliteEventStore({ dir, synchronous: 'normal' });
    const appends: string[][] = [];
    const eventStore: EventStore = {
      ...inner,
      append(stream, events, options) {
        if (stream.startsWith('ledger-')) appends.push(events.map((e) => e.type));
        return inner.append(stream, events, options);
      },
    };
    const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
    await directory.start();
    const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent'), ...(soonHoldMs !== undefined && { soonHoldMs }) });
    closers.push(async () => {
      await ledger.stop();
      await directory.stop();
      await inner.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await directory.waitFor(await openAccount(inner, 'acc_s1'));
    await ledger.grant({ accountId: 'acc_s1', amount: 5 * USD, reason: 'x', actor: 't', correlationId: 't' });
    appends.length = 0;
    return { ledger, appends };
  };

  it("a settlement waits for the account's next reservation and goes in one append with it, decided in order", async () => {
    const { ledger, appends } = await openRecorded(60_000);
    await ledger.reserve({ accountId: 'acc_s1', keyId: null, generationId: 'g-1', amount: 2 * USD, freeModel: false });
    let settledHeard = false;
    const settled = ledger.settle({ accountId: 'acc_s1', generationId: 'g-1', actual: USD, usage: null }).then(() => (settledHeard = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Held: nothing appended, nobody answered.
    expect(appends).toEqual([['CreditsReserved']]);
    expect(settledHeard).toBe(false);
    // The next reservation is decided on the state with the settlement (4 USD available) and goes with it.
    await ledger.reserve({ accountId: 'acc_s1', keyId: null, generationId: 'g-2', amount: 4 * USD, freeModel: false });
    await settled;
    expect(appends).toEqual([['CreditsReserved'], ['ReservationSettled', 'CreditsReserved']]);
    expect(await ledger.balance('acc_s1')).toMatchObject({ available: 0, reserved: 4 * USD, settled: USD });
  });

  it('a read of the balance sends a held settlement at once and is answered once it is written', async () => {
    const { ledger, appends } = await openRecorded(60_000);
    await ledger.reserve({ accountId: 'acc_s1', keyId: null, generationId: 'g-1', amount: 2 * USD, freeModel: false });
    const settled = ledger.settle({ accountId: 'acc_s1', generationId: 'g-1', actual: USD, usage: null });
    expect(await ledger.balance('acc_s1')).toMatchObject({ available: 4 * USD, reserved: 0, openReservations: 0, settled: USD });
    await settled;
    expect(appends).toEqual([['CreditsReserved'], ['ReservationSettled']]);
  });

  it('a settlement that no reservation joins is appended alone after the hold', async () => {
    const { ledger, appends } = await openRecorded(20);
    await ledger.reserve({ accountId: 'acc_s1', keyId: null, generationId: 'g-1', amount: 2 * USD, freeModel: false });
    const started = Date.now();
    await ledger.settle({ accountId: 'acc_s1', generationId: 'g-1', actual: USD, usage: null });
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
    expect(appends).toEqual([['CreditsReserved'], ['ReservationSettled']]);
  });
});
