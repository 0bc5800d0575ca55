/**
 * Embedded read store: commit throughput, reopen time, and DataLoader-style `_id $in` lookups.
 * Run: node --expose-gc --import tsx bench/readStore.bench.ts   (READSTORE_BENCH_SIZES=100000,1000000 by default;
 * --expose-gc only for the heap column)
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedReadStore } from '../src/readStore/embeddedReadStore.js';
import type { DocWrite } from '../src/readStore/readStore.js';

const sizes = (process.env['READSTORE_BENCH_SIZES'] ?? '100000,1000000').split(',').map(Number);
const batchSize = 1000;
const lookupIds = 100;
const lookupSeconds = 2;

const id = (i: number) => `acc${String(i % 5000).padStart(5, '0')}:key${i % 7}:model${i % 50}:${String(i).padStart(8, '0')}`;

// Shaped like a usageDaily row (account × key × model × provider × day).
const usageDoc = (i: number) => ({
  _id: id(i),
  accountId: `acc${i % 5000}`,
  keyId: `key${i % 7}`,
  model: `vendor/model-${i % 50}`,
  provider: `provider-${i % 9}`,
  day: `2025-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}`,
  requests: i % 97,
  promptTokens: i * 13,
  completionTokens: i * 7,
  costMicros: i * 31,
  updatedAt: '2025-06-01T12:00:00.000Z',
});

interface Row {
  docs: number;
  commitDocsPerSec: number;
  fileMiB: number;
  reopenMs: number;
  heapMiB: number;
  lookupCallsPerSec: number;
}

async function populate(dir: string, total: number): Promise<number> {
  const store = await openEmbeddedReadStore({ dir });
  const started = performance.now();
  for (let from = 0; from < total; from += batchSize) {
    const writes: DocWrite[] = [];
    for (let i = from; i < Math.min(from + batchSize, total); i++) {
      writes.push({ collection: 'usageDaily', id: id(i), doc: usageDoc(i) });
    }
    await store.commit(writes, { projection: 'usageDaily', version: 1, position: from + writes.length });
  }
  const docsPerSec = total / ((performance.now() - started) / 1000);
  await store.close();
  return docsPerSec;
}

async function measure(total: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-readstore-bench-'));
  try {
    const commitDocsPerSec = await populate(dir, total);
    const files = await Promise.all(
      ['readmodels.db', 'readmodels.db-wal'].map((f) => stat(join(dir, f)).catch(() => ({ size: 0 }))),
    );
    const fileMiB = files.reduce((sum, f) => sum + f.size, 0) / 2 ** 20;

    globalThis.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const reopenStarted = performance.now();
    const store = await openEmbeddedReadStore({ dir });
    const reopenMs = performance.now() - reopenStarted;
    globalThis.gc?.();
    const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

    const coll = store.collection('usageDaily');
    if ((await coll.count()) !== total) throw new Error('reopen lost documents');
    const batches = Array.from({ length: 1000 }, () => Array.from({ length: lookupIds }, () => id(Math.floor(Math.random() * total))));
    let calls = 0;
    const until = performance.now() + lookupSeconds * 1000;
    while (performance.now() < until) {
      const found = await coll.find({ _id: { $in: batches[calls % batches.length]! } });
      if (found.length === 0) throw new Error('lookup found nothing');
      calls++;
    }
    await store.close();
    return { docs: total, commitDocsPerSec, fileMiB, reopenMs, heapMiB, lookupCallsPerSec: calls / lookupSeconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const size of sizes) rows.push(await measure(size));

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
console.log(
  `Node ${process.version}, ${cpus().length} CPUs, load average ${fmt(loadavg()[0]!, 1)}; ` +
    `commits of ${batchSize} documents; lookups of ${lookupIds} ids via { _id: { $in } }`,
);
console.log('| documents | commit (docs/s) | file (MiB) | reopen (ms) | heap after reopen (MiB) | $in lookups (calls/s) |');
console.log('|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${fmt(r.docs)} | ${fmt(r.commitDocsPerSec)} | ${fmt(r.fileMiB, 1)} | ${fmt(r.reopenMs)} | ` +
      `${globalThis.gc ? fmt(r.heapMiB) : 'needs --expose-gc'} | ${fmt(r.lookupCallsPerSec)} |`,
  );
}
