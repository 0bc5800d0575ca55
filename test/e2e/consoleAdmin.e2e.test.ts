import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCES, type BalanceDoc } from '../../projections/balances.js';
import { MAX_AMOUNT } from '../../src/modules/ledger/ledger.decider.js';
import { formatUsd } from '../../src/modules/ledger/money.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { chromiumPath, cutNextAnswer, openConsole, reportFailures, screenshots, seedUsage, shoot as shootPage, withoutRandomUuid } from '../support/consoleFixtures.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

/**
 * The console's provider and admin pages in a real browser (Debian's chromium, driven by playwright-core) against the
 * started app: a provider registers a provider and publishes an endpoint and sees its traffic and earnings; an admin
 * grants credits and sees the balance change, approves a proposal and runs the billing audit, which shows the
 * differences it finds. Every request stays on this machine and nothing is logged as an error. Screenshots of each
 * page in light and dark land in test/screenshots/ (git-ignored); three of them, 1200 px wide, are rewritten into
 * test/readme-screenshots/ (committed) for the README.
 */
if (!chromiumPath) console.warn('consoleAdmin.e2e: no Chromium binary (/usr/bin/chromium; `apt-get install chromium` or set CHROMIUM_PATH): the browser tests are skipped');

const USD = 1_000_000_000;
// The README's pictures are rewritten only when asked (`UPDATE_README_SCREENSHOTS=1 npx vitest run
// test/e2e/consoleAdmin.e2e.test.ts`): key hints and dates differ on every run, and a plain test run must not leave
// committed files changed. Otherwise they go beside the other screenshots, taken the same way.
const readmeScreenshots = process.env['UPDATE_README_SCREENSHOTS'] === '1' ? join(import.meta.dirname, '../readme-screenshots') : join(screenshots, 'readme');

describe.skipIf(!chromiumPath)('the provider and admin pages in Chromium', () => {
  let h: GatewayHarness;
  let browser: Browser;
  let page: Page;
  reportFailures(() => page);
  let upstream: FakeProvider;
  let ada: Account;
  let pat: Account;
  const outside: string[] = [];
  const consoleErrors: string[] = [];



  const shoot = (name: string) => shootPage(page, name);
  const cancellableOf = async (slug: string) =>
    ((await h.gql('{ providers { slug cancellable } }')).body.data.providers as { slug: string; cancellable: boolean }[]).find((p) => p.slug === slug)?.cancellable;

  /** A README picture: the top 1200 × 760 px of the page as it is now, in one theme. */
  const readmeShot = async (file: string, colorScheme: 'light' | 'dark') => {
    await page.setViewportSize({ width: 1200, height: 760 });
    await page.emulateMedia({ colorScheme });
    // Let the chart redraw for the width and the theme.
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(readmeScreenshots, file) });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 860 });
  };

  const signIn = async (key: string) => {
    // Whoever was signed in (the key lives in this tab's session storage) is signed out first, from a page of the
    // same origin that runs no console code: cleared under a live console page, a query the page sends next would go
    // without a key (a 401 the last test reports as a console error).
    await page.goto(`${h.url}/health`);
    await page.evaluate('sessionStorage.clear()');
    await page.goto(h.url);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Pages' }).waitFor();
  };

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    mkdirSync(readmeScreenshots, { recursive: true });
    h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1' });
    upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
    h.fakes.push(upstream);
    const opened = await h.gql('mutation { openAccount(name: "Ada Lovelace", email: "ada@example.com") { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } } }');
    const { account, initialKey } = opened.body.data.openAccount;
    ada = { accountId: account.id, key: initialKey.secret, keyId: initialKey.key.id };
    await h.grant(ada.accountId, 5 * USD);
    pat = await h.openAccount({ name: 'Pat Provider', roles: ['provider'] });
    await h.openAccount({ name: 'Grace Designer', roles: ['user', 'designer'] });

    ({ browser, page } = await openConsole(h.url, { outside, consoleErrors }));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await h?.stop();
  });

  it('lets a provider register a provider, publish an endpoint and see it routed, then its traffic and earnings', async () => {
    await signIn(pat.key);
    expect(await page.getByRole('link', { name: 'Provider' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await page.goto(`${h.url}/#/provider`);
    const register = page.getByRole('form', { name: 'Register a provider' });
    await register.getByLabel('Slug').fill('pat-ai');
    await register.getByLabel('Display name').fill('Pat AI');
    await register.getByLabel('Base URL').fill(upstream.baseUrl);
    await register.getByLabel('Upstream API key (stored encrypted; empty for none)').fill(FAKE_API_KEY);
    await register.getByRole('button', { name: 'Register' }).click();
    await page.getByRole('region', { name: 'Pat AI (pat-ai)' }).waitFor();

    const publish = page.getByRole('form', { name: 'Publish an endpoint' });
    await publish.getByLabel('Model id').fill('pat-ai/echo');
    await publish.getByLabel('Upstream model (empty: the same)').fill('fake-model');
    await publish.getByLabel('Prompt price (USD per M tokens)').fill('1');
    await publish.getByLabel('Completion price (USD per M tokens)').fill('2.5');
    await publish.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Published' }).textContent()).toContain('Published pat-ai/echo@pat-ai');
    const row = page.getByRole('table', { name: 'Endpoints of pat-ai' }).getByRole('row', { name: /pat-ai\/echo/ });
    await expect.poll(() => row.textContent()).toContain('$1.00 / M');
    expect(await row.textContent()).toContain('closed');
    // The catalog routes it: a user's call reaches Pat's upstream.
    const chat = await h.chat(ada.key, { model: 'pat-ai/echo', messages: [{ role: 'user', content: 'hello Pat' }], max_tokens: 10 });
    expect(chat.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);

    // Change the price, then disable and enable it from the table.
    await page.getByRole('button', { name: 'Change the price of pat-ai/echo' }).click();
    const prices = page.getByRole('form', { name: 'Prices of pat-ai/echo@pat-ai' });
    await prices.getByLabel('Prompt (USD per M tokens)').fill('0.5');
    await prices.getByRole('button', { name: 'Save prices' }).click();
    await expect.poll(() => row.textContent()).toContain('$0.50 / M');
    await page.getByRole('button', { name: 'Disable pat-ai/echo' }).click();
    await expect.poll(() => row.textContent()).toContain('disabled');
    expect((await h.chat(ada.key, { model: 'pat-ai/echo', messages: [{ role: 'user', content: 'again' }], max_tokens: 10 })).status).not.toBe(200);
    await page.getByRole('button', { name: 'Enable pat-ai/echo' }).click();
    await expect.poll(() => row.textContent()).toContain('active');

    // Traffic: one failed attempt and two answered, charged to Ada.
    upstream.script({ status: 400 });
    expect((await h.chat(ada.key, { model: 'pat-ai/echo', messages: [{ role: 'user', content: 'fail' }], max_tokens: 10 })).status).toBe(400);
    expect((await h.chat(ada.key, { model: 'pat-ai/echo', messages: [{ role: 'user', content: 'hello again' }], max_tokens: 10 })).status).toBe(200);
    const settled = (await h.settledBalance(ada.accountId)).settled;
    await page.reload();
    const earnings = page.getByTestId('provider-earnings');
    const expected = `$0.${String(settled).padStart(9, '0').replace(/0+$/, '').padEnd(2, '0')}`;
    await expect.poll(() => earnings.textContent(), { timeout: 10_000 }).toBe(expected);
    expect(await page.getByTestId('provider-requests').textContent()).toBe('3');
    const traffic = page.getByRole('table', { name: 'Traffic per endpoint' }).getByRole('row', { name: /pat-ai\/echo@pat-ai/ });
    expect(await traffic.textContent()).toContain('33.3%');
    await page.locator('.chart canvas').waitFor();
    await page.getByLabel('Show').selectOption('errorRate');
    await expect.poll(() => page.locator('.chart .u-legend').textContent()).toContain('pat-ai/echo@pat-ai');
    await shoot('provider');

    // Whether cancelling stops the provider's billing: the owner turns it off, saved on change, and the API says so.
    const cancellable = page.getByLabel('Pat AI: Stops billing when a call is cancelled');
    expect(await cancellable.isChecked()).toBe(true);
    expect(await page.getByRole('region', { name: 'Pat AI (pat-ai)' }).textContent()).toContain('still billed for the whole answer, because the provider bills it');
    await cancellable.uncheck();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'cancelled call' }).textContent()).toBe('Saved: Pat AI bills the whole answer of a cancelled call.');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('cancellable-pat-ai');
    await shoot('provider-cancellable');
    expect(await cancellableOf('pat-ai')).toBe(false);
    await page.reload();
    await expect.poll(() => cancellable.isChecked()).toBe(false);
    await page.setViewportSize({ width: 390, height: 844 });
    // Polled: the page's chart redraws for the new width a moment later.
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shoot('provider-390');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('lets an admin find an account, grant credits and see the balance change, grant a role and change the plan', async () => {
    await signIn(ADMIN_KEY);
    await page.goto(`${h.url}/#/admin`);
    const accounts = page.getByRole('table', { name: 'Accounts' });
    await accounts.getByRole('row', { name: /Ada Lovelace/ }).waitFor();
    await readmeShot('admin-accounts-light.png', 'light');
    await page.getByLabel('Search (name, email or id)').fill('ada@');
    await expect.poll(() => accounts.getByRole('row').count()).toBe(2); // the header and Ada
    const before = (await h.settledBalance(ada.accountId)).available;
    expect(await accounts.getByRole('row', { name: /Ada Lovelace/ }).textContent()).toContain(`$4.99`);
    await page.getByRole('button', { name: 'Open account Ada Lovelace' }).click();
    const panel = page.getByRole('region', { name: 'Account Ada Lovelace' });
    const credits = panel.getByRole('form', { name: 'Grant or refund credits' });
    await credits.getByLabel('Amount (USD)').fill('10');
    await credits.getByLabel('Reason').fill('support ticket 42');
    await credits.getByRole('button', { name: 'Grant credits' }).click();
    await expect.poll(() => panel.getByRole('status').textContent()).toContain('Granted $10.00');
    const after = (await h.settledBalance(ada.accountId)).available;
    expect(after).toBe(before + 10 * USD);
    const shown = `$${Math.floor(after / USD)}.${String(after % USD).padStart(9, '0').replace(/0+$/, '').padEnd(2, '0')}`;
    await expect.poll(() => panel.getByTestId('account-available').textContent()).toBe(shown);
    expect(await accounts.getByRole('row', { name: /Ada Lovelace/ }).textContent()).toContain(shown);
    // A grant whose answer never came (it reached the server, the connection failed on the way back), clicked again
    // after fixing a typo in its reason: granted once. Without crypto.randomUUID too (plain http on a LAN address).
    await withoutRandomUuid(page);
    const cutOnce = await cutNextAnswer(page, 'mutation GrantCredits', consoleErrors);
    await credits.getByLabel('Amount (USD)').fill('3');
    await credits.getByLabel('Reason').fill('suport ticket 43');
    await credits.getByRole('button', { name: 'Grant credits' }).click();
    await expect.poll(() => panel.getByRole('alert').count()).toBe(1);
    expect((await h.settledBalance(ada.accountId)).available).toBe(after + 3 * USD);
    await credits.getByLabel('Reason').fill('support ticket 43');
    await credits.getByRole('button', { name: 'Grant credits' }).click();
    await expect.poll(() => panel.getByRole('status').textContent()).toContain('Granted $3.00');
    await cutOnce();
    expect((await h.settledBalance(ada.accountId)).available).toBe(after + 3 * USD);
    // A refund beyond what was purchased is refused, and says why.
    await credits.getByLabel('Amount (USD)').fill('1');
    await credits.getByLabel('Reason').fill('goodwill');
    await credits.getByRole('button', { name: 'Refund credits' }).click();
    await expect.poll(() => panel.getByRole('alert').textContent()).toMatch(/purchased/i);

    await panel.getByLabel('Role to grant').selectOption('DESIGNER');
    await panel.getByRole('button', { name: 'Grant role' }).click();
    await expect.poll(() => accounts.getByRole('row', { name: /Ada Lovelace/ }).textContent()).toContain('designer');
    await panel.getByRole('button', { name: 'Revoke the role designer' }).click();
    await expect.poll(() => accounts.getByRole('row', { name: /Ada Lovelace/ }).textContent()).not.toContain('designer');
    await panel.getByLabel('Plan', { exact: true }).fill('pro');
    await panel.getByRole('button', { name: 'Change plan' }).click();
    await expect.poll(() => accounts.getByRole('row', { name: /Ada Lovelace/ }).textContent()).toContain('pro');
    const account = (await h.gql('query($id: ID!) { account(id: $id) { roles plan balance { granted } } }', { id: ada.accountId })).body.data.account;
    expect(account).toEqual({ roles: ['USER'], plan: 'pro', balance: { granted: 18 * USD } });
    // Every account's usage and generations: Ada's calls to Pat's endpoint among them.
    const generations = page.getByRole('table', { name: 'Latest generations of every account' });
    await expect.poll(() => generations.getByRole('row', { name: /pat-ai\/echo/ }).count()).toBeGreaterThanOrEqual(2);
    const platform = (await h.gql('{ platformUsage(groupBy: DAY) { requests } }')).body.data.platformUsage as { requests: number }[];
    expect(await page.getByTestId('platform-requests').textContent()).toBe(String(platform.reduce((a, r) => a + r.requests, 0)));
    await shoot('admin');
  });

  it("shows providers' health and lets an admin approve an endpoint waiting for approval", async () => {
    /** Pat (re)publishes its endpoint of switchyard/demo-paid, a model it does not own: a proposal. */
    const patProposes = (upstreamModel: string) =>
      h.gql(
        `mutation ($u: String!) { publishEndpoint(provider: "pat-ai", model: "switchyard/demo-paid", upstreamModel: $u, prices: { prompt: 1, completion: 1 }, contextLength: 8000, maxOutput: 500) {
        __typename ... on EndpointProposal { proposalStatus } } }`,
        { u: upstreamModel },
        pat.key,
      );
    const proposed = await patProposes('fake-model');
    expect(proposed.body.data.publishEndpoint).toEqual({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });
    await page.goto(`${h.url}/#/admin`);
    await page.reload();
    const health = page.getByRole('table', { name: 'Endpoints of pat-ai' });
    await expect.poll(() => health.getByRole('row', { name: /pat-ai\/echo/ }).textContent()).toContain('closed');
    const pending = page.getByRole('table', { name: 'Pending endpoint proposals' });
    await pending.getByRole('row', { name: /switchyard\/demo-paid@pat-ai/ }).waitFor();
    await page.getByRole('button', { name: 'Reject switchyard/demo-paid@pat-ai' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('reason');
    // The admin sees what it approves: the upstream model, where calls go, the limits.
    const row = pending.getByRole('row', { name: /switchyard\/demo-paid@pat-ai/ });
    expect(await row.textContent()).toMatch(/fake-model at http:\/\/127\.0\.0\.1:\d+\/v1.*context 8,000, max output 500/);
    // Pat swaps the upstream model while the page shows the first one: approving what was shown is refused, and the row
    // then shows the proposal as it is now, to approve that.
    const swapped = await patProposes('fake-model-2');
    expect(swapped.body.data.publishEndpoint).toEqual({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });
    await page.getByRole('button', { name: 'Approve switchyard/demo-paid@pat-ai' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('upstreamModel is now "fake-model-2" (was "fake-model")');
    await expect.poll(() => row.textContent()).toContain('fake-model-2 at');
    expect((await h.gql('{ endpointProposals(status: PENDING) { edges { node { id } } } }')).body.data.endpointProposals.edges).toEqual([{ node: { id: 'switchyard/demo-paid@pat-ai' } }]);
    // A rejection is of the version shown too: Pat swaps again while the admin writes why, and the rejection (its
    // reason about fake-model-2) is refused; the row shows the new filing.
    await page.getByLabel('Reason to reject switchyard/demo-paid@pat-ai').fill('fake-model-2 is not a model we route');
    const third = await patProposes('fake-model');
    expect(third.body.data.publishEndpoint).toEqual({ __typename: 'EndpointProposal', proposalStatus: 'PENDING' });
    await page.getByRole('button', { name: 'Reject switchyard/demo-paid@pat-ai' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('upstreamModel is now "fake-model" (was "fake-model-2")');
    await expect.poll(() => row.textContent()).toContain('fake-model at');
    await page.getByRole('button', { name: 'Approve switchyard/demo-paid@pat-ai' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Approved' }).textContent()).toContain('Approved switchyard/demo-paid@pat-ai');
    await expect.poll(() => page.getByText('Nothing waits for approval.').count()).toBe(1);
    const model = (await h.gql('{ model(id: "switchyard/demo-paid") { endpoints { id } } }')).body.data.model;
    expect(model.endpoints.map((e: { id: string }) => e.id)).toContain('switchyard/demo-paid@pat-ai');
    // Once approved, a change to it waits for the admin too (s50), shown as a change to the endpoint that routes meanwhile.
    const amended = await h.gql(
      `mutation { publishEndpoint(provider: "pat-ai", model: "switchyard/demo-paid", upstreamModel: "fake-model-3", prices: { prompt: 1, completion: 1 }, contextLength: 8000, maxOutput: 500) {
        __typename ... on EndpointProposal { proposalStatus amends } } }`,
      {},
      pat.key,
    );
    expect(amended.body.data.publishEndpoint).toEqual({ __typename: 'EndpointProposal', proposalStatus: 'PENDING', amends: true });
    await page.reload();
    await expect.poll(() => row.textContent()).toContain('(change to the published endpoint, which routes as approved meanwhile)');
    expect(await row.textContent()).toContain('fake-model-3 at');
    // What approving it changes in the endpoint as it routes: its upstream model only.
    expect(await row.textContent()).toContain('changes: upstreamModel "fake-model" → "fake-model-3"');
    await row.scrollIntoViewIfNeeded();
    await shoot('admin-amendment');
    await page.getByRole('button', { name: 'Approve switchyard/demo-paid@pat-ai' }).click();
    await expect.poll(() => page.getByText('Nothing waits for approval.').count()).toBe(1);
    // The data policy requests route by (provider.zdr, provider.data_collection), stated here by the admin.
    const policy = page.getByLabel('Pat AI: data policy');
    expect(await policy.inputValue()).toBe('');
    await policy.selectOption({ label: 'zero retention' });
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'data policy' }).textContent()).toBe("Pat AI's data policy: zero retention.");
    const providers = (await h.gql('{ providers { slug dataPolicy } }')).body.data.providers as { slug: string; dataPolicy: string | null }[];
    expect(providers.find((p) => p.slug === 'pat-ai')?.dataPolicy).toBe('ZERO_RETENTION');
    await expect.poll(() => page.getByLabel('Pat AI: data policy').inputValue()).toBe('ZERO_RETENTION');
    // The owner turned cancelling off (the provider test); the admin turns it back on.
    const cancellable = page.getByLabel('Pat AI: Stops billing when a call is cancelled');
    expect(await cancellable.isChecked()).toBe(false);
    await cancellable.check();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'when a call is cancelled' }).textContent()).toBe('Saved: Pat AI stops billing when a call is cancelled.');
    expect(await cancellableOf('pat-ai')).toBe(true);
    await expect.poll(() => cancellable.isChecked()).toBe(true);
    await page.getByRole('heading', { name: /Pat AI/ }).scrollIntoViewIfNeeded();
    await shoot('admin-providers');
    await page.setViewportSize({ width: 390, height: 844 });
    // Polled: the page's chart redraws for the new width a moment later.
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shoot('admin-providers-390');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it("lets an admin make a provider BYOK-capable: an account then stores its own key for it, refused once the admin stops it, and shown as not allowed", async () => {
    const byokOf = async (slug: string) => ((await h.gql('{ providers { slug byok } }')).body.data.providers as { slug: string; byok: boolean }[]).find((p) => p.slug === slug)?.byok;
    const adasKeys = async () => (await h.gql('{ me { byokKeys { provider hint status } } }', {}, ada.key)).body.data.me.byokKeys;
    const allow = async (allowed: boolean) =>
      expect((await h.gql('mutation($a: Boolean!) { setProviderByok(provider: "pat-ai", allowed: $a) { __typename } }', { a: allowed })).body.data.setProviderByok.__typename).toBe('Provider');
    await signIn(ADMIN_KEY);
    await page.goto(`${h.url}/#/admin`);
    // A provider a provider registered takes no account keys until an admin says so, here; saved on change.
    const byok = page.getByLabel('Pat AI: Accounts may bring their own key (BYOK)');
    await byok.waitFor();
    expect(await byok.isChecked()).toBe(false);
    expect(await byokOf('pat-ai')).toBe(false);
    await byok.check();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'own keys' }).textContent()).toBe('Saved: Pat AI takes accounts’ own keys.');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('byok-pat-ai');
    expect(await byokOf('pat-ai')).toBe(true);
    await page.getByRole('heading', { name: /Pat AI/ }).scrollIntoViewIfNeeded();
    await shoot('admin-providers-byok');

    // Ada now finds Pat AI among the providers she can bring a key for, and stores one.
    await signIn(ada.key);
    await page.goto(`${h.url}/#/keys`);
    const section = page.getByRole('region', { name: 'Provider keys (BYOK)' });
    const form = section.getByRole('form', { name: 'Add or replace a provider key' });
    await expect.poll(() => form.getByLabel('Provider').locator('option[value="pat-ai"]').count()).toBe(1);
    await form.getByLabel('Provider').selectOption('pat-ai');
    await form.getByLabel('API key').fill('sk-ada-own-pat-key-0001');
    await form.getByRole('button', { name: 'Save key' }).click();
    await expect.poll(() => section.getByRole('row', { name: /pat-ai/ }).textContent()).toContain('active');
    expect(await adasKeys()).toEqual([{ provider: 'pat-ai', hint: '…0001', status: 'ACTIVE' }]);

    // The admin stops it while Ada's page still offers it: her next key is refused at the provider field, and kept.
    await allow(false);
    await form.getByLabel('New API key (replaces yours)').fill('sk-ada-own-pat-key-0002');
    await form.getByRole('button', { name: 'Replace key' }).click();
    await expect.poll(() => form.getByRole('alert').textContent()).toMatch(/^Provider pat-ai does not take keys of its own: an admin no longer allows keys of its own for this provider .*\(VALIDATION\)$/);
    expect(await form.getByLabel('Provider').getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('byok-provider');
    expect(await form.getByLabel('New API key (replaces yours)').inputValue()).toBe('sk-ada-own-pat-key-0002');
    expect(await adasKeys()).toEqual([{ provider: 'pat-ai', hint: '…0001', status: 'PROVIDER_NOT_ALLOWED' }]);
    // Reloaded: the stored key is shown as not sent, and why, in plain words.
    await page.reload();
    const row = section.getByRole('row', { name: /pat-ai/ });
    await expect.poll(() => row.textContent()).toContain('not allowed');
    expect(await row.textContent()).toContain('An admin no longer allows keys of its own for this provider');
    expect(await form.getByLabel('Provider').locator('option[value="pat-ai"]').count()).toBe(0);
    await section.scrollIntoViewIfNeeded();
    await shoot('keys-byok-not-allowed');
  });

  it('searches every account on the server, not only the first page, and pages through the list', async () => {
    // More accounts than a page holds; the one looked for comes last by id.
    for (let i = 0; i < 55; i++) await h.gql('mutation($name: String!) { openAccount(name: $name) { __typename } }', { name: `Filler ${String(i).padStart(2, '0')}` });
    await h.gql('mutation { openAccount(name: "Zed Last", email: "zed@example.com") { __typename } }');
    await signIn(ADMIN_KEY);
    await page.goto(`${h.url}/#/admin`);
    await page.reload();
    const accounts = page.getByRole('table', { name: 'Accounts' });
    await accounts.getByRole('row', { name: /Filler/ }).first().waitFor();
    expect(await accounts.getByRole('row', { name: /Zed Last/ }).count()).toBe(0);
    await page.getByLabel('Search (name, email or id)').fill('ZED@');
    await expect.poll(() => accounts.getByRole('row').count()).toBe(2); // the header and Zed
    expect(await accounts.getByRole('row', { name: /Zed Last/ }).count()).toBe(1);
    await page.getByLabel('Search (name, email or id)').fill('');
    await expect.poll(() => accounts.getByRole('row').count()).toBe(51);
    await page.getByRole('button', { name: 'Show more accounts' }).click();
    await accounts.getByRole('row', { name: /Zed Last/ }).waitFor();
    // A search is a substring, not a pattern: regex characters match themselves.
    await page.getByLabel('Search (name, email or id)').fill('.*');
    await page.getByText('No account matches.').waitFor();
  });

  it('runs the billing audit: no differences, then the difference a tampered balance makes', async () => {
    await page.goto(`${h.url}/#/admin`);
    await page.getByRole('button', { name: 'Run billing audit' }).click();
    const report = page.getByTestId('audit-report');
    await expect.poll(() => report.textContent(), { timeout: 20_000 }).toContain('No differences');
    // The read model drifts from the ledger (as a bug or a bad restore would make it): the audit names the field.
    const balances = h.running.core.readStore.collection<BalanceDoc>(BALANCES);
    const [doc] = await balances.find({ _id: ada.accountId });
    await balances.replaceOne({ ...doc!, available: doc!.available + 123 });
    await page.getByRole('button', { name: 'Run billing audit' }).click();
    await expect.poll(() => report.textContent(), { timeout: 20_000 }).toMatch(/[1-9]\d* differences?/);
    const difference = page.getByRole('table', { name: 'Audit differences' }).getByRole('row', { name: new RegExp(`${ada.accountId}.*balances.*available`) });
    expect(await difference.textContent()).toContain(String(doc!.available + 123));
    await shoot('admin-audit');
    await balances.replaceOne(doc!);
  });

  it('sets and clears a key expiry from the Keys page', async () => {
    // Read as the admin (another caller, so not waiting for ada's write): the read model may trail the page a moment.
    const expiresAt = async () => (await h.gql('query($id: ID!) { apiKey(id: $id) { expiresAt } }', { id: ada.keyId })).body.data.apiKey.expiresAt;
    await signIn(ada.key);
    await page.goto(`${h.url}/#/keys`);
    await page.getByRole('button', { name: 'Edit default' }).click();
    const edit = page.getByRole('form', { name: 'Edit key default' });
    await edit.getByLabel('Expires (end of day, UTC; empty for never)').fill('2099-12-31');
    await edit.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('row', { name: /default/ }).textContent()).toContain('2099');
    await expect.poll(expiresAt).toBe('2099-12-31T23:59:59.999Z');
    await page.getByRole('button', { name: 'Edit default' }).click();
    await page.getByRole('form', { name: 'Edit key default' }).getByLabel('Expires (end of day, UTC; empty for never)').fill('');
    await page.getByRole('form', { name: 'Edit key default' }).getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('row', { name: /default/ }).textContent()).toContain('never');
    await expect.poll(expiresAt).toBeNull();
  });

  it("writes the README's pictures: Activity in dark and Keys in light", async () => {
    // Thirty days of usage (written straight into the read model, so after the audit above).
    await seedUsage(h, ada.accountId, ada.keyId);
    for (const [name, limit] of [
      ['ci pipeline', 25_000_000_000],
      ['staging', null],
    ] as const) {
      await h.gql('mutation($n: String!, $l: Money) { createApiKey(name: $n, limit: $l, limitReset: MONTHLY) { __typename } }', { n: name, l: limit }, ada.key);
    }
    await page.goto(`${h.url}/#/activity`);
    await page.reload();
    await page.locator('.chart .u-legend .u-series').nth(8).waitFor();
    await page.getByRole('region', { name: 'Recent generations' }).locator('tbody tr').first().waitFor();
    await readmeShot('activity-dark.png', 'dark');
    await page.goto(`${h.url}/#/keys`);
    await page.getByRole('row', { name: /ci pipeline/ }).waitFor();
    await readmeShot('keys-light.png', 'light');
    for (const file of ['activity-dark.png', 'keys-light.png', 'admin-accounts-light.png']) expect(existsSync(join(readmeScreenshots, file)), file).toBe(true);
  });

  it('takes back a failed playground turn and says why in words: no empty answer, no served-by, not sent as context next time', async () => {
    await signIn(ada.key);
    await page.goto(`${h.url}/#/playground`);
    await page.getByLabel('Model').selectOption('pat-ai/echo');
    upstream.script({ status: 400 });
    await page.getByLabel('Message').fill('this one fails');
    await page.getByRole('button', { name: 'Send' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^The generation failed: .+\. Your message is back in the box to send again\.$/);
    expect(await alert.textContent()).not.toMatch(/[{}"]/);
    expect(await page.getByRole('list', { name: 'Conversation' }).locator('li').count()).toBe(0);
    expect(await page.getByTestId('generation-done').count()).toBe(0);
    expect(await page.getByLabel('Message').inputValue()).toBe('this one fails');
    await shoot('playground-failed');
    // Sent again, it answers; the failed turn went nowhere: the upstream gets one user message.
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('generation-done').waitFor({ timeout: 20_000 });
    const last = upstream.requests.at(-1)?.body as { messages: { role: string; content: string }[] };
    expect(last.messages.map((m) => [m.role, m.content])).toEqual([['user', 'this one fails']]);
    expect(await page.getByRole('list', { name: 'Conversation' }).locator('li').count()).toBe(2);
  });

  it("refuses a grant or refund above the ledger's largest amount in dollars, before sending it", async () => {
    await signIn(ADMIN_KEY);
    await page.goto(`${h.url}/#/admin`);
    await page.getByRole('button', { name: 'Open account Ada Lovelace' }).click();
    const panel = page.getByRole('region', { name: 'Account Ada Lovelace' });
    const credits = panel.getByRole('form', { name: 'Grant or refund credits' });
    for (const [amount, button] of [['1000000.000000001', 'Grant credits'], ['99999999', 'Grant credits'], ['999999999', /^Refund/]] as const) {
      await credits.getByLabel('Amount (USD)').fill(amount);
      await credits.getByLabel('Reason').fill('too much');
      await credits.getByRole('button', { name: button }).click();
      await expect.poll(() => panel.getByRole('alert').textContent()).toBe(`The amount is at most ${formatUsd(MAX_AMOUNT)} at a time.`);
    }
  });

  it('cuts a 100-character account name short in the accounts table, whole in its tooltip, so Open stays in view', async () => {
    const long = 'Q'.repeat(100);
    await h.gql('mutation($n: String!) { openAccount(name: $n) { __typename } }', { n: long });
    const inView = (target: Locator) =>
      target.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const wrap = el.closest('.table-wrap')?.getBoundingClientRect() ?? { left: 0, right: innerWidth };
        return box.width > 0 && box.left >= Math.max(0, wrap.left) - 0.5 && box.right <= Math.min(innerWidth, wrap.right) + 0.5;
      });
    await signIn(ADMIN_KEY);
    await page.goto(`${h.url}/#/admin`);
    await page.getByLabel('Search (name, email or id)').fill('QQQQ');
    const row = page.getByRole('table', { name: 'Accounts' }).getByRole('row', { name: /QQQQ/ });
    await row.waitFor();
    expect(await row.locator('.name').getAttribute('title')).toBe(long);
    expect(await inView(row.getByRole('button', { name: /^Open account / }))).toBe(true);
    await page.setViewportSize({ width: 375, height: 860 });
    // Polled, as the other width checks: the admin page's chart redraws for the new width a moment later.
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.screenshot({ path: join(screenshots, 'long-name-admin-375.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('sent every request to this machine and logged no console error', () => {
    expect(outside).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
