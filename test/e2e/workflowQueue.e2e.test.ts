/**
 * Queued runs (settings.maxConcurrentRuns) and retries of failed runs, on the started app over GraphQL, with a fake
 * HTTP target the workflows call: it holds `/slow` calls until the test releases them, fails `/flaky` the first time.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { spawnedSwitchyards } from '../support/spawnedServer.js';
import { eventually } from '../support/eventually.js';

type Gql = Harness['gql'];
const RUN = 'id status retryOf queuedAt error { code } output steps { key status attempts carriedFrom output }';
const ERROR = '... on DomainError { code message }';

/** The fake target: every call recorded (path and the step's Idempotency-Key) in the order received. */
const startTarget = async () => {
  const calls: { path: string; key: string }[] = [];
  const held: http.ServerResponse[] = [];
  let released = false;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://target');
      const path = url.pathname + url.search;
      calls.push({ path, key: String(req.headers['idempotency-key'] ?? '') });
      const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (url.pathname === '/slow') return released ? json(200, { ok: true }) : void held.push(res);
      if (url.pathname === '/flaky') return calls.filter((call) => call.path === path).length === 1 ? json(503, { error: 'down for a moment' }) : json(200, { ok: 'now' });
      return json(200, { n: calls.filter((call) => call.path === path).length });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    /** Calls to a path so far. */
    callsTo: (path: string) => calls.filter((call) => call.path === path),
    /** Answer every held call, and every later one at once. */
    release() {
      released = true;
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    },
    hold() {
      released = false;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()),
  };
};

let h: Harness;
let target: Awaited<ReturnType<typeof startTarget>>;
let designer: { id: string; key: string };
let stranger: { id: string; key: string };

const open = async (gql: Gql, name: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await gql('mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename } }', { id: account.id, role: 'DESIGNER' });
  return account;
};

const createWorkflow = async (gql: Gql, definition: unknown, key: string): Promise<string> => {
  const { body } = await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  expect(body.data.createWorkflow, JSON.stringify(body.data.createWorkflow)).toMatchObject({ __typename: 'Workflow' });
  return body.data.createWorkflow.id;
};

const runWorkflow = async (gql: Gql, id: string, input: unknown, key: string) => {
  const { body } = await gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { __typename ... on WorkflowRun { ${RUN} } ${ERROR} } }`, { id, input }, key);
  expect(body.data.runWorkflow.__typename, JSON.stringify(body)).toBe('WorkflowRun');
  return body.data.runWorkflow as { id: string; status: string; queuedAt: string | null };
};

const readRun = async (gql: Gql, runId: string, key: string) => {
  const { body } = await gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, key);
  expect(body.errors).toBeUndefined();
  return body.data.workflowRun;
};

const finished = (gql: Gql, runId: string, key: string) =>
  eventually(`run ${runId} to end`, async () => {
    const run = await readRun(gql, runId, key);
    return run.status !== 'RUNNING' && run.status !== 'QUEUED' && run;
  });

const runsWithStatus = async (gql: Gql, workflowId: string, status: string, key: string): Promise<string[]> => {
  const { body } = await gql('query($id: ID!, $s: WorkflowRunStatus) { workflowRuns(workflowId: $id, status: $s) { edges { node { id } } } }', { id: workflowId, s: status }, key);
  expect(body.errors).toBeUndefined();
  return body.data.workflowRuns.edges.map((edge: { node: { id: string } }) => edge.node.id);
};

/** One slow HTTP call per run (the run's number in the path), then the run's answer. */
const slowWorkflow = (maxConcurrentRuns: number) => ({
  name: `Slow ${maxConcurrentRuns}`,
  trigger: { type: 'manual' },
  settings: { maxConcurrentRuns },
  steps: [
    { key: 'call', type: 'action.http', input: { method: 'POST', url: `=${JSON.stringify(`${target.url}/slow?run=`)} & trigger.body.n`, body: { n: '=trigger.body.n' } } },
    { key: 'reply', type: 'action.respond', input: { n: '=trigger.body.n' } },
  ],
});

/** The run id in a step's Idempotency-Key (`{runId}.{step}`). */
const runOf = (key: string) => key.split('.')[0];

beforeAll(async () => {
  target = await startTarget();
  h = await startHarness();
  designer = await open(h.gql, 'Quinn Queue');
  stranger = await open(h.gql, 'Sid Stranger');
});
afterAll(async () => {
  target.release();
  await h.stop();
  await target.close();
});
afterEach(() => target.hold());

describe('max concurrent runs per workflow', () => {
  it('queues runs over maxConcurrentRuns (RUNNING, then QUEUED), lists them, cancels a queued one, and admits the rest in order as runs end', async () => {
    const id = await createWorkflow(h.gql, slowWorkflow(1), designer.key);
    const a = await runWorkflow(h.gql, id, { n: 1 }, designer.key);
    const b = await runWorkflow(h.gql, id, { n: 2 }, designer.key);
    const c = await runWorkflow(h.gql, id, { n: 3 }, designer.key);
    const d = await runWorkflow(h.gql, id, { n: 4 }, designer.key);
    expect([a.status, b.status, c.status, d.status]).toEqual(['RUNNING', 'QUEUED', 'QUEUED', 'QUEUED']);
    expect(a.queuedAt).toBeNull();
    expect(b.queuedAt).not.toBeNull();

    await eventually('the first run to reach the target', async () => target.callsTo('/slow?run=1').length === 1);
    expect(await eventually('the read model to list the queued runs', async () => {
      const queued = await runsWithStatus(h.gql, id, 'QUEUED', designer.key);
      return queued.length === 3 && queued;
    })).toEqual([b.id, c.id, d.id]);
    expect(await runsWithStatus(h.gql, id, 'RUNNING', designer.key)).toEqual([a.id]);

    const cancel = await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { status } ${ERROR} } }`, { id: c.id }, designer.key);
    expect(cancel.body.data.cancelWorkflowRun).toEqual({ __typename: 'WorkflowRun', status: 'CANCELLED' });

    // Nothing else reached the target while the first run held the only slot.
    expect(target.callsTo('/slow?run=1')).toHaveLength(1);
    expect(target.calls.filter((call) => call.path.startsWith('/slow?run=') && call.path !== '/slow?run=1')).toEqual([]);

    target.release();
    for (const [run, n] of [[a, 1], [b, 2], [d, 4]] as const) {
      const ended = await finished(h.gql, run.id, designer.key);
      expect(ended).toMatchObject({ status: 'SUCCEEDED', output: { n } });
    }
    expect((await readRun(h.gql, c.id, designer.key)).status).toBe('CANCELLED');
    // Admitted first come, first served; the cancelled run never ran.
    const order = target.calls.filter((call) => call.path.startsWith('/slow?run=') && [a.id, b.id, c.id, d.id].includes(runOf(call.key)!)).map((call) => runOf(call.key));
    expect(order).toEqual([a.id, b.id, d.id]);
  });

  it('never lets simultaneous starts take more slots than there are', async () => {
    const id = await createWorkflow(h.gql, slowWorkflow(2), designer.key);
    const runs = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => runWorkflow(h.gql, id, { n: 100 + n }, designer.key)));
    expect(runs.filter((run) => run.status === 'RUNNING')).toHaveLength(2);
    expect(runs.filter((run) => run.status === 'QUEUED')).toHaveLength(4);
    await eventually('two runs to reach the target', async () => target.calls.filter((call) => runs.some((run) => run.id === runOf(call.key))).length === 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(target.calls.filter((call) => runs.some((run) => run.id === runOf(call.key)))).toHaveLength(2);
    target.release();
    for (const run of runs) expect((await finished(h.gql, run.id, designer.key)).status).toBe('SUCCEEDED');
  });
});

describe('queued runs of a workflow disabled or deleted', () => {
  it.each(['disableWorkflow', 'deleteWorkflow'])('after %s, they are cancelled when their turn comes, never started', async (mutation) => {
    const id = await createWorkflow(h.gql, slowWorkflow(1), designer.key);
    const runs = await Promise.all([301, 302, 303].map((n) => runWorkflow(h.gql, id, { n }, designer.key)));
    expect(runs.map((run) => run.status).sort()).toEqual(['QUEUED', 'QUEUED', 'RUNNING']);
    await eventually('the running one to reach the target', async () => target.calls.some((call) => runs.some((run) => run.id === runOf(call.key))));
    const { body } = await h.gql(`mutation($id: ID!) { ${mutation}(id: $id) { __typename ${ERROR} } }`, { id }, designer.key);
    expect(body.data[mutation].__typename).toBe('Workflow');
    target.release();
    const ended = await Promise.all(runs.map((run) => finished(h.gql, run.id, designer.key)));
    const started = runs.find((run) => run.status === 'RUNNING')!;
    for (const [i, run] of runs.entries()) {
      if (run.id === started.id) expect(ended[i]).toMatchObject({ status: 'SUCCEEDED' });
      else expect(ended[i]).toMatchObject({ status: 'CANCELLED', error: { code: 'CANCELLED' } });
    }
    // Only the run that was running when the workflow changed reached the target.
    expect(target.calls.filter((call) => runs.some((run) => run.id === runOf(call.key))).map((call) => runOf(call.key))).toEqual([started.id]);
  });
});

describe('time limits', () => {
  const timed = (name: string, settings: Record<string, unknown>, step: Record<string, unknown>) => ({
    name,
    trigger: { type: 'manual' },
    settings,
    steps: [{ key: 'call', type: 'action.http', input: { method: 'POST', url: `${target.url}/slow?limit=${name}`, body: {} }, ...step }],
  });
  const RUN_ERROR = 'query($id: ID!) { workflowRun(id: $id) { status error { code message } steps { key status attempts error { code } } } }';

  it("a run out of its own time fails with RUN_TIMEOUT, once; a step out of its time with STEP_TIMEOUT, retried", async () => {
    const runLimit = await createWorkflow(h.gql, timed('run-limit', { timeoutSeconds: 1 }, { retry: { attempts: 3, backoffMs: 10 } }), designer.key);
    const stepLimit = await createWorkflow(h.gql, timed('step-limit', { timeoutSeconds: 60 }, { timeoutSeconds: 1, retry: { attempts: 2, backoffMs: 10 } }), designer.key);
    const [a, b] = [await runWorkflow(h.gql, runLimit, {}, designer.key), await runWorkflow(h.gql, stepLimit, {}, designer.key)];
    await finished(h.gql, a.id, designer.key);
    await finished(h.gql, b.id, designer.key);
    const ranOut = (await h.gql(RUN_ERROR, { id: a.id }, designer.key)).body.data.workflowRun;
    expect(ranOut).toMatchObject({ status: 'FAILED', error: { code: 'RUN_TIMEOUT', message: 'The run ran longer than its 1 s (settings.timeoutSeconds) during step call' }, steps: [{ key: 'call', status: 'FAILED', attempts: 1, error: { code: 'RUN_TIMEOUT' } }] });
    const stepOut = (await h.gql(RUN_ERROR, { id: b.id }, designer.key)).body.data.workflowRun;
    expect(stepOut).toMatchObject({ status: 'FAILED', error: { code: 'STEP_TIMEOUT', message: 'Step call ran longer than 1 s' }, steps: [{ key: 'call', status: 'FAILED', attempts: 2 }] });
    expect(target.callsTo('/slow?limit=run-limit')).toHaveLength(1);
    // Both attempts of the step carry its one key: a target that did the first's work can drop the second.
    expect(target.callsTo('/slow?limit=step-limit').map((call) => call.key)).toEqual([`${b.id}.call`, `${b.id}.call`]);
  });
});

describe('retryWorkflowRun', () => {
  const retry = (runId: string, key: string) =>
    h.gql(`mutation($id: ID!) { retryWorkflowRun(id: $id) { __typename ... on WorkflowRun { ${RUN} } ${ERROR} } }`, { id: runId }, key);

  it('a failed run’s retry reuses the steps before the failed one (not called again) and goes on from the failed step to success', async () => {
    const tag = `?wf=${Date.now()}`;
    const id = await createWorkflow(
      h.gql,
      {
        name: 'Flaky',
        trigger: { type: 'manual' },
        steps: [
          { key: 'first', type: 'action.http', input: { method: 'POST', url: `${target.url}/count${tag}`, body: { q: '=trigger.body.q' } } },
          { key: 'maybe', type: 'action.transform', if: '=false', input: { expression: '="never"' } },
          { key: 'second', type: 'action.http', input: { method: 'POST', url: `${target.url}/flaky${tag}`, body: {} } },
          { key: 'reply', type: 'action.respond', input: { first: '=steps.first.body.n', second: '=steps.second.body.ok', q: '=trigger.body.q' } },
        ],
      },
      designer.key,
    );
    const failedRun = await finished(h.gql, (await runWorkflow(h.gql, id, { q: 'why' }, designer.key)).id, designer.key);
    expect(failedRun.status).toBe('FAILED');
    expect(failedRun.error.code).toBe('HTTP_503');

    const { body } = await retry(failedRun.id, designer.key);
    const retried = body.data.retryWorkflowRun;
    expect(retried).toMatchObject({ __typename: 'WorkflowRun', retryOf: failedRun.id });
    expect(['RUNNING', 'SUCCEEDED']).toContain(retried.status);
    expect(retried.id).not.toBe(failedRun.id);

    const done = await finished(h.gql, retried.id, designer.key);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.output).toEqual({ first: 1, second: 'now', q: 'why' });
    expect(done.steps.map((s: { key: string; status: string; attempts: number; carriedFrom: string | null }) => [s.key, s.status, s.attempts, s.carriedFrom])).toEqual([
      ['first', 'SUCCEEDED', 0, failedRun.id],
      ['maybe', 'SKIPPED', 0, failedRun.id],
      ['second', 'SUCCEEDED', 1, null],
      ['reply', 'SUCCEEDED', 1, null],
    ]);
    // The first step's target was called exactly once over both runs; the failed step once per run.
    expect(target.callsTo(`/count${tag}`)).toHaveLength(1);
    expect(target.callsTo(`/flaky${tag}`).map((call) => runOf(call.key))).toEqual([failedRun.id, retried.id]);

    // Retrying the same run again answers the same retry; the failed run itself is untouched.
    const again = await retry(failedRun.id, designer.key);
    expect(again.body.data.retryWorkflowRun).toMatchObject({ __typename: 'WorkflowRun', id: retried.id, status: 'SUCCEEDED' });
    expect((await readRun(h.gql, failedRun.id, designer.key)).status).toBe('FAILED');
    expect(target.callsTo(`/count${tag}`)).toHaveLength(1);

    // Only a failed run can be retried; another account's run does not exist for them.
    const notFailed = await retry(retried.id, designer.key);
    expect(notFailed.body.data.retryWorkflowRun).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', message: expect.stringMatching(/Only a failed run can be retried; this run succeeded/) });
    const foreign = await retry(failedRun.id, stranger.key);
    const missing = await retry('run_0000000000000000000000', stranger.key);
    expect(foreign.body.errors[0].extensions.code).toBe('NOT_FOUND');
    expect(missing.body.errors[0].extensions.code).toBe('NOT_FOUND');
  });
});

describe('queued runs after a crash', () => {
  const switchyards = spawnedSwitchyards();
  const spawnSwitchyard = async (dir: string) => {
    const server = await switchyards.start(dir, { env: { OUTBOUND_ALLOW: '127.0.0.1' } });
    return { kill: server.kill, gql: server.graphql };
  };

  it('a queued run survives kill -9: after the restart it waits for the resumed run, then runs', { timeout: 60_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-queue-');
    const first = await spawnSwitchyard(dir);
    const owner = await open(first.gql, 'Kit Killed');
    const id = await createWorkflow(first.gql, slowWorkflow(1), owner.key);
    const a = await runWorkflow(first.gql, id, { n: 201 }, owner.key);
    const b = await runWorkflow(first.gql, id, { n: 202 }, owner.key);
    expect([a.status, b.status]).toEqual(['RUNNING', 'QUEUED']);
    await eventually('the first run to reach the target', async () => target.callsTo('/slow?run=201').length === 1);
    await first.kill();

    const second = await spawnSwitchyard(dir);
    // The run in flight runs its step again (same attempt key); the queued one still waits for the slot.
    await eventually('the resumed run to call again', async () => target.callsTo('/slow?run=201').length === 2);
    expect(target.callsTo('/slow?run=201').map((call) => call.key)).toEqual([`${a.id}.call`, `${a.id}.call`]);
    expect((await readRun(second.gql, b.id, owner.key)).status).toBe('QUEUED');
    expect(target.callsTo('/slow?run=202')).toEqual([]);

    target.release();
    expect(await finished(second.gql, a.id, owner.key)).toMatchObject({ status: 'SUCCEEDED', output: { n: 201 } });
    expect(await finished(second.gql, b.id, owner.key)).toMatchObject({ status: 'SUCCEEDED', output: { n: 202 } });
    expect(target.callsTo('/slow?run=202')).toHaveLength(1);
  });
});
