/**
 * The operator's commands, run as processes of their own (`npm run audit`, `npm run projections:rebuild`) on a data
 * directory a real server wrote: an account that does not exist is not "OK" (NOT_FOUND, over GraphQL too); arguments
 * are parsed strictly (`--help` is the usage, a typo is an error, never a full audit); a DATA_DIR with no event log (a
 * mistyped path) is refused, not created empty and reported rebuilt.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generationsProjection } from '../../projections/generations.js';
import { diskCollections } from '../../projections/index.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
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

/** Make the stored generations read model look written by the previous version of Switchyard (one version back). */
const olderGenerations = async (dir: string): Promise<number> => {
  const readStore = await openEmbeddedReadStore({ dir, diskCollections });
  try {
    const checkpoint = await readStore.getCheckpoint(generationsProjection.name);
    expect(checkpoint?.version).toBe(generationsProjection.version);
    const older = generationsProjection.version - 1;
    await readStore.commit([], [{ projection: generationsProjection.name, version: older, position: checkpoint!.position }]);
    return older;
  } finally {
    await readStore.close();
  }
};

describe('a read model of another version', () => {
  it('is rebuilt, and said so with both versions, when it starts and once done, by the server and by each command', async () => {
    const dir = servers.dataDir('switchyard-versions-');
    const first = await servers.start(dir);
    await first.graphql('mutation { openAccount(name: "Versioned") { __typename } }');
    // Stopped cleanly: every read model's checkpoint is stored.
    first.child.kill('SIGTERM');
    await first.exited;
    const now = generationsProjection.version;
    const started = (from: number) => `rebuilding read model generations (version ${from} → ${now}) from the event log`;
    const done = (from: number) => new RegExp(`rebuilt read model generations \\(version ${from} → ${now}\\) from the event log: \\d+ events? in \\d+\\.\\d\\d s`);

    const older = await olderGenerations(dir);
    const audited = await audit(dir);
    expect(audited.code).toBe(0);
    expect(audited.stdout).toContain(started(older));
    expect(audited.stdout).toMatch(done(older));
    expect(audited.stdout).not.toMatch(/read model (accounts|balances)/);
    // Once rebuilt, nothing more to say.
    expect((await audit(dir)).stdout).not.toMatch(/rebuil/);

    await olderGenerations(dir);
    const server = await servers.start(dir);
    const logged = server.output().split('\n').filter((line) => line.includes('read model generations'));
    expect(logged.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 30, projection: 'generations', fromVersion: older, toVersion: now, phase: 'started', msg: started(older) }),
      expect.objectContaining({ level: 30, projection: 'generations', fromVersion: older, toVersion: now, phase: 'done', events: expect.any(Number), ms: expect.any(Number) }),
    ]);
    expect(JSON.parse(logged[1]!).msg).toMatch(done(older));
    await server.kill();

    // The rebuild command rebuilds every read model: a line for each once done, saying which changed version.
    await olderGenerations(dir);
    const rebuilt = await rebuild(dir);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(done(older));
    expect(rebuilt.stdout).toMatch(/^rebuilt read model accounts \(version \d+\) from the event log: \d+ events? in /m);
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
