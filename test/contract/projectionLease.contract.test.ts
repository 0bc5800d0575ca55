import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defineProjection, type Projection } from '../../projections/projection.js';
import { createProjectionRunner, type ProjectionRunner } from '../../projections/runner.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import type { Doc, ReadStore } from '../../src/readStore/readStore.js';
import { DEADLINE_MS } from '../support/eventually.js';

/**
 * Two projection runners (two processes' worth) on one read store: only the lease holder writes, a runner that
 * stalled past its lease cannot write its stale batch, the other takes over from the stored checkpoints, and every
 * document always equals the fold of its events.
 */

type Counter = Doc & { count: number; total: number };
const n = (event: RecordedEvent) => (event.data as { n: number }).n;
const add = (id: string, doc: Counter | null, event: RecordedEvent): Counter => ({ _id: id, count: (doc?.count ?? 0) + 1, total: (doc?.total ?? 0) + n(event) });
/** One document per stream, and one hot document every event changes (like balances or providerStats). */
const projections: Projection[] = [
  defineProjection<Counter>({ name: 'counters', version: 1, collection: 'counters', filter: { categories: ['counter'] }, documentId: (e) => e.stream, evolve: (doc, e) => add(e.stream, doc, e) }),
  defineProjection<Counter>({ name: 'totals', version: 1, collection: 'totals', filter: { categories: ['counter'] }, documentId: () => 'all', evolve: (doc, e) => add('all', doc, e) }),
];

/** A view of the read store whose writes (commits, lease renewals) hang while stalled: a process in a long pause. */
const stallable = (store: ReadStore) => {
  let gate: { opened: Promise<void>; open: () => void } | null = null;
  const blocked = new Set<string>();
  const wait = async (op: string) => {
    if (!gate) return;
    blocked.add(op);
    await gate.opened;
  };
  const view: ReadStore = {
    ...store,
    commit: async (writes, checkpoints, fence) => (await wait('commit'), store.commit(writes, checkpoints, fence)),
    acquireLease: async (name, holder, ttlMs) => (await wait('acquireLease'), store.acquireLease(name, holder, ttlMs)),
  };
  return {
    view,
    blocked,
    stall() {
      let open!: () => void;
      gate = { opened: new Promise<void>((resolve) => (open = resolve)), open };
    },
    resume() {
      gate?.open();
      gate = null;
      blocked.clear();
    },
  };
};

const until = async (what: string, check: () => boolean | Promise<boolean>) => {
  for (const deadline = Date.now() + DEADLINE_MS; Date.now() < deadline; ) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('two projection runners on one read store', () => {
  it('lets only the lease holder write: a stalled former holder cannot commit its batch, the other takes over from the checkpoints, and every document equals the fold of its events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-lease-'));
    dirs.push(dir);
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    let clock = 1_000_000;
    const readStore = await openEmbeddedReadStore({ dir, now: () => clock });
    const lease = { ttlMs: 1_000, renewMs: 5, pollMs: 2 };
    const a = stallable(readStore);
    const b = stallable(readStore);
    const runnerA = createProjectionRunner({ eventStore, readStore: a.view, projections, lease: { ...lease, holder: 'A' } });
    const runnerB = createProjectionRunner({ eventStore, readStore: b.view, projections, lease: { ...lease, holder: 'B' } });

    let seq = 0;
    const append = async (stream: number) => (await eventStore.append(`counter-${stream}`, [{ type: 'Counted', data: { n: ++seq } }])).position;
    const expectFolded = async () => {
      const expected = new Map<string, Counter>();
      for (const event of await eventStore.readAll({ filter: { categories: ['counter'] } })) {
        expected.set(event.stream, add(event.stream, expected.get(event.stream) ?? null, event));
        expected.set('all', add('all', expected.get('all') ?? null, event));
      }
      const stored = [...(await readStore.collection<Counter>('counters').find({})), ...(await readStore.collection<Counter>('totals').find({}))];
      expect(new Map(stored.map(({ _pos, ...doc }) => [doc._id, doc]))).toEqual(expected);
    };
    const checkpoint = async () => (await readStore.getCheckpoint('counters'))?.position ?? 0;
    const both = async (position: number, ...runners: ProjectionRunner[]) => {
      for (const runner of runners) expect(await runner.waitFor(position, 10_000)).toBe(true);
    };

    for (let i = 0; i < 20; i++) await append(i % 3);
    await runnerA.start();
    await runnerB.start();
    expect(runnerA.lease()).toMatchObject({ holder: 'A', held: true, epoch: 1 });
    expect(runnerB.lease()).toMatchObject({ holder: 'B', held: false, epoch: null });
    await expectFolded();

    // B does not write but follows A's progress: waitFor (read-your-writes) and onApplied work there too.
    const heardByB: number[] = [];
    runnerB.onApplied((batch) => heardByB.push(batch.position));
    let position = await append(1);
    await both(position, runnerB);
    expect(heardByB.at(-1)).toBe(position);
    await expectFolded();

    // A stalls just before committing a batch, past its lease's TTL; B takes the lease and goes on.
    a.stall();
    position = await append(2);
    await until('A to hold its commit', () => a.blocked.has('commit'));
    clock += 2_000;
    await both(position, runnerB);
    expect(runnerB.lease()).toMatchObject({ held: true, epoch: 2 });
    for (let i = 0; i < 10; i++) position = await append(i % 3);
    await both(position, runnerB);
    const reached = await checkpoint();

    // A wakes up: its stale commit (built on documents B has since changed) is refused; it follows B from then on.
    a.resume();
    await until('A to learn it lost the lease', () => !runnerA.lease().held);
    for (let i = 0; i < 5; i++) position = await append(i % 3);
    await both(position, runnerA, runnerB);
    await expectFolded();
    expect(await checkpoint()).toBeGreaterThanOrEqual(reached);

    // Now B stalls mid-batch; A takes over from the stored checkpoints, batches interleaving with B's attempts.
    b.stall();
    position = await append(0);
    await until('B to hold its commit', () => b.blocked.has('commit'));
    clock += 2_000;
    await both(position, runnerA);
    expect(runnerA.lease()).toMatchObject({ held: true, epoch: 3 });
    for (let i = 0; i < 10; i++) position = await append(i % 3);
    b.resume();
    for (let i = 0; i < 10; i++) position = await append((i + 1) % 3);
    await both(position, runnerA, runnerB);
    await until('B to learn it lost the lease', () => !runnerB.lease().held);
    await expectFolded();
    expect(await checkpoint()).toBe(position);

    // A clean stop releases the lease: the other runner takes it at its next renewal, without waiting for the TTL.
    await runnerA.stop();
    await until('B to take the released lease', () => runnerB.lease().held);
    position = await append(2);
    await both(position, runnerB);
    await expectFolded();
    await runnerB.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });
});

describe('a runner without the lease', () => {
  it('counts an event no read model reads applied as soon as the holder has had it, without waiting for a later relevant event or an idle checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-lease-'));
    dirs.push(dir);
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    const readStore = await openEmbeddedReadStore({ dir });
    const lease = { ttlMs: 60_000, pollMs: 2 };
    // The clock of the idle checkpoints stands still: none falls due during the test.
    const now = () => 1_000_000;
    const holder = createProjectionRunner({ eventStore, readStore, projections, lease: { ...lease, holder: 'A' }, now });
    const follower = createProjectionRunner({ eventStore, readStore, projections, lease: { ...lease, holder: 'B' }, now });
    await holder.start();
    await follower.start();
    expect(follower.lease()).toMatchObject({ held: false });

    const relevant = (await eventStore.append('counter-1', [{ type: 'Counted', data: { n: 1 } }])).position;
    expect(await follower.waitFor(relevant, 10_000)).toBe(true);
    // Then events of a category no read model reads (a model alias, an app authorization), one batch and then more.
    for (let i = 0; i < 3; i++) {
      const unread = (await eventStore.append(`other-${i}`, [{ type: 'Noted', data: {} }])).position;
      expect(await holder.waitFor(unread, 10_000)).toBe(true);
      expect(await follower.waitFor(unread, 1_000)).toBe(true);
    }
    // A relevant event and an unread one right after it, delivered together or apart.
    await eventStore.append('counter-2', [{ type: 'Counted', data: { n: 2 } }]);
    const unread = (await eventStore.append('other-9', [{ type: 'Noted', data: {} }])).position;
    expect(await holder.waitFor(unread, 10_000)).toBe(true);
    expect(await follower.waitFor(unread, 1_000)).toBe(true);
    expect((await readStore.collection<Counter>('totals').find({}))[0]).toMatchObject({ count: 2, total: 3 });

    await follower.stop();
    await holder.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
  });
});

describe('the embedded read store (one process, by its file lock)', () => {
  it('frees a lease left by a process that is gone as soon as the file is opened again, with the next epoch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-lease-'));
    dirs.push(dir);
    let store = await openEmbeddedReadStore({ dir });
    const crashed = await store.acquireLease('projections', 'gone', 60_000);
    await store.close(); // without releasing, as a crash would leave it
    store = await openEmbeddedReadStore({ dir });
    expect(await store.acquireLease('projections', 'restarted', 60_000)).toMatchObject({ holder: 'restarted', epoch: crashed!.epoch + 1 });
    await store.close();
  });
});
