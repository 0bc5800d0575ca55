import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, expect } from 'vitest';
import type { UsageDoc } from '../../projections/usageDaily.js';
import type { Harness } from './appHarness.js';

/**
 * 30 days × 20 models of usage (the size for the Activity page), written straight into the usage read model:
 * the page reads only that model, and making 600 day-model rows through generations would take minutes.
 */
export const seedUsage = async (h: Harness, accountId: string, keyId: string) => {
  const usage = h.running.core.readStore.collection<UsageDoc>('usageDaily');
  const providers = ['acme', 'globex', 'initech', 'umbrella'];
  for (let d = 1; d <= 30; d++) {
    const day = new Date(Date.now() - d * 86_400_000).toISOString().slice(0, 10);
    for (let m = 0; m < 20; m++) {
      const requests = 5 + ((d * 7 + m * 13) % 40);
      const [model, provider] = [`vendor${m % 5}/model-${m}`, providers[m % 4] ?? 'acme'];
      await usage.replaceOne({
        _id: [accountId, keyId, model, provider, day, '-', '-'].join('|'),
        accountId,
        keyId,
        model,
        provider,
        workflowId: null,
        app: null,
        day,
        requests,
        promptTokens: requests * 300,
        completionTokens: requests * (120 + m * 10),
        reasoningTokens: 0,
        cachedTokens: 0,
        cost: requests * (20 - m) * 40_000 * (1 + (d % 5)),
      });
    }
  }
};

/** The system Chromium the browser tests drive (Debian's `chromium`), or undefined: the tests then skip. */
export const chromiumPath = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
  (path): path is string => !!path && existsSync(path),
);

/** Where the browser tests save their screenshots (git-ignored). */
export const screenshots = join(import.meta.dirname, '../screenshots');

/** Whether a request stays on this machine. */
export const isLocal = (url: string) => {
  const { protocol, hostname } = new URL(url);
  return protocol === 'data:' || hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
};

/** Controls with no accessible name on the page as it is now (a label, aria-label or text), described. */
export const unlabelled = async (page: Page) =>
  (await page.evaluate(`[...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.outerHTML.slice(0, 80))`)) as string[];

/** Check every control is labelled, then save the page in light and dark. */
export const shoot = async (page: Page, name: string) => {
  expect(await unlabelled(page), `unlabelled controls on ${name}`).toEqual([]);
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: join(screenshots, `${name}-${colorScheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
};

/**
 * A routed request Playwright handled or dropped before its handler's answer (its page navigated away or closed):
 * continuing it throws, an unhandled rejection that failed a whole CI run in which every test passed (Node 24, stop 48).
 * Nothing is left to do for such a request; any other failure is thrown.
 */
const settled = (handling: Promise<void>) =>
  handling.catch((error: unknown) => {
    if (!/already handled|has been closed/i.test(error instanceof Error ? error.message : String(error))) throw error;
  });

/**
 * Each browser suite's Chromium on the console at `origin`: a 1280×860 page in UTC and en-US, allowed the clipboard.
 * Every request the page makes that is not on this machine (a websocket too) is refused and remembered in `outside`,
 * every error it logs or throws in `consoleErrors` (with the page and the test it came from), and a step that cannot
 * happen fails with its locator after 8 s, well before the test's own timeout.
 */
export const openConsole = async (origin: string, seen: { outside: string[]; consoleErrors: string[] }): Promise<{ browser: Browser; page: Page }> => {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, timezoneId: 'UTC', locale: 'en-US' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return settled(route.continue());
    seen.outside.push(url);
    return settled(route.abort('blockedbyclient'));
  });
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  page.on('console', (message) => {
    if (message.type() === 'error') seen.consoleErrors.push(`${message.text()} (${message.location().url} on ${page.url()}, ${expect.getState().currentTestName})`);
  });
  page.on('pageerror', (error) => seen.consoleErrors.push(`page error: ${error.message}`));
  page.on('websocket', (socket) => {
    if (!isLocal(socket.url())) seen.outside.push(socket.url());
  });
  return { browser, page };
};

/**
 * Registered in a browser suite: a failed test leaves what the page showed (its URL, alerts and status notices on the
 * log, a screenshot in test/screenshots/failed-*.png), so a failure on CI says where it stopped.
 */
export const reportFailures = (current: () => Page | undefined) =>
  afterEach(async ({ task }) => {
    const page = current();
    if (task.result?.state !== 'fail' || !page || page.isClosed()) return;
    const shown = (await page
      .evaluate(`[...document.querySelectorAll('[role=alert], [role=status]')].map((e) => e.getAttribute('role') + ': ' + e.textContent)`)
      .catch((error: unknown) => [`(the page could not be read: ${String(error)})`])) as string[];
    console.error(`"${task.name}" failed on ${page.url()}; the page shows:\n${shown.join('\n') || '(no alert or status)'}`);
    const name = task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
    await page.screenshot({ path: join(screenshots, `failed-${name}.png`), fullPage: true, timeout: 5000 }).catch(() => undefined);
  });

/**
 * The next GraphQL request whose body holds `marker` reaches the server, and its answer is cut on the way back (the
 * connection reset), as a network failure after the server acted would. Resolves with a check, for after the test's
 * retry: the cut happened once, and the one error the browser logged for it is taken out of `consoleErrors` (which
 * the console tests expect empty).
 */
export const cutNextAnswer = async (page: Page, marker: string, consoleErrors: string[]): Promise<() => Promise<void>> => {
  let cut = 0;
  await page.route('**/graphql', async (route) => {
    if (cut === 0 && (route.request().postData() ?? '').includes(marker)) {
      cut += 1;
      await route.fetch();
      await route.abort('connectionreset');
    } else await route.continue();
  });
  return async () => {
    await page.unroute('**/graphql');
    expect(cut).toBe(1);
    const resets = consoleErrors.filter((text) => text.includes('ERR_CONNECTION_RESET'));
    expect(resets).toHaveLength(1);
    consoleErrors.splice(consoleErrors.indexOf(resets[0]!), 1);
  };
};

/** What a page reached over plain http on a LAN address has: no `crypto.randomUUID` (browsers give it secure contexts only). */
export const withoutRandomUuid = (page: Page) => page.evaluate(() => Object.defineProperty(Crypto.prototype, 'randomUUID', { value: undefined, configurable: true }));
