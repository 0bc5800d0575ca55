/**
 * JSON nested past MAX_JSON_DEPTH (64) cannot reach a run's recursive walks (storing an output, an input's schema, a
 * table entry, an emitted event): an HTTP answer, an expression's value and a step's input nested deeper fail the step
 * with a typed error, for good, instead of overflowing the stack ("Maximum call stack size exceeded").
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

let h: Harness;
let designer: string;
let target: { url: string; close(): Promise<void> };

const RUN = 'status error { code message } steps { key status output error { code message } }';
const ERROR = '... on DomainError { code message details }';

/** `{"a": {"a": … 1 …}}`, `depth` objects deep. */
const nested = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

const createWorkflow = async (definition: unknown): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, designer);
  expect(body.data.createWorkflow.__typename, JSON.stringify(body.data.createWorkflow)).toBe('Workflow');
  return body.data.createWorkflow.id;
};

/** Run a manual workflow and read the run until it has ended. */
const runToEnd = async (steps: unknown[]) => {
  const id = await createWorkflow({ name: `deep-${Math.random().toString(36).slice(2, 8)}`, trigger: { type: 'manual' }, steps });
  const started = await h.gql(`mutation($id: ID!) { runWorkflow(id: $id, input: {}) { __typename ... on WorkflowRun { id } ${ERROR} } }`, { id }, designer);
  const runId = started.body.data.runWorkflow.id as string;
  const until = Date.now() + 20_000;
  for (;;) {
    const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, designer);
    const run = body.data.workflowRun;
    if (run.status !== 'RUNNING' && run.status !== 'QUEUED') return run;
    if (Date.now() > until) throw new Error(`run still ${run.status}: ${JSON.stringify(run).slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};
type StepView = { key: string; status: string; error: { code: string; message: string } | null };
const stepOf = (run: { steps: StepView[] }, key: string) => run.steps.find((s) => s.key === key);

beforeAll(async () => {
  h = await startHarness();
  const { body } = await h.gql(`mutation { openAccount(name: "Deep", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
  designer = body.data.openAccount.initialKey.secret;
  await h.gql(`mutation { createTable(name: "deep") { __typename } }`, {}, designer);
  // Answers /nested?d=N with JSON nested N objects deep.
  const server = http.createServer((req, res) => {
    const depth = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('d'));
    res.writeHead(200, { 'content-type': 'application/json' }).end(nested(depth));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()),
  };
});
afterAll(async () => {
  await target.close();
  await h.stop();
});

const entryCount = async () => (await h.gql(`{ entries(table: "deep", first: 100) { edges { node { id } } } }`, {}, designer)).body.data.entries.edges.length;

describe('JSON nested too deep in a workflow run', () => {
  it('search.http and action.http answered with JSON nested 5,000 levels fail with RESPONSE_TOO_DEEP, for good', async () => {
    for (const type of ['search.http', 'action.http']) {
      const input = type === 'search.http' ? { url: `${target.url}/nested?d=5000` } : { method: 'GET', url: `${target.url}/nested?d=5000` };
      const run = await runToEnd([{ key: 's', type, input, retry: { attempts: 1 } }]);
      expect(run.status, type).toBe('FAILED');
      expect(stepOf(run, 's'), type).toMatchObject({ status: 'FAILED', error: { code: 'RESPONSE_TOO_DEEP', message: expect.stringMatching(/nested more than 64 levels deep/) } });
      expect(JSON.stringify(run)).not.toMatch(/call stack/i);
    }
  });

  it('an answer nested 1,500 levels never reaches action.storeEntry or action.emit: nothing stored, nothing emitted', async () => {
    const run = await runToEnd([
      { key: 's', type: 'search.http', input: { url: `${target.url}/nested?d=1500` } },
      { key: 'st', type: 'action.storeEntry', input: { table: 'deep', entry: { v: '=steps.s' } } },
      { key: 'em', type: 'action.emit', input: { event: 'custom.deep', data: { v: '=steps.s' } } },
    ]);
    expect(stepOf(run, 's')).toMatchObject({ status: 'FAILED', error: { code: 'RESPONSE_TOO_DEEP' } });
    expect(JSON.stringify(run)).not.toMatch(/call stack/i);
    expect(await entryCount()).toBe(0);
  });

  it('a step input nested past 64 levels (a literal around an expression) fails EXPRESSION_TOO_DEEP before it is stored or emitted', async () => {
    // 60 levels from the answer inside 10 of the definition's own: 70 in all.
    const around = (value: unknown, levels: number): unknown => (levels === 0 ? value : { w: around(value, levels - 1) });
    const run = await runToEnd([
      { key: 's', type: 'search.http', input: { url: `${target.url}/nested?d=60` } },
      { key: 'st', type: 'action.storeEntry', input: { table: 'deep', entry: around('=steps.s', 9) } },
    ]);
    expect(stepOf(run, 's')?.status).toBe('SUCCEEDED');
    expect(stepOf(run, 'st')).toMatchObject({ status: 'FAILED', error: { code: 'EXPRESSION_TOO_DEEP', message: 'steps.st.input: the value nests more than 64 levels deep' } });
    const emitted = await runToEnd([
      { key: 's', type: 'search.http', input: { url: `${target.url}/nested?d=60` } },
      { key: 'em', type: 'action.emit', input: { event: 'custom.deep', data: around('=steps.s', 9) } },
    ]);
    expect(stepOf(emitted, 'em')).toMatchObject({ status: 'FAILED', error: { code: 'EXPRESSION_TOO_DEEP', message: 'steps.em.input: the value nests more than 64 levels deep' } });
    expect(await entryCount()).toBe(0);
  });

  it('an expression whose value nests past 64 levels fails EXPRESSION_TOO_DEEP', async () => {
    const run = await runToEnd([{ key: 't', type: 'action.transform', input: { expression: '=($f := function($n) { $n = 0 ? 1 : { "a": $f($n - 1) } }; $f(80))' } }]);
    expect(stepOf(run, 't')).toMatchObject({ status: 'FAILED', error: { code: 'EXPRESSION_TOO_DEEP', message: expect.stringMatching(/nests more than 64 levels deep/) } });
  });
});
