/**
 * What one workflow run stores is bounded in all (QA s45 res #2): the step inputs kept beside their outcomes were not
 * counted, so a run of 50 `control.filter` steps with 1 MB inputs wrote 50 MB to the event log, and 15 transform steps
 * 28.7 MB, past the documented "16 MiB in all". Now the trigger, every output, every input kept, every error and each
 * event's fixed part count against the run's 16 MiB; an input is kept only up to 64 KiB (and while it fits), and an
 * output that would pass the limit fails its step with RUN_STATE_TOO_LARGE. A run in flight at the upgrade, whose
 * earlier steps kept inputs of up to 1 MiB each, counts them as this version would have kept them, and goes on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
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

  it('a run in flight at the upgrade whose earlier steps kept 1 MiB inputs (uncounted then) goes on: those inputs count as not kept (review s45 F5)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-run-upgrade-'));
    let harness = await startHarness({}, dir);
    try {
      const { body } = await harness.gql(`mutation { openAccount(name: "Olga", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
      const olga = body.data.openAccount.initialKey.secret as string;
      const steps = Array.from({ length: 18 }, (_, i) => ({ key: `s${i}`, type: 'action.transform', input: { expression: `="done ${i}"` } }));
      const definition = { name: 'Long', trigger: { type: 'manual' }, steps, settings: { timeoutSeconds: 300 } };
      const created = await harness.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, olga);
      const workflowId = created.body.data.createWorkflow.id as string;
      await harness.stop({ keepData: true });

      // As an earlier version left it at a crash or a stop: 17 steps done, each with its 1 MiB input kept (the older
      // rule kept inputs up to 1 MiB and counted only outputs), no `bytes` recorded; the last step not started yet.
      const runId = 'run_upgradeinflight';
      const at = new Date().toISOString();
      const input = { expression: 'x'.repeat(MIB - 20) };
      const events: DomainEvent[] = [{ type: 'RunStarted', data: { runId, workflowId, version: 1, trigger: {}, at } }];
      for (let i = 0; i < 17; i++) {
        events.push({ type: 'StepStarted', data: { key: `s${i}`, attempt: 1, idempotencyKey: `${runId}.s${i}.1`, at } });
        events.push({ type: 'StepSucceeded', data: { key: `s${i}`, attempt: 1, output: `done ${i}`, cost: 0, input, at } });
      }
      const store = openSqliteEventStore({ dir, synchronous: 'normal' });
      await store.append(runStream(runId), events, { expectedRevision: 'no_stream' });
      await store.close();

      harness = await startHarness({}, dir);
      const run = await eventually(
        'the resumed run to end',
        async () => {
          const { body: read } = await harness.gql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} output } }`, { id: runId }, olga);
          expect(read.errors, JSON.stringify(read.errors)).toBeUndefined();
          const view = read.data.workflowRun;
          return view !== null && view.status !== 'RUNNING' && view.status !== 'QUEUED' && view;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      // Before: 17.8 MB counted of 16 MiB allowed, so s17 failed for good with RUN_STATE_TOO_LARGE.
      expect(run.steps.find((step: { key: string }) => step.key === 's17')).toMatchObject({ status: 'SUCCEEDED', error: null });
      expect(run.status).toBe('SUCCEEDED');
      expect(run.steps.find((step: { key: string }) => step.key === 's0').input).toEqual(input);
    } finally {
      await harness.stop({ keepData: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
