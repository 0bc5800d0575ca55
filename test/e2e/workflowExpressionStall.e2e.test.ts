/**
 * A designer's expression that holds its thread in one synchronous call: jsonata's `$toMillis(text, picture)` builds
 * its own case-insensitive regexp from the picture (no RegexEngine, no linear-time fallback), and a picture with a
 * digit between its components backtracks for ever on "111…1x". On the server's own thread no timeout could stop that
 * one call: the server stopped answering, and again at every start, when the run was resumed. These servers run in
 * processes of their own (killed after each test), so a hang fails the test instead of holding the test runner.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { eventually, within } from '../support/eventually.js';
import { spawnedSwitchyards, type SpawnedSwitchyard } from '../support/spawnedServer.js';

const switchyards = spawnedSwitchyards();

const ERROR = '... on DomainError { code message }';
const HOLDS_ITS_THREAD = { key: 't', type: 'action.transform', input: { expression: '=$toMillis(trigger.body.s, "[Y]1[M]1[D]1[H]1[m]1[s]1[f]1[d]1[F]1[W]")' } };
const BACKTRACKS = { s: `${'1'.repeat(100)}x` };

const designer = async (server: SpawnedSwitchyard, name = 'Tilda Time') => {
  const { body } = await server.graphql('mutation($name: String!) { openAccount(name: $name, roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }', { name });
  return body.data.openAccount.initialKey.secret as string;
};
const create = async (server: SpawnedSwitchyard, key: string, definition: unknown): Promise<string> => {
  const { body } = await server.graphql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  expect(body.data.createWorkflow.__typename, JSON.stringify(body)).toBe('Workflow');
  return body.data.createWorkflow.id;
};
/** POST /api/v1/workflows/:id/runs, as the report's reproduction: the run's id. */
const start = async (server: SpawnedSwitchyard, key: string, workflowId: string, input: unknown): Promise<string> => {
  const res = await fetch(`${server.url}/api/v1/workflows/${workflowId}/runs`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(input) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
};
const read = async (server: SpawnedSwitchyard, key: string, runId: string) => {
  const { body } = await server.graphql('query($id: ID!) { workflowRun(id: $id) { status output steps { key status wakingAt error { code message } } } }', { id: runId }, key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.workflowRun as { status: string; output: unknown; steps: { key: string; status: string; wakingAt: string | null; error: { code: string; message: string } | null }[] };
};
const ended = (server: SpawnedSwitchyard, key: string, runId: string) =>
  eventually(`run ${runId} to end`, async () => ((run) => (run.status === 'RUNNING' || run.status === 'QUEUED' ? null : run))(await read(server, key, runId)), { timeoutMs: 30_000 });
const health = async (server: SpawnedSwitchyard) => (await within('/health to answer', fetch(`${server.url}/health`))).status;

const expectStopped = (run: Awaited<ReturnType<typeof read>>) => {
  expect(run.status).toBe('FAILED');
  expect(run.steps.find((step) => step.key === 't')).toMatchObject({
    status: 'FAILED',
    error: { code: 'EXPRESSION_TIMEOUT', message: 'steps.t.input.expression: the expression ran longer than 1000 ms and was stopped' },
  });
};

describe('an expression that holds its thread in one call', () => {
  it('fails its step with EXPRESSION_TIMEOUT while the server keeps answering, and the next expressions run', { timeout: 90_000 }, async () => {
    const server = await switchyards.start(switchyards.dataDir());
    const key = await designer(server);
    const hostile = await create(server, key, { name: 'backtracks', trigger: { type: 'manual' }, steps: [HOLDS_ITS_THREAD] });
    const runId = await start(server, key, hostile, BACKTRACKS);
    // Asked while the step is being evaluated (it is stopped only at its 1 s limit).
    expect(await health(server)).toBe(200);
    expect((await server.graphql('{ me { id } }', {}, ADMIN_KEY)).status).toBe(200);
    expectStopped(await ended(server, key, runId));

    const plain = await create(server, key, { name: 'plain', trigger: { type: 'manual' }, steps: [{ key: 'sum', type: 'action.transform', input: { expression: '=trigger.body.a + 1' } }, { key: 'out', type: 'action.respond', input: { sum: '=steps.sum', when: '=$toMillis("2024-05-06", "[Y]-[M]-[D]")' } }] });
    const runs = await Promise.all([1, 2, 3].map((a) => start(server, key, plain, { a })));
    for (const [index, id] of runs.entries()) expect(await ended(server, key, id)).toMatchObject({ status: 'SUCCEEDED', output: { sum: index + 2, when: Date.UTC(2024, 4, 6) } });
  });

  it('a value that would abort the process (V8 "invalid size", on any thread) fails its step with EXPRESSION_TOO_LARGE', { timeout: 90_000 }, async () => {
    const server = await switchyards.start(switchyards.dataDir());
    const key = await designer(server);
    const cases = [
      ['=$count($split($reduce([1..28], function($a, $b) { $a & $a }, "x"), ""))', 'the expression made a string of 33554432 characters, over the limit of 16777216'],
      ['=$fromMillis(0, "[Y٠,200000000]")', 'a $fromMillis picture width of 200000000 is over the limit of 1000'],
    ] as const;
    for (const [expression, message] of cases) {
      const workflow = await create(server, key, { name: 'too large', trigger: { type: 'manual' }, steps: [{ key: 't', type: 'action.transform', input: { expression } }] });
      const run = await ended(server, key, await start(server, key, workflow, null));
      expect(run.steps[0]?.error, expression).toEqual({ code: 'EXPRESSION_TOO_LARGE', message: `steps.t.input.expression: ${message}` });
    }
    expect(await health(server)).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });

  it('resumed at the next start, fails its step the same way instead of holding the server again', { timeout: 120_000 }, async () => {
    const dir = switchyards.dataDir();
    const first = await switchyards.start(dir);
    const key = await designer(first);
    const hostile = await create(first, key, { name: 'backtracks later', trigger: { type: 'manual' }, steps: [{ key: 'wait', type: 'control.delay', input: { for: 'PT3S' } }, HOLDS_ITS_THREAD] });
    const runId = await start(first, key, hostile, BACKTRACKS);
    await eventually('the run to wait', async () => (await read(first, key, runId)).steps.some((step) => step.key === 'wait' && step.wakingAt !== null));
    await first.kill();

    const second = await switchyards.start(dir);
    expect(await health(second)).toBe(200);
    expectStopped(await ended(second, key, runId));
    expect(await health(second)).toBe(200);
  });
});

/**
 * QA s43 regress2 #1: the 1 s limit held for each expression alone, so a step input of hundreds of expressions just
 * under it held its thread for minutes; two runs of one designer held both threads and another account's `=1+1`
 * waited 177 s. Cancelling the run did not free its thread either.
 */
describe('one account\'s expressions cannot hold the threads from another account', () => {
  // Each well under 1 s; 600 of them held a thread for a minute or more.
  const body = Object.fromEntries(Array.from({ length: 600 }, (_, index) => [`e${index}`, '=$count([1..30000].($ * 2))']));
  const HOG = { name: 'hog', trigger: { type: 'manual' }, steps: [{ key: 't', type: 'action.respond', input: { status: 200, body } }] };
  const PLAIN = { name: 'plain', trigger: { type: 'manual' }, steps: [{ key: 't', type: 'action.respond', input: { sum: '=1+1' } }] };
  const evaluating = (server: SpawnedSwitchyard, key: string, runIds: string[]) =>
    eventually('the hog runs to evaluate their step', async () => {
      const runs = await Promise.all(runIds.map((id) => read(server, key, id)));
      return runs.every((run) => run.steps.some((step) => step.key === 't' && step.status === 'RUNNING')) || null;
    });

  it('another account\'s run ends while the hog\'s runs still run, and each hog step stops at its job limit', { timeout: 120_000 }, async () => {
    const server = await switchyards.start(switchyards.dataDir());
    const [hog, victim] = [await designer(server, 'Hog'), await designer(server, 'Victim')];
    const hogFlow = await create(server, hog, HOG);
    const plain = await create(server, victim, PLAIN);
    // Two hold both threads, two more wait for them.
    const hogRuns = [];
    for (let i = 0; i < 4; i++) hogRuns.push(await start(server, hog, hogFlow, null));
    await evaluating(server, hog, hogRuns.slice(0, 2));

    const victimRun = await start(server, victim, plain, null);
    expect(await ended(server, victim, victimRun)).toMatchObject({ status: 'SUCCEEDED', output: { sum: 2 } });
    // The victim's job came before the hog's waiting ones (round-robin between accounts).
    expect((await Promise.all(hogRuns.map((id) => read(server, hog, id)))).some((run) => run.status === 'RUNNING')).toBe(true);

    for (const id of hogRuns) {
      const run = await ended(server, hog, id);
      expect(run.status).toBe('FAILED');
      expect(run.steps[0]?.error).toMatchObject({ code: 'EXPRESSION_TIMEOUT', message: expect.stringMatching(/^steps\.t\.input: its expressions ran longer than 2000 ms in all \(the limit of one step input or condition\) and were stopped at steps\.t\.input\.body\.e\d+$/) });
    }
    expect(await health(server)).toBe(200);
  });

  it('cancelling the runs frees their threads at once', { timeout: 120_000 }, async () => {
    const server = await switchyards.start(switchyards.dataDir());
    const [hog, victim] = [await designer(server, 'Hog'), await designer(server, 'Victim')];
    const hogFlow = await create(server, hog, HOG);
    const plain = await create(server, victim, PLAIN);
    // Both threads started (two jobs at once before either is ready): the hog's jobs then run at once, not wait.
    const warm = await Promise.all([start(server, victim, plain, null), start(server, victim, plain, null)]);
    for (const id of warm) expect((await ended(server, victim, id)).status).toBe('SUCCEEDED');
    const hogRuns = [await start(server, hog, hogFlow, null), await start(server, hog, hogFlow, null)];
    await evaluating(server, hog, hogRuns);
    const victimRun = await start(server, victim, plain, null);
    for (const id of hogRuns) {
      const { body: cancelled } = await server.graphql('mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { status } } }', { id }, hog);
      expect(cancelled.data.cancelWorkflowRun).toEqual({ __typename: 'WorkflowRun', status: 'CANCELLED' });
    }
    expect(await ended(server, victim, victimRun)).toMatchObject({ status: 'SUCCEEDED', output: { sum: 2 } });
    // Both threads were freed by the cancel, not by the job limit (whose stop is logged before the thread is freed).
    expect(server.output()).not.toContain("past the job's time limit");
    expect(server.output()).not.toContain('past its time limit');
  });
});
