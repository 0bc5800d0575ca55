/**
 * Projection rebuild rate and restart time of the embedded default.
 *   node --import tsx bench/projections.bench.ts [--events 100000]
 * Writes `--events` events shaped like production (per 1,000 accounts: account and key events, then ledger traffic:
 * grants, reservations and settlements with usage), rebuilds every read model from zero with the runner, then
 * starts the whole app (`startSwitchyard`) on that data directory and reports the time until it listens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { allProjections } from '../projections/index.js';
import { createProjectionRunner } from '../projections/runner.js';
import { loadConfig } from '../src/config.js';
import type { NewEvent } from '../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../src/eventStore/sqliteEventStore.js';
import { startSwitchyard } from '../src/main.js';
import { accountStream } from '../src/modules/accounts/account.events.js';
import { apiKeyStream } from '../src/modules/apiKeys/apiKey.events.js';
import { hashSecret } from '../src/modules/apiKeys/keyFormat.js';
import { ledgerStream } from '../src/modules/ledger/ledger.events.js';
import { openEmbeddedReadStore } from '../src/readStore/embeddedReadStore.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '100000' } } });
const EVENTS = Number(values.events);
const ACCOUNTS = 1000;
const USD = 1_000_000_000;
const dir = mkdtempSync(join(tmpdir(), 'bench-projections-'));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
const at = new Date().toISOString();
let written = 0;
for (let a = 0; a < ACCOUNTS; a++) {
  const accountId = `acc_${a}`;
  await eventStore.append(accountStream(accountId), [{ type: 'AccountOpened', data: { accountId, name: accountId, email: null, roles: ['user'], plan: 'free', at } }]);
  await eventStore.append(apiKeyStream(`key_${a}`), [
    { type: 'ApiKeyCreated', data: { keyId: `key_${a}`, accountId, name: 'k', hash: hashSecret(`secret-${a}`), hint: 'sk-sy-v1-…', limit: null, limitReset: 'never', expiresAt: null, at } },
  ]);
  written += 2;
}
for (let n = 0; written < EVENTS; n++) {
  const accountId = `acc_${n % ACCOUNTS}`;
  const batch: NewEvent[] = [{ type: 'CreditsGranted', data: { accountId, amount: 1000 * USD, reason: 'bench', grantedBy: 'bench', at } }];
  for (let i = 0; batch.length < 999 && written + batch.length < EVENTS - 1; i++) {
    const generationId = `g${n}-${i}`;
    batch.push({ type: 'CreditsReserved', data: { accountId, generationId, keyId: `key_${n % ACCOUNTS}`, amount: 2 * USD, free: false, at } });
    batch.push({
      type: 'ReservationSettled',
      data: {
        accountId,
        generationId,
        keyId: `key_${n % ACCOUNTS}`,
        reserved: 2 * USD,
        actual: USD,
        charged: USD,
        uncollected: 0,
        usage: { model: `model-${i % 8}`, provider: `provider-${i % 3}`, promptTokens: 120, completionTokens: 300, reasoningTokens: 0, cachedTokens: 0 },
        late: false,
        reservedAt: at,
        at,
      },
    });
  }
  await eventStore.append(ledgerStream(accountId), batch);
  written += batch.length;
}
await eventStore.close();

const stores = { eventStore: openSqliteEventStore({ dir, synchronous: 'normal' }), readStore: await openEmbeddedReadStore({ dir }) };
const runner = createProjectionRunner({ ...stores, projections: allProjections, batchSize: 5000 });
const rebuildStarted = performance.now();
await runner.start();
await runner.stop();
const rebuildSeconds = (performance.now() - rebuildStarted) / 1000;
await Promise.all([stores.eventStore.close(), stores.readStore.close()]);

// Restart: the whole app on the data directory (read models load with their checkpoints; nothing is replayed).
const startedAt = performance.now();
const app = await startSwitchyard(loadConfig({ PORT: '0', DATA_DIR: dir, LOG_LEVEL: 'silent', ADMIN_API_KEY: 'bench-admin-key-0123456789abcdef0123' }), { log: () => undefined });
const readySeconds = (performance.now() - startedAt) / 1000;
const health = await (await fetch(`http://127.0.0.1:${app.port}/health`)).json();
await app.stop();
rmSync(dir, { recursive: true, force: true });

console.log(`\nNode ${process.version}, ${new Date().toISOString()}, ${fmt(written)} events (${ACCOUNTS} accounts)\n`);
console.log('| Measurement | Events | Time | Rate |');
console.log('|---|---:|---:|---:|');
console.log(`| projection rebuild from zero (all read models) | ${fmt(written)} | ${rebuildSeconds.toFixed(2)} s | ${fmt(written / rebuildSeconds)} events/s |`);
console.log(`| app restart until listening (lag after start: ${health.projections.lag}) | ${fmt(written)} | ${readySeconds.toFixed(2)} s | |`);
