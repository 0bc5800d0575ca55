/**
 * The operator's commands, run as processes of their own (`npm run audit`, `npm run projections:rebuild`) on a data
 * directory a real server wrote: an account that does not exist is not "OK" (NOT_FOUND, over GraphQL too); arguments
 * are parsed strictly (`--help` is the usage, a typo is an error, never a full audit); a DATA_DIR with no event log (a
 * mistyped path) is refused, not created empty and reported rebuilt.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runToExit, spawnedSwitchyards } from '../support/spawnedServer.js';

const servers = spawnedSwitchyards();
const AUDIT = 'query($id: ID) { billingAudit(accountId: $id) { ok accountsChecked } }';

/** A data directory a server wrote (and was killed on), with one account besides the root: its id. */
const writtenDataDir = async () => {
  const dir = servers.dataDir('switchyard-commands-');
  const server = await servers.start(dir);
  const opened = await server.graphql('mutation { openAccount(name: "Audited") { ... on OpenAccountPayload { account { id } } } }');
  const accountId = opened.body.data.openAccount.account.id as string;
  expect((await server.graphql(AUDIT, { id: accountId })).body.data.billingAudit).toEqual({ ok: true, accountsChecked: 1 });
  const missing = await server.graphql(AUDIT, { id: 'acc_nope' });
  await server.kill();
  return { dir, accountId, missing };
};

const audit = (dir: string, ...args: string[]) => runToExit(['src/cli/audit.ts', ...args], { DATA_DIR: dir, LOG_LEVEL: 'silent' });
const rebuild = (dir: string, ...args: string[]) => runToExit(['projections/rebuild.ts', ...args], { DATA_DIR: dir, LOG_LEVEL: 'silent' });

describe('the billing audit of one account', () => {
  it('of an account that does not exist is NOT_FOUND (GraphQL) and exit 2 (the CLI), not "OK"', async () => {
    const { dir, accountId, missing } = await writtenDataDir();
    expect(missing.body.data).toBeNull();
    expect(missing.body.errors[0]).toMatchObject({ message: 'Account acc_nope not found', extensions: { code: 'NOT_FOUND' } });

    const nope = await audit(dir, '--account', 'acc_nope');
    expect(nope.code).toBe(2);
    expect(nope.stderr.trim()).toBe('Account acc_nope not found: nothing to audit');
    expect(nope.stdout).not.toContain('OK');

    const real = await audit(dir, '--account', accountId);
    expect(real.code).toBe(0);
    expect(real.stdout).toContain('for 1 account(s)');
    expect(real.stdout).toContain('OK: read models match the ledger');
  }, 60_000);
});

describe('the commands’ arguments', () => {
  it('--help prints the usage and runs nothing; an unknown option, a stray word or an option missing its value is exit 2 with the usage', async () => {
    const { dir } = await writtenDataDir();
    const help = await audit(dir, '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run audit \[-- --account <accountId>\]/);
    expect(help.stdout).not.toContain('Replayed');

    for (const args of [['--acount', 'acc_x'], ['bogus'], ['--account', '--json'], ['--account=']]) {
      const wrong = await audit(dir, ...args);
      expect(wrong.code, args.join(' ')).toBe(2);
      expect(wrong.stderr, args.join(' ')).toContain('usage: npm run audit');
      expect(wrong.stdout, args.join(' ')).not.toContain('Replayed');
    }
    expect((await audit(dir, '--acount', 'acc_x')).stderr).toMatch(/Unknown option '--acount'/);

    const rebuildHelp = await rebuild(dir, '--help');
    expect(rebuildHelp.code).toBe(0);
    expect(rebuildHelp.stdout).toMatch(/^usage: npm run projections:rebuild/);
    expect(rebuildHelp.stdout).not.toContain('Rebuilt');
    const rebuildBogus = await rebuild(dir, '--bogus');
    expect(rebuildBogus.code).toBe(2);
    expect(rebuildBogus.stderr).toMatch(/Unknown option '--bogus'/);
    expect(rebuildBogus.stdout).not.toContain('Rebuilt');
  }, 90_000);
});

describe('a DATA_DIR with no event log', () => {
  it('is refused by both commands (exit 78, naming DATA_DIR), and not created', async () => {
    const typo = join(servers.dataDir('switchyard-commands-'), 'typo-dir');
    for (const command of [rebuild, audit]) {
      const refused = await command(typo);
      expect(refused.code).toBe(78);
      expect(refused.stderr.trim()).toBe(`DATA_DIR (${typo}) holds no event log (events.db): set DATA_DIR to the server's data directory`);
      expect(refused.stdout).not.toContain('Rebuilt');
      expect(existsSync(typo)).toBe(false);
    }
    // An empty folder is no store either.
    mkdirSync(typo);
    expect((await rebuild(typo)).code).toBe(78);
    expect(existsSync(join(typo, 'events.db'))).toBe(false);
  }, 60_000);
});
