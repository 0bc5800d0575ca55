/**
 * A start that fails on its environment, run as the operator runs it (`src/main.ts` in its own process), says so in
 * one line naming the variable to change, not with a stack trace: a port in use (which graphql-ws reported as "Internal
 * error emitted on the WebSocket server. Please check your implementation."), a HOST that does not resolve or is not
 * this machine's, a DATA_DIR that is a file, a CATALOG_SEED_FILE that does not exist (checked before DATA_DIR is
 * created).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectOneLine, spawnedSwitchyards, startToExit } from '../support/spawnedServer.js';

const servers = spawnedSwitchyards();
/** A data directory not yet created, in one removed after the test. */
const newDataDir = () => join(servers.dataDir('switchyard-startup-'), 'data');

describe('a start that fails on its environment', () => {
  // Set, so that a first start prints no notice of a generated master key before the failure.
  const MASTER = { SWITCHYARD_MASTER_KEY: 'test-master-key-0123456789abcdef0123456789' };
  it('on a port in use says so in one line naming PORT, not the WebSocket server "check your implementation" stack', async () => {
    const taken = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
    try {
      const { code, stderr } = await startToExit(newDataDir(), { ...MASTER, PORT: String(port) });
      expect(code).toBe(1);
      expectOneLine(stderr);
      expect(stderr.trim()).toBe(`Switchyard could not start: PORT ${port} on HOST 127.0.0.1 is in use by another process`);
    } finally {
      taken.close();
    }
  });

  it('on a HOST that does not resolve or is not this machine’s says so in one line naming HOST (exit 78)', async () => {
    for (const host of ['999.1.1.1', 'example.invalid']) {
      const { code, stderr } = await startToExit(newDataDir(), { ...MASTER, HOST: host });
      expect(code, host).toBe(78);
      expectOneLine(stderr);
      expect(stderr.trim()).toMatch(new RegExp(`^Switchyard could not start: HOST ${host.replaceAll('.', '\\.')} `));
    }
  });

  it('on a DATA_DIR that is a file says so in one line naming DATA_DIR (exit 78)', async () => {
    const file = join(servers.dataDir('switchyard-startup-'), 'afile');
    writeFileSync(file, 'not a directory');
    const { code, stderr } = await startToExit(file);
    expect(code).toBe(78);
    expectOneLine(stderr);
    expect(stderr.trim()).toBe(`Switchyard could not start: DATA_DIR (${file}) is not a directory`);
  });

  it('on a missing CATALOG_SEED_FILE says so in one line naming it, before creating the data directory (exit 78)', async () => {
    const dataDir = newDataDir();
    const { code, stderr } = await startToExit(dataDir, { CATALOG_SEED_FILE: '/nonexistent/seed.json' });
    expect(code).toBe(78);
    expectOneLine(stderr);
    expect(stderr.trim()).toBe('Switchyard could not start: CATALOG_SEED_FILE (/nonexistent/seed.json) cannot be read: no such file');
    expect(existsSync(dataDir)).toBe(false);
  });
});
