/**
 * SIGTERM with a workflow run's model step in flight (Switchyard as its own process, over an upstream the test holds):
 * a graceful stop does no worse than a crash.
 * - The step finishes within the grace period (SHUTDOWN_GRACE_MS): it is recorded as any step, charged once; the next
 *   step is not started while the server drains, and the run goes on with it at the next start.
 * - The grace period ends first: the call is cut and charged for what it generated (as a client that leaves), nothing
 *   is recorded on the run, and at the next start the step runs again: its cut call is not its outcome, the call is
 *   made anew under the attempt's next derived generation id, and the run's cost is both charges (= what the account
 *   was charged).
 */
import { describe, expect, it } from 'vitest';
import { stepGenerationId } from '../../src/modules/workflows/steps/model.js';
import { eventually, within } from '../support/eventually.js';
import { HELD_ANSWER, heldUpstream, publishHeldModels } from '../support/heldUpstream.js';
import { spawnedSwitchyards, type SpawnedSwitchyard } from '../support/spawnedServer.js';

const switchyards = spawnedSwitchyards();

type Gql = (query: string, variables?: Record<string, unknown>, key?: string) => Promise<any>;

const gqlOf =
  (server: SpawnedSwitchyard): Gql =>
  async (query, variables, key) => {
    const { body } = await server.graphql(query, variables, key);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };

/** A designer account with credits, `held/model` served by the upstream, and a manual workflow of model steps. */
const setUp = async (gql: Gql, baseUrl: string, stepKeys: readonly string[]) => {
  await publishHeldModels(gql, baseUrl);
  const opened = (await gql(`mutation { openAccount(name: "Stopping Steps", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).openAccount;
  const accountId = opened.account.id as string;
  const key = opened.initialKey.secret as string;
  await gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "shutdown test") { __typename } }`, { id: accountId });
  const definition = {
    name: 'Slow answers',
    trigger: { type: 'manual' },
    steps: stepKeys.map((stepKey) => ({ key: stepKey, type: 'action.model', input: { model: 'held/model', prompt: '=trigger.body.q', maxTokens: 40 } })),
  };
  const workflowId = (await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }`, { d: definition }, key)).createWorkflow.id as string;
  const runId = (await gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { ... on WorkflowRun { id } } }`, { id: workflowId, input: { q: 'Count to six' } }, key)).runWorkflow.id as string;
  return { accountId, key, runId };
};

const RUN = 'status cost error { code message } steps { key status attempts cost output }';

const endedRun = (gql: Gql, runId: string, key: string) =>
  eventually('the run to end', async () => {
    const { workflowRun } = await gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, key);
    return workflowRun.status === 'RUNNING' || workflowRun.status === 'QUEUED' ? null : workflowRun;
  });

/** The account's balance once nothing is reserved, its generations by id, and the billing audit. */
const billing = (gql: Gql, accountId: string) =>
  eventually('the settled charges', async () => {
    const data = await gql(
      `query($id: ID!) { balance(accountId: $id) { settled reserved } generations(accountId: $id, first: 10) { edges { node { id status cost } } } billingAudit(accountId: $id) { ok } }`,
      { id: accountId },
    );
    return data.balance.reserved === 0 ? data : null;
  });

const generationsOf = (data: { generations: { edges: { node: { id: string; status: string; cost: number } }[] } }) =>
  new Map(data.generations.edges.map(({ node }) => [node.id, node]));

const exitOf = (server: SpawnedSwitchyard) => server.exited.then(() => ({ code: server.child.exitCode, signal: server.child.signalCode }));

describe('SIGTERM with a workflow model step in flight', () => {
  it('the step that finishes within the grace period is recorded and charged once; the next step waits for the next start', { timeout: 90_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-wf-drain-');
      // Far longer than the test: the process must exit because the step is done, not because the grace ran out.
      const first = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '120000' } });
      const gql = gqlOf(first);
      const { accountId, key, runId } = await setUp(gql, upstream.baseUrl, ['first', 'second']);
      await eventually('the model call to reach the upstream', () => upstream.received() === 1);

      first.child.kill('SIGTERM');
      const exit = exitOf(first);
      // Draining (503), or no longer listening once no request is left (the steps are not requests).
      await eventually('the server to stop taking requests', () => fetch(`${first.url}/health`).then((res) => res.status === 503, () => true));
      upstream.release();
      expect(await within('the process to exit', exit)).toEqual({ code: 0, signal: null });
      const stopped = first.output();
      // The second step was not started while the server drained.
      expect(upstream.received()).toBe(1);

      const second = await switchyards.start(dir);
      const gql2 = gqlOf(second);
      const run = await endedRun(gql2, runId, key);
      expect(run.status).toBe('SUCCEEDED');
      expect(run.steps.map((s: { key: string; status: string; attempts: number }) => [s.key, s.status, s.attempts])).toEqual([
        ['first', 'SUCCEEDED', 1],
        ['second', 'SUCCEEDED', 1],
      ]);
      expect(upstream.received()).toBe(2);
      const [firstStep, secondStep] = run.steps;
      // The first step's call is the attempt's own: it ended during the drain, no call was made again.
      expect(firstStep.output).toMatchObject({ text: HELD_ANSWER, generationId: stepGenerationId(runId, `${runId}.first.1`) });
      expect(secondStep.output).toMatchObject({ text: HELD_ANSWER, generationId: stepGenerationId(runId, `${runId}.second.1`) });

      const billed = await billing(gql2, accountId);
      const generations = generationsOf(billed);
      expect([...generations.values()].map((g) => g.status)).toEqual(['COMPLETED', 'COMPLETED']);
      expect(firstStep.cost).toBe(generations.get(firstStep.output.generationId)!.cost);
      expect(firstStep.cost).toBeGreaterThan(0);
      expect(run.cost).toBe(firstStep.cost + secondStep.cost);
      expect(billed.balance.settled).toBe(run.cost);
      expect(billed.billingAudit.ok).toBe(true);
      expect(stopped).toMatch(/"steps":1,.*"msg":"workflow runs: the steps in flight may finish; no new step starts"/);
    } finally {
      await upstream.close();
    }
  });

  it('the step still running when the grace period ends is cut, charged what it generated, and run again at the next start: the run succeeds, charged exactly both calls', { timeout: 90_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-wf-cut-');
      const first = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '1000' } });
      const gql = gqlOf(first);
      const { accountId, key, runId } = await setUp(gql, upstream.baseUrl, ['answer']);
      await eventually('the model call to reach the upstream', () => upstream.received() === 1);

      // The upstream holds the call past the grace period.
      first.child.kill('SIGTERM');
      expect(await within('the process to exit', exitOf(first))).toEqual({ code: 0, signal: null });
      const stopped = first.output();

      upstream.release();
      const second = await switchyards.start(dir);
      const gql2 = gqlOf(second);
      const run = await endedRun(gql2, runId, key);
      expect(run.error).toBeNull();
      expect(run.status).toBe('SUCCEEDED');
      expect(run.steps.map((s: { key: string; status: string; attempts: number }) => [s.key, s.status, s.attempts])).toEqual([['answer', 'SUCCEEDED', 1]]);
      expect(upstream.received()).toBe(2);

      // The cut call stays what it was (cancelled, charged for its first tokens); the attempt's call was made anew
      // under the next derived id. The step's cost, and the run's, is both: what the account was charged.
      const cut = stepGenerationId(runId, `${runId}.answer.1`);
      const remade = stepGenerationId(runId, `${runId}.answer.1#1`);
      const [step] = run.steps;
      expect(step.output).toMatchObject({ text: HELD_ANSWER, generationId: remade });
      const billed = await billing(gql2, accountId);
      const generations = generationsOf(billed);
      expect(generations.get(cut)).toMatchObject({ status: 'CANCELLED' });
      expect(generations.get(cut)!.cost).toBeGreaterThan(0);
      expect(generations.get(remade)).toMatchObject({ status: 'COMPLETED', cost: step.output.cost });
      expect(generations.size).toBe(2);
      expect(step.cost).toBe(generations.get(cut)!.cost + generations.get(remade)!.cost);
      expect(run.cost).toBe(step.cost);
      expect(billed.balance.settled).toBe(run.cost);
      expect(billed.billingAudit.ok).toBe(true);
      expect(stopped).toMatch(/"steps":1,.*"msg":"workflow runs: the shutdown grace period is over: the steps still running are stopped, to run again at the next start"/);
    } finally {
      await upstream.close();
    }
  });
});
