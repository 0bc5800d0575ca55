import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, openConsole, reportFailures, screenshots, shoot } from '../support/consoleFixtures.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

/**
 * Sign in with Switchyard in a real browser: an app (a local HTTP server with a callback) sends the user to
 * /auth?callback_url=…&code_challenge=…; the user signs in, allows it, and the browser lands on the app's callback with
 * a code the app, from its page, exchanges for a key it then calls a model with (cross-origin). Denying, a broken link and a callback the server refuses go nowhere.
 */
if (!chromiumPath) console.warn('consoleAuthorize.e2e: no Chromium binary (/usr/bin/chromium; `apt-get install chromium` or set CHROMIUM_PATH): the browser tests are skipped');

describe.skipIf(!chromiumPath)('authorizing an app in Chromium', () => {
  let h: GatewayHarness;
  let browser: Browser;
  let page: Page;
  let user: Account;
  let app: Server;
  let appUrl: string;
  /** The query of every request the app's callback received. */
  const callbacks: URLSearchParams[] = [];
  const outside: string[] = [];
  const consoleErrors: string[] = [];
  reportFailures(() => page);

  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authUrl = (callbackUrl: string) => `${h.url}/auth?callback_url=${encodeURIComponent(callbackUrl)}&code_challenge=${challenge}&code_challenge_method=S256`;

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    h = await startGatewayHarness();
    user = await h.openAccount({ name: 'Ada Lovelace', credits: 1_000_000_000 });
    app = createServer((req, res) => {
      callbacks.push(new URL(req.url ?? '/', 'http://app').searchParams);
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>Notes app</title><p>Signed in.</p>');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    ({ browser, page } = await openConsole(h.url, { outside, consoleErrors }));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => app?.close(resolve));
    await h?.stop();
  });

  it('signs in, shows who asks, and on Allow lands on the app’s callback with a code the app exchanges for a key', async () => {
    await page.goto(authUrl(`${appUrl}/callback?state=s1`));
    await page.getByLabel('API key').fill(user.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const form = page.getByRole('form', { name: 'Authorize an app' });
    await form.waitFor();
    expect(await page.getByTestId('app-origin').textContent()).toBe(appUrl);
    expect(await form.textContent()).toContain('Ada Lovelace');
    await shoot(page, 'authorize');
    await form.getByLabel('Key name (optional)').fill('Notes app');
    await form.getByLabel('Spending limit (USD, empty for none)').fill('2');
    await form.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${appUrl}/callback?**`);
    const query = callbacks.at(-1)!;
    expect(query.get('state')).toBe('s1');

    // The app, a page of another origin, exchanges the code and calls a model from the browser (CORS preflights).
    const done = (await page.evaluate(
      async ({ api, verifier }) => {
        const code = new URLSearchParams(location.search).get('code');
        const exchanged = await fetch(`${api}/api/v1/auth/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, code_verifier: verifier }) });
        const { key } = (await exchanged.json()) as { key: string };
        const chat = await fetch(`${api}/api/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-title': 'Notes app', 'x-session-id': 'notes-thread-1' },
          body: JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hello from the browser' }] }),
        });
        const answer = (await chat.json()) as { choices: { message: { content: string } }[] };
        return { exchanged: exchanged.status, key, chat: chat.status, generation: chat.headers.get('x-generation-id'), content: answer.choices[0]!.message.content };
      },
      { api: h.url, verifier },
    )) as { exchanged: number; key: string; chat: number; generation: string | null; content: string };
    expect(done).toMatchObject({ exchanged: 200, chat: 200 });
    expect(done.generation).toMatch(/^gen-/);
    expect(done.content).toBeTruthy();
    const { key } = done;
    const { body } = await h.gql('{ me { id } apiKeys(first: 20) { edges { node { name limit } } } }', {}, key);
    expect(body.data.me.id).toBe(user.accountId);
    expect(body.data.apiKeys.edges.map((e: { node: unknown }) => e.node)).toContainEqual({ name: 'Notes app', limit: 2_000_000_000 });

    // Back on the console (still signed in, in this tab), the call shows the app that made it.
    await h.running.core.gateway.idle();
    await page.goto(`${h.url}/#/activity`);
    const rows = page.getByRole('region', { name: 'Recent generations' }).getByRole('row');
    await rows.nth(1).getByRole('button', { name: /^Details of generation/ }).click();
    const drawer = page.getByRole('dialog', { name: 'Generation' });
    await drawer.getByTestId('detail-app').waitFor();
    expect(await drawer.getByTestId('detail-app').textContent()).toBe('Notes app');
    // The conversation it belongs to (x-session-id, sent from the browser through CORS).
    expect(await drawer.getByTestId('detail-session').textContent()).toBe('notes-thread-1');
    await page.keyboard.press('Escape');
    // Recent generations filter by it: the conversation's calls, or none for another session.
    const filters = page.getByRole('form', { name: 'Filter generations' });
    const recent = page.getByRole('region', { name: 'Recent generations' });
    await filters.getByLabel('Session').fill('another-thread');
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    await recent.getByText('No generation matches these filters.').waitFor();
    await filters.getByLabel('Session').fill('notes-thread-1');
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => recent.getByRole('row').count()).toBe(2);
    await rows.nth(1).getByRole('button', { name: /^Details of generation/ }).click();
    await shoot(page, 'authorize-app-generation');
    await page.keyboard.press('Escape');
  });

  it('on Deny creates nothing and does not go to the app', async () => {
    const before = callbacks.length;
    await page.goto(authUrl(`${appUrl}/callback`));
    const form = page.getByRole('form', { name: 'Authorize an app' });
    await form.getByRole('button', { name: 'Deny' }).click();
    await page.getByText('Nothing was created; you can close this tab.').waitFor();
    await shoot(page, 'authorize-denied');
    expect(callbacks.length).toBe(before);
  });

  it('a link without a callback, or with a callback that is not https (nor http on this machine), shows why and goes nowhere', async () => {
    const before = callbacks.length;
    await page.goto(`${h.url}/auth?code_challenge=${challenge}`);
    await page.getByText('This link has no callback_url').waitFor();
    // Refused as the server would refuse them (appAuthorization.e2e), before anything is asked: no Allow to press.
    // A custom scheme has no origin: the page used to fail to render it at all.
    for (const [callback, scheme] of [['http://evil.example/steal', 'http:'], ['myapp://callback', 'myapp:'], ['javascript:alert(1)', 'javascript:']]) {
      await page.goto(authUrl(callback!));
      await page.getByText(`callback_url must use https (http only on localhost, 127.0.0.1 or [::1]); it is ${scheme}`).waitFor();
      expect(await page.getByRole('button', { name: 'Allow' }).count()).toBe(0);
    }
    await shoot(page, 'authorize-refused');
    expect(page.url()).toContain('/auth?');
    expect(callbacks.length).toBe(before);
    expect(outside).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
