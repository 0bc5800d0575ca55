/**
 * The DATA_DIR lock (src/sqlite/processLock.ts) in real processes: one holder at a time, however many take it at the
 * same moment after a crash; released by the kernel when its holder dies (kill -9); a crashed holder's pid, alive
 * again as another process, does not lock the folder out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TAKERS = 8;
const ROUNDS = 40;

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const lockFileIn = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-lock-'));
  dirs.push(dir);
  return join(dir, 'readmodels.db.lock');
};

/** A process of test/support/lockTaker.ts: `send` a command, then wait for the answer that `output()` ends with. */
const startTaker = async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/lockTaker.ts'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await eventually('a lock taker to start', () => output.includes('READY'), { timeoutMs: 60_000 });
  let read = output.length;
  return {
    child,
    exited,
    send: (line: string) => {
      read = output.length;
      child.stdin!.write(`${line}\n`);
    },
    /** What it answered since the last `send`. */
    answer: () => output.slice(read),
  };
};
type Taker = Awaited<ReturnType<typeof startTaker>>;

/** The takers try `file` within the same millisecond; resolves once each has answered. */
const race = async (takers: readonly Taker[], file: string) => {
  const at = Date.now() + 100;
  for (const t of takers) t.send(`take ${file} ${at}`);
  await eventually('every taker to answer', () => takers.every((t) => /GOT|REFUSED/.test(t.answer())));
};

const releaseAll = async (takers: readonly Taker[]) => {
  for (const t of takers) t.send('release');
  await eventually('every taker to release', () => takers.every((t) => t.answer().includes('RELEASED')));
};

/** A pid no process has now: one that has just exited. */
const deadPid = async () => {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
};

describe('the DATA_DIR lock', () => {
  it(`${TAKERS} processes taking a crashed holder's lock at the same moment: exactly one gets it, ${ROUNDS} times out of ${ROUNDS}`, { timeout: 180_000 }, async () => {
    const takers = await Promise.all(Array.from({ length: TAKERS }, () => startTaker()));
    const stale = await deadPid();
    for (let round = 0; round < ROUNDS; round++) {
      const file = lockFileIn();
      // What a crash of a holder leaves: the pid file naming a process that is gone, and the lock database that holder
      // wrote its pid in. (Without the database the pid file would read as an older version's, honoured while its pid
      // is alive: a busy host reuses a dead pid within seconds, pid_max being 32768 here, and nobody could start.)
      writeFileSync(file, String(stale));
      const crashed = new Database(`${file}.db`);
      crashed.pragma(`user_version = ${stale}`);
      crashed.close();
      await race(takers, file);
      const got = takers.filter((t) => t.answer().includes('GOT'));
      expect(got.map((t) => t.answer()), `round ${round}`).toHaveLength(1);
      const holder = got[0]!.child.pid;
      // The holder writes its pid just after it has the lock: one refused in that moment does not name it.
      for (const t of takers) if (t !== got[0]) expect(t.answer()).toMatch(new RegExp(`is in use by (process ${holder}|another process); stop it first`));
      await releaseAll(takers);
    }
  });

  it("a starter that meets another's write lock on the way waits for it to pass, and gets the lock", { timeout: 120_000 }, async () => {
    // Another starter, caught between taking SQLite's write lock and finishing: it holds that lock until told to
    // commit (which needs every other connection's read lock gone).
    const file = lockFileIn();
    new Database(`${file}.db`).close();
    const other = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require('better-sqlite3'))(process.argv[1], { timeout: 10000 });
         db.exec('BEGIN IMMEDIATE');
         process.stdout.write('HELD\\n');
         process.stdin.once('data', () => { db.pragma('user_version = 1'); db.exec('COMMIT'); db.close(); process.stdout.write('PASSED\\n'); process.exit(0); });`,
        `${file}.db`,
      ],
      { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.push(other);
    let said = '';
    other.stdout!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const taker = await startTaker();
    await eventually('the other starter to hold the write lock', () => said.includes('HELD'));
    taker.send(`take ${file} ${Date.now()}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    other.stdin!.write('commit\n');
    await eventually('the taker to answer', () => /GOT|REFUSED/.test(taker.answer()));
    // Refused before: the taker kept the read lock it had taken on the way to the write lock, so the other could not
    // commit until the taker had waited out its time and given up.
    expect(taker.answer()).toContain('GOT');
    await eventually('the other starter to have passed', () => said.includes('PASSED'));
  });

  it('a live holder refuses the lock; killed with SIGKILL, it leaves none: the next process gets it', { timeout: 120_000 }, async () => {
    const file = lockFileIn();
    const [first, second] = await Promise.all([startTaker(), startTaker()]);
    await race([first!], file);
    expect(first!.answer()).toContain('GOT');
    await race([second!], file);
    expect(second!.answer()).toContain(`is in use by process ${first!.child.pid}; stop it first`);
    first!.child.kill('SIGKILL');
    await first!.exited;
    await race([second!], file);
    expect(second!.answer()).toContain('GOT');
  });

  it("a crashed holder's pid, reused by a live process, does not lock the folder out", { timeout: 120_000 }, async () => {
    const file = lockFileIn();
    const [first, second] = await Promise.all([startTaker(), startTaker()]);
    await race([first!], file);
    first!.child.kill('SIGKILL');
    await first!.exited;
    // The pid file now names a live process that holds nothing: this test's.
    writeFileSync(file, String(process.pid));
    await race([second!], file);
    expect(second!.answer()).toContain('GOT');
  });
});
