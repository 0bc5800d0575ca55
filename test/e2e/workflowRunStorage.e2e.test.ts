/**
 * What one workflow run stores is bounded in all (QA s45 res #2): the step inputs kept beside their outcomes were not
 * counted, so a run of 50 `control.filter` steps with 1 MB inputs wrote 50 MB to the event log, and 15 transform steps
 * 28.7 MB, past the documented "16 MiB in all". Now the trigger, every output, every input kept, every error and each
 * event's fixed part count against the run's 16 MiB; an input is kept only up to 64 KiB (and while it fits), and an
 * output that would pass the limit fails its step with RUN_STATE_TOO_LARGE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

const MIB = 1024 * 1024;
const ERROR = '... on DomainError { code message details }';
const RUN = 'status error { code message } steps { key status input error { code message } }';

let h: Harness;
let designer: string;

const createWorkflow = async (steps: unknown[]): Promise<string> => {
  const definition = { name: `store-${Math.random().toString(36).slice(2, 8)}`, trigger: { type: 'manual' }, steps, settings: { timeoutSeconds: 300 } };
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, designer);
  expect(body.data.createWorkflow.__typename, JSON.stringify(body.data.createWorkflow)).toBe('Workflow');
  return body.data.createWorkflow.id;
};

/** Start a run over REST (its body is the trigger's input) and read it over GraphQL once it has ended. */
const runToEnd = async (workflowId: string, input: unknown = {}) => {
  const res = await fetch(`${h.url}/api/v1/workflows/${workflowId}/runs`, { method: 'POST', headers: { authorization: `Bearer ${designer}`, 'content-type': 'application/json' }, body: JSON.stringify(input) });
  const started = (await res.json()) as { id?: string; data?: { id: string } };
  expect(res.status, JSON.stringify(started).slice(0, 300)).toBeLessThan(300);
  const runId = (started.data?.id ?? started.id)!;
  const run = await eventually(
    'the run to end',
    async () => {
      const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: runId }, designer);
      const view = body.data.workflowRun;
      return view.status !== 'RUNNING' && view.status !== 'QUEUED' && view;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return { runId, run };
};

/** Bytes of everything the run's events hold (their data as JSON), as the event log stores them. */
const storedBytes = async (runId: string): Promise<number> => {
  const events = (await h.running.core.eventStore.readStream(runStream(runId))) as RecordedEvent[];
  return events.reduce((sum, event) => sum + Buffer.byteLength(JSON.stringify(event.data), 'utf8'), 0);
};

beforeAll(async () => {
  h = await startHarness();
  const { body } = await h.gql(`mutation { openAccount(name: "Store", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
  designer = body.data.openAccount.initialKey.secret;
});
afterAll(async () => {
  await h.stop();
});

describe('what a workflow run stores', () => {
  it('20 filter steps with 1 MB inputs: the inputs over 64 KiB are not kept, the run succeeds and stores well under 16 MiB', async () => {
    const steps = Array.from({ length: 20 }, (_, i) => ({ key: `f${i}`, type: 'control.filter', input: { condition: true, junk: '=$pad("", 1000000, "x")' } }));
    const small = { key: 'small', type: 'control.filter', input: { condition: true, note: 'kept' } };
    const { runId, run } = await runToEnd(await createWorkflow([...steps, small]));
    expect(run.status).toBe('SUCCEEDED');
    const stored = await storedBytes(runId);
    // Before: every 1 MB input was kept, 20 MB in all.
    expect(stored).toBeLessThan(MIB);
    expect(run.steps.find((step: { key: string }) => step.key === 'f0').input).toBeNull();
    expect(run.steps.find((step: { key: string }) => step.key === 'small').input).toEqual({ condition: true, note: 'kept' });
  });

  it('the trigger and the outputs count together: the output that would pass 16 MiB fails its step with RUN_STATE_TOO_LARGE', async () => {
    // 16 outputs of 1,040,002 bytes (16.6 MB, under 16 MiB alone) beside a 200 KB trigger: 16.8 MB, over 16 MiB.
    const steps = Array.from({ length: 16 }, (_, i) => ({ key: `t${i}`, type: 'action.transform', input: { expression: '=$pad("", 1040000, "y")' } }));
    const { runId, run } = await runToEnd(await createWorkflow(steps), { blob: 'z'.repeat(200_000) });
    expect(run.status).toBe('FAILED');
    expect(run.error).toMatchObject({ code: 'RUN_STATE_TOO_LARGE' });
    const failed = run.steps.find((step: { key: string }) => step.key === 't15');
    expect(failed).toMatchObject({ status: 'FAILED', error: { code: 'RUN_STATE_TOO_LARGE', message: expect.stringMatching(/over the limit of 16777216/) } });
    expect(run.steps.find((step: { key: string }) => step.key === 't14').status).toBe('SUCCEEDED');
    const stored = await storedBytes(runId);
    expect(stored).toBeLessThanOrEqual(16 * MIB);
    expect(stored).toBeGreaterThan(15 * MIB);
  });
});
