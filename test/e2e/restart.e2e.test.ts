import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startHarness } from '../support/appHarness.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'switchyard-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('durability across restarts', () => {
  it('keeps accounts, keys and their state, and rebuilds read models from the events on demand', async () => {
    let h = await startHarness({}, dir);
    const { body } = await h.gql(`mutation { openAccount(name: "Persist") { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } } }`);
    const { secret } = body.data.openAccount.initialKey;
    const keyId = body.data.openAccount.initialKey.key.id;
    const created = await h.gql(`mutation { createApiKey(name: "second") { ... on CreatedApiKey { secret key { id } } } }`, {}, secret);
    await h.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: created.body.data.createApiKey.key.id }, secret);
    const before = await h.gql('{ me { id name apiKeys(includeRevoked: true) { edges { node { id name status } } } } }', {}, secret);
    await h.stop();

    h = await startHarness({}, dir);
    expect((await h.gql('{ me { id name apiKeys(includeRevoked: true) { edges { node { id name status } } } } }', {}, secret)).body).toEqual(before.body);
    expect((await h.gql('{ me { id } }', {}, created.body.data.createApiKey.secret)).status).toBe(401);
    // Read models were loaded with their checkpoint, not replayed.
    const health = await (await fetch(`${h.url}/health`)).json();
    expect(health.projections.lag).toBe(0);
    await h.stop();

    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'projections/rebuild.ts'], {
      env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'silent' },
      cwd: join(import.meta.dirname, '../..'),
    });
    expect(stdout).toMatch(/done: \d+ events/);
    expect(stdout).toMatch(/Rebuilt accounts, apiKeys/);

    h = await startHarness({}, dir);
    expect((await h.gql('{ me { id name apiKeys(includeRevoked: true) { edges { node { id name status } } } } }', {}, secret)).body).toEqual(before.body);
    expect(keyId).toMatch(/^key_/);
    await h.stop();
  });
});

describe('another process reading the live event log', () => {
  it("cannot take the server's WAL away: the server keeps its lock on events.db, so a sqlite3 shell closing on it leaves the WAL and what the server writes next", async () => {
    const data = mkdtempSync(join(tmpdir(), 'switchyard-outside-'));
    const h = await startHarness({ EVENTSTORE_SYNC: 'full' }, data);
    try {
      const file = join(data, 'events.db');
      // SQLite deletes a WAL on close when it gets an exclusive lock on the database file, i.e. when no other process
      // holds a shared one. Closing any descriptor of a file drops every POSIX lock the process holds on it: opening
      // events.db to set its mode, after the first connection, dropped the server's (Linux's /proc/locks shows them).
      const inode = statSync(file).ino;
      const held = readFileSync('/proc/locks', 'utf8')
        .split('\n')
        .filter((line) => line.includes(` ${process.pid} `) && line.includes(`:${inode} `));
      expect(held.length, `no lock of this process on events.db (inode ${inode})`).toBeGreaterThan(0);
      // As an operator would (when the sqlite3 shell is installed): read, close, and the WAL is still there.
      const shell = await run('sqlite3', [file, 'select count(*) from events']).then(
        () => true,
        () => false,
      );
      if (shell) expect(existsSync(`${file}-wal`)).toBe(true);
      const opened = await h.gql('mutation { openAccount(name: "Outside") { ... on OpenAccountPayload { account { id } } } }');
      const granted = await h.gql('mutation($id: ID!) { grantCredits(accountId: $id, amount: 7000000000, reason: "after the reader") { ... on Balance { available } } }', { id: opened.body.data.openAccount.account.id });
      expect(granted.body.data.grantCredits.available).toBe(7_000_000_000);
      // Had the WAL been unlinked, this commit would live only in the server's deleted file: invisible to another
      // process, and gone at the next kill -9.
      const seen = await run(process.execPath, ['-e', `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(file)}, { readonly: true }); console.log(db.prepare("select count(*) as n from events where type = 'CreditsGranted'").get().n); db.close();`], { cwd: join(import.meta.dirname, '../..') });
      expect(seen.stdout.trim()).toBe('1');
    } finally {
      await h.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });
});

describe('read models ahead of the event log', () => {
  it('are rebuilt from the log at start (an event log restored from an older copy): nothing the log lacks is served, nothing it writes next is skipped', async () => {
    const data = mkdtempSync(join(tmpdir(), 'switchyard-ahead-'));
    try {
      let h = await startHarness({}, data);
      const opened = await h.gql('mutation { openAccount(name: "Ghost") { ... on OpenAccountPayload { account { id } } } }');
      await h.gql('mutation($id: ID!) { grantCredits(accountId: $id, amount: 5000000000, reason: "gone with the log") { __typename } }', { id: opened.body.data.openAccount.account.id });
      const accountNames = async () => (await h.gql('{ accounts(first: 100) { edges { node { name } } } }')).body.data.accounts.edges.map((e: { node: { name: string } }) => e.node.name) as string[];
      // Projected (a list read waits for the read models), so the stored checkpoints cover it.
      expect(await accountNames()).toContain('Ghost');
      await h.stop();
      // The event log as an older backup would have it: empty. The read models keep their checkpoints past its end.
      for (const suffix of ['', '-wal', '-shm']) rmSync(join(data, `events.db${suffix}`), { force: true });
      h = await startHarness({}, data);
      try {
        await h.gql('mutation { openAccount(name: "After") { __typename } }');
        const names = await accountNames();
        expect(names).not.toContain('Ghost');
        // Written after the restart, at positions the stale checkpoints had already passed: projected all the same.
        expect(names).toContain('After');
        expect((await h.gql('{ billingAudit { ok } }')).body.data.billingAudit.ok).toBe(true);
      } finally {
        await h.stop();
      }
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
