/**
 * control.delay on the started app: the wake-up time is stored in the run and shown while it waits (the run's step,
 * the progress subscription over a real graphql-ws client); the step's output says when it was due and when it woke;
 * a delay past the run's timeout fails at once; a cancel ends a waiting run; bad inputs are refused when saved.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

let h: Harness;
let designer: { id: string; key: string };
const clients: Client[] = [];

const ERROR = '... on DomainError { code message details }';
const RUN = 'id status output error { code message } steps { key status attempts output wakingAt error { code message } }';

beforeAll(async () => {
  h = await startHarness();
  const { body } = await h.gql(`mutation { openAccount(name: "waiter", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  designer = { id: body.data.openAccount.account.id, key: body.data.openAccount.initialKey.secret };
});
afterAll(async () => {
  for (const client of clients) await client.dispose();
  await h?.stop();
});

const delayed = (input: Record<string, unknown>, settings: Record<string, unknown> = {}) => ({
  name: 'Wait, then answer',
  trigger: { type: 'manual' },
  settings,
  steps: [
    { key: 'wait', type: 'control.delay', input },
    { key: 'reply', type: 'action.respond', input: { woke: '=steps.wait' } },
  ],
});

const create = async (definition: unknown) => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, designer.key);
  if (!body.data) throw new Error(JSON.stringify(body));
  return body.data.createWorkflow;
};
const start = async (definition: unknown, input: unknown = null) => {
  const workflow = await create(definition);
  expect(workflow.__typename, JSON.stringify(workflow)).toBe('Workflow');
  const { body } = await h.gql(`mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { __typename ... on WorkflowRun { id } ${ERROR} } }`, { id: workflow.id, input }, designer.key);
  expect(body.data.runWorkflow.__typename, JSON.stringify(body)).toBe('WorkflowRun');
  return body.data.runWorkflow.id as string;
};
const read = async (runId: string) => {
  const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, designer.key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.workflowRun;
};
const ended = (runId: string) => eventually(`run ${runId} to end`, async () => ((run) => (run.status !== 'RUNNING' && run.status !== 'QUEUED' ? run : null))(await read(runId)));

describe('control.delay', () => {
  it('waits for its duration, shows its wake-up time while waiting (run and subscription), then outputs {wokeAt, scheduledFor}', async () => {
    const runId = await start(delayed({ for: 'PT1.5S' }));
    const events: Record<string, unknown>[] = [];
    const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${designer.key}` } });
    clients.push(client);
    const done = new Promise<void>((resolve, reject) =>
      client.subscribe(
        {
          query: `subscription($id: ID!) { workflowRun(id: $id) { __typename ... on WorkflowRunStartedEvent { trigger } ... on WorkflowStepWaitingEvent { key attempt wakingAt at } ... on WorkflowRunEndedEvent { status } } }`,
          variables: { id: runId },
        },
        { next: (result) => void events.push((result.data?.workflowRun ?? { errors: result.errors }) as Record<string, unknown>), error: reject, complete: resolve },
      ),
    );
    // The subscription's waiting event cannot be missed; the run's waiting view can (a loaded host may read the run only
    // after the 1.5 s), so it is shown on a run waiting for ten minutes below.
    await done;
    expect(events.find((event) => event.__typename === 'WorkflowRunStartedEvent')).toMatchObject({ trigger: { type: 'manual', body: null } });
    const waitingEvent = events.find((event) => event.__typename === 'WorkflowStepWaitingEvent');
    expect(waitingEvent).toMatchObject({ key: 'wait', attempt: 1, wakingAt: expect.any(String) });
    const wakingAt = String(waitingEvent!.wakingAt);
    expect(Date.parse(wakingAt) - Date.parse(String(waitingEvent?.at))).toBeGreaterThanOrEqual(1_500);
    expect(events.at(-1)).toMatchObject({ __typename: 'WorkflowRunEndedEvent', status: 'SUCCEEDED' });

    const run = await ended(runId);
    expect(run.steps[0]).toMatchObject({ status: 'SUCCEEDED', wakingAt: null, output: { scheduledFor: wakingAt } });
    const { wokeAt } = run.steps[0].output;
    expect(Date.parse(wokeAt)).toBeGreaterThanOrEqual(Date.parse(wakingAt));
    expect(run.output).toEqual({ woke: { wokeAt, scheduledFor: wakingAt } });

    // While it waits, the run shows the step waiting and its wake-up time.
    const longer = await start(delayed({ for: 'PT10M' }, { timeoutSeconds: 3600 }));
    const waiting = await eventually('the step to wait', async () => ((found) => (found.steps[0]?.status === 'WAITING' ? found : null))(await read(longer)));
    expect(waiting.status).toBe('RUNNING');
    expect(Date.parse(waiting.steps[0].wakingAt)).toBeGreaterThan(Date.now());
    await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename } }`, { id: longer }, designer.key);
  });

  it('waits until a time given by an expression; a time already past does not wait', async () => {
    const soon = new Date(Date.now() + 800).toISOString();
    const runId = await start(delayed({ until: '=trigger.body.at' }), { at: soon });
    const run = await ended(runId);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.output.woke.scheduledFor).toBe(soon);
    expect(Date.parse(run.output.woke.wokeAt)).toBeGreaterThanOrEqual(Date.parse(soon));

    const past = await ended(await start(delayed({ until: '2020-01-01T00:00:00Z' })));
    expect(past).toMatchObject({ status: 'SUCCEEDED', output: { woke: { scheduledFor: '2020-01-01T00:00:00.000Z' } } });
  });

  it('fails at once, clearly, when the wake-up time is at or past the run\'s deadline (the timeout counts delays)', async () => {
    // At once: ended before `ended` gives up, not after ten minutes (how fast is for bench/, not a wall-clock bound here).
    // A literal one is refused when saved (below): an expression's value is known only when the step runs.
    const run = await ended(await start(delayed({ for: '=trigger.body.wait' }, { timeoutSeconds: 60 }), { wait: 'PT10M' }));
    expect(run).toMatchObject({ status: 'FAILED', error: { code: 'DELAY_PAST_TIMEOUT' }, steps: [{ key: 'wait', status: 'FAILED', error: { code: 'DELAY_PAST_TIMEOUT' } }] });
    expect(run.error.message).toMatch(/settings\.timeoutSeconds 60 counts delays/);
  });

  it('a delay computed at run time that is not a duration fails the step with the bad field named', async () => {
    const run = await ended(await start(delayed({ for: '=trigger.body.wait' }), { wait: 'soon' }));
    expect(run).toMatchObject({ status: 'FAILED', error: { code: 'INVALID_INPUT' } });
    expect(run.error.message).toMatch(/input\.for/);
  });

  it('a cancel ends a waiting run at once', async () => {
    const runId = await start(delayed({ for: 600_000 }, { timeoutSeconds: 3600 }));
    await eventually('the step to wait', async () => (await read(runId)).steps[0]?.status === 'WAITING');
    const { body } = await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename ... on WorkflowRun { status } } }`, { id: runId }, designer.key);
    expect(body.data.cancelWorkflowRun).toMatchObject({ status: 'CANCELLED' });
    expect((await read(runId)).status).toBe('CANCELLED');
  });

  it.each([
    ['no duration or time', 'steps[0].input', {}, /"for"|"until"/],
    ['both a duration and a time', 'steps[0].input', { for: 5, until: '2030-01-01T00:00:00Z' }, /"for"|"until"/],
    ['a negative duration', 'steps[0].input.for', { for: -5 }, /≥ 0/],
    ['a duration over 30 days', 'steps[0].input.for', { for: 'P31D' }, /30 days/],
    ['a duration in months (no fixed length)', 'steps[0].input.for', { for: 'P1M' }, /no years or months/],
    ['a time that is not ISO-8601', 'steps[0].input.until', { until: 'next tuesday' }, /ISO-8601 time/],
  ])('refuses a delay with %s when saved (VALIDATION naming %s)', async (_what, path, input, message) => {
    const answer = await create(delayed(input));
    expect(answer).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path } });
    expect(answer.message).toMatch(message);
  });

  it('refuses, when saved, a literal delay as long as the run\'s timeout or longer (it could never wake before the deadline), naming the step', async () => {
    for (const [wait, settings] of [['PT2H', { timeoutSeconds: 60 }], [60_000, { timeoutSeconds: 60 }], ['PT5M', {}]] as const) {
      const answer = await create(delayed({ for: wait }, settings));
      expect(answer, String(wait)).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: 'steps[0].input.for' } });
      expect(answer.message).toMatch(/step wait waits \d+ s, at or past the run's timeout \(settings\.timeoutSeconds (60|300) counts delays\)/);
    }
    // Shorter than the timeout, or given by an expression: saved.
    expect(await create(delayed({ for: 'PT4M59S' }))).toMatchObject({ __typename: 'Workflow' });
    expect(await create(delayed({ for: '=trigger.body.wait' }, { timeoutSeconds: 60 }))).toMatchObject({ __typename: 'Workflow' });
  });

  it('allows a timeout over an hour (up to 30 days) only to workflows with a delay', async () => {
    const plain = await create({ name: 'Long', trigger: { type: 'manual' }, settings: { timeoutSeconds: 7200 }, steps: [{ key: 'x', type: 'action.transform', input: { expression: '=1' } }] });
    expect(plain).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: 'settings.timeoutSeconds' } });
    expect(plain.message).toMatch(/only a workflow with a control\.delay step/);
    expect(await create(delayed({ for: 'P7D' }, { timeoutSeconds: 8 * 86_400 }))).toMatchObject({ __typename: 'Workflow' });
    expect(await create(delayed({ for: 'P7D' }, { timeoutSeconds: 31 * 86_400 }))).toMatchObject({ __typename: 'DomainError', details: { path: 'settings.timeoutSeconds' } });
  });

  describe('with a timeout past what setTimeout holds (2^31 - 1 ms, 24.8 days; 30 days are allowed)', () => {
    const THIRTY_DAYS = 30 * 86_400;
    const overflows: string[] = [];
    const onWarning = (warning: Error) => void (warning.name === 'TimeoutOverflowWarning' && overflows.push(warning.message));
    beforeAll(() => void process.on('warning', onWarning));
    afterAll(() => void process.off('warning', onWarning));

    it('runs its steps: they are not aborted at once as past the run\'s timeout', async () => {
      overflows.length = 0;
      const runId = await start({
        name: 'A month to finish',
        trigger: { type: 'manual' },
        settings: { timeoutSeconds: THIRTY_DAYS },
        steps: [
          { key: 'wait', type: 'control.delay', input: { for: 'PT0.1S' } },
          // Long enough to meet a timer that fired after 1 ms (jsonata hands the event loop back as it counts).
          { key: 'count', type: 'action.transform', input: { expression: '=$count([1..5000].($ + 1))' } },
        ],
      });
      const run = await ended(runId);
      expect(run, JSON.stringify(run)).toMatchObject({ status: 'SUCCEEDED', steps: [{ key: 'wait', status: 'SUCCEEDED' }, { key: 'count', status: 'SUCCEEDED', output: 5000 }] });
      expect(overflows).toEqual([]);
    });

    it('a synchronous webhook waiting on such a run sleeps: no timer overflows into polling every millisecond', async () => {
      const created = await create({ name: 'Hold on', trigger: { type: 'webhook', respond: 'sync' }, settings: { timeoutSeconds: THIRTY_DAYS }, steps: [{ key: 'wait', type: 'control.delay', input: { for: 'PT1H' } }, { key: 'reply', type: 'action.respond', input: { ok: true } }] });
      expect(created.__typename).toBe('Workflow');
      const { body } = await h.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } } }`, { id: created.id }, designer.key);
      overflows.length = 0;
      const caller = new AbortController();
      const answer = fetch(`${h.url}/api/v1/workflows/${created.id}/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-switchyard-webhook-secret': body.data.rotateWebhookSecret.secret },
        body: '{}',
        signal: caller.signal,
      }).catch(() => null);
      const { body: runs } = await eventually('the webhook run to wait', async () =>
        ((found) => (found.body.data?.workflowRuns.edges[0]?.node.steps[0]?.status === 'WAITING' ? found : null))(
          await h.gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id steps { status } } } } }', { id: created.id }, designer.key),
        ),
      );
      // The caller's wait has begun (its first timer is armed as the run starts) and goes on while the run waits.
      await new Promise((resolve) => setTimeout(resolve, 200));
      caller.abort();
      await answer;
      expect(overflows).toEqual([]);
      await h.gql(`mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename } }`, { id: runs.data.workflowRuns.edges[0].node.id }, designer.key);
    });
  });
});
