import { createClient } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';

/**
 * What a run spends is what its account was charged for it: every charge of its model calls (completed, cut by a
 * step timeout, aborted by a cancel) counts against `settings.budget` and shows in `WorkflowRun.cost`, which then
 * equals the ledger's charge and the run's usage (grouped by workflow), also across a restart.
 */
let h: Harness;
let upstream: FakeProvider;

const FAKE_API_KEY = 'fake-upstream-key';
const ERROR = '... on DomainError { code message }';
/** Runs here retry timed-out attempts a second apart: a generous deadline for a loaded host. */
const WAIT = { timeoutMs: 30_000 };
const RUN = 'status cost error { code message } steps { key status attempts cost error { code message } }';
/** Forty words streamed a word every 250 ms: ten seconds, so a two-second step timeout always cuts it. */
const SLOW = { slowTokenMs: 250, text: Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ') };

const gqlOk = async (query: string, variables: Record<string, unknown> = {}, key?: string) => {
  const { body } = await h.gql(query, variables, key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
};

/** Register the fake upstream as the provider of a paid `spend/slow` (1,000 per prompt token, 2,000 per completion token). */
const registerModel = async () => {
  const registered = await gqlOk(
    `mutation($url: String!, $key: String) { registerProvider(slug: "spend-fake", name: "Spend Fake", protocol: OPENAI, baseUrl: $url, apiKey: $key) { ... on Provider { slug } ${ERROR} } }`,
    { url: upstream.baseUrl, key: FAKE_API_KEY },
  );
  expect(registered.registerProvider).toEqual({ slug: 'spend-fake' });
  const published = await gqlOk(
    `mutation { publishEndpoint(provider: "spend-fake", model: "spend/slow", upstreamModel: "fake-model", prices: { prompt: 1000, completion: 2000 }, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ${ERROR} } }`,
  );
  expect(published.publishEndpoint).toEqual({ id: 'spend/slow@spend-fake' });
};

/** A fresh designer with $1 of credits (so its ledger holds only this test's charges). */
const openDesigner = async (name: string) => {
  const data = await gqlOk(`mutation($name: String!) { openAccount(name: $name, roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: data.openAccount.account.id as string, key: data.openAccount.initialKey.secret as string };
  await gqlOk(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "spend") { __typename } }`, { id: account.id });
  return account;
};

const createWorkflow = async (definition: unknown, key: string): Promise<string> => {
  const data = await gqlOk(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  expect(data.createWorkflow.__typename).toBe('Workflow');
  return data.createWorkflow.id;
};

const runWorkflow = async (id: string, key: string): Promise<string> => {
  const data = await gqlOk(`mutation($id: ID!) { runWorkflow(id: $id, input: {}) { __typename ... on WorkflowRun { id } ${ERROR} } }`, { id }, key);
  expect(data.runWorkflow.__typename).toBe('WorkflowRun');
  return data.runWorkflow.id;
};

const readRun = async (runId: string, key: string) => (await gqlOk(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, key)).workflowRun;

/** The run once it has ended; the account must never have been charged more than `budget` meanwhile. */
const endedWithin = (runId: string, key: string, budget: number) =>
  eventually(`run ${runId} to end`, async () => {
    const { balance } = await gqlOk('query { balance { settled } }', {}, key);
    expect(Number(balance.settled)).toBeLessThanOrEqual(budget);
    const run = await readRun(runId, key);
    return run.status !== 'RUNNING' && run.status !== 'QUEUED' ? run : null;
  }, WAIT);

/**
 * The account's charges once every call it made upstream is settled and in the read models: nothing reserved, and
 * `calls` generations in its usage (`upTo`: at most that many, as many as the usage's cost covers the ledger's: a call
 * cut before its first token, on a busy machine, is charged nothing). The ledger's total and the usage of the workflow,
 * in nano-dollars.
 */
const chargesOnceSettled = async (account: { key: string }, workflowId: string, calls: number, upTo = false) =>
  eventually(`${calls} settled calls`, async () => {
    const data = await gqlOk(`query { balance { reserved settled } usage(groupBy: WORKFLOW) { group requests cost } }`, {}, account.key);
    const row = (data.usage as { group: string; requests: number; cost: unknown }[]).find((r) => r.group === workflowId);
    if (Number(data.balance.reserved) !== 0 || row === undefined) return null;
    if (upTo ? row.requests > calls || Number(row.cost) !== Number(data.balance.settled) : row.requests !== calls) return null;
    return { settled: Number(data.balance.settled), usage: Number(row.cost) };
  }, WAIT);

/**
 * Resolves once the run's model step has streamed a token (its progress subscription shows it): from then on, a cut
 * call is charged for what it generated.
 */
const firstToken = (runId: string, key: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${key}` } });
    const done = (error?: unknown) => {
      void client.dispose();
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
    };
    client.subscribe<{ workflowRun: { __typename: string } }>(
      { query: 'subscription($id: ID!) { workflowRun(id: $id) { __typename } }', variables: { id: runId } },
      {
        next: (result) => {
          if (result.data?.workflowRun.__typename === 'WorkflowStepTokenEvent') done();
        },
        error: done,
        complete: () => done(new Error(`run ${runId} ended before its model step streamed a token`)),
      },
    );
  });

/**
 * A run whose one model step times out after two seconds, every attempt, until its budget refuses the next one. Two, not
 * one: every attempt must have streamed a token before it is cut (so that it is charged), also on a busy machine (a
 * CI run beside other work cut attempts before their first token, charged nothing, at one second).
 */
const timingOut = (name: string, budget: number, backoffMs: number) => ({
  name,
  trigger: { type: 'manual' },
  settings: { budget },
  steps: [{ key: 'count', type: 'action.model', input: { model: 'spend/slow', prompt: 'Count slowly, please', maxTokens: 20 }, timeoutSeconds: 2, retry: { attempts: 10, backoffMs } }],
});

const BUDGET = 100_000;

beforeAll(async () => {
  upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  upstream.setDefault(SLOW);
  h = await startHarness();
  await registerModel();
});
afterEach(() => {
  upstream.setDefault(SLOW);
});
afterAll(async () => {
  await h?.stop();
  await upstream?.close();
});

describe("a run's spend", () => {
  it('counts the charge of every timed-out attempt against the budget: an attempt the rest cannot cover is refused, and the run costs what was charged', { timeout: 60_000 }, async () => {
    const account = await openDesigner('Tess Timeout');
    const workflowId = await createWorkflow(timingOut('Slow counter', BUDGET, 50), account.key);
    const before = upstream.requests.length;
    const run = await endedWithin(await runWorkflow(workflowId, account.key), account.key, BUDGET);

    expect(run.status).toBe('FAILED');
    expect(run.error.code).toBe('BUDGET_EXCEEDED');
    const step = run.steps[0];
    // The budget stopped the retries, not the retry policy; the refused attempt called nothing.
    expect(step.attempts).toBeLessThan(10);
    // The refused attempt called nothing (nor, on a busy machine, one cut before its request went out).
    const calls = upstream.requests.length - before;
    expect(calls).toBeLessThanOrEqual(step.attempts - 1);
    expect(calls).toBeGreaterThan(1);

    const { settled, usage } = await chargesOnceSettled(account, workflowId, calls, true);
    expect(settled).toBeGreaterThan(0);
    expect(Number(run.cost)).toBe(settled);
    expect(Number(step.cost)).toBe(settled);
    expect(usage).toBe(settled);
    // Each attempt was admitted only when what was left of the budget covered its reservation's worst case.
    expect(settled).toBeLessThanOrEqual(BUDGET);
  });

  it('is derived from the run\'s recorded events: after a restart between attempts, the budget left is what was not charged', { timeout: 90_000 }, async () => {
    const account = await openDesigner('Rita Restart');
    const workflowId = await createWorkflow(timingOut('Slow counter across a restart', BUDGET, 1_000), account.key);
    const before = upstream.requests.length;
    const runId = await runWorkflow(workflowId, account.key);
    // Stopped while the step waits for its second attempt: its first, timed-out attempt is charged and recorded.
    await eventually('the first attempt to fail', async () => {
      const run = await readRun(runId, account.key);
      return run.status === 'RUNNING' && run.steps[0]?.status === 'FAILED' && run.steps[0].attempts === 1;
    }, WAIT);
    const dir = h.dataDir;
    await h.stop({ keepData: true });
    h = await startHarness({}, dir);

    const run = await endedWithin(runId, account.key, BUDGET);
    expect(run.status).toBe('FAILED');
    expect(run.error.code).toBe('BUDGET_EXCEEDED');
    const calls = upstream.requests.length - before;
    expect(calls).toBeLessThanOrEqual(run.steps[0].attempts - 1);
    const { settled, usage } = await chargesOnceSettled(account, workflowId, calls, true);
    expect(Number(run.cost)).toBe(settled);
    expect(usage).toBe(settled);
    expect(settled).toBeLessThanOrEqual(BUDGET);
  });

  it('a cancel ends the step in flight (FAILED, CANCELLED) and the run costs what its aborted call was charged, once', { timeout: 60_000 }, async () => {
    const account = await openDesigner('Cody Cancel');
    const workflowId = await createWorkflow(
      {
        name: 'Cancel me',
        trigger: { type: 'manual' },
        steps: [
          { key: 'count', type: 'action.model', input: { model: 'spend/slow', prompt: 'Count slowly, please', maxTokens: 20 } },
          { key: 'after', type: 'action.transform', input: { expression: '=1' } },
        ],
      },
      account.key,
    );
    const before = upstream.requests.length;
    const runId = await runWorkflow(workflowId, account.key);
    await firstToken(runId, account.key);
    expect(upstream.requests.length - before).toBe(1);
    const cancelled = await gqlOk(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { ${RUN} } ${ERROR} } }`, { id: runId }, account.key);
    expect(cancelled.cancelWorkflowRun).toMatchObject({ __typename: 'WorkflowRun', status: 'CANCELLED' });
    // Answered as ended: no step of it runs.
    expect(cancelled.cancelWorkflowRun.steps).toEqual([expect.objectContaining({ key: 'count', status: 'FAILED', error: expect.objectContaining({ code: 'CANCELLED' }) })]);

    const { settled, usage } = await chargesOnceSettled(account, workflowId, 1);
    expect(settled).toBeGreaterThan(0);
    // The charge lands after the cancel: the run's cost follows it.
    const run = await eventually('the run to count the aborted call', async () => {
      const read = await readRun(runId, account.key);
      return Number(read.cost) === settled ? read : null;
    }, WAIT);
    expect(run.status).toBe('CANCELLED');
    expect(run.steps).toEqual([expect.objectContaining({ key: 'count', status: 'FAILED', attempts: 1, error: expect.objectContaining({ code: 'CANCELLED' }) })]);
    expect(Number(run.steps[0].cost)).toBe(settled);
    expect(usage).toBe(settled);
    // Counted once, for good: the run's events say so after the read model settles.
    const again = await readRun(runId, account.key);
    expect(Number(again.cost)).toBe(settled);

    const audit = await gqlOk(`query($id: ID) { billingAudit(accountId: $id) { ok differences { field } } }`, { id: account.id });
    expect(audit.billingAudit).toMatchObject({ ok: true, differences: [] });
  });
});
