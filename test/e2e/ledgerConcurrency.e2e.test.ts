import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { available, ledgerDecider } from '../../src/modules/ledger/ledger.decider.js';
import { ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { createLedgerService } from '../../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../../src/modules/ledger/payments.js';
import { openAccount, openLedger } from '../support/ledgerFixture.js';

const USD = 1_000_000_000;
const COST = 2 * USD; // worst case of one request
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ledger-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Lines of a child's stdout, in order, however the chunks arrive. */
const lineReader = (stream: Readable) => {
  const lines: string[] = [];
  let buffered = '';
  let waiting: (() => void) | null = null;
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    waiting?.();
  });
  return async (): Promise<string> => {
    while (lines.length === 0) await new Promise<void>((resolve) => (waiting = resolve));
    return lines.shift()!;
  };
};

const fundExactly = async (ledger: Awaited<ReturnType<typeof openLedger>>, accountId: string, requests: number) => {
  await ledger.directory.waitFor(await openAccount(ledger.eventStore, accountId));
  await ledger.ledger.grant({ accountId, amount: requests * COST, reason: 'race test', actor: 'test', correlationId: 'test' });
};

/** Two ledger instances on one store, as two app processes have, both knowing the account funded for `requests`. */
const twoInstances = async (accountId: string, requests: number) => {
  const dir = tempDir();
  const a = await openLedger(dir);
  const b = await openLedger(dir);
  await fundExactly(a, accountId, requests);
  while (!b.directory.account(accountId)) await new Promise((resolve) => setTimeout(resolve, 10));
  return [a, b] as const;
};

/** The stream is the truth: fold it and check the invariant and the reservations. */
const replay = async (ledger: Awaited<ReturnType<typeof openLedger>>, accountId: string) => {
  const events = await ledger.eventStore.readStream(ledgerStream(accountId));
  return foldEvents(ledgerDecider, events as unknown as LedgerEvent[]);
};

describe('no overspend under concurrency', () => {
  it('an account funded for exactly 10 requests grants exactly 10 of 200 concurrent reservations, in one process', async () => {
    const l = await openLedger(tempDir());
    await fundExactly(l, 'acc_hot', 10);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => l.ledger.reserve({ accountId: 'acc_hot', keyId: null, generationId: `g-${i}`, amount: COST, freeModel: false })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    for (const r of results.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'INSUFFICIENT_CREDITS', status: 402 });
    const state = await replay(l, 'acc_hot');
    expect(available(state)).toBe(0);
    expect(state.reservations.size).toBe(10);
    // Concurrent reservations were batched: far fewer appends than requests.
    const revisions = new Set((await l.eventStore.readStream(ledgerStream('acc_hot'))).map((e) => e.recordedAt));
    expect(revisions.size).toBeLessThan(12);
    await l.close();
  });

  it('a brand-new account with no history is just as exact (first-request race)', async () => {
    const l = await openLedger(tempDir());
    await l.directory.waitFor(await openAccount(l.eventStore, 'acc_new'));
    const grants = [l.ledger.grant({ accountId: 'acc_new', amount: 3 * COST, reason: 'x', actor: 't', correlationId: 't' })];
    const reserves = Array.from({ length: 50 }, (_, i) => l.ledger.reserve({ accountId: 'acc_new', keyId: null, generationId: `n-${i}`, amount: COST, freeModel: false }));
    await Promise.all(grants);
    const results = await Promise.allSettled(reserves);
    const granted = results.filter((r) => r.status === 'fulfilled').length;
    expect(granted).toBeLessThanOrEqual(3);
    expect(available(await replay(l, 'acc_new'))).toBe(3 * COST - granted * COST);
    await l.close();
  });

  it('two ledger instances on one store (as two app processes have) grant exactly 10 between them', async () => {
    const [a, b] = await twoInstances('acc_shared', 10);
    const fire = (l: typeof a, prefix: string) =>
      Array.from({ length: 100 }, (_, i) => l.ledger.reserve({ accountId: 'acc_shared', keyId: null, generationId: `${prefix}-${i}`, amount: COST, freeModel: false }));
    const results = await Promise.allSettled([...fire(a, 'a'), ...fire(b, 'b')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const state = await replay(a, 'acc_shared');
    expect(available(state)).toBe(0);
    expect(state.reservations.size).toBe(10);
    await Promise.all([a.close(), b.close()]);
  });

  it('T-LEDGER-1: three ledger instances on one store grant exactly 10 of 200 between them; settled at random amounts up to the worst case, Σ charged ≤ B and nothing stays reserved', async () => {
    const dir = tempDir();
    const instances = [await openLedger(dir), await openLedger(dir), await openLedger(dir)];
    await fundExactly(instances[0]!, 'acc_three', 10);
    for (const l of instances) while (!l.directory.account('acc_three')) await new Promise((resolve) => setTimeout(resolve, 10));
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        instances[i % 3]!.ledger.reserve({ accountId: 'acc_three', keyId: null, generationId: `t-${i}`, amount: COST, freeModel: false }).then(() => i),
      ),
    );
    const granted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(granted).toHaveLength(10);
    let charged = 0;
    for (const i of granted) {
      const actual = COST / 10 + Math.floor(Math.random() * (COST - COST / 10));
      charged += (await instances[i % 3]!.ledger.settle({ accountId: 'acc_three', generationId: `t-${i}`, actual, usage: null })).charged;
    }
    expect(charged).toBeLessThanOrEqual(10 * COST);
    const state = await replay(instances[0]!, 'acc_three');
    expect(state.reservations.size).toBe(0);
    expect(available(state)).toBe(10 * COST - charged);
    await Promise.all(instances.map((l) => l.close()));
  });

  it('a reservation admitted on a stale view is refused once its append meets the other instance’s (onAdmitted came first)', async () => {
    const [a, b] = await twoInstances('acc_stale', 1);
    expect((await a.ledger.balance('acc_stale')).available).toBe(COST); // a now holds the account's state
    await b.ledger.reserve({ accountId: 'acc_stale', keyId: null, generationId: 'by-b', amount: COST, freeModel: false });
    const order: string[] = [];
    const byA = a.ledger
      .reserve({ accountId: 'acc_stale', keyId: null, generationId: 'by-a', amount: COST, freeModel: false, onAdmitted: () => order.push('admitted') })
      .then(() => order.push('durable'), (error: unknown) => order.push((error as Error).constructor.name));
    await byA;
    expect(order).toEqual(['admitted', 'InsufficientCreditsError']);
    const state = await replay(a, 'acc_stale');
    expect([...state.reservations.keys()]).toEqual(['by-b']);
    expect(available(state)).toBe(0);
    // Admitted on the reloaded state, a reservation that fits is durable after its admission, and admitted once.
    await a.ledger.release({ accountId: 'acc_stale', generationId: 'by-b', reason: 'test' });
    const admissions: string[] = [];
    await a.ledger.reserve({ accountId: 'acc_stale', keyId: null, generationId: 'by-a-2', amount: COST, freeModel: false, onAdmitted: () => admissions.push('admitted') });
    expect(admissions).toEqual(['admitted']);
    await Promise.all([a.close(), b.close()]);
  });

  it('admits a reservation while the account’s previous append is still in flight, and writes it right after', async () => {
    const l = await openLedger(tempDir());
    await fundExactly(l, 'acc_pipe', 3);
    const order: string[] = [];
    const reserve = (generationId: string) =>
      l.ledger
        .reserve({ accountId: 'acc_pipe', keyId: null, generationId, amount: COST, freeModel: false, onAdmitted: () => order.push(`admitted ${generationId}`) })
        .then(() => order.push(`durable ${generationId}`));
    // Three requests in one turn: the first is appended at once, the other two while it is in flight.
    const all = Promise.all(['r1', 'r2', 'r3'].map(reserve));
    expect(order).toEqual(['admitted r1', 'admitted r2', 'admitted r3']);
    await all;
    expect(order.slice(3)).toEqual(['durable r1', 'durable r2', 'durable r3']);
    const events = await l.eventStore.readStream(ledgerStream('acc_pipe'));
    expect(events.filter((e) => e.type === 'CreditsReserved').map((e) => (e.data as { generationId: string }).generationId)).toEqual(['r1', 'r2', 'r3']);
    // r2 and r3 went into one append, after r1's.
    expect(new Set(events.slice(-2).map((e) => e.recordedAt)).size).toBe(1);
    expect(events.at(-3)!.position).toBeLessThan(events.at(-2)!.position);
    await l.close();
  });

  it('on a stale view, every reservation not yet written is decided again in order once the append meets the other instance’s', async () => {
    const [a, b] = await twoInstances('acc_stale2', 2);
    expect((await a.ledger.balance('acc_stale2')).available).toBe(2 * COST); // a now holds the account's state
    await b.ledger.reserve({ accountId: 'acc_stale2', keyId: null, generationId: 'by-b', amount: COST, freeModel: false });
    const order: string[] = [];
    const reserve = (generationId: string) =>
      a.ledger
        .reserve({ accountId: 'acc_stale2', keyId: null, generationId, amount: COST, freeModel: false, onAdmitted: () => order.push(`admitted ${generationId}`) })
        .then(
          () => order.push(`durable ${generationId}`),
          (error: unknown) => order.push(`${(error as Error).constructor.name} ${generationId}`),
        );
    // a admits both on its stale view (2 × COST available): the first append fails on b's, and a decides both again.
    await Promise.all([reserve('a-1'), reserve('a-2')]);
    expect(order).toEqual(['admitted a-1', 'admitted a-2', 'durable a-1', 'InsufficientCreditsError a-2']);
    const state = await replay(a, 'acc_stale2');
    expect([...state.reservations.keys()]).toEqual(['by-b', 'a-1']);
    expect(available(state)).toBe(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('a separate OS process racing this one on the same store: exactly 10 granted in total', async () => {
    const dir = tempDir();
    const l = await openLedger(dir);
    await fundExactly(l, 'acc_proc', 10);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/ledgerWorker.ts', dir, 'acc_proc', '100', String(COST), 'child'], {
      cwd: join(import.meta.dirname, '../..'),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const nextLine = lineReader(child.stdout!);
    expect(await nextLine()).toBe('ready');
    child.stdin!.end('go\n');
    const mine = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => l.ledger.reserve({ accountId: 'acc_proc', keyId: null, generationId: `parent-${i}`, amount: COST, freeModel: false })),
    );
    const theirs = JSON.parse(await nextLine()) as { granted: number; unexpected: number };
    await exited;
    expect(theirs.unexpected).toBe(0);
    expect(mine.filter((r) => r.status === 'fulfilled').length + theirs.granted).toBe(10);
    const state = await replay(l, 'acc_proc');
    expect(available(state)).toBe(0);
    expect(state.reservations.size).toBe(10);
    await l.close();
  });

  it('T-LEDGER-4: a settlement with a different amount is refused and alerted (an error in the log naming the generation)', async () => {
    const dir = tempDir();
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
    await directory.start();
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger });
    await directory.waitFor(await openAccount(eventStore, 'acc_alert'));
    await ledger.grant({ accountId: 'acc_alert', amount: COST, reason: 'x', actor: 't', correlationId: 't' });
    await ledger.reserve({ accountId: 'acc_alert', keyId: null, generationId: 'g-alert', amount: COST, freeModel: false });
    await ledger.settle({ accountId: 'acc_alert', generationId: 'g-alert', actual: USD, usage: null });
    await expect(ledger.settle({ accountId: 'acc_alert', generationId: 'g-alert', actual: USD + 1, usage: null })).rejects.toMatchObject({ code: 'CONFLICT' });
    const alerts = lines.map((line) => JSON.parse(line) as { level: number; msg: string; generationId?: string; actual?: number }).filter((l) => l.level >= 50);
    expect(alerts).toEqual([expect.objectContaining({ msg: 'conflicting settlement refused', generationId: 'g-alert', actual: USD + 1 })]);
    await ledger.stop();
    await directory.stop();
    await eventStore.close();
  });

  it('settles exactly once when the same settlement arrives five times at once; a different amount is refused', async () => {
    const l = await openLedger(tempDir());
    await fundExactly(l, 'acc_s', 5);
    await l.ledger.reserve({ accountId: 'acc_s', keyId: null, generationId: 'g1', amount: COST, freeModel: false });
    const same = await Promise.allSettled(Array.from({ length: 5 }, () => l.ledger.settle({ accountId: 'acc_s', generationId: 'g1', actual: USD, usage: null })));
    expect(same.every((r) => r.status === 'fulfilled' && r.value.charged === USD)).toBe(true);
    const different = await Promise.allSettled([1, 2, 3].map((k) => l.ledger.settle({ accountId: 'acc_s', generationId: 'g1', actual: USD + k, usage: null })));
    expect(different.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'CONFLICT')).toBe(true);
    const events = await l.eventStore.readStream(ledgerStream('acc_s'));
    expect(events.filter((e) => e.type === 'ReservationSettled')).toHaveLength(1);
    expect(available(await replay(l, 'acc_s'))).toBe(5 * COST - USD);
    await l.close();
  });
});
