import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { chromiumPath, openConsole, reportFailures, screenshots, shoot as shootPage } from '../support/consoleFixtures.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import type { FakeProvider } from '../support/fakeProviders.js';

/**
 * The console in a real browser (Debian's chromium, driven by playwright-core) against a server holding more than one
 * page of everything and odd data any account can make: more than 100 models, 35 proposals, 90 keys, prices past
 * 2^53 nano-dollars per million tokens, traffic on 10 endpoints, long unbroken words, a pasted key with an invisible
 * character, an account without roles. Screenshots land in test/screenshots/ (git-ignored).
 */
if (!chromiumPath) console.warn('consoleCrowded.e2e: no Chromium binary (/usr/bin/chromium; `apt-get install chromium` or set CHROMIUM_PATH): the browser tests are skipped');

const USD = 1_000_000_000;
const PUBLISH = `mutation ($provider: String!, $model: String!, $prices: PricesInput!, $description: String) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: $prices, contextLength: 16000, maxOutput: 1000, modelDescription: $description) {
    __typename ... on Endpoint { id } ... on EndpointProposal { id proposalStatus } ... on DomainError { code message } } }`;

describe.skipIf(!chromiumPath)('the console with more than a page of everything', () => {
  let h: GatewayHarness;
  let browser: Browser;
  let page: Page;
  reportFailures(() => page);
  let upstream: FakeProvider;
  let ada: Account;
  let pat: Account;
  const outside: string[] = [];
  const consoleErrors: string[] = [];
  // The modules' clock, moved past a minute to issue more than 50 keys to one account (its rate limit).
  let skew = 0;

  const shoot = (name: string) => shootPage(page, name);
  const publish = async (key: string, provider: string, model: string, prices: { prompt: number; completion: number }, description?: string) =>
    (await h.gqlOk(PUBLISH, { provider, model, prices, description: description ?? null }, key)).publishEndpoint as { __typename: string; id: string };
  const signIn = async (key: string) => {
    await page.goto(`${h.url}/health`);
    await page.evaluate('sessionStorage.clear()');
    await page.goto(h.url);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Pages' }).waitFor();
  };
  const scrollWidth = () => page.evaluate(() => document.documentElement.scrollWidth);

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    h = await startGatewayHarness({}, { now: () => new Date(Date.now() + skew) });
    upstream = await h.fakeEndpoint({ protocol: 'openai', slug: 'bulk-a', model: 'bulk-a/m-000', prices: { prompt: 1, completion: 1 } });
    ada = await h.openAccount({ name: 'Ada', roles: ['user'], credits: 20 * USD });
    pat = await h.openAccount({ name: 'Pat', roles: ['provider'] });
    ({ browser, page } = await openConsole(h.url, { outside, consoleErrors }));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await h?.stop();
  });

  it('the Playground offers every text model of a catalog of more than 100, shows the model it preselects, and sends the one shown', async () => {
    // Two providers of 51 models each, whose ids sort before switchyard/…: the first page of the catalog is theirs.
    await h.fakeEndpoint({ protocol: 'openai', slug: 'bulk-b', model: 'bulk-b/m-000', prices: { prompt: 1, completion: 1 }, reuse: upstream });
    for (const provider of ['bulk-a', 'bulk-b']) {
      for (let i = 1; i <= 50; i++) expect((await publish(ADMIN_KEY, provider, `${provider}/m-${String(i).padStart(3, '0')}`, { prompt: 1, completion: 1 })).__typename).toBe('Endpoint');
    }
    const first = (await h.gqlOk('{ models(first: 100) { edges { node { id } } pageInfo { hasNextPage } } }')).models;
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect(first.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain('switchyard/demo');

    await signIn(ada.key);
    await page.goto(`${h.url}/#/playground`);
    const picker = page.getByLabel('Model');
    const options = () => picker.locator('option').evaluateAll((list) => list.map((o) => (o as HTMLOptionElement).value));
    await expect.poll(options).toContain('switchyard/demo');
    expect(await options()).toEqual(expect.arrayContaining(['bulk-a/m-000', 'bulk-b/m-050']));
    // The model preselected is one the picker holds, shown as selected.
    expect(await picker.inputValue()).toBe('switchyard/demo');
    expect(await picker.evaluate((select) => (select as HTMLSelectElement).selectedOptions[0]?.textContent)).toContain('(switchyard/demo)');
    await page.getByLabel('Message').fill('hello');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('generation-done').textContent()).toContain('switchyard/demo on');
    // One of the second page, chosen: the call goes to it.
    await picker.selectOption('bulk-b/m-050');
    await page.getByLabel('Message').fill('and you?');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('generation-done').textContent()).toContain('bulk-b/m-050 on bulk-b');
    await shoot('crowded-playground');
    // The default model's suggestions on the Keys page hold the second page too.
    await page.goto(`${h.url}/#/keys`);
    const suggested = () => page.evaluate(() => [...document.querySelectorAll<HTMLOptionElement>('#default-model-ids option')].map((o) => o.value));
    await expect.poll(suggested).toContain('bulk-b/m-050');
    expect(await suggested()).toContain('switchyard/demo');
  });

  it('shows per-million prices exactly past 2^53 (no float digits), and the Price form saves the shown price back unchanged', async () => {
    const prompt = 123_456_789_012_345;
    const completion = Number.MAX_SAFE_INTEGER; // the API's largest Money: 9007199254740991
    await h.fakeEndpoint({ protocol: 'openai', slug: 'pat-ai', model: 'pat-ai/huge', prices: { prompt, completion }, owner: pat.key, reuse: upstream });
    await signIn(pat.key);
    await page.goto(`${h.url}/#/provider`);
    const row = page.getByRole('table', { name: 'Endpoints of pat-ai' }).getByRole('row', { name: /pat-ai\/huge/ });
    await expect.poll(() => row.locator('td.num').nth(0).textContent()).toBe('$123,456,789,012.345 / M');
    expect(await row.locator('td.num').nth(1).textContent()).toBe('$9,007,199,254,740.991 / M');

    await page.getByRole('button', { name: 'Change the price of pat-ai/huge' }).click();
    const form = page.getByRole('form', { name: 'Prices of pat-ai/huge@pat-ai' });
    expect(await form.getByLabel('Prompt (USD per M tokens)').inputValue()).toBe('123456789012.345');
    expect(await form.getByLabel('Completion (USD per M tokens)').inputValue()).toBe('9007199254740.991');
    // A nano-dollar per token more than the API carries is refused in the page, saying the largest.
    await form.getByLabel('Completion (USD per M tokens)').fill('9007199254740.992');
    await form.getByRole('button', { name: 'Save prices' }).click();
    expect(await form.getByRole('alert').textContent()).toContain('at most $9,007,199,254,740.991 per million tokens');
    // Saved as shown, with the prompt price a nano-dollar per token up.
    await form.getByLabel('Completion (USD per M tokens)').fill('9007199254740.991');
    await form.getByLabel('Prompt (USD per M tokens)').fill('123456789012.346');
    await form.getByRole('button', { name: 'Save prices' }).click();
    await expect.poll(() => row.locator('td.num').nth(0).textContent()).toBe('$123,456,789,012.346 / M');
    const saved = (await h.gqlOk('{ model(id: "pat-ai/huge") { endpoints { prices { prompt completion } } } }')).model.endpoints[0].prices;
    expect(saved).toEqual({ prompt: prompt + 1, completion });
    await shoot('crowded-provider-prices');

    await page.goto(`${h.url}/#/models`);
    await page.getByLabel('Search (id or name)').fill('huge');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const model = page.locator('tr[data-model="pat-ai/huge"] td');
    await expect.poll(() => model.nth(1).textContent()).toBe('$123,456,789,012.346');
    expect(await model.nth(2).textContent()).toBe('$9,007,199,254,740.991');
  });

  it('signs in with a key pasted with an invisible character around it; refuses one holding a character no key has, saying so', async () => {
    for (const pasted of [`${ada.key}\u200B`, `\uFEFF${ada.key}\u200E `]) {
      await page.goto(`${h.url}/health`);
      await page.evaluate('sessionStorage.clear()');
      await page.goto(h.url);
      await page.getByLabel('API key').fill(pasted);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('navigation', { name: 'Pages' }).waitFor();
      expect(await page.evaluate('sessionStorage.getItem("switchyard.apiKey")')).toBe(ada.key);
    }
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(`${ada.key.slice(0, 12)}é${ada.key.slice(12)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = await page.getByRole('alert').textContent();
    expect(alert).toContain('This key holds a character no API key has (U+00E9, at position 13)');
    expect(alert).not.toContain('cannot be reached');
    await shoot('crowded-signin-bad-character');
  });

  it('shows an account without roles its balance, activity and the catalog, read-only, and says why there is no more', async () => {
    const nora = await h.openAccount({ name: 'Nora', roles: [] });
    await h.grant(nora.accountId, 1_234_500);
    await signIn(nora.key);
    const links = await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allTextContents();
    expect(links).toEqual(['Activity', 'Credits', 'Models']);
    expect(await page.locator('.who').textContent()).toContain('(no role)');
    expect(await page.getByRole('status').filter({ hasText: 'no role' }).textContent()).toContain('ask an admin of this server to grant it the user role');
    await page.getByRole('table', { name: 'Recent generations' }).waitFor();
    expect(await page.getByLabel('Keep prompts and answers (input & output logging)').isDisabled()).toBe(true);
    await page.goto(`${h.url}/#/credits`);
    await expect.poll(() => page.getByTestId('balance').textContent()).toBe('$0.0012345');
    expect(await page.getByRole('heading', { name: 'Buy credits' }).count()).toBe(0);
    await page.goto(`${h.url}/#/models`);
    await expect.poll(() => page.locator('tr[data-model]').count()).toBe(50);
    expect(await page.getByRole('alert').count()).toBe(0);
    await shoot('crowded-no-role');
  });

  it('tells a key with a spending limit, up front, why it cannot manage keys, buy credits or change settings, and shows what it reads', async () => {
    const lou = await h.openAccount({ name: 'Lou', roles: ['user', 'provider'], credits: 3 * USD });
    const created = (await h.gqlOk('mutation { createApiKey(name: "capped", limit: 1000000000) { ... on CreatedApiKey { secret } } }', {}, lou.key)).createApiKey as { secret: string };
    const capped = created.secret;
    await signIn(capped);
    // The pages are what the key may do: the account's provider work needs a full key (its page would be refused).
    const links = await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allTextContents();
    expect(links).toEqual(['Activity', 'Keys', 'Credits', 'Playground', 'Models']);
    const said = (text: string) => page.getByRole('status').filter({ hasText: 'This key has a spending limit or was issued to an app' }).filter({ hasText: text });

    await page.goto(`${h.url}/#/keys`);
    const keys = page.getByRole('table', { name: 'Your keys' });
    await keys.getByRole('row', { name: /capped/ }).waitFor();
    await expect.poll(() => said('sign in with a key of this account without a limit').count()).toBe(1);
    // The keys and their spending stay in view; nothing offers to change them.
    expect(await keys.locator('tbody tr').count()).toBe(2);
    expect(await keys.getByRole('row', { name: /capped/ }).textContent()).toContain('(this console)');
    expect(await page.getByRole('button', { name: 'Create key' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^(Edit|Disable|Revoke) / }).count()).toBe(0);
    await page.getByTestId('default-model').waitFor();
    expect(await page.getByRole('form', { name: 'Set the default model' }).count()).toBe(0);
    expect(await page.getByRole('form', { name: 'Set the provider lists' }).count()).toBe(0);
    expect(await page.getByRole('form', { name: 'Add or replace a provider key' }).count()).toBe(0);
    expect(await page.getByRole('alert').count()).toBe(0);
    await shoot('crowded-restricted-keys');

    await page.goto(`${h.url}/#/credits`);
    await expect.poll(() => page.getByTestId('balance').textContent()).toBe('$3.00');
    await expect.poll(() => said('buy credits').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Buy credits' }).count()).toBe(0);
    await page.getByRole('table', { name: 'Ledger entries' }).waitFor();
    await shoot('crowded-restricted-credits');

    await page.goto(`${h.url}/#/activity`);
    await page.getByRole('table', { name: 'Recent generations' }).waitFor();
    await expect.poll(() => said('content logging').count()).toBe(1);
    expect(await page.getByLabel('Keep prompts and answers (input & output logging)').isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Delete kept prompts' }).isDisabled()).toBe(true);
    expect(await page.getByRole('alert').count()).toBe(0);
    // An app asking this key for a key of the account is told no before anything is asked.
    await page.goto(`${h.url}/auth?callback_url=${encodeURIComponent('https://notes.example/cb')}&code_challenge=${'c'.repeat(43)}&code_challenge_method=S256`);
    await expect.poll(() => said('give the app at https://notes.example a key').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Allow' }).count()).toBe(0);
    await shoot('crowded-restricted-authorize');
    // What the console reads: the calling key's own standing, beside its account's roles.
    expect((await h.gqlOk('{ currentKey { restricted roles } }', {}, capped)).currentKey).toEqual({ restricted: true, roles: ['USER'] });
    expect((await h.gqlOk('{ currentKey { restricted roles } }', {}, lou.key)).currentKey).toEqual({ restricted: false, roles: expect.arrayContaining(['USER', 'PROVIDER']) });
  });

  it("pages through an admin's pending proposals: the oldest of 35 can be seen and approved", async () => {
    for (let i = 0; i < 35; i++) {
      const proposed = await publish(pat.key, 'pat-ai', `openai/prop-${String(i).padStart(3, '0')}`, { prompt: 1, completion: 2 });
      expect(proposed.__typename).toBe('EndpointProposal');
    }
    await signIn(ADMIN_KEY);
    await page.goto(`${h.url}/#/admin`);
    const pending = page.getByRole('table', { name: 'Pending endpoint proposals' });
    await pending.getByRole('row', { name: /openai\/prop-034@pat-ai/ }).waitFor();
    expect(await pending.locator('tbody tr').count()).toBe(30);
    expect(await page.getByText('older proposals wait too').count()).toBe(1);
    await page.getByRole('button', { name: 'Older' }).click();
    await pending.getByRole('row', { name: /openai\/prop-000@pat-ai/ }).waitFor();
    expect(await pending.locator('tbody tr').count()).toBe(5);
    await page.getByRole('button', { name: 'Approve openai/prop-000@pat-ai' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Approved' }).textContent()).toContain('Approved openai/prop-000@pat-ai');
    await expect.poll(() => pending.locator('tbody tr').count()).toBe(4);
    await shoot('crowded-admin-proposals');
  });

  it("pages through a provider's own 55 proposals, newest first: the page says older ones exist, and the oldest can be seen", async () => {
    // The 35 above (the oldest approved since) and 20 more: past the 50 a page holds.
    for (let i = 35; i < 55; i++) {
      const proposed = await publish(pat.key, 'pat-ai', `openai/prop-${String(i).padStart(3, '0')}`, { prompt: 1, completion: 2 });
      expect(proposed.__typename).toBe('EndpointProposal');
    }
    await signIn(pat.key);
    await page.goto(`${h.url}/#/provider`);
    const mine = page.getByRole('table', { name: 'Your endpoint proposals' });
    await mine.getByRole('row', { name: /openai\/prop-054@pat-ai/ }).waitFor();
    expect(await mine.locator('tbody tr').count()).toBe(50);
    expect(await page.getByText('older proposals follow').count()).toBe(1);
    expect(await mine.getByRole('row', { name: /openai\/prop-000@pat-ai/ }).count()).toBe(0);
    await page.getByRole('button', { name: 'Older' }).click();
    const oldest = mine.getByRole('row', { name: /openai\/prop-000@pat-ai/ });
    await oldest.waitFor();
    expect(await mine.locator('tbody tr').count()).toBe(5);
    expect(await oldest.textContent()).toContain('approved');
    expect(await page.getByText('older proposals follow').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await shoot('crowded-provider-proposals');
    await page.getByRole('button', { name: 'Newer' }).click();
    await mine.getByRole('row', { name: /openai\/prop-054@pat-ai/ }).waitFor();
    expect(await mine.locator('tbody tr').count()).toBe(50);
  });

  it('names calls on every key of an account with 90 keys in Activity, whose Key filter offers the newest', async () => {
    const create = async (name: string) =>
      (await h.gqlOk(`mutation ($name: String!) { createApiKey(name: $name) { ... on CreatedApiKey { secret key { id } } } }`, { name }, ada.key)).createApiKey as { secret: string; key: { id: string } };
    let newest = { secret: '', key: { id: '' } };
    for (let i = 1; i <= 90; i++) {
      if (i % 50 === 0) skew += 61_000; // past the minute's 50 keys
      newest = await create(i === 90 ? 'the newest key' : `bulk key ${i}`);
    }
    const chat = await h.chat(newest.secret, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'on the newest key' }], max_tokens: 5 });
    expect(chat.status).toBe(200);
    await h.settledBalance(ada.accountId);

    await signIn(ada.key);
    await page.goto(`${h.url}/#/activity`);
    const recent = page.getByRole('table', { name: 'Recent generations' });
    await expect.poll(() => recent.locator('tbody tr').first().textContent()).toContain('the newest key');
    expect(await recent.textContent()).not.toContain(newest.key.id);
    const keys = await page.getByLabel('Key', { exact: true }).locator('option').allTextContents();
    expect(keys).toContain('the newest key');
    expect(keys).toHaveLength(1 + 91); // "any", the initial key and the 90
  });

  it('lists keys newest first: a key created on the page shows at the top with its actions; older keys on demand', async () => {
    await page.goto(`${h.url}/#/keys`);
    const table = page.getByRole('table', { name: 'Your keys' });
    await table.getByRole('row', { name: /the newest key/ }).waitFor();
    expect(await table.locator('tbody tr').count()).toBe(50);
    expect(await page.getByText('Showing the newest 50 keys').count()).toBe(1);
    await page.getByLabel('Name').fill('made here');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('Secret of the new key').waitFor();
    await page.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => table.locator('tbody tr').first().textContent()).toContain('made here');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Revoke made here' }).click();
    await expect.poll(() => table.getByRole('row', { name: /made here/ }).textContent()).toContain('revoked');
    await page.getByRole('button', { name: 'Show older keys' }).click();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(92);
    expect(await table.getByRole('row', { name: /bulk key 1(?!\d)/ }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Show older keys' }).count()).toBe(0);
    // Acting on an older key keeps every row shown, that one up to date.
    await page.getByRole('button', { name: 'Disable bulk key 1', exact: true }).click();
    await expect.poll(() => table.getByRole('row', { name: /bulk key 1(?!\d)/ }).textContent()).toContain('disabled');
    expect(await table.locator('tbody tr').count()).toBe(92);
    await shoot('crowded-keys');
  });

  it('wraps long unbroken words in chat messages and model descriptions: the page never scrolls sideways', async () => {
    const word = `https://example.com/${'a1B2c3'.repeat(80)}`;
    upstream.setDefault({ text: `See ${word} for more.` });
    expect((await publish(ADMIN_KEY, 'bulk-a', 'bulk-a/wordy', { prompt: 1, completion: 1 }, `Read ${'x'.repeat(300)} first.`)).__typename).toBe('Endpoint');
    await signIn(ada.key);
    await page.goto(`${h.url}/#/playground`);
    await expect.poll(() => page.getByLabel('Model').locator('option').evaluateAll((list) => list.map((o) => (o as HTMLOptionElement).value))).toContain('bulk-a/m-000');
    await page.getByLabel('Model').selectOption('bulk-a/m-000');
    await page.getByLabel('Message').fill(`What is ${word}?`);
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => page.getByTestId('generation-done').textContent()).toContain('bulk-a/m-000');
    expect(await page.getByRole('list', { name: 'Conversation' }).textContent()).toContain(`See ${word}`);
    expect(await scrollWidth()).toBeLessThanOrEqual(1280);
    await shoot('crowded-long-word-playground');

    await page.goto(`${h.url}/#/models`);
    await page.getByLabel('Search (id or name)').fill('wordy');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByRole('button', { name: 'Show the endpoints of bulk-a/wordy' }).click();
    await page.getByRole('table', { name: /^Endpoints of / }).waitFor();
    expect(await scrollWidth()).toBeLessThanOrEqual(1280);
    // The prices stay in view.
    const price = await page.locator('tr[data-model="bulk-a/wordy"] td').nth(1).boundingBox();
    expect((price?.x ?? Infinity) + (price?.width ?? 0)).toBeLessThanOrEqual(1280);
    await shoot('crowded-long-word-models');
  });

  it("draws a provider's traffic on 10 endpoints as the 7 busiest and one line for the other 3", async () => {
    for (let i = 0; i < 10; i++) {
      const model = `pat-ai/e-${i}`;
      expect((await publish(pat.key, 'pat-ai', model, { prompt: 1, completion: 1 })).__typename).toBe('Endpoint');
      // The busiest first: endpoint i answers 10 − i calls.
      for (let n = 0; n < 10 - i; n++) expect((await h.chat(ada.key, { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 })).status).toBe(200);
    }
    await h.settledBalance(ada.accountId);
    await signIn(pat.key);
    await page.goto(`${h.url}/#/provider`);
    await page.locator('.chart canvas').waitFor();
    await page.getByLabel('Show').selectOption('requests');
    const legend = page.locator('.chart .u-legend .u-series');
    // The x axis's entry, then 8 lines.
    await expect.poll(() => legend.count()).toBe(9);
    const labels = await legend.locator('.u-label').allTextContents();
    expect(labels.slice(1, 8)).toEqual(Array.from({ length: 7 }, (_, i) => `pat-ai/e-${i}@pat-ai`));
    expect(labels[8]).toBe('other (3)');
    // The table still lists each endpoint.
    expect(await page.getByRole('table', { name: 'Traffic per endpoint' }).locator('tbody tr').count()).toBe(10);
    await shoot('crowded-provider-chart');
  });

  it('sends GraphQL answers with Cache-Control: no-store', async () => {
    const post = await fetch(`${h.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ada.key}` }, body: JSON.stringify({ query: '{ me { id } }' }) });
    expect(post.status).toBe(200);
    expect(post.headers.get('cache-control')).toBe('no-store');
    const get = await fetch(`${h.url}/graphql?query=${encodeURIComponent('{ balance { available } }')}`, { headers: { accept: 'application/json', authorization: `Bearer ${ada.key}` } });
    expect(get.status).toBe(200);
    expect(get.headers.get('cache-control')).toBe('no-store');
  });

  it('sent every request to this machine and logged no console error', () => {
    expect(outside).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
