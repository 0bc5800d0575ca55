/**
 * Many schedules due at once (a restart's catch-up of 300 workflows (more than the 256 starts the scheduler used to keep in flight) missing the same due time): the scheduler records
 * every run of the burst before any of them runs a step, one run per workflow and due time, also when the same due
 * time is fired again by a second restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { RUN_CATEGORY } from '../../src/modules/workflows/run.events.js';
import { scheduledRunId } from '../../src/modules/workflows/triggers/schedule.js';
import { startHarness, type Harness } from '../support/appHarness.js';

const WORKFLOWS = 300;
/** One account's 300 workflows and their runs at once: over the per-account defaults (100 each), raised here. */
const BURST_ENV = { WORKFLOW_MAX_PER_ACCOUNT: '1000', WORKFLOW_MAX_RUNS_PER_ACCOUNT: '1000' };
/** The schedules' day: created at 11:00, due at 12:00, the server back at 12:00:30 (catch-up "one" fires 12:00). */
const CREATED_AT = Date.parse('2030-01-07T11:00:00Z');
const DUE = Date.parse('2030-01-07T12:00:00Z');
const BACK_AT = Date.parse('2030-01-07T12:00:30Z');

const dir = mkdtempSync(join(tmpdir(), 'switchyard-burst-'));
let offset = 0;
const clock = () => new Date(Date.now() + offset);
const setClock = (at: number) => (offset = at - Date.now());
let h: Harness | undefined;
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('schedule trigger: a burst of due times', () => {
  it(`${WORKFLOWS} workflows missing the same due time: every run is recorded before any runs a step, one run each, also when fired again`, async () => {
    setClock(CREATED_AT);
    h = await startHarness(BURST_ENV, dir, { now: clock });
    const { body: opened } = await h.gql(`mutation { openAccount(name: "burst", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
    const key = opened.data.openAccount.initialKey.secret as string;
    const definition = (i: number) => ({
      name: `Noon ${i}`,
      trigger: { type: 'schedule', cron: '0 0 12 * * *', timezone: 'UTC', catchUp: 'one' },
      steps: [{ key: 'stamp', type: 'action.transform', input: { expression: '=trigger.scheduledAt' } }],
    });
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < WORKFLOWS) {
          const i = next++;
          const { body } = await h!.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ... on DomainError { code message } } }`, { d: definition(i) }, key);
          expect(body.data?.createWorkflow.__typename, JSON.stringify(body)).toBe('Workflow');
          ids[i] = body.data.createWorkflow.id as string;
        }
      }),
    );
    await h.stop({ keepData: true });

    // Back after the due time: catch-up fires it for every workflow at once.
    setClock(BACK_AT);
    h = await startHarness(BURST_ENV, dir, { now: clock });
    const runIds = ids.map((id) => scheduledRunId(id, DUE));
    const ended = async () => {
      for (let attempt = 0; attempt < 120; attempt++, await sleep(250)) {
        const runs: ({ id: string; status: string; output: unknown } | null)[] = [];
        for (let from = 0; from < runIds.length; from += 25) {
          const chunk = runIds.slice(from, from + 25);
          const { body } = await h!.gql(`query { ${chunk.map((id, i) => `r${i}: workflowRun(id: "${id}") { id status output }`).join(' ')} }`, {}, key);
          runs.push(...chunk.map((_, i) => body.data?.[`r${i}`] ?? null));
        }
        if (runs.every((run) => run !== null && run.status !== 'RUNNING' && run.status !== 'QUEUED')) return runs;
      }
      throw new Error('the burst did not end within 30 s');
    };
    for (const run of await ended()) expect(run).toMatchObject({ status: 'SUCCEEDED' });

    const runEvents = async () => (await h!.running.core.eventStore.readAll({ filter: { categories: [RUN_CATEGORY] } })) as RecordedEvent[];
    const events = await runEvents();
    const starts = events.filter((event) => event.type === 'RunStarted');
    const steps = events.filter((event) => event.type === 'StepStarted');
    // One run per workflow and due time, each under its derived id.
    expect(new Set(starts.map((event) => (event.data as { runId: string }).runId))).toEqual(new Set(runIds));
    expect(starts).toHaveLength(WORKFLOWS);
    expect(steps).toHaveLength(WORKFLOWS);
    // Fired first: the last run's start is in the log before the first step of any run.
    expect(Math.max(...starts.map((event) => event.position))).toBeLessThan(Math.min(...steps.map((event) => event.position)));

    // A second restart in the same minute fires the same due time again: every start is answered by its run, none added.
    await h.stop({ keepData: true });
    setClock(BACK_AT + 10_000);
    h = await startHarness(BURST_ENV, dir, { now: clock });
    await ended();
    await sleep(500);
    const again = await runEvents();
    expect(again.filter((event) => event.type === 'RunStarted')).toHaveLength(WORKFLOWS);
    expect(again).toHaveLength(events.length);
  }, 120_000);
});
