/**
 * The progress subscriptions of workflow runs over a real graphql-ws client: workflowRun(id) (stored events replayed,
 * then live events and model tokens, then completion) and workflowRuns(workflowId) (runs starting and ending).
 *
 * A run is held at its first step by a fake HTTP target (`gate`) that answers only when the test lets it, so a
 * subscriber is in place before the model step streams: every token it produces is then seen live.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEADLINE_MS } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/appHarness.js';

let h: Harness;
let designer: { id: string; key: string; keyId: string };
let stranger: { id: string; key: string; keyId: string };
let gate: Gate;
const clients: Client[] = [];

/** A fake HTTP target that holds every request until `open()`. */
interface Gate {
  readonly url: string;
  readonly server: Server;
  open(): void;
  close(): void;
}
const startGate = async (): Promise<Gate> => {
  let held: ServerResponse[] = [];
  let opened = false;
  const answer = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (opened) answer(res);
    else held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/gate`,
    server,
    open() {
      opened = true;
      for (const res of held) answer(res);
      held = [];
    },
    close() {
      opened = false;
    },
  };
};

const open = async (name: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name, roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } } }`, { name });
  const payload = body.data.openAccount;
  await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "workflows") { __typename } }`, { id: payload.account.id });
  return { id: payload.account.id as string, key: payload.initialKey.secret as string, keyId: payload.initialKey.key.id as string };
};

const createWorkflow = async (definition: unknown, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ... on DomainError { code message details } } }`, { d: definition }, key);
  expect(body.data.createWorkflow.__typename).toBe('Workflow');
  return body.data.createWorkflow.id;
};

const runWorkflow = async (id: string, input: unknown, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { __typename ... on WorkflowRun { id } ... on DomainError { code message } } }`, { id, input }, key);
  expect(body.data.runWorkflow.__typename).toBe('WorkflowRun');
  return body.data.runWorkflow.id;
};

/** gate → a model step on the demo model → respond. */
const gatedModel = () => ({
  name: 'Gated answer',
  trigger: { type: 'manual' },
  steps: [
    { key: 'gate', type: 'action.http', input: { url: gate.url, body: { hello: true } } },
    { key: 'answer', type: 'action.model', input: { model: 'switchyard/demo', prompt: '=trigger.body.question', maxTokens: 200 } },
    { key: 'reply', type: 'action.respond', input: { answer: '=steps.answer.text' } },
  ],
});

const quick = { name: 'Quick', trigger: { type: 'manual' }, steps: [{ key: 'shout', type: 'action.transform', input: { expression: '=$uppercase(trigger.body.name)' } }] };

const RUN_PROGRESS = `subscription($id: ID!) { workflowRun(id: $id) {
  __typename type runId
  ... on WorkflowRunQueuedEvent { revision at workflowId version }
  ... on WorkflowRunStartedEvent { revision at workflowId version }
  ... on WorkflowStepStartedEvent { revision key attempt }
  ... on WorkflowStepSucceededEvent { revision key attempt output cost }
  ... on WorkflowStepFailedEvent { revision key attempt error { code message } cost retryAt }
  ... on WorkflowStepSkippedEvent { revision key reason }
  ... on WorkflowStepTokenEvent { key attempt content }
  ... on WorkflowRunEndedEvent { revision status output error { code message } step cost }
} }`;
const RUNS_OF_WORKFLOW = 'subscription($id: ID!) { workflowRuns(workflowId: $id) { runId workflowId status error { code } at } }';

interface Subscribed {
  readonly results: ExecutionResult[];
  /** Resolves when the server completes the subscription or it fails (`error` holds the failure). */
  readonly ended: Promise<void>;
  error: unknown;
  /** Wait until some result satisfies `predicate`. */
  until(predicate: (result: ExecutionResult) => boolean, timeoutMs?: number): Promise<void>;
}

const subscribe = (key: string, query: string, variables: Record<string, unknown>): Subscribed => {
  const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${key}` } });
  clients.push(client);
  const sub: Subscribed = {
    results: [],
    error: null,
    ended: new Promise<void>((resolve) => {
      client.subscribe(
        { query, variables },
        {
          next: (result) => void sub.results.push(result as ExecutionResult),
          error: (error) => {
            sub.error = error;
            resolve();
          },
          complete: resolve,
        },
      );
    }),
    async until(predicate, timeoutMs = DEADLINE_MS) {
      const deadline = Date.now() + timeoutMs;
      while (!sub.results.some(predicate)) {
        if (Date.now() > deadline) throw new Error(`not seen in ${timeoutMs} ms: ${JSON.stringify(sub.results)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
  return sub;
};

/** The fields of every progress type (and of WorkflowRunStatusChange), each there when its type has it. */
interface Progress {
  readonly __typename?: string;
  readonly type?: string;
  readonly runId: string;
  readonly revision?: number;
  readonly workflowId?: string;
  readonly version?: number;
  readonly key?: string;
  readonly attempt?: number;
  readonly content?: string;
  readonly output?: unknown;
  readonly cost?: number;
  readonly status?: string;
  readonly error?: { readonly code: string } | null;
  readonly step?: string | null;
}
const progressOf = (sub: Subscribed): Progress[] =>
  sub.results.map((result) => {
    expect(result.errors).toBeUndefined();
    return (result.data as { workflowRun: Progress }).workflowRun;
  });

/** Every error code a subscription got, in a payload or as its `error`. */
const codesOf = (sub: Subscribed): unknown[] => [
  ...sub.results.flatMap((result) => (result.errors ?? []).map((error) => error.extensions?.code)),
  ...(Array.isArray(sub.error) ? (sub.error as { extensions?: { code?: unknown } }[]).map((error) => error.extensions?.code) : []),
];

beforeAll(async () => {
  h = await startHarness({ DEMO_TOKEN_DELAY_MS: '2' });
  gate = await startGate();
  designer = await open('Dana Designer');
  stranger = await open('Sam Stranger');
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
  gate.server.close();
  await h.stop();
});

describe('the workflowRun(id) subscription', () => {
  let runId = '';
  let live: Progress[] = [];

  it('delivers the step events in order and the model tokens live; the tokens make up the step’s text; it completes after the run’s end', async () => {
    gate.close();
    const id = await createWorkflow(gatedModel(), designer.key);
    runId = await runWorkflow(id, { question: 'Which way to the switchyard?' }, designer.key);
    const sub = subscribe(designer.key, RUN_PROGRESS, { id: runId });
    // The subscriber is in place once it has seen the gate step start: then let the run go on.
    await sub.until((result) => (result.data as { workflowRun?: Progress } | undefined)?.workflowRun?.key === 'gate');
    gate.open();
    await sub.ended;
    expect(sub.error).toBeNull();
    live = progressOf(sub);

    const outline = live.filter((event) => event.type !== 'TOKEN').map((event) => [event.__typename, event.key ?? null, event.revision]);
    expect(outline).toEqual([
      ['WorkflowRunStartedEvent', null, 0],
      ['WorkflowStepStartedEvent', 'gate', 1],
      ['WorkflowStepSucceededEvent', 'gate', 2],
      ['WorkflowStepStartedEvent', 'answer', 3],
      ['WorkflowStepSucceededEvent', 'answer', 4],
      ['WorkflowStepStartedEvent', 'reply', 5],
      ['WorkflowStepSucceededEvent', 'reply', 6],
      ['WorkflowRunEndedEvent', null, 7],
    ]);
    expect(live[0]).toMatchObject({ type: 'RUN_STARTED', runId, workflowId: id, version: 1 });

    // Every token sits between the model step's start and its success, and together they are its text.
    const types = live.map((event) => event.type);
    const answerStarted = live.findIndex((event) => event.type === 'STEP_STARTED' && event.key === 'answer');
    const answerSucceeded = live.findIndex((event) => event.type === 'STEP_SUCCEEDED' && event.key === 'answer');
    const tokens = live.filter((event) => event.type === 'TOKEN');
    expect(tokens.length).toBeGreaterThan(5);
    expect(types.slice(answerStarted + 1, answerSucceeded).every((type) => type === 'TOKEN')).toBe(true);
    expect(answerSucceeded - answerStarted - 1).toBe(tokens.length);
    expect(tokens.every((token) => token.key === 'answer' && token.attempt === 1 && token.runId === runId)).toBe(true);
    const answer = live[answerSucceeded]!;
    const text = (answer.output as { text: string }).text;
    expect(text).toContain('Which way to the switchyard?');
    expect(tokens.map((token) => token.content).join('')).toBe(text);

    const end = live.at(-1)!;
    expect(end).toMatchObject({ type: 'RUN_ENDED', status: 'SUCCEEDED', output: { answer: text }, error: null, step: null });
    expect(end.cost).toBe(answer.cost);
    expect(answer.cost).toBeGreaterThanOrEqual(0);
  });

  it('a subscriber after the run ended gets its whole stored history, no tokens, then completion', async () => {
    expect(runId).not.toBe('');
    const late = subscribe(designer.key, RUN_PROGRESS, { id: runId });
    await late.ended;
    expect(late.error).toBeNull();
    expect(progressOf(late)).toEqual(live.filter((event) => event.type !== 'TOKEN'));
  });

  it('a cancel made by another request reaches the subscriber as the run’s end (CANCELLED), and the subscription completes', async () => {
    gate.close();
    const id = await createWorkflow(gatedModel(), designer.key);
    const held = await runWorkflow(id, { question: 'never asked' }, designer.key);
    const sub = subscribe(designer.key, RUN_PROGRESS, { id: held });
    await sub.until((result) => (result.data as { workflowRun?: Progress } | undefined)?.workflowRun?.key === 'gate');
    const cancelled = await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { ... on WorkflowRun { status } ... on DomainError { code } } }`, { id: held }, designer.key);
    expect(cancelled.body.data.cancelWorkflowRun).toEqual({ status: 'CANCELLED' });
    await sub.ended;
    gate.open();
    const events = progressOf(sub);
    expect(events.map((event) => event.type)).toEqual(['RUN_STARTED', 'STEP_STARTED', 'RUN_ENDED']);
    expect(events.at(-1)).toMatchObject({ status: 'CANCELLED', error: { code: 'CANCELLED' }, revision: 2 });
  });

  it('subscribers arriving at any moment of a run each get every stored event once, in order, with no gap', async () => {
    const steps = Array.from({ length: 15 }, (_, i) => ({ key: `s${i}`, type: 'action.transform', input: { expression: `=${i}` } }));
    const id = await createWorkflow({ name: 'Many steps', trigger: { type: 'manual' }, steps }, designer.key);
    const run = await runWorkflow(id, null, designer.key);
    const subs: Subscribed[] = [];
    for (let i = 0; i < 8; i++) {
      subs.push(subscribe(designer.key, RUN_PROGRESS, { id: run }));
      await new Promise((resolve) => setTimeout(resolve, 5 * i));
    }
    await Promise.all(subs.map((sub) => sub.ended));
    // RunStarted, a start and a success per step, the end.
    const expected = Array.from({ length: 2 + 2 * steps.length }, (_, i) => i);
    for (const sub of subs) {
      expect(sub.error).toBeNull();
      const events = progressOf(sub);
      expect(events.map((event) => event.revision)).toEqual(expected);
      expect(events.at(-1)).toMatchObject({ type: 'RUN_ENDED', status: 'SUCCEEDED' });
    }
  });

  it("refuses another account's run and an unknown run as NOT_FOUND, and yields nothing of them", async () => {
    expect(runId).not.toBe('');
    const theirs = subscribe(stranger.key, RUN_PROGRESS, { id: runId });
    const missing = subscribe(designer.key, RUN_PROGRESS, { id: 'run_doesnotexist' });
    const junk = subscribe(designer.key, RUN_PROGRESS, { id: '../../etc/passwd' });
    await Promise.all([theirs.ended, missing.ended, junk.ended]);
    for (const sub of [theirs, missing, junk]) {
      expect(codesOf(sub)).toEqual(['NOT_FOUND']);
      expect(sub.results.every((result) => result.data == null)).toBe(true);
    }
  });

  it('ends with UNAUTHENTICATED when the subscriber’s key is revoked while the run is held', async () => {
    gate.close();
    const holder = await open('Kim Keyholder');
    const id = await createWorkflow(gatedModel(), holder.key);
    const held = await runWorkflow(id, { question: 'held' }, holder.key);
    const sub = subscribe(holder.key, RUN_PROGRESS, { id: held });
    await sub.until((result) => (result.data as { workflowRun?: Progress } | undefined)?.workflowRun?.key === 'gate');
    const revoked = await h.gql(`mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: holder.keyId });
    expect(revoked.body.data.revokeApiKey).toEqual({ __typename: 'ApiKey' });
    await sub.ended;
    expect(codesOf(sub)).toEqual(['UNAUTHENTICATED']);
    gate.open();
  });
});

describe('the workflowRuns(workflowId) subscription', () => {
  it('sees a run of the workflow start (RUNNING) and end (SUCCEEDED), and no run of another workflow', async () => {
    const id = await createWorkflow(quick, designer.key);
    const other = await createWorkflow(quick, designer.key);
    const sub = subscribe(designer.key, RUNS_OF_WORKFLOW, { id });
    // graphql-ws does not acknowledge a subscription: run until the first change arrives, then it is in place.
    for (let i = 0; sub.results.length === 0; i++) {
      expect(i).toBeLessThan(100);
      await runWorkflow(id, { name: 'probe' }, designer.key);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await runWorkflow(other, { name: 'elsewhere' }, designer.key);
    const runId = await runWorkflow(id, { name: 'Ada' }, designer.key);
    await sub.until((result) => JSON.stringify(result.data).includes(`"${runId}"`) && JSON.stringify(result.data).includes('SUCCEEDED'));
    const changes = sub.results.map((result) => {
      expect(result.errors).toBeUndefined();
      return (result.data as { workflowRuns: Progress }).workflowRuns;
    });
    expect(changes.every((change) => change.workflowId === id)).toBe(true);
    expect(changes.filter((change) => change.runId === runId).map((change) => change.status)).toEqual(['RUNNING', 'SUCCEEDED']);
  });

  it('a run over maxConcurrentRuns is seen QUEUED, then RUNNING when admitted, then ended; its own stream starts with RUN_QUEUED', async () => {
    gate.close();
    const id = await createWorkflow(
      { ...quick, name: 'One at a time', settings: { maxConcurrentRuns: 1 }, steps: [{ key: 'gate', type: 'action.http', input: { url: gate.url, body: {} } }] },
      designer.key,
    );
    const changes = subscribe(designer.key, RUNS_OF_WORKFLOW, { id });
    // graphql-ws does not acknowledge a subscription: probe (the gate open) until the first change arrives.
    gate.open();
    for (let i = 0; changes.results.length === 0; i++) {
      expect(i).toBeLessThan(100);
      const probe = await runWorkflow(id, {}, designer.key);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await changes.until((result) => JSON.stringify(result.data).includes(`"${probe}"`) && JSON.stringify(result.data).includes('SUCCEEDED'), 2_000).catch(() => undefined);
    }
    gate.close();
    await runWorkflow(id, {}, designer.key);
    const second = await runWorkflow(id, {}, designer.key);
    const progress = subscribe(designer.key, RUN_PROGRESS, { id: second });
    await progress.until((result) => (result.data as { workflowRun?: Progress } | undefined)?.workflowRun?.type === 'RUN_QUEUED');
    gate.open();
    await progress.ended;
    expect(progressOf(progress).map((event) => event.type)).toEqual(['RUN_QUEUED', 'RUN_STARTED', 'STEP_STARTED', 'STEP_SUCCEEDED', 'RUN_ENDED']);
    await changes.until((result) => JSON.stringify(result.data).includes(`"${second}"`) && JSON.stringify(result.data).includes('SUCCEEDED'));
    const statuses = changes.results.map((result) => (result.data as { workflowRuns: Progress }).workflowRuns).filter((change) => change.runId === second).map((change) => change.status);
    expect(statuses).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
  });

  it("shows a restricted key only the runs it started: another key's run is NOT_FOUND, and the workflow's changes are its own runs'", async () => {
    const created = await h.gql('mutation { createApiKey(name: "app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, designer.key);
    const limited = created.body.data.createApiKey.secret as string;
    const id = await createWorkflow(quick, designer.key);
    const ownersRun = await runWorkflow(id, { name: 'owner secret' }, designer.key);
    // Its progress: the owner's run is NOT_FOUND (nothing of it delivered), its own is followed to its end.
    const theirs = subscribe(limited, RUN_PROGRESS, { id: ownersRun });
    await theirs.ended;
    expect(codesOf(theirs)).toEqual(['NOT_FOUND']);
    expect(theirs.results.every((result) => result.data == null)).toBe(true);
    const ownRun = await runWorkflow(id, { name: 'app' }, limited);
    const own = subscribe(limited, RUN_PROGRESS, { id: ownRun });
    await own.ended;
    expect(own.error).toBeNull();
    expect(progressOf(own).at(-1)).toMatchObject({ type: 'RUN_ENDED', status: 'SUCCEEDED' });

    // The workflow's changes: only its own runs'. Probe with its own runs until the subscription is in place.
    const changes = subscribe(limited, RUNS_OF_WORKFLOW, { id });
    for (let i = 0; changes.results.length === 0; i++) {
      expect(i).toBeLessThan(100);
      await runWorkflow(id, { name: 'probe' }, limited);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const owners = await runWorkflow(id, { name: 'owner secret' }, designer.key);
    const ownersEnd = subscribe(designer.key, RUN_PROGRESS, { id: owners });
    await ownersEnd.ended;
    // The owner's run has ended before this one starts: its changes would have come first.
    const last = await runWorkflow(id, { name: 'app' }, limited);
    await changes.until((result) => JSON.stringify(result.data).includes(`"${last}"`) && JSON.stringify(result.data).includes('SUCCEEDED'));
    const seen = changes.results.map((result) => {
      expect(result.errors).toBeUndefined();
      return (result.data as { workflowRuns: Progress }).workflowRuns.runId;
    });
    expect(seen).not.toContain(owners);
    expect(seen).toContain(last);
    // The owner's full key sees them all.
    const all = subscribe(designer.key, RUNS_OF_WORKFLOW, { id });
    for (let i = 0; all.results.length === 0; i++) {
      expect(i).toBeLessThan(100);
      await runWorkflow(id, { name: 'probe' }, limited);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const another = await runWorkflow(id, { name: 'owner' }, designer.key);
    await all.until((result) => JSON.stringify(result.data).includes(`"${another}"`) && JSON.stringify(result.data).includes('SUCCEEDED'));
  });

  it("refuses another account's workflow as NOT_FOUND", async () => {
    const id = await createWorkflow(quick, designer.key);
    const sub = subscribe(stranger.key, RUNS_OF_WORKFLOW, { id });
    await sub.ended;
    expect(codesOf(sub)).toEqual(['NOT_FOUND']);
  });
});
