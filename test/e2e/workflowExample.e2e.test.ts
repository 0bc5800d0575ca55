import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { DEADLINE_MS } from '../support/eventually.js';

/**
 * The brief's example, run manually: a search picks a model by criteria, a model step answers the question, a respond
 * step shapes the answer. Everything as wired in main.ts: the definitions module, the executor and the step runners
 * (the catalog's one model listing, the gateway with its billing).
 */
let h: Harness;
let designer: { id: string; key: string };

const example = {
  name: 'Answer questions',
  trigger: { type: 'manual' },
  settings: { maxConcurrentRuns: 10, timeoutSeconds: 120, budget: 50_000_000 },
  steps: [
    { key: 'pick', type: 'search.models', input: { maxPromptPrice: 1000, sort: 'price', provider: 'switchyard' } },
    { key: 'answer', type: 'action.model', input: { model: '=steps.pick.first.id', prompt: '=trigger.body.question', maxTokens: 300 } },
    { key: 'reply', type: 'action.respond', input: { status: 200, body: { answer: '=steps.answer.text', model: '=steps.answer.model' } } },
  ],
};

beforeAll(async () => {
  h = await startHarness({ DEMO_TOKEN_DELAY_MS: '0' });
  const { body } = await h.gql(`mutation { openAccount(name: "Dana", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  designer = { id: body.data.openAccount.account.id, key: body.data.openAccount.initialKey.secret };
  await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "workflows") { __typename } }`, { id: designer.id });
});
afterAll(async () => {
  await h.stop();
});

describe("the brief's example workflow", () => {
  it('picks a model by criteria, asks it the question, and answers with its text; the call is billed to the account once', async () => {
    const created = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message details } } }`, { d: example }, designer.key);
    const id = created.body.data.createWorkflow.id as string;
    expect(id).toBeTruthy();
    const started = await h.gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { ... on WorkflowRun { id status } ... on DomainError { code message } } }`, { id, input: { question: 'What is a switchyard?' } }, designer.key);
    const runId = started.body.data.runWorkflow.id as string;
    let run: { status: string; output: { status: number; body: { answer: string; model: string } }; cost: number; steps: { key: string; status: string; output: unknown }[] } | undefined;
    for (const deadline = Date.now() + DEADLINE_MS; Date.now() < deadline; ) {
      const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { status output cost steps { key status output } } }`, { id: runId }, designer.key);
      run = body.data.workflowRun;
      if (run!.status !== 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(run!.status).toBe('SUCCEEDED');
    expect(run!.steps.map((s) => [s.key, s.status])).toEqual([
      ['pick', 'SUCCEEDED'],
      ['answer', 'SUCCEEDED'],
      ['reply', 'SUCCEEDED'],
    ]);
    const pick = run!.steps[0]!.output as { first: { id: string }; count: number };
    expect(pick.count).toBeGreaterThan(0);
    expect(run!.output.status).toBe(200);
    expect(run!.output.body.model).toBe(pick.first.id.replace(/:free$/, ''));
    expect(run!.output.body.answer.length).toBeGreaterThan(0);

    // Billed once, to the workflow's account, as one generation.
    await h.running.core.gateway.idle();
    const gens = await h.gql(`query($id: ID!) { generations(accountId: $id, first: 10) { edges { node { id cost } } } }`, { id: designer.id }, designer.key);
    expect(gens.body.errors).toBeUndefined();
    const edges = gens.body.data.generations.edges as { node: { id: string; cost: number } }[];
    expect(edges).toHaveLength(1);
    expect(run!.cost).toBe(edges[0]!.node.cost);
  });
});
