/**
 * A master key that is not the one the event log's secrets were sealed under (SWITCHYARD_MASTER_KEY set to another
 * key, or DATA_DIR/master.key replaced by another), with the server run as the operator runs it. It used to start
 * with /health ok and fail every sealed secret one by one at use (a provider's calls a 503, BYOK keys refused); now
 * the start stops (exit 78) in one line naming where the key came from, never the key, and starts again once the
 * right key is back. A key that replaces a lost one for good is taken only when the operator names what it replaces.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { checkMasterKey, createCredentialVault, parseEnvAllowList } from '../../src/modules/catalog/credentials.js';
import { expectOneLine, spawnedSwitchyards, startToExit, type SpawnedSwitchyard } from '../support/spawnedServer.js';

const servers = spawnedSwitchyards();

const register = (slug: string) => `mutation { registerProvider(slug: "${slug}", name: "${slug}", protocol: OPENAI, baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-${slug}-upstream-key-0123456789") {
  ... on Provider { slug } ... on DomainError { code message } } }`;

const credentialOf = async (server: SpawnedSwitchyard, slug: string) => {
  const { body } = await server.graphql('{ providers { slug credentialKind unavailableReason } }');
  return body.data.providers.find((p: { slug: string }) => p.slug === slug);
};

describe('a master key that does not open the sealed secrets', () => {
  it('in a replaced DATA_DIR/master.key stops the start (exit 78) naming the file, and the restored file starts again', async () => {
    const dir = servers.dataDir();
    const first = await servers.start(dir);
    expect((await first.graphql(register('sealed-file'))).body.data.registerProvider).toEqual({ slug: 'sealed-file' });
    await first.kill();
    const keyFile = join(dir, 'master.key');
    const key = readFileSync(keyFile, 'utf8');
    const other = 'another-valid-looking-master-key-0123456789';
    writeFileSync(keyFile, `${other}\n`, { mode: 0o600 });

    const { code, stderr } = await startToExit(dir);
    expect(code).toBe(78);
    expectOneLine(stderr);
    expect(stderr).toContain(`Switchyard could not start: the master key in ${keyFile} does not open the 1 secret sealed in the event log (1 provider key)`);
    expect(stderr).toContain('Restore the file from a backup of DATA_DIR');
    expect(stderr).not.toContain(other);
    expect(stderr).not.toContain(key.trim());

    writeFileSync(keyFile, key, { mode: 0o600 });
    const again = await servers.start(dir);
    expect(await credentialOf(again, 'sealed-file')).toMatchObject({ credentialKind: 'encrypted' });
  }, 60_000);

  it('in SWITCHYARD_MASTER_KEY stops the start naming the variable; a key replacing a lost one starts once named, and alone after a secret is sealed under it', async () => {
    const dir = servers.dataDir();
    const lost = { SWITCHYARD_MASTER_KEY: 'the-first-master-key-0123456789abcdefghij' };
    const first = await servers.start(dir, { env: lost });
    expect((await first.graphql(register('sealed-env'))).body.data.registerProvider).toEqual({ slug: 'sealed-env' });
    await first.kill();

    const replacement = { SWITCHYARD_MASTER_KEY: 'a-second-master-key-0123456789abcdefghijk' };
    const refused = await startToExit(dir, replacement);
    expect(refused.code).toBe(78);
    expectOneLine(refused.stderr);
    expect(refused.stderr).toContain('Switchyard could not start: the master key in SWITCHYARD_MASTER_KEY does not open the 1 secret sealed in the event log (1 provider key)');
    expect(refused.stderr).not.toContain(replacement.SWITCHYARD_MASTER_KEY);
    expect(refused.stderr).not.toContain(lost.SWITCHYARD_MASTER_KEY);
    // The way out when the old key is lost for good: name the sealed secret the new key replaces.
    const id = /SWITCHYARD_MASTER_KEY_REPLACES=([0-9a-f]+)/.exec(refused.stderr)?.[1];
    expect(id).toBeDefined();

    // Another value of SWITCHYARD_MASTER_KEY_REPLACES is no way out.
    expect((await startToExit(dir, { ...replacement, SWITCHYARD_MASTER_KEY_REPLACES: '0000000000000000' })).stderr).toContain('SWITCHYARD_MASTER_KEY_REPLACES=0000000000000000 names no secret this key replaces');

    const replacing = await servers.start(dir, { env: { ...replacement, SWITCHYARD_MASTER_KEY_REPLACES: id! } });
    expect(replacing.output()).toContain('sealed under a lost master key');
    expect(await credentialOf(replacing, 'sealed-env')).toMatchObject({ unavailableReason: expect.stringContaining('decrypt') });
    expect((await replacing.graphql(register('resealed'))).body.data.registerProvider).toEqual({ slug: 'resealed' });
    await replacing.kill();

    // Once a secret is sealed under the new key, it starts without the variable; the lost key no longer does.
    const after = await servers.start(dir, { env: replacement });
    expect(await credentialOf(after, 'resealed')).toMatchObject({ credentialKind: 'encrypted', unavailableReason: null });
    await after.kill();
    expect((await startToExit(dir, lost)).code).toBe(78);
  }, 90_000);

  it('stops nothing on a store that holds nothing sealed', async () => {
    const dir = servers.dataDir();
    const first = await servers.start(dir, { env: { SWITCHYARD_MASTER_KEY: 'the-first-master-key-0123456789abcdefghij' } });
    await first.kill();
    await servers.start(dir, { env: { SWITCHYARD_MASTER_KEY: 'a-second-master-key-0123456789abcdefghijk' } });
  }, 60_000);

  // Production mode (EventStoreDB + MongoDB) has no key file: without SWITCHYARD_MASTER_KEY the server has no key at
  // all. It used to start anyway over sealed secrets, each failing at use. The check runs on the event log the server
  // would read (here the embedded one a server sealed a provider key in; the production start calls the same check).
  it('with no master key at all (production mode without SWITCHYARD_MASTER_KEY) stops the start over sealed secrets', async () => {
    const dir = servers.dataDir();
    const first = await servers.start(dir);
    expect((await first.graphql(register('sealed-nokey'))).body.data.registerProvider).toEqual({ slug: 'sealed-nokey' });
    await first.kill();
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    try {
      const keyless = createCredentialVault({ masterKey: undefined, envAllow: parseEnvAllowList([]) });
      const refused = checkMasterKey({ eventStore, vault: keyless, from: undefined, replaces: undefined });
      await expect(refused).rejects.toThrow(/^SWITCHYARD_MASTER_KEY is not set, and none of the 1 secret sealed in the event log \(1 provider key\) opens without the key used to seal it/);
      await expect(refused).rejects.toThrow(/SWITCHYARD_MASTER_KEY_REPLACES=[0-9a-f]{16}/);
    } finally {
      await eventStore.close();
    }
  }, 60_000);
});
