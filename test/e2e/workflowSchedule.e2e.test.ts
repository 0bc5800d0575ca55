/**
 * Schedule triggers on the started app over GraphQL: definitions checked with croner when saved (the bad field's path
 * in the error), and the scheduler firing one run per due time, keeping up with workflows changed while it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

let h: Harness;
let designer: { id: string; key: string };

const ERROR = '... on DomainError { code message details }';
const RUNS = `query($id: ID!) { workflowRuns(workflowId: $id, first: 100) { edges { node { id status output } } } }`;

beforeAll(async () => {
  h = await startHarness();
  const { body } = await h.gql(`mutation { openAccount(name: "scheduler", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  designer = { id: body.data.openAccount.account.id, key: body.data.openAccount.initialKey.secret };
});
afterAll(async () => {
  await h?.stop();
});

const everySecond = (name: string, trigger: Record<string, unknown> = {}) => ({
  name,
  trigger: { type: 'schedule', cron: '* * * * * *', timezone: 'UTC', catchUp: 'none', ...trigger },
  steps: [{ key: 'reply', type: 'action.respond', input: { scheduledAt: '=trigger.scheduledAt', firedAt: '=trigger.firedAt' } }],
});

const create = async (definition: unknown) => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id definition } ${ERROR} } }`, { d: definition }, designer.key);
  if (!body.data) throw new Error(JSON.stringify(body));
  return body.data.createWorkflow;
};
const change = async (mutation: 'disableWorkflow' | 'enableWorkflow' | 'deleteWorkflow', id: string) => {
  const { body } = await h.gql(`mutation($id: ID!) { ${mutation}(id: $id) { __typename ${ERROR} } }`, { id }, designer.key);
  expect(body.data[mutation].__typename, JSON.stringify(body)).toBe('Workflow');
};
const update = async (id: string, definition: unknown) => {
  const { body } = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ${ERROR} } }`, { id, d: definition }, designer.key);
  expect(body.data.updateWorkflow.__typename, JSON.stringify(body)).toBe('Workflow');
};
const runs = async (id: string): Promise<{ id: string; status: string; output: { scheduledAt: string; firedAt: string } | null }[]> => {
  const { body } = await h.gql(RUNS, { id }, designer.key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.workflowRuns.edges.map((edge: { node: unknown }) => edge.node);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('schedule trigger: checked when saved', () => {
  it.each([
    ['a cron that does not parse', 'trigger.cron', { cron: 'every monday' }, /not a cron expression/],
    ['a 7-field cron (years)', 'trigger.cron', { cron: '0 0 9 * * 1 2027' }, /5 or 6 parts/],
    ['a cron that never fires', 'trigger.cron', { cron: '0 0 30 2 *' }, /never fires/],
    ['an out-of-range field', 'trigger.cron', { cron: '0 61 * * *' }, /not a cron expression/],
    ['an unknown time zone', 'trigger.timezone', { timezone: 'Mars/Olympus_Mons' }, /unknown time zone "Mars\/Olympus_Mons"/],
    ['an unknown catch-up policy', 'trigger.catchUp', { catchUp: 'all' }, /one|none/],
  ])('refuses %s with VALIDATION naming %s', async (_what, path, trigger, message) => {
    const answer = await create(everySecond('Bad', { cron: '0 9 * * 1-5', ...trigger }));
    expect(answer).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path } });
    expect(answer.message).toMatch(message);
  });

  it('accepts 5-field and 6-field (seconds first) crons in an IANA time zone, with catch-up "one" by default', async () => {
    const five = await create({ ...everySecond('Weekdays at nine'), trigger: { type: 'schedule', cron: '0 9 * * 1-5', timezone: 'Europe/Paris' } });
    expect(five).toMatchObject({ __typename: 'Workflow' });
    const { body } = await h.gql(`query($id: ID!) { workflow(id: $id) { definition } }`, { id: five.id }, designer.key);
    expect(body.data.workflow.definition.trigger).toEqual({ type: 'schedule', cron: '0 9 * * 1-5', timezone: 'Europe/Paris', catchUp: 'one' });
    const six = await create({ ...everySecond('Every 15 s'), trigger: { type: 'schedule', cron: '*/15 * * * * *', timezone: 'UTC' } });
    expect(six.__typename).toBe('Workflow');
    for (const id of [five.id, six.id]) await change('deleteWorkflow', id);
  });
});

describe('schedule trigger: the scheduler', () => {
  it('fires one run per due time, each with {scheduledAt, firedAt}, on whole seconds, fired at or just after its time', async () => {
    const { id } = await create(everySecond('Tick'));
    await sleep(3_300);
    await change('disableWorkflow', id);
    await sleep(300);
    const fired = await runs(id);
    expect(fired.length).toBeGreaterThanOrEqual(2);
    const times = fired.map((run) => run.output!.scheduledAt).sort();
    expect(new Set(times).size).toBe(times.length);
    for (const run of fired) {
      expect(run.status).toBe('SUCCEEDED');
      const { scheduledAt, firedAt } = run.output!;
      expect(scheduledAt).toMatch(/\.000Z$/);
      expect(Date.parse(firedAt)).toBeGreaterThanOrEqual(Date.parse(scheduledAt));
    }
    // Consecutive seconds: no due time skipped while running.
    times.forEach((time, index) => index > 0 && expect(Date.parse(time) - Date.parse(times[index - 1]!)).toBe(1_000));
    await change('deleteWorkflow', id);
  });

  it('keeps up with workflows disabled, re-enabled, given another cron and deleted while it runs', async () => {
    const { id } = await create(everySecond('Changing'));
    await sleep(1_500);
    await change('disableWorkflow', id);
    await sleep(300);
    const beforePause = (await runs(id)).length;
    expect(beforePause).toBeGreaterThanOrEqual(1);
    await sleep(2_000);
    expect((await runs(id)).length, 'a disabled workflow does not fire').toBe(beforePause);

    await change('enableWorkflow', id);
    await sleep(1_600);
    const afterEnable = (await runs(id)).length;
    expect(afterEnable, 're-enabled, it fires again (and catch-up does not reach back into the pause)').toBeGreaterThan(beforePause);
    expect(afterEnable - beforePause).toBeLessThanOrEqual(2);

    // Once a year on a date long past today's: no more fires.
    await update(id, { ...everySecond('Changing'), trigger: { type: 'schedule', cron: '0 0 0 1 1 *', timezone: 'UTC', catchUp: 'none' } });
    await sleep(300);
    const afterUpdate = (await runs(id)).length;
    await sleep(1_500);
    expect((await runs(id)).length, 'the new cron replaced the old one').toBe(afterUpdate);

    await update(id, everySecond('Changing'));
    await sleep(1_500);
    await change('deleteWorkflow', id);
    await sleep(300);
    const afterDelete = (await runs(id).catch(() => [])).length;
    await sleep(1_500);
    expect((await runs(id).catch(() => [])).length, 'a deleted workflow does not fire').toBe(afterDelete);
  });
});
