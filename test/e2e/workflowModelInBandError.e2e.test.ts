/**
 * A workflow's model step whose answer its provider ended with an error mid-generation (an OpenAI-protocol choice with
 * `finish_reason: "error"` and an `error`), over GraphQL (createWorkflow, runWorkflow, workflowRun, the workflowRun
 * subscription over graphql-ws) against a fake upstream: the step fails with the provider's error, as the same call
 * failing before any token would, so the step's retry applies; the partial answer is charged as the provider billed
 * it, and counts in the run's cost.
 */
import type { ExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { FakeProvider } from '../support/fakeProviders.js';
import { eventually, within } from '../support/eventually.js';
import { costOf, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 100, completion: 100 };
const USAGE = { promptTokens: 11, completionTokens: 3 };
const MID_ANSWER_502 = { afterChunks: 3, shape: 'choice' as const, code: 502, message: 'upstream died mid-generation' };
const MID_ANSWER_400 = { afterChunks: 3, shape: 'choice' as const, code: 400, message: 'the request was wrong after all' };

let h: GatewayHarness;
let designer: Account;
let upstream: FakeProvider;
const clients: Client[] = [];

beforeAll(async () => {
  h = await startGatewayHarness();
  designer = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
  upstream = await h.fakeEndpoint({ protocol: 'openai', slug: 'wf-ibe', model: 'test/wf-ibe', prices: PRICES });
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  await h.stop();
});

/** answer (a model step, with `retry` if given) → reply (its text). */
const definition = (name: string, retry?: { attempts: number; backoffMs: number }) => ({
  name,
  trigger: { type: 'manual' },
  steps: [
    { key: 'answer', type: 'action.model', input: { model: 'test/wf-ibe', prompt: 'Say hello', maxTokens: 50 }, ...(retry && { retry }) },
    { key: 'reply', type: 'action.respond', input: { text: '=steps.answer.text' } },
  ],
});

const createWorkflow = async (d: unknown): Promise<string> =>
  (await h.gqlOk(`mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message } } }`, { d }, designer.key)).createWorkflow.id;

const RUN_PROGRESS = `subscription ($id: ID!) { workflowRun(id: $id) {
  __typename
  ... on WorkflowStepFailedEvent { key attempt error { code message } cost retryAt }
  ... on WorkflowStepSucceededEvent { key attempt cost }
  ... on WorkflowRunEndedEvent { status error { code message } step cost }
} }`;

/** Run the workflow manually and follow its progress to the end (stored events replayed, then live ones). */
const runToEnd = async (workflowId: string) => {
  const runId = (await h.gqlOk(`mutation ($id: ID!) { runWorkflow(id: $id, input: {}) { ... on WorkflowRun { id } ... on DomainError { code message } } }`, { id: workflowId }, designer.key)).runWorkflow.id as string;
  const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${designer.key}` } });
  clients.push(client);
  const progress: Record<string, unknown>[] = [];
  await within(
    "the run's progress to end",
    new Promise<void>((resolve, reject) =>
      client.subscribe(
        { query: RUN_PROGRESS, variables: { id: runId } },
        {
          next: (result: ExecutionResult) => {
            expect(result.errors).toBeUndefined();
            progress.push((result.data as { workflowRun: Record<string, unknown> }).workflowRun);
          },
          error: reject,
          complete: resolve,
        },
      ),
    ),
  );
  const run = await eventually('the run to end', async () => {
    const { workflowRun } = await h.gqlOk(`query ($id: ID!) { workflowRun(id: $id) { status cost error { code message } steps { key status attempts output error { code message } } } }`, { id: runId }, designer.key);
    return workflowRun.status === 'RUNNING' || workflowRun.status === 'QUEUED' ? null : workflowRun;
  });
  return { run, progress: progress.filter((event) => event.__typename !== 'WorkflowStepTokenEvent' && Object.keys(event).length > 1) };
};

/** The account's generations, newest first, as their records say (GraphQL). */
const generations = async () =>
  (await h.gqlOk(`{ generations(first: 10, newestFirst: true) { edges { node { id status finishReason error cost } } } }`, {}, designer.key)).generations.edges.map(
    (edge: { node: unknown }) => edge.node,
  ) as { id: string; status: string; finishReason: string; error: { type: string; status: number; message: string } | null; cost: number }[];

describe('a model step whose answer its provider ended with an error mid-generation', () => {
  it("fails with the provider's error as its record says it (not a success with the partial text): the run fails, its cost is what the provider billed", async () => {
    const workflowId = await createWorkflow(definition('Broken answer'));
    upstream.script({ inBandError: MID_ANSWER_502, usage: USAGE });
    const { run, progress } = await runToEnd(workflowId);

    const [record] = await generations();
    expect(record).toMatchObject({ status: 'COMPLETED', finishReason: 'error', error: { type: 'provider_unavailable', status: 502 }, cost: costOf(PRICES, 11, 3) });
    // The step's error is the call's: its code as the same 502 before any token gives it, the record's message.
    const error = { code: 'PROVIDER_ERROR', message: record!.error!.message };
    expect(run).toMatchObject({ status: 'FAILED', cost: costOf(PRICES, 11, 3), error, steps: [{ key: 'answer', status: 'FAILED', attempts: 1, output: null, error }] });
    expect(progress).toEqual([
      { __typename: 'WorkflowStepFailedEvent', key: 'answer', attempt: 1, error, cost: costOf(PRICES, 11, 3), retryAt: null },
      { __typename: 'WorkflowRunEndedEvent', status: 'FAILED', error, step: 'answer', cost: costOf(PRICES, 11, 3) },
    ]);
  });

  it("is retried as the step's retry says, the broken attempt's charge counting in the run's cost", async () => {
    const workflowId = await createWorkflow(definition('Broken, then whole', { attempts: 2, backoffMs: 0 }));
    upstream.script({ inBandError: MID_ANSWER_502, usage: USAGE });
    const { run, progress } = await runToEnd(workflowId);

    // The run's two calls (ids order by the run's start, then by the attempt's key: not by attempt).
    const calls = (await generations()).slice(0, 2);
    const first = calls.find((call) => call.error !== null);
    const second = calls.find((call) => call.error === null);
    expect(first).toMatchObject({ finishReason: 'error', error: { status: 502 }, cost: costOf(PRICES, 11, 3) });
    expect(second).toMatchObject({ finishReason: 'stop', error: null });
    const answer = run.steps.find((step: { key: string }) => step.key === 'answer');
    expect(run).toMatchObject({ status: 'SUCCEEDED', cost: first!.cost + second!.cost });
    expect(answer).toMatchObject({ status: 'SUCCEEDED', attempts: 2, output: { finishReason: 'stop', generationId: second!.id, cost: second!.cost } });
    expect(progress.slice(0, 2)).toMatchObject([
      { __typename: 'WorkflowStepFailedEvent', key: 'answer', attempt: 1, error: { code: 'PROVIDER_ERROR', message: first!.error!.message }, cost: first!.cost, retryAt: expect.any(String) },
      { __typename: 'WorkflowStepSucceededEvent', key: 'answer', attempt: 2, cost: second!.cost },
    ]);
  });

  it('that finishes "error" without saying which error fails the step all the same (not a success with the partial text)', async () => {
    const workflowId = await createWorkflow(definition('Broken, unsaid'));
    upstream.script({ inBandError: { ...MID_ANSWER_502, sent: null }, usage: USAGE });
    const { run } = await runToEnd(workflowId);
    const [record] = await generations();
    expect(record).toMatchObject({ status: 'COMPLETED', finishReason: 'error', error: { status: 502, message: expect.stringContaining('without an error saying which') } });
    expect(run).toMatchObject({ status: 'FAILED', steps: [{ key: 'answer', status: 'FAILED', output: null, error: { code: 'PROVIDER_ERROR', message: record!.error!.message } }] });
  });

  it('that says the request was wrong (a 400) fails the step for good, as the same 400 before any token does', async () => {
    const workflowId = await createWorkflow(definition('Refused midway', { attempts: 3, backoffMs: 0 }));
    upstream.script({ inBandError: MID_ANSWER_400, usage: USAGE });
    const asked = upstream.requests.length;
    const { run } = await runToEnd(workflowId);
    const [record] = await generations();
    expect(record).toMatchObject({ finishReason: 'error', error: { status: 400, message: expect.stringContaining('the request was wrong after all') } });
    expect(run).toMatchObject({ status: 'FAILED', cost: costOf(PRICES, 11, 3), steps: [{ key: 'answer', status: 'FAILED', attempts: 1, error: { code: 'BAD_REQUEST', message: record!.error!.message } }] });
    expect(upstream.requests.length - asked).toBe(1);
  });
});
