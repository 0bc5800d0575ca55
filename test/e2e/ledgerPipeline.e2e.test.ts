import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { UnavailableError, WrongExpectedVersionError } from '../../src/errors.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { available, ledgerDecider } from '../../src/modules/ledger/ledger.decider.js';
import { ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { openAccount, openLedger } from '../support/ledgerFixture.js';

const USD = 1_000_000_000;
const COST = 2 * USD;
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The ledger of the one process using an embedded store (as `npm start` has it), funded for `requests`. */
const soleLedger = async (requests: number, options: { pipeline?: boolean; wrap?: (store: EventStore) => EventStore; store?: NonNullable<Parameters<typeof openLedger>[1]>['store'] } = {}) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-pipeline-'));
  dirs.push(dir);
  const l = await openLedger(dir, {
    ...(options.wrap && { wrap: options.wrap }),
    ...(options.store && { store: options.store }),
    ledger: { soleProcess: true, ...(options.pipeline !== undefined && { pipeline: options.pipeline }) },
  });
  closers.push(() => l.close());
  await l.directory.waitFor(await openAccount(l.eventStore, 'acc'));
  if (requests > 0) await l.ledger.grant({ accountId: 'acc', amount: requests * COST, reason: 'pipeline test', actor: 'test', correlationId: 'test' });
  return { dir, l };
};

const turn = () => new Promise((resolve) => setImmediate(resolve));

const reservedIds = async (l: Awaited<ReturnType<typeof openLedger>>) =>
  (await l.eventStore.readStream(ledgerStream('acc'))).filter((e) => e.type === 'CreditsReserved').map((e) => (e.data as { generationId: string }).generationId);

/** The stream is the truth: the balance the service answers is the one its events fold to. */
const expectBalanceIsTheStreams = async (l: Awaited<ReturnType<typeof openLedger>>) => {
  const state = foldEvents(ledgerDecider, (await l.eventStore.readStream(ledgerStream('acc'))) as unknown as LedgerEvent[]);
  expect((await l.ledger.balance('acc')).available).toBe(available(state));
  return state;
};

describe('ledger batches pipelined on the embedded store (sole process)', () => {
  // r1's fsync may wait 200 ms, so the store holds it 150 ms for appends made meanwhile; r2 and r3 come in later turns.
  const reserveThree = async (l: Awaited<ReturnType<typeof openLedger>>) => {
    const heard: string[] = [];
    const reserve = (generationId: string) =>
      l.ledger.reserve({ accountId: 'acc', keyId: null, generationId, amount: COST, freeModel: false, syncWithinMs: 200 }).then(
        () => void heard.push(`durable ${generationId}`),
        (error: unknown) => void heard.push(`${(error as Error).constructor.name} ${generationId}`),
      );
    const commitsBefore = l.eventStore.writeStats().commits;
    const first = reserve('r1');
    await turn();
    const second = reserve('r2');
    await turn();
    const third = reserve('r3');
    await Promise.all([first, second, third]);
    return { heard, commits: l.eventStore.writeStats().commits - commitsBefore };
  };

  it("sends a reservation while the account's previous one is held by the store: one commit for all three", async () => {
    const { l } = await soleLedger(3);
    const { heard, commits } = await reserveThree(l);
    expect(heard).toEqual(['durable r1', 'durable r2', 'durable r3']);
    expect(commits).toBe(1);
    expect(await reservedIds(l)).toEqual(['r1', 'r2', 'r3']);
    expect((await expectBalanceIsTheStreams(l)).reservations.size).toBe(3);
  });

  it('without pipelining the next batch waits for the commit of the one in flight (two commits)', async () => {
    const { l } = await soleLedger(3, { pipeline: false });
    const { heard, commits } = await reserveThree(l);
    expect(heard).toEqual(['durable r1', 'durable r2', 'durable r3']);
    expect(commits).toBe(2);
    expect(await reservedIds(l)).toEqual(['r1', 'r2', 'r3']);
  });

  /**
   * The first reservation's append fails, its answer coming back only after the store answered the one sent after it
   * (which then fails too: it was sent at the revision the first would have given).
   */
  const failFirstReservation = (error: Error) => {
    let failed = false;
    let next: Promise<unknown> | undefined;
    let nextSent!: () => void;
    const nextIsSent = new Promise<void>((resolve) => (nextSent = resolve));
    const wrap = (inner: EventStore): EventStore => ({
      ...inner,
      append(stream, events, options) {
        if (!stream.startsWith('ledger-') || !events.some((e) => e.type === 'CreditsReserved')) return inner.append(stream, events, options);
        if (failed) {
          const result = inner.append(stream, events, options);
          if (!next) {
            next = result.then(
              () => 'written',
              (e: unknown) => (e as Error).constructor.name,
            );
            nextSent();
          }
          return result;
        }
        failed = true;
        return nextIsSent.then(() => next).then(() => Promise.reject(error));
      },
    });
    return { wrap, nextAnswer: () => next };
  };

  it('a failed append fails the batches sent after it; they are decided again on the reloaded stream, and nothing is written twice', async () => {
    const fault = failFirstReservation(new UnavailableError('the disk said no'));
    const { l } = await soleLedger(3, { wrap: fault.wrap });
    const { heard } = await reserveThree(l);
    // r2's append went to the store at the revision r1's would have given, and was refused there.
    expect(await fault.nextAnswer()).toBe('WrongExpectedVersionError');
    expect(heard).toEqual(['UnavailableError r1', 'durable r2', 'durable r3']);
    expect(await reservedIds(l)).toEqual(['r2', 'r3']);
    const state = await expectBalanceIsTheStreams(l);
    expect(available(state)).toBe(COST);
  });

  it('a conflict is decided again with everything after it, in order', async () => {
    const fault = failFirstReservation(new WrongExpectedVersionError('ledger-acc', 1, 2));
    const { l } = await soleLedger(2, { wrap: fault.wrap });
    const { heard } = await reserveThree(l);
    expect(await fault.nextAnswer()).toBe('WrongExpectedVersionError');
    expect(heard).toEqual(['durable r1', 'durable r2', 'InsufficientCreditsError r3']);
    expect(await reservedIds(l)).toEqual(['r1', 'r2']);
    expect(available(await expectBalanceIsTheStreams(l))).toBe(0);
  });

  it('grants exactly 10 of 200 concurrent reservations across many turns, and the stream agrees', async () => {
    const { l } = await soleLedger(10);
    const results: Promise<PromiseSettledResult<unknown>>[] = [];
    for (let i = 0; i < 200; i++) {
      // Handled as made: a refusal is answered at once once the 10 are written, while this loop still yields.
      const reserved = l.ledger.reserve({ accountId: 'acc', keyId: null, generationId: `g-${i}`, amount: COST, freeModel: false, syncWithinMs: 20 });
      results.push(reserved.then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason })));
      if (i % 7 === 0) await turn();
    }
    const settled = await Promise.all(results);
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    for (const r of settled.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'INSUFFICIENT_CREDITS' });
    const state = await expectBalanceIsTheStreams(l);
    expect(available(state)).toBe(0);
    expect(state.reservations.size).toBe(10);
  });

  const releasedAfter = (other: Database.Database, ms: number) => new Promise<void>((resolve) => setTimeout(() => resolve(void other.exec('ROLLBACK')), ms));

  it('a group the writer cannot commit (the file locked by another connection) fails the batches pipelined behind it; what is answered written is written once, what is refused is not', async () => {
    const { dir, l } = await soleLedger(0, { store: { busyTimeoutMs: 100 } });
    await l.ledger.grant({ accountId: 'acc', amount: 3 * COST, reason: 'x', actor: 't', correlationId: 't' });
    const other = new Database(join(dir, 'events.db'));
    closers.push(async () => void other.close());
    other.exec('BEGIN IMMEDIATE');
    const answered = new Map<string, string>();
    const reserve = (generationId: string) =>
      l.ledger.reserve({ accountId: 'acc', keyId: null, generationId, amount: COST, freeModel: false }).then(
        () => void answered.set(generationId, 'durable'),
        (error: unknown) => void answered.set(generationId, (error as Error).constructor.name),
      );
    const all = [reserve('r1')];
    await turn();
    all.push(reserve('r2'));
    await turn();
    all.push(reserve('r3'));
    // The writer waits for the lock 100 ms and fails r1's group; the lock goes while later groups wait for it.
    await Promise.all([...all, releasedAfter(other, 250)]);
    expect(answered.get('r1')).toBe('UnavailableError');
    for (const id of ['r2', 'r3']) expect(['durable', 'UnavailableError']).toContain(answered.get(id));
    expect(await reservedIds(l)).toEqual(['r2', 'r3'].filter((id) => answered.get(id) === 'durable'));
    await expectBalanceIsTheStreams(l);
  });

  it('grants without a key pipelined behind a failed group: each either written once and answered, or refused and not written', async () => {
    const { dir, l } = await soleLedger(0, { store: { busyTimeoutMs: 100 } });
    const other = new Database(join(dir, 'events.db'));
    closers.push(async () => void other.close());
    other.exec('BEGIN IMMEDIATE');
    const grants: Promise<PromiseSettledResult<unknown>>[] = [];
    for (let i = 0; i < 6; i++) {
      const granted = l.ledger.grant({ accountId: 'acc', amount: 10 ** i, reason: `g${i}`, actor: 't', correlationId: 't' });
      grants.push(granted.then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason })));
      await turn();
    }
    const [results] = await Promise.all([Promise.all(grants), releasedAfter(other, 250)]);
    expect(results[0]!.status).toBe('rejected');
    const written = (await l.eventStore.readStream(ledgerStream('acc'))).filter((e) => e.type === 'CreditsGranted').map((e) => (e.data as { reason: string }).reason);
    expect(written).toEqual(results.flatMap((r, i) => (r.status === 'fulfilled' ? [`g${i}`] : [])));
    await expectBalanceIsTheStreams(l);
  });

  it('with full durability and a slow disk: each pipelined reservation is answered in order, once durable, and a read between them sees every reservation made before it', async () => {
    const { l } = await soleLedger(0, { store: { synchronous: 'full', syncDelayMs: 30 } });
    await l.ledger.grant({ accountId: 'acc', amount: 10 * COST, reason: 'x', actor: 't', correlationId: 't' });
    const order: string[] = [];
    const durableAt = new Map<string, number>();
    /** At each read's answer: the reservations written. */
    const reads: number[] = [];
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      all.push(
        l.ledger.reserve({ accountId: 'acc', keyId: null, generationId: `r${i}`, amount: COST, freeModel: false, syncWithinMs: 50 }).then(() => {
          order.push(`r${i}`);
          durableAt.set(`r${i}`, l.eventStore.writeStats().acknowledgedPosition);
        }),
      );
      // A read is answered once everything decided before it is written.
      all.push(l.ledger.balance('acc').then(async () => void (reads[i] = (await reservedIds(l)).length)));
      await turn();
    }
    await Promise.all(all);
    expect(order).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    reads.forEach((written, i) => expect(written).toBeGreaterThanOrEqual(i + 1));
    for (const event of await l.eventStore.readStream(ledgerStream('acc'))) {
      if (event.type !== 'CreditsReserved') continue;
      expect(durableAt.get((event.data as { generationId: string }).generationId)).toBeGreaterThanOrEqual(event.position);
    }
  });
});
