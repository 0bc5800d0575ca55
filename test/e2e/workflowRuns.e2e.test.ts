import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { createLogger } from '../../src/logger.js';
import { failNextStepOutcomeFlag } from '../support/failingRunAppends.js';
import { spawnedSwitchyards } from '../support/spawnedServer.js';

/** Manual workflow runs over GraphQL on the started app: the executor drives them to their end. */
let h: Harness;
let designer: { id: string; key: string };
let stranger: { id: string; key: string };

const RUN = 'id workflowId version status output error { code message } cost startedAt endedAt steps { key status attempts output error { code message } }';
const ERROR = '... on DomainError { code message }';

type Gql = (query: string, variables?: Record<string, unknown>, key?: string | null) => Promise<{ status: number; body: any }>;

const open = async (gql: Gql, name: string, role?: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  if (role) await gql('mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename } }', { id: account.id, role });
  return account;
};

const createWorkflow = async (gql: Gql, definition: unknown, key: string): Promise<string> => {
  const { body } = await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  expect(body.data.createWorkflow.__typename, JSON.stringify(body)).toBe('Workflow');
  return body.data.createWorkflow.id;
};

const runWorkflow = (gql: Gql, id: string, input: unknown, key: string | null) =>
  gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { __typename ... on WorkflowRun { ${RUN} } ${ERROR} } }`, { id, input }, key);

/** Read the run until it has ended (the executor runs in the background). */
const finished = async (gql: Gql, runId: string, key: string, timeoutMs = 20_000) => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, key);
    expect(body.errors).toBeUndefined();
    const run = body.data.workflowRun;
    if (run.status !== 'RUNNING' && run.status !== 'QUEUED') return run;
    if (Date.now() > until) throw new Error(`run ${runId} still ${run.status}: ${JSON.stringify(run)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

const greeter = {
  name: 'Greet',
  trigger: { type: 'manual' },
  steps: [
    { key: 'shout', type: 'action.transform', input: { expression: '=$uppercase(trigger.body.name)' } },
    { key: 'check', type: 'control.filter', input: { condition: '=$length(steps.shout) > 0' } },
    { key: 'reply', type: 'action.respond', input: { greeting: '="Hello, " & steps.shout', literal: 42 } },
  ],
};

/** A transform whose expression never ends: a recursive function in tail position (jsonata trampolines it). */
const runaway = (key = 'spin') => ({ key, type: 'action.transform', input: { expression: '=($f := function($x) { $f($x + 1) }; $f(0))' } });

beforeAll(async () => {
  h = await startHarness();
  designer = await open(h.gql, 'Dana Designer', 'DESIGNER');
  stranger = await open(h.gql, 'Sam Stranger', 'DESIGNER');
});
afterAll(async () => {
  await h.stop();
});

describe('manual workflow runs over GraphQL', () => {
  it('runs transform → filter → respond to SUCCEEDED, with the respond step’s input as the output', async () => {
    const id = await createWorkflow(h.gql, greeter, designer.key);
    const { body } = await runWorkflow(h.gql, id, { name: 'Ada' }, designer.key);
    const started = body.data.runWorkflow;
    expect(started).toMatchObject({ __typename: 'WorkflowRun', workflowId: id, version: 1, status: 'RUNNING', endedAt: null });
    expect(started.id).toMatch(/^run_/);

    const run = await finished(h.gql, started.id, designer.key);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.output).toEqual({ greeting: 'Hello, ADA', literal: 42 });
    expect(run.error).toBeNull();
    expect(run.endedAt).not.toBeNull();
    expect(run.steps).toEqual([
      { key: 'shout', status: 'SUCCEEDED', attempts: 1, output: 'ADA', error: null },
      { key: 'check', status: 'SUCCEEDED', attempts: 1, output: { passed: true }, error: null },
      { key: 'reply', status: 'SUCCEEDED', attempts: 1, output: { greeting: 'Hello, ADA', literal: 42 }, error: null },
    ]);

    // Each step shows the input it ran on (its expressions evaluated) and how long it took.
    const detail = await h.gql('query($id: ID!) { workflowRun(id: $id) { steps { key input durationMs } } }', { id: started.id }, designer.key);
    const steps = detail.body.data.workflowRun.steps as { key: string; input: unknown; durationMs: number }[];
    expect(steps.map(({ key, input }) => ({ key, input }))).toEqual([
      { key: 'shout', input: { expression: 'ADA' } },
      { key: 'check', input: { condition: true } },
      { key: 'reply', input: { greeting: 'Hello, ADA', literal: 42 } },
    ]);
    for (const step of steps) expect(step.durationMs).toBeGreaterThanOrEqual(0);

    // Any key of the account lists the workflow's runs, by status too.
    const list = await h.gql(
      'query($id: ID!) { all: workflowRuns(workflowId: $id) { edges { node { id status } } } failed: workflowRuns(workflowId: $id, status: FAILED) { edges { node { id } } } }',
      { id },
      designer.key,
    );
    expect(list.body.errors).toBeUndefined();
    expect(list.body.data.all.edges).toEqual([{ node: { id: started.id, status: 'SUCCEEDED' } }]);
    expect(list.body.data.failed.edges).toEqual([]);
  });

  it('stops a run whose filter does not hold as FILTERED, without running the steps after it', async () => {
    const id = await createWorkflow(h.gql, greeter, designer.key);
    const { body } = await runWorkflow(h.gql, id, { name: '' }, designer.key);
    const run = await finished(h.gql, body.data.runWorkflow.id, designer.key);
    expect(run.status).toBe('FILTERED');
    expect(run.output).toBeNull();
    expect(run.steps.map((s: { key: string; status: string }) => [s.key, s.status])).toEqual([
      ['shout', 'SUCCEEDED'],
      ['check', 'SUCCEEDED'],
    ]);
    expect(run.steps[1].output).toEqual({ passed: false });
  });

  it('skips a step whose `if` is false and goes on', async () => {
    const id = await createWorkflow(
      h.gql,
      {
        name: 'Maybe',
        trigger: { type: 'manual' },
        steps: [
          { key: 'never', type: 'action.transform', if: '=trigger.body.go = true', input: { expression: '="ran"' } },
          { key: 'reply', type: 'action.respond', input: { skipped: '=$exists(steps.never) = false' } },
        ],
      },
      designer.key,
    );
    const run = await finished(h.gql, (await runWorkflow(h.gql, id, { go: false }, designer.key)).body.data.runWorkflow.id, designer.key);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.steps[0]).toMatchObject({ key: 'never', status: 'SKIPPED', attempts: 0 });
    expect(run.output).toEqual({ skipped: true });
  });

  it('a branch chooses the first path whose condition holds: the other paths’ steps are SKIPPED (path), shared steps run', async () => {
    const id = await createWorkflow(
      h.gql,
      {
        name: 'Branching',
        trigger: { type: 'manual' },
        steps: [
          { key: 'size', type: 'control.branch', input: { paths: [{ name: 'short', if: '=$length(trigger.body.text) < 5' }, { name: 'medium', if: '=$length(trigger.body.text) < 20' }], default: 'long' } },
          { key: 'tiny', type: 'action.transform', path: 'short', input: { expression: '="short"' } },
          { key: 'mid', type: 'action.transform', path: 'medium', input: { expression: '="medium"' } },
          { key: 'big', type: 'action.transform', path: 'long', input: { expression: '="long"' } },
          { key: 'reply', type: 'action.respond', input: { chose: '=steps.size.path', said: '=steps.tiny & steps.mid & steps.big' } },
        ],
      },
      designer.key,
    );
    const outcome = async (text: string) => finished(h.gql, (await runWorkflow(h.gql, id, { text }, designer.key)).body.data.runWorkflow.id, designer.key);

    const medium = await outcome('a dozen chars');
    expect(medium.status).toBe('SUCCEEDED');
    expect(medium.steps.map((s: { key: string; status: string }) => [s.key, s.status])).toEqual([
      ['size', 'SUCCEEDED'],
      ['tiny', 'SKIPPED'],
      ['mid', 'SUCCEEDED'],
      ['big', 'SKIPPED'],
      ['reply', 'SUCCEEDED'],
    ]);
    expect(medium.steps[0].output).toEqual({ path: 'medium' });
    expect(medium.output).toEqual({ chose: 'medium', said: 'medium' });
    // The first true condition wins ("abc" is shorter than 5 and than 20), and the default takes the rest.
    expect((await outcome('abc')).output).toEqual({ chose: 'short', said: 'short' });
    expect((await outcome('x'.repeat(40))).output).toEqual({ chose: 'long', said: 'long' });
  });

  it('refuses a step whose path no earlier branch declares, naming the field', async () => {
    const { body } = await h.gql(
      `mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ${ERROR} ... on DomainError { details } } }`,
      { d: { name: 'Lost', trigger: { type: 'manual' }, steps: [{ key: 'a', type: 'action.transform', path: 'nowhere', input: {} }] } },
      designer.key,
    );
    expect(body.data.createWorkflow).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: 'steps[0].path' } });
  });

  it('fails the step of an expression that never ends with a clear error, and keeps answering meanwhile', async () => {
    const id = await createWorkflow(h.gql, { name: 'Spin', trigger: { type: 'manual' }, steps: [runaway(), { key: 'after', type: 'action.respond', input: {} }] }, designer.key);
    const { body } = await runWorkflow(h.gql, id, null, designer.key);
    const runId = body.data.runWorkflow.id;
    // While the expression spins, the server answers other requests (the run is still going).
    const meanwhile = await h.gql('query($id: ID!) { workflowRun(id: $id) { status } }', { id: runId }, designer.key);
    expect(meanwhile.body.data.workflowRun.status).toBe('RUNNING');

    const run = await finished(h.gql, runId, designer.key);
    expect(run.status).toBe('FAILED');
    expect(run.steps).toHaveLength(1);
    expect(run.steps[0]).toMatchObject({ key: 'spin', status: 'FAILED', attempts: 1 });
    expect(run.steps[0].error.code).toBe('EXPRESSION_TIMEOUT');
    expect(run.steps[0].error.message).toMatch(/steps\.spin\.input\.expression: the expression ran longer than 1000 ms and was stopped/);
    expect(run.error).toEqual(run.steps[0].error);
  });

  it('fails the step of runaway non-tail recursion as too deep', async () => {
    const deep = { key: 'deep', type: 'action.transform', input: { expression: '=($f := function($x) { 1 + $f($x) }; $f(0))' } };
    const id = await createWorkflow(h.gql, { name: 'Deep', trigger: { type: 'manual' }, steps: [deep] }, designer.key);
    const run = await finished(h.gql, (await runWorkflow(h.gql, id, null, designer.key)).body.data.runWorkflow.id, designer.key);
    expect(run.status).toBe('FAILED');
    expect(run.steps[0].error.code).toBe('EXPRESSION_TOO_DEEP');
  });

  it('runs a catastrophically backtracking regex to its answer, and refuses backreferences when saved, naming the regex', async () => {
    const text = `${'a'.repeat(40)}!`;
    const evil = await createWorkflow(h.gql, { name: 'Regex', trigger: { type: 'manual' }, steps: [{ key: 'm', type: 'action.respond', input: { match: '=$match(trigger.body, /(a+)+$/)', n: 1 } }] }, designer.key);
    const run = await finished(h.gql, (await runWorkflow(h.gql, evil, text, designer.key)).body.data.runWorkflow.id, designer.key);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.output).toEqual({ match: null, n: 1 });

    const backref = { name: 'Backref', trigger: { type: 'manual' }, steps: [{ key: 'm', type: 'action.transform', input: { expression: '=$match(trigger.body, /(a*)*\\1$/)' } }] };
    const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ${ERROR} } }`, { d: backref }, designer.key);
    expect(body.data.createWorkflow).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/steps\[0\]\.input\.expression.*\/\(a\*\)\*\\1\$\/ is not allowed: back-references/) });
  });

  it('answers a large step output in full when the run is read, and null in lists', async () => {
    const id = await createWorkflow(h.gql, { name: 'Big', trigger: { type: 'manual' }, steps: [{ key: 'big', type: 'action.transform', input: { expression: '=$pad("", 60000, "x")' } }, { key: 'reply', type: 'action.respond', input: { big: '=steps.big' } }] }, designer.key);
    const run = await finished(h.gql, (await runWorkflow(h.gql, id, null, designer.key)).body.data.runWorkflow.id, designer.key);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.steps[0].output).toBe('x'.repeat(60_000));
    expect(run.output).toEqual({ big: 'x'.repeat(60_000) });
    // Inputs are kept up to 64 KiB (what a run stores is bounded: workflowRunStorage).
    const inputs = await h.gql('query($id: ID!) { workflowRun(id: $id) { steps { key input } } }', { id: run.id }, designer.key);
    expect(inputs.body.data.workflowRun.steps[1]).toEqual({ key: 'reply', input: { big: 'x'.repeat(60_000) } });
    const list = await h.gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { output steps { output } } } } }', { id }, designer.key);
    expect(list.body.data.workflowRuns.edges[0].node).toEqual({ output: null, steps: [{ output: null }, { output: null }] });
  });

  it('cancels a run in flight: CANCELLED at once and for good, its step in flight aborted (FAILED, CANCELLED); a second cancel is a CONFLICT', async () => {
    const id = await createWorkflow(h.gql, { name: 'Spin to cancel', trigger: { type: 'manual' }, steps: [runaway(), { key: 'after', type: 'action.respond', input: {} }] }, designer.key);
    const runId = (await runWorkflow(h.gql, id, null, designer.key)).body.data.runWorkflow.id;
    const cancel = await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { status error { code } steps { key status error { code } } } ${ERROR} } }`, { id: runId }, designer.key);
    expect(cancel.body.data.cancelWorkflowRun).toEqual({ __typename: 'WorkflowRun', status: 'CANCELLED', error: { code: 'CANCELLED' }, steps: [{ key: 'spin', status: 'FAILED', error: { code: 'CANCELLED' } }] });
    // Past the expression's timeout: the aborted step's outcome was not recorded over the cancel.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const run = await finished(h.gql, runId, designer.key);
    expect(run.status).toBe('CANCELLED');
    expect(run.steps).toEqual([expect.objectContaining({ key: 'spin', status: 'FAILED', attempts: 1, error: expect.objectContaining({ code: 'CANCELLED' }) })]);
    expect(run.cost).toBe(0);
    const again = await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ${ERROR} } }`, { id: runId }, designer.key);
    expect(again.body.data.cancelWorkflowRun).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
  });

  it("answers NOT_FOUND for another account's workflow and runs, exactly as for missing ones", async () => {
    const id = await createWorkflow(h.gql, greeter, designer.key);
    const runId = (await runWorkflow(h.gql, id, { name: 'Ada' }, designer.key)).body.data.runWorkflow.id;
    await finished(h.gql, runId, designer.key);

    const codeOf = (res: { body: any }) => res.body.errors?.[0]?.extensions?.code ?? res.body.data?.[Object.keys(res.body.data)[0]!]?.code;
    const read = await h.gql('query($id: ID!) { workflowRun(id: $id) { id } }', { id: runId }, stranger.key);
    const missing = await h.gql('query($id: ID!) { workflowRun(id: $id) { id } }', { id: 'run_0000000000000000000000' }, stranger.key);
    expect(codeOf(read)).toBe('NOT_FOUND');
    expect(codeOf(missing)).toBe('NOT_FOUND');
    expect(read.body.errors[0].message.replace(runId, 'X')).toBe(missing.body.errors[0].message.replace('run_0000000000000000000000', 'X'));

    expect(codeOf(await runWorkflow(h.gql, id, {}, stranger.key))).toBe('NOT_FOUND');
    expect(codeOf(await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ${ERROR} } }`, { id: runId }, stranger.key))).toBe('NOT_FOUND');
    expect(codeOf(await h.gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id } } } }', { id }, stranger.key))).toBe('NOT_FOUND');
    // The run is untouched.
    expect((await finished(h.gql, runId, designer.key)).status).toBe('SUCCEEDED');
  });

  it("shows a restricted key only the runs it started: another key's, a webhook's run is NOT_FOUND as a missing one, and lists hold only its own", async () => {
    const owner = await open(h.gql, 'Rhea Reader', 'DESIGNER');
    const created = await h.gql('mutation { createApiKey(name: "app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, owner.key);
    const limited = created.body.data.createApiKey.secret as string;
    const id = await createWorkflow(h.gql, { ...greeter, trigger: { type: 'webhook', respond: 'async' } }, owner.key);
    const manual = await createWorkflow(h.gql, greeter, owner.key);
    const secret = (await h.gql('mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } } }', { id }, owner.key)).body.data.rotateWebhookSecret.secret as string;
    const hooked = await fetch(`${h.url}/api/v1/workflows/${id}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-webhook-secret': secret }, body: JSON.stringify({ name: 'webhook secret' }) });
    expect(hooked.status).toBe(202);
    const hookRun = (await hooked.json()).id as string;
    const ownersRun = (await runWorkflow(h.gql, manual, { name: 'owner secret' }, owner.key)).body.data.runWorkflow.id as string;
    const ownRun = (await runWorkflow(h.gql, manual, { name: 'app' }, limited)).body.data.runWorkflow.id as string;
    for (const runId of [hookRun, ownersRun, ownRun]) await finished(h.gql, runId, owner.key);

    const RUN_READ = 'query($id: ID!) { workflowRun(id: $id) { id status output steps { input output } } }';
    const missing = await h.gql(RUN_READ, { id: 'run_0000000000000000000000' }, limited);
    expect(missing.body.errors[0].extensions.code).toBe('NOT_FOUND');
    for (const runId of [hookRun, ownersRun]) {
      const read = await h.gql(RUN_READ, { id: runId }, limited);
      expect(read.body.data).toBeNull();
      expect(read.body.errors[0].extensions.code).toBe('NOT_FOUND');
      expect(read.body.errors[0].message.replace(runId, 'X')).toBe(missing.body.errors[0].message.replace('run_0000000000000000000000', 'X'));
      expect(JSON.stringify(read.body)).not.toContain('SECRET');
    }
    expect((await h.gql(RUN_READ, { id: ownRun }, limited)).body.data.workflowRun).toMatchObject({ id: ownRun, status: 'SUCCEEDED', output: { greeting: 'Hello, APP', literal: 42 } });

    const LIST = 'query($id: ID!, $status: WorkflowRunStatus, $first: Int) { workflowRuns(workflowId: $id, status: $status, first: $first) { edges { node { id steps { output } } } pageInfo { hasNextPage } } }';
    const listed = async (workflowId: string, key: string, variables: Record<string, unknown> = {}) => {
      const { body } = await h.gql(LIST, { id: workflowId, ...variables }, key);
      expect(body.errors).toBeUndefined();
      return body.data.workflowRuns as { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean } };
    };
    expect((await listed(manual, limited)).edges.map((edge) => edge.node.id)).toEqual([ownRun]);
    expect((await listed(manual, limited, { status: 'SUCCEEDED' })).edges.map((edge) => edge.node.id)).toEqual([ownRun]);
    expect(await listed(manual, limited, { first: 1 })).toMatchObject({ edges: [{ node: { id: ownRun } }], pageInfo: { hasNextPage: false } });
    expect((await listed(id, limited)).edges).toEqual([]);
    // The owner's full key sees every run of the account.
    expect((await listed(manual, owner.key)).edges.map((edge) => edge.node.id)).toEqual([ownersRun, ownRun]);
    expect((await listed(id, owner.key)).edges.map((edge) => edge.node.id)).toEqual([hookRun]);
  });

  it("lets a restricted key cancel and retry only the runs it started: the owner's are NOT_FOUND, as a missing run, and untouched", async () => {
    const owner = await open(h.gql, 'Olga Owner', 'DESIGNER');
    const created = await h.gql('mutation { createApiKey(name: "app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, owner.key);
    const limited = created.body.data.createApiKey.secret as string;
    const waiting = await createWorkflow(h.gql, { name: 'Wait four minutes', trigger: { type: 'manual' }, steps: [{ key: 'wait', type: 'control.delay', input: { for: 'PT4M' } }] }, owner.key);
    const failing = await createWorkflow(h.gql, { name: 'Fails', trigger: { type: 'manual' }, steps: [{ key: 'deep', type: 'action.transform', input: { expression: '=($f := function($x) { 1 + $f($x) }; $f(0))' } }] }, owner.key);
    const cancel = (runId: string, key: string) => h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { status } ... on DomainError { code message details } } }`, { id: runId }, key);
    const retry = (runId: string, key: string) => h.gql(`mutation($id: ID!) { retryWorkflowRun(id: $id) { __typename ... on WorkflowRun { id } ... on DomainError { code message details } } }`, { id: runId }, key);
    const codeOf = (res: { body: any }) => res.body.errors?.[0]?.extensions?.code ?? res.body.data?.[Object.keys(res.body.data)[0]!]?.code;

    const ownersRun = (await runWorkflow(h.gql, waiting, null, owner.key)).body.data.runWorkflow.id as string;
    expect(codeOf(await cancel(ownersRun, limited))).toBe('NOT_FOUND');
    const ownersFailed = await finished(h.gql, (await runWorkflow(h.gql, failing, null, owner.key)).body.data.runWorkflow.id, owner.key);
    expect(ownersFailed.status).toBe('FAILED');
    expect(codeOf(await retry(ownersFailed.id, limited))).toBe('NOT_FOUND');
    // The owner's runs are as they were: still waiting, and never retried.
    expect((await h.gql('query($id: ID!) { workflowRun(id: $id) { status } }', { id: ownersRun }, owner.key)).body.data.workflowRun.status).toBe('RUNNING');
    const failedRuns = await h.gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id } } } }', { id: failing }, owner.key);
    expect(failedRuns.body.data.workflowRuns.edges).toHaveLength(1);

    // Its own: it stops what it started (what spends under its key), and retries its own failed run.
    const ownRun = (await runWorkflow(h.gql, waiting, null, limited)).body.data.runWorkflow.id as string;
    expect((await cancel(ownRun, limited)).body.data.cancelWorkflowRun).toEqual({ __typename: 'WorkflowRun', status: 'CANCELLED' });
    const ownFailed = await finished(h.gql, (await runWorkflow(h.gql, failing, null, limited)).body.data.runWorkflow.id, owner.key);
    const retried = (await retry(ownFailed.id, limited)).body.data.retryWorkflowRun;
    expect(retried).toMatchObject({ __typename: 'WorkflowRun', id: expect.any(String) });
    // The retry is its run too (it spends under its key): it reads it.
    expect((await h.gql('query($id: ID!) { workflowRun(id: $id) { id } }', { id: retried.id }, limited)).body.data.workflowRun).toEqual({ id: retried.id });
    // The owner's full key still runs the account's runs.
    expect((await cancel(ownersRun, owner.key)).body.data.cancelWorkflowRun).toEqual({ __typename: 'WorkflowRun', status: 'CANCELLED' });
  });

  it('refuses bad input clearly: an oversized input, ids that name nothing', async () => {
    const id = await createWorkflow(h.gql, greeter, designer.key);
    const big = await runWorkflow(h.gql, id, { name: 'x'.repeat(300 * 1024) }, designer.key);
    expect(big.body.data.runWorkflow).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringMatching(/over the limit of 262144/) });
    for (const bad of ['nope', 'run_', `run_${'a'.repeat(200)}`, '../run_x']) {
      const read = await h.gql('query($id: ID!) { workflowRun(id: $id) { id } }', { id: bad }, designer.key);
      expect(read.body.errors[0].extensions.code).toBe('NOT_FOUND');
    }
    const runs = await h.gql('query { workflowRuns(workflowId: "wf_missing") { edges { node { id } } } }', {}, designer.key);
    expect(runs.body.errors[0].extensions.code).toBe('NOT_FOUND');
    const unauthenticated = await runWorkflow(h.gql, id, {}, null);
    expect(unauthenticated.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it("a run started with a key spends under that key's limit; one started with an unlimited key of the account does not", async () => {
    const spender = await open(h.gql, 'Kim Keyholder', 'DESIGNER');
    await h.gql('mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "test") { __typename } }', { id: spender.id });
    const limited = await h.gql('mutation { createApiKey(name: "capped", limit: 40000, limitReset: DAILY) { ... on CreatedApiKey { secret key { id } } } }', {}, spender.key);
    const { secret, key } = limited.body.data.createApiKey as { secret: string; key: { id: string } };
    const call = (n: number) => ({ key: `call${n}`, type: 'action.model', input: { model: 'switchyard/demo-paid', prompt: `Question ${n}`, maxTokens: 50 } });
    const id = await createWorkflow(h.gql, { name: 'Five calls', trigger: { type: 'manual' }, steps: [1, 2, 3, 4, 5].map(call) }, spender.key);

    const capped = await finished(h.gql, (await runWorkflow(h.gql, id, {}, secret)).body.data.runWorkflow.id, spender.key);
    expect(capped.status).toBe('FAILED');
    const failedStep = capped.steps.find((step: { status: string }) => step.status === 'FAILED');
    expect(failedStep.error.message).toMatch(/limit/i);
    // What the run spent is the key's usage, and within its limit: the key bounds the run as it bounds its own calls.
    const usage = await h.gql('query($id: ID!) { apiKey(id: $id) { usage { daily } } }', { id: key.id }, spender.key);
    expect(usage.body.data.apiKey.usage.daily).toBe(capped.cost);
    expect(capped.cost).toBeGreaterThan(0);
    expect(capped.cost).toBeLessThanOrEqual(40_000);

    const free = await finished(h.gql, (await runWorkflow(h.gql, id, {}, spender.key)).body.data.runWorkflow.id, spender.key);
    expect(free.status).toBe('SUCCEEDED');
    expect(free.cost).toBeGreaterThan(40_000);
  });

  it('refuses to run a disabled workflow', async () => {
    const id = await createWorkflow(h.gql, greeter, designer.key);
    await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', { id }, designer.key);
    const { body } = await runWorkflow(h.gql, id, { name: 'Ada' }, designer.key);
    expect(body.data.runWorkflow).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
  });
});

describe('runs when the event store fails', () => {
  it('finishes a run whose step outcome could not be appended: the executor tries again and re-runs the step with the same attempt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-runs-flaky-'));
    const flaky = await startHarness({}, dir, { logger: createLogger('silent'), eventStoreWrapper: new URL('../support/failingRunAppends.ts', import.meta.url).href });
    try {
      const owner = await open(flaky.gql, 'Fay Flaky', 'DESIGNER');
      const id = await createWorkflow(flaky.gql, greeter, owner.key);
      writeFileSync(failNextStepOutcomeFlag(dir), '');
      const runId = (await runWorkflow(flaky.gql, id, { name: 'Ada' }, owner.key)).body.data.runWorkflow.id;
      const run = await finished(flaky.gql, runId, owner.key);
      expect(existsSync(failNextStepOutcomeFlag(dir))).toBe(false);
      expect(run.status).toBe('SUCCEEDED');
      expect(run.output).toEqual({ greeting: 'Hello, ADA', literal: 42 });
      expect(run.steps.map((s: { attempts: number }) => s.attempts)).toEqual([1, 1, 1]);
    } finally {
      await flaky.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runs after a crash', () => {
  const switchyards = spawnedSwitchyards();
  const spawnSwitchyard = async (dir: string) => {
    const server = await switchyards.start(dir);
    return { kill: server.kill, gql: server.graphql };
  };

  it('finishes a run interrupted by kill -9 on the next start: done steps stay done, the step in flight resumes its attempt', { timeout: 60_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-runs-');
    const first = await spawnSwitchyard(dir);
    const owner = await open(first.gql, 'Kim Killed', 'DESIGNER');
    const id = await createWorkflow(
      first.gql,
      { name: 'Crash', trigger: { type: 'manual' }, steps: [{ key: 'first', type: 'action.transform', input: { expression: '=trigger.body.n * 2' } }, runaway(), { key: 'reply', type: 'action.respond', input: {} }] },
      owner.key,
    );
    const runId = (await runWorkflow(first.gql, id, { n: 21 }, owner.key)).body.data.runWorkflow.id;
    // Kill it while the second step is in flight (its expression spins for a second).
    for (;;) {
      const { body } = await first.gql('query($id: ID!) { workflowRun(id: $id) { steps { key status } } }', { id: runId }, owner.key);
      if (body.data.workflowRun.steps.some((s: { key: string; status: string }) => s.key === 'spin' && s.status === 'RUNNING')) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await first.kill();

    const second = await spawnSwitchyard(dir);
    const run = await finished(second.gql, runId, owner.key);
    // The run ends (here: the resumed step fails as it must); the first step did not run again, and the step in
    // flight was re-run as the same attempt, not a new one.
    expect(run.status).toBe('FAILED');
    expect(run.steps).toEqual([
      { key: 'first', status: 'SUCCEEDED', attempts: 1, output: 42, error: null },
      { key: 'spin', status: 'FAILED', attempts: 1, output: null, error: { code: 'EXPRESSION_TIMEOUT', message: expect.stringMatching(/ran longer than 1000 ms/) } },
    ]);
  });
});
