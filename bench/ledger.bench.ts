/**
 * Ledger throughput and audit replay.
 *   node --import tsx bench/ledger.bench.ts [--pairs 100000] [--concurrency 256] [--audit-events 1000000] [--sync full|normal]
 * 1. Reserve + settle pairs per second on one hot account, then spread over 1,000 accounts, through the ledger
 *    service on the embedded event store, with `concurrency` requests in flight. Afterwards the stream is folded
 *    and checked: no overspend, no open reservation, the fold equals the service's balance.
 * 2. The billing audit replaying `--audit-events` ledger events (written directly in appends of 1000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { allProjections } from '../projections/index.js';
import { createProjectionRunner } from '../projections/runner.js';
import type { NewEvent } from '../src/eventStore/eventStore.js';
import { foldEvents } from '../src/eventStore/handleCommand.js';
import { openSqliteEventStore } from '../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../src/logger.js';
import { accountStream } from '../src/modules/accounts/account.events.js';
import { createAuthDirectory } from '../src/modules/auth/authDirectory.js';
import { runBillingAudit } from '../src/modules/ledger/audit.js';
import { available, ledgerDecider } from '../src/modules/ledger/ledger.decider.js';
import { ledgerStream, type LedgerEvent } from '../src/modules/ledger/ledger.events.js';
import { createLedgerService } from '../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../src/modules/ledger/payments.js';
import { openEmbeddedReadStore } from '../src/readStore/embeddedReadStore.js';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '256' },
    'audit-events': { type: 'string', default: '1000000' },
    sync: { type: 'string', default: 'full' },
  },
});
const PAIRS = Number(values.pairs);
const CONCURRENCY = Number(values.concurrency);
const AUDIT_EVENTS = Number(values['audit-events']);
const SYNC = values.sync === 'normal' ? 'normal' : 'full';
const USD = 1_000_000_000;
const rows: string[][] = [];
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const openAll = async (dir: string) => {
  const eventStore = openSqliteEventStore({ dir, synchronous: SYNC });
  const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
  await directory.start();
  const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent') });
  return { eventStore, directory, ledger };
};

const pairsRun = async (label: string, accounts: number) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ledger-'));
  const { eventStore, directory, ledger } = await openAll(dir);
  const ids = Array.from({ length: accounts }, (_, i) => `acc_${i}`);
  let position = 0;
  for (const id of ids) {
    position = (await eventStore.append(accountStream(id), [{ type: 'AccountOpened', data: { accountId: id, name: id, email: null, roles: ['user'], plan: 'free', at: new Date().toISOString() } }])).position;
  }
  await directory.waitFor(position);
  // Fund each account for exactly its share of worst cases, so any overspend would be refused or visible.
  const perAccount = Math.ceil(PAIRS / accounts);
  for (const id of ids) await ledger.grant({ accountId: id, amount: perAccount * 2 * USD, reason: 'bench', actor: 'bench', correlationId: 'bench' });
  let next = 0;
  let refused = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const worker = async () => {
    while (next < PAIRS) {
      const i = next++;
      const accountId = ids[i % accounts]!;
      const generationId = `g${i}`;
      try {
        await ledger.reserve({ accountId, keyId: 'key_bench', generationId, amount: 2 * USD, freeModel: false });
      } catch {
        refused++;
        continue;
      }
      await ledger.settle({ accountId, generationId, actual: USD, usage: { model: 'm', provider: 'p', promptTokens: 10, completionTokens: 20, reasoningTokens: 0, cachedTokens: 0 } });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  // Verify from the streams: the fold of the events is exact and nothing is overspent or left open.
  let overspent = 0;
  let open = 0;
  let mismatched = 0;
  for (const id of ids) {
    const state = foldEvents(ledgerDecider, (await eventStore.readStream(ledgerStream(id))) as unknown as LedgerEvent[]);
    if (available(state) < 0) overspent++;
    open += state.reservations.size;
    if (available(state) !== (await ledger.balance(id)).available) mismatched++;
  }
  rows.push([label, fmt(PAIRS - refused), `${seconds.toFixed(2)} s`, `${fmt((PAIRS - refused) / seconds)} pairs/s`, `${(((used.user + used.system) / (PAIRS - refused)) | 0)} µs`, `${overspent} overspent, ${open} open, ${mismatched} mismatched, ${refused} refused`]);
  await ledger.stop();
  await directory.stop();
  await eventStore.close();
  rmSync(dir, { recursive: true, force: true });
};

const auditRun = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
  const accounts = 1000;
  const at = new Date().toISOString();
  let written = 0;
  let n = 0;
  while (written < AUDIT_EVENTS) {
    const accountId = `acc_${n % accounts}`;
    const batch: NewEvent[] = [];
    batch.push({ type: 'CreditsGranted', data: { accountId, amount: 1000 * USD, reason: 'bench', grantedBy: 'bench', at } });
    for (let i = 0; i < 333 && batch.length < 1000; i++) {
      const generationId = `g${n}-${i}`;
      batch.push({ type: 'CreditsReserved', data: { accountId, generationId, keyId: 'key_1', amount: 2 * USD, free: false, at } });
      batch.push({
        type: 'ReservationSettled',
        data: { accountId, generationId, keyId: 'key_1', reserved: 2 * USD, actual: USD, charged: USD, uncollected: 0, usage: { model: `m${i % 5}`, provider: 'p', promptTokens: 10, completionTokens: 20, reasoningTokens: 0, cachedTokens: 0 }, late: false, reservedAt: at, at },
      });
    }
    await eventStore.append(ledgerStream(accountId), batch);
    written += batch.length;
    n++;
  }
  const readStore = await openEmbeddedReadStore({ dir });
  const runner = createProjectionRunner({ eventStore, readStore, projections: allProjections, batchSize: 5000 });
  const rebuildStarted = performance.now();
  await runner.start();
  await runner.stop();
  const rebuildSeconds = (performance.now() - rebuildStarted) / 1000;
  rows.push(['projection rebuild (balances, usageDaily, ...) from zero', fmt(written), `${rebuildSeconds.toFixed(2)} s`, `${fmt(written / rebuildSeconds)} events/s`, '', '']);
  const report = await runBillingAudit({ eventStore, readStore });
  rows.push(['billing audit replay (all accounts)', fmt(report.eventsReplayed), `${(report.durationMs / 1000).toFixed(2)} s`, `${fmt(report.eventsReplayed / (report.durationMs / 1000))} events/s`, '', `${report.differences.length} differences`]);
  await readStore.close();
  await eventStore.close();
  rmSync(dir, { recursive: true, force: true });
};

await pairsRun(`reserve + settle, 1 hot account, ${CONCURRENCY} in flight, sync=${SYNC}`, 1);
if (process.env.SPREAD !== '0') await pairsRun(`reserve + settle, 1,000 accounts, ${CONCURRENCY} in flight, sync=${SYNC}`, 1000);
if (AUDIT_EVENTS > 0) await auditRun();

console.log(`\nNode ${process.version}, ${new Date().toISOString()}\n`);
console.log('| Measurement | Count | Time | Rate | CPU per pair | Check |');
console.log('|---|---:|---:|---:|---:|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
