import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { ADMIN_KEY } from './appHarness.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A Switchyard started as its own process (stdout and stderr piped): resolves with the port it logged once it is
 * listening, rejects with everything it printed if it exits first. `output()` is what it has printed so far.
 */
export const listeningPort = (child: ChildProcess): Promise<{ port: number; output: () => string }> => {
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const look = setInterval(() => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
      if (match) {
        clearInterval(look);
        child.off('exit', exitedEarly);
        resolve({ port: Number(match[1]), output: () => output });
      }
    }, 50);
    const exitedEarly = (code: number | null) => {
      clearInterval(look);
      reject(new Error(`Switchyard exited (${code}) before listening:\n${output}`));
    };
    child.once('exit', exitedEarly);
  });
};

export interface SpawnedSwitchyard {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Everything it has printed so far. */
  output(): string;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  /** kill -9; resolves once the process is gone. */
  kill(): Promise<void>;
  /** POST /graphql as `key` (the bootstrap admin unless told; null: no key): the status and the parsed body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
  graphql(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<{ status: number; body: any }>;
}

/**
 * Switchyards in processes of their own, each over a temporary data directory, as a test that kills them needs: every
 * process still running is killed (SIGKILL) and every directory removed after each test. Call it at the top level of a
 * file or a describe (it registers the afterEach). Each starts embedded, `EVENTSTORE_SYNC=normal`, with the tests'
 * admin key and nothing else of this process's environment but PATH; `env` adds to that.
 */
export const spawnedSwitchyards = () => {
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return {
    /** A fresh data directory, removed after the test. */
    dataDir(prefix = 'switchyard-'): string {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    /**
     * Starts Switchyard over `dir` and resolves once it listens. `entry`: `src/main.ts` (as `npm start` runs it) or
     * `test/support/switchyardProcess.ts` (the same, with a test's event store wrapper from TEST_EVENTSTORE_WRAPPER).
     */
    async start(dir: string, options: { env?: Record<string, string>; entry?: string } = {}): Promise<SpawnedSwitchyard> {
      const child = spawn(process.execPath, ['--import', 'tsx', options.entry ?? 'src/main.ts'], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: 'info', EVENTSTORE_SYNC: 'normal', ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const { port, output } = await listeningPort(child);
      const url = `http://127.0.0.1:${port}`;
      return {
        child,
        url,
        output,
        exited,
        async kill() {
          child.kill('SIGKILL');
          await exited;
        },
        async graphql(query, variables, key = ADMIN_KEY) {
          const res = await fetch(`${url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
            body: JSON.stringify({ query, variables }),
          });
          return { status: res.status, body: await res.json() };
        },
      };
    },
  };
};

/**
 * Runs a Switchyard entry point (`src/main.ts`, a CLI) through tsx in its own process, with only PATH of this
 * process's environment and `env`, until it exits: its exit code and what it printed. For what must stop at once (a
 * refused configuration, a CLI); `timeoutMs` only ends one that would not, so the test fails instead of hanging.
 */
export const runToExit = (
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
  /** A command the entry point runs under (e.g. setpriv, for a test running as root whose server must not bypass permissions). */
  under: readonly string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const [command, ...argv] = [...under, process.execPath, '--import', 'tsx', ...args];
    const child = spawn(command!, argv, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

/** `src/main.ts` over `dataDir` as spawnedSwitchyards starts it (port 0, the tests' admin key), `env` on top, until it exits. */
export const startToExit = (dataDir: string, env: Record<string, string> = {}, timeoutMs = 20_000, under: readonly string[] = []) =>
  runToExit(['src/main.ts'], { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: 'warn', EVENTSTORE_SYNC: 'normal', ...env }, timeoutMs, under);

/** What a start that failed printed is one line: no stack trace, no library's "check your implementation". */
export const expectOneLine = (stderr: string): void => {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toMatch(/WebSocket|implementation/);
};
