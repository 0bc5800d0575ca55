import { describe, expect, it } from 'vitest';
import { loadConfig, reservationTtlMs } from '../../src/config.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { ledgerStream } from '../../src/modules/ledger/ledger.events.js';
import { createLedgerService } from '../../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../../src/modules/ledger/payments.js';
import { ADMIN_KEY, startHarness } from '../support/appHarness.js';
import { openAccount } from '../support/ledgerFixture.js';
import { spawnedSwitchyards } from '../support/spawnedServer.js';

const USD = 1_000_000_000;
const switchyards = spawnedSwitchyards();
const tempDir = () => switchyards.dataDir('switchyard-sweeper-');

describe('the reservation sweeper', () => {
  it('expires reservations older than the TTL, periodically, and leaves fresh ones alone', async () => {
    const dir = tempDir();
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
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

  it('releases a reservation left open by a killed process right at the next start (embedded mode), recorded as expired', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    // A slow demo answer keeps the generation in flight; no RESERVATION_TTL_SECONDS: the defaults apply.
    const server = await switchyards.start(dir, { env: { DEMO_TOKEN_DELAY_MS: '5000' } });
    const { url } = server;
    const opened = (await server.graphql(`mutation { openAccount(name: "Killed") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).body as {
      data: { openAccount: { account: { id: string }; initialKey: { secret: string } } };
    };
    const accountId = opened.data.openAccount.account.id;
    const key = opened.data.openAccount.initialKey.secret;
    await server.graphql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: ${5 * USD}, reason: "x") { __typename } }`, { id: accountId });
    const res = await fetch(`${url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'hello' }], max_tokens: 1_000, stream: true }),
    });
    const generationId = res.headers.get('x-generation-id')!;
    // The first streamed bytes go out only once the reservation is durable.
    const reader = res.body!.getReader();
    await reader.read();
    await server.kill();
    await reader.cancel().catch(() => undefined);

    const h = await startHarness({}, dir);
    try {
      const { eventStore, runner } = h.running.core;
      const last = (await eventStore.readStream(ledgerStream(accountId))).at(-1)!;
      expect(last).toMatchObject({ type: 'ReservationExpired', data: { generationId } });
      expect((last.data as { reserved: number }).reserved).toBeGreaterThan(0);
      await runner.waitFor(await eventStore.headPosition());
      const balance = await h.gql(`query($id: ID!) { balance(accountId: $id) { reserved available openReservations } }`, { id: accountId });
      expect(balance.body.data.balance).toEqual({ reserved: 0, available: 5 * USD, openReservations: 0 });
    } finally {
      await h.stop({ keepData: true });
    }
  });

  it('with production stores, a reservation lives as long as the request timeout plus a margin, not 15 minutes', () => {
    expect(reservationTtlMs(loadConfig({}))).toBe(600_000 + 60_000);
    expect(reservationTtlMs(loadConfig({ GATEWAY_REQUEST_TIMEOUT_MS: '30000' }))).toBe(90_000);
    expect(reservationTtlMs(loadConfig({ RESERVATION_TTL_SECONDS: '120' }))).toBe(120_000);
  });
});
