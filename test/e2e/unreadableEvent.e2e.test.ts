/**
 * One event in events.db whose stored JSON is damaged (the page still valid to SQLite), as QA s40 ops #6 made it: the
 * operator is told, and nothing is lost on the way.
 * - The server: the account's calls answer 503 UNAVAILABLE naming the event (not 500 "Unexpected error"); /health is
 *   503 degraded naming its position and stream; the other accounts work.
 * - projections:rebuild refuses before it resets anything, naming the event, exit 1 (it used to empty every read
 *   model and then retry in silence forever, after which the server could not start).
 * - The audit reports the unreadable event and exits 1, without a stack trace.
 * - A start whose read models are behind it (readmodels.db deleted, as the start's own advice for a damaged one says)
 *   stops in one line naming it and what to do, exit 1 (it used to wait for ever, logging the retries); so does one
 *   in a stream that a write-side view (the accounts and keys the server authenticates with) reads at every start.
 */
import { execFile } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { expectOneLine, spawnedSwitchyards, startToExit } from '../support/spawnedServer.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const USD = 1_000_000_000;
const switchyards = spawnedSwitchyards();

/** Runs a CLI of the repository on `dir`: its exit code and output, whatever the code. */
const cli = async (script: string, dir: string) => {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', DATA_DIR: dir, LOG_LEVEL: 'silent' }, timeout: 60_000 });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { code?: number; killed?: boolean; stdout?: string; stderr?: string };
    if (failed.killed) throw new Error(`${script} hung:\n${failed.stdout}${failed.stderr}`);
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
};

describe('an unreadable event in the log', () => {
  it('is named by the calls it breaks and by /health; the rebuild refuses before resetting anything; the audit reports it; exit codes 1', { timeout: 180_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-unreadable-');
    let server = await switchyards.start(dir);
    const open = async (name: string) => {
      const { body } = await server.graphql(`mutation ($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
      const accountId = body.data.openAccount.account.id as string;
      await server.graphql(`mutation ($id: ID!) { grantCredits(accountId: $id, amount: ${USD}, reason: "test") { __typename } }`, { id: accountId });
      return { accountId, key: body.data.openAccount.initialKey.secret as string };
    };
    const damaged = await open('Damaged');
    const healthy = await open('Healthy');
    server.child.kill('SIGTERM');
    await server.exited;

    // One byte of the grant's JSON changed, as a damaged page or a hand edit would.
    const db = new Database(join(dir, 'events.db'));
    const grant = db.prepare(`SELECT position, stream, data FROM events WHERE type = 'CreditsGranted' AND stream LIKE ?`).get(`%${damaged.accountId}`) as { position: number; stream: string; data: string };
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run(grant.data.replace(`"amount":${USD}`, `"amount":x${String(USD).slice(1)}`), grant.position);
    db.close();
    const named = new RegExp(`position ${grant.position}, stream ${grant.stream}`);

    server = await switchyards.start(dir);
    const credits = (key: string) => fetch(`${server.url}/api/v1/credits`, { headers: { authorization: `Bearer ${key}` } });
    const refused = await credits(damaged.key);
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(named);
    const grantAgain = await server.graphql(`mutation ($id: ID!) { grantCredits(accountId: $id, amount: ${USD}, reason: "again") { __typename ... on DomainError { code message } } }`, { id: damaged.accountId });
    expect(grantAgain.body.data.grantCredits, JSON.stringify(grantAgain.body)).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(named) });
    // The operator sees it on /health, with the event's position and stream.
    const health = await eventually('/health to report the unreadable event', async () => {
      const res = await fetch(`${server.url}/health`);
      return res.status === 503 ? ((await res.json()) as { status: string; eventStore: { ok: boolean; detail: string; unreadableEvent: unknown } }) : null;
    });
    expect(health.status).toBe('degraded');
    expect(health.eventStore).toMatchObject({ ok: false, unreadableEvent: { position: grant.position, stream: grant.stream, type: 'CreditsGranted' } });
    expect(health.eventStore.detail).toMatch(named);
    // The other accounts are not affected.
    expect((await credits(healthy.key)).status).toBe(200);
    server.child.kill('SIGTERM');
    await server.exited;

    // The rebuild reads the whole log before it resets anything: refused, naming the event, read models untouched.
    const readModels = () => {
      const rm = new Database(join(dir, 'readmodels.db'), { readonly: true });
      try {
        return rm.prepare('SELECT collection, id, json FROM docs UNION ALL SELECT collection, id, json FROM disk_docs ORDER BY 1, 2').all();
      } finally {
        rm.close();
      }
    };
    const before = readModels();
    expect(before.length).toBeGreaterThan(0);
    const rebuild = await cli('projections/rebuild.ts', dir);
    expect(rebuild.code, rebuild.output).toBe(1);
    expect(rebuild.output).toMatch(/nothing was reset/);
    expect(rebuild.output).toMatch(named);
    expect(rebuild.output).not.toMatch(/\n\s+at /);
    expect(readModels()).toEqual(before);

    const audit = await cli('src/cli/audit.ts', dir);
    expect(audit.code, audit.output).toBe(1);
    expect(audit.output).toMatch(/UNREADABLE EVENT/);
    expect(audit.output).toMatch(named);
    expect(audit.output).not.toMatch(/\n\s+at /);

    // And the server still starts on the folder.
    server = await switchyards.start(dir);
    expect((await fetch(`${server.url}/api/v1/credits`, { headers: { authorization: `Bearer ${healthy.key}` } })).status).toBe(200);
  });

  it('behind the read models stops the start in one line naming it and what to do (exit 1), instead of waiting for ever', { timeout: 120_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-unreadable-');
    const server = await switchyards.start(dir);
    const { body } = await server.graphql(`mutation { openAccount(name: "Damaged") { ... on OpenAccountPayload { account { id } } } }`);
    const accountId = body.data.openAccount.account.id as string;
    await server.graphql(`mutation ($id: ID!) { grantCredits(accountId: $id, amount: ${USD}, reason: "test") { __typename } }`, { id: accountId });
    server.child.kill('SIGTERM');
    await server.exited;

    const db = new Database(join(dir, 'events.db'));
    const grant = db.prepare(`SELECT position, stream, data FROM events WHERE type = 'CreditsGranted' AND stream LIKE ?`).get(`%${accountId}`) as { position: number; stream: string; data: string };
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run(grant.data.replace(`"amount":${USD}`, `"amount":x${String(USD).slice(1)}`), grant.position);
    db.close();
    // The read models are rebuilt from the log at the next start.
    for (const file of readdirSync(dir).filter((name) => name.startsWith('readmodels.db') && !name.includes('lock'))) rmSync(join(dir, file));

    const { code, stderr } = await startToExit(dir, {}, 60_000);
    expect(code, stderr).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toMatch(new RegExp(`^Switchyard could not start: The event log holds an event that cannot be read: position ${grant.position}, stream ${grant.stream}, revision \\d+ \\(CreditsGranted\\)`));
    expect(stderr).toMatch(/restore events\.db from a backup/);
  });

  it('in a stream a write-side view reads at every start (an account) stops the start the same way, read models past it or not', { timeout: 120_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-unreadable-');
    const server = await switchyards.start(dir);
    const { body } = await server.graphql(`mutation { openAccount(name: "Damaged") { ... on OpenAccountPayload { account { id } } } }`);
    const accountId = body.data.openAccount.account.id as string;
    server.child.kill('SIGTERM');
    await server.exited;

    const db = new Database(join(dir, 'events.db'));
    const opened = db.prepare(`SELECT position, stream FROM events WHERE type = 'AccountOpened' AND stream LIKE ?`).get(`%${accountId}`) as { position: number; stream: string };
    db.prepare(`UPDATE events SET data = '{"name":' WHERE position = ?`).run(opened.position);
    db.close();

    const { code, stderr } = await startToExit(dir, {}, 60_000);
    expect(code, stderr).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toMatch(new RegExp(`^Switchyard could not start: The event log holds an event that cannot be read: position ${opened.position}, stream ${opened.stream}, revision 0 \\(AccountOpened\\)`));
    expect(stderr).toMatch(/restore events\.db from a backup/);
  });
});
