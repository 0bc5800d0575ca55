/**
 * A process taking DATA_DIR locks (src/sqlite/processLock.ts) on command, for the race tests. Prints `READY`, then per
 * line on stdin: `take <file> <epoch ms>` spins until that moment, tries the lock and prints `GOT <pid>` or
 * `REFUSED <message>`; `release` lets go of what it holds and prints `RELEASED`. It holds what it got until then, or
 * until stdin ends.
 */
import { createInterface } from 'node:readline';
import { acquireProcessLock } from '../../src/sqlite/processLock.js';

/** Referenced until released: a lock nothing references is closed when it is collected. */
let held: { release(): void } | null = null;
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [command, file, at] = line.split(' ');
  if (command === 'release') {
    held?.release();
    held = null;
    process.stdout.write('RELEASED\n');
    return;
  }
  while (Date.now() < Number(at)) {
    // spin: every taker tries within the same millisecond
  }
  try {
    held = acquireProcessLock(file!, 'The test folder');
    process.stdout.write(`GOT ${process.pid}\n`);
  } catch (error) {
    process.stdout.write(`REFUSED ${(error as Error).message}\n`);
  }
});
lines.once('close', () => {
  held?.release();
  process.exit(0);
});
process.stdout.write('READY\n');
