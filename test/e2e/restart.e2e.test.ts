import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
