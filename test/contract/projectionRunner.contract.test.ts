import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import type { ReadStore } from '../../src/readStore/readStore.js';
import { defineProjection, type Projection } from '../../projections/projection.js';
import { createProjectionRunner } from '../../projections/runner.js';

/** A counter per stream: the simplest read model where applying an event twice would show. */
type CounterDoc = { _id: string; count: number; total: number };
const counters = (version = 1): Projection =>
  defineProjection<CounterDoc>({
    name: 'counters',
    version,
    collection: 'counters',
    filter: { categories: ['counter'] },
    documentId: (event) => event.stream,
    evolve: (doc, event) => {
      const n = (event as RecordedEvent & { data: { n: number } }).data.n;
      return { _id: event.stream, count: (doc?.count ?? 0) + 1, total: (doc?.total ?? 0) + n };
    },
  });

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-runner-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const open = async (dir: string) => ({ eventStore: openSqliteEventStore({ dir, synchronous: 'normal' }), readStore: await openEmbeddedReadStore({ dir }) });
const docs = (readStore: ReadStore) => readStore.collection<CounterDoc>('counters').find({}, { sort: { _id: 1 } });
const appendCounters = async (eventStore: ReturnType<typeof openSqliteEventStore>, streams: number, each: number) => {
  for (let s = 0; s < streams; s++) {
    await eventStore.append(`counter-${s}`, Array.from({ length: each }, (_, i) => ({ type: 'Counted', data: { n: i + 1 } })));
  }
};

describe('projection runner (embedded stores)', () => {
  it('catches up, then applies live events, and waitFor resolves at the append position', async () => {
    const { eventStore, readStore } = await open(tempDir());
    await appendCounters(eventStore, 3, 10);
    await eventStore.append('other-1', [{ type: 'Ignored', data: {} }]);
    const runner = createProjectionRunner({ eventStore, readStore, projections: [counters()] });
    await runner.start();
    expect((await docs(readStore)).map((d) => [d._id, d.count, d.total])).toEqual([
      ['counter-0', 10, 55],
      ['counter-1', 10, 55],
      ['counter-2', 10, 55],
    ]);
    const { position } = await eventStore.append('counter-0', [{ type: 'Counted', data: { n: 100 } }]);
    expect(await runner.waitFor(position)).toBe(true);
    expect((await docs(readStore))[0]).toMatchObject({ count: 11, total: 155 });
    await runner.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });

  it('is idempotent: delivering an event twice changes nothing', async () => {
    const dir = tempDir();
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    let readStore = await openEmbeddedReadStore({ dir });
    await appendCounters(eventStore, 2, 5);
    const runner = createProjectionRunner({ eventStore, readStore, projections: [counters()] });
    await runner.start();
    await runner.stop();
    const before = await docs(readStore);
    // Simulate at-least-once delivery: lose the checkpoint's progress (as in a crash) and run again. (A commit cannot
    // move it back: checkpoints never move backwards.)
    const checkpoint = await readStore.getCheckpoint('counters');
    await readStore.close();
    const file = new Database(join(dir, 'readmodels.db'));
    file.prepare('UPDATE checkpoints SET position = 0').run();
    file.close();
    readStore = await openEmbeddedReadStore({ dir });
    const again = createProjectionRunner({ eventStore, readStore, projections: [counters()] });
    await again.start();
    await again.stop();
    expect(await docs(readStore)).toEqual(before);
    expect((await readStore.getCheckpoint('counters'))?.position).toBe(checkpoint?.position);
    await Promise.all([eventStore.close(), readStore.close()]);
  });

  it('is restart-safe: after a restart it continues from the checkpoint without replaying', async () => {
    const dir = tempDir();
    let stores = await open(dir);
    await appendCounters(stores.eventStore, 2, 5);
    let applied = 0;
    let runner = createProjectionRunner({ ...stores, projections: [counters()], onProgress: (p) => (applied = p.eventsApplied) });
    await runner.start();
    await runner.stop();
    expect(applied).toBe(10);
    await Promise.all([stores.eventStore.close(), stores.readStore.close()]);

    stores = await open(dir);
    await stores.eventStore.append('counter-1', [{ type: 'Counted', data: { n: 7 } }]);
    applied = 0;
    runner = createProjectionRunner({ ...stores, projections: [counters()], onProgress: (p) => (applied = p.eventsApplied) });
    await runner.start();
    expect(applied).toBe(1);
    expect((await docs(stores.readStore)).map((d) => d.total)).toEqual([15, 22]);
    await runner.stop();
    await Promise.all([stores.eventStore.close(), stores.readStore.close()]);
  });

  it('stores the checkpoint of a projection that saw no events of its own, so a restart does not replay them', async () => {
    const dir = tempDir();
    let stores = await open(dir);
    for (let i = 0; i < 50; i++) await stores.eventStore.append(`other-${i}`, [{ type: 'Unrelated', data: {} }]);
    const runner = createProjectionRunner({ ...stores, projections: [counters()] });
    await runner.start();
    await runner.stop();
    expect((await stores.readStore.getCheckpoint('counters'))?.position).toBe(await stores.eventStore.headPosition());
    await Promise.all([stores.eventStore.close(), stores.readStore.close()]);

    stores = await open(dir);
    let applied = -1;
    const again = createProjectionRunner({ ...stores, projections: [counters()], onProgress: (p) => (applied = p.eventsApplied) });
    await again.start();
    expect(applied).toBe(0);
    await again.stop();
    await Promise.all([stores.eventStore.close(), stores.readStore.close()]);
  });

  it('stores the checkpoint of a projection that sees only unrelated live events every few seconds, not every so many positions', async () => {
    const { eventStore, readStore } = await open(tempDir());
    let clock = 0;
    const quiet = defineProjection<CounterDoc>({ ...counters(), name: 'quiet', collection: 'quiet', filter: { categories: ['quiet'] } } as Projection<CounterDoc>);
    const runner = createProjectionRunner({ eventStore, readStore, projections: [counters(), quiet], now: () => clock });
    await runner.start();
    let position = (await eventStore.append('counter-0', [{ type: 'Counted', data: { n: 1 } }])).position;
    await runner.waitFor(position);
    expect((await readStore.getCheckpoint('quiet'))?.position ?? 0).toBeLessThan(position);
    clock += 6_000;
    position = (await eventStore.append('counter-0', [{ type: 'Counted', data: { n: 1 } }])).position;
    await runner.waitFor(position);
    expect((await readStore.getCheckpoint('quiet'))?.position).toBe(position);
    await runner.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });

  it('rebuilds a read model from zero when its version changes', async () => {
    const { eventStore, readStore } = await open(tempDir());
    await appendCounters(eventStore, 2, 3);
    const v1 = createProjectionRunner({ eventStore, readStore, projections: [counters(1)] });
    await v1.start();
    await v1.stop();
    // Corrupt the read model; a version bump must rebuild it from the events.
    await readStore.collection('counters').updateOne({ _id: 'counter-0' }, { $set: { total: -1 } });
    const v2 = createProjectionRunner({ eventStore, readStore, projections: [counters(2)] });
    await v2.start();
    await v2.stop();
    expect((await docs(readStore)).map((d) => d.total)).toEqual([6, 6]);
    expect((await readStore.getCheckpoint('counters'))?.version).toBe(2);
    await Promise.all([eventStore.close(), readStore.close()]);
  });
});
