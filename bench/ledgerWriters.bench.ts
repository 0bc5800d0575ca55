/**
 * Memory of the ledger's per-account writers with many accounts.
 *   node --expose-gc --import tsx bench/ledgerWriters.bench.ts [--accounts 50000] [--settled 20] [--max-writers 10000]
 * Each account gets a grant and `settled` reserve + settle pairs (so its writer holds that many settled outcomes), on
 * the embedded event store. The same run is made with the writers bounded (`--max-writers`) and unbounded (as before
 * eviction): the table shows the writers held and the heap after a full GC.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteEventStore } from '../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../src/logger.js';
import { accountStream } from '../src/modules/accounts/account.events.js';
import { createAuthDirectory } from '../src/modules/auth/authDirectory.js';
import { createLedgerService } from '../src/modules/ledger/ledgerService.js';
import { builtInPaymentProcessor } from '../src/modules/ledger/payments.js';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '50000' },
    settled: { type: 'string', default: '20' },
    'max-writers': { type: 'string', default: '10000' },
  },
});
const ACCOUNTS = Number(values.accounts);
const SETTLED = Number(values.settled);
const MAX_WRITERS = Number(values['max-writers']);
const USD = 1_000_000_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Write the accounts and their ledger history once; each run then reads them through a fresh service. */
const prepare = async (dir: string) => {
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
  const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
  await directory.start();
  const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent'), maxWriters: 1_000 });
  const at = new Date().toISOString();
  const ids = Array.from({ length: ACCOUNTS }, (_, i) => `acc_b${i}`);
  let position = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const appended = await Promise.all(
      ids.slice(i, i + 500).map((id) => eventStore.append(accountStream(id), [{ type: 'AccountOpened', data: { accountId: id, name: id, email: null, roles: ['user'], plan: 'pro', at } }])),
    );
    position = Math.max(position, ...appended.map((a) => a.position));
  }
  await directory.waitFor(position);
  const usage = { model: 'm', provider: 'p', promptTokens: 10, completionTokens: 20, reasoningTokens: 0, cachedTokens: 0 };
  for (let i = 0; i < ids.length; i += 200) {
    await Promise.all(
      ids.slice(i, i + 200).map(async (accountId) => {
        await ledger.grant({ accountId, amount: 100 * USD, reason: 'bench', actor: 'bench', correlationId: 'bench' });
        for (let g = 0; g < SETTLED; g++) {
          const generationId = `${accountId}-${g}`;
          await ledger.reserve({ accountId, keyId: 'key_bench', generationId, amount: 2 * USD, freeModel: false });
          await ledger.settle({ accountId, generationId, actual: USD, usage });
        }
      }),
    );
  }
  await ledger.stop();
  await directory.stop();
  await eventStore.close();
};

const measure = async (dir: string, maxWriters: number) => {
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
  const directory = createAuthDirectory({ eventStore, logger: createLogger('silent') });
  await directory.start();
  const ledger = createLedgerService({ eventStore, directory, payments: builtInPaymentProcessor(), logger: createLogger('silent'), maxWriters });
  const before = heapMiB();
  const started = performance.now();
  // Every account asks for its balance once (as `/credits` or GraphQL `balance` would), 200 at a time.
  const ids = Array.from({ length: ACCOUNTS }, (_, i) => `acc_b${i}`);
  for (let i = 0; i < ids.length; i += 200) await Promise.all(ids.slice(i, i + 200).map((id) => ledger.balance(id)));
  const seconds = (performance.now() - started) / 1000;
  const after = heapMiB();
  const row = { writers: ledger.writerCount, heapMiB: after - before, seconds };
  await ledger.stop();
  await directory.stop();
  await eventStore.close();
  return row;
};

const dir = mkdtempSync(join(tmpdir(), 'bench-writers-'));
try {
  await prepare(dir);
  const rows: string[][] = [];
  for (const [label, max] of [
    [`bounded (max ${fmt(MAX_WRITERS)})`, MAX_WRITERS],
    ['unbounded (before eviction)', Number.POSITIVE_INFINITY],
  ] as const) {
    const { writers, heapMiB: heap, seconds } = await measure(dir, max);
    rows.push([label, fmt(ACCOUNTS), fmt(writers), `${heap.toFixed(1)} MiB`, `${seconds.toFixed(2)} s`]);
  }
  console.log(`\n${ACCOUNTS} accounts, each with a grant and ${SETTLED} settled generations; every account's balance read once.\n`);
  console.log('| Writers | Accounts read | Writers held | Heap growth after GC | Time |');
  console.log('|---|---:|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
