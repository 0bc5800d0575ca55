/**
 * Embedded event store benchmark: `node --import tsx bench/eventStore.bench.ts [--events 100000] [--single 10000]`.
 *
 * On a fresh temp directory for each write run: single-event appends and batched appends (100 and 1000 events per
 * append over 1000 streams, exact expected revisions), each with synchronous full and normal, then on the store holding
 * `--events` events: catch-up through subscribeToAll (all events, and one category of ten), and the time to open the
 * store and read its head. Prints a markdown table.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore, NewEvent } from '../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../src/eventStore/sqliteEventStore.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const totalEvents = arg('events', 100_000);
const singleEvents = arg('single', Math.min(totalEvents, 10_000));
const STREAMS = 1000;

const rows: string[][] = [];
let cpuMark = process.cpuUsage();
/** Wall time gives the rate; CPU time (user + system) per event is what the store costs when the disk is not waited on. */
const record = (what: string, events: number, ms: number) => {
  const cpu = process.cpuUsage(cpuMark);
  const cpuUsPerEvent = (cpu.user + cpu.system) / events;
  rows.push([
    what,
    events.toLocaleString('en-US'),
    `${(ms / 1000).toFixed(2)} s`,
    `${Math.round((events / ms) * 1000).toLocaleString('en-US')} events/s`,
    `${cpuUsPerEvent.toFixed(1)} µs`,
  ]);
  console.error(`${what}: ${Math.round((events / ms) * 1000)} events/s`);
};
const startTimer = () => {
  cpuMark = process.cpuUsage();
  return performance.now();
};
const dirs: string[] = [];
const freshDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-bench-'));
  dirs.push(dir);
  return dir;
};

const streamName = (i: number) => `cat${i % 10}-${i}`;
const event = (i: number): NewEvent => ({
  type: 'CreditsReserved',
  data: { generationId: `gen-${i.toString(36).padStart(8, '0')}`, amount: 1_250_000 + i, keyId: 'key-0123456789', model: 'openai/gpt-4o-mini' },
  metadata: { correlationId: `corr-${i}`, actor: 'acct-42' },
});

/** Appends `total` events in appends of `batch` events, round-robin over the streams, checking exact revisions. */
const fill = async (store: EventStore, total: number, batch: number) => {
  const revisions = new Array<number>(STREAMS).fill(-1);
  const started = startTimer();
  for (let n = 0, b = 0; n < total; b++) {
    const s = b % STREAMS;
    const size = Math.min(batch, total - n);
    const events = Array.from({ length: size }, (_, j) => event(n + j));
    const expected = revisions[s]!;
    const result = await store.append(streamName(s), events, { expectedRevision: expected === -1 ? 'no_stream' : expected });
    revisions[s] = result.nextExpectedRevision;
    n += size;
  }
  return performance.now() - started;
};

const catchUp = async (store: EventStore, filter?: { categories: string[] }) => {
  const started = startTimer();
  let count = 0;
  const subscription = store.subscribeToAll({ filter });
  for await (const message of subscription) {
    if (message.kind === 'events') count += message.events.length;
    else break;
  }
  await subscription.close();
  return { count, ms: performance.now() - started };
};

const loadBefore = loadavg().map((n) => n.toFixed(2)).join(', ');
try {
  for (const synchronous of ['full', 'normal'] as const) {
    if (singleEvents <= 0) break;
    const store = openSqliteEventStore({ dir: await freshDir(), synchronous });
    record(`single-event appends, synchronous=${synchronous}`, singleEvents, await fill(store, singleEvents, 1));
    await store.close();
  }

  let dir = '';
  for (const synchronous of ['full', 'normal'] as const) {
    for (const batch of [100, 1000]) {
      const runDir = await freshDir();
      const store = openSqliteEventStore({ dir: runDir, synchronous });
      record(`batched appends (${batch}/append, ${STREAMS} streams), synchronous=${synchronous}`, totalEvents, await fill(store, totalEvents, batch));
      await store.close();
      if (synchronous === 'full' && batch === 1000) dir = runDir;
      else await rm(runDir, { recursive: true, force: true });
    }
  }

  // The store written with synchronous=full in appends of 1000 holds totalEvents events: read it back, time a reopen.
  const store = openSqliteEventStore({ dir });
  const all = await catchUp(store);
  record('catch-up via subscribeToAll, no filter', all.count, all.ms);
  const one = await catchUp(store, { categories: ['cat3'] });
  record('catch-up via subscribeToAll, 1 category of 10', one.count, one.ms);
  await store.close();

  const started = performance.now();
  const reopened = openSqliteEventStore({ dir });
  const head = await reopened.headPosition();
  const openMs = performance.now() - started;
  await reopened.close();
  const size = (await stat(join(dir, 'events.db'))).size;
  rows.push([`open + headPosition (head ${head.toLocaleString('en-US')}, file ${(size / 2 ** 20).toFixed(0)} MiB)`, totalEvents.toLocaleString('en-US'), `${openMs.toFixed(1)} ms`, '', '']);

  console.log(`\nNode ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${process.platform}, temp dir ${tmpdir()}\n`);
  console.log(`load average before the run: ${loadBefore}\n`);
  console.log('| Measurement | Events | Time | Rate | CPU per event |\n|---|---:|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}
