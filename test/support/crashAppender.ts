/**
 * A child process for the event store e2e tests: `node --import tsx test/support/crashAppender.ts <dir> <mode>`.
 *
 * - `full` | `normal` (the synchronous setting): appends to `crash-*` streams forever and, only after each append
 *   has returned, writes one `ack <stream> <revision> <id>` line per event. The parent SIGKILLs it at a random point.
 * - `race`: prints `ready`, then for each stdin line `<stream> <expectedRevision>` appends one event with that
 *   expected revision and prints `ok`, `wev` (WrongExpectedVersionError) or `error <message>`.
 *
 * Lines go out with writeSync so an acknowledgement is in the pipe before the next append starts.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { WrongExpectedVersionError } from '../../src/errors.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';

const [dir, mode = 'full'] = process.argv.slice(2);
if (!dir) throw new Error('usage: crashAppender.ts <dir> full|normal|race');
const print = (line: string) => writeSync(1, `${line}\n`);

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
  const store = openSqliteEventStore({ dir, synchronous: mode === 'normal' ? 'normal' : 'full' });
  const revisions = new Map<string, number>();
  for (let i = 0; ; i++) {
    const stream = `crash-${i % 7}`;
    const count = 1 + (i % 3);
    const events = Array.from({ length: count }, (_, j) => ({
      id: `crash-${process.pid}-${i}-${j}`,
      type: 'CrashTested',
      data: { i, j, padding: 'x'.repeat(200) },
    }));
    const expectedRevision = revisions.get(stream) ?? 'no_stream';
    const { nextExpectedRevision } = await store.append(stream, events, { expectedRevision });
    revisions.set(stream, nextExpectedRevision);
    events.forEach((event, j) => print(`ack ${stream} ${nextExpectedRevision - count + 1 + j} ${event.id}`));
  }
}
