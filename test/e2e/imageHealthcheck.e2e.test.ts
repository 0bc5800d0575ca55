import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startHarness } from '../support/appHarness.js';

/** The Docker image's HEALTHCHECK command, run as Docker runs it (`/bin/sh -c`), against a started server. */
const command = /^HEALTHCHECK .*? CMD (.+)$/m.exec(readFileSync(join(import.meta.dirname, '../../Dockerfile'), 'utf8'))?.[1] ?? '';

const probe = (port: number) =>
  new Promise<number>((resolve) => {
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, PORT: String(port) };
    execFile('/bin/sh', ['-c', command], { env, timeout: 20_000 }, (error) => resolve(error ? Number(error.code ?? 1) : 0));
  });

describe("the image's healthcheck", () => {
  it('passes on the port the server listens on ($PORT) and fails once nothing answers there', async () => {
    expect(command).not.toBe('');
    const h = await startHarness();
    try {
      expect(await probe(h.port)).toBe(0);
    } finally {
      await h.stop();
    }
    expect(await probe(h.port)).not.toBe(0);
  });
});
