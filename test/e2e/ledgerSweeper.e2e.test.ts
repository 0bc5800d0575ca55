import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { ledgerStream } from '../../src/modules/ledger/ledger.events.js';
import { createLedgerService } from '../../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../../src/modules/ledger/payments.js';
import { ADMIN_KEY, startHarness } from '../support/appHarness.js';
import { openAccount } from '../support/ledgerFixture.js';

const USD = 1_000_000_000;
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-sweeper-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the reservation sweeper', () => {
  it('expires reservations older than the TTL, periodically, and leaves fresh ones alone', async () => {
    const dir = tempDir();
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    const directory = createAuthDirectory({ eventStore });
    await directory.start();
    let clock = Date.parse('2026-11-25T10:00:00Z');
    const ledger = createLedgerService({
      eventStore,
      directory,
      payments: builtInPaymentProcessor(),
      logger: createLogger('silent'),
      now: () => new Date(clock),
      reservationTtlMs: 60_000,
    });
    await directory.waitFor(await openAccount(eventStore, 'acc_s'));
    await ledger.grant({ accountId: 'acc_s', amount: 10 * USD, reason: 'x', actor: 't', correlationId: 't' });
    await ledger.reserve({ accountId: 'acc_s', keyId: null, generationId: 'old', amount: 2 * USD, freeModel: false });
    clock += 50_000;
    await ledger.reserve({ accountId: 'acc_s', keyId: null, generationId: 'fresh', amount: 3 * USD, freeModel: false });
    clock += 20_000; // "old" is 70 s old, "fresh" 20 s
    expect(await ledger.sweep()).toBe(1);
    expect(await ledger.balance('acc_s')).toMatchObject({ reserved: 3 * USD, available: 7 * USD });
    const types = (await eventStore.readStream(ledgerStream('acc_s'))).map((e) => e.type);
    expect(types.at(-1)).toBe('ReservationExpired');
    // A generation that outlived its reservation still settles, charging what the balance allows then.
    const late = await ledger.settle({ accountId: 'acc_s', generationId: 'old', actual: USD, usage: null });
    expect(late).toMatchObject({ charged: USD, uncollected: 0 });
    await ledger.stop();
    await directory.stop();
    await eventStore.close();
  });

  it('at start-up expires what a crashed process left reserved', async () => {
    const dir = tempDir();
    let h = await startHarness({ RESERVATION_TTL_SECONDS: '60' }, dir);
    const { body } = await h.gql(`mutation { openAccount(name: "Crash") { ... on OpenAccountPayload { account { id } } } }`);
    const accountId = body.data.openAccount.account.id as string;
    await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: ${5 * USD}, reason: "x") { __typename } }`, { id: accountId }, ADMIN_KEY);
    // A reservation made an hour ago by a process that then died: never settled, never released.
    await h.running.core.eventStore.append(ledgerStream(accountId), [
      { type: 'CreditsReserved', data: { accountId, generationId: 'gen-orphan', keyId: null, amount: 2 * USD, free: false, at: new Date(Date.now() - 3_600_000).toISOString() } },
    ]);
    await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition());
    await h.stop({ keepData: true });

    h = await startHarness({ RESERVATION_TTL_SECONDS: '60' }, dir);
    await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition());
    const balance = await h.gql(`query($id: ID!) { balance(accountId: $id) { reserved available openReservations } }`, { id: accountId });
    expect(balance.body.data.balance).toEqual({ reserved: 0, available: 5 * USD, openReservations: 0 });
    const audit = await h.gql(`query($id: ID!) { billingAudit(accountId: $id) { ok } }`, { id: accountId });
    expect(audit.body.data.billingAudit.ok).toBe(true);
    await h.stop({ keepData: true });
  });
});
