/**
 * A lost DATA_DIR/master.key (embedded mode, SWITCHYARD_MASTER_KEY unset), with the server run as the operator runs it:
 * a new key is generated only on a store that holds nothing sealed. Generated over secrets sealed under the old one,
 * it left every provider key, BYOK key and webhook or workflow secret unopenable while /health said ok; now the start
 * stops (exit 78) naming the file and how to restore it.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectOneLine, spawnedSwitchyards, startToExit } from '../support/spawnedServer.js';

const servers = spawnedSwitchyards();

describe('a lost DATA_DIR/master.key', () => {
  const REGISTER = `mutation { registerProvider(slug: "sealed-up", name: "Sealed", protocol: OPENAI, baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-sealed-upstream-key-0123456789") {
    ... on Provider { slug } ... on DomainError { code message } } }`;

  it('is not replaced while the event log holds secrets sealed under it: the start stops (exit 78) naming the file, and goes on once it is restored', async () => {
    const dir = servers.dataDir();
    const first = await servers.start(dir);
    expect((await first.graphql(REGISTER)).body.data.registerProvider).toEqual({ slug: 'sealed-up' });
    await first.kill();
    const keyFile = join(dir, 'master.key');
    const key = readFileSync(keyFile, 'utf8');
    renameSync(keyFile, join(dir, 'master.key.backup'));

    const { code, stderr } = await startToExit(dir);
    expect(code).toBe(78);
    expectOneLine(stderr);
    expect(stderr).toContain(`Switchyard could not start: ${keyFile} is missing, but the event log holds 1 secret sealed under the master key it held (1 provider key)`);
    expect(stderr).toContain('restore it from a backup of DATA_DIR');
    expect(existsSync(keyFile)).toBe(false);

    // Restored, the provider's key opens again.
    writeFileSync(keyFile, key, { mode: 0o600 });
    const again = await servers.start(dir);
    expect(again.output()).not.toContain('generated a master key');
    const providers = await again.graphql('{ providers { slug credentialKind unavailableReason } }');
    expect(providers.body.data.providers.find((p: { slug: string }) => p.slug === 'sealed-up')).toMatchObject({ credentialKind: 'encrypted' });
    expect(JSON.stringify(providers.body)).not.toMatch(/decrypt/);
  }, 60_000);

  it('is generated again on a store that holds nothing sealed', async () => {
    const dir = servers.dataDir();
    const first = await servers.start(dir);
    await first.kill();
    rmSync(join(dir, 'master.key'));
    const again = await servers.start(dir);
    expect(again.output()).toContain('generated a master key');
    expect(existsSync(join(dir, 'master.key'))).toBe(true);
  }, 60_000);
});
