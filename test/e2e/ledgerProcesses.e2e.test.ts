import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnavailableError, WrongExpectedVersionError } from '../../src/errors.js';
import type { AppendOptions, EventStore, NewEvent } from '../../src/eventStore/eventStore.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { available, ledgerDecider } from '../../src/modules/ledger/ledger.decider.js';
import { LEDGER_CATEGORY, ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { MAX_LEDGER_APPEND_BYTES, MAX_APPEND_EVENTS } from '../../src/modules/ledger/ledgerService.js';
import { openAccount, openLedger } from '../support/ledgerFixture.js';

const USD = 1_000_000_000;
const COST = 2 * USD;
const DEADLINE_MS = 10_000;
const dirs: string[] = [];
const open: { close(): Promise<void> }[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ledger-procs-'));
  dirs.push(dir);
  return dir;
};
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

type Ledger = Awaited<ReturnType<typeof openLedger>>;
const started = async (dir: string, options: Parameters<typeof openLedger>[1] = {}): Promise<Ledger> => {
  const l = await openLedger(dir, { start: true, ...options });
  open.push(l);
  return l;
};

/** Polls until `check` holds (generous deadline: this bounds the follower's delay, it does not time it). */
const eventually = async (check: () => Promise<boolean>) => {
  const until = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('not reached before the deadline');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

/** Two ledger services on one store file, as two app processes have: both know the account. */
const twoProcesses = async (accountId: string, options: Parameters<typeof openLedger>[1] = {}) => {
  const dir = tempDir();
  const a = await started(dir, options);
  const b = await started(dir, options);
  await a.directory.waitFor(await openAccount(a.eventStore, accountId));
  await eventually(async () => b.directory.account(accountId) !== undefined);
  return [a, b] as const;
};

const reserve = (l: Ledger, accountId: string, generationId: string, keyId: string | null = null) =>
  l.ledger.reserve({ accountId, keyId, generationId, amount: COST, freeModel: false });

const events = async (l: Ledger, accountId: string) => (await l.eventStore.readStream(ledgerStream(accountId))) as unknown as (LedgerEvent & { id: string })[];

/**
 * Records every ledger append (and every read) the service makes, and can fail the next ledger appends. `kind`: what
 * the store says it is (the ledger's defaults follow it).
 * - `commitThenTimeout`: written, then the answer is lost (a timeout or a leader change after the write).
 * - `timeout`: not written, and the answer does not say so (the store was unreachable); it never lands.
 * - `lateCommit`: not written yet when the answer is lost, but the store took it (a client-side deadline does not
 *   cancel a write on the server): the first such append commits late, right after the next read of its stream (the
 *   reload, which therefore does not see it); `late.outcome` says how that went.
 */
const recording = (kind?: EventStore['kind']) => {
  const appends: (readonly NewEvent[])[] = [];
  const faults: ('commitThenTimeout' | 'timeout' | 'lateCommit' | 'conflict')[] = [];
  let reads = 0;
  let conflicts = 0;
  /** Ledger stream reads to fail as unavailable, from the next one on. */
  const failing = { reads: 0 };
  /** Run once before (after) the next read of a ledger stream: another process's write, say. */
  const hooks: { beforeRead?: (() => Promise<unknown>) | undefined; afterRead?: (() => Promise<unknown>) | undefined } = {};
  const late: { pending?: { stream: string; batch: readonly NewEvent[]; options: AppendOptions | undefined } | undefined; outcome?: 'committed' | unknown } = {};
  const wrap = (store: EventStore): EventStore => ({
    ...store,
    kind: kind ?? store.kind,
    readStream: (stream, options) => {
      reads++;
      if (!stream.startsWith(`${LEDGER_CATEGORY}-`)) return store.readStream(stream, options);
      return (async () => {
        const before = hooks.beforeRead;
        hooks.beforeRead = undefined;
        await before?.();
        if (failing.reads > 0) {
          failing.reads--;
          throw new UnavailableError('injected: the read timed out');
        }
        const read = await store.readStream(stream, options);
        const after = hooks.afterRead;
        hooks.afterRead = undefined;
        await after?.();
        const write = late.pending?.stream === stream ? late.pending : undefined;
        if (write) {
          late.pending = undefined;
          late.outcome = await store.append(write.stream, write.batch, write.options).then(
            () => 'committed' as const,
            (error: unknown) => error,
          );
        }
        return read;
      })();
    },
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    headPosition: () => store.headPosition(),
    health: () => store.health(),
    close: () => store.close(),
    async append(stream, batch, options) {
      if (!stream.startsWith(`${LEDGER_CATEGORY}-`)) return store.append(stream, batch, options);
      appends.push(batch);
      const fault = faults.shift();
      if (fault === 'conflict') throw new WrongExpectedVersionError(stream, String(options?.expectedRevision), 0);
      // Not written, and the answer does not say so (the store was unreachable).
      if (fault === 'timeout') throw new UnavailableError('injected: the append timed out before it committed');
      if (fault === 'lateCommit') {
        late.pending ??= { stream, batch, options };
        throw new UnavailableError('injected: the append timed out before it committed; it commits later');
      }
      const result = await store.append(stream, batch, options).catch((error: unknown) => {
        if (error instanceof WrongExpectedVersionError) conflicts++;
        throw error;
      });
      // Committed, but the answer is lost (a timeout or a leader change after the write).
      if (fault === 'commitThenTimeout') throw new UnavailableError('injected: the append timed out after it committed');
      return result;
    },
  });
  return {
    wrap,
    appends,
    faults,
    failing,
    hooks,
    late,
    get reads() {
      return reads;
    },
    get conflicts() {
      return conflicts;
    },
  };
};

describe('a ledger service learns of another process’s appends', () => {
  it('a grant on one process lets the other, which refused, admit reservations; its balance shows the grant', async () => {
    const [a, b] = await twoProcesses('acc_grant');
    // b holds the account's state: empty, so it refuses.
    await expect(reserve(b, 'acc_grant', 'before')).rejects.toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    await a.ledger.grant({ accountId: 'acc_grant', amount: 3 * COST, reason: 'test', actor: 'test', correlationId: 'c' });
    // The follower brings the grant to b's state without any request on b.
    await eventually(async () => (await b.ledger.balance('acc_grant')).available === 3 * COST);
    await reserve(b, 'acc_grant', 'after-1');
    await reserve(b, 'acc_grant', 'after-2');
    await eventually(async () => (await a.ledger.balance('acc_grant')).reserved === 2 * COST);
  });

  it('a reservation on the other process right after a grant is answered is admitted (a refusal first checks the stream head)', async () => {
    const [a, b] = await twoProcesses('acc_now');
    await expect(reserve(b, 'acc_now', 'before')).rejects.toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    for (let i = 0; i < 5; i++) {
      await a.ledger.grant({ accountId: 'acc_now', amount: COST, reason: 'test', actor: 'test', correlationId: 'c' });
      await reserve(b, 'acc_now', `right-after-${i}`);
    }
    // Still exact: five grants, five reservations, nothing more.
    await expect(reserve(b, 'acc_now', 'one-too-many')).rejects.toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    const state = foldEvents(ledgerDecider, await events(a, 'acc_now'));
    expect(state.reservations.size).toBe(5);
    expect(available(state)).toBe(0);
  });

  it('a charge settled on one process shows in the other’s balance and key usage', async () => {
    const [a, b] = await twoProcesses('acc_charge');
    await a.ledger.grant({ accountId: 'acc_charge', amount: 10 * COST, reason: 'test', actor: 'test', correlationId: 'c' });
    await eventually(async () => (await b.ledger.balance('acc_charge')).available === 10 * COST);
    expect(await b.ledger.keyUsage('acc_charge', 'key_1')).toMatchObject({ lifetime: 0 });
    await reserve(a, 'acc_charge', 'g1', 'key_1');
    const { charged } = await a.ledger.settle({ accountId: 'acc_charge', generationId: 'g1', actual: USD / 2, usage: null });
    expect(charged).toBe(USD / 2);
    await eventually(async () => (await b.ledger.balance('acc_charge')).settled === USD / 2);
    expect(await b.ledger.balance('acc_charge')).toMatchObject({ available: 10 * COST - USD / 2, reserved: 0, openReservations: 0 });
    expect((await b.ledger.keyUsage('acc_charge', 'key_1')).lifetime).toBe(USD / 2);
    // And the settlement is known there: a repeat on b is the same no-op, a different amount a conflict.
    expect(await b.ledger.settle({ accountId: 'acc_charge', generationId: 'g1', actual: USD / 2, usage: null })).toMatchObject({ charged: USD / 2 });
    await expect(b.ledger.settle({ accountId: 'acc_charge', generationId: 'g1', actual: USD, usage: null })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('one idempotency key sent with two amounts at once to two processes grants one of them; the other is a CONFLICT on both, and both hold the same balance', async () => {
    const [a, b] = await twoProcesses('acc_key', { ledger: { eventIds: true } });
    const by = { actor: 'test', correlationId: 'c' };
    await a.ledger.balance('acc_key');
    await b.ledger.balance('acc_key');
    // Each decides on a state without the other's grant; with the key alone in the event's id, the second append was
    // taken by the store as a repeat of the first, answered as granted, and its process kept $2 that was never there.
    const results = await Promise.allSettled([
      a.ledger.grant({ accountId: 'acc_key', amount: 3 * USD, reason: 'r', idempotencyKey: 'K', ...by }),
      b.ledger.grant({ accountId: 'acc_key', amount: 5 * USD, reason: 'r', idempotencyKey: 'K', ...by }),
    ]);
    const granted = results.filter((r) => r.status === 'fulfilled');
    expect(granted).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')?.reason).toMatchObject({ code: 'CONFLICT' });
    const amounts = (await events(a, 'acc_key')).filter((e) => e.type === 'CreditsGranted').map((e) => e.data.amount);
    expect(amounts).toHaveLength(1);
    await eventually(async () => (await a.ledger.balance('acc_key')).available === amounts[0] && (await b.ledger.balance('acc_key')).available === amounts[0]);
  });

  it('two following services reserving against one balance at once never overspend: conflicting appends reload and decide again', async () => {
    const recA = recording();
    const recB = recording();
    const dir = tempDir();
    const a = await started(dir, { wrap: recA.wrap });
    const b = await started(dir, { wrap: recB.wrap });
    await a.directory.waitFor(await openAccount(a.eventStore, 'acc_race'));
    await eventually(async () => b.directory.account('acc_race') !== undefined);
    await a.ledger.grant({ accountId: 'acc_race', amount: 10 * COST, reason: 'test', actor: 'test', correlationId: 'c' });
    await eventually(async () => (await b.ledger.balance('acc_race')).available === 10 * COST);
    const fire = (l: Ledger, prefix: string) => Array.from({ length: 60 }, (_, i) => reserve(l, 'acc_race', `${prefix}-${i}`));
    const results = await Promise.allSettled([...fire(a, 'a'), ...fire(b, 'b')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    // Both held the account and appended at the same expected revision: one of them met the other's append.
    expect(recA.conflicts + recB.conflicts).toBeGreaterThan(0);
    const state = foldEvents(ledgerDecider, await events(a, 'acc_race'));
    expect(state.reservations.size).toBe(10);
    expect(available(state)).toBe(0);
    await eventually(async () => (await a.ledger.balance('acc_race')).available === 0 && (await b.ledger.balance('acc_race')).available === 0);
  });

  it('adds no read per request: admitted reservations and balances are answered from memory, following or not', async () => {
    for (const soleProcess of [true, false]) {
      const rec = recording();
      const l = await started(tempDir(), { wrap: rec.wrap, ledger: { soleProcess } });
      expect(l.ledger.status() === null).toBe(soleProcess); // the sole process follows nobody
      await l.directory.waitFor(await openAccount(l.eventStore, 'acc_lean'));
      await l.ledger.grant({ accountId: 'acc_lean', amount: 100 * COST, reason: 'test', actor: 'test', correlationId: 'c' });
      const readsAfterLoad = rec.reads;
      for (let i = 0; i < 30; i++) {
        await reserve(l, 'acc_lean', `g-${i}`);
        await l.ledger.balance('acc_lean');
      }
      expect(rec.reads).toBe(readsAfterLoad);
    }
  });
});

describe('appends stay within the store’s size limit', () => {
  it('splits a large queued batch by count and by size, and answers every caller', async () => {
    const rec = recording();
    const l = await started(tempDir(), { wrap: rec.wrap, ledger: { appendLimits: { events: 10, bytes: 4_000 } } });
    await l.directory.waitFor(await openAccount(l.eventStore, 'acc_split'));
    await l.ledger.grant({ accountId: 'acc_split', amount: 200 * COST, reason: 'x', actor: 'test', correlationId: 'c' });
    const results = await Promise.allSettled(Array.from({ length: 95 }, (_, i) => reserve(l, 'acc_split', `g-${i}`)));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    // 1 KiB reasons: at most three fit in 4,000 bytes.
    const grants = await Promise.all(Array.from({ length: 12 }, () => l.ledger.grant({ accountId: 'acc_split', amount: USD, reason: 'r'.repeat(1024), actor: 'test', correlationId: 'c' })));
    expect(grants.at(-1)!.granted).toBe(200 * COST + 12 * USD);
    const sizes = rec.appends.map((batch) => batch.reduce((sum, e) => sum + Buffer.byteLength(JSON.stringify(e.data)) + Buffer.byteLength(JSON.stringify(e.metadata)), 0));
    expect(Math.max(...rec.appends.map((batch) => batch.length))).toBeLessThanOrEqual(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4_000);
    expect(rec.appends.length).toBeGreaterThanOrEqual(1 + 10 + 4);
    const written = await events(l, 'acc_split');
    expect(written.filter((e) => e.type === 'CreditsReserved')).toHaveLength(95);
    expect(written.filter((e) => e.type === 'CreditsGranted')).toHaveLength(13);
  });

  it('with the default caps for EventStoreDB, 2,500 reservations queued at once go in appends of at most MAX_APPEND_EVENTS events and MAX_LEDGER_APPEND_BYTES', async () => {
    const rec = recording('eventstoredb');
    const l = await started(tempDir(), { wrap: rec.wrap });
    await l.directory.waitFor(await openAccount(l.eventStore, 'acc_big'));
    await l.ledger.grant({ accountId: 'acc_big', amount: 2_500 * COST, reason: 'x', actor: 'test', correlationId: 'c' });
    const results = await Promise.allSettled(Array.from({ length: 2_500 }, (_, i) => reserve(l, 'acc_big', `g-${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2_500);
    expect(Math.max(...rec.appends.map((batch) => batch.length))).toBe(MAX_APPEND_EVENTS);
    expect(rec.appends.length).toBeGreaterThanOrEqual(4);
    const bytes = (batch: readonly NewEvent[]) => Buffer.byteLength(JSON.stringify(batch.map((e) => [e.type, e.data, e.metadata])));
    expect(Math.max(...rec.appends.map(bytes))).toBeLessThanOrEqual(MAX_LEDGER_APPEND_BYTES);
    expect((await l.ledger.balance('acc_big')).available).toBe(0);
  });
});

describe('an append that failed ambiguously is retried without writing twice', () => {
  const withIds = async (rec: ReturnType<typeof recording>) => {
    const l = await started(tempDir(), { wrap: rec.wrap, ledger: { eventIds: true } });
    await l.directory.waitFor(await openAccount(l.eventStore, 'acc_ids'));
    return l;
  };
  /** As withIds, and another process's ledger on the same store (without faults), which knows the account. */
  const withIdsBesideAnother = async (rec: ReturnType<typeof recording>) => {
    const dir = tempDir();
    const l = await started(dir, { wrap: rec.wrap, ledger: { eventIds: true } });
    await l.directory.waitFor(await openAccount(l.eventStore, 'acc_ids'));
    const other = await started(dir, { ledger: { eventIds: true } });
    await eventually(async () => other.directory.account('acc_ids') !== undefined);
    return { l, other };
  };

  it('a grant whose append committed but timed out is answered once and granted once', async () => {
    const rec = recording();
    const l = await withIds(rec);
    rec.faults.push('commitThenTimeout');
    const balance = await l.ledger.grant({ accountId: 'acc_ids', amount: 5 * USD, reason: 'x', actor: 'test', correlationId: 'c' });
    expect(balance.granted).toBe(5 * USD);
    // Sent twice, with the same event id; written once.
    expect(rec.appends).toHaveLength(2);
    expect(rec.appends[1]![0]!.id).toBe(rec.appends[0]![0]!.id);
    expect(rec.appends[0]![0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'CreditsGranted')).toHaveLength(1);
    expect((await l.ledger.balance('acc_ids')).granted).toBe(5 * USD);
  });

  it('a settlement whose append committed but timed out charges once', async () => {
    const rec = recording();
    const l = await withIds(rec);
    await l.ledger.grant({ accountId: 'acc_ids', amount: 5 * COST, reason: 'x', actor: 'test', correlationId: 'c' });
    await reserve(l, 'acc_ids', 'g1');
    rec.faults.push('commitThenTimeout', 'commitThenTimeout');
    expect(await l.ledger.settle({ accountId: 'acc_ids', generationId: 'g1', actual: USD, usage: null })).toMatchObject({ charged: USD });
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'ReservationSettled')).toHaveLength(1);
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ settled: USD, available: 5 * COST - USD });
  });

  it('when the retry meets a conflict, the reload finds the first try’s event by its id instead of granting again', async () => {
    const rec = recording();
    const l = await withIds(rec);
    // The first try commits and its answer is lost; the store then answers the retry as a conflict (as a store that
    // does not recognize the repeat would).
    rec.faults.push('commitThenTimeout', 'conflict');
    const balance = await l.ledger.grant({ accountId: 'acc_ids', amount: 7 * USD, reason: 'x', actor: 'test', correlationId: 'c' });
    expect(balance.granted).toBe(7 * USD);
    expect((await events(l, 'acc_ids')).filter((e) => e.type === 'CreditsGranted')).toHaveLength(1);
    // The writer goes on from the reloaded stream.
    await l.ledger.grant({ accountId: 'acc_ids', amount: USD, reason: 'y', actor: 'test', correlationId: 'c' });
    expect((await l.ledger.balance('acc_ids')).granted).toBe(8 * USD);
  });

  it('a purchase declined, then sent again under its key (given back), whose start meets a conflict: decided again, not taken for the first start', async () => {
    const rec = recording();
    const l = await withIds(rec);
    const by = { actor: 'test', correlationId: 'c' };
    const buy = () => l.ledger.purchase({ accountId: 'acc_ids', amount: 20 * USD, paymentMethod: 'pm_card_declined', idempotencyKey: 'p-declined', ...by });
    await expect(buy()).rejects.toMatchObject({ code: 'PAYMENT_FAILED' });
    // The same request again: its start's append meets another process's append (a conflict), so it is decided again
    // on the reloaded stream; the first start's event (same key, amount, fee and method) is not its own.
    rec.faults.push('conflict');
    await expect(buy()).rejects.toMatchObject({ code: 'PAYMENT_FAILED' });
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'PurchaseStarted')).toHaveLength(2);
    expect(written.filter((e) => e.type === 'PurchaseFailed')).toHaveLength(2);
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ purchased: 0, available: 0 });
    // Nothing held: a paying card under another key buys at once.
    await l.ledger.purchase({ accountId: 'acc_ids', amount: 20 * USD, paymentMethod: 'pm_card_visa', idempotencyKey: 'p-paid', ...by });
    expect((await l.ledger.balance('acc_ids')).purchased).toBe(20 * USD);
  });

  it('a batch that committed while its answer and every resend’s were lost is answered from the stream: each operation once, as decided', async () => {
    const rec = recording();
    const l = await withIds(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.purchase({ accountId: 'acc_ids', amount: 20 * USD, paymentMethod: 'pm_card_visa', idempotencyKey: 'p1', ...by });
    await reserve(l, 'acc_ids', 'g-settle');
    await reserve(l, 'acc_ids', 'g-release');
    // One append in flight; what comes meanwhile is decided into the next batch, which commits and then fails as
    // unavailable at its first try and at each resend (a leader election longer than the resends).
    const first = reserve(l, 'acc_ids', 'g-first');
    const before = rec.appends.length;
    rec.faults.push(...Array.from({ length: 5 }, () => 'commitThenTimeout' as const));
    const granted = l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', ...by });
    const refunded = l.ledger.refund({ accountId: 'acc_ids', amount: USD, reason: 'refund', ...by });
    const reserved = reserve(l, 'acc_ids', 'g-batch');
    const settled = l.ledger.settle({ accountId: 'acc_ids', generationId: 'g-settle', actual: USD / 2, usage: null, urgency: 'now' });
    const released = l.ledger.release({ accountId: 'acc_ids', generationId: 'g-release', reason: 'test', urgency: 'now' });
    const refused = l.ledger.reserve({ accountId: 'acc_ids', keyId: null, generationId: 'g-too-much', amount: 1_000 * USD, freeModel: false });
    const results = await Promise.allSettled([first, granted, refunded, reserved, settled, released, refused]);
    expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code))).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'INSUFFICIENT_CREDITS']);
    expect(await granted).toMatchObject({ granted: 3 * USD });
    expect(await refunded).toMatchObject({ refunded: USD });
    expect(await settled).toMatchObject({ charged: USD / 2 });
    // One batch, sent five times under the same ids, and nothing sent after it.
    const tries = rec.appends.slice(before);
    expect(tries).toHaveLength(5);
    expect(tries[0]!.map((e) => e.type)).toEqual(['CreditsGranted', 'CreditsRefunded', 'CreditsReserved', 'ReservationSettled', 'ReservationReleased']);
    for (const attempt of tries.slice(1)) expect(attempt.map((e) => e.id)).toEqual(tries[0]!.map((e) => e.id));
    const written = await events(l, 'acc_ids');
    const count = (type: LedgerEvent['type']) => written.filter((e) => e.type === type).length;
    expect([count('CreditsGranted'), count('CreditsRefunded'), count('ReservationSettled'), count('ReservationReleased')]).toEqual([1, 1, 1, 1]);
    expect(written.filter((e) => e.type === 'CreditsReserved').map((e) => e.data.generationId)).toEqual(['g-settle', 'g-release', 'g-first', 'g-batch']);
    // The reservation holds its amount as an admitted one, to be settled, not until the sweep.
    expect(await l.ledger.reservationOf('acc_ids', 'g-batch')).toEqual({ outcome: 'open', charged: 0 });
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ granted: 3 * USD, refunded: USD, settled: USD / 2, reserved: 2 * COST, openReservations: 2 });
    expect(await l.ledger.settle({ accountId: 'acc_ids', generationId: 'g-batch', actual: USD, usage: null })).toMatchObject({ charged: USD });
    expect(l.ledger.queue()).toMatchObject({ ops: 0, batches: 0 });
  });

  it('a batch that did not commit at any try and not before the reload is still in flight: the reload found nothing, then it committed; sent again at its revision, it is answered once as decided', async () => {
    const rec = recording();
    const l = await withIds(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.purchase({ accountId: 'acc_ids', amount: 20 * USD, paymentMethod: 'pm_card_visa', idempotencyKey: 'p1', ...by });
    await reserve(l, 'acc_ids', 'g-settle');
    await reserve(l, 'acc_ids', 'g-release');
    const stream = ledgerStream('acc_ids');
    const after = (await l.eventStore.readStream(stream)).at(-1)!.revision + 1;
    // One append in flight (it takes revision `after`); the next batch, decided meanwhile, is taken by the store but
    // not committed when the first try and each resend time out: it commits right after the reload read the stream.
    const first = reserve(l, 'acc_ids', 'g-first');
    const before = rec.appends.length;
    rec.faults.push(...Array.from({ length: 5 }, () => 'lateCommit' as const));
    const granted = l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', ...by });
    const refunded = l.ledger.refund({ accountId: 'acc_ids', amount: USD, reason: 'refund', ...by });
    const reserved = reserve(l, 'acc_ids', 'g-batch');
    const settled = l.ledger.settle({ accountId: 'acc_ids', generationId: 'g-settle', actual: USD / 2, usage: null, urgency: 'now' });
    const released = l.ledger.release({ accountId: 'acc_ids', generationId: 'g-release', reason: 'test', urgency: 'now' });
    const refused = l.ledger.reserve({ accountId: 'acc_ids', keyId: null, generationId: 'g-too-much', amount: 1_000 * USD, freeModel: false });
    const results = await Promise.allSettled([first, granted, refunded, reserved, settled, released, refused]);
    expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code))).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'INSUFFICIENT_CREDITS']);
    expect(rec.late.outcome).toBe('committed');
    expect(await granted).toMatchObject({ granted: 3 * USD });
    expect(await refunded).toMatchObject({ refunded: USD });
    expect(await settled).toMatchObject({ charged: USD / 2 });
    // Five tries lost, then once more after the reload, under the same ids: answered as the late write.
    const tries = rec.appends.slice(before);
    expect(tries).toHaveLength(6);
    expect(tries[0]!.map((e) => e.type)).toEqual(['CreditsGranted', 'CreditsRefunded', 'CreditsReserved', 'ReservationSettled', 'ReservationReleased']);
    for (const attempt of tries.slice(1)) expect(attempt.map((e) => e.id)).toEqual(tries[0]!.map((e) => e.id));
    const written = await events(l, 'acc_ids');
    const count = (type: LedgerEvent['type']) => written.filter((e) => e.type === type).length;
    expect([count('CreditsGranted'), count('CreditsRefunded'), count('ReservationSettled'), count('ReservationReleased')]).toEqual([1, 1, 1, 1]);
    expect(written.filter((e) => e.type === 'CreditsReserved').map((e) => e.data.generationId)).toEqual(['g-settle', 'g-release', 'g-first', 'g-batch']);
    expect((await l.eventStore.readStream(stream, { fromRevision: after + 1 })).map((e) => e.id)).toEqual(tries[0]!.map((e) => e.id));
    // The reservation holds its amount as an admitted one, to be settled, not until the sweep.
    expect(await l.ledger.reservationOf('acc_ids', 'g-batch')).toEqual({ outcome: 'open', charged: 0 });
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ granted: 3 * USD, refunded: USD, settled: USD / 2, reserved: 2 * COST, openReservations: 2 });
    expect(await l.ledger.settle({ accountId: 'acc_ids', generationId: 'g-batch', actual: USD, usage: null })).toMatchObject({ charged: USD });
    expect(l.ledger.queue()).toMatchObject({ ops: 0, batches: 0 });
  });

  it('a batch not written at any try, the stream still where it was decided, is sent again at that revision after the reload: answered as decided, applied once', async () => {
    const rec = recording();
    const l = await withIds(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.grant({ accountId: 'acc_ids', amount: 2 * COST, reason: 'x', ...by });
    const first = reserve(l, 'acc_ids', 'g-first');
    const before = rec.appends.length;
    rec.faults.push(...Array.from({ length: 5 }, () => 'timeout' as const));
    const granted = l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', ...by });
    const reserved = reserve(l, 'acc_ids', 'g-batch');
    await first;
    expect(await granted).toMatchObject({ granted: 2 * COST + 3 * USD });
    await reserved;
    // The first try and 4 resends, then once more after the reload, under the same ids.
    const tries = rec.appends.slice(before);
    expect(tries).toHaveLength(6);
    expect(tries[0]!.map((e) => e.type)).toEqual(['CreditsGranted', 'CreditsReserved']);
    for (const attempt of tries.slice(1)) expect(attempt.map((e) => e.id)).toEqual(tries[0]!.map((e) => e.id));
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'CreditsGranted')).toHaveLength(2);
    expect(written.filter((e) => e.type === 'CreditsReserved').map((e) => e.data.generationId)).toEqual(['g-first', 'g-batch']);
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ granted: 2 * COST + 3 * USD, reserved: 2 * COST, openReservations: 2 });
  });

  it('a batch lost at every try whose revision another process took before the reload can never commit: decided again on the new state, applied once', async () => {
    const rec = recording();
    const { l, other } = await withIdsBesideAnother(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.grant({ accountId: 'acc_ids', amount: 2 * COST, reason: 'x', ...by });
    const first = reserve(l, 'acc_ids', 'g-first');
    // The batch is taken by the store but not committed when its tries time out; before the reload reads the stream,
    // the other process grants at the revision the batch was decided at.
    rec.faults.push(...Array.from({ length: 5 }, () => 'lateCommit' as const));
    rec.hooks.beforeRead = () => other.ledger.grant({ accountId: 'acc_ids', amount: USD, reason: 'other process', ...by });
    const granted = l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', ...by });
    const reserved = reserve(l, 'acc_ids', 'g-batch');
    await first;
    // Its late commit meets the other process's append at its revision: refused, for good; so the batch's operations
    // were decided again on the stream as it is, and written once.
    expect(await granted).toMatchObject({ granted: 2 * COST + 4 * USD });
    await reserved;
    expect(rec.late.outcome).toBeInstanceOf(WrongExpectedVersionError);
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'CreditsGranted').map((e) => e.data.amount)).toEqual([2 * COST, USD, 3 * USD]);
    expect(written.filter((e) => e.type === 'CreditsReserved').map((e) => e.data.generationId)).toEqual(['g-first', 'g-batch']);
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ granted: 2 * COST + 4 * USD, reserved: 2 * COST, openReservations: 2 });
  });

  it('a batch lost at every try whose first event another process wrote (a keyed grant retried there) was not written: the grant is answered from that write, the rest decided again and applied once', async () => {
    const rec = recording();
    const { l, other } = await withIdsBesideAnother(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.grant({ accountId: 'acc_ids', amount: 2 * COST, reason: 'x', ...by });
    await reserve(l, 'acc_ids', 'g-settle');
    const first = reserve(l, 'acc_ids', 'g-first');
    rec.faults.push(...Array.from({ length: 5 }, () => 'timeout' as const));
    // While this process's batch [keyed grant, settlement, reservation] is in doubt, the admin's retry of the same
    // keyed grant lands on the other process: the stream then holds the batch's first event id, and nothing else of it.
    rec.hooks.beforeRead = () => other.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', idempotencyKey: 'ticket-1', ...by });
    const granted = l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', idempotencyKey: 'ticket-1', ...by });
    const settled = l.ledger.settle({ accountId: 'acc_ids', generationId: 'g-settle', actual: USD / 2, usage: null, urgency: 'now' });
    const reserved = reserve(l, 'acc_ids', 'g-batch');
    await first;
    expect(await granted).toMatchObject({ granted: 2 * COST + 3 * USD });
    expect(await settled).toMatchObject({ charged: USD / 2 });
    await reserved;
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'CreditsGranted').map((e) => e.data.amount)).toEqual([2 * COST, 3 * USD]);
    expect(written.filter((e) => e.type === 'ReservationSettled').map((e) => [e.data.generationId, e.data.actual])).toEqual([['g-settle', USD / 2]]);
    expect(written.filter((e) => e.type === 'CreditsReserved').map((e) => e.data.generationId)).toEqual(['g-settle', 'g-first', 'g-batch']);
    expect(await l.ledger.reservationOf('acc_ids', 'g-settle')).toMatchObject({ charged: USD / 2 });
    expect(await l.ledger.reservationOf('acc_ids', 'g-batch')).toEqual({ outcome: 'open', charged: 0 });
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ granted: 2 * COST + 3 * USD, reserved: 2 * COST, openReservations: 2 });
  });

  it('a batch lost at every try, resent after the reload, meets another process’s append made just after that read: decided again on the new state, applied once', async () => {
    const rec = recording();
    const { l, other } = await withIdsBesideAnother(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.grant({ accountId: 'acc_ids', amount: 2 * COST, reason: 'x', ...by });
    const first = reserve(l, 'acc_ids', 'g-first');
    rec.faults.push(...Array.from({ length: 5 }, () => 'lateCommit' as const));
    // The reload finds the stream where the batch was decided; right after, the other process appends there.
    rec.hooks.afterRead = () => other.ledger.grant({ accountId: 'acc_ids', amount: USD, reason: 'other process', ...by });
    const granted = l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', ...by });
    const reserved = reserve(l, 'acc_ids', 'g-batch');
    await first;
    expect(await granted).toMatchObject({ granted: 2 * COST + 4 * USD });
    await reserved;
    expect(rec.late.outcome).toBeInstanceOf(WrongExpectedVersionError);
    const written = await events(l, 'acc_ids');
    expect(written.filter((e) => e.type === 'CreditsGranted').map((e) => e.data.amount)).toEqual([2 * COST, USD, 3 * USD]);
    expect(written.filter((e) => e.type === 'CreditsReserved').map((e) => e.data.generationId)).toEqual(['g-first', 'g-batch']);
    expect(await l.ledger.balance('acc_ids')).toMatchObject({ granted: 2 * COST + 4 * USD, reserved: 2 * COST, openReservations: 2 });
  });

  it('a batch the store keeps failing as unavailable, sent again after each reload, ends in a 503 once the resends run out (its outcome unknown); the writer goes on', async () => {
    const rec = recording();
    const l = await withIds(rec);
    const by = { actor: 'test', correlationId: 'c' };
    await l.ledger.grant({ accountId: 'acc_ids', amount: 2 * COST, reason: 'x', ...by });
    const before = rec.appends.length;
    // The first try and 4 resends, then twice after a reload: the same 5 again.
    rec.faults.push(...Array.from({ length: 15 }, () => 'timeout' as const));
    await expect(l.ledger.grant({ accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', ...by })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const tries = rec.appends.slice(before);
    expect(tries).toHaveLength(15);
    for (const attempt of tries) expect(attempt.map((e) => e.id)).toEqual(tries[0]!.map((e) => e.id));
    expect(rec.faults).toHaveLength(0);
    expect((await events(l, 'acc_ids')).filter((e) => e.type === 'CreditsGranted')).toHaveLength(1);
    expect(await l.ledger.grant({ accountId: 'acc_ids', amount: USD, reason: 'next', ...by })).toMatchObject({ granted: 2 * COST + USD });
    expect(l.ledger.queue()).toMatchObject({ ops: 0, batches: 0 });
  });

  it('a grant whose outcome cannot be known (the reload fails too) is a 503; sent again under its idempotency key it is granted once', async () => {
    const rec = recording();
    const l = await withIds(rec);
    const grant = { accountId: 'acc_ids', amount: 3 * USD, reason: 'goodwill', idempotencyKey: 'ticket-42', actor: 'test', correlationId: 'c' };
    await l.ledger.balance('acc_ids');
    rec.faults.push(...Array.from({ length: 5 }, () => 'commitThenTimeout' as const));
    rec.failing.reads = 1;
    await expect(l.ledger.grant(grant)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await l.ledger.grant(grant)).toMatchObject({ granted: 3 * USD });
    expect(await l.ledger.grant(grant)).toMatchObject({ granted: 3 * USD });
    expect((await events(l, 'acc_ids')).filter((e) => e.type === 'CreditsGranted')).toHaveLength(1);
    // Without a key, the same request sent again is another grant.
    rec.faults.push(...Array.from({ length: 5 }, () => 'commitThenTimeout' as const));
    rec.failing.reads = 1;
    const unkeyed = { ...grant, idempotencyKey: undefined };
    await expect(l.ledger.grant(unkeyed)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await l.ledger.grant(unkeyed)).toMatchObject({ granted: 9 * USD });
  });

  it('the embedded store’s default gives no ids and does not retry: an ambiguous failure reaches the caller', async () => {
    const rec = recording();
    const l = await started(tempDir(), { wrap: rec.wrap });
    await l.directory.waitFor(await openAccount(l.eventStore, 'acc_noids'));
    rec.faults.push('commitThenTimeout');
    await expect(l.ledger.grant({ accountId: 'acc_noids', amount: USD, reason: 'x', actor: 'test', correlationId: 'c' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(rec.appends[0]![0]!.id).toBeUndefined();
    // Reloaded from the stream, the balance is what was written.
    expect((await l.ledger.balance('acc_noids')).granted).toBe(USD);
  });
});
