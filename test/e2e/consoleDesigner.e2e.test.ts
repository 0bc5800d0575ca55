import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { chromiumPath, openConsole, reportFailures, screenshots, shoot as shootPage } from '../support/consoleFixtures.js';

/**
 * The console's designer pages (Workflows, Runs) and the Models page in a real browser (Debian's chromium, driven by
 * playwright-core) against the started app: a definition's problems shown at their path, a run followed live with
 * its model tokens, a held run cancelled, a failed run retried, the catalog filtered. Same rules as
 * console.e2e.test.ts: no request leaves the machine, no console error, every control labelled; screenshots light
 * and dark into test/screenshots/ (git-ignored).
 */
if (!chromiumPath) console.warn('consoleDesigner.e2e: no Chromium binary (/usr/bin/chromium; `apt-get install chromium` or set CHROMIUM_PATH): the browser tests are skipped');

const USD = 1_000_000_000;

const GOOD = {
  name: 'Answer a question',
  trigger: { type: 'manual' },
  steps: [
    { key: 'answer', type: 'action.model', input: { model: 'switchyard/demo', prompt: '=trigger.body.question', maxTokens: 120 } },
    { key: 'reply', type: 'action.respond', input: { answer: '=steps.answer.text' } },
  ],
};
/** Two problems: an unknown step type, and a step key that is not one. */
const BAD = {
  ...GOOD,
  steps: [
    { key: 'answer', type: 'action.nope', input: { prompt: '=trigger.body.question' } },
    { key: 'Reply!', type: 'action.respond', input: { answer: '=steps.answer.text' } },
  ],
};

/** A target that fails (503) the first call to each path and answers every later one: a run fails, its retry succeeds. */
const startFlaky = async () => {
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    req.resume();
    const first = !seen.has(req.url ?? '');
    seen.add(req.url ?? '');
    res.writeHead(first ? 503 : 200, { 'content-type': 'application/json' }).end(first ? '{"error":"busy"}' : '{"ok":"now"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
};

describe.skipIf(!chromiumPath)('the console’s workflow and model pages in Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  reportFailures(() => page);
  let flaky: { server: Server; url: string };
  let designerKey: string;
  const outside: string[] = [];
  const consoleErrors: string[] = [];

  const shoot = (name: string) => shootPage(page, name);
  const api = async (query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await h.gql(query, variables, designerKey);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };
  const createWorkflow = async (definition: unknown): Promise<string> =>
    (await api('mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { message } } }', { d: definition })).createWorkflow.id;
  const runWorkflow = async (id: string, input: unknown = null): Promise<string> =>
    (await api('mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { ... on WorkflowRun { id } } }', { id, input })).runWorkflow.id;
  const runStatus = async (id: string): Promise<string> => (await api('query($id: ID!) { workflowRun(id: $id) { status } }', { id })).workflowRun.status;
  const editor = () => page.getByLabel(/^Definition \(JSON/);

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    // Slow enough tokens that the run view shows a model step's partial answer before the step ends.
    h = await startHarness({ DEMO_TOKEN_DELAY_MS: '60' });
    flaky = await startFlaky();
    const opened = await h.gql('mutation { openAccount(name: "Grace Hopper", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }');
    designerKey = opened.body.data.openAccount.initialKey.secret;
    await h.gql('mutation($id: ID!, $a: Money!) { grantCredits(accountId: $id, amount: $a, reason: "welcome") { __typename } }', { id: opened.body.data.openAccount.account.id, a: 5 * USD });

    ({ browser, page } = await openConsole(h.url, { outside, consoleErrors }));
    // Confirmations (delete, cancel, rotate) are accepted; the test checks what each did.
    page.on('dialog', (dialog) => void dialog.accept());
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await h?.stop();
    flaky?.server.close();
  });

  it('signs a designer in and shows the Workflows, Runs and Models pages', async () => {
    await page.goto(h.url);
    await page.getByLabel('API key').fill(designerKey);
    await page.keyboard.press('Enter');
    const nav = page.getByRole('navigation', { name: 'Pages' });
    await nav.waitFor();
    for (const name of ['Workflows', 'Runs', 'Models']) expect(await nav.getByRole('link', { name }).count(), name).toBe(1);
  });

  it('shows a bad definition’s problems at their paths, marked in the text, then creates the fixed workflow', async () => {
    await page.goto(`${h.url}/#/workflows`);
    await page.getByRole('button', { name: 'New workflow' }).click();
    // Not JSON at all: placed by the browser's parser, not sent.
    await editor().fill('{ "name": "x", }');
    await page.getByRole('button', { name: 'Create workflow' }).click();
    const problems = page.getByRole('list', { name: 'Problems in the definition' });
    await expect.poll(() => problems.textContent()).toMatch(/^JSON/);

    await editor().fill(JSON.stringify(BAD, null, 2));
    await page.getByRole('button', { name: 'Create workflow' }).click();
    await expect.poll(() => problems.locator('li').count()).toBe(2);
    const items = await problems.locator('li').allTextContents();
    expect(items[0]).toMatch(/^steps\[0\]\.type \(line \d+, column \d+\): unknown step type "action\.nope"/);
    expect(items[1]).toMatch(/^steps\[1\]\.key \(line \d+, column \d+\): must match/);
    // Each problem marked on the very value the server named.
    expect(await page.locator('.code-backdrop mark').allTextContents()).toEqual(['"action.nope"', '"Reply!"']);
    expect(await editor().getAttribute('aria-invalid')).toBe('true');
    // Its button selects the value in the editor.
    await problems.getByRole('button', { name: 'Show steps[0].type in the definition' }).click();
    expect(await editor().evaluate((e: HTMLTextAreaElement) => e.value.slice(e.selectionStart, e.selectionEnd))).toBe('"action.nope"');
    await shoot('workflow-problems');
    expect((await api('{ workflows { edges { node { id } } } }')).workflows.edges).toEqual([]);

    await editor().fill(JSON.stringify(GOOD, null, 2));
    await page.getByRole('button', { name: 'Create workflow' }).click();
    const row = page.getByRole('row', { name: /Answer a question/ });
    await expect.poll(() => row.textContent()).toContain('enabled');
    expect(await row.textContent()).toContain('never run');
    expect(await problems.count()).toBe(0);
    const [saved] = (await api('{ workflows { edges { node { name version definition } } } }')).workflows.edges;
    expect(saved.node).toMatchObject({ name: 'Answer a question', version: 1, definition: { steps: [{ key: 'answer' }, { key: 'reply' }] } });
  });

  it('saves a new version, disables and enables the workflow', async () => {
    await page.getByRole('button', { name: 'Open Answer a question' }).click();
    await editor().fill(JSON.stringify({ ...GOOD, steps: GOOD.steps.map((s) => (s.key === 'answer' ? { ...s, input: { ...s.input, maxTokens: 100 } } : s)) }, null, 2));
    await page.getByRole('button', { name: 'Save new version' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Saved as version' }).textContent()).toBe('Saved as version 2.');
    await page.getByRole('button', { name: 'Disable Answer a question' }).click();
    await expect.poll(() => page.getByRole('row', { name: /Answer a question/ }).textContent()).toContain('disabled');
    expect(await page.getByRole('button', { name: 'Run now' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Enable Answer a question' }).click();
    await expect.poll(() => page.getByRole('row', { name: /Answer a question/ }).textContent()).toContain('enabled');
  });

  it('runs it now with an input and follows the run live: the model step’s tokens appear before it ends, then the output', async () => {
    await page.getByLabel(/^Input \(JSON/).fill('{ "question": "What is a switchyard?" }');
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.waitForURL(/#\/runs\/wf_[^/]+\/run_/);
    const tokens = page.getByTestId('tokens-answer');
    const status = page.getByTestId('run-status');
    // Part of the answer while the run is still going: tokens arrive over the subscription as the model writes them.
    await expect.poll(async () => ((await tokens.count()) ? (await tokens.textContent())?.length : 0)).toBeGreaterThan(0);
    expect(await status.textContent()).toBe('running');
    const partial = (await tokens.textContent()) ?? '';
    await shoot('run-live');
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe('succeeded');
    const steps = page.getByRole('list', { name: 'Steps' });
    expect(await steps.getByRole('listitem').evaluateAll((items) => items.map((i) => i.getAttribute('aria-label')))).toEqual(['Step answer: succeeded', 'Step reply: succeeded']);
    const runId = decodeURIComponent(page.url().split('/').at(-1) ?? '');
    const stored = (await api('query($id: ID!) { workflowRun(id: $id) { output steps { key output } } }', { id: runId })).workflowRun;
    // What streamed was part of the step's answer (the page may have followed the run after its first tokens); the
    // whole answer replaces it once the step is done, and the run's output shows it.
    expect(partial.length).toBeLessThan(stored.steps[0].output.text.length);
    expect(stored.steps[0].output.text).toContain(partial.slice(-20));
    await expect.poll(() => tokens.textContent()).toBe(stored.steps[0].output.text);
    await page.getByText('Input (trigger)').click();
    const shown = await page.locator('details.json[open] pre').allTextContents();
    expect(shown[0]).toContain('"question": "What is a switchyard?"');
    expect(shown[1]).toBe(JSON.stringify(stored.output, null, 2));
    await shoot('run');
    // Opened after it ended, the step shows its answer without a count of chunks it never saw streaming ("0 chunks").
    await page.reload();
    await expect.poll(() => tokens.textContent()).toBe(stored.steps[0].output.text);
    expect(await page.locator('[data-step="answer"] .tokens > span').textContent()).toBe('Model output');
    // The list shows it as the last run.
    await page.goto(`${h.url}/#/workflows`);
    await expect.poll(() => page.getByRole('row', { name: /Answer a question/ }).textContent()).toContain('succeeded');
  });

  it('shows a held run’s waiting step with its waking time and cancels it', async () => {
    const id = await createWorkflow({
      name: 'Wait an hour',
      trigger: { type: 'manual' },
      settings: { timeoutSeconds: 7200 },
      steps: [
        { key: 'wait', type: 'control.delay', input: { for: 'PT1H' } },
        { key: 'reply', type: 'action.respond', input: { woke: '=steps.wait' } },
      ],
    });
    const runId = await runWorkflow(id);
    await page.goto(`${h.url}/#/runs/${id}/${runId}`);
    const waking = page.getByTestId('waking-wait');
    await waking.waitFor();
    const wakingAt = Date.parse((await waking.locator('time').getAttribute('datetime')) ?? '');
    expect(wakingAt - Date.now()).toBeGreaterThan(55 * 60_000);
    expect(await page.getByTestId('run-status').textContent()).toBe('running');
    await shoot('run-waiting');
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await expect.poll(() => page.getByTestId('run-status').textContent()).toBe('cancelled');
    expect(await runStatus(runId)).toBe('CANCELLED');
    expect(await page.getByRole('button', { name: 'Cancel run' }).count()).toBe(0);
  });

  it('retries a failed run from the failed step and lists the runs, filtered by status', async () => {
    const id = await createWorkflow({
      name: 'Flaky call',
      trigger: { type: 'manual' },
      steps: [
        { key: 'first', type: 'action.transform', input: { expression: '=$uppercase(trigger.body.name)' } },
        { key: 'call', type: 'action.http', input: { method: 'POST', url: `${flaky.url}/once`, body: { name: '=steps.first' } } },
        { key: 'reply', type: 'action.respond', input: { ok: '=steps.call.body.ok' } },
      ],
    });
    const failedId = await runWorkflow(id, { name: 'ada' });
    await expect.poll(() => runStatus(failedId), { timeout: 15_000 }).toBe('FAILED');
    await page.goto(`${h.url}/#/runs/${id}/${failedId}`);
    await expect.poll(() => page.getByTestId('run-status').textContent()).toBe('failed');
    expect(await page.getByTestId('error-call').textContent()).toMatch(/^HTTP_503/);
    await shoot('run-failed');
    await page.getByRole('button', { name: 'Retry from the failed step' }).click();
    await page.waitForURL((url) => !url.hash.endsWith(failedId));
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 15_000 }).toBe('succeeded');
    expect(await page.getByRole('listitem', { name: 'Step first: carried over' }).textContent()).toContain(failedId);
    expect(await page.getByRole('listitem', { name: 'Step call: succeeded' }).count()).toBe(1);

    await page.getByRole('link', { name: /Runs of Flaky call/ }).click();
    const rows = page.getByRole('table', { name: 'Runs' }).locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.nth(0).textContent()).toContain('succeeded'); // newest first
    expect(await rows.nth(0).textContent()).toContain('(retry)');
    await page.getByLabel('Status').selectOption('FAILED');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.nth(0).getAttribute('data-run-id')).toBe(failedId);
    await page.getByLabel('Status').selectOption('');
    await expect.poll(() => rows.count()).toBe(2);
    await shoot('runs');
  });

  it('rotates a webhook secret, shown once with a copy button, that the webhook then accepts; deletes a workflow after confirming', async () => {
    const id = await createWorkflow({ name: 'Hook', trigger: { type: 'webhook', respond: 'sync' }, steps: [{ key: 'reply', type: 'action.respond', input: { got: '=trigger.body.n' } }] });
    await page.goto(`${h.url}/#/workflows`);
    await page.getByRole('button', { name: 'Open Hook' }).click();
    const url = await page.getByLabel('Webhook URL (POST)').inputValue();
    expect(url).toBe(`${h.url}/api/v1/workflows/${id}/webhook`);
    await page.getByRole('button', { name: 'Create secret' }).click();
    const secretBox = page.getByTestId('webhook-secret');
    await secretBox.waitFor();
    const secret = await secretBox.inputValue();
    await page.getByRole('button', { name: 'Copy the webhook secret' }).click();
    await expect.poll(() => page.evaluate('navigator.clipboard.readText()')).toBe(secret);
    const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-webhook-secret': secret }, body: '{"n":7}' });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ got: 7 });
    await shoot('workflow-webhook');
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.content()).not.toContain(secret);

    await page.getByRole('button', { name: 'Delete Hook' }).click();
    await expect.poll(() => page.getByRole('row', { name: /Hook/ }).count()).toBe(0);
    expect((await h.gql('query($id: ID!) { workflow(id: $id) { status } }', { id }, designerKey)).body.errors[0].extensions.code).toBe('NOT_FOUND');
    await shoot('workflows');
  });

  it("a new webhook secret stays with its workflow: opening another one shows that one's panel, clean", async () => {
    const first = await createWorkflow({ name: 'Hook one', trigger: { type: 'webhook', respond: 'sync' }, steps: [{ key: 'reply', type: 'action.respond', input: { n: 1 } }] });
    const second = await createWorkflow({ name: 'Hook two', trigger: { type: 'webhook', respond: 'sync' }, steps: [{ key: 'reply', type: 'action.respond', input: { n: 2 } }] });
    await page.goto(`${h.url}/#/workflows`);
    await page.reload(); // made through the API: the list reads them anew
    await page.getByRole('button', { name: 'Open Hook two' }).click();
    await page.getByRole('button', { name: 'Create secret' }).click();
    const secret = await page.getByTestId('webhook-secret').inputValue();
    await page.getByRole('button', { name: 'Open Hook one' }).click();
    await expect.poll(() => page.getByLabel('Webhook URL (POST)').inputValue()).toBe(`${h.url}/api/v1/workflows/${first}/webhook`);
    // Hook two's secret, shown under Hook one's URL, would have been taken for Hook one's.
    expect(await page.getByTestId('webhook-secret').count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    expect((await fetch(`${h.url}/api/v1/workflows/${second}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-webhook-secret': secret }, body: '{}' })).status).toBe(200);
  });

  it('browses the catalog with exact prices and filters it; a model’s endpoints show their latency, throughput and uptime', async () => {
    await page.goto(`${h.url}/#/models`);
    const rows = page.getByRole('table', { name: 'Models' }).locator('tbody tr[data-model]');
    await expect.poll(() => rows.count()).toBeGreaterThan(3);
    const all = await rows.count();
    const form = page.getByRole('form', { name: 'Filter models' });
    await form.getByLabel('Search (id or name)').fill('demo');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => rows.count()).toBeLessThan(all);
    const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-model')));
    expect(ids).toEqual(expect.arrayContaining(['switchyard/demo', 'switchyard/demo-paid']));
    for (const id of ids) expect(id).toMatch(/demo/);

    // The paid demo model's price, exactly as the catalog holds it (nano-dollars per token → dollars per million).
    const { model } = await api('{ model(id: "switchyard/demo-paid") { cheapestPrices { prompt } } }');
    const perMillion = model.cheapestPrices.prompt * 1_000_000;
    const dollars = `$${Math.floor(perMillion / USD)}.${String(perMillion % USD).padStart(9, '0').replace(/0+$/, '').padEnd(2, '0')}`;
    expect(await page.locator('tr[data-model="switchyard/demo-paid"] td').nth(1).textContent()).toBe(dollars);

    // The free model served the workflow run above: its endpoint has live stats.
    await page.getByRole('button', { name: 'Show the endpoints of switchyard/demo', exact: true }).click();
    const endpoints = page.getByRole('table', { name: /^Endpoints of / }).first();
    await endpoints.waitFor();
    expect(await endpoints.getByTestId('latency').first().textContent()).toMatch(/^[\d,]+ \/ [\d,]+ ms$/);
    expect(await endpoints.getByTestId('throughput').first().textContent()).toMatch(/^[\d.]+ tok\/s$/);
    expect(await endpoints.getByTestId('uptime').first().textContent()).toMatch(/^100% \/ 100%$/);
    await shoot('models');

    // A price ceiling below the paid model's drops it; a bad amount is refused in the page.
    await form.getByLabel('Prompt price at most (USD / 1M tokens)').fill('0');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-model')))).not.toContain('switchyard/demo-paid');
    await form.getByLabel('Prompt price at most (USD / 1M tokens)').fill('0.0001');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    expect(await form.getByRole('alert').textContent()).toMatch(/at most 3 decimals/);
    // The table of the filters applied before is not left standing as if it answered the refused ones.
    expect(await page.getByRole('table', { name: 'Models' }).count()).toBe(0);
    await form.getByLabel('Prompt price at most (USD / 1M tokens)').fill('');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-model')))).toContain('switchyard/demo-paid');
    expect(await form.getByRole('alert').count()).toBe(0);
  });

  it('answers bad addresses and non-object definitions clearly: a missing run, a workflow that is not one, JSON that is no definition', async () => {
    await page.goto(`${h.url}/#/runs/wf_0000000000000000000000/run_0000000000000000000000`);
    await page.getByRole('heading', { name: 'Run not found', level: 1 }).waitFor();
    expect(await page.getByRole('status').first().textContent()).toMatch(/^There is no run run_0+ on this account/);
    expect(await page.locator('main').textContent()).not.toMatch(/connecting|NOT_FOUND/i);
    await page.goto(`${h.url}/#/workflows`);
    await page.getByRole('button', { name: 'New workflow' }).click();
    await editor().fill('[1, 2]');
    await page.getByRole('button', { name: 'Create workflow' }).click();
    const problems = page.getByRole('list', { name: 'Problems in the definition' });
    await expect.poll(() => problems.textContent()).toMatch(/^\$ \(line 1, column 1\)/);
    expect(await page.locator('.code-backdrop mark').allTextContents()).toEqual(['[1, 2]']);
  });

  it("shows another account's run and workflow as not found: no raw error, no run connecting for ever, no workflow taken for deleted", async () => {
    const other = await h.gql('mutation { openAccount(name: "Second designer", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }');
    const otherKey: string = other.body.data.openAccount.initialKey.secret;
    const created = await h.gql('mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }', { d: { ...GOOD, name: 'PRIVATE workflow' } }, otherKey);
    const workflowId: string = created.body.data.createWorkflow.id;
    const ran = await h.gql('mutation($id: ID!) { runWorkflow(id: $id, input: { question: "PRIVATE" }) { ... on WorkflowRun { id } } }', { id: workflowId }, otherKey);
    const runId: string = ran.body.data.runWorkflow.id;
    await page.goto(`${h.url}/#/runs/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}`);
    await page.getByRole('heading', { name: 'Run not found', level: 1 }).waitFor();
    expect(await page.locator('main').textContent()).not.toMatch(/connecting|NOT_FOUND|PRIVATE/i);
    await page.goto(`${h.url}/#/runs/${encodeURIComponent(workflowId)}`);
    await page.getByRole('heading', { name: 'Workflow not found', level: 1 }).waitFor();
    expect(await page.getByRole('status').first().textContent()).toContain(`There is no workflow ${workflowId} on this account`);
    expect(await page.locator('main').textContent()).not.toMatch(/deleted|NOT_FOUND|PRIVATE/i);
    await shoot('runs-not-found');
    await page.getByRole('link', { name: 'See your runs' }).click();
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
  });

  it('shows the first page with a notice for an address with a malformed % escape, in the app and after a refresh', async () => {
    const first = async () => {
      await expect.poll(() => page.getByRole('status').filter({ hasText: 'could not be read' }).count()).toBe(1);
      expect(await page.locator('nav a[aria-current="page"]').textContent()).toBe('Activity');
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Activity');
    };
    await page.goto(`${h.url}/#/workflows`);
    await page.getByRole('heading', { name: 'Workflows', level: 1 }).waitFor();
    await page.evaluate(() => (location.hash = '#/runs/%zz'));
    await first();
    await page.getByRole('link', { name: 'Runs' }).click();
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
    expect(await page.getByRole('status').filter({ hasText: 'could not be read' }).count()).toBe(0);
    for (const hash of ['#/runs/%zz', '#/%zz', '#/runs/wf_1/%E0%A4%A']) {
      await page.goto(`${h.url}/${hash}`);
      await page.reload();
      await first();
    }
  });

  it('cuts a 100-character workflow name short in the list, whole in its tooltip, so Delete stays in view', async () => {
    const long = 'Summarise_incoming_support_tickets_'.repeat(3).slice(0, 100);
    await createWorkflow({ ...GOOD, name: long });
    const inView = (target: Locator) =>
      target.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const wrap = el.closest('.table-wrap')?.getBoundingClientRect() ?? { left: 0, right: innerWidth };
        return box.width > 0 && box.left >= Math.max(0, wrap.left) - 0.5 && box.right <= Math.min(innerWidth, wrap.right) + 0.5;
      });
    await page.goto(`${h.url}/#/workflows`);
    const row = page.getByRole('table', { name: 'Your workflows' }).getByRole('row', { name: /Summarise_incoming/ });
    await row.waitFor();
    expect(await row.locator('.name').getAttribute('title')).toBe(long);
    expect(await inView(row.getByRole('button', { name: /^Delete / }))).toBe(true);
    await page.screenshot({ path: join(screenshots, 'long-name-workflows-1280.png'), fullPage: true });
  });

  it('sent every request to this machine and logged no console error', () => {
    expect(outside).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('keeps the console far below 250 KB of JavaScript and CSS, gzipped', async () => {
    const html = await (await fetch(`${h.url}/`)).text();
    let total = 0;
    for (const [asset] of html.matchAll(/\/assets\/[\w.-]+/g)) total += gzipSync(Buffer.from(await (await fetch(`${h.url}${asset}`)).arrayBuffer()), { level: 9 }).length;
    console.log(`console first load with the designer and model pages: ${(total / 1024).toFixed(1)} KiB gzipped`);
    expect(total).toBeLessThanOrEqual(100 * 1024);
  });
});
