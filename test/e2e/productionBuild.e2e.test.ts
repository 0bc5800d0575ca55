import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { listeningPort } from '../support/spawnedServer.js';

/**
 * The Docker image and the gateway benchmark run the compiled JavaScript (`npm run build`, `node dist/src/main.js`),
 * not the sources through tsx: build it and serve a streamed answer from it, storage thread included.
 */
const repo = join(import.meta.dirname, '../..');
const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-build-'));
const adminKey = 'sk-admin-build-test-0123456789abcdefghijklmnop';
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** `npm run start:prod`'s command, and the Docker image's: one argv, Node's flags included. */
const startProd = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start:prod']!.split(/\s+/);
const imageCommand = JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(join(repo, 'Dockerfile'), 'utf8'))?.[1] ?? '[]') as string[];

describe('the production build', () => {
  it('the Docker image runs what `npm run start:prod` runs, with the same Node flags', () => {
    expect(startProd[0]).toBe('node');
    expect(startProd.at(-1)).toBe('dist/src/main.js');
    expect(imageCommand).toEqual(startProd);
  });

  // The build compiles src/ only, and vitest strips types without checking them: without this, a type error in a
  // test, a bench or the console's app would land unseen.
  it('type-checks everything under the strict settings: src, tests, bench, projections and the console (`npm run typecheck`)', { timeout: 240_000 }, async () => {
    const result = await promisify(execFile)('npm', ['run', 'typecheck'], { cwd: repo }).catch((error: { stdout?: string; message: string }) => error);
    expect('message' in result ? result.stdout || result.message : '').toBe('');
  });

  it('compiles, starts from dist/ (as `npm run start:prod` and the Docker image do), streams an answer and stops cleanly on SIGTERM', { timeout: 180_000 }, async () => {
    await promisify(execFile)('npm', ['run', 'build'], { cwd: repo });
    const server = spawn(process.execPath, startProd.slice(1), {
      cwd: repo,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_API_KEY: adminKey, LOG_LEVEL: 'info', EVENTSTORE_SYNC: 'normal' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
    try {
      const { port } = await listeningPort(server);
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string };
      expect(health.status).toBe('ok');
      // The build includes the web console, served from dist/console/.
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      const script = /\/assets\/main-\w+\.js/.exec(await page.text())?.[0];
      expect((await fetch(`http://127.0.0.1:${port}${script}`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/api/v1`, apiKey: adminKey, maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'switchyard/demo', stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      expect(text.length).toBeGreaterThan(5);
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
