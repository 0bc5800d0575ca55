/**
 * Schedule triggers on the started app over GraphQL: definitions checked with croner when saved (the bad field's path
 * in the error), and the scheduler firing one run per due time, keeping up with workflows changed while it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { scheduledRunId } from '../../src/modules/workflows/triggers/schedule.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually, readModelsCaughtUp, watchStalls } from '../support/eventually.js';

let h: Harness;
let designer: { id: string; key: string };

const ERROR = '... on DomainError { code message details }';
const RUNS = `query($id: ID!) { workflowRuns(workflowId: $id, first: 100) { edges { node { id status output } } } }`;

beforeAll(async () => {
  // Schedules here fire every second, under the default minimum interval (60 s, tested in workflowAccountLimits).
  h = await startHarness({ WORKFLOW_MIN_SCHEDULE_SECONDS: '1' });
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

describe('schedule trigger: checked when saved', () => {
  it.each([
    ['a cron that does not parse', 'trigger.cron', { cron: 'every monday' }, /not a cron expression/],
    ['a 7-field cron (years)', 'trigger.cron', { cron: '0 0 9 * * 1 2027' }, /not a cron expression \(5 fields, or 6 with seconds first\): it has 7 fields \(a year field is not taken\)$/],
    // How many fields it has, never croner's "exactly five, six, or seven ... parts" (seven is refused) or its mode.
    ['a 3-field cron', 'trigger.cron', { cron: '0 0 *' }, /not a cron expression \(5 fields, or 6 with seconds first\): it has 3 fields$/],
    ['an 8-field cron', 'trigger.cron', { cron: '0 0 9 * * 1 2027 1' }, /: it has 8 fields$/],
    ['an empty cron', 'trigger.cron', { cron: '   ' }, /: it is empty$/],
    ['an empty item in a list', 'trigger.cron', { cron: '0 0 1,,2 * *' }, /: the day of month field has an empty item in its list \(two commas together, or one at its start or end\)$/],
    ['a trailing comma', 'trigger.cron', { cron: '0 0 * * 1,' }, /: the day of week field has an empty item in its list/],
    ['#6 in day of week', 'trigger.cron', { cron: '0 0 * * 5#6' }, /: in the day of week field, #6 is out of range: #n \(the nth such weekday of the month\) is 1-5, or L for the last$/],
    ['#0 after a day name', 'trigger.cron', { cron: '0 0 * * MON#0' }, /: in the day of week field, #0 is out of range/],
    ['a cron that never fires', 'trigger.cron', { cron: '0 0 30 2 *' }, /never fires/],
    ['an out-of-range field', 'trigger.cron', { cron: '0 61 * * *' }, /not a cron expression .*: hour 61 is out of range 0-23$/],
    // The user's own numbers and the field's range, never croner's counted from 0 ("Invalid value for day: 31").
    ['day of month 32', 'trigger.cron', { cron: '0 0 32 * *' }, /: day of month 32 is out of range 1-31$/],
    ['day of month 0', 'trigger.cron', { cron: '0 0 0 * *' }, /: day of month 0 is out of range 1-31$/],
    ['month 0', 'trigger.cron', { cron: '0 0 * 0 *' }, /: month 0 is out of range 1-12$/],
    ['month 13 in a range', 'trigger.cron', { cron: '0 0 * 3-13 *' }, /: month 13 is out of range 1-12$/],
    ['day of month 40 in a stepped range', 'trigger.cron', { cron: '0 0 5-40/2 * *' }, /: day of month 40 is out of range 1-31$/],
    ['day of week 8 in a list', 'trigger.cron', { cron: '0 0 * * 1,8' }, /: day of week 8 is out of range 0-7 \(0 and 7 are Sunday\)$/],
    ['hour 24', 'trigger.cron', { cron: '0 24 * * *' }, /: hour 24 is out of range 0-23$/],
    ['second 60 (6 fields)', 'trigger.cron', { cron: '60 0 0 * * *' }, /: second 60 is out of range 0-59$/],
    ['minute 60', 'trigger.cron', { cron: '60 0 * * *' }, /: minute 60 is out of range 0-59$/],
    ['a field with other characters', 'trigger.cron', { cron: '0 0 3x * *' }, /: the day of month field "3x" has characters a cron does not take$/],
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
    const stalls = watchStalls();
    const { id } = await create(everySecond('Tick'));
    await eventually('two runs', async () => (await runs(id)).length >= 2);
    await change('disableWorkflow', id);
    stalls.stop();
    // Every run fired before the disable, ended (the last may still run, or not be in the read models yet).
    await readModelsCaughtUp(h.running.core);
    const fired = await eventually('the runs to end', async () => ((all) => all.every((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED') && all)(await runs(id)));
    expect(fired.length).toBeGreaterThanOrEqual(2);
    const times = fired.map((run) => run.output!.scheduledAt).sort();
    expect(new Set(times).size).toBe(times.length);
    for (const run of fired) {
      expect(run.status).toBe('SUCCEEDED');
      const { scheduledAt, firedAt } = run.output!;
      expect(scheduledAt).toMatch(/\.000Z$/);
      expect(Date.parse(firedAt)).toBeGreaterThanOrEqual(Date.parse(scheduledAt));
    }
    // Consecutive seconds: no due time skipped while running. The scheduler skips due times only when its timer was late
    // by a whole period (a stalled process fires the latest due time it passed, never a burst), which a loaded host can
    // cause: then only whole seconds are asked for.
    const gaps = times.slice(1).map((time, index) => Date.parse(time) - Date.parse(times[index]!));
    for (const gap of gaps) expect(gap % 1_000, 'due times on whole seconds').toBe(0);
    if (stalls.longestMs() < 500) for (const gap of gaps) expect(gap, `no due time skipped (the event loop stalled ${Math.round(stalls.longestMs())} ms at most)`).toBe(1_000);
    await change('deleteWorkflow', id);
  });

  it('keeps up with workflows disabled, re-enabled, given another cron and deleted while it runs', { timeout: 120_000 }, async () => {
    const { core } = h.running;
    /** The due times in (from, to] of the workflow that fired, read from the log (a run's id derives from its due time). */
    const fired = async (workflowId: string, from: number, to = Date.now()): Promise<number[]> => {
      const dues: number[] = [];
      for (let due = Math.floor(from / 1_000) * 1_000 + 1_000; due <= to; due += 1_000) dues.push(due);
      const recorded = await Promise.all(dues.map(async (due) => (await core.eventStore.readStream(runStream(scheduledRunId(workflowId, due)))).length > 0));
      return dues.filter((_, index) => recorded[index]);
    };
    /**
     * A workflow due every second, made now, fired twice, then deleted; answers its first due time. The scheduler
     * follows workflow changes in log order, so by that time it had applied every change made before the marker; and
     * it kept firing for two due times after (what a check that something did not fire needs, not to pass vacuously).
     */
    const marker = async (): Promise<number> => {
      const made = Date.now();
      const { id: markerId } = await create(everySecond('Marker'));
      const [first] = await eventually('the marker to fire twice', async () => ((dues) => dues.length >= 2 && dues)(await fired(markerId, made)));
      await change('deleteWorkflow', markerId);
      return first!;
    };

    const creating = Date.now();
    const { id } = await create(everySecond('Changing'));
    await eventually('the first fire', async () => (await fired(id, creating)).length > 0);

    // Once disabled, a fire is refused by the runs API (which reads the workflow's stream): no due time after it runs.
    await change('disableWorkflow', id);
    const disabledAt = Date.now();
    await marker();
    expect(await fired(id, disabledAt), 'a disabled workflow does not fire').toEqual([]);

    const enabling = Date.now();
    await change('enableWorkflow', id);
    await eventually('re-enabled, it fires again', async () => (await fired(id, enabling)).length > 0);
    expect(await fired(id, disabledAt, enabling), 'catch-up does not reach back into the pause').toEqual([]);

    // Once a year on a date long past today's: no more fires once the scheduler has the new cron.
    await update(id, { ...everySecond('Changing'), trigger: { type: 'schedule', cron: '0 0 0 1 1 *', timezone: 'UTC', catchUp: 'none' } });
    const applied = await marker();
    expect(await fired(id, applied - 1_000), 'the new cron replaced the old one').toEqual([]);

    const updating = Date.now();
    await update(id, everySecond('Changing'));
    await eventually('given a cron due every second again, it fires again', async () => (await fired(id, updating)).length > 0);
    await change('deleteWorkflow', id);
    const deletedAt = Date.now();
    await marker();
    expect(await fired(id, deletedAt), 'a deleted workflow does not fire').toEqual([]);
  });
});
