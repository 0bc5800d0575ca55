import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startSwitchyard } from '../../src/main.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-bootstrap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const start = async (printed: string[]) =>
  startSwitchyard(loadConfig({ PORT: '0', DATA_DIR: dir, LOG_LEVEL: 'silent', EVENTSTORE_SYNC: 'normal' }), { log: (line) => printed.push(line) });

describe('bootstrap admin without ADMIN_API_KEY', () => {
  it('creates an admin key at first start, prints it once, stores only its hash, and never prints it again', async () => {
    const first: string[] = [];
    let app = await start(first);
    const secret = /sk-sy-v1-[0-9A-Za-z]{49}/.exec(first.join('\n'))?.[0];
    expect(secret).toBeDefined();
    const me = await fetch(`http://127.0.0.1:${app.port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify({ query: '{ me { id roles } }' }),
    });
    expect((await me.json()).data.me).toEqual({ id: 'acc_root', roles: ['ADMIN'] });
    await app.stop();

    // The secret is nowhere on disk: only its SHA-256 hash.
    for (const file of readdirSync(dir)) expect(readFileSync(join(dir, file)).includes(secret!)).toBe(false);

    const second: string[] = [];
    app = await start(second);
    expect(second.join('\n')).not.toMatch(/sk-sy-v1-/);
    await app.stop();
  });

  it('refuses to start with a short ADMIN_API_KEY or a malformed store URL, naming the variable', () => {
    expect(() => loadConfig({ ADMIN_API_KEY: 'short' })).toThrow(/ADMIN_API_KEY must be at least 32 characters/);
    expect(() => loadConfig({ MONGODB_URL: 'http://localhost' })).toThrow(/MONGODB_URL/);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
  });
});

describe('one process per data directory in embedded mode', () => {
  it('a second process on the same DATA_DIR stops with a clear message instead of diverging', async () => {
    const { execFile } = await import('node:child_process');
    const app = await start([]);
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'src/cli/audit.ts'],
        { cwd: join(import.meta.dirname, '../..'), env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'silent' } },
        (error, _stdout, stderr) => resolve({ code: error ? (error as { code?: number }).code ?? 1 : 0, stderr }),
      );
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/is in use by process \d+; stop it first/);
    await app.stop();
  });
});

describe('a damaged data directory', () => {
  it('stops the server with one line saying which directory and what to do, not a stack trace', async () => {
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const damaged = mkdtempSync(join(tmpdir(), 'switchyard-damaged-'));
    try {
      writeFileSync(join(damaged, 'events.db'), Buffer.alloc(8192, 'not a database, whatever it once was. '), { mode: 0o600 });
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', 'src/main.ts'],
          { cwd: join(import.meta.dirname, '../..'), env: { ...process.env, DATA_DIR: damaged, PORT: '0', LOG_LEVEL: 'silent', ADMIN_API_KEY: 'sk-sy-v1-damageddamageddamageddamageddamaged' }, timeout: 30_000 },
          (error, _stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `Switchyard could not start: a database in DATA_DIR (${damaged}) is damaged (file is not a database). Restore events.db from a backup; readmodels.db and content.db can be deleted (the read models are rebuilt from the events; logged content is lost).`,
      );
    } finally {
      rmSync(damaged, { recursive: true, force: true });
    }
  });
});
