import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stepGenerationId } from '../../src/modules/workflows/steps/model.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY } from '../support/gatewayHarness.js';
import { heldMarker, holdStepFlag } from '../support/holdStepOutcome.js';
import { spawnedSwitchyards } from '../support/spawnedServer.js';
import { eventually } from '../support/eventually.js';

/**
 * kill -9 of the server in the middle of a run, at each step boundary in turn, then a restart on the same data:
 * the run finishes, a step that succeeded never runs again, the step caught in flight runs again as the same
 * attempt (the HTTP target sees the same Idempotency-Key), the model step is charged once, the billing audit is clean.
 */

type Gql = (query: string, variables?: Record<string, unknown>, key?: string) => Promise<any>;

/** An HTTP target that counts calls per Idempotency-Key; while `holding`, it answers nothing (the call stays in flight). */
const startTarget = async () => {
  const calls = new Map<string, number>();
  const box = { state: { holding: false, seen: 0 } };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = String(req.headers['idempotency-key'] ?? '');
      calls.set(key, (calls.get(key) ?? 0) + 1);
      box.state.seen++;
      if (box.state.holding) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ order: `order-for-${key}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    get state() {
      return box.state;
    },
    set state(next) {
      box.state = next;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

let target: Awaited<ReturnType<typeof startTarget>>;
/** The model's upstream (an OpenAI-compatible fake): it can hang a call, so a kill catches it in flight. */
let upstream: FakeProvider;
const switchyards = spawnedSwitchyards();
const ANSWER = 'It survives.';

beforeAll(async () => {
  target = await startTarget();
  upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
});
afterAll(async () => {
  await target.close();
  await upstream.close();
});
afterEach(() => {
  target.calls.clear();
  target.state = { holding: false, seen: 0 };
  upstream.requests.length = 0;
  upstream.setDefault({ text: ANSWER });
});

const spawnSwitchyard = async (dir: string) => {
  const server = await switchyards.start(dir, {
    entry: 'test/support/switchyardProcess.ts',
    env: { OUTBOUND_ALLOW: '127.0.0.1', TEST_EVENTSTORE_WRAPPER: new URL('../support/holdStepOutcome.ts', import.meta.url).href },
  });
  const gql: Gql = async (query, variables, key) => {
    const { body } = await server.graphql(query, variables, key);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };
  return { gql, kill: server.kill };
};

const RUN = 'status output cost steps { key status attempts output }';
type Step = { key: string; status: string; attempts: number; output: any };

const definition = () => ({
  name: 'Order, answer, shape, reply',
  trigger: { type: 'manual' },
  steps: [
    { key: 'call', type: 'action.http', input: { url: `${target.url}/orders`, body: { question: '=trigger.body.question' } } },
    { key: 'answer', type: 'action.model', input: { model: 'crash/model', prompt: '=trigger.body.question', maxTokens: 40 } },
    // $millis() differs on every evaluation: an output that stays the same was not computed again.
    { key: 'shape', type: 'action.transform', input: { expression: '={"answer": steps.answer.text, "order": steps.call.body.order, "at": $millis()}' } },
    { key: 'reply', type: 'action.respond', input: { answer: '=steps.shape.answer', order: '=steps.shape.order', at: '=steps.shape.at' } },
  ],
});

/**
 * Each window: how the first process is started, how the test gets the run to that point before the kill, and how
 * many times the HTTP target then sees the call's key in all.
 */
type Window = {
  readonly name: string;
  /** The model's upstream hangs in the first process. */
  readonly hangModel?: boolean;
  /** The step whose StepSucceeded the first process never appends. */
  readonly hold?: string;
  readonly holdTarget?: boolean;
  /** Wait until the kill may happen (after the run started). */
  readonly ready: (ctx: { gql: Gql; runId: string; accountId: string; dir: string }) => Promise<unknown>;
  readonly targetCalls: number;
};

/** Register the fake upstream as a provider of `crash/model` (paid) on a fresh server. */
const registerModel = async (gql: Gql) => {
  const registered = await gql(
    `mutation($url: String!, $key: String) { registerProvider(slug: "crash-fake", name: "Crash Fake", protocol: OPENAI, baseUrl: $url, apiKey: $key) { ... on Provider { slug } ... on DomainError { code message } } }`,
    { url: upstream.baseUrl, key: FAKE_API_KEY },
  );
  expect(registered.registerProvider).toEqual({ slug: 'crash-fake' });
  const published = await gql(
    `mutation { publishEndpoint(provider: "crash-fake", model: "crash/model", upstreamModel: "fake-model", prices: { prompt: 1000, completion: 2000 }, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`,
  );
  expect(published.publishEndpoint).toEqual({ id: 'crash/model@crash-fake' });
};

const stepOf = async (gql: Gql, runId: string, key: string, accountKey: string): Promise<Step | undefined> =>
  ((await gql(`query($id: ID!) { workflowRun(id: $id) { steps { key status attempts output } } }`, { id: runId }, accountKey)).workflowRun.steps as Step[]).find((s) => s.key === key);

const held = (dir: string) => eventually('the held step outcome', async () => existsSync(heldMarker(dir)));

const WINDOWS: Window[] = [
  { name: 'the HTTP call in flight (the target holds it)', holdTarget: true, ready: () => eventually('the held call', async () => target.state.seen > 0), targetCalls: 2 },
  { name: 'the HTTP call answered, its StepSucceeded not recorded', hold: 'call', ready: ({ dir }) => held(dir), targetCalls: 2 },
  {
    name: 'the model call in flight (reserved, the upstream holds it)',
    hangModel: true,
    // The reservation in the ledger's stream (durable), not only admitted in memory.
    ready: ({ gql, accountId }) =>
      eventually('the reservation and the call upstream', async () =>
        upstream.requests.length > 0 &&
        (await gql(`query($id: ID!) { ledgerEntries(accountId: $id, first: 5) { edges { node { type } } } }`, { id: accountId })).ledgerEntries.edges.some(
          (e: { node: { type: string } }) => e.node.type === 'CreditsReserved',
        ),
      ),
    targetCalls: 1,
  },
  {
    name: 'the model call completed and recorded, its StepSucceeded not',
    hold: 'answer',
    ready: async ({ gql, runId, accountId, dir }) => {
      await held(dir);
      const id = stepGenerationId(runId, `${runId}.answer.1`);
      await eventually('the generation record and its settlement', async () => {
        const data = await gql(`query($g: ID!, $a: ID!) { generation(id: $g) { status } balance(accountId: $a) { reserved settled } }`, { g: id, a: accountId }).catch(() => null);
        return data?.generation?.status === 'COMPLETED' && data.balance.reserved === 0 && data.balance.settled > 0;
      });
    },
    targetCalls: 1,
  },
  { name: 'the transform done, its StepSucceeded not recorded', hold: 'shape', ready: ({ dir }) => held(dir), targetCalls: 1 },
  { name: 'the respond step done, its StepSucceeded not recorded', hold: 'reply', ready: ({ dir }) => held(dir), targetCalls: 1 },
];

describe('workflow runs killed at each step boundary', () => {
  it.each(WINDOWS)('finishes after kill -9 with $name: done steps stay done, the call keeps its key, the model is charged once', { timeout: 90_000 }, async (window) => {
    const dir = switchyards.dataDir('switchyard-wf-crash-');
    if (window.hold) writeFileSync(holdStepFlag(dir), window.hold);
    target.state.holding = window.holdTarget === true;
    if (window.hangModel) upstream.setDefault({ hang: true });

    const first = await spawnSwitchyard(dir);
    await registerModel(first.gql);
    const opened = (await first.gql(`mutation { openAccount(name: "Casey Crash", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).openAccount;
    const accountId = opened.account.id as string;
    const key = opened.initialKey.secret as string;
    await first.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "crash test") { __typename } }`, { id: accountId });
    const workflowId = (await first.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }`, { d: definition() }, key)).createWorkflow.id as string;
    const runId = (await first.gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { ... on WorkflowRun { id } } }`, { id: workflowId, input: { question: 'Will it survive?' } }, key)).runWorkflow.id as string;

    await window.ready({ gql: first.gql, runId, accountId, dir });
    const before = ((await first.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, key)).workflowRun.steps as Step[]).filter((s) => s.status === 'SUCCEEDED');
    await first.kill();

    rmSync(holdStepFlag(dir), { force: true });
    target.state.holding = false;
    upstream.setDefault({ text: ANSWER });
    const second = await spawnSwitchyard(dir);
    const run = await eventually('the run to end', async () => {
      const { workflowRun } = await second.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, key);
      return workflowRun.status === 'RUNNING' ? null : workflowRun;
    });

    expect(run.status).toBe('SUCCEEDED');
    expect(run.steps.map((s: Step) => [s.key, s.status, s.attempts])).toEqual([
      ['call', 'SUCCEEDED', 1],
      ['answer', 'SUCCEEDED', 1],
      ['shape', 'SUCCEEDED', 1],
      ['reply', 'SUCCEEDED', 1],
    ]);
    // What had succeeded before the kill is exactly as it was (the transform's $millis() was not evaluated again).
    for (const done of before) expect(run.steps.find((s: Step) => s.key === done.key)).toEqual(done);
    const steps = Object.fromEntries(run.steps.map((s: Step) => [s.key, s.output]));
    expect(run.output).toEqual({ answer: steps.answer.text, order: `order-for-${runId}.call`, at: steps.shape.at });
    expect(steps.answer.text).toBe(ANSWER);
    // The model's upstream was called once, or twice when the kill caught the call (a new call, never charged twice).
    expect(upstream.requests).toHaveLength(window.hangModel ? 2 : 1);

    // The target saw one key only, the attempt's: once, or twice when the kill caught the call (the same key again).
    expect([...target.calls]).toEqual([[`${runId}.call`, window.targetCalls]]);

    // Charged once: one completed generation, its cost settled, nothing left reserved, the audit clean.
    const billed = await eventually('the settled charge', async () => {
      const data = await second.gql(
        `query($id: ID!) { balance(accountId: $id) { settled reserved } generations(accountId: $id, first: 10) { edges { node { id status cost } } } billingAudit(accountId: $id) { ok differences { model field expected actual } } }`,
        { id: accountId },
      );
      return data.balance.settled > 0 && data.balance.reserved === 0 ? data : null;
    });
    const completed = billed.generations.edges.map((e: { node: unknown }) => e.node).filter((g: { status: string }) => g.status === 'COMPLETED');
    expect(completed).toEqual([{ id: steps.answer.generationId, status: 'COMPLETED', cost: steps.answer.cost }]);
    expect(billed.balance.settled).toBe(steps.answer.cost);
    expect(run.cost).toBe(steps.answer.cost);
    expect(billed.billingAudit).toEqual({ ok: true, differences: [] });
    // The ledger's story of the attempt's calls, oldest first.
    const entries = (await second.gql(`query($id: ID!) { ledgerEntries(accountId: $id, first: 20) { edges { node { type generationId } } } }`, { id: accountId })).ledgerEntries.edges
      .map((e: { node: { type: string; generationId: string | null } }) => e.node)
      .filter((e: { generationId: string | null }) => e.generationId !== null)
      .reverse();
    const own = stepGenerationId(runId, `${runId}.answer.1`);
    const remade = stepGenerationId(runId, `${runId}.answer.1#1`);
    if (window.hangModel) {
      // The call killed mid-way was never charged (its reservation expired at the restart) and was made again under the next id.
      expect(entries).toEqual([
        { type: 'CreditsReserved', generationId: own },
        { type: 'ReservationExpired', generationId: own },
        { type: 'CreditsReserved', generationId: remade },
        { type: 'ReservationSettled', generationId: remade },
      ]);
      expect(steps.answer.generationId).toBe(remade);
    } else {
      expect(entries).toEqual([
        { type: 'CreditsReserved', generationId: own },
        { type: 'ReservationSettled', generationId: own },
      ]);
      expect(steps.answer.generationId).toBe(own);
    }
  });
});
