/**
 * A child process for the event store e2e tests: `node --import tsx test/support/crashAppender.ts <dir> <mode>`.
 *
 * - `full` | `normal` (the synchronous setting): appends to `crash-*` streams forever and, only after each append
 *   has returned, writes one `ack <stream> <revision> <id> <syncedWalBytes>` line per event (the WAL's size when the
 *   last completed fsync started). The parent SIGKILLs it at a random point.
 *   With a third argument `powercut`: no background checkpoints (so the WAL only grows and a size names a point in
 *   it), and one checkpoint of its own (TRUNCATE, which fsyncs) after the 100th append, announced as `checkpoint`.
 *   Beside the seven writers, a chain of appends to `chain-0` (durability `commit`, each right after the previous
 *   one's commit, never waiting for an fsync) keeps commits ahead of the fsyncs; after 500 acks, at a commit the WAL
 *   holds past the last completed fsync, it prints `ahead` and stops printing (its thread blocks until the kill), so
 *   the last `ack` line names an fsync before WAL bytes that a cut takes.
 *   (The seven writers alone wait for their fsyncs together, so their commits and fsyncs take turns.)
 *   With `powercut-commit` instead (`full` only): no checkpoints at all; each append is made with durability `commit`
 *   and the next one follows at once, every other one letting its fsync wait up to 10 ms; at the commit it prints `commit <position> <id>,<id>…` (position: of its last
 *   event), and when its durability resolves `durable <position> <syncedWalBytes>`.
 * - `race`: prints `ready`, then for each stdin line `<stream> <expectedRevision>` appends one event with that
 *   expected revision and prints `ok`, `wev` (WrongExpectedVersionError) or `error <message>`.
 *
 * Lines go out with writeSync so an acknowledgement is in the pipe before the next append starts.
 */
import { statSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WrongExpectedVersionError } from '../../src/errors.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';

const [dir, mode = 'full', variant] = process.argv.slice(2);
if (!dir) throw new Error('usage: crashAppender.ts <dir> full|normal|race');
// stdout is a non-blocking pipe: when the parent reads slower than seven writers ack, wait for room.
const print = (line: string) => {
  const bytes = Buffer.from(`${line}\n`);
  for (let written = 0; written < bytes.length; ) {
    try {
      written += writeSync(1, bytes, written);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }
};

if (mode === 'race') {
  const store = openSqliteEventStore({ dir });
  print('ready');
  for await (const line of createInterface({ input: process.stdin })) {
    const [stream, expected] = line.split(' ');
    const expectedRevision = expected === 'no_stream' ? 'no_stream' : Number(expected);
    try {
      await store.append(stream!, [{ type: 'Raced', data: { pid: process.pid } }], { expectedRevision });
      print('ok');
    } catch (error) {
      print(error instanceof WrongExpectedVersionError ? 'wev' : `error ${(error as Error).message}`);
    }
  }
  await store.close();
} else {
  const atCommit = variant === 'powercut-commit';
  const powercut = variant === 'powercut' || atCommit;
  const store = openSqliteEventStore({ dir, synchronous: mode === 'normal' ? 'normal' : 'full', backgroundCheckpoints: !powercut, measureWal: powercut });
  // With `powercut`, seven writers (one stream each) append at once, so commits land while an fsync runs.
  const writers = powercut ? 7 : 1;
  const revisions = new Map<string, number>();
  let next = 0;
  let acked = 0;
  let checkpointed = false;
  const write = async () => {
    for (;;) {
      const i = next++;
      const stream = `crash-${i % 7}`;
      const count = 1 + (i % 3);
      const events = Array.from({ length: count }, (_, j) => ({
        id: `crash-${process.pid}-${i}-${j}`,
        type: 'CrashTested',
        data: { i, j, padding: 'x'.repeat(200) },
      }));
      const expectedRevision = revisions.get(stream) ?? 'no_stream';
      revisions.set(stream, expectedRevision === 'no_stream' ? count - 1 : expectedRevision + count);
      if (atCommit) {
        // Every other append lets its fsync wait up to 10 ms (as a reservation does): it must not change what survives.
        const { position, durable } = await store.append(stream, events, { expectedRevision, durability: 'commit', syncWithinMs: i % 2 === 0 ? 0 : 10 });
        print(`commit ${position} ${events.map((event) => event.id).join(',')}`);
        void durable.then(() => print(`durable ${position} ${store.writeStats().syncedWalBytes}`));
        continue;
      }
      const { nextExpectedRevision } = await store.append(stream, events, { expectedRevision });
      const { syncedWalBytes } = store.writeStats();
      events.forEach((event, j) => print(`ack ${stream} ${nextExpectedRevision - count + 1 + j} ${event.id} ${syncedWalBytes}`));
      acked += count;
      if (powercut && !checkpointed && i >= 99) {
        checkpointed = true;
        const checkpointer = new Database(join(dir, 'events.db'));
        checkpointer.pragma('wal_checkpoint(TRUNCATE)');
        checkpointer.close();
        print('checkpoint');
      }
    }
  };
  const chain = async () => {
    const wal = join(dir, 'events.db-wal');
    for (let revision: number | 'no_stream' = 'no_stream'; ; ) {
      const { nextExpectedRevision } = await store.append('chain-0', [{ type: 'Chained', data: { padding: 'x'.repeat(200) } }], { expectedRevision: revision, durability: 'commit' });
      revision = nextExpectedRevision;
      // The WAL holds commits past the last completed fsync, so past every acknowledgement printed: say so, then
      // print nothing more (this thread stops here; the fsync threads may go on) until the parent's SIGKILL. Killed at
      // a moment the parent did not choose, the last fsync had often caught up with every commit (on a loaded host,
      // five tries in a row), and the cut took nothing.
      if (acked >= 500 && statSync(wal).size > store.writeStats().syncedWalBytes) {
        print('ahead');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      }
    }
  };
  await Promise.all([...Array.from({ length: writers }, write), ...(powercut && !atCommit ? [chain()] : [])]);
}
