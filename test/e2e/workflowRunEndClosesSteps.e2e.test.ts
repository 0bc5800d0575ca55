/**
 * A run's end leaves no step in flight: a run that timed out while its delay waited (the server down past the run's
 * timeout, then restarted) shows that step FAILED with the run's error and no wake-up time, as a cancelled run does.
 * The app's clock is injected, so the restart lands past the timeout without waiting for it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

const ERROR = '... on DomainError { code message }';
const RUN = 'status error { code message } steps { key status wakingAt error { code message } }';
const dir = mkdtempSync(join(tmpdir(), 'switchyard-run-end-'));
let clock = Date.parse('2028-11-02T10:00:00.000Z');
let h: Harness | undefined;

afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a run's end", () => {
  it('a run that timed out while a delay waited shows that step FAILED (RUN_TIMEOUT), not WAITING with a past wake-up time', async () => {
    h = await startHarness({}, dir, { now: () => new Date(clock) });
    const definition = {
      name: 'Wait past the timeout',
      trigger: { type: 'manual' },
      settings: { timeoutSeconds: 600 },
      steps: [
        { key: 'd', type: 'control.delay', input: { for: 'PT2M' } },
        { key: 't', type: 'action.respond', input: { done: true } },
      ],
    };
    const created = (await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition })).body.data.createWorkflow;
    expect(created.__typename, JSON.stringify(created)).toBe('Workflow');
    const runId = (await h.gql(`mutation($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id } ${ERROR} } }`, { id: created.id })).body.data.runWorkflow.id;
    const read = async () => (await h!.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId })).body.data.workflowRun;
    await eventually('the delay to wait', async () => (await read()).steps[0]?.status === 'WAITING');

    // Down, and back an hour later: past the run's 600 s.
    await h.stop({ keepData: true });
    clock += 3_600_000;
    h = await startHarness({}, dir, { now: () => new Date(clock) });
    const run = await eventually('the run to end', async () => ((run) => run.status !== 'RUNNING' && run)(await read()));
    expect(run).toMatchObject({ status: 'FAILED', error: { code: 'RUN_TIMEOUT', message: 'The run passed its timeout of 600 s' } });
    expect(run.steps).toEqual([{ key: 'd', status: 'FAILED', wakingAt: null, error: { code: 'RUN_TIMEOUT', message: 'The run passed its timeout of 600 s' } }]);
  });
});
