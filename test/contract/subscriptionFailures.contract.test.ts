import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { defineProjection } from '../../projections/projection.js';
import { createProjectionRunner } from '../../projections/runner.js';
import type { EventStore, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { followEvents } from '../../src/eventStore/follower.js';
import { retryDelay } from '../../src/eventStore/followStatus.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import type { ReadStore } from '../../src/readStore/readStore.js';
import { eventually } from '../support/eventually.js';
import { flakySubscriptions } from '../support/flakyEventStore.js';

const FAST = { baseMs: 1, maxMs: 5 };
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const openStore = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-flaky-'));
  dirs.push(dir);
  const store = openSqliteEventStore({ dir, synchronous: 'normal' });
  closers.push(() => store.close());
  return { dir, store };
};

/** A flaky view of `store`: fails the next `failures.left` deliveries of events, or every one while `failures.on`. */
const flaky = (store: EventStore) => {
  const failures = { left: 0, on: false };
  const wrapped = flakySubscriptions(store, () => {
    if (failures.on) return true;
    if (failures.left === 0) return false;
    failures.left -= 1;
    return true;
  });
  return { failures, wrapped };
};

const capturedLogger = () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('error', new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  return { lines, logger };
};

const appendCounted = async (store: EventStore, streams: number, each: number) => {
  let position = 0;
  for (let s = 0; s < streams; s++) {
    ({ position } = await store.append(`counter-${s}`, Array.from({ length: each }, (_, i) => ({ type: 'Counted', data: { n: i + 1 } }))));
    await store.append(`other-${s}`, [{ type: 'Ignored', data: {} }]);
  }
  return position;
};
const countedPositions = async (store: EventStore) => (await store.readAll({ filter: { categories: ['counter'] } })).map((e) => e.position);

describe('a follower whose subscription fails', () => {
  it('logs each failure, resubscribes from its last applied event, and applies every event exactly once', async () => {
    const { store } = openStore();
    await appendCounted(store, 3, 10);
    const { failures, wrapped } = flaky(store);
    const { lines, logger } = capturedLogger();
    const applied: number[] = [];
    const follower = followEvents(wrapped, { categories: ['counter'] }, (e) => applied.push(e.position), { name: 'test view', logger, retry: FAST });
    closers.push(() => follower.stop());

    failures.left = 3; // during catch-up
    await follower.start();
    expect(applied).toEqual(await countedPositions(store));

    failures.left = 2; // live
    const position = await appendCounted(store, 2, 8);
    expect(await follower.waitFor(position)).toBe(true);
    expect(applied).toEqual(await countedPositions(store));

    expect(lines.filter((l) => l.follower === 'test view')).toHaveLength(5);
    expect(lines[0]).toMatchObject({ level: 50, err: { message: 'injected: the subscription broke mid-stream' }, attempt: 1 });
    expect(follower.status()).toMatchObject({ state: 'live', failures: 5, lastError: { message: 'injected: the subscription broke mid-stream' } });
    // Past the last counted event, and past the filtered-out event after it once the follower has read beyond it.
    expect(follower.status().position).toBeGreaterThanOrEqual(position);
    expect(follower.status().position).toBeLessThanOrEqual(await store.headPosition());
  });

  it('retries an event whose apply threw instead of skipping it', async () => {
    const { store } = openStore();
    const { logger, lines } = capturedLogger();
    const applied: number[] = [];
    let throwOnce = true;
    const follower = followEvents(
      store,
      { categories: ['counter'] },
      (e) => {
        if ((e.data as { n: number }).n === 3 && throwOnce) {
          throwOnce = false;
          throw new Error('apply failed');
        }
        applied.push(e.position);
      },
      { name: 'picky view', logger, retry: FAST },
    );
    closers.push(() => follower.stop());
    await follower.start();
    const position = await appendCounted(store, 1, 5);
    expect(await follower.waitFor(position)).toBe(true);
    expect(applied).toEqual(await countedPositions(store));
    expect(lines).toHaveLength(1);
  });

  it('reports retrying with its last error while it fails, and live once it recovers', async () => {
    const { store } = openStore();
    const { failures, wrapped } = flaky(store);
    const applied: number[] = [];
    const follower = followEvents(wrapped, { categories: ['counter'] }, (e) => applied.push(e.position), { name: 'view', logger: capturedLogger().logger, retry: FAST });
    closers.push(() => follower.stop());
    await follower.start();
    expect(follower.status()).toMatchObject({ state: 'live', failures: 0, lastError: null });

    failures.on = true;
    const position = await appendCounted(store, 1, 4);
    expect(await follower.waitFor(position, 200)).toBe(false);
    const failing = follower.status();
    expect(failing.state).toBe('retrying');
    expect(failing.lastError?.message).toBe('injected: the subscription broke mid-stream');
    expect(failing.position).toBeLessThan(position);

    failures.on = false;
    expect(await follower.waitFor(position)).toBe(true);
    expect(follower.status()).toMatchObject({ state: 'live', position });
    expect(applied).toEqual(await countedPositions(store));
  });
});

describe('the projection runner whose subscription fails', () => {
  /** Counts every evolve per event, so an event applied twice would show (not only in the documents). */
  const evolved: number[] = [];
  const counters = defineProjection<{ _id: string; count: number; total: number }>({
    name: 'counters',
    version: 1,
    collection: 'counters',
    filter: { categories: ['counter'] },
    documentId: (event) => event.stream,
    evolve: (doc, event: RecordedEvent) => {
      evolved.push(event.position);
      return { _id: event.stream, count: (doc?.count ?? 0) + 1, total: (doc?.total ?? 0) + (event.data as { n: number }).n };
    },
  });

  it('reports each failure, resubscribes from its checkpoint, and applies every event once; its status shows the failures', async () => {
    evolved.length = 0;
    const { dir, store } = openStore();
    const readStore = await openEmbeddedReadStore({ dir });
    closers.push(() => readStore.close());
    await appendCounted(store, 3, 10);
    const { failures, wrapped } = flaky(store);
    const errors: { message: string; attempt: number }[] = [];
    const runner = createProjectionRunner({
      eventStore: wrapped,
      readStore,
      projections: [counters],
      batchSize: 7,
      retry: FAST,
      onError: (error, retry) => errors.push({ message: (error as Error).message, attempt: retry.attempt }),
    });
    closers.push(() => runner.stop());

    failures.left = 3;
    await runner.start();
    failures.on = true;
    await appendCounted(store, 2, 6);
    // The runner follows every event, so it owes everything up to the head.
    const position = await store.headPosition();
    expect(await runner.waitFor(position, 200)).toBe(false);
    expect(runner.status()).toMatchObject({ state: 'retrying', lastError: { message: 'injected: the subscription broke mid-stream' } });
    expect(runner.position).toBeLessThan(position);

    failures.on = false;
    expect(await runner.waitFor(position)).toBe(true);
    expect(runner.status()).toMatchObject({ state: 'live', position });
    expect(evolved).toEqual(await countedPositions(store));
    const docs = await readStore.collection<{ _id: string; count: number; total: number }>('counters').find({}, { sort: { _id: 1 } });
    expect(docs.map((d) => [d._id, d.count, d.total])).toEqual([
      ['counter-0', 16, 55 + 21],
      ['counter-1', 16, 55 + 21],
      ['counter-2', 10, 55],
    ]);
    // A failure after some progress (half a batch) starts a new count; failing with nothing delivered (one event
    // left, which the flaky store never lets through) counts up, so the wait grows.
    expect(errors.every((e) => e.message === 'injected: the subscription broke mid-stream')).toBe(true);
    expect(errors.slice(0, 3).map((e) => e.attempt)).toEqual([1, 1, 1]);
    expect(Math.max(...errors.map((e) => e.attempt))).toBeGreaterThan(1);
    expect(runner.status().failures).toBe(errors.length);
  });
});

describe('the projection runner whose read store cannot store a batch (a full disk)', () => {
  const counted = defineProjection<{ _id: string; count: number }>({
    name: 'counted',
    version: 1,
    collection: 'counted',
    filter: { categories: ['counter'] },
    documentId: (event) => event.stream,
    evolve: (doc, event: RecordedEvent) => ({ _id: event.stream, count: (doc?.count ?? 0) + 1 }),
  });

  it('waits longer after each failure in a row (the subscription delivering again is no progress), then catches up', async () => {
    const { dir, store } = openStore();
    const real = await openEmbeddedReadStore({ dir });
    closers.push(() => real.close());
    const disk = { full: false };
    // What better-sqlite3 throws on ENOSPC.
    const readStore: ReadStore = {
      ...real,
      commit: (...args) => (disk.full ? Promise.reject(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })) : real.commit(...args)),
    };
    const attempts: number[] = [];
    const runner = createProjectionRunner({ eventStore: store, readStore, projections: [counted], retry: FAST, onError: (_error, retry) => attempts.push(retry.attempt) });
    closers.push(() => runner.stop());
    await runner.start();

    disk.full = true;
    await appendCounted(store, 1, 3);
    const position = await store.headPosition();
    await eventually('six failures in a row', () => attempts.length >= 6);
    // Each resubscription delivers the batch again before its commit fails: that restarted the count at 1 (a retry
    // every 50-100 ms, each logged with its stack, QA s42 dos #4); the count goes on, so the wait grows to the cap.
    expect(attempts.slice(0, 6)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(runner.status()).toMatchObject({ state: 'retrying', lastError: { message: 'database or disk is full' } });

    disk.full = false;
    expect(await runner.waitFor(position)).toBe(true);
    expect(runner.status()).toMatchObject({ state: 'live', position });
    expect(await real.collection<{ _id: string; count: number }>('counted').find({})).toMatchObject([{ _id: 'counter-0', count: 3 }]);
  });
});

describe('retry delays', () => {
  it('grow exponentially up to the cap, with jitter in the upper half', () => {
    const policy = { baseMs: 100, maxMs: 30_000 };
    expect([1, 2, 3, 4].map((n) => retryDelay(n, policy, () => 0))).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map((n) => retryDelay(n, policy, () => 1))).toEqual([100, 200, 400, 800]);
    expect(retryDelay(40, policy, () => 1)).toBe(30_000);
    expect(retryDelay(40, policy, () => 0)).toBe(15_000);
  });
});
