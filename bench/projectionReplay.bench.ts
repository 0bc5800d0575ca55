/**
 * The storage thread's work per chat completion, without the gateway's noise: every read model built from the
 * events a gateway run recorded, in batches the size the storage thread applies live, CPU per generation.
 *   node --import tsx bench/gateway.bench.ts --probe-rates 800 --seconds 15 --sync normal --keep-data
 *   node --import tsx bench/projectionReplay.bench.ts --data /tmp/bench-gateway-switchyard-normal-XXXX [--dist dist-before,dist] [--batch 75] [--rounds 3]
 * `--data`: a DATA_DIR (its events.db, with its WAL if any, is copied: nothing there is changed). `--dist`: production
 * builds to compare (`npm run build`, copied under the repository), run in turn in a process of their own each round.
 * `--batch`: events per batch (the storage thread gathers 50 ms: ~75 events at 300 req/s, ~300 at 1,200).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    dist: { type: 'string', default: 'dist' },
    batch: { type: 'string', default: '75' },
    rounds: { type: 'string', default: '3' },
    child: { type: 'boolean', default: false },
  },
});
const REPO = resolve(fileURLToPath(import.meta.url), '../..');
if (!values.data) throw new Error('--data DIR: a DATA_DIR kept by gateway.bench.ts --keep-data');

if (values.child) {
  // One build, one replay: its own modules, on a copy of the events.
  const dist = join(REPO, values.dist);
  const load = async <T>(path: string) => (await import(pathToFileURL(join(dist, path)).href)) as T;
  const { allProjections, diskCollections } = await load<typeof import('../projections/index.js')>('projections/index.js');
  const { createProjectionRunner } = await load<typeof import('../projections/runner.js')>('projections/runner.js');
  const { openSqliteEventStore } = await load<typeof import('../src/eventStore/sqliteEventStore.js')>('src/eventStore/sqliteEventStore.js');
  const { openEmbeddedReadStore } = await load<typeof import('../src/readStore/embeddedReadStore.js')>('src/readStore/embeddedReadStore.js');
  const dir = mkdtempSync(join(tmpdir(), 'bench-replay-'));
  try {
    for (const file of ['events.db', 'events.db-wal']) if (existsSync(join(values.data, file))) copyFileSync(join(values.data, file), join(dir, file));
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    const readStore = await openEmbeddedReadStore({ dir, diskCollections });
    const runner = createProjectionRunner({ eventStore, readStore, projections: allProjections, batchSize: Number(values.batch) });
    const cpu = process.cpuUsage();
    const started = performance.now();
    await runner.start();
    await runner.stop();
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    const generations = await readStore.collection('generations').count();
    await Promise.all([eventStore.close(), readStore.close()]);
    console.log(JSON.stringify({ generations, cpuUs: used.user + used.system, seconds }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  const dists = values.dist.split(',');
  const results = new Map<string, number[]>(dists.map((d) => [d, []]));
  let generations = 0;
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const dist of dists) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--data', values.data, '--dist', dist, '--batch', values.batch], {
        cwd: REPO,
        encoding: 'utf8',
      });
      const run = JSON.parse(out.trim().split('\n').pop()!) as { generations: number; cpuUs: number; seconds: number };
      generations = run.generations;
      results.get(dist)!.push(run.cpuUs / run.generations);
    }
  }
  console.log(`\nNode ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`${generations.toLocaleString('en-US')} generations, batches of ${values.batch} events, ${values.rounds} rounds (builds interleaved)\n`);
  console.log('| Build | CPU per generation, each round (µs) | median |');
  console.log('|---|---|---:|');
  for (const [dist, runs] of results) {
    const sorted = [...runs].sort((a, b) => a - b);
    console.log(`| ${dist} | ${runs.map((r) => r.toFixed(0)).join(' / ')} | ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} |`);
  }
}
