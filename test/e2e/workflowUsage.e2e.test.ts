import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/** A workflow run's model calls are billed to its account and show in its usage grouped by workflow. */
let h: Harness;
let designer: { id: string; key: string };

const ERROR = '... on DomainError { code message }';

const open = async (name: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await h.gql('mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename } }', { id: account.id, role: 'DESIGNER' });
  await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "workflows") { __typename } }`, { id: account.id });
  return account;
};

const asker = (name: string, maxTokens: number) => ({
  name,
  trigger: { type: 'manual' },
  steps: [{ key: 'answer', type: 'action.model', input: { model: 'switchyard/demo-paid', prompt: '=trigger.body.question', maxTokens } }],
});

const createWorkflow = async (definition: unknown): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, designer.key);
  expect(body.data.createWorkflow.__typename).toBe('Workflow');
  return body.data.createWorkflow.id;
};

/** Run the workflow to its end; its run's cost and the generation its model step made. */
const runToEnd = async (id: string, question: string): Promise<{ id: string; cost: number; generationId: string }> => {
  const started = await h.gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { ... on WorkflowRun { id } ${ERROR} } }`, { id, input: { question } }, designer.key);
  const runId = started.body.data.runWorkflow.id as string;
  const until = Date.now() + 20_000;
  for (;;) {
    const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { status cost error { code message } steps { key output } } }`, { id: runId }, designer.key);
    const run = body.data.workflowRun;
    if (run.status === 'SUCCEEDED') return { id: runId, cost: Number(run.cost), generationId: run.steps[0].output.generationId };
    if (run.status !== 'RUNNING' && run.status !== 'QUEUED') throw new Error(`run ${runId} ended ${JSON.stringify(run)}`);
    if (Date.now() > until) throw new Error(`run ${runId} did not end`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/** The read models settle after the run: wait until the usage shows `requests` calls in all. */
const usageByWorkflow = async (requests: number): Promise<{ group: string; requests: number; cost: number }[]> => {
  const until = Date.now() + 10_000;
  for (;;) {
    const { body } = await h.gql(`query { usage(groupBy: WORKFLOW) { group requests cost } }`, {}, designer.key);
    expect(body.errors).toBeUndefined();
    const rows = body.data.usage.map((row: { group: string; requests: number; cost: unknown }) => ({ ...row, cost: Number(row.cost) }));
    if (rows.reduce((sum: number, row: { requests: number }) => sum + row.requests, 0) >= requests || Date.now() > until) return rows;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

beforeAll(async () => {
  h = await startHarness();
  designer = await open('Uma Usage');
});
afterAll(async () => {
  await h.stop();
});

describe('usage by workflow', () => {
  it("groups a workflow run's model calls by workflow, each one's cost its runs' cost, and the generations name the workflow and run", async () => {
    const first = await createWorkflow(asker('First asker', 50));
    const second = await createWorkflow(asker('Second asker', 200));
    const runs = [await runToEnd(first, 'Short question?'), await runToEnd(first, 'Another question, a little longer?'), await runToEnd(second, 'A third question?')];
    for (const run of runs) expect(run.cost).toBeGreaterThan(0);

    const rows = await usageByWorkflow(3);
    expect(rows).toEqual(
      [
        { group: first, requests: 2, cost: runs[0]!.cost + runs[1]!.cost },
        { group: second, requests: 1, cost: runs[2]!.cost },
      ].sort((a, b) => a.group.localeCompare(b.group)),
    );

    // The same totals per workflow, on the workflow.
    const { body } = await h.gql(`query($id: ID!) { workflow(id: $id) { usage { group requests cost } } }`, { id: first }, designer.key);
    expect(body.data.workflow.usage).toEqual({ group: first, requests: 2, cost: runs[0]!.cost + runs[1]!.cost });

    const generation = await h.gql(`query($id: ID!) { generation(id: $id) { apiType workflowId workflowRunId cost } }`, { id: runs[2]!.generationId }, designer.key);
    expect(generation.body.data.generation).toEqual({ apiType: 'workflow', workflowId: second, workflowRunId: runs[2]!.id, cost: runs[2]!.cost });

    // The ledger agrees with the read models, per workflow rows included.
    const audit = await h.gql(`query($id: ID) { billingAudit(accountId: $id) { ok differences { field } } }`, { id: designer.id });
    expect(audit.body.data.billingAudit).toMatchObject({ ok: true, differences: [] });
  });

  it('a call outside workflows groups under "-", and a workflow without runs has zero usage', async () => {
    const idle = await createWorkflow(asker('Idle asker', 50));
    const sent = await h.gql(`mutation { sendPrompt(input: { model: "switchyard/demo-paid", prompt: "Direct", maxTokens: 20 }) { __typename } }`, {}, designer.key);
    expect(sent.body.errors).toBeUndefined();
    const until = Date.now() + 10_000;
    let rows: { group: string }[] = [];
    while (!rows.some((row) => row.group === '-') && Date.now() < until) {
      rows = (await h.gql(`query { usage(groupBy: WORKFLOW) { group requests } }`, {}, designer.key)).body.data.usage;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(rows).toContainEqual({ group: '-', requests: 1 });
    const { body } = await h.gql(`query($id: ID!) { workflow(id: $id) { usage { requests cost } } }`, { id: idle }, designer.key);
    expect(body.data.workflow.usage).toEqual({ requests: 0, cost: 0 });
  });
});
