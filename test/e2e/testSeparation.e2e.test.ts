import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `EVENTSTORE_URL=… MONGODB_URL=… npm test` must not run the app-level tests (a projections rebuild among them)
 * against those servers; `npm run test:contract` runs the store contract suites, and only those, against them.
 * Both are checked by running vitest itself with the variables pointing at ports where nothing listens.
 */
const repo = join(import.meta.dirname, '../..');
const vitest = join(repo, 'node_modules/vitest/vitest.mjs');
const stores = {
  EVENTSTORE_URL: 'esdb://127.0.0.1:9?tls=false',
  MONGODB_URL: 'mongodb://switchyard:hunter2-secret@127.0.0.1:9/switchyard?directConnection=true',
};

/** Run vitest as `npm test` does, with this worker's own vitest variables removed and `env` added. */
const runVitest = (args: string[], env: Record<string, string>) =>
  new Promise<{ code: number; output: string }>((resolve) => {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && name !== 'TEST'));
    execFile(process.execPath, [vitest, ...args], { cwd: repo, env: { ...inherited, NO_COLOR: '1', ...env }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
    );
  });

describe('test separation from the production stores', () => {
  it('npm test hides EVENTSTORE_URL and MONGODB_URL from the tests it runs, and says so', { timeout: 150_000 }, async () => {
    const { code, output } = await runVitest(['run', 'test/unit/testEnvironment.unit.test.ts'], stores);
    expect(output).toContain('npm test ignores EVENTSTORE_URL and MONGODB_URL');
    expect(output).toMatch(/1 passed/);
    expect(code).toBe(0);
  });

  it('npm run test:contract selects the contract suites only and runs the production adapters against the variables', { timeout: 60_000 }, async () => {
    const scripts = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['test:contract']).toBe('vitest run --config vitest.contract.config.ts');

    const listed = await runVitest(['list', '--config', 'vitest.contract.config.ts', '--filesOnly', '--json'], stores);
    expect(listed.code).toBe(0);
    const files = (JSON.parse(listed.output.slice(listed.output.indexOf('['), listed.output.lastIndexOf(']') + 1)) as { file: string }[]).map(
      ({ file }) => relative(repo, file),
    );
    expect(files).toEqual(expect.arrayContaining(['test/contract/eventStore.contract.test.ts', 'test/contract/readStore.contract.test.ts']));
    expect(files.filter((file) => !file.startsWith('test/contract/'))).toEqual([]);
    expect(listed.output).toContain('the EventStoreDB adapter runs against esdb://127.0.0.1:9?tls=false');
    expect(listed.output).toContain('the MongoDB adapter runs against mongodb://…@127.0.0.1:9/switchyard');
    expect(listed.output).not.toContain('hunter2');

    const unset = await runVitest(['list', '--config', 'vitest.contract.config.ts', '--filesOnly'], {});
    expect(unset.output).toContain('the EventStoreDB adapter is skipped: EVENTSTORE_URL is not set');
    expect(unset.output).toContain('the MongoDB adapter is skipped: MONGODB_URL is not set');
  });
});
