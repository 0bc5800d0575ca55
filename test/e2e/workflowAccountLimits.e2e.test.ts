import { afterAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

/**
 * Per-account bounds on workflows, as tables and keys have them: how many workflows an account has
 * (WORKFLOW_MAX_PER_ACCOUNT), how many runs it has running or queued across them (WORKFLOW_MAX_RUNS_PER_ACCOUNT: a
 * caller's start is RATE_LIMITED, a trigger's firing is recorded as a FAILED run, not queued), and how often a schedule
 * fires (WORKFLOW_MIN_SCHEDULE_SECONDS). Without them, 150 workflows firing every second wrote 45 GB a day.
 */
type Gql = Harness['gql'];
const ERROR = '... on DomainError { code message }';
const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses) await h.stop();
});

const designerOf = async (h: Harness) => {
  const { body } = await h.gql(`mutation { openAccount(name: "limits", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
  return body.data.openAccount.initialKey.secret as string;
};
const create = async (gql: Gql, definition: unknown, key: string) =>
  (await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key)).body.data.createWorkflow;
const manual = (name: string) => ({ name, trigger: { type: 'manual' }, steps: [{ key: 't', type: 'action.transform', input: { expression: '=1' } }] });
const runsOf = async (gql: Gql, workflowId: string, key: string): Promise<{ id: string; status: string; error: { code: string; message: string } | null }[]> =>
  (await gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id status error { code message } } } } }', { id: workflowId }, key)).body.data.workflowRuns.edges.map(
    (edge: { node: unknown }) => edge.node,
  );

describe('per-account workflow limits', () => {
  it('an account has at most WORKFLOW_MAX_PER_ACCOUNT workflows: one more is a CONFLICT until one is deleted', async () => {
    const h = await startHarness({ WORKFLOW_MAX_PER_ACCOUNT: '2' });
    harnesses.push(h);
    const key = await designerOf(h);
    const first = await create(h.gql, manual('one'), key);
    expect((await create(h.gql, manual('two'), key)).__typename).toBe('Workflow');
    const third = await create(h.gql, manual('three'), key);
    expect(third).toMatchObject({ code: 'CONFLICT', message: 'The account has the maximum of 2 workflows; delete one first' });
    await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id: first.id }, key);
    expect((await create(h.gql, manual('three'), key)).__typename).toBe('Workflow');
  });

  it('a schedule fires at most once a minute by default: a per-second cron is refused when saved, naming the interval', async () => {
    const h = await startHarness();
    harnesses.push(h);
    const key = await designerOf(h);
    const scheduled = (cron: string) => ({ name: cron, trigger: { type: 'schedule', cron, timezone: 'UTC' }, steps: manual('').steps });
    for (const [cron, apart] of [['* * * * * *', 1], ['*/30 * * * * *', 30], ['0,5 * * * * *', 5]] as const) {
      const answer = await create(h.gql, scheduled(cron), key);
      expect(answer, cron).toMatchObject({ code: 'VALIDATION' });
      expect(answer.message, cron).toContain(`trigger.cron: fires ${apart} s apart; a schedule may fire at most once every 60 s (WORKFLOW_MIN_SCHEDULE_SECONDS)`);
    }
    for (const cron of ['* * * * *', '30 * * * * *', '0 9 * * 1-5']) expect((await create(h.gql, scheduled(cron), key)).__typename, cron).toBe('Workflow');
  });

  it('an account has at most WORKFLOW_MAX_RUNS_PER_ACCOUNT runs running or queued: a start past it is RATE_LIMITED (429), a trigger firing is recorded FAILED, not queued', { timeout: 60_000 }, async () => {
    const h = await startHarness({ WORKFLOW_MAX_RUNS_PER_ACCOUNT: '3', WORKFLOW_MIN_SCHEDULE_SECONDS: '1' });
    harnesses.push(h);
    const key = await designerOf(h);
    // One run at a time, each waiting an hour: the first runs, the next two queue.
    const slow = await create(h.gql, { name: 'slow', trigger: { type: 'manual' }, settings: { maxConcurrentRuns: 1, timeoutSeconds: 7200 }, steps: [{ key: 'wait', type: 'control.delay', input: { for: 'PT1H' } }] }, key);
    const runWorkflow = async (id: string) => (await h.gql(`mutation($id: ID!) { runWorkflow(id: $id) { __typename ... on WorkflowRun { id status } ${ERROR} } }`, { id }, key)).body.data.runWorkflow;
    const started = [];
    for (let i = 0; i < 3; i++) started.push(await runWorkflow(slow.id));
    expect(started.map((run) => run.status)).toEqual(['RUNNING', 'QUEUED', 'QUEUED']);

    const refused = await runWorkflow(slow.id);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringContaining('the account has 3 workflow runs running or queued, its maximum (WORKFLOW_MAX_RUNS_PER_ACCOUNT 3)') });
    // Counted across the account's workflows: a webhook of another one is a 429 too.
    const hook = await create(h.gql, { name: 'hook', trigger: { type: 'webhook', respond: 'async' }, steps: manual('').steps }, key);
    const secret = (await h.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } } }`, { id: hook.id }, key)).body.data.rotateWebhookSecret.secret;
    const webhook = await fetch(`${h.url}/api/v1/workflows/${hook.id}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-webhook-secret': secret }, body: '{}' });
    expect(webhook.status).toBe(429);
    expect(((await webhook.json()) as { error: { message: string } }).error.message).toContain('WORKFLOW_MAX_RUNS_PER_ACCOUNT 3');
    expect(await runsOf(h.gql, hook.id, key)).toEqual([]);

    // A trigger's firing is not queued: it is recorded as a failed run, so the skipped firing shows.
    await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, key);
    const onEntry = await create(h.gql, { name: 'on entry', trigger: { type: 'entry', table: 'inbox', on: 'insert' }, steps: manual('').steps }, key);
    const everySecond = await create(h.gql, { name: 'tick', trigger: { type: 'schedule', cron: '* * * * * *', timezone: 'UTC', catchUp: 'none' }, steps: manual('').steps }, key);
    await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "x" }) { __typename } }', {}, key);
    for (const id of [onEntry.id, everySecond.id]) {
      const [skipped] = await eventually(`a skipped firing of ${id}`, async () => ((runs) => (runs.length > 0 ? runs : null))(await runsOf(h.gql, id, key)));
      expect(skipped).toMatchObject({ status: 'FAILED', error: { code: 'TOO_MANY_RUNS', message: expect.stringContaining('its maximum (WORKFLOW_MAX_RUNS_PER_ACCOUNT 3)') } });
    }
    await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', { id: everySecond.id }, key);

    // A run ended frees its place.
    await h.gql('mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename } }', { id: started[2].id }, key);
    expect(await eventually('a start once a run has ended', async () => ((run) => (run.__typename === 'WorkflowRun' ? run : null))(await runWorkflow(slow.id)))).toMatchObject({ status: 'QUEUED' });
    for (const run of await runsOf(h.gql, slow.id, key)) if (run.status === 'RUNNING' || run.status === 'QUEUED') await h.gql('mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename } }', { id: run.id }, key);
  });
});
