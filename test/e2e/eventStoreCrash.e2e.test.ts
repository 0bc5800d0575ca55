import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, existsSync, statSync, truncateSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const appender = fileURLToPath(new URL('../support/crashAppender.ts', import.meta.url));

const children: ChildProcessWithoutNullStreams[] = [];
const spawnAppender = (dir: string, mode: string, variant?: 'powercut' | 'powercut-commit') => {
  const child = spawn(process.execPath, ['--import', 'tsx', appender, dir, mode, ...(variant ? [variant] : [])], { cwd: repoRoot });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  // Lines are queued so none is lost between two awaits.
  const queued: string[] = [];
  const waiting: ((line: string | undefined) => void)[] = [];
  let ended = false;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    const resolve = waiting.shift();
    if (resolve) resolve(line);
    else queued.push(line);
  });
  lines.on('close', () => {
    ended = true;
    for (const resolve of waiting.splice(0)) resolve(undefined);
  });
  const nextLine = () =>
    new Promise<string | undefined>((resolve) => {
      if (queued.length > 0) resolve(queued.shift());
      else if (ended) resolve(undefined);
      else waiting.push(resolve);
    });
  return { child, exited, nextLine };
};

const stores: EventStore[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(stores.splice(0).map((store) => store.close()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-crash-'));
  dirs.push(dir);
  return dir;
};
const open = (dir: string, pollIntervalMs?: number) => {
  const store = openSqliteEventStore({ dir, pollIntervalMs });
  stores.push(store);
  return store;
};

/** Resolves once `condition` holds; rejects after `ms` so a missing event fails the test instead of hanging it. */
/**
 * The disk after a power loss, in a fresh directory: the database file as it is, and of the WAL only its first
 * `walBytes` (what the last completed fsync covered). SQLite must find it intact (and no shared-memory index is carried
 * over); returns the ids of the `crash` events a store opened on it reads.
 */
const afterPowerCut = async (dir: string, walBytes: number) => {
  const cut = await tempDir();
  copyFileSync(join(dir, 'events.db'), join(cut, 'events.db'));
  copyFileSync(join(dir, 'events.db-wal'), join(cut, 'events.db-wal'));
  truncateSync(join(cut, 'events.db-wal'), walBytes);
  expect(existsSync(join(cut, 'events.db-shm'))).toBe(false);
  const raw = new Database(join(cut, 'events.db'));
  expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
  raw.close();
  return new Set((await open(cut).readAll({ filter: { categories: ['crash'] } })).map((event) => event.id));
};

const eventually = async (condition: () => boolean, what: () => string, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe('embedded event store across processes', () => {
  it.each(['full', 'normal'] as const)(
    'synchronous=%s: every acknowledged append survives SIGKILL of the writer, the file is intact, appends continue, and a subscriber in another process saw it all',
    async (mode) => {
      const dir = await tempDir();
      const observer = open(dir, 10);
      const subscription = observer.subscribeToAll({ filter: { categories: ['crash'] } });
      const observed: RecordedEvent[] = [];
      const consumed = (async () => {
        for await (const message of subscription) if (message.kind === 'events') observed.push(...message.events);
      })();

      const { child, exited, nextLine } = spawnAppender(dir, mode);
      const acks: { stream: string; revision: number; id: string }[] = [];
      for (let line = await nextLine(); line !== undefined; line = await nextLine()) {
        const [tag, stream, revision, id] = line.split(' ');
        expect(tag).toBe('ack');
        acks.push({ stream: stream!, revision: Number(revision), id: id! });
        if (acks.length === 300) child.kill('SIGKILL');
      }
      const { signal, stderr } = await exited;
      expect(stderr).toBe('');
      expect(signal).toBe('SIGKILL');
      expect(acks.length).toBeGreaterThanOrEqual(300);

      const raw = new Database(join(dir, 'events.db'));
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
      raw.close();

      const reopened = open(dir);
      const stored = await reopened.readAll({ filter: { categories: ['crash'] } });
      const storedById = new Map(stored.map((event) => [event.id, event]));
      for (const ack of acks) {
        expect(storedById.get(ack.id), `acknowledged ${ack.id}`).toMatchObject({ stream: ack.stream, revision: ack.revision });
      }
      // At most the one append in flight at the kill (up to 3 events) is stored without its acknowledgement.
      expect(stored.length - acks.length).toBeGreaterThanOrEqual(0);
      expect(stored.length - acks.length).toBeLessThanOrEqual(3);
      for (const stream of new Set(stored.map((e) => e.stream))) {
        const revisions = (await reopened.readStream(stream)).map((e) => e.revision);
        expect(revisions).toEqual(revisions.map((_, i) => i));
      }

      const last = stored.filter((e) => e.stream === 'crash-0').at(-1)!;
      const next = await reopened.append('crash-0', [{ type: 'AfterCrash', data: {} }], { expectedRevision: last.revision });
      expect(next.nextExpectedRevision).toBe(last.revision + 1);

      await eventually(
        () => observed.length >= stored.length + 1,
        () => `the observer to see ${stored.length + 1} events (saw ${observed.length})`,
      );
      expect(observed.map((e) => e.id)).toEqual([...stored.map((e) => e.id), expect.any(String)]);
      expect(observed.at(-1)!.type).toBe('AfterCrash');
      await subscription.close();
      await consumed;
    },
  );

  it.each(['full', 'normal'] as const)(
    'synchronous=%s, power loss (the WAL cut where the last completed fsync ended): full keeps every acknowledged append; normal keeps those up to the last checkpoint and loses the rest',
    async (mode) => {
      {
        const dir = await tempDir();
        const { child, exited, nextLine } = spawnAppender(dir, mode, 'powercut');
        const acks: { stream: string; revision: number; id: string }[] = [];
        let checkpointedAcks = -1;
        let syncedWalBytes = 0;
        for (let line = await nextLine(); line !== undefined; line = await nextLine()) {
          if (line === 'checkpoint') {
            checkpointedAcks = acks.length;
            continue;
          }
          // A commit ahead of every fsync (the appender's chain, after 500 acks): the kill leaves WAL bytes to cut.
          if (line === 'ahead') {
            child.kill('SIGKILL');
            continue;
          }
          const [tag, stream, revision, id, synced] = line.split(' ');
          expect(tag).toBe('ack');
          acks.push({ stream: stream!, revision: Number(revision), id: id! });
          syncedWalBytes = Number(synced);
        }
        expect(await exited).toMatchObject({ signal: 'SIGKILL', stderr: '' });
        expect(checkpointedAcks).toBeGreaterThan(0);

        // The disk after a power loss: the database file as the checkpoint left it (fsynced), and of the WAL only
        // what an fsync covered. With normal nothing fsyncs the WAL between checkpoints, so none of it is kept.
        const walBytes = mode === 'full' ? syncedWalBytes : 0;
        if (mode === 'full') expect(walBytes).toBeGreaterThan(0);
        // The cut must take something (commits no completed fsync covered yet) for the run to prove anything: the
        // appender stops printing at such a commit (`ahead`), so the last ack names an fsync before it.
        expect(statSync(join(dir, 'events.db-wal')).size).toBeGreaterThan(walBytes);
        const stored = await afterPowerCut(dir, walBytes);
        const kept = acks.filter((ack) => stored.has(ack.id)).length;
        if (mode === 'full') {
          expect(kept).toBe(acks.length);
        } else {
          // What was acknowledged before the checkpoint survives (and what was committed with it, acknowledged in the
          // same turn: at most one append of each of the seven writers); everything acknowledged after it is gone.
          expect(acks.slice(0, checkpointedAcks).every((ack) => stored.has(ack.id))).toBe(true);
          expect(kept - checkpointedAcks).toBeLessThanOrEqual(7 * 3);
          // How many that is depends on when the last checkpoint ran (the machine's load): some, always.
          expect(acks.length - kept).toBeGreaterThan(0);
        }
      }
    },
  );

  it("synchronous=full, power loss with appends answered at commit (durability 'commit'): every append whose durability resolved survives, what survives is a prefix of the commits, and commits no fsync covered are lost", async () => {
    // Every run checks what survives; at least one must also lose something, or it proves nothing about the cut: the
    // writers run ahead of the disk, but the last lines the test reads before the kill can be an fsync covering them
    // all (the commits are made on the writer thread, so that race is not always won by the next commit).
    const scenario = async (): Promise<boolean> => {
      const dir = await tempDir();
      const { child, exited, nextLine } = spawnAppender(dir, 'full', 'powercut-commit');
      const commits: { position: number; ids: string[] }[] = [];
      let durablePosition = 0;
      let syncedWalBytes = 0;
      let killed = false;
      for (let line = await nextLine(); line !== undefined; line = await nextLine()) {
        const [tag, position, rest] = line.split(' ');
        if (tag === 'commit') {
          commits.push({ position: Number(position), ids: rest!.split(',') });
          // After 500 commits, and once some append is durable (a slow disk under a busy host may take a while).
          if (commits.length >= 500 && durablePosition > 0 && !killed) killed = child.kill('SIGKILL');
        } else {
          expect(tag).toBe('durable');
          durablePosition = Math.max(durablePosition, Number(position));
          syncedWalBytes = Number(rest);
        }
      }
      expect(await exited).toMatchObject({ signal: 'SIGKILL', stderr: '' });
      expect(durablePosition).toBeGreaterThan(0);

      // The disk after a power loss: of the WAL only what the last completed fsync covered (no checkpoint ran).
      const stored = await afterPowerCut(dir, syncedWalBytes);
      const kept = (commit: { ids: string[] }) => commit.ids.every((id) => stored.has(id));
      const lost = (commit: { ids: string[] }) => commit.ids.every((id) => !stored.has(id));
      // Each append is kept or lost whole; everything at or below a durable position is kept.
      expect(commits.every((commit) => kept(commit) || lost(commit))).toBe(true);
      expect(commits.filter((commit) => commit.position <= durablePosition).every(kept)).toBe(true);
      // A prefix: no kept append above a lost one.
      const firstLost = Math.min(...commits.filter(lost).map((commit) => commit.position));
      expect(commits.filter((commit) => commit.position > firstLost).every(lost)).toBe(true);
      // The writers ran ahead of the disk: appends answered at commit that no fsync covered are gone.
      return Number.isFinite(firstLost);
    };
    let proved = false;
    for (let attempt = 0; attempt < 5 && !proved; attempt++) proved = await scenario();
    expect(proved).toBe(true);
  });

  it('appends racing from four processes with the same expected revision: exactly one wins each round', async () => {
    const dir = await tempDir();
    const racers = Array.from({ length: 4 }, () => spawnAppender(dir, 'race'));
    for (const racer of racers) expect(await racer.nextLine()).toBe('ready');

    const rounds = 30;
    for (let round = 0; round < rounds; round++) {
      const expected = round === 0 ? 'no_stream' : String(round - 1);
      for (const racer of racers) racer.child.stdin.write(`race-1 ${expected}\n`);
      const outcomes = await Promise.all(racers.map((racer) => racer.nextLine()));
      expect(outcomes.filter((o) => o === 'ok'), `round ${round}: ${outcomes.join(', ')}`).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'wev')).toHaveLength(3);
    }
    for (const racer of racers) racer.child.stdin.end();
    for (const racer of racers) expect(await racer.exited).toMatchObject({ code: 0, stderr: '' });

    const events = await open(dir).readStream('race-1');
    expect(events.map((e) => e.revision)).toEqual(Array.from({ length: rounds }, (_, i) => i));
  });
});
