/**
 * Event triggers on the started app: platform events of the workflow's own account start its runs (generation
 * completed, API key created, custom events from action.emit, a failed run as an error workflow), another account's
 * events never do, and chains of runs triggering each other stop at the depth limit.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CHAIN_DEPTH } from '../../src/modules/workflows/run.api.js';
import { actionEmit } from '../../src/modules/workflows/steps/emit.js';
import { customEventStream } from '../../src/modules/workflows/customEvents.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

let h: Harness;
let dana: { id: string; key: string };
let sam: { id: string; key: string };
let github: { url: string; requests: { method: string; path: string; authorization: string | undefined; body: unknown }[]; server: Server };

const ERROR = '... on DomainError { code message details }';
const RUN = 'id status output error { code message } steps { key status error { code message } }';

const open = async (name: string, credits = 0) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await h.gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  if (credits > 0) await h.gql('mutation($id: ID!, $amount: Money!) { grantCredits(accountId: $id, amount: $amount, reason: "test") { __typename } }', { id: account.id, amount: credits });
  return account;
};

const save = async (definition: unknown, key: string) => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  return body.data.createWorkflow as { __typename: string; id?: string; code?: string; message?: string; details?: { path?: string } };
};
const create = async (definition: unknown, key: string): Promise<string> => {
  const saved = await save(definition, key);
  expect(saved).toMatchObject({ __typename: 'Workflow' });
  return saved.id!;
};

/** A workflow that answers with its trigger, so a run's output shows the payload it got. */
const echo = (name: string, trigger: unknown, settings?: unknown) => ({
  name,
  trigger,
  ...(settings !== undefined && { settings }),
  steps: [{ key: 'reply', type: 'action.respond', input: { got: '=trigger' } }],
});

const failing = (name: string, settings?: unknown) => ({
  name,
  trigger: { type: 'manual' },
  ...(settings !== undefined && { settings }),
  steps: [{ key: 'boom', type: 'action.transform', input: { expression: '=$error("it broke")' } }],
});

const runsOf = async (workflowId: string, key: string) => {
  const { body } = await h.gql(`query($id: ID!) { workflowRuns(workflowId: $id, first: 50) { edges { node { ${RUN} } } } }`, { id: workflowId }, key);
  expect(body.errors).toBeUndefined();
  return (body.data.workflowRuns.edges as { node: { id: string; status: string; output: any; error: { code: string; message: string } | null } }[]).map((edge) => edge.node);
};

/** Wait until the workflow has `count` ended runs; answers them. */
const endedRuns = async (workflowId: string, key: string, count: number, timeoutMs = 15_000) => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const runs = (await runsOf(workflowId, key)).filter((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED');
    if (runs.length >= count) return runs;
    if (Date.now() > until) throw new Error(`workflow ${workflowId} has ${runs.length} ended runs, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/**
 * Until the event trigger follower has handled every event in the log now, for the checks that something did not
 * fire (a quiet while proved nothing on a loaded host, where the follower may lag more than any wait): a marker
 * event emitted now lies after them in the log, and the one follower (all accounts') handles events one by one in
 * log order, starting each one's runs before the next, so once the marker's run is on record, so is every run the
 * earlier events started. The calls' records first: each is appended a little after its answer (SOON_HOLD_MS).
 */
let marker: { key: string; emitter: string; listener: string; seen: number } | null = null;
const triggersCaughtUp = async () => {
  if (!marker) {
    const { key } = await open('Marker');
    const listener = await create(echo('On markers', { type: 'event', event: 'custom.marker' }), key);
    const emitter = await create({ name: 'Mark', trigger: { type: 'manual' }, steps: [{ key: 'emit', type: 'action.emit', input: { event: 'custom.marker', data: 1 } }] }, key);
    marker = { key, emitter, listener, seen: 0 };
  }
  await h.running.core.gateway.idle();
  await runManual(marker.emitter, null, marker.key);
  marker.seen += 1;
  await endedRuns(marker.listener, marker.key, marker.seen);
};

const runManual = async (workflowId: string, input: unknown, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { __typename ... on WorkflowRun { id } ${ERROR} } }`, { id: workflowId, input }, key);
  expect(body.data.runWorkflow.__typename).toBe('WorkflowRun');
  return body.data.runWorkflow.id;
};

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => resolve(text));
  });

beforeAll(async () => {
  const requests: typeof github.requests = [];
  const server = createServer((req, res) => {
    void readBody(req).then((text) => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body: text ? JSON.parse(text) : null });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 4242, html_url: 'https://github.example/acme/app/pull/7#issuecomment-4242', created_at: '2026-12-02T09:00:00Z' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  github = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
  h = await startHarness({ GITHUB_API_URL: github.url });
  dana = await open('Dana', 10_000_000_000);
  sam = await open('Sam', 10_000_000_000);
});
afterAll(async () => {
  await h?.stop();
  await new Promise((resolve) => github?.server.close(resolve));
});

describe('event triggers', () => {
  it('generation.completed starts a run with the call’s payload, filtered by model, for the caller’s own account only', async () => {
    const demo = await create(echo('On demo answers', { type: 'event', event: 'generation.completed', filter: { model: 'switchyard/demo' } }), dana.key);
    const other = await create(echo('On other answers', { type: 'event', event: 'generation.completed', filter: { model: 'acme/other' } }), dana.key);
    // Sam's call comes first: it must start none of Dana's workflows.
    await h.gql('mutation { sendPrompt(input: { model: "switchyard/demo", prompt: "Sam here" }) { __typename } }', {}, sam.key);
    const { body } = await h.gql('mutation { sendPrompt(input: { model: "switchyard/demo", prompt: "Dana here" }) { ... on SendPromptResult { generationId } } }', {}, dana.key);
    const generationId = body.data.sendPrompt.generationId as string;

    const [run] = await endedRuns(demo, dana.key, 1);
    expect(run!.status).toBe('SUCCEEDED');
    const got = run!.output.got;
    expect(got).toMatchObject({ event: 'generation.completed', id: generationId, model: 'switchyard/demo', status: 'completed', workflowId: null, runId: null });
    expect(got.tokens).toEqual({ prompt: expect.any(Number), completion: expect.any(Number), reasoning: expect.any(Number), cached: expect.any(Number) });
    expect(typeof got.cost).toBe('number');
    await triggersCaughtUp();
    expect(await runsOf(demo, dana.key)).toHaveLength(1);
    expect(await runsOf(other, dana.key)).toHaveLength(0);
  });

  it('a workflow created, disabled, enabled or retargeted between two calls of an account applies from the next call on', async () => {
    const carol = await open('Carol', 10_000_000_000);
    const call = async () => {
      const { body } = await h.gql('mutation { sendPrompt(input: { model: "switchyard/demo", prompt: "hi" }) { ... on SendPromptResult { generationId } } }', {}, carol.key);
      return body.data.sendPrompt.generationId as string;
    };
    const firedFor = async (workflowId: string) => (await runsOf(workflowId, carol.key)).map((run) => run.output?.got?.id as string).sort();
    // A call before the account has any event workflow (its lookup finds none): on record and handled before the
    // workflow exists (its record, appended a little after the answer, would otherwise fire the workflow).
    await call();
    await triggersCaughtUp();
    const workflow = await create(echo('On answers', { type: 'event', event: 'generation.completed' }), carol.key);
    const first = await call();
    await endedRuns(workflow, carol.key, 1);
    const disabled = await h.gql(`mutation($id: ID!) { disableWorkflow(id: $id) { __typename ${ERROR} } }`, { id: workflow }, carol.key);
    expect(disabled.body.data.disableWorkflow.__typename).toBe('Workflow');
    await call();
    // On record, and handled, while the workflow is disabled (a record appended after the enable below would fire it).
    await triggersCaughtUp();
    expect(await firedFor(workflow)).toEqual([first]);
    const enabled = await h.gql(`mutation($id: ID!) { enableWorkflow(id: $id) { __typename ${ERROR} } }`, { id: workflow }, carol.key);
    expect(enabled.body.data.enableWorkflow.__typename).toBe('Workflow');
    const third = await call();
    await endedRuns(workflow, carol.key, 2);
    expect(await firedFor(workflow)).toEqual([first, third].sort());
    // Now listening to another event: calls no longer start it.
    const updated = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ${ERROR} } }`, { id: workflow, d: echo('On failures', { type: 'event', event: 'generation.failed' }) }, carol.key);
    expect(updated.body.data.updateWorkflow.__typename).toBe('Workflow');
    await call();
    await triggersCaughtUp();
    expect(await firedFor(workflow)).toEqual([first, third].sort());
  });

  it('apiKey.created starts a run with the key’s id, name and hint, never its secret or hash', async () => {
    const workflow = await create(echo('On new keys', { type: 'event', event: 'apiKey.created' }), dana.key);
    await h.gql('mutation { createApiKey(name: "from-sam") { __typename } }', {}, sam.key);
    const { body } = await h.gql('mutation { createApiKey(name: "ci") { ... on CreatedApiKey { secret key { id } } } }', {}, dana.key);
    const { secret, key } = body.data.createApiKey;
    const [run] = await endedRuns(workflow, dana.key, 1);
    expect(run!.output.got).toMatchObject({ event: 'apiKey.created', id: key.id, name: 'ci', limit: null, limitReset: 'never' });
    const text = JSON.stringify(run!.output.got);
    expect(text).not.toContain(secret);
    expect(run!.output.got).not.toHaveProperty('hash');
    await triggersCaughtUp();
    expect(await runsOf(workflow, dana.key)).toHaveLength(1);
  });

  it('action.emit’s custom event starts the workflows listening to it whose filter matches, once', async () => {
    const emitter = await create(
      { name: 'Place order', trigger: { type: 'manual' }, steps: [{ key: 'emit', type: 'action.emit', input: { event: 'custom.order_placed', data: '=trigger.body' } }] },
      dana.key,
    );
    const big = await create(echo('Big orders', { type: 'event', event: 'custom.order_placed', filter: { 'data.total': { $gt: 10 } } }), dana.key);
    const samListens = await create(echo('Sam listens', { type: 'event', event: 'custom.order_placed' }), sam.key);

    await runManual(emitter, { total: 5 }, dana.key);
    const emitRun = await runManual(emitter, { total: 42 }, dana.key);
    const [run] = await endedRuns(big, dana.key, 1);
    expect(run!.output.got).toMatchObject({ event: 'custom.order_placed', data: { total: 42 }, source: { workflowId: emitter, runId: emitRun, step: 'emit' } });
    await triggersCaughtUp();
    expect(await runsOf(big, dana.key)).toHaveLength(1);
    expect(await runsOf(samListens, sam.key)).toHaveLength(0);
  });

  it('a chain of runs that fans out (each run emitting four events that start the same workflow) starts at most 100 runs, then refuses them as CHAIN_TOO_LONG', { timeout: 60_000 }, async () => {
    const fan = await open('Fan');
    const boom = (n: number) => ({ key: `emit${n}`, type: 'action.emit', input: { event: 'custom.boom', data: n } });
    const spreader = await create({ name: 'Spread', trigger: { type: 'event', event: 'custom.boom' }, settings: { maxConcurrentRuns: 100 }, steps: [1, 2, 3, 4].map(boom) }, fan.key);
    const starter = await create({ name: 'Start', trigger: { type: 'manual' }, steps: [boom(0)] }, fan.key);
    await runManual(starter, {}, fan.key);
    // Every run of the spreader, page by page, once none is running and no new one appears.
    const all = async () => {
      const runs: { status: string; error: { code: string } | null }[] = [];
      for (let after: string | null = null; ; ) {
        const { body } = await h.gql(`query($id: ID!, $after: String) { workflowRuns(workflowId: $id, first: 100, after: $after) { edges { node { status error { code } } } pageInfo { hasNextPage endCursor } } }`, { id: spreader, after }, fan.key);
        const page = body.data.workflowRuns;
        runs.push(...page.edges.map((edge: { node: (typeof runs)[number] }) => edge.node));
        if (!page.pageInfo.hasNextPage) return runs;
        after = page.pageInfo.endCursor;
      }
    };
    // The chain is over once every custom.boom event has its run (the starter's one, and four from each run that
    // succeeded) and none is running: counted, not guessed from a quiet while (a loaded host can pause longer).
    const runs = await eventually(
      'the chain to end',
      async () => ((found) => found.length === 1 + 4 * found.filter((run) => run.status === 'SUCCEEDED').length && found.every((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED') && found)(await all()),
      { timeoutMs: 45_000, intervalMs: 200 },
    );
    const refused = (code: string) => runs.filter((run) => run.error?.code === code).length;
    // The starter's run began the chain: 100 more ran (the depth limit alone let 341 run, and refused 1,024 more).
    expect(runs.filter((run) => run.status === 'SUCCEEDED')).toHaveLength(100);
    expect(refused('CHAIN_TOO_LONG')).toBeGreaterThan(0);
    expect(runs.length).toBe(100 + refused('CHAIN_TOO_LONG') + refused('CHAIN_TOO_DEEP'));
  });

  it('balance.below fires when the balance falls from at or above the threshold to below it, not again while it stays below', async () => {
    const bea = await open('Bea');
    const workflow = await create(echo('Low balance', { type: 'event', event: 'balance.below', threshold: 5_000_000_000 }), bea.key);
    const refund = (amount: number) => h.gql('mutation($id: ID!, $amount: Money!) { refundCredits(accountId: $id, amount: $amount, reason: "test") { __typename } }', { id: bea.id, amount });
    // Only bought credits are refundable; rising past the threshold fires nothing.
    const bought = await h.gql('mutation($id: ID!) { purchaseCredits(accountId: $id, amount: 10000000000, paymentMethod: "pm_card_visa") { __typename } }', { id: bea.id });
    expect(bought.body.errors).toBeUndefined();
    await refund(2_000_000_000); // 10 → 8 USD: still above
    await refund(4_000_000_000); // 8 → 4 USD: crosses
    await refund(1_000_000_000); // 4 → 3 USD: stays below
    const [run] = await endedRuns(workflow, bea.key, 1);
    expect(run!.output.got).toMatchObject({ event: 'balance.below', balance: 4_000_000_000, previousBalance: 8_000_000_000, threshold: 5_000_000_000, cause: { type: 'CreditsRefunded' } });
    await triggersCaughtUp();
    expect(await runsOf(workflow, bea.key)).toHaveLength(1);
  });

  it('an emit attempt run again (same idempotency key) appends its event once', async () => {
    const { core } = h.running;
    const emit = actionEmit({ eventStore: core.eventStore, now: () => new Date() });
    const context = {
      runId: 'run_emitonce',
      workflowId: 'wf_emitonce',
      stepKey: 'emit',
      attempt: 1,
      idempotencyKey: 'run_emitonce.emit.1',
      principal: { accountId: sam.id, keyId: null, roles: new Set<never>() },
      budgetLeft: 0,
      signal: new AbortController().signal,
    };
    const first = await emit({ event: 'custom.ping', data: 1 }, context);
    const again = await emit({ event: 'custom.ping', data: 1 }, context);
    expect(again.output).toEqual(first.output);
    const events = await core.eventStore.readStream(customEventStream(sam.id));
    expect(events.filter((event) => (event.data as { source: { runId: string } | null }).source?.runId === 'run_emitonce')).toHaveLength(1);
  });

  it('refuses a bad event trigger when saved: unknown event, bad filter, a threshold missing or misplaced', async () => {
    const cases: [unknown, string, string][] = [
      [{ type: 'event', event: 'generation.exploded' }, 'trigger.event', 'unknown event'],
      [{ type: 'event', event: 'custom.' }, 'trigger.event', 'unknown event'],
      [{ type: 'event', event: 'generation.completed', filter: { cost: { $bogus: 1 } } }, 'trigger.filter', '$bogus is not an allowed operator'],
      [{ type: 'event', event: 'generation.completed', filter: { $where: 'true' } }, 'trigger.filter', 'not a valid MongoDB-style match'],
      // Held to a table filter's checks: one account's filter used to stop every account's event triggers.
      [{ type: 'event', event: 'custom.poison', filter: { 'data.__proto__.x': 1 } }, 'trigger.filter', 'none of __proto__'],
      [{ type: 'event', event: 'custom.slow', filter: { 'data.s': { $regex: 'a{1,600}a{1,600}c' } } }, 'trigger.filter', 'counted repetition'],
      [{ type: 'event', event: 'balance.below' }, 'trigger.threshold', 'needs a threshold'],
      [{ type: 'event', event: 'apiKey.created', threshold: 5 }, 'trigger.threshold', 'balance.below only'],
    ];
    for (const [trigger, path, message] of cases) {
      const saved = await save(echo('Bad', trigger), dana.key);
      expect(saved, JSON.stringify(trigger)).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path } });
      expect(saved.message).toContain(message);
    }
  });
});

describe('error workflows (workflowRun.failed)', () => {
  it('a failed run starts its error workflow with the failed run’s id, workflow, error, failed step and trigger', async () => {
    const handler = await create(echo('Handle failures', { type: 'manual' }), dana.key);
    const broken = await create(failing('Broken', { errorWorkflow: handler }), dana.key);
    const failedRun = await runManual(broken, { order: 7 }, dana.key);
    const [run] = await endedRuns(handler, dana.key, 1);
    expect(run!.status).toBe('SUCCEEDED');
    expect(run!.output.got).toMatchObject({
      event: 'workflowRun.failed',
      runId: failedRun,
      workflowId: broken,
      workflowName: 'Broken',
      version: 1,
      failedStep: 'boom',
      error: { code: expect.any(String), message: expect.stringContaining('it broke') },
      trigger: { body: { order: 7 } },
    });
    await triggersCaughtUp();
    expect(await runsOf(handler, dana.key)).toHaveLength(1);
  });

  it('a workflowRun.failed trigger and an error workflow naming the same workflow start one run, not two', async () => {
    const both = await create(echo('Both ways', { type: 'event', event: 'workflowRun.failed', filter: { workflowName: 'Broken twice' } }), dana.key);
    const broken = await create(failing('Broken twice', { errorWorkflow: both }), dana.key);
    await runManual(broken, null, dana.key);
    await endedRuns(both, dana.key, 1);
    await triggersCaughtUp();
    expect(await runsOf(both, dana.key)).toHaveLength(1);
  });

  it('refuses an error workflow of another account, a missing one, or the workflow itself, naming settings.errorWorkflow', async () => {
    const samsWorkflow = await create(echo('Sam’s', { type: 'manual' }), sam.key);
    for (const [target, message] of [
      [samsWorkflow, `there is no workflow ${samsWorkflow} in this account`],
      ['wf_0mzzzzzzz0000000000000000', 'there is no workflow wf_0mzzzzzzz0000000000000000 in this account'],
      ['not-an-id', 'must be a workflow id'],
    ] as const) {
      const saved = await save(failing('Points elsewhere', { errorWorkflow: target }), dana.key);
      expect(saved).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: 'settings.errorWorkflow' } });
      expect(saved.message).toContain(message);
    }
    const mine = await create(failing('Mine'), dana.key);
    const { body } = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ${ERROR} } }`, { id: mine, d: failing('Mine', { errorWorkflow: mine }) }, dana.key);
    expect(body.data.updateWorkflow).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringContaining('its own error workflow') });
  });

  it(`two workflows that are each other’s error workflow stop after ${MAX_CHAIN_DEPTH + 1} runs with CHAIN_TOO_DEEP`, async () => {
    const a = await create(failing('Ping'), dana.key);
    const b = await create(failing('Pong', { errorWorkflow: a }), dana.key);
    const { body } = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename } }`, { id: a, d: failing('Ping', { errorWorkflow: b }) }, dana.key);
    expect(body.data.updateWorkflow.__typename).toBe('Workflow');
    await runManual(a, null, dana.key);
    // Depths 0..5 run (A 0,2,4; B 1,3,5); the 7th, A at depth 6, is recorded as refused.
    const aRuns = await endedRuns(a, dana.key, 4);
    const bRuns = await endedRuns(b, dana.key, 3);
    await triggersCaughtUp();
    expect(await runsOf(a, dana.key)).toHaveLength(4);
    expect(await runsOf(b, dana.key)).toHaveLength(3);
    const refused = [...aRuns, ...bRuns].filter((run) => run.error?.code === 'CHAIN_TOO_DEEP');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ status: 'FAILED', steps: [] });
    expect(refused[0]!.error!.message).toContain('chain of runs triggering each other');
  });

  it('a workflow that emits the event it listens to stops at the depth limit too', async () => {
    const loop = await create(
      { name: 'Echo chamber', trigger: { type: 'event', event: 'custom.loop' }, steps: [{ key: 'again', type: 'action.emit', input: { event: 'custom.loop', data: '=trigger.data + 1' } }] },
      dana.key,
    );
    const kick = await create({ name: 'Kick', trigger: { type: 'manual' }, steps: [{ key: 'go', type: 'action.emit', input: { event: 'custom.loop', data: 0 } }] }, dana.key);
    await runManual(kick, null, dana.key);
    // Kick is depth 0; the loop's runs are depths 1..5, then depth 6 is refused.
    const runs = await endedRuns(loop, dana.key, MAX_CHAIN_DEPTH + 1);
    await triggersCaughtUp();
    const all = await runsOf(loop, dana.key);
    expect(all).toHaveLength(MAX_CHAIN_DEPTH + 1);
    expect(runs.filter((run) => run.status === 'SUCCEEDED')).toHaveLength(MAX_CHAIN_DEPTH);
    expect(all.filter((run) => run.error?.code === 'CHAIN_TOO_DEEP')).toHaveLength(1);
  });
});

describe('action.githubComment', () => {
  it('posts the comment to the GitHub API with the named secret as token; secrets list names only, for designers', async () => {
    const set = await h.gql(`mutation { setSecret(name: "GITHUB_TOKEN", value: "ghp_test_token_123") { __typename ... on Secret { name } ${ERROR} } }`, {}, dana.key);
    expect(set.body.data.setSecret).toMatchObject({ __typename: 'Secret', name: 'GITHUB_TOKEN' });
    const listed = await h.gql('{ secrets { name updatedAt } }', {}, dana.key);
    expect(listed.body.data.secrets).toEqual([{ name: 'GITHUB_TOKEN', updatedAt: expect.any(String) }]);
    expect(JSON.stringify(listed.body)).not.toContain('ghp_test_token_123');
    // Sam's secrets are Sam's.
    expect((await h.gql('{ secrets { name } }', {}, sam.key)).body.data.secrets).toEqual([]);

    const workflow = await create(
      {
        name: 'Coverage comment',
        trigger: { type: 'manual' },
        steps: [{ key: 'comment', type: 'action.githubComment', input: { owner: 'acme', repo: 'app', number: 7, body: '="Coverage: " & trigger.body.coverage', token: 'GITHUB_TOKEN' } }],
      },
      dana.key,
    );
    await runManual(workflow, { coverage: '91%' }, dana.key);
    const [run] = await endedRuns(workflow, dana.key, 1);
    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    expect(github.requests).toHaveLength(1);
    expect(github.requests[0]).toMatchObject({ method: 'POST', path: '/repos/acme/app/issues/7/comments', body: { body: 'Coverage: 91%' } });
    expect(github.requests[0]!.authorization).toMatch(/^(token|bearer) ghp_test_token_123$/i);
    const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { steps { output } } }`, { id: run!.id }, dana.key);
    expect(body.data.workflowRun.steps[0].output).toMatchObject({ id: 4242 });
    // The token is in no event of the run.
    const events = await h.running.core.eventStore.readStream(`run-${run!.id}`);
    expect(JSON.stringify(events)).not.toContain('ghp_test_token_123');
  });

  it('fails the step clearly when the named secret does not exist (Sam cannot use Dana’s), and never calls GitHub', async () => {
    const before = github.requests.length;
    const workflow = await create(
      {
        name: 'No token',
        trigger: { type: 'manual' },
        steps: [{ key: 'comment', type: 'action.githubComment', input: { owner: 'acme', repo: 'app', number: 7, body: 'hi', token: 'GITHUB_TOKEN' } }],
      },
      sam.key,
    );
    await runManual(workflow, null, sam.key);
    const [run] = await endedRuns(workflow, sam.key, 1);
    expect(run).toMatchObject({ status: 'FAILED', error: { code: 'SECRET_NOT_FOUND' } });
    expect(run!.error!.message).toContain('There is no secret named GITHUB_TOKEN in this account');
    expect(github.requests.length).toBe(before);
  });

  it('refuses secrets management to a caller without the designer role, and a bad secret name', async () => {
    const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { initialKey { secret } } } }`, { name: 'Uma' });
    const uma = body.data.openAccount.initialKey.secret as string;
    const refused = await h.gql('mutation { setSecret(name: "X", value: "y") { __typename } }', {}, uma);
    expect(JSON.stringify(refused.body)).toContain('FORBIDDEN');
    const bad = await h.gql(`mutation { setSecret(name: "../etc", value: "y") { __typename ${ERROR} } }`, {}, dana.key);
    expect(JSON.stringify(bad.body)).toContain('VALIDATION');
    const missing = await h.gql(`mutation { deleteSecret(name: "NOPE") { __typename ${ERROR} } }`, {}, dana.key);
    expect(missing.body.data.deleteSecret).toMatchObject({ code: 'NOT_FOUND' });
  });
});
